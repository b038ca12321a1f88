//! GraphQL over HTTP: `GET` and `POST /graphql`, GraphiQL for browsers.
//!
//! Follows the GraphQL-over-HTTP spec: responses are `application/graphql-response+json`
//! when the client accepts it (request errors then answer 400) and `application/json`
//! otherwise (always 200 once the request is well-formed). Auth runs before any parsing;
//! depth, complexity, alias and batch limits run before execution, so a rejected query
//! costs the upstreams nothing.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::parse_query_string;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Request, Response as GqlResponse, ServerError, Value};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{self, AuthError, Principal, Scope};
use switchyard_core::extract::TakenHeaders;
use switchyard_core::metrics::RequestRecord;
use switchyard_core::ratelimit::Decision;
use switchyard_core::response::ErrorResponder;
use switchyard_core::upstream::{Freshness, within_budget};

use crate::AppState;
use crate::cost::{self, TooCostly};
use crate::document::Miss;
use crate::document::ParsedDocument;
use crate::errors::{GRAPHQL_RESPONSE_JSON, GraphqlErrorResponder};
use crate::fetchers::Loaders;
use crate::passes::InPasses;
use crate::persisted::{Refusal, Registration};
use crate::schema::RequestData;
use crate::usage::{Charge, Decisions};

/// The response media type the client gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    /// Picks from `Accept`; `None` when the client accepts neither JSON type.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
            // The spec's legacy default for clients that send no Accept header.
            return Some(Self::Json);
        };
        let types: Vec<&str> = accept
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim())
            .collect();
        if types.contains(&GRAPHQL_RESPONSE_JSON) {
            Some(Self::GraphqlResponseJson)
        } else if types
            .iter()
            .any(|t| matches!(*t, "application/json" | "application/*" | "*/*"))
        {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn header(self) -> HeaderValue {
        match self {
            Self::GraphqlResponseJson => HeaderValue::from_static(GRAPHQL_RESPONSE_JSON),
            Self::Json => HeaderValue::from_static("application/json"),
        }
    }
}

fn is_browser_page_request(headers: &HeaderMap, raw_query: Option<&str>) -> bool {
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    wants_html && raw_query.is_none_or(|q| !q.contains("query="))
}

/// `GET /graphql`: GraphiQL for browsers, query execution otherwise (queries only).
pub(crate) async fn graphql_get(
    State(state): State<AppState>,
    RawQuery(raw_query): RawQuery,
    TakenHeaders(headers): TakenHeaders,
) -> Response {
    if state.graphiql && is_browser_page_request(&headers, raw_query.as_deref()) {
        return crate::graphiql::page();
    }
    let request = match parse_query_string(raw_query.as_deref().unwrap_or("")) {
        // A persisted query may come by hash alone (so its URL is short and cacheable).
        Ok(request) if !request.query.is_empty() || is_persisted(&request) => request,
        Ok(_) => return reject(ErrorCode::BadRequest, "missing `query` parameter"),
        Err(e) => return reject(ErrorCode::BadRequest, &format!("invalid query string: {e}")),
    };
    execute(&state, &headers, vec![request], Shape::Single, Method::Get).await
}

/// `POST /graphql` with a JSON body: one operation or a batch (array) of them.
pub(crate) async fn graphql_post(
    State(state): State<AppState>,
    TakenHeaders(headers): TakenHeaders,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body, "POST /graphql") {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            return reject(
                ErrorCode::BadRequest,
                &format!("body is not a GraphQL request: {e}"),
            );
        }
    };
    // Split here, so that `execute` holds a vector of requests, not a copy of one.
    let (requests, shape) = match batch {
        BatchRequest::Single(request) => (vec![request], Shape::Single),
        BatchRequest::Batch(requests) => (requests, Shape::Batch),
    };
    execute(&state, &headers, requests, shape, Method::Post).await
}

/// Whether the operations came one alone or as a batch (an array, answered with one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    Batch,
}

/// The body of a `POST` that must be JSON (`route` names it in the messages): 415 for
/// another content type, 413 over the size limit, 400 when it could not be read, each in
/// the GraphQL error format.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: &str,
) -> Result<Bytes, Response> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if content_type != Some("application/json") {
        return Err(reject(
            ErrorCode::UnsupportedMediaType,
            &format!("{route} takes Content-Type: application/json"),
        ));
    }
    match body {
        Ok(body) => Ok(body),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(reject(
            ErrorCode::PayloadTooLarge,
            "request body is over the size limit",
        )),
        Err(rejection) => Err(reject(ErrorCode::BadRequest, &rejection.body_text())),
    }
}

