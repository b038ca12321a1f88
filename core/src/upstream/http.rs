//! The HTTP clients: the reqwest implementation of the upstream traits.
//!
//! One pooled client per upstream for the life of the process. Responses are decoded
//! straight into domain structs; anything else (connect errors, 5xx, bodies that do not
//! match the contract) becomes a classified [`UpstreamError`].

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{Either, try_join_all};
use http::{HeaderName, HeaderValue, Method};
use reqwest::{Client, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::{
    CustomersApi, InventoryApi, OrdersApi, OrdersQuery, Service, UpstreamError, UpstreamResult,
};
use super::config::UpstreamConfig;
use super::guard::{AttemptResult, BreakerState, Guard};
use super::scope::DEADLINE_HEADER;
use crate::config::{ConfigError, validate_http_url};
use crate::domain::{Customer, Order, Page, ReadingsAck, ReadingsBatch, StockLevel};
use crate::metrics::RequestRecord;
use crate::trace_context::{FinishedSpan, SpanKind, TRACEPARENT, TRACESTATE};

/// Most ids the upstream batch endpoints accept in one call; larger sets are split.
pub const MAX_IDS_PER_CALL: usize = 100;

/// The authenticated consumer (the principal's subject) the call is made for.
pub const CONSUMER_ID_HEADER: &str = "x-consumer-id";

/// Header that makes a write safe to repeat (IETF `draft-ietf-httpapi-idempotency-key-header`).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Largest upstream response body accepted, so a runaway upstream cannot exhaust memory.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// `{"data": [...]}`, the envelope of every batch endpoint.
#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: Vec<T>,
}

/// The names of the headers set per attempt, made once: a `&str` name is parsed and
/// checked each time it is inserted.
/// The request id, forwarded so an upstream's logs can be joined with ours.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const CONSUMER_ID: HeaderName = HeaderName::from_static(CONSUMER_ID_HEADER);
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(IDEMPOTENCY_KEY_HEADER);
const DEADLINE: HeaderName = HeaderName::from_static(DEADLINE_HEADER);
const TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
const TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);

/// What reqwest's decompression layer (the `gzip` feature) would add to each request. Set
/// by us with the others, so the header map reqwest copies is complete and not grown again.
const ACCEPT_GZIP: HeaderValue = HeaderValue::from_static("gzip");

/// Room for every header an upstream request carries: ours (at most 10, a POST with a trace
/// state), and the user agent reqwest adds before it copies the map.
const UPSTREAM_HEADERS: usize = 12;

/// A base URL, a pooled client and the resilience guard of one upstream service.
#[derive(Clone)]
struct HttpUpstream {
    service: Service,
    base: Url,
    /// `Host` for `base`, as the HTTP client would write it for each request.
    host: HeaderValue,
    /// The connection pools: the first for callers off the connection workers, then one per
    /// worker, so that a worker's requests go out on connections its own runtime drives
    /// (see `server::Workers`).
    clients: Arc<[Client]>,
    guard: Arc<Guard>,
}

impl HttpUpstream {
    fn new(service: Service, config: &UpstreamConfig) -> Result<Self, ConfigError> {
        let key = format!("upstreams.{service}.url");
        let base = validate_http_url(&key, &config.url)?;
        let host = host_header(&base)
            .ok_or_else(|| ConfigError::invalid(key.clone(), "the URL needs a host"))?;
        // No client-wide timeout: `send` bounds each attempt, body included, with the
        // guard's timeout (a timeout here would be a second timer, boxed, per call).
        let pools = 1 + crate::server::Workers::installed().map_or(0, |workers| workers.len());
        let clients = (0..pools)
            .map(|_| {
                Client::builder()
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                    .pool_max_idle_per_host(config.pool_max_idle_per_host)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
                    // Retries are the guard's, under its budget, never reqwest's own as well:
                    // and with no retries reqwest does not copy each request in case it
                    // retries.
                    .retry(reqwest::retry::never().max_retries_per_request(0))
                    // An upstream is a fixed address: a redirect means it is misconfigured,
                    // and following it would send the consumer's id, the request id and the
                    // trace to wherever it points (reqwest strips only credentials across
                    // hosts).
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
            })
            .collect::<Result<Arc<[Client]>, _>>()
            .map_err(|e| ConfigError::invalid(key, format!("cannot build an HTTP client: {e}")))?;
        let guard = Guard::new(
            service,
            Duration::from_millis(config.timeout_ms),
            &config.breaker,
            &config.retry,
            config.max_in_flight,
        );
        Ok(Self {
            service,
            base,
            host,
            clients,
            guard: Arc::new(guard),
        })
    }

