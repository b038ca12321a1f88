//! The BFF skeleton used from outside the BFF crates: a minimal BFF declared with
//! `bff_config!` and `Bff`, and the guarantees core's common layers give every BFF (a
//! panic is a 500 `INTERNAL` with the request id, every 503 carries `Retry-After`).

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use http::Request;
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_core::bff::{Bff, Core};
use switchyard_core::config::{ConfigError, Validate};
use switchyard_core::problem::{Problem, ProblemResponder, RenderProblemsLayer};
use switchyard_tests::TestApp;

/// The minimal BFF's own section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DemoSection {
    greeting: String,
}

impl Validate for DemoSection {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

switchyard_core::bff_config! {
    /// The minimal BFF's configuration.
    pub struct DemoConfig, default port 8099, {
        /// Its own section.
        pub demo: DemoSection,
    }
}

struct DemoBff;

impl Bff for DemoBff {
    const NAME: &'static str = "demo-bff";
    const ABOUT: &'static str = "A BFF that exists to test the skeleton.";
    type Config = DemoConfig;
    type State = ();
    type Responder = ProblemResponder;

    fn state(_config: &DemoConfig, _core: &Core) -> Result<(), ConfigError> {
        Ok(())
    }

    fn router((): ()) -> Router {
        Router::new()
            .route("/boom", get(|| async { buggy() }))
            .route(
                "/down",
                get(|| async {
                    Problem::new(ErrorCode::UpstreamUnavailable, "the orders service is down")
                        .into_response()
                }),
            )
            .layer(RenderProblemsLayer)
    }
}

/// A handler with a bug.
fn buggy() -> &'static str {
    panic!("index out of bounds: the len is 0 but the index is 3")
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_internal_with_the_request_id_and_no_detail() {
    let app = TestApp::<DemoBff>::spawn().await;
    let response = app.send(get_request("/boom")).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.json["code"], "INTERNAL");
    assert_eq!(response.json["detail"], "internal error");
    let id = response.header("x-request-id").expect("a request id");
    assert_eq!(response.json["requestId"], id);
    assert_eq!(response.json["instance"], "/boom");
    // The process is still serving.
    assert_eq!(app.send(get_request("/healthz")).await.status, 200);
}

#[tokio::test]
async fn every_503_carries_retry_after() {
    let app = TestApp::<DemoBff>::spawn().await;
    let response = app.send(get_request("/down")).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(response.header("retry-after"), Some("1"));
}

#[test]
fn the_declared_config_has_the_shared_sections_and_its_own() {
    let config: DemoConfig = switchyard_tests::load_config(
        None,
        &[
            ("SWITCHYARD_DEMO__GREETING", "hello"),
            ("SWITCHYARD_RATELIMIT__ENABLED", "false"),
        ],
    )
    .expect("valid");
    assert_eq!(config.demo.greeting, "hello");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8099");
    assert!(!config.ratelimit.enabled);
    // An unknown key of the BFF's own section: an error in a file, a warning in the
    // environment (platforms set variables of their own under the prefix).
    let dir = switchyard_tests::ScratchDir::new("skeleton-config");
    let file = dir.write("config.toml", "[demo]\nname = \"x\"\n");
    let error = switchyard_tests::load_config::<DemoConfig>(Some(&file), &[])
        .expect_err("unknown keys in files are errors");
    assert!(error.to_string().contains("name"), "{error}");
    let config: DemoConfig =
        switchyard_tests::load_config(None, &[("SWITCHYARD_DEMO__NAME", "x")]).expect("ignored");
    assert_eq!(config.demo.greeting, "");
}