fn is_persisted(request: &Request) -> bool {
    request.extensions.contains_key("persistedQuery")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

fn reject(code: ErrorCode, message: &str) -> Response {
    GraphqlErrorResponder.respond(code, message)
}

/// Whether the principal may read anything this BFF serves; if not, the whole request is
/// refused with 403 before any work (per-field scope checks still apply otherwise).
pub(crate) fn require_some_read_scope(principal: &Principal) -> Result<(), AuthError> {
    let readable = [
        Scope::CustomersRead,
        Scope::OrdersRead,
        Scope::InventoryRead,
    ];
    if readable.iter().any(|scope| principal.has(*scope)) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope(
            "data:customers:read, data:orders:read or data:inventory:read",
        ))
    }
}

/// Runs the operations of one HTTP request. The requests are worked on where they lie in
/// `requests` (a persisted query is resolved in place, then each is moved out to be
/// prepared), so that the future holds no copy of one across an await.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    mut requests: Vec<Request>,
    shape: Shape,
    method: Method,
) -> Response {
    let Some(media_type) = MediaType::negotiate(headers) else {
        let mut response = reject(
            ErrorCode::BadRequest,
            "Accept must allow application/graphql-response+json or application/json",
        );
        *response.status_mut() = StatusCode::NOT_ACCEPTABLE;
        return response;
    };
    // A token verified recently (the usual case) is answered without a future; only a
    // signature to check takes the boxed path.
    let authenticated = match state.authenticator.authenticate_now(headers) {
        Some(answer) => answer,
        None => Box::pin(state.authenticator.authenticate(headers)).await,
    };
    let principal = match authenticated {
        Ok(principal) => principal,
        Err(error) => return auth::reject(&GraphqlErrorResponder, &error),
    };
    if let Err(error) = require_some_read_scope(&principal) {
        return auth::reject(&GraphqlErrorResponder, &error);
    }
    if requests.is_empty() {
        return reject(ErrorCode::BadRequest, "empty batch");
    }
    if requests.len() > state.limits.max_batch {
        return reject(
            ErrorCode::QueryTooComplex,
            &format!(
                "batch of {} operations is over the limit of {}",
                requests.len(),
                state.limits.max_batch
            ),
        );
    }
    let decisions = Decisions::default();
    let mut prepared = Vec::with_capacity(requests.len());
    for request in &mut requests {
        if let Some(name) = &request.operation_name {
            RequestRecord::note_operation(name);
        }
        let registration = match state.persisted.resolve(request).await {
            Ok(registration) => registration,
            Err(refusal) => {
                prepared.push(Err(persisted_refusal(&refusal)));
                continue;
            }
        };
        let request = std::mem::replace(request, Request::new(String::new()));
        match prepare(state, request, method) {
            Ok(operation) => prepared.push(Ok((operation, registration))),
            Err(Rejection::MutationOverGet) => {
                let mut response = reject(
                    ErrorCode::BadRequest,
                    "mutations are only accepted over POST",
                );
                *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
            Err(Rejection::Errors(response)) => prepared.push(Err(*response)),
        }
    }
    drop(requests);
    // One deadline for the whole HTTP request, batches included; every upstream call made
    // while executing (in this task) honours it.
    let budget = Duration::from_millis(state.limits.deadline_ms);
    let executions = futures_util::future::join_all(prepared.into_iter().map(|prepared| async {
        match prepared {
            Ok((operation, registration)) => {
                run_operation(state, operation, registration, &principal, &decisions).await
            }
            Err(response) => Answer::Graphql(response),
        }
    }));
    let (mut responses, freshness) = within_budget(budget, executions).await;
    if !freshness.is_fresh() {
        let report = freshness_extension(&freshness);
        for response in &mut responses {
            response
                .extensions_mut()
                .insert("freshness".to_owned(), report.clone());
        }
    }
    let mut response = render(media_type, responses, shape);
    apply_usage(&mut response, &decisions.take());
    response
}

/// Sets the usage-plan headers from the operations' decisions (a refused one's, else the
/// last one's), and 429 when every operation charged was refused. A batch whose other
/// operations ran stays a 200, with `RATE_LIMITED` on the refused ones.
fn apply_usage(response: &mut Response, decisions: &[Decision]) {
    let Some(last) = decisions.last() else {
        return;
    };
    let refused = decisions.iter().find(|d| !d.allowed);
    refused
        .unwrap_or(last)
        .apply_headers(response.headers_mut());
    if decisions.iter().all(|d| !d.allowed) {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
}

/// `extensions.freshness`: present only when cached data was served because an upstream
/// failed, e.g. `{"stale": true, "maxAgeSeconds": 42, "services": {"customers": 42}}`.
fn freshness_extension(freshness: &Freshness) -> Value {
    let seconds = |age: Duration| Value::Number((age.as_secs()).into());
    let services = freshness
        .stale
        .iter()
        .map(|(service, age)| (async_graphql::Name::new(service.as_str()), seconds(*age)))
        .collect();
    let mut report = async_graphql::indexmap::IndexMap::new();
    report.insert(async_graphql::Name::new("stale"), Value::Boolean(true));
    report.insert(
        async_graphql::Name::new("maxAgeSeconds"),
        seconds(freshness.max_age().unwrap_or_default()),
    );
    report.insert(
        async_graphql::Name::new("services"),
        Value::Object(services),
    );
    Value::Object(report)
}

enum Rejection {
    MutationOverGet,
    Errors(Box<GqlResponse>),
}

fn request_error(code: ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection::Errors(Box::new(error_response(code, message)))
}

fn error_response(code: ErrorCode, message: impl Into<String>) -> GqlResponse {
    let mut error = ServerError::new(message, None);
    set_code(&mut error, code);
    GqlResponse::from_errors(vec![error])
}

/// The response to a refused persisted query: `PERSISTED_QUERY_NOT_FOUND` for an unknown
/// hash (the client resends the text), `BAD_REQUEST` otherwise.
fn persisted_refusal(refusal: &Refusal) -> GqlResponse {
    let code = match refusal {
        Refusal::NotFound => ErrorCode::PersistedQueryNotFound,
        _ => ErrorCode::BadRequest,
    };
    error_response(code, refusal.message())
}

fn set_code(error: &mut ServerError, code: ErrorCode) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
}

/// Parses (through the cache) and applies the checks async-graphql lacks. A document the
/// cache holds passed them when it was parsed (they depend only on its text and the
/// process's limits), so a hit skips them.
fn prepare(state: &AppState, request: Request, method: Method) -> Result<Operation, Rejection> {
    let (parsed, miss) = match state.documents.get(&request.query) {
        Some(parsed) => (parsed, None),
        None => check_and_parse(state, &request.query)?,
    };
    if method == Method::Get
        && parsed.operation_type(request.operation_name.as_deref()) == Some(OperationType::Mutation)
    {
        return Err(Rejection::MutationOverGet);
    }
    Ok(Operation {
        request,
        parsed,
        miss,
    })
}

/// The checks before parsing, the parse, and the checks of the parsed document.
fn check_and_parse(
    state: &AppState,
    query: &str,
) -> Result<(Arc<ParsedDocument>, Option<Miss>), Rejection> {
    let limits = &state.limits;
    let too_costly =
        |error: TooCostly| request_error(ErrorCode::QueryTooComplex, error.to_string());
    cost::scan(query, limits.max_tokens, limits.max_nesting).map_err(too_costly)?;
    let (parsed, miss) = state
        .documents
        .get_or_parse(query)
        .map_err(|e| request_error(ErrorCode::BadRequest, e.message))?;
    parsed
        .shape
        .check(limits.max_fields, limits.max_directives)
        .map_err(too_costly)?;
    if parsed.aliases > limits.max_aliases {
        return Err(request_error(
            ErrorCode::QueryTooComplex,
            format!(
                "query uses {} aliases; the limit is {}",
                parsed.aliases, limits.max_aliases
            ),
        ));
    }
    Ok((parsed, miss))
}

/// An operation that passed the checks before execution, to run on the prepared path or
/// on async-graphql.
pub(crate) struct Operation {
    request: Request,
    parsed: Arc<ParsedDocument>,
    /// Set when the document was parsed for this request (not validated yet).
    miss: Option<Miss>,
}

impl Operation {
    /// The request for async-graphql: the parsed document (cloned: async-graphql takes it
    /// by value), the principal, fresh loaders and the usage-plan charge.
    fn into_graphql(
        self,
        state: &AppState,
        principal: &Principal,
        decisions: &Decisions,
    ) -> (Request, Option<Miss>) {
        let mut request = self.request;
        request.set_parsed_query(self.parsed.document.clone());
        if let Some(charge) = charge(state, decisions) {
            request = request.data(charge);
        }
        let request = request.data(RequestData {
            principal: principal.clone(),
            loaders: Arc::new(Loaders::new(&state.upstreams)),
        });
        (request, self.miss)
    }
}

/// What an operation is charged to, when usage plans apply.
fn charge(state: &AppState, decisions: &Decisions) -> Option<Charge> {
    state.limiter.as_ref().map(|limiter| Charge {
        limiter: limiter.clone(),
        cost_per_unit: state.limits.cost_per_unit,
        decisions: decisions.clone(),
    })
}

/// What one operation answered.
pub(crate) enum Answer {
    /// async-graphql's response.
    Graphql(GqlResponse),
    /// The prepared path's: the body up to and including `data`, written by the plan.
    Prepared {
        body: crate::prepared::BodyStart,
        errors: Vec<ServerError>,
        extensions: std::collections::BTreeMap<String, Value>,
    },
}

impl Answer {
    fn extensions_mut(&mut self) -> &mut std::collections::BTreeMap<String, Value> {
        match self {
            Self::Graphql(response) => &mut response.extensions,
            Self::Prepared { extensions, .. } => extensions,
        }
    }

    fn is_request_error(&self) -> bool {
        match self {
            Self::Graphql(response) => is_request_error(response),
            Self::Prepared { .. } => false,
        }
    }

    /// The answer as the response body's JSON.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        if let Self::Prepared { body, .. } = self {
            out.extend_from_slice(&body.0);
        }
        self.write_rest(out)
    }

    /// The answer as JSON after what a prepared answer's body already holds (all of it for
    /// an async-graphql answer).
    fn write_rest(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Self::Graphql(response) => serde_json::to_writer(&mut *out, &wire(response)),
            Self::Prepared {
                body: _,
                errors,
                extensions,
            } => {
                if !errors.is_empty() {
                    out.extend_from_slice(b",\"errors\":");
                    serde_json::to_writer(&mut *out, errors)?;
                }
                if !extensions.is_empty() {
                    out.extend_from_slice(b",\"extensions\":");
                    serde_json::to_writer(&mut *out, extensions)?;
                }
                out.push(b'}');
                Ok(())
            }
        }
    }
}