    /// The connection pool of the caller's worker (the shared one off the workers).
    fn client(&self) -> &Client {
        crate::server::current_worker()
            .and_then(|worker| self.clients.get(worker + 1))
            .unwrap_or(&self.clients[0])
    }

    /// `base` with `segments` appended, each percent-encoded (ids cannot escape their segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("config validation only admits http(s) URLs, which have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// GETs `url` through the guard (deadline, breaker, bulkhead, retry) and decodes it.
    async fn get_json<T: DeserializeOwned + Send>(
        &self,
        url: Url,
        query: &[(&str, &str)],
    ) -> UpstreamResult<T> {
        self.guard
            .run(true, |timeout, budget| {
                let mut url = url.clone();
                if !query.is_empty() {
                    url.query_pairs_mut().extend_pairs(query);
                }
                let request = self.request(Method::GET, url);
                self.attempt(request, timeout, budget)
            })
            .await
    }

    /// POSTs `body` as JSON with an `Idempotency-Key`, through the guard. The key is what
    /// makes a retry safe, so the call is treated as idempotent.
    async fn post_json<B: Serialize, T: DeserializeOwned + Send>(
        &self,
        url: Url,
        idempotency_key: &str,
        body: &B,
    ) -> UpstreamResult<T> {
        // Shared bytes: each attempt sends them without a copy.
        let body = axum::body::Bytes::from(serde_json::to_vec(body).map_err(|e| {
            UpstreamError::Malformed {
                service: self.service,
                detail: format!("cannot encode the request: {e}"),
            }
        })?);
        let idempotency_key =
            HeaderValue::from_str(idempotency_key).map_err(|_| UpstreamError::Malformed {
                service: self.service,
                detail: "the idempotency key is not a valid header value".into(),
            })?;
        self.guard
            .run(true, |timeout, budget| {
                let mut request = self.request(Method::POST, url.clone());
                let headers = request.headers_mut();
                headers.insert(IDEMPOTENCY_KEY, idempotency_key.clone());
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                *request.body_mut() = Some(body.clone().into());
                self.attempt(request, timeout, budget)
            })
            .await
    }

    /// A request to `url` with the headers every upstream request carries, in a map sized
    /// for all of them (reqwest copies it, and a copy has no room to grow into).
    fn request(&self, method: Method, url: Url) -> reqwest::Request {
        let mut request = reqwest::Request::new(method, url);
        let headers = request.headers_mut();
        headers.reserve(UPSTREAM_HEADERS);
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(http::header::ACCEPT_ENCODING, ACCEPT_GZIP);
        request
    }

