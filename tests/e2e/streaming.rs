//! Live order updates end to end: the sandbox's orders service as the event source (the
//! embedded default), the BFFs over real sockets, SSE and WebSocket clients.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::bff::{App, BffConfig as _};
use switchyard_sandbox::events::OrderEvent;
use switchyard_sandbox::{Sandbox, SandboxOptions, TokenRequest};
use switchyard_tests::MetricsScrape;
use switchyard_tests::stream::{SseClient, WsClient, WsReceived};
use tokio::sync::oneshot;

pub(crate) const WITHIN: Duration = Duration::from_secs(1);

pub(crate) async fn sandbox() -> Sandbox {
    Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts")
}

/// A mobile BFF on the sandbox, adjusted by `adjust`, with a shutdown the test triggers.
pub(crate) async fn mobile(
    sandbox: &Sandbox,
    adjust: impl FnOnce(&mut mobile_bff::MobileConfig),
) -> (SocketAddr, oneshot::Sender<()>) {
    let mut config = mobile_bff::MobileConfig::default();
    config.log.access = false;
    adjust(&mut config);
    serve::<mobile_bff::MobileBff>(sandbox, config).await
}

/// A web BFF on the sandbox, adjusted by `adjust`, with a shutdown the test triggers.
pub(crate) async fn web(
    sandbox: &Sandbox,
    adjust: impl FnOnce(&mut web_bff::WebConfig),
) -> (SocketAddr, oneshot::Sender<()>) {
    let mut config = web_bff::WebConfig::default();
    config.log.access = false;
    adjust(&mut config);
    serve::<web_bff::WebBff>(sandbox, config).await
}

async fn serve<B: switchyard_core::bff::Bff>(
    sandbox: &Sandbox,
    mut config: B::Config,
) -> (SocketAddr, oneshot::Sender<()>) {
    *config.upstreams_mut() = sandbox.upstreams_config();
    config.auth_mut().jwks_url = Some(sandbox.jwks_url());
    let app = App::<B>::new(&config).expect("the BFF wires");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

pub(crate) fn token(sandbox: &Sandbox, sub: &str) -> String {
    sandbox.issuer.mint(&TokenRequest {
        sub: sub.to_owned(),
        ..TokenRequest::default()
    })
}

pub(crate) fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// Status changes `customer`'s orders can still make.
fn room(sandbox: &Sandbox, customer: &str) -> usize {
    use switchyard_core::domain::OrderStatus as S;
    sandbox
        .data
        .orders_of(customer)
        .iter()
        .map(|&i| match sandbox.data.orders[i].status {
            S::Pending => 3,
            S::Paid => 2,
            S::Shipped => 1,
            S::Delivered | S::Cancelled => 0,
        })
        .sum()
}

/// Two customers whose orders can change at least 8 times each: the one the tests sign
/// in as, and another.
pub(crate) fn customers(sandbox: &Sandbox) -> (String, String) {
    let mut busy = (1..=5_000)
        .map(|n| format!("cus_{n:05}"))
        .filter(|c| room(sandbox, c) >= 8);
    let me = busy.next().expect("a customer with room to change");
    let other = busy.next().expect("another");
    (me, other)
}

/// Advances one of `customer`'s orders that can still advance.
pub(crate) fn advance(sandbox: &Sandbox, customer: &str) -> OrderEvent {
    sandbox
        .data
        .orders_of(customer)
        .iter()
        .find_map(|&i| sandbox.activity.advance(&sandbox.data.orders[i].id).ok())
        .expect("an order of the customer that can advance")
}

/// A mobile SSE stream and a mobile WebSocket for `token`, both open.
async fn mobile_streams(addr: &str, token: &str) -> (SseClient, WsClient) {
    let stream = SseClient::open(addr, "/v2/orders/stream", &bearer(token)).await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    let socket = WsClient::connect(
        &format!("ws://{addr}/v2/orders/stream"),
        &bearer(token),
        None,
    )
    .await
    .expect("upgrade");
    (stream, socket)
}

pub(crate) fn assert_compact(event: &Value, expected: &OrderEvent) {
    let object = event.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["at", "id", "orderId", "previousStatus", "status"]);
    assert_eq!(event["orderId"], expected.order_id.as_str());
    assert_eq!(event["status"], expected.status.as_str());
    assert_eq!(event["previousStatus"], expected.previous_status.as_str());
}