/// Runs one operation: on the prepared path when it covers it (a cached document, planned,
/// whose variables coerce and whose complexity is within the limit), else on async-graphql.
async fn run_operation(
    state: &AppState,
    operation: Operation,
    registration: Option<Registration>,
    principal: &Principal,
    decisions: &Decisions,
) -> Answer {
    if operation.miss.is_none() && state.limits.prepared_executor {
        let parsed = Arc::clone(&operation.parsed);
        let operation_name = operation.request.operation_name.as_deref();
        if let Some(plan) = parsed.prepared(operation_name)
            && let Some(ready) = crate::prepared::ready(
                plan,
                &parsed.document,
                &operation.request.variables,
                state.limits.max_complexity,
            )
        {
            // Boxed: only with usage plans on, and its future is larger than the rest.
            if let Some(charge) = charge(state, decisions)
                && let Err(refused) = Box::pin(charge.charge(principal, ready.complexity)).await
            {
                return Answer::Graphql(GqlResponse::from_errors(vec![refused]));
            }
            let loaders = Loaders::new(&state.upstreams);
            let context = crate::prepared::Context {
                principal,
                loaders: &loaders,
                upstreams: &state.upstreams,
                max_page_size: state.limits.max_page_size,
            };
            let (body, errors) = InPasses::new(crate::prepared::run(&ready, &context)).await;
            state
                .prepared_runs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(registration) = registration {
                state.persisted.register(registration).await;
            }
            return Answer::Prepared {
                body,
                errors,
                extensions: std::collections::BTreeMap::new(),
            };
        }
    }
    // Boxed: async-graphql's execution is a future of kilobytes, which a prepared
    // operation, the common case, should neither carry nor copy.
    Box::pin(run_on_async_graphql(
        state,
        operation,
        registration,
        principal,
        decisions,
    ))
    .await
}