    /// One try of a request, with the headers of the request it is made for; a span of
    /// its own when the request keeps spans.
    ///
    /// The request is handed to reqwest here, before the first poll: what is awaited is
    /// reqwest's boxed exchange, not a request moved from one future into the next.
    fn attempt<'a, T: DeserializeOwned + Send + 'a>(
        &'a self,
        mut request: reqwest::Request,
        timeout: Duration,
        budget: Option<Duration>,
    ) -> impl Future<Output = AttemptResult<T>> + Send + 'a {
        let headers = request.headers_mut();
        if let Some(budget) = budget {
            headers.insert(DEADLINE, HeaderValue::from(budget.as_millis() as u64));
        }
        // Only what upstreams need (DESIGN.md "Header hygiene"): nothing the client sent is
        // forwarded; the consumer is the authenticated principal, never a client header.
        let identity = RequestRecord::identity();
        if let Some(id) = identity.request_id {
            headers.insert(REQUEST_ID, id);
        }
        if let Some(consumer) = identity.consumer {
            headers.insert(CONSUMER_ID, consumer);
        }
        let Some(trace) = identity.trace else {
            return Either::Left(self.send(self.client().execute(request), timeout));
        };
        // Each attempt is a span of its own, a child of the request's.
        let (span_id, traceparent) = trace.child();
        if let Ok(traceparent) = HeaderValue::try_from(traceparent) {
            headers.insert(TRACEPARENT_NAME, traceparent);
        }
        if let Some(state) = trace.tracestate() {
            headers.insert(TRACESTATE_NAME, state.clone());
        }
        if !identity.keeps_spans {
            return Either::Left(self.send(self.client().execute(request), timeout));
        }
        let (method, url) = (request.method().to_string(), request.url().to_string());
        let response = self.client().execute(request);
        let traced: Pin<Box<dyn Future<Output = AttemptResult<T>> + Send + 'a>> =
            Box::pin(async move {
                let start = std::time::SystemTime::now();
                let result = self.send(response, timeout).await;
                let end = std::time::SystemTime::now();
                let outcome = match &result {
                    Ok(_) => "ok".to_owned(),
                    Err((error, _)) => error.to_string(),
                };
                RequestRecord::note_span(FinishedSpan {
                    span_id,
                    parent_span_id: Some(trace.span_id_bytes()),
                    parent_is_remote: false,
                    kind: SpanKind::Client,
                    name: format!("{method} {}", self.service),
                    start,
                    end,
                    attributes: vec![
                        ("http.request.method", method),
                        ("url.full", url),
                        ("switchyard.service", self.service.as_str().to_owned()),
                        ("switchyard.outcome", outcome),
                    ],
                    failed: result.is_err(),
                });
                result
            });
        Either::Right(traced)
    }

    /// Awaits one attempt's `response` (reqwest's pending exchange), its body read within
    /// `timeout` as well: classifies the outcome and reports any `Retry-After`.
    async fn send<T: DeserializeOwned>(
        &self,
        response: impl Future<Output = reqwest::Result<reqwest::Response>>,
        timeout: Duration,
    ) -> AttemptResult<T> {
        match tokio::time::timeout(timeout, self.exchange(response)).await {
            Ok(result) => result,
            Err(_elapsed) => Err((
                UpstreamError::Timeout {
                    service: self.service,
                },
                None,
            )),
        }
    }

    /// One request's response and body, classified.
    async fn exchange<T: DeserializeOwned>(
        &self,
        response: impl Future<Output = reqwest::Result<reqwest::Response>>,
    ) -> AttemptResult<T> {
        let service = self.service;
        let response = response
            .await
            .map_err(|e| (self.transport_error(&e), None))?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => return Err((UpstreamError::NotFound { service }, None)),
            // Not followed (see the client): the service is not answering where it is
            // configured, which is an outage of it, not the caller's fault.
            status if status.is_redirection() => {
                let error = UpstreamError::Unavailable {
                    service,
                    detail: format!("status {status}: redirects are not followed"),
                };
                return Err((error, None));
            }
            status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = retry_after(response.headers());
                let error = UpstreamError::Unavailable {
                    service,
                    detail: format!("status {status}"),
                };
                return Err((error, retry_after));
            }
            status => {
                let error = UpstreamError::Rejected {
                    service,
                    status: status.as_u16(),
                };
                return Err((error, None));
            }
        }
        let too_large = || UpstreamError::Malformed {
            service,
            detail: "response body over the size limit".into(),
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err((too_large(), None));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| (self.transport_error(&e), None))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err((too_large(), None));
        }
        serde_json::from_slice(&body).map_err(|e| {
            let error = UpstreamError::Malformed {
                service,
                detail: e.to_string(),
            };
            (error, None)
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> UpstreamError {
        let service = self.service;
        if error.is_timeout() {
            UpstreamError::Timeout { service }
        } else if error.is_connect() {
            UpstreamError::Unavailable {
                service,
                detail: "connection failed".into(),
            }
        } else {
            UpstreamError::Unavailable {
                service,
                detail: error.to_string(),
            }
        }
    }

    async fn get_one<T: DeserializeOwned + Send>(
        &self,
        collection: &str,
        id: &str,
    ) -> UpstreamResult<T> {
        self.get_json(self.url(&[collection, id]), &[]).await
    }

    /// Fetches `ids` from `GET /{collection}?{param}=a,b,c`, deduplicated and split into
    /// calls of at most [`MAX_IDS_PER_CALL`] ids that run concurrently.
    async fn get_batch<T: DeserializeOwned + Send>(
        &self,
        collection: &str,
        param: &str,
        ids: &[String],
    ) -> UpstreamResult<Vec<T>> {
        let mut seen = HashSet::with_capacity(ids.len());
        let unique: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let url = self.url(&[collection]);
        if unique.len() <= MAX_IDS_PER_CALL {
            // One call, the usual case: no join to set up.
            let joined = unique.join(",");
            let envelope: DataEnvelope<T> = self.get_json(url, &[(param, &joined)]).await?;
            return Ok(envelope.data);
        }
        let calls = unique.chunks(MAX_IDS_PER_CALL).map(|chunk| {
            let joined = chunk.join(",");
            let url = url.clone();
            async move {
                let envelope: DataEnvelope<T> = self.get_json(url, &[(param, &joined)]).await?;
                Ok::<_, UpstreamError>(envelope.data)
            }
        });
        let pages = try_join_all(calls).await?;
        Ok(pages.into_iter().flatten().collect())
    }
}

/// The `Host` header of requests to `base`: its host, and its port unless the scheme's
/// default (as hyper writes it when a request has none).
fn host_header(base: &Url) -> Option<HeaderValue> {
    let host = base.host_str()?;
    let value = match base.port() {
        Some(port) => HeaderValue::try_from(format!("{host}:{port}")),
        None => HeaderValue::try_from(host),
    };
    value.ok()
}

/// `Retry-After` in delta-seconds form (the HTTP-date form is ignored: upstreams use seconds).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// HTTP client of the customers service.
#[derive(Clone)]
pub struct HttpCustomers(HttpUpstream);

impl HttpCustomers {
    /// A client for the configured customers service.
    pub fn new(config: &UpstreamConfig) -> Result<Self, ConfigError> {
        HttpUpstream::new(Service::Customers, config).map(Self)
    }

    /// The guard every call of this client passes through (its breaker state is what
    /// readiness reports).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.0.guard
    }

    /// The state of the circuit breaker in front of the service.
    pub fn breaker_state(&self) -> BreakerState {
        self.0.guard.breaker_state()
    }
}

