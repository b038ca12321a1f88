//! Live order updates with a real broker as the source: NATS JetStream (`nats-server -js`
//! on a free port) and a Kafka-protocol broker (Tansu), the sandbox publishing every event
//! to it.

use std::time::Duration;

use serde_json::json;
use switchyard_core::streaming::SourceKind;
use switchyard_sandbox::kafka::KafkaBroker;
use switchyard_sandbox::nats::NatsServer;
use switchyard_sandbox::{Sandbox, SandboxOptions};
use switchyard_tests::stream::{SseClient, WsClient};

use crate::streaming::{
    WITHIN, advance, assert_compact, assert_graphql_event, bearer, customers, graphql_ws, mobile,
    next_message, subscribe, token, web,
};

async fn sandbox_publishing_to(nats: &NatsServer) -> Sandbox {
    Sandbox::start(&SandboxOptions {
        nats_url: Some(nats.url()),
        ..SandboxOptions::ephemeral()
    })
    .await
    .expect("sandbox starts")
}

fn from_jetstream(events: &mut switchyard_core::streaming::EventsConfig, nats: &NatsServer) {
    events.source = SourceKind::Nats;
    events.nats_url = nats.url();
    events.reconnect_initial_ms = 50;
    events.reconnect_max_ms = 500;
}

