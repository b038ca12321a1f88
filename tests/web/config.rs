//! Configuration: bad values fail at start-up naming the key.

use switchyard_tests::ScratchDir;

use switchyard_core::config::ConfigError;
use web_bff::WebConfig;

fn load(env: &[(&str, &str)]) -> Result<WebConfig, ConfigError> {
    switchyard_tests::load_config(None, env)
}

#[test]
fn defaults_point_at_the_sandbox() {
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(config.upstreams.orders.url, "http://127.0.0.1:7102");
    assert_eq!(
        config.auth.jwks_url.as_deref(),
        Some("http://127.0.0.1:7100/.well-known/jwks.json")
    );
}

#[test]
fn environment_variables_override_nested_keys() {
    let config = load(&[
        (
            "SWITCHYARD_UPSTREAMS__ORDERS__URL",
            "http://orders.internal:8080",
        ),
        ("SWITCHYARD_GRAPHQL__MAX_DEPTH", "8"),
        ("SWITCHYARD_LISTEN", "0.0.0.0:9000"),
        ("UNRELATED", "ignored"),
    ])
    .expect("valid overrides");
    assert_eq!(config.upstreams.orders.url, "http://orders.internal:8080");
    assert_eq!(config.graphql.max_depth, 8);
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
}

#[test]
fn a_wrongly_typed_value_names_the_key_and_the_variable() {
    let error = load(&[("SWITCHYARD_UPSTREAMS__ORDERS__TIMEOUT_MS", "soon")])
        .expect_err("not a number")
        .to_string();
    assert!(error.contains("upstreams.orders.timeout_ms"), "{error}");
    assert!(
        error.contains("SWITCHYARD_UPSTREAMS__ORDERS__TIMEOUT_MS"),
        "{error}"
    );
}

#[test]
fn an_invalid_url_names_the_key() {
    let error = load(&[("SWITCHYARD_UPSTREAMS__INVENTORY__URL", "ftp://nope")])
        .expect_err("not http")
        .to_string();
    assert!(error.contains("upstreams.inventory.url"), "{error}");
}

#[test]
fn an_unknown_key_in_a_file_is_rejected_by_name() {
    let dir = ScratchDir::new("web-config");
    let file = dir.write("config.toml", "[graphql]\nmax_depht = 3\n");
    let error = switchyard_tests::load_config::<WebConfig>(Some(&file), &[])
        .expect_err("typo")
        .to_string();
    assert!(error.contains("max_depht"), "{error}");
}

/// Platforms set `SWITCHYARD_…` variables of their own: Kubernetes injects
/// `<SERVICE>_PORT=tcp://…` and friends for a Service named `switchyard`. A BFF must start
/// regardless (DESIGN.md "Fleet"); unknown variables are warned about and ignored, while
/// the known ones around them still apply and a bad value of a known key is still an error.
#[test]
fn unknown_environment_variables_are_ignored_and_known_ones_still_apply() {
    let config = load(&[
        ("SWITCHYARD_PORT", "tcp://10.96.0.12:8081"),
        ("SWITCHYARD_PORT_8081_TCP_ADDR", "10.96.0.12"),
        ("SWITCHYARD_SERVICE_HOST", "10.96.0.12"),
        ("SWITCHYARD_GRAPHQL__MAX_DEPHT", "3"),
        ("SWITCHYARD_GRAPHQL__MAX_DEPTH", "7"),
        ("SWITCHYARD_LISTEN", "127.0.0.1:9911"),
    ])
    .expect("starts despite the platform's variables");
    assert_eq!(config.graphql.max_depth, 7);
    assert_eq!(config.listen.to_string(), "127.0.0.1:9911");
    let error = load(&[
        ("SWITCHYARD_PORT", "tcp://10.96.0.12:8081"),
        ("SWITCHYARD_GRAPHQL__MAX_DEPTH", "deep"),
    ])
    .expect_err("a bad value of a known key")
    .to_string();
    assert!(error.contains("graphql.max_depth"), "{error}");
}

#[test]
fn symmetric_algorithms_are_refused() {
    let error = load(&[("SWITCHYARD_AUTH__ALGORITHMS", "[RS256, HS256]")])
        .expect_err("HMAC is refused")
        .to_string();
    assert!(error.contains("auth.algorithms"), "{error}");
}

#[test]
fn a_bad_value_in_the_file_names_the_key_and_the_file() {
    let dir = ScratchDir::new("web-config");
    let file = dir.write("config.toml", "[graphql]\nmax_page_size = 1000\n");
    let error = switchyard_tests::load_config::<WebConfig>(Some(&file), &[])
        .expect_err("over 100")
        .to_string();
    assert!(error.contains("graphql.max_page_size"), "{error}");

    let dir = ScratchDir::new("web-config");
    let file = dir.write("config.toml", "listen = 42\n");
    let error = switchyard_tests::load_config::<WebConfig>(Some(&file), &[])
        .expect_err("not an address")
        .to_string();
    assert!(error.contains("`listen`"), "{error}");
    assert!(error.contains(&file.display().to_string()), "{error}");
}
