//! GraphiQL for browsers (development; off in production unless `graphql.graphiql`).
//!
//! The page loads React and GraphiQL from unpkg at pinned versions, each with a
//! subresource-integrity hash, so a changed or compromised CDN file is refused by the
//! browser rather than run with the developer's token in reach. The page's
//! `Content-Security-Policy` lets scripts come only from unpkg and from the page's one
//! inline script (by its SHA-256), lets the page talk only to this BFF, and forbids
//! framing. The hashes are the SHA-384 of the files in the npm packages, which unpkg
//! serves unchanged; to upgrade, bump the versions and recompute them
//! (`openssl dgst -sha384 -binary FILE | base64`).

use std::sync::LazyLock;

use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;

/// The script that starts GraphiQL; its hash is in the policy.
const BOOT_SCRIPT: &str = r#"
  const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultHeaders: '{"Authorization": "Bearer <paste a token from `switchyard-sandbox token`>"}',
      defaultQuery: 'query Dashboard {\n  viewer {\n    name\n    orders(first: 5) {\n      nodes { id status total { formatted } items { sku quantity stock { name available } } }\n    }\n  }\n}\n',
    }),
  );
"#;

/// Where the page's scripts and stylesheet come from (the policy allows this origin).
const CDN: &str = "https://unpkg.com";

/// The page, paste a token into its Headers tab as `{"Authorization": "Bearer …"}`.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Switchyard web BFF · GraphiQL</title>
<style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
<link rel="stylesheet" href="{CDN}/graphiql@3.9.0/graphiql.min.css" integrity="sha384-QMux00XgRtwRLSYIY3kw2rj1ovk5AuuliAchk+HSQbqdbGFnz9GYuqIlOqxhwCE2" crossorigin="anonymous">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{CDN}/react@18.3.1/umd/react.production.min.js" integrity="sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z" crossorigin="anonymous"></script>
<script src="{CDN}/react-dom@18.3.1/umd/react-dom.production.min.js" integrity="sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1" crossorigin="anonymous"></script>
<script src="{CDN}/graphiql@3.9.0/graphiql.min.js" integrity="sha384-8NGfVj4CVlqHajlZj+bPJT4thxPMHMJYn7DWK2CvtopLd02E7qsPHazniBYvVjOO" crossorigin="anonymous"></script>
<script>{BOOT_SCRIPT}</script>
</body>
</html>
"#
    )
});

/// Scripts from the CDN and the boot script only; styles from the CDN and inline (GraphiQL's
/// editor sets style attributes); requests to this origin only; no framing, no forms.
static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let boot = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, BOOT_SCRIPT.as_bytes());
    let boot = base64::engine::general_purpose::STANDARD.encode(boot.as_ref());
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{boot}' {CDN}; style-src 'unsafe-inline' {CDN}; \
         img-src 'self' data:; font-src data: {CDN}; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// GraphiQL's page with its security headers.
pub(crate) fn page() -> Response {
    let mut response = Html(PAGE.as_str()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, POLICY.clone());
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
