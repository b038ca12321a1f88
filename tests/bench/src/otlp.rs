//! An OTLP/HTTP receiver for the observability scenarios: it takes every `POST /v1/traces`
//! and answers 200, counting what it received, so that exporting costs the BFF what a real
//! collector on loopback would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

/// A running receiver.
pub struct Receiver {
    /// Its base URL (`telemetry.otlp_endpoint`).
    pub url: String,
    /// Export requests and bytes received.
    pub received: Arc<(AtomicU64, AtomicU64)>,
}

impl Receiver {
    /// Starts one on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let counts = Arc::clone(&received);
        let router = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let counts = Arc::clone(&counts);
                async move {
                    counts.0.fetch_add(1, Ordering::Relaxed);
                    counts.1.fetch_add(body.len() as u64, Ordering::Relaxed);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self { url, received })
    }
}
