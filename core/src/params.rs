//! Query parameters of the REST BFFs, parsed by hand so that a bad value gets a
//! `BAD_USER_INPUT` problem naming the parameter and what was expected.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::OrderStatus;
use crate::error::ErrorCode;
use crate::problem::Problem;

fn bad_input(message: String) -> Problem {
    Problem::new(ErrorCode::BadUserInput, message)
}

/// A positive integer parameter `name` in `min..=max`, `default` when absent.
pub fn bounded(
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
pub fn parse_status(value: Option<&str>) -> Result<Option<OrderStatus>, Problem> {
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

/// An RFC 3339 timestamp parameter `name` (`2026-12-01T00:00:00Z`), `None` when absent.
pub fn parse_timestamp(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    OffsetDateTime::parse(value, &Rfc3339)
        .map(Some)
        .map_err(|_| {
            bad_input(format!(
                "{name} must be an RFC 3339 timestamp such as 2026-12-01T00:00:00Z, got {:?}",
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
