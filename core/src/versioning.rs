//! Retiring an old API version, for any BFF: the standard signals while it is deprecated,
//! and 410 Gone once its sunset has passed.
//!
//! Until the sunset, every response of the retired version, errors included, carries
//! `Deprecation` (RFC 9745, the date as a structured-field date `@<unix seconds>`), `Sunset`
//! (RFC 8594, an HTTP-date) and `Link: <successor>; rel="successor-version"`. From the
//! sunset on, the version is no longer served: every request is answered **410 Gone** in
//! the client's error format (through the BFF's [`ErrorResponder`]), with the same headers,
//! so a client still finds its way to the successor. The handler is never reached, so a
//! retired version costs the upstreams nothing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::LINK;
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time, UtcOffset};

use crate::config::ConfigError;
use crate::error::ErrorCode;
use crate::response::ErrorResponder;

/// `Deprecation` header (RFC 9745).
pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
/// `Sunset` header (RFC 8594).
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// When an API version was deprecated and when it goes away (`YYYY-MM-DD`, UTC midnight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementConfig {
    /// Sent as the `Deprecation` header.
    #[serde(with = "iso_date")]
    pub deprecated_on: Date,
    /// Sent as the `Sunset` header; from this date on the version answers 410. Must not be
    /// before `deprecated_on`.
    #[serde(with = "iso_date")]
    pub sunset_on: Date,
}

impl RetirementConfig {
    /// Checks the dates; `section` names the config section in the error (`v1`).
    pub fn validate_as(&self, section: &str) -> Result<(), ConfigError> {
        if self.sunset_on < self.deprecated_on {
            return Err(ConfigError::invalid(
                format!("{section}.sunset_on"),
                format!(
                    "expected a date on or after {section}.deprecated_on ({})",
                    self.deprecated_on
                ),
            ));
        }
        Ok(())
    }
}

/// Where the successor of a retired path is: `/v1/orders` → `Some("/v2/orders")`.
pub type SuccessorOf = fn(&str) -> Option<String>;

/// The clock the sunset is judged by (the system clock in production, a fixed one in tests).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A retired API version: its headers, formatted once, and when it stops being served.
#[derive(Clone)]
pub struct Retirement<R> {
    deprecation: HeaderValue,
    sunset: HeaderValue,
    sunset_at: OffsetDateTime,
    sunset_on: Date,
    successor_of: SuccessorOf,
    responder: R,
    clock: Clock,
}