/// Waits until the sandbox has put `count` events on the stream (it publishes in the
/// background).
async fn published(nats: &NatsServer, count: u64) {
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    for _ in 0..200 {
        if let Ok(mut stream) = jetstream.get_stream("ORDERS").await
            && let Ok(info) = stream.info().await
            && info.state.last_sequence >= count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the sandbox did not publish {count} events");
}

/// Opens a mobile SSE stream, a mobile WebSocket and a web subscription for `me`; makes one
/// change of `other`'s and one of `me`'s; asserts that each transport delivers exactly
/// `me`'s, with a cursor of the source (`cursor_prefix`). Returns the mobile WebSocket,
/// still open, and the SSE event.
async fn every_transport_delivers(
    sandbox: &Sandbox,
    (mobile_addr, web_addr): (std::net::SocketAddr, std::net::SocketAddr),
    (me, other): (&str, &str),
    cursor_prefix: &str,
) -> (WsClient, switchyard_tests::stream::SseEvent) {
    let token = token(sandbox, me);
    let mut sse = SseClient::open(
        &mobile_addr.to_string(),
        "/v2/orders/stream",
        &bearer(&token),
    )
    .await;
    assert_eq!(sse.status, 200, "{}", sse.head);
    let mut socket = WsClient::connect(
        &format!("ws://{mobile_addr}/v2/orders/stream"),
        &bearer(&token),
        None,
    )
    .await
    .expect("upgrade");
    let mut graphql = graphql_ws(web_addr, &token).await;
    graphql.send_json(&subscribe("s", json!({}))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    advance(sandbox, other);
    let own = advance(sandbox, me);
    let event = sse.next_event(WITHIN).await.expect("an SSE event");
    assert_compact(&event.json(), &own);
    assert!(
        event
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with(cursor_prefix)),
        "a cursor of the source: {:?}",
        event.id
    );
    assert_compact(&socket.receive_json(WITHIN).await, &own);
    let message = next_message(&mut graphql).await;
    assert_graphql_event(&message["payload"], &own, true);
    (socket, event)
}

#[tokio::test]
async fn jetstream_events_reach_web_and_mobile_clients_over_every_transport() {
    let Some(nats) = NatsServer::start("jetstream_events_reach_web_and_mobile_clients") else {
        return;
    };
    let sandbox = sandbox_publishing_to(&nats).await;
    let (me, other) = customers(&sandbox);
    let (mobile_addr, _stop) = mobile(&sandbox, |c| from_jetstream(&mut c.events, &nats)).await;
    let (web_addr, _stop_web) = web(&sandbox, |c| from_jetstream(&mut c.events, &nats)).await;
    every_transport_delivers(&sandbox, (mobile_addr, web_addr), (&me, &other), "n-").await;
}

#[tokio::test]
async fn a_broker_restart_mid_stream_loses_and_repeats_nothing() {
    let Some(mut nats) = NatsServer::start("a_broker_restart_mid_stream") else {
        return;
    };
    let sandbox = sandbox_publishing_to(&nats).await;
    let (me, _) = customers(&sandbox);
    let (addr, _stop) = mobile(&sandbox, |c| from_jetstream(&mut c.events, &nats)).await;
    let token = token(&sandbox, &me);
    let mut stream = SseClient::open(&addr.to_string(), "/v2/orders/stream", &bearer(&token)).await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    let mut expected = vec![advance(&sandbox, &me), advance(&sandbox, &me)];
    published(&nats, 2).await;
    nats.stop();
    // Made while the broker is down: the sandbox keeps them until it can publish.
    expected.push(advance(&sandbox, &me));
    expected.push(advance(&sandbox, &me));
    nats.restart();
    expected.push(advance(&sandbox, &me));
    let got = stream.events("order", expected.len()).await;
    for (event, expected) in got.iter().zip(&expected) {
        assert_compact(&event.json(), expected);
    }
    let ids: Vec<_> = got.iter().map(|e| e.id.clone().expect("id")).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no event twice");
    // And nothing more: the next one is the next change.
    let next = advance(&sandbox, &me);
    let event = stream.events("order", 1).await.remove(0);
    assert_compact(&event.json(), &next);
}

#[tokio::test]
async fn a_client_resumes_on_another_replica_with_no_gap() {
    let Some(nats) = NatsServer::start("a_client_resumes_on_another_replica") else {
        return;
    };
    let sandbox = sandbox_publishing_to(&nats).await;
    let (me, _) = customers(&sandbox);
    let (first, _stop_first) = mobile(&sandbox, |c| from_jetstream(&mut c.events, &nats)).await;
    let token = token(&sandbox, &me);
    let mut stream =
        SseClient::open(&first.to_string(), "/v2/orders/stream", &bearer(&token)).await;
    advance(&sandbox, &me);
    let seen = stream.events("order", 1).await.remove(0);
    drop(stream);
    let missed: Vec<_> = (0..5).map(|_| advance(&sandbox, &me)).collect();
    published(&nats, 6).await;
    // A replica that has never seen a client: it reads the missed events from the stream.
    let (second, _stop_second) = mobile(&sandbox, |c| from_jetstream(&mut c.events, &nats)).await;
    let mut headers = bearer(&token);
    headers.push(("last-event-id", seen.id.expect("an id")));
    let mut resumed = SseClient::open(&second.to_string(), "/v2/orders/stream", &headers).await;
    let replayed = resumed.events("order", 5).await;
    for (event, expected) in replayed.iter().zip(&missed) {
        assert_compact(&event.json(), expected);
    }
    let live = advance(&sandbox, &me);
    assert_compact(
        &resumed.next_event(WITHIN).await.expect("live").json(),
        &live,
    );
}

fn from_kafka(events: &mut switchyard_core::streaming::EventsConfig, kafka: &KafkaBroker) {
    events.source = SourceKind::Kafka;
    events.kafka_brokers = kafka.brokers();
    events.reconnect_initial_ms = 50;
    events.reconnect_max_ms = 500;
}

async fn sandbox_producing_to(kafka: &KafkaBroker) -> Sandbox {
    Sandbox::start(&SandboxOptions {
        kafka_brokers: Some(kafka.brokers()),
        ..SandboxOptions::ephemeral()
    })
    .await
    .expect("sandbox starts")
}

#[tokio::test]
async fn kafka_events_reach_web_and_mobile_clients_and_resume_on_another_replica() {
    let Some(kafka) = KafkaBroker::start("kafka_events_reach_web_and_mobile_clients") else {
        return;
    };
    let sandbox = sandbox_producing_to(&kafka).await;
    let (me, other) = customers(&sandbox);
    let (mobile_addr, _stop) = mobile(&sandbox, |c| from_kafka(&mut c.events, &kafka)).await;
    let (web_addr, _stop_web) = web(&sandbox, |c| from_kafka(&mut c.events, &kafka)).await;
    let (mut socket, event) =
        every_transport_delivers(&sandbox, (mobile_addr, web_addr), (&me, &other), "k-").await;
    let token = token(&sandbox, &me);
    // Away for five events, back on a replica that never had a client.
    let missed: Vec<_> = (0..5).map(|_| advance(&sandbox, &me)).collect();
    for expected in &missed {
        assert_compact(&socket.receive_json(WITHIN).await, expected);
    }
    let (second, _stop_second) = mobile(&sandbox, |c| from_kafka(&mut c.events, &kafka)).await;
    let mut headers = bearer(&token);
    headers.push(("last-event-id", event.id.expect("an id")));
    let mut resumed = SseClient::open(&second.to_string(), "/v2/orders/stream", &headers).await;
    let replayed = resumed.events("order", 5).await;
    for (event, expected) in replayed.iter().zip(&missed) {
        assert_compact(&event.json(), expected);
    }
}
