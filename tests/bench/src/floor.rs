//! The floor: the same upstream calls as a BFF scenario, made by a minimal hand-written
//! server — hyper's HTTP/1 connection handling, the same token check and reqwest client,
//! serde_json or ciborium for the body, and nothing else (no router, no middleware, no
//! GraphQL, no cache, no resilience). A BFF's cost is reported as a ratio to it.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_core::auth::AuthConfig;
use switchyard_core::auth::Authenticator;
use switchyard_core::upstream::UpstreamsConfig;
use tokio::net::TcpListener;

/// Which scenario's calls the floor makes.
#[derive(Clone, Copy, Debug)]
pub enum FloorKind {
    /// Customer ‖ N orders → stock of their items.
    Web(u32),
    /// Customer ‖ 5 orders.
    Mobile,
    /// Decode a CBOR message → post the readings → encode an ack.
    Iot,
}

struct Floor {
    kind: FloorKind,
    auth: Authenticator,
    http: reqwest::Client,
    customers: String,
    orders: String,
    inventory: String,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

impl Floor {
    async fn get(&self, url: String) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn dashboard(
        &self,
        customer: &str,
        orders: u32,
        with_stock: bool,
    ) -> anyhow::Result<Vec<u8>> {
        let (customers, page) = tokio::join!(
            self.get(format!("{}/customers?ids={customer}", self.customers)),
            self.get(format!(
                "{}/orders?limit={orders}&customer_id={customer}",
                self.orders
            )),
        );
        let (customers, page) = (customers?, page?);
        let orders = page["data"].as_array().cloned().unwrap_or_default();
        let mut skus: Vec<&str> = orders
            .iter()
            .flat_map(|o| o["items"].as_array().into_iter().flatten())
            .filter_map(|i| i["sku"].as_str())
            .collect();
        skus.sort_unstable();
        skus.dedup();
        // The inventory takes at most 100 SKUs per call: larger sets go in concurrent calls.
        let calls: Vec<&[&str]> = if with_stock {
            skus.chunks(100).collect()
        } else {
            Vec::new()
        };
        let pages = futures_util::future::try_join_all(calls.into_iter().map(|chunk| {
            self.get(format!(
                "{}/inventory?skus={}",
                self.inventory,
                chunk.join(",")
            ))
        }))
        .await?;
        let levels: std::collections::HashMap<&str, &Value> = pages
            .iter()
            .flat_map(|page| page["data"].as_array().into_iter().flatten())
            .filter_map(|level| Some((level["sku"].as_str()?, &level["available"])))
            .collect();
        let available = |sku: &str| levels.get(sku).map_or(Value::Null, |v| (*v).clone());
        let body = json!({
            "name": customers["data"][0]["name"],
            "orders": orders.iter().map(|o| json!({
                "id": o["id"], "status": o["status"], "total_cents": o["total_cents"],
                "items": o["items"].as_array().into_iter().flatten().map(|i| json!({
                    "sku": i["sku"], "quantity": i["quantity"],
                    "available": i["sku"].as_str().map(available),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        Ok(serde_json::to_vec(&body)?)
    }

    async fn readings(&self, device: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let message = iot_bff::message::decode(body, &iot_bff::message::Limits::default())?;
        anyhow::ensure!(message.device_id == device, "wrong device");
        let observed = time_of(message.timestamp);
        let batch = json!({
            "device_id": message.device_id, "warehouse_id": message.warehouse_id,
            "readings": message.readings.iter().map(|r| json!({
                "sku": r.sku, "quantity": r.quantity,
                "observed_at": observed.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            })).collect::<Vec<_>>(),
        });
        let ack: Value = self
            .http
            .post(format!("{}/inventory/readings", self.inventory))
            .header(
                "idempotency-key",
                format!("reading:{device}:{}", message.seq),
            )
            .json(&batch)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let ack = iot_bff::message::Ack {
            accepted: ack["accepted"].as_u64().unwrap_or(0) as u32,
            rejected: Vec::new(),
            low_stock: Vec::new(),
            next_poll_secs: 60,
        };
        Ok(ack.to_cbor())
    }

    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Reply {
        let principal = match self.auth.authenticate(request.headers()).await {
            Ok(principal) => principal,
            Err(_) => return reply(StatusCode::UNAUTHORIZED, Vec::new()),
        };
        let result = match self.kind {
            FloorKind::Web(n) => self.dashboard(&principal.subject, n, true).await,
            FloorKind::Mobile => self.dashboard(&principal.subject, 5, false).await,
            FloorKind::Iot => match request.into_body().collect().await {
                Ok(body) => self.readings(&principal.subject, &body.to_bytes()).await,
                Err(error) => Err(error.into()),
            },
        };
        match result {
            Ok(body) => reply(StatusCode::OK, body),
            Err(_) => reply(StatusCode::BAD_GATEWAY, Vec::new()),
        }
    }
}

fn time_of(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Serves the floor for `kind` on `listener` forever.
pub async fn serve(
    kind: FloorKind,
    listener: TcpListener,
    upstreams: &UpstreamsConfig,
    auth: &AuthConfig,
) -> anyhow::Result<()> {
    let auth = Authenticator::new(auth)?;
    auth.prime().await?;
    let floor = Arc::new(Floor {
        kind,
        auth,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?,
        customers: upstreams.customers.url.clone(),
        orders: upstreams.orders.url.clone(),
        inventory: upstreams.inventory.url.clone(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let floor = Arc::clone(&floor);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let floor = Arc::clone(&floor);
                async move { Ok::<_, Infallible>(floor.handle(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