/// Runs one operation on async-graphql (what the prepared path does not cover).
async fn run_on_async_graphql(
    state: &AppState,
    operation: Operation,
    registration: Option<Registration>,
    principal: &Principal,
    decisions: &Decisions,
) -> Answer {
    let (request, miss) = operation.into_graphql(state, principal, decisions);
    let response = classify_errors(InPasses::new(state.schema.execute(request)).await);
    // Only a document that validated is worth keeping parsed, or registering.
    if !is_request_error(&response) {
        if let Some(miss) = miss {
            state.documents.remember(miss);
        }
        if let Some(registration) = registration {
            state.persisted.register(registration).await;
        }
    }
    Answer::Graphql(response)
}

/// Prepares one operation that arrived on a stream transport (a WebSocket `subscribe`,
/// a GraphQL-over-SSE request) with the same checks as `POST /graphql`; the usage plan
/// is charged as for one operation. `Err` is the response to send instead.
pub(crate) async fn prepare_streamed(
    state: &AppState,
    mut request: Request,
    principal: &Principal,
) -> Result<Request, GqlResponse> {
    if let Some(name) = &request.operation_name {
        RequestRecord::note_operation(name);
    }
    // Trusted mode holds on every transport. A query first sent here with its hash is
    // not registered (Apollo's clients register over HTTP).
    state
        .persisted
        .resolve(&mut request)
        .await
        .map_err(|refusal| persisted_refusal(&refusal))?;
    let decisions = Decisions::default();
    match prepare(state, request, Method::Post) {
        Ok(operation) => Ok(operation.into_graphql(state, principal, &decisions).0),
        Err(Rejection::Errors(response)) => Err(*response),
        // Only GET refuses mutations.
        Err(Rejection::MutationOverGet) => Err(GqlResponse::from_errors(vec![ServerError::new(
            "mutations are not accepted here",
            None,
        )])),
    }
}

