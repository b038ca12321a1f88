//! Configuration: defaults and bad values naming their key.

use iot_bff::IotConfig;
use switchyard_core::config::ConfigError;

fn load(env: &[(&str, &str)]) -> Result<IotConfig, ConfigError> {
    switchyard_tests::load_config(None, env)
}

#[test]
fn defaults_listen_on_8083_with_the_documented_device_settings() {
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8083");
    assert_eq!(config.devices.poll_interval_secs, 60);
    assert_eq!(config.devices.max_body_bytes, 16 * 1024);
    let config = load(&[("SWITCHYARD_DEVICES__RETRY_AFTER_SECS", "30")]).expect("override");
    assert_eq!(config.devices.retry_after_secs, 30);
}

#[test]
fn bad_values_name_their_key() {
    for (env, key) in [
        (
            ("SWITCHYARD_DEVICES__MAX_READINGS", "500"),
            "devices.max_readings",
        ),
        (
            ("SWITCHYARD_DEVICES__POLL_INTERVAL_SECS", "0"),
            "devices.poll_interval_secs",
        ),
        (
            ("SWITCHYARD_DEVICES__MAX_QUANTITY", "-1"),
            "devices.max_quantity",
        ),
        (("SWITCHYARD_DEVICES__DEADLINE_MS", "soon"), "deadline_ms"),
    ] {
        let error = load(&[env]).expect_err("invalid").to_string();
        assert!(error.contains(key), "{env:?}: {error}");
    }
}
