//! The IoT BFF over a real socket against the sandbox's inventory: exactly-once effect
//! across retries, restarts and outages, and the device simulator.

use std::time::Duration;

use iot_bff::samples;
use switchyard_sandbox::devices::{Simulation, SimulatorOptions};
use switchyard_sandbox::{Faults, Sandbox, SandboxOptions, TokenRequest};

async fn start_bff(sandbox: &Sandbox) -> String {
    let addr = sandbox
        .start_bff::<iot_bff::IotBff>(Default::default(), "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("the BFF starts");
    format!("http://{addr}")
}

fn device_token(sandbox: &Sandbox, device: &str) -> String {
    sandbox.issuer.mint(&TokenRequest {
        sub: device.to_owned(),
        scope: "data:inventory:write".to_owned(),
        ..TokenRequest::default()
    })
}

async fn post(url: &str, token: &str, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/readings"))
        .bearer_auth(token)
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .await
        .expect("iot-bff answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.bytes().await.expect("body").to_vec(),
    )
}

#[tokio::test]
async fn retries_and_restarts_never_apply_a_message_twice() {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let token = device_token(&sandbox, "dev-1");
    let message = samples::valid("dev-1", 1, 3);
    let body = message.to_cbor();

    let bff = start_bff(&sandbox).await;
    let first = post(&bff, &token, body.clone()).await;
    let again = post(&bff, &token, body.clone()).await;
    assert_eq!(first.0, 200);
    assert_eq!(first.2, again.2);
    assert_eq!(
        sandbox
            .inventory
            .admin
            .stats()
            .get("POST /inventory/readings"),
        1
    );
    assert_eq!(sandbox.stock.applied(), (1, 3));
    let level = sandbox.stock.level("SKU-00002").expect("known SKU");
    assert_eq!(level.available, message.readings[1].quantity);

    // A restarted BFF has forgotten its acks; the inventory's idempotency key holds.
    let restarted = start_bff(&sandbox).await;
    let after_restart = post(&restarted, &token, body).await;
    assert_eq!(after_restart.2, first.2, "same ack after a restart");
    assert_eq!(
        sandbox
            .inventory
            .admin
            .stats()
            .get("POST /inventory/readings"),
        2
    );
    assert_eq!(sandbox.stock.applied(), (1, 3), "applied once");
}

#[tokio::test]
async fn an_inventory_outage_is_503_and_the_retried_message_applies_once() {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let bff = start_bff(&sandbox).await;
    let token = device_token(&sandbox, "dev-7");
    let body = samples::valid("dev-7", 42, 2).to_cbor();

    sandbox.inventory.admin.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let (status, retry_after, _) = post(&bff, &token, body.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(sandbox.stock.applied(), (0, 0));

    sandbox.inventory.admin.set_faults(Faults::default());
    let (status, _, _) = post(&bff, &token, body.clone()).await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&bff, &token, body).await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.stock.applied(), (1, 2));
}

#[tokio::test]
async fn the_device_simulator_feeds_the_bff_and_resends_never_double_count() {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let bff = start_bff(&sandbox).await;
    let simulation = Simulation::start(
        SimulatorOptions {
            url: bff,
            count: 3,
            rate: 30.0,
            readings: 20,
            resend_rate: 0.5,
            skus: 2_000,
            seed: 1,
        },
        &sandbox.issuer,
    );
    let report = simulation.report.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while report.acked.load(std::sync::atomic::Ordering::Relaxed) < 15
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = simulation.stop();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let acked = get(&report.acked);
    assert!(acked >= 15, "{}", report.line());
    assert!(get(&report.resends) > 0, "{}", report.line());
    assert_eq!(get(&report.resend_mismatches), 0, "{}", report.line());
    assert_eq!(get(&report.refused), 0, "{}", report.line());
    // Every acknowledged message was applied exactly once; a device stopped mid-post may
    // have had one more applied without seeing the ack.
    let (batches, _) = sandbox.stock.applied();
    assert!(
        batches >= acked && batches <= acked + 3,
        "applied {batches} batches for {acked} acks"
    );
}