/// Gives every error a `code`: async-graphql's own validation and input errors have none.
pub(crate) fn classify_errors(mut response: GqlResponse) -> GqlResponse {
    let request_failed = response.data == Value::Null;
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if is_limit_message(&error.message) {
            ErrorCode::QueryTooComplex
        } else if request_failed && error.path.is_empty() {
            ErrorCode::BadRequest
        } else if error.message.starts_with("Failed to parse")
            || error.message.starts_with("Invalid value")
        {
            ErrorCode::BadUserInput
        } else {
            // A resolver error without a code is a bug: logged, and shown as no more than that.
            error.message = ErrorCode::Internal.public_detail(&error.message).to_owned();
            ErrorCode::Internal
        };
        set_code(error, code);
    }
    response
}

/// async-graphql's messages for its depth, complexity, recursion and directive limits.
fn is_limit_message(message: &str) -> bool {
    message.starts_with("Query is nested too deep")
        || message.starts_with("Query is too complex")
        || message.starts_with("The recursion depth of the query")
        || message.starts_with("The number of directives on the field")
}

/// A response as sent: `data` omitted when the request failed before execution.
#[derive(Serialize)]
pub(crate) struct WireResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, Value>,
}

pub(crate) fn is_request_error(response: &GqlResponse) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

pub(crate) fn wire(response: &GqlResponse) -> WireResponse<'_> {
    WireResponse {
        data: (!is_request_error(response)).then_some(&response.data),
        errors: &response.errors,
        extensions: &response.extensions,
    }
}

fn render(media_type: MediaType, mut responses: Vec<Answer>, shape: Shape) -> Response {
    let is_batch = shape == Shape::Batch;
    let mut body = Vec::new();
    let written = if is_batch {
        body.reserve(1024);
        body.push(b'[');
        responses
            .iter()
            .enumerate()
            .try_for_each(|(i, answer)| {
                if i > 0 {
                    body.push(b',');
                }
                answer.write(&mut body)
            })
            .map(|()| body.push(b']'))
    } else if let Answer::Prepared { body: start, .. } = &mut responses[0] {
        // One prepared answer: its body is finished in place, not copied.
        body = std::mem::take(&mut start.0);
        responses[0].write_rest(&mut body)
    } else {
        body.reserve(1024);
        responses[0].write(&mut body)
    };
    if written.is_err() {
        return reject(ErrorCode::Internal, "cannot serialise the response");
    }
    // With graphql-response+json, a request that failed before execution is a 400; with
    // legacy application/json every well-formed request is a 200.
    let status = if media_type == MediaType::GraphqlResponseJson
        && !is_batch
        && responses[0].is_request_error()
    {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, media_type.header());
    response
}