#[async_trait]
impl CustomersApi for HttpCustomers {
    async fn customer(&self, id: &str) -> UpstreamResult<Customer> {
        self.0.get_one("customers", id).await
    }

    async fn customers(&self, ids: &[String]) -> UpstreamResult<Vec<Customer>> {
        self.0.get_batch("customers", "ids", ids).await
    }
}

/// HTTP client of the orders service.
#[derive(Clone)]
pub struct HttpOrders(HttpUpstream);

impl HttpOrders {
    /// A client for the configured orders service.
    pub fn new(config: &UpstreamConfig) -> Result<Self, ConfigError> {
        HttpUpstream::new(Service::Orders, config).map(Self)
    }

    /// The guard every call of this client passes through (its breaker state is what
    /// readiness reports).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.0.guard
    }

    /// The state of the circuit breaker in front of the service.
    pub fn breaker_state(&self) -> BreakerState {
        self.0.guard.breaker_state()
    }
}

#[async_trait]
impl OrdersApi for HttpOrders {
    async fn order(&self, id: &str) -> UpstreamResult<Order> {
        self.0.get_one("orders", id).await
    }

    async fn orders_by_ids(&self, ids: &[String]) -> UpstreamResult<Vec<Order>> {
        self.0.get_batch("orders", "ids", ids).await
    }