#[tokio::test]
async fn mobile_sse_delivers_the_customers_own_events_in_compact_form() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let token = token(&sandbox, &me);
    let mut stream = SseClient::open(&addr.to_string(), "/v2/orders/stream", &bearer(&token)).await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    assert!(stream.head.contains("content-type: text/event-stream"));
    assert!(stream.head.contains("cache-control: no-store"));
    // Another customer's change first: it must not arrive, and the own one must.
    advance(&sandbox, &other);
    let own = advance(&sandbox, &me);
    let event = stream
        .next_event(WITHIN)
        .await
        .expect("an event within 1 s");
    assert_eq!(event.event, "order");
    let body = event.json();
    assert_compact(&body, &own);
    assert_eq!(
        event.id.as_deref(),
        body["id"].as_str(),
        "the id is the cursor"
    );
}

#[tokio::test]
async fn mobile_websocket_delivers_the_same_events_and_only_the_customers() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let token = token(&sandbox, &me);
    let mut socket = WsClient::connect(
        &format!("ws://{addr}/v2/orders/stream"),
        &bearer(&token),
        None,
    )
    .await
    .expect("the upgrade is accepted");
    advance(&sandbox, &other);
    let own = advance(&sandbox, &me);
    let event = socket.receive_json(WITHIN).await;
    assert_compact(&event, &own);
    // Without a token there is no upgrade.
    let refused = WsClient::connect(&format!("ws://{addr}/v2/orders/stream"), &[], None).await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(401));
}

#[tokio::test]
async fn a_client_resuming_with_its_last_id_gets_exactly_what_it_missed_in_order() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let token = token(&sandbox, &me);
    let addr = addr.to_string();
    let mut stream = SseClient::open(&addr, "/v2/orders/stream", &bearer(&token)).await;
    advance(&sandbox, &me);
    let seen = stream.events("order", 1).await.remove(0);
    drop(stream);
    let mut missed = Vec::new();
    for n in 0..5 {
        missed.push(advance(&sandbox, &me));
        if n == 2 {
            advance(&sandbox, &other);
        }
    }
    // SSE with Last-Event-ID.
    let mut headers = bearer(&token);
    headers.push(("last-event-id", seen.id.clone().expect("an id")));
    let mut resumed = SseClient::open(&addr, "/v2/orders/stream", &headers).await;
    let replayed = resumed.events("order", 5).await;
    for (event, expected) in replayed.iter().zip(&missed) {
        assert_compact(&event.json(), expected);
    }
    // Then live, with nothing in between.
    let live = advance(&sandbox, &me);
    let next = resumed.next_event(WITHIN).await.expect("the live event");
    assert_compact(&next.json(), &live);
    // The WebSocket resumes with `?after=` the same way.
    let after = replayed[1].id.clone().expect("an id");
    let mut socket = WsClient::connect(
        &format!("ws://{addr}/v2/orders/stream?after={after}"),
        &bearer(&token),
        None,
    )
    .await
    .expect("upgrade");
    for expected in missed[2..].iter().chain([&live]) {
        assert_compact(&socket.receive_json(WITHIN).await, expected);
    }
}

