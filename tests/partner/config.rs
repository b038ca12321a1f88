//! Configuration: the partner section, and API keys from TOML or the environment, bad
//! ones refused naming the key.

use partner_bff::PartnerConfig;
use switchyard_core::auth::api_key_digest;
use switchyard_core::config::ConfigError;

fn load(env: &[(&str, &str)]) -> Result<PartnerConfig, ConfigError> {
    switchyard_tests::load_config(None, env)
}

#[test]
fn defaults_listen_on_8084_accept_no_api_keys_and_point_at_the_sandbox() {
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8084");
    assert_eq!(config.upstreams.orders.url, "http://127.0.0.1:7102");
    assert!(config.auth.api_keys.is_empty());
    assert_eq!(config.partner.max_page_size, 100);
}

#[test]
fn api_keys_come_from_an_environment_variable_as_a_list_of_tables() {
    let digest = api_key_digest("k1");
    let value = format!(
        r#"[{{id = "stock-sync", sha256 = "{digest}", scopes = ["data:inventory:read"], tier = "pro"}}]"#
    );
    let config = load(&[("SWITCHYARD_AUTH__API_KEYS", &value)]).expect("valid keys");
    let key = &config.auth.api_keys[0];
    assert_eq!(key.id, "stock-sync");
    assert_eq!(key.sha256, digest);
    assert_eq!(key.scopes, ["data:inventory:read"]);
}

#[test]
fn bad_api_keys_and_limits_name_their_key() {
    let digest = api_key_digest("k1");
    let key = |id: &str, sha256: &str, scopes: &str| {
        format!(r#"[{{id = "{id}", sha256 = "{sha256}", scopes = [{scopes}]}}]"#)
    };
    let twice =
        format!(r#"[{{id = "a", sha256 = "{digest}"}}, {{id = "a", sha256 = "{digest}"}}]"#);
    let cases = [
        (key("", &digest, ""), "auth.api_keys[0].id"),
        (key("a", "not-hex", ""), "auth.api_keys[0].sha256"),
        (key("a", &digest[..63], ""), "auth.api_keys[0].sha256"),
        (
            key("a", &digest, r#""data:everything""#),
            "auth.api_keys[0].scopes",
        ),
        (twice, "auth.api_keys[1].id"),
    ];
    for (value, expected) in &cases {
        let error = load(&[("SWITCHYARD_AUTH__API_KEYS", value)]).expect_err("refused");
        assert!(error.to_string().contains(expected), "{value}: {error}");
    }
    for (name, value, expected) in [
        (
            "SWITCHYARD_PARTNER__MAX_PAGE_SIZE",
            "101",
            "partner.max_page_size",
        ),
        (
            "SWITCHYARD_PARTNER__DEFAULT_PAGE_SIZE",
            "0",
            "partner.default_page_size",
        ),
        (
            "SWITCHYARD_PARTNER__DEADLINE_MS",
            "0",
            "partner.deadline_ms",
        ),
    ] {
        let error = load(&[(name, value)]).expect_err("refused");
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
}
