//! The partner BFF over a real socket against the sandbox, with a partner JWT and with the
//! sandbox's development API key, as the README runs it.

use serde_json::Value;
use switchyard_sandbox::issuer::{DEV_API_KEY, dev_api_key};
use switchyard_sandbox::{Sandbox, SandboxOptions, TokenRequest};

struct PartnerFleet {
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

async fn start() -> PartnerFleet {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let mut config = partner_bff::PartnerConfig::default();
    config.auth.api_keys.push(dev_api_key());
    let addr = sandbox
        .start_bff::<partner_bff::PartnerBff>(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("the BFF starts");
    PartnerFleet {
        sandbox,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl PartnerFleet {
    async fn get(&self, path: &str, authorization: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", authorization)
            .send()
            .await
            .expect("partner-bff answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn partner_token(&self, scope: &str) -> String {
        let token = self.sandbox.issuer.mint(&TokenRequest {
            sub: "partner-acme".to_owned(),
            scope: scope.to_owned(),
            tier: "enterprise".to_owned(),
            ..TokenRequest::default()
        });
        format!("Bearer {token}")
    }

    fn upstream_calls(&self) -> u64 {
        self.sandbox.customers.admin.stats().total
            + self.sandbox.orders.admin.stats().total
            + self.sandbox.inventory.admin.stats().total
    }
}

#[tokio::test]
async fn a_partner_jwt_and_the_dev_api_key_both_list_orders_with_masked_customers() {
    let fleet = start().await;
    let jwt = fleet.partner_token("data:orders:read data:admin data:customers:read");
    let api_key = format!("ApiKey {DEV_API_KEY}");
    for authorization in [&jwt, &api_key] {
        let (status, page) = fleet
            .get("/partner/v1/orders?status=paid&limit=5", authorization)
            .await;
        assert_eq!(status, 200, "{page}");
        let rows = page["data"].as_array().expect("data");
        assert_eq!(rows.len(), 5);
        let customers: std::collections::HashSet<&str> = rows
            .iter()
            .filter_map(|row| row["customerId"].as_str())
            .collect();
        assert!(
            customers.len() > 1,
            "orders across customers: {customers:?}"
        );
        for row in rows {
            assert_eq!(row["status"], "paid");
            let id = row["customerId"].as_str().expect("customer id");
            let real = fleet.sandbox.data.customer(id).expect("a sandbox customer");
            assert_eq!(row["customer"]["id"], id);
            assert_ne!(row["customer"]["email"], real.email.as_str(), "masked");
            assert!(
                row["customer"]["email"]
                    .as_str()
                    .is_some_and(|e| e.contains("***@"))
            );
            assert!(row["customer"].get("name").is_none());
        }
        let cursor = page["pagination"]["cursor"].as_str().expect("more pages");
        let (status, next) = fleet
            .get(
                &format!("/partner/v1/orders?status=paid&limit=5&cursor={cursor}"),
                authorization,
            )
            .await;
        assert_eq!(status, 200, "{next}");
        assert_ne!(next["data"][0]["id"], rows[0]["id"]);
    }
    // Two pages for each credential: one orders call per page, and one batched customers
    // call per page of the first credential. Customers stay fresh in the entity cache for
    // 30 s, so the second credential's identical pages cost no customers call.
    assert_eq!(fleet.sandbox.orders.admin.stats().total, 4);
    assert_eq!(fleet.sandbox.customers.admin.stats().total, 2);
}

#[tokio::test]
async fn stock_comes_from_one_inventory_call_for_either_credential() {
    let fleet = start().await;
    let jwt = fleet.partner_token("data:inventory:read");
    for authorization in [jwt, format!("ApiKey {DEV_API_KEY}")] {
        let (status, body) = fleet
            .get(
                "/partner/v1/stock?skus=SKU-00001,SKU-00002,NO-SUCH-SKU",
                &authorization,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["unknownSkus"], serde_json::json!(["NO-SUCH-SKU"]));
    }
    assert_eq!(fleet.sandbox.inventory.admin.stats().total, 2);
}

#[tokio::test]
async fn bad_keys_missing_scopes_and_bad_parameters_are_problems_that_cost_nothing_upstream() {
    let fleet = start().await;
    let wrong_key = format!("ApiKey {DEV_API_KEY}-not");
    let no_admin = fleet.partner_token("data:orders:read data:customers:read");
    let partner = fleet.partner_token("data:orders:read data:admin data:inventory:read");
    let cases = [
        (
            "/partner/v1/orders",
            wrong_key.as_str(),
            401,
            "UNAUTHENTICATED",
        ),
        (
            "/partner/v1/orders",
            "Bearer not-a-token",
            401,
            "UNAUTHENTICATED",
        ),
        ("/partner/v1/orders", no_admin.as_str(), 403, "FORBIDDEN"),
        (
            "/partner/v1/orders?limit=1000",
            partner.as_str(),
            400,
            "BAD_USER_INPUT",
        ),
        (
            "/partner/v1/orders?status=lost",
            partner.as_str(),
            400,
            "BAD_USER_INPUT",
        ),
        (
            "/partner/v1/orders?cursor=xyz",
            partner.as_str(),
            400,
            "BAD_REQUEST",
        ),
        (
            "/partner/v1/stock?skus=",
            partner.as_str(),
            400,
            "BAD_USER_INPUT",
        ),
    ];
    for (path, authorization, status, code) in cases {
        let (got, body) = fleet.get(path, authorization).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["code"], code, "{path}");
        assert_eq!(body["instance"], path.split('?').next().unwrap_or(path));
    }
    assert_eq!(fleet.upstream_calls(), 0);
}

#[test]
fn docker_compose_configures_the_digest_of_the_dev_api_key() {
    let compose = include_str!("../../docker-compose.yml");
    let digest = switchyard_core::auth::api_key_digest(DEV_API_KEY);
    assert!(
        compose.contains(&digest),
        "docker-compose.yml must carry {digest}"
    );
}
