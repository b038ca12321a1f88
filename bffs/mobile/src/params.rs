//! Query parameters shared by the v1 and v2 handlers, parsed by hand so that a bad value
//! gets a message naming the parameter and what was expected.

use switchyard_core::ErrorCode;
use switchyard_core::domain::OrderStatus;

use crate::config::ApiConfig;
use crate::problem::Problem;

fn bad_input(message: String) -> Problem {
    Problem::new(ErrorCode::BadUserInput, message)
}

/// `limit`: the configured default when absent; outside `1..=max_page_size` is an error,
/// not a clamp.
pub(crate) fn parse_limit(value: Option<&str>, api: &ApiConfig) -> Result<u32, Problem> {
    bounded("limit", value, api.default_page_size, 1, api.max_page_size)
}

/// A positive integer parameter `name` in `min..=max`, `default` when absent.
pub(crate) fn bounded(
    name: &str,
    value: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, Problem> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad_input(format!(
            "{name} must be an integer from {min} to {max}, got {:?}",
            shown(value)
        ))),
    }
}

/// `status`: one of the order states, or absent for all.
pub(crate) fn parse_status(value: Option<&str>) -> Result<Option<OrderStatus>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    OrderStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == value)
        .map(Some)
        .ok_or_else(|| {
            let known: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            bad_input(format!(
                "status must be one of {}, got {:?}",
                known.join(", "),
                shown(value)
            ))
        })
}

/// A client's value as echoed in an error message: at most 32 characters.
fn shown(value: &str) -> String {
    let mut shown: String = value.chars().take(32).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    shown
}