#[tokio::test]
async fn a_cursor_older_than_the_retained_events_gets_one_reset_then_live_events() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |config| config.events.replay_events = 3).await;
    let token = token(&sandbox, &me);
    let addr = addr.to_string();
    let mut stream = SseClient::open(&addr, "/v2/orders/stream", &bearer(&token)).await;
    advance(&sandbox, &me);
    let first = stream.events("order", 1).await.remove(0);
    for _ in 0..5 {
        advance(&sandbox, &me);
    }
    stream.events("order", 5).await;
    let mut headers = bearer(&token);
    headers.push(("last-event-id", first.id.expect("an id")));
    let mut resumed = SseClient::open(&addr, "/v2/orders/stream", &headers).await;
    let reset = resumed.next_event(WITHIN).await.expect("a reset");
    assert_eq!(reset.event, "reset");
    let live = advance(&sandbox, &me);
    let next = resumed.next_event(WITHIN).await.expect("a live event");
    assert_eq!(next.event, "order", "one reset, then live events");
    assert_compact(&next.json(), &live);
}

#[tokio::test]
async fn bad_requests_for_a_stream_are_refused_before_anything_streams() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let addr = addr.to_string();
    let token = token(&sandbox, &me);
    let no_orders = sandbox.issuer.mint(&TokenRequest {
        sub: me.clone(),
        scope: "data:customers:read".to_owned(),
        ..TokenRequest::default()
    });
    let mut bad_cursor = bearer(&token);
    bad_cursor.push(("last-event-id", "42".to_owned()));
    for (headers, expected, code) in [
        (Vec::new(), 401, "UNAUTHENTICATED"),
        (bearer("not-a-token"), 401, "UNAUTHENTICATED"),
        (bearer(&no_orders), 403, "FORBIDDEN"),
        (bad_cursor, 400, "BAD_REQUEST"),
    ] {
        let refused = SseClient::open(&addr, "/v2/orders/stream", &headers).await;
        assert_eq!(refused.status, expected, "{}", refused.head);
        assert!(refused.head.contains("application/problem+json"));
        assert!(refused.body().await.contains(code));
    }
}

