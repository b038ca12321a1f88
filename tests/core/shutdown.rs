//! Graceful shutdown: `serve` returns once its shutdown future completes.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use switchyard_core::server;

#[tokio::test]
async fn serve_drains_and_returns_when_shutdown_completes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = Router::new().route("/ping", get(|| async { "pong" }));
    let server = tokio::spawn(server::serve(
        listener,
        router,
        server::ConnectionLimits::from(&switchyard_core::config::ServerConfig::default()),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let body = reqwest::get(&url)
        .await
        .expect("served")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "pong");
    stop.send(()).expect("server waiting");
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returned after shutdown")
        .expect("task joined");
    assert!(result.is_ok());
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}
