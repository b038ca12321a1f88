//! Configuration: dates and limits from TOML and the environment, bad values naming the key.

use switchyard_tests::ScratchDir;

use mobile_bff::MobileConfig;
use switchyard_core::config::ConfigError;

fn load(file: Option<&std::path::Path>, env: &[(&str, &str)]) -> Result<MobileConfig, ConfigError> {
    switchyard_tests::load_config(file, env)
}

#[test]
fn defaults_listen_on_8082_and_point_at_the_sandbox() {
    let config = load(None, &[]).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8082");
    assert_eq!(config.upstreams.customers.url, "http://127.0.0.1:7101");
    assert_eq!(config.api.dashboard_orders, 5);
}

#[test]
fn retirement_dates_come_from_toml_or_the_environment() {
    let dir = ScratchDir::new("mobile-config");
    let file = dir.write(
        "config.toml",
        "[v1]\ndeprecated_on = \"2026-01-15\"\nsunset_on = \"2026-12-31\"\n",
    );
    let config = load(Some(&file), &[]).expect("dates from TOML");
    assert_eq!(config.v1.sunset_on, time::macros::date!(2026 - 12 - 31));
    let config = load(
        Some(&file),
        &[
            ("SWITCHYARD_V1__SUNSET_ON", "2027-03-01"),
            ("SWITCHYARD_API__LOW_STOCK_BELOW", "3"),
        ],
    )
    .expect("env overrides");
    assert_eq!(config.v1.sunset_on, time::macros::date!(2027 - 03 - 01));
    assert_eq!(config.api.low_stock_below, 3);
}

#[test]
fn bad_values_name_their_key() {
    for (env, key) in [
        (("SWITCHYARD_V1__SUNSET_ON", "next year"), "sunset_on"),
        (("SWITCHYARD_V1__SUNSET_ON", "2020-01-01"), "v1.sunset_on"),
        (
            ("SWITCHYARD_API__MAX_PAGE_SIZE", "500"),
            "api.max_page_size",
        ),
        (
            ("SWITCHYARD_API__DEFAULT_PAGE_SIZE", "0"),
            "api.default_page_size",
        ),
        (
            ("SWITCHYARD_API__DASHBOARD_ORDERS", "0"),
            "api.dashboard_orders",
        ),
        (("SWITCHYARD_API__DEADLINE_MS", "0"), "api.deadline_ms"),
    ] {
        let error = load(None, &[env]).expect_err("invalid").to_string();
        assert!(error.contains(key), "{env:?}: {error}");
    }
}
