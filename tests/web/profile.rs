//! The production profile: no development aids unless a key asks for them, and nothing of
//! the sandbox's trusted.

use axum::body::Body;
use http::Request;
use switchyard_core::bff::App;
use switchyard_core::config::Profile;
use web_bff::{WebBff, WebConfig};

use crate::spawn_app_with;

const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

fn browser_get() -> Request<Body> {
    Request::get("/graphql")
        .header("accept", "text/html")
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn production_turns_off_introspection_suggestions_and_graphiql_unless_asked() {
    let prod = spawn_app_with(|config| config.profile = Profile::Production).await;
    let token = prod.mocks.token("cus_1");
    let response = prod.query(Some(&token), INTROSPECTION).await;
    assert!(
        response.json["data"]["__schema"].is_null(),
        "{}",
        response.json
    );
    let typo = prod.query(Some(&token), "{ viewr { id } }").await;
    let message = typo.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(!message.contains("Did you mean"), "{message}");
    let page = prod.send(browser_get()).await;
    assert!(
        !String::from_utf8_lossy(&page.body).contains("GraphiQL"),
        "no GraphiQL in production"
    );

    let dev = spawn_app_with(|_| {}).await;
    let page = dev.send(browser_get()).await;
    assert!(String::from_utf8_lossy(&page.body).contains("GraphiQL"));
    let typo = dev
        .query(Some(&dev.mocks.token("cus_1")), "{ viewr { id } }")
        .await;
    let message = typo.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("Did you mean"), "{message}");

    // Any single key can still be set explicitly.
    let explicit = spawn_app_with(|config| {
        config.profile = Profile::Production;
        config.graphql.introspection = Some(true);
    })
    .await;
    let response = explicit
        .query(Some(&explicit.mocks.token("cus_1")), INTROSPECTION)
        .await;
    assert_eq!(
        response.json["data"]["__schema"]["queryType"]["name"],
        "Query"
    );
}

#[test]
fn production_refuses_a_jwks_on_loopback() {
    let error =
        switchyard_tests::load_config::<WebConfig>(None, &[("SWITCHYARD_PROFILE", "production")])
            .expect_err("the default JWKS is the sandbox's, on loopback");
    let message = error.to_string();
    assert!(
        message.contains("auth.jwks_url") && message.contains("loopback"),
        "{message}"
    );
    let config = switchyard_tests::load_config::<WebConfig>(
        None,
        &[
            ("SWITCHYARD_PROFILE", "production"),
            (
                "SWITCHYARD_AUTH__JWKS_URL",
                "https://id.example.com/.well-known/jwks.json",
            ),
        ],
    )
    .expect("a real issuer is fine");
    assert!(config.profile.is_production());
}

#[tokio::test]
async fn production_refuses_to_start_with_the_sandboxs_signing_key() {
    let jwks = serde_json::to_string(switchyard_sandbox::Issuer::dev().jwks()).expect("JSON");
    let dir = switchyard_tests::ScratchDir::new("sandbox-jwks");
    let path = dir.write("jwks.json", &jwks);
    let mut config = WebConfig::default();
    config.auth.jwks_file = Some(path);
    config.profile = Profile::Production;
    let error = App::<WebBff>::new(&config).err().expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("sandbox's development signing key"),
        "{message}"
    );
    // Development accepts it: that is what the sandbox is for.
    config.profile = Profile::Development;
    assert!(App::<WebBff>::new(&config).is_ok());
}

#[tokio::test]
async fn production_refuses_to_start_when_its_jwks_url_serves_the_sandboxs_key() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let issuer = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(switchyard_sandbox::Issuer::dev().jwks()),
        )
        .mount(&issuer)
        .await;
    let mut config = WebConfig {
        profile: Profile::Production,
        ..WebConfig::default()
    };
    config.auth.jwks_url = Some(format!("{}/.well-known/jwks.json", issuer.uri()));
    let app = App::<WebBff>::new(&config).expect("wired");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let error = app
        .serve(listener, std::future::pending())
        .await
        .expect_err("refuses to start");
    assert!(
        error.to_string().starts_with("refusing to start"),
        "{error}"
    );
}