    async fn list_orders(&self, query: &OrdersQuery) -> UpstreamResult<Page<Order>> {
        let limit = query.limit.to_string();
        let mut params: Vec<(&str, &str)> = vec![("limit", &limit)];
        if let Some(customer_id) = &query.customer_id {
            params.push(("customer_id", customer_id));
        }
        if let Some(status) = query.status {
            params.push(("status", status.as_str()));
        }
        if let Some(cursor) = &query.cursor {
            params.push(("cursor", cursor));
        }
        self.0.get_json(self.0.url(&["orders"]), &params).await
    }
}

/// HTTP client of the inventory service.
#[derive(Clone)]
pub struct HttpInventory(HttpUpstream);

impl HttpInventory {
    /// A client for the configured inventory service.
    pub fn new(config: &UpstreamConfig) -> Result<Self, ConfigError> {
        HttpUpstream::new(Service::Inventory, config).map(Self)
    }

    /// The guard every call of this client passes through (its breaker state is what
    /// readiness reports).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.0.guard
    }

    /// The state of the circuit breaker in front of the service.
    pub fn breaker_state(&self) -> BreakerState {
        self.0.guard.breaker_state()
    }
}

#[async_trait]
impl InventoryApi for HttpInventory {
    async fn stock_level(&self, sku: &str) -> UpstreamResult<StockLevel> {
        self.0.get_one("inventory", sku).await
    }

    async fn stock_levels(&self, skus: &[String]) -> UpstreamResult<Vec<StockLevel>> {
        self.0.get_batch("inventory", "skus", skus).await
    }