fn midnight_utc(date: Date) -> OffsetDateTime {
    date.with_time(Time::MIDNIGHT).assume_offset(UtcOffset::UTC)
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Wed, 30 Jun 2027 00:00:00 GMT`.
pub fn http_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

impl<R: ErrorResponder> Retirement<R> {
    /// A version retired on `config`'s dates, judged by the system clock; after the sunset
    /// its requests are answered through `responder`.
    pub fn new(config: &RetirementConfig, successor_of: SuccessorOf, responder: R) -> Self {
        Self::with_clock(
            config,
            successor_of,
            responder,
            Arc::new(OffsetDateTime::now_utc),
        )
    }

    /// Like [`Retirement::new`], judged by `clock`.
    pub fn with_clock(
        config: &RetirementConfig,
        successor_of: SuccessorOf,
        responder: R,
        clock: Clock,
    ) -> Self {
        let deprecated = midnight_utc(config.deprecated_on).unix_timestamp();
        let sunset_at = midnight_utc(config.sunset_on);
        Self {
            deprecation: HeaderValue::from_str(&format!("@{deprecated}"))
                .expect("a number is a valid header value"),
            sunset: HeaderValue::from_str(&http_date(sunset_at))
                .expect("an HTTP-date is a valid header value"),
            sunset_at,
            sunset_on: config.sunset_on,
            successor_of,
            responder,
            clock,
        }
    }

    /// Whether the sunset has passed.
    pub fn is_gone(&self) -> bool {
        (self.clock)() >= self.sunset_at
    }
}

/// Middleware for every route of a retired version:
/// `route_layer(from_fn_with_state(retirement, versioning::retire::<R>))`. Before the
/// sunset it adds the retirement headers to each response; from the sunset on it answers
/// 410 Gone itself.
pub async fn retire<R: ErrorResponder>(
    State(retirement): State<Retirement<R>>,
    request: Request,
    next: Next,
) -> Response {
    let successor = (retirement.successor_of)(request.uri().path());
    let link = successor.as_deref().and_then(|path| {
        HeaderValue::from_str(&format!("<{path}>; rel=\"successor-version\"")).ok()
    });
    let mut response = if retirement.is_gone() {
        let message = match &successor {
            Some(path) => format!(
                "this API version was retired on {}; use {path}",
                retirement.sunset_on
            ),
            None => format!("this API version was retired on {}", retirement.sunset_on),
        };
        retirement.responder.respond(ErrorCode::Gone, &message)
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(DEPRECATION, retirement.deprecation.clone());
    headers.insert(SUNSET, retirement.sunset.clone());
    if let Some(link) = link {
        headers.append(LINK, link);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[derive(Clone)]
    struct PlainResponder;

    impl ErrorResponder for PlainResponder {
        fn respond(&self, code: ErrorCode, message: &str) -> Response {
            (code.status(), format!("{code}: {message}")).into_response()
        }
    }

    fn dates() -> RetirementConfig {
        RetirementConfig {
            deprecated_on: time::macros::date!(2027 - 01 - 01),
            sunset_on: time::macros::date!(2027 - 06 - 30),
        }
    }

    fn successor(path: &str) -> Option<String> {
        path.strip_prefix("/v1/").map(|rest| format!("/v2/{rest}"))
    }

    /// A v1 route retired on `dates()`, judged by a clock set to `now` (unix seconds).
    fn app(now: Arc<AtomicI64>) -> Router {
        let clock: Clock = Arc::new(move || {
            OffsetDateTime::from_unix_timestamp(now.load(Ordering::Relaxed)).expect("in range")
        });
        let retirement = Retirement::with_clock(&dates(), successor, PlainResponder, clock);
        Router::new()
            .route("/v1/orders", get(|| async { "served" }))
            .route_layer(from_fn_with_state(retirement, retire::<PlainResponder>))
    }

    async fn get_orders(app: &Router) -> (u16, String, http::HeaderMap) {
        let response = app
            .clone()
            .oneshot(
                http::Request::get("/v1/orders")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned(), headers)
    }

    #[tokio::test]
    async fn a_retired_version_is_served_with_its_headers_until_the_sunset_then_is_gone() {
        let sunset = midnight_utc(dates().sunset_on).unix_timestamp();
        let now = Arc::new(AtomicI64::new(sunset - 1));
        let app = app(Arc::clone(&now));

        let (status, body, headers) = get_orders(&app).await;
        assert_eq!((status, body.as_str()), (200, "served"));
        assert_eq!(headers["deprecation"], "@1798761600");
        assert_eq!(headers["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
        assert_eq!(headers["link"], "</v2/orders>; rel=\"successor-version\"");

        now.store(sunset, Ordering::Relaxed);
        let (status, body, headers) = get_orders(&app).await;
        assert_eq!(status, 410);
        assert_eq!(
            body,
            "GONE: this API version was retired on 2027-06-30; use /v2/orders"
        );
        assert_eq!(headers["link"], "</v2/orders>; rel=\"successor-version\"");
        assert_eq!(headers["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
    }

    #[test]
    fn http_dates_are_imf_fixdates_in_gmt() {
        let at = midnight_utc(time::macros::date!(2027 - 06 - 30));
        assert_eq!(http_date(at), "Wed, 30 Jun 2027 00:00:00 GMT");
    }

    #[test]
    fn a_sunset_before_the_deprecation_is_refused_naming_the_key() {
        let config = RetirementConfig {
            deprecated_on: time::macros::date!(2027 - 01 - 02),
            sunset_on: time::macros::date!(2027 - 01 - 01),
        };
        let error = config.validate_as("v1").expect_err("refused");
        assert!(error.to_string().contains("v1.sunset_on"), "{error}");
    }
}