#[tokio::test]
async fn the_sixth_stream_of_a_consumer_is_refused_and_a_closed_one_frees_its_place() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let addr = addr.to_string();
    let token = token(&sandbox, &me);
    let mut open = Vec::new();
    for _ in 0..5 {
        let stream = SseClient::open(&addr, "/v2/orders/stream", &bearer(&token)).await;
        assert_eq!(stream.status, 200);
        open.push(stream);
    }
    let sixth = SseClient::open(&addr, "/v2/orders/stream", &bearer(&token)).await;
    assert_eq!(sixth.status, 429, "{}", sixth.head);
    assert!(sixth.body().await.contains("RATE_LIMITED"));
    let websocket = WsClient::connect(
        &format!("ws://{addr}/v2/orders/stream"),
        &bearer(&token),
        None,
    )
    .await;
    assert_eq!(websocket.err().map(|(status, _)| status), Some(429));
    // Another consumer is not affected.
    let other = self::token(&sandbox, &other);
    let theirs = SseClient::open(&addr, "/v2/orders/stream", &bearer(&other)).await;
    assert_eq!(theirs.status, 200);
    drop(open.pop());
    // The BFF notices the closed connection when it next writes to it.
    advance(&sandbox, &me);
    let mut reopened = None;
    for _ in 0..50 {
        let stream = SseClient::open(&addr, "/v2/orders/stream", &bearer(&token)).await;
        if stream.status == 200 {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a place is free again");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |_| {}).await;
    let addr = addr.to_string();
    let short = sandbox.issuer.mint(&TokenRequest {
        sub: me.clone(),
        ttl: 2,
        ..TokenRequest::default()
    });
    let (mut stream, mut socket) = mobile_streams(&addr, &short).await;
    let end = stream
        .next_event(Duration::from_secs(4))
        .await
        .expect("an expiry event");
    assert_eq!(end.event, "expired");
    assert!(stream.ends_within(WITHIN).await, "then the stream ends");
    match socket.receive(Duration::from_secs(4)).await {
        WsReceived::Closed(code, reason) => {
            assert_eq!(code, 4401);
            assert!(reason.contains("expired"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn on_shutdown_streams_are_told_to_reconnect() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, stop) = mobile(&sandbox, |config| config.streams.reconnect_after_ms = 2500).await;
    let addr = addr.to_string();
    let token = token(&sandbox, &me);
    let (mut stream, mut socket) = mobile_streams(&addr, &token).await;
    stop.send(()).expect("the BFF is serving");
    let goodbye = stream
        .next_event(Duration::from_secs(2))
        .await
        .expect("a goodbye");
    assert_eq!(goodbye.event, "shutdown");
    assert_eq!(goodbye.retry, Some(2500));
    assert!(stream.ends_within(WITHIN).await);
    assert_eq!(
        socket.receive(Duration::from_secs(2)).await,
        WsReceived::Closed(1012, "server restarting; reconnect".to_owned())
    );
}

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |config| config.streams.heartbeat_secs = 1).await;
    let addr = addr.to_string();
    let token = token(&sandbox, &me);
    let (mut stream, mut socket) = mobile_streams(&addr, &token).await;
    assert!(
        socket.pinged_within(Duration::from_secs(3)).await,
        "a WebSocket ping"
    );
    // A comment is no event: reading for one more event sees the ping go by first.
    advance(&sandbox, &me);
    let _ = stream.next_event(Duration::from_secs(3)).await;
    assert!(stream.comments >= 1, "an SSE `: ping`");
}

// --- web: graphql-transport-ws and GraphQL over SSE -------------------------------------

const ORDER_UPDATED: &str = "subscription($id: ID, $after: String) { orderUpdated(orderId: $id, after: $after) { id status previousStatus occurredAt order { id status items { sku stock { available } } } } }";

/// A graphql-transport-ws connection, initialised with `token` in `connection_init`.
pub(crate) async fn graphql_ws(addr: SocketAddr, token: &str) -> WsClient {
    let mut socket = WsClient::connect(
        &format!("ws://{addr}/graphql/ws"),
        &[],
        Some("graphql-transport-ws"),
    )
    .await
    .expect("upgrade");
    socket
        .send_json(&json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
        .await;
    assert_eq!(
        socket.receive_json(WITHIN).await,
        json!({"type": "connection_ack"})
    );
    socket
}

pub(crate) fn subscribe(id: &str, variables: Value) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": ORDER_UPDATED, "variables": variables}})
}

/// The next message that is not a ping.
pub(crate) async fn next_message(socket: &mut WsClient) -> Value {
    loop {
        let message = socket.receive_json(WITHIN).await;
        if message["type"] != "ping" {
            return message;
        }
    }
}

pub(crate) fn own_order(sandbox: &Sandbox, customer: &str) -> String {
    use switchyard_core::domain::OrderStatus as S;
    sandbox
        .data
        .orders_of(customer)
        .iter()
        .map(|&i| &sandbox.data.orders[i])
        .find(|o| matches!(o.status, S::Pending | S::Paid))
        .map(|o| o.id.clone())
        .expect("an order that can advance twice")
}

/// `payload` is `expected`'s event; `live`: it just happened, so the order is as it says.
pub(crate) fn assert_graphql_event(payload: &Value, expected: &OrderEvent, live: bool) {
    let event = &payload["data"]["orderUpdated"];
    assert!(payload.get("errors").is_none(), "{payload}");
    assert_eq!(event["order"]["id"], expected.order_id.as_str());
    assert_eq!(event["status"], expected.status.as_str().to_uppercase());
    assert_eq!(
        event["previousStatus"],
        expected.previous_status.as_str().to_uppercase()
    );
    if live {
        assert_eq!(
            event["order"]["status"], event["status"],
            "the order as it is now"
        );
    }
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(event["occurredAt"].as_str().is_some());
    let items = event["order"]["items"].as_array().expect("items");
    assert!(
        items.iter().all(|item| item["stock"]["available"].is_i64()),
        "{payload}"
    );
}

#[tokio::test]
async fn web_subscription_over_websocket_delivers_the_order_with_its_stock_batched() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |_| {}).await;
    let mut socket = graphql_ws(addr, &token(&sandbox, &me)).await;
    let order = own_order(&sandbox, &me);
    socket
        .send_json(&subscribe("one", json!({"id": order})))
        .await;
    // Subscriptions are live once the feed has them; give it a moment to open.
    tokio::time::sleep(Duration::from_millis(200)).await;
    advance(&sandbox, &other);
    let batches_before = sandbox.inventory.admin.stats().get("GET /inventory");
    let singles_before = sandbox.inventory.admin.stats().get("GET /inventory/{sku}");
    let expected = sandbox.activity.advance(&order).expect("advance");
    let message = next_message(&mut socket).await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "one");
    assert_graphql_event(&message["payload"], &expected, true);
    // The event's items resolved their stock in one batched call.
    let stats = sandbox.inventory.admin.stats();
    assert_eq!(stats.get("GET /inventory") - batches_before, 1);
    assert_eq!(stats.get("GET /inventory/{sku}") - singles_before, 0);
    // A second subscription on the same socket gets the customer's other events too.
    socket.send_json(&subscribe("all", json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let expected = sandbox.activity.advance(&order).expect("advance");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let message = next_message(&mut socket).await;
        assert_graphql_event(&message["payload"], &expected, true);
        ids.push(message["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["all", "one"]);
    // `complete` from the client stops one.
    socket
        .send_json(&json!({"id": "one", "type": "complete"}))
        .await;
    let expected = advance(&sandbox, &me);
    let message = next_message(&mut socket).await;
    assert_eq!(message["id"], "all");
    assert_eq!(
        message["payload"]["data"]["orderUpdated"]["order"]["id"],
        expected.order_id.as_str()
    );
}

#[tokio::test]
async fn web_subscription_to_an_order_one_may_not_see_is_an_error_not_silence() {
    let sandbox = sandbox().await;
    let (me, other) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |_| {}).await;
    let mut socket = graphql_ws(addr, &token(&sandbox, &me)).await;
    let theirs = own_order(&sandbox, &other);
    for (id, order, code) in [
        ("theirs", theirs.as_str(), "FORBIDDEN"),
        ("none", "ord_999999", "NOT_FOUND"),
    ] {
        socket.send_json(&subscribe(id, json!({"id": order}))).await;
        let message = next_message(&mut socket).await;
        assert_eq!(message["id"], id);
        assert_eq!(message["type"], "error", "refused at once: {message}");
        let errors = message["payload"].clone();
        assert_eq!(errors[0]["extensions"]["code"], code, "{message}");
    }
    // A bad cursor is the client's mistake.
    socket
        .send_json(&subscribe("cursor", json!({"after": "nonsense"})))
        .await;
    let message = next_message(&mut socket).await;
    assert!(message.to_string().contains("BAD_USER_INPUT"), "{message}");
}

#[tokio::test]
async fn web_subscriptions_resume_after_a_cursor_over_websocket_and_sse() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |_| {}).await;
    let token = token(&sandbox, &me);
    let mut socket = graphql_ws(addr, &token).await;
    socket.send_json(&subscribe("s", json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    advance(&sandbox, &me);
    let first = next_message(&mut socket).await;
    let cursor = first["payload"]["data"]["orderUpdated"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    drop(socket);
    let missed: Vec<OrderEvent> = (0..5).map(|_| advance(&sandbox, &me)).collect();
    let mut socket = graphql_ws(addr, &token).await;
    socket
        .send_json(&subscribe("s", json!({"after": cursor})))
        .await;
    for expected in &missed {
        let message = next_message(&mut socket).await;
        assert_eq!(
            message["payload"]["data"]["orderUpdated"]["order"]["id"],
            expected.order_id.as_str(),
            "in order, none missing: {message}"
        );
    }
    // GraphQL over SSE, from the same cursor.
    let body = json!({"query": ORDER_UPDATED, "variables": {"after": cursor}}).to_string();
    let mut stream = SseClient::request(
        &addr.to_string(),
        "POST",
        "/graphql/stream",
        &bearer(&token),
        Some(&body),
    )
    .await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    let nexts = stream.events("next", 5).await;
    for (event, expected) in nexts.iter().zip(&missed) {
        assert_graphql_event(&event.json(), expected, false);
    }
}

#[tokio::test]
async fn graphql_over_sse_refuses_what_post_graphql_refuses() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |_| {}).await;
    let addr = addr.to_string();
    let token = token(&sandbox, &me);
    let body = json!({"query": ORDER_UPDATED}).to_string();
    let no_token = SseClient::request(&addr, "POST", "/graphql/stream", &[], Some(&body)).await;
    assert_eq!(no_token.status, 401);
    let broken =
        SseClient::request(&addr, "POST", "/graphql/stream", &bearer(&token), Some("{")).await;
    assert_eq!(broken.status, 400);
    // A body over the limit: 413 in the GraphQL error format, not the framework's text.
    let huge = format!("{{\"query\": \"{}\"}}", "x".repeat(100 * 1024));
    let oversized = SseClient::request(
        &addr,
        "POST",
        "/graphql/stream",
        &bearer(&token),
        Some(&huge),
    )
    .await;
    assert_eq!(oversized.status, 413, "{}", oversized.head);
    assert!(oversized.body().await.contains("PAYLOAD_TOO_LARGE"));
    let deep = json!({"query": format!("subscription {{ orderUpdated {{ order {{ {}id{} }} }} }}", "customer { orders { nodes { ".repeat(8), " } } }".repeat(8))}).to_string();
    // The depth limit is checked as the operation starts: its one result says so, then the
    // stream completes.
    let mut too_deep = SseClient::request(
        &addr,
        "POST",
        "/graphql/stream",
        &bearer(&token),
        Some(&deep),
    )
    .await;
    let refusal = too_deep.events("next", 1).await.remove(0).json();
    assert_eq!(
        refusal["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{refusal}"
    );
    assert!(refusal.get("data").is_none());
    assert_eq!(
        too_deep
            .next_event(WITHIN)
            .await
            .map(|e| e.event)
            .as_deref(),
        Some("complete")
    );
}

#[tokio::test]
async fn graphql_transport_ws_close_codes_follow_the_protocol() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |config| config.streams.init_timeout_secs = 1).await;
    let url = format!("ws://{addr}/graphql/ws");
    let connect = async || {
        WsClient::connect(&url, &[], Some("graphql-transport-ws"))
            .await
            .expect("upgrade")
    };
    let closed = |code: u16| {
        move |received: WsReceived| match received {
            WsReceived::Closed(got, reason) => assert_eq!(got, code, "{reason}"),
            other => panic!("expected close {code}, got {other:?}"),
        }
    };
    // No connection_init in time.
    let mut socket = connect().await;
    closed(4408)(socket.receive(Duration::from_secs(3)).await);
    // Subscribe before the acknowledgement.
    let mut socket = connect().await;
    socket.send_json(&subscribe("1", json!({}))).await;
    closed(4401)(socket.receive(WITHIN).await);
    // A bad token.
    let mut socket = connect().await;
    socket
        .send_json(
            &json!({"type": "connection_init", "payload": {"Authorization": "Bearer nonsense"}}),
        )
        .await;
    closed(4401)(socket.receive(WITHIN).await);
    // A token with no read scope.
    let writer = sandbox.issuer.mint(&TokenRequest {
        sub: me.clone(),
        scope: "data:inventory:write".to_owned(),
        ..TokenRequest::default()
    });
    let mut socket = connect().await;
    socket.send_json(&json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {writer}")}})).await;
    closed(4403)(socket.receive(WITHIN).await);
    // Two inits, a duplicate id, an unknown message.
    let token = token(&sandbox, &me);
    let mut socket = graphql_ws(addr, &token).await;
    socket.send_json(&json!({"type": "connection_init"})).await;
    closed(4429)(socket.receive(WITHIN).await);
    let mut socket = graphql_ws(addr, &token).await;
    socket.send_json(&subscribe("same", json!({}))).await;
    socket.send_json(&subscribe("same", json!({}))).await;
    closed(4409)(socket.receive(WITHIN).await);
    let mut socket = graphql_ws(addr, &token).await;
    socket.send_json(&json!({"type": "hello"})).await;
    closed(4400)(socket.receive(WITHIN).await);
    // Ping is answered with pong.
    let mut socket = graphql_ws(addr, &token).await;
    socket.send_json(&json!({"type": "ping"})).await;
    assert_eq!(socket.receive_json(WITHIN).await, json!({"type": "pong"}));
    // A token in the upgrade's header is enough; an expired one ends the connection.
    let short = sandbox.issuer.mint(&TokenRequest {
        sub: me.clone(),
        ttl: 2,
        ..TokenRequest::default()
    });
    let mut socket = WsClient::connect(&url, &bearer(&short), Some("graphql-transport-ws"))
        .await
        .expect("upgrade");
    socket.send_json(&json!({"type": "connection_init"})).await;
    assert_eq!(
        socket.receive_json(WITHIN).await,
        json!({"type": "connection_ack"})
    );
    match socket.receive(Duration::from_secs(4)).await {
        WsReceived::Closed(4401, reason) => assert!(reason.contains("expired"), "{reason}"),
        WsReceived::Text(text) if text.contains("UNAUTHENTICATED") => {}
        other => panic!("expected 4401, got {other:?}"),
    }
    // Without the subprotocol there is no upgrade.
    let refused = WsClient::connect(&url, &[], None).await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(400));
}