    async fn post_readings(
        &self,
        idempotency_key: &str,
        batch: &ReadingsBatch,
    ) -> UpstreamResult<ReadingsAck> {
        let url = self.0.url(&["inventory", "readings"]);
        self.0.post_json(url, idempotency_key, batch).await
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::*;

    /// Answers a batch call with one stock level per requested SKU.
    struct EchoStock;

    impl Respond for EchoStock {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let skus = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "skus")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let data: Vec<_> = skus
                .split(',')
                .map(|sku| {
                    serde_json::json!({"sku": sku, "name": "x", "available": 1, "reserved": 0,
                        "warehouse_id": "wh-1", "updated_at": "2026-01-01T00:00:00Z"})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "data": data }))
        }
    }

    fn client(server: &MockServer) -> HttpInventory {
        HttpInventory::new(&UpstreamConfig {
            url: server.uri(),
            ..UpstreamConfig::default()
        })
        .expect("valid config")
    }

    #[tokio::test]
    async fn large_batches_are_deduplicated_and_split_into_calls_of_at_most_100() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/inventory"))
            .respond_with(EchoStock)
            .expect(3)
            .mount(&server)
            .await;
        let mut skus: Vec<String> = (0..250).map(|n| format!("SKU-{n}")).collect();
        skus.extend(skus.clone());
        let levels = client(&server).stock_levels(&skus).await.expect("served");
        assert_eq!(levels.len(), 250);
        let requests = server.received_requests().await.expect("recorded");
        let mut sizes: Vec<usize> = requests
            .iter()
            .map(|r| {
                r.url
                    .query_pairs()
                    .find(|(k, _)| k == "skus")
                    .map_or(0, |(_, v)| v.split(',').count())
            })
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![50, 100, 100]);
    }

    #[tokio::test]
    async fn requests_carry_host_accept_and_encoding_once() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/inventory"))
            .respond_with(EchoStock)
            .mount(&server)
            .await;
        client(&server)
            .stock_levels(&["SKU-1".to_owned()])
            .await
            .expect("served");
        let requests = server.received_requests().await.expect("recorded");
        let headers = &requests[0].headers;
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        let authority = server.address().to_string();
        assert_eq!(all("host"), [authority.as_str()]);
        assert_eq!(all("accept"), ["application/json"]);
        assert_eq!(all("accept-encoding"), ["gzip"]);
        assert_eq!(requests[0].url.query(), Some("skus=SKU-1"));
    }

    #[tokio::test]
    async fn a_redirect_is_an_outage_and_is_not_followed() {
        let elsewhere = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(EchoStock)
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/inventory"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/inventory", elsewhere.uri())),
            )
            .mount(&server)
            .await;
        let error = client(&server)
            .stock_levels(&["SKU-1".to_owned()])
            .await
            .expect_err("a redirect is not an answer");
        assert!(
            matches!(&error, UpstreamError::Unavailable { detail, .. } if detail.contains("302")),
            "{error:?}"
        );
        assert!(
            !server
                .received_requests()
                .await
                .expect("recorded")
                .is_empty()
        );
        assert_eq!(
            elsewhere.received_requests().await.map(|r| r.len()),
            Some(0),
            "nothing is sent where the redirect points"
        );
    }

    #[test]
    fn the_host_header_leaves_out_default_ports_and_keeps_ipv6_brackets() {
        let host = |url: &str| host_header(&Url::parse(url).expect("url")).expect("host");
        assert_eq!(host("http://127.0.0.1:8081/x"), "127.0.0.1:8081");
        assert_eq!(host("http://orders.internal/"), "orders.internal");
        assert_eq!(host("https://orders.internal:443/"), "orders.internal");
        assert_eq!(host("http://[::1]:9000/"), "[::1]:9000");
    }

    #[tokio::test]
    async fn an_empty_batch_makes_no_call() {
        let server = MockServer::start().await;
        let levels = client(&server)
            .stock_levels(&[])
            .await
            .expect("nothing to do");
        assert!(levels.is_empty());
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(0));
    }

    #[tokio::test]
    async fn ids_cannot_escape_their_path_segment() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/inventory/..%2Fadmin%3Fx=1"))
            .respond_with(ResponseTemplate::new(404))
            .expect(1)
            .mount(&server)
            .await;
        let error = client(&server)
            .stock_level("../admin?x=1")
            .await
            .expect_err("404");
        assert!(matches!(error, UpstreamError::NotFound { .. }));
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/inventory/a"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/inventory/b"))
            .respond_with(ResponseTemplate::new(400))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/inventory/c"))
            .respond_with(ResponseTemplate::new(200).set_body_string("[1,2"))
            .mount(&server)
            .await;
        let inventory = client(&server);
        let code = |r: UpstreamResult<StockLevel>| r.expect_err("fails").code();
        use crate::ErrorCode::*;
        assert_eq!(code(inventory.stock_level("a").await), UpstreamUnavailable);
        assert_eq!(code(inventory.stock_level("b").await), BadRequest);
        assert_eq!(code(inventory.stock_level("c").await), UpstreamUnavailable);
    }

    #[tokio::test]
    async fn a_slow_upstream_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let inventory = HttpInventory::new(&UpstreamConfig {
            url: server.uri(),
            timeout_ms: 100,
            ..UpstreamConfig::default()
        })
        .expect("valid config");
        let error = inventory.stock_level("a").await.expect_err("times out");
        assert!(matches!(error, UpstreamError::Timeout { .. }), "{error:?}");
        assert_eq!(error.code(), crate::ErrorCode::UpstreamTimeout);
    }
}