#[tokio::test]
async fn web_sixth_subscription_of_a_consumer_is_refused() {
    let sandbox = sandbox().await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = web(&sandbox, |_| {}).await;
    let mut socket = graphql_ws(addr, &token(&sandbox, &me)).await;
    for n in 0..6 {
        socket
            .send_json(&subscribe(&format!("s{n}"), json!({})))
            .await;
    }
    let message = next_message(&mut socket).await;
    assert_eq!(message["id"], "s5", "{message}");
    assert!(message.to_string().contains("RATE_LIMITED"), "{message}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_while_others_keep_receiving() {
    use tokio::io::AsyncWriteExt as _;
    const EVENTS: usize = 3_000;
    let sandbox = sandbox().await;
    let (addr, _stop) = mobile(&sandbox, |config| {
        config.streams.client_buffer = 8;
        config.server.write_timeout_secs = 1;
    })
    .await;
    let admin = sandbox.issuer.mint(&TokenRequest {
        sub: "ops".to_owned(),
        scope: format!("{} data:admin", switchyard_sandbox::issuer::DEFAULT_SCOPES),
        ..TokenRequest::default()
    });
    // A client that reads nothing, with a small receive window.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut slow = socket.connect(addr).await.expect("connect");
    slow.write_all(
        format!(
            "GET /v2/orders/stream HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\nauthorization: Bearer {admin}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut fast = SseClient::open(&addr.to_string(), "/v2/orders/stream", &bearer(&admin)).await;
    let metrics_url = format!("http://{addr}/metrics");
    let sse = [("transport", "sse")];
    for _ in 0..100 {
        let open = MetricsScrape::fetch(&metrics_url).await;
        if open.value("switchyard_streams_active", &sse) == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < EVENTS {
            let event = fast
                .next_event(Duration::from_secs(5))
                .await
                .expect("the fast client's stream goes on");
            if event.event == "order" {
                ids.push(event.id.expect("an id"));
            }
        }
        ids
    });
    let mut made = Vec::new();
    while made.len() < EVENTS {
        if let Some(event) = sandbox.activity.advance_random() {
            made.push(format!("u-{}", event.event_id));
        }
        // In steps the sandbox's live feed (1,024 events deep) keeps up with.
        if made.len() % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let received = reader.await.expect("the reader");
    assert_eq!(
        received, made,
        "every event, in order, for the client that reads"
    );
    // The one that did not read is no longer held: its stream was cut off.
    let mut active = None;
    for _ in 0..150 {
        active = MetricsScrape::fetch(&metrics_url)
            .await
            .value("switchyard_streams_active", &sse);
        if active == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(active, Some(1.0), "the slow stream was closed");
    drop(slow);
}
