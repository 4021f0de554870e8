//! The HTTPS/JSON API under `/v1/` (and `/metrics`), on its own port beside the Sensors' mTLS
//! gRPC port: users and CI authenticate with tokens or the admin password, Sensors with
//! certificates, and neither can reach the other's door.
//!
//! ```text
//!  TLS accept (bounded) ─▶ hyper ─▶ axum router ─▶ observe (metrics, timeout)
//!                                                  ─▶ authorize (ROUTES table) ─▶ handler
//! ```
//!
//! Every route is in [`ROUTES`] with the access it needs; a route missing from the table is
//! refused (fail closed), and the authorization tests walk the same table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_policy::check::{Selection, Source, run_check, select};
use rampart_policy::policy::{Policy, PolicyList, parse_policies};
use rampart_policy::{EvalContext, LifecycleStage, Severity};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::alerts::{self, AlertRecord, AlertState};
use crate::auth::{self, Access, AuthError, Authenticator, Principal, Role};
use crate::core::Core;
use crate::pki::{CertificateAuthority, Revocations, persist};
use crate::policies::PolicyError;
use crate::search::{Field, Query};
use crate::store::{Backend, Table, WriteBatch};

/// Largest JSON body (policy imports included).
pub const MAX_JSON_BODY: usize = 4 * 1024 * 1024;
/// Largest manifest body for `/v1/detect/deploy/yaml`.
pub const MAX_DETECT_BODY: usize = 16 * 1024 * 1024;
/// Longest any request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 1024;
/// Most items one page may hold.
pub const MAX_PAGE: usize = 1000;
/// Deepest page offset for sorted lists (use a narrower query beyond it).
pub const MAX_OFFSET: usize = 100_000;

/// Every route, with the access it needs (`None`: public).
pub const ROUTES: &[(&str, &str, Option<Access>)] = &[
    ("GET", "/v1/ping", None),
    ("GET", "/v1/health", None),
    ("GET", "/metrics", Some(Access::Read)),
    ("GET", "/v1/whoami", Some(Access::Authenticated)),
    ("GET", "/v1/clusters", Some(Access::Read)),
    ("GET", "/v1/clusters/{id}", Some(Access::Read)),
    ("GET", "/v1/refusals", Some(Access::Read)),
    ("GET", "/v1/deployments", Some(Access::Read)),
    ("GET", "/v1/deployments/{cluster}/{id}", Some(Access::Read)),
    (
        "GET",
        "/v1/deployments/{cluster}/{id}/activity",
        Some(Access::Read),
    ),
    (
        "GET",
        "/v1/deployments/{cluster}/{id}/baselines",
        Some(Access::Read),
    ),
    (
        "PUT",
        "/v1/deployments/{cluster}/{id}/baselines/lock",
        Some(Access::Write),
    ),
    (
        "PATCH",
        "/v1/deployments/{cluster}/{id}/baselines/{container}",
        Some(Access::Write),
    ),
    (
        "GET",
        "/v1/deployments/{cluster}/{id}/networkbaseline",
        Some(Access::Read),
    ),
    (
        "PATCH",
        "/v1/deployments/{cluster}/{id}/networkbaseline",
        Some(Access::Write),
    ),
    (
        "PUT",
        "/v1/deployments/{cluster}/{id}/networkbaseline/lock",
        Some(Access::Write),
    ),
    ("GET", "/v1/networkgraph", Some(Access::Read)),
    ("GET", "/v1/networkgraph/cidrs", Some(Access::Read)),
    ("PUT", "/v1/networkgraph/cidrs", Some(Access::Write)),
    ("GET", "/v1/networkpolicies/generate", Some(Access::Read)),
    ("GET", "/v1/policies", Some(Access::Read)),
    ("POST", "/v1/policies", Some(Access::Write)),
    ("GET", "/v1/policies/{id}", Some(Access::Read)),
    ("PUT", "/v1/policies/{id}", Some(Access::Write)),
    ("PATCH", "/v1/policies/{id}", Some(Access::Write)),
    ("DELETE", "/v1/policies/{id}", Some(Access::Write)),
    ("POST", "/v1/policies/import", Some(Access::Write)),
    ("GET", "/v1/policies/export", Some(Access::Read)),
    ("POST", "/v1/policies/export", Some(Access::Read)),
    ("POST", "/v1/policies/dryrun", Some(Access::Read)),
    ("GET", "/v1/alerts", Some(Access::Read)),
    ("GET", "/v1/alertscount", Some(Access::Read)),
    ("PATCH", "/v1/alerts/resolve", Some(Access::Write)),
    ("GET", "/v1/alerts/{id}", Some(Access::Read)),
    ("PATCH", "/v1/alerts/{id}/resolve", Some(Access::Write)),
    ("POST", "/v1/alerts/{id}/enforce", Some(Access::Write)),
    ("POST", "/v1/detect/deploy/yaml", Some(Access::Detect)),
    ("POST", "/v1/detect/build", Some(Access::Detect)),
    ("GET", "/v1/risk", Some(Access::Read)),
    ("GET", "/v1/images", Some(Access::Read)),
    ("GET", "/v1/images/{id}", Some(Access::Read)),
    ("POST", "/v1/images/scan", Some(Access::Detect)),
    ("GET", "/v1/cves", Some(Access::Read)),
    ("GET", "/v1/cves/{id}", Some(Access::Read)),
    ("GET", "/v1/vulndb", Some(Access::Read)),
    ("POST", "/v1/vulndb/import", Some(Access::Write)),
    ("GET", "/v1/init-bundles", Some(Access::Write)),
    ("POST", "/v1/init-bundles", Some(Access::Write)),
    ("DELETE", "/v1/init-bundles/{id}", Some(Access::Write)),
    ("GET", "/v1/tokens", Some(Access::Write)),
    ("POST", "/v1/tokens", Some(Access::Write)),
    ("DELETE", "/v1/tokens/{id}", Some(Access::Write)),
];

/// Everything handlers share.
pub struct Api<B: Backend> {
    pub core: Arc<Core<B>>,
    pub auth: Authenticator,
    pub ca: Arc<CertificateAuthority>,
    pub revocations: Revocations,
    /// The web console's in-memory state: logged-in browsers, the live counts they poll.
    pub console: crate::ui::Console,
}

impl<B: Backend> std::fmt::Debug for Api<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

pub(crate) type Shared<B> = Arc<Api<B>>;

// ---------------------------------------------------------------------------------------------
// Errors: one type, mapped to responses here and nowhere else.

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid {
        message: String,
        details: Vec<String>,
    },
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request took longer than {0:?}")]
    Timeout(Duration),
    /// A registry or other service Central called failed.
    #[error("{0}")]
    Upstream(String),
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    details: &'a [String],
}

impl ApiError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "API request failed");
                "internal error; see Central's log".to_string()
            }
            other => other.to_string(),
        };
        let details: &[String] = match &self {
            ApiError::Invalid { details, .. } => details,
            _ => &[],
        };
        let mut response = (
            status,
            axum::Json(ErrorBody {
                error: code,
                message,
                details,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "Bearer realm=\"rampart\", Basic realm=\"rampart\"",
                ),
            );
        }
        response
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::commit::CommitError> for ApiError {
    fn from(e: crate::commit::CommitError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> ApiError {
        match e {
            PolicyError::NotFound(_) => ApiError::NotFound(e.to_string()),
            PolicyError::Conflict(m) => ApiError::Conflict(m),
            PolicyError::Invalid(errors) => ApiError::Invalid {
                message: "the policy is invalid".to_string(),
                details: errors.iter().map(ToString::to_string).collect(),
            },
            PolicyError::Store(e) => ApiError::Internal(e.to_string()),
            PolicyError::Commit(e) => ApiError::Internal(e.to_string()),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

fn json<T: Serialize>(value: &T) -> ApiResult<Response> {
    Ok(axum::Json(value).into_response())
}

/// Parses a JSON body, naming the path of the first problem (`policySections[0].policyGroups`).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body at {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// Parses a query string into a map of (possibly repeated) parameters.
fn parse_query(raw: Option<&str>) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    for (k, v) in pairs {
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

struct Params(BTreeMap<String, Vec<String>>);

impl Params {
    fn parse(raw: Option<&str>, known: &[&str]) -> ApiResult<Params> {
        let map = parse_query(raw)?;
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter '{unknown}'; this endpoint takes: {}",
                known.join(", ")
            )));
        }
        Ok(Params(map))
    }

    fn one(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.0.get(*n).and_then(|v| v.last()))
            .map(String::as_str)
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    fn number(&self, names: &[&str], default: usize, max: usize) -> ApiResult<usize> {
        match self.one(names) {
            None => Ok(default),
            Some(v) => {
                let n: usize = v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("{} must be a number, not '{v}'", names[0]))
                })?;
                if n > max {
                    return Err(ApiError::BadRequest(format!(
                        "{} must be at most {max}",
                        names[0]
                    )));
                }
                Ok(n)
            }
        }
    }

    fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.one(&[name]) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(v) => Err(ApiError::BadRequest(format!(
                "{name} must be true or false, not '{v}'"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Middleware: observe (metrics, timeout) and authorize.

fn route_access(method: &Method, route: &str) -> Option<Option<Access>> {
    ROUTES
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, a)| *a)
}

async fn observe<B: Backend>(
    State(api): State<Shared<B>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(REQUEST_TIMEOUT).into_response(),
    };
    let m = &api.core.metrics;
    m.http_requests
        .get_or_create(&crate::metrics::RouteLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.http_seconds
        .get_or_create(&crate::metrics::RouteLabel { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn authorize<B: Backend>(
    State(api): State<Shared<B>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let access = match route_access(request.method(), &route) {
        Some(a) => a,
        None => {
            return ApiError::Internal(format!(
                "route {} {route} has no access rule",
                request.method()
            ))
            .into_response();
        }
    };
    let Some(access) = access else {
        return next.run(request).await;
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let principal = {
        let api = Arc::clone(&api);
        // argon2 verification is deliberately slow: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            api.auth
                .authenticate(&api.core.store, authorization.as_deref())
        })
        .await
        .unwrap_or(Err(AuthError::Store("authentication task failed".into())))
    };
    let principal = match principal {
        Ok(p) => p,
        Err(AuthError::Store(e)) => return ApiError::Internal(e).into_response(),
        Err(e) => {
            api.core.metrics.auth_failures.inc();
            return ApiError::Unauthorized(e.to_string()).into_response();
        }
    };
    if !access.allows(principal.role) {
        return ApiError::Forbidden(format!(
            "role {} may not {} {route}",
            principal.role.as_str(),
            request.method()
        ))
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint (see /v1/ for the API)".to_string())
}

/// The router, for `serve` and for tests that drive it without TLS.
pub fn router<B: Backend>(api: Shared<B>) -> Router {
    Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/health", get(health::<B>))
        .route("/metrics", get(metrics::<B>))
        .route("/v1/whoami", get(whoami))
        .route("/v1/clusters", get(clusters::<B>))
        .route("/v1/clusters/{id}", get(cluster::<B>))
        .route("/v1/refusals", get(refusals::<B>))
        .route("/v1/deployments", get(deployments::<B>))
        .route("/v1/deployments/{cluster}/{id}", get(deployment::<B>))
        .route(
            "/v1/deployments/{cluster}/{id}/activity",
            get(deployment_activity::<B>),
        )
        .route(
            "/v1/deployments/{cluster}/{id}/baselines",
            get(list_baselines::<B>),
        )
        .route(
            "/v1/deployments/{cluster}/{id}/baselines/lock",
            axum::routing::put(lock_baselines::<B>),
        )
        .route(
            "/v1/deployments/{cluster}/{id}/baselines/{container}",
            axum::routing::patch(edit_baseline::<B>),
        )
        .route(
            "/v1/deployments/{cluster}/{id}/networkbaseline",
            get(get_network_baseline::<B>).patch(decide_network_peers::<B>),
        )
        .route(
            "/v1/deployments/{cluster}/{id}/networkbaseline/lock",
            axum::routing::put(lock_network_baseline::<B>),
        )
        .route("/v1/networkgraph", get(network_graph::<B>))
        .route(
            "/v1/networkpolicies/generate",
            get(generate_network_policies::<B>),
        )
        .route(
            "/v1/networkgraph/cidrs",
            get(get_cidrs::<B>).put(put_cidrs::<B>),
        )
        .route(
            "/v1/policies",
            get(list_policies::<B>).post(create_policy::<B>),
        )
        .route("/v1/policies/import", post(import_policies::<B>))
        .route(
            "/v1/policies/export",
            get(export_policies_get::<B>).post(export_policies_post::<B>),
        )
        .route("/v1/policies/dryrun", post(dry_run::<B>))
        .route(
            "/v1/policies/{id}",
            get(get_policy::<B>)
                .put(update_policy::<B>)
                .patch(patch_policy::<B>)
                .delete(delete_policy::<B>),
        )
        .route("/v1/alerts", get(list_alerts::<B>))
        .route("/v1/alertscount", get(count_alerts::<B>))
        .route(
            "/v1/alerts/resolve",
            axum::routing::patch(resolve_alerts::<B>),
        )
        .route("/v1/alerts/{id}/enforce", post(enforce_alert::<B>))
        .route("/v1/alerts/{id}", get(get_alert::<B>))
        .route(
            "/v1/alerts/{id}/resolve",
            axum::routing::patch(resolve_alert::<B>),
        )
        .route(
            "/v1/init-bundles",
            get(list_bundles::<B>).post(create_bundle::<B>),
        )
        .route(
            "/v1/init-bundles/{id}",
            axum::routing::delete(revoke_bundle::<B>),
        )
        .route("/v1/tokens", get(list_tokens::<B>).post(create_token::<B>))
        .route("/v1/tokens/{id}", axum::routing::delete(revoke_token::<B>))
        .route("/v1/detect/deploy/yaml", post(detect_deploy::<B>))
        .route("/v1/detect/build", post(detect_build::<B>))
        .route("/v1/risk", get(list_risk::<B>))
        .route("/v1/images", get(list_images::<B>))
        .route("/v1/images/scan", post(scan_image::<B>))
        .route("/v1/images/{id}", get(get_image::<B>))
        .route("/v1/cves", get(list_cves::<B>))
        .route("/v1/cves/{id}", get(get_cve::<B>))
        .route("/v1/vulndb", get(vulndb_status::<B>))
        .route("/v1/vulndb/import", post(vulndb_import::<B>))
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            authorize::<B>,
        ))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            observe::<B>,
        ))
        .with_state(Arc::clone(&api))
        .merge(crate::ui::router(Arc::clone(&api)))
        .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
}

/// A request body of at most `N` bytes; a larger one is a 413 with a JSON error.
struct Limited<const N: usize>(Bytes);

/// After a body has proven too large, up to this much more is read and discarded, so a client
/// still sending gets the 413 instead of a reset connection.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

impl<S: Send + Sync, const N: usize> axum::extract::FromRequest<S> for Limited<N> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let mut body = request.into_body();
        let mut kept: Vec<u8> = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= N {
                kept.extend_from_slice(&data);
            } else if seen > N + DRAIN_CAP {
                break;
            }
        }
        if seen > N {
            return Err(ApiError::TooLarge(N));
        }
        Ok(Limited(Bytes::from(kept)))
    }
}

type JsonBody = Limited<MAX_JSON_BODY>;

// ---------------------------------------------------------------------------------------------
// Handlers.

async fn ping() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn health<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    let schema = api.core.store.schema_version()?;
    let state = api.core.policies.current();
    json(&serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "schemaVersion": schema,
        "policyRevision": state.revision,
    }))
}

async fn metrics<B: Backend>(State(api): State<Shared<B>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.core.metrics.render(),
    )
        .into_response()
}

async fn whoami(axum::Extension(p): axum::Extension<Principal>) -> ApiResult<Response> {
    json(&p)
}

async fn clusters<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    let mut clusters = api.core.store.clusters()?;
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    json(&serde_json::json!({ "clusters": clusters }))
}

async fn cluster<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    match api.core.store.cluster(&id)? {
        Some(c) => json(&c),
        None => Err(ApiError::NotFound(format!("no cluster '{id}'"))),
    }
}

async fn refusals<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    json(&serde_json::json!({
        "total": api.core.refusals.total(),
        "latest": api.core.refusals.latest(),
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentSummary {
    cluster_id: String,
    id: String,
    namespace: String,
    name: String,
    kind: String,
    updated_unix_ms: i64,
}

async fn deployments<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["cluster", "namespace", "limit", "after"])?;
    let limit = params.number(&["limit"], 100, MAX_PAGE)?.max(1);
    let namespace = params.one(&["namespace"]).map(str::to_string);
    let mut clusters: Vec<String> = match params.one(&["cluster"]) {
        Some(c) => vec![c.to_string()],
        None => api
            .core
            .store
            .clusters()?
            .into_iter()
            .map(|c| c.id)
            .collect(),
    };
    clusters.sort();
    // The cursor is `cluster/deployment-id` of the last item of the previous page.
    let after = params.one(&["after"]).map(str::to_string);
    let (after_cluster, after_id) = match after.as_deref().and_then(|a| a.split_once('/')) {
        Some((c, d)) => (Some(c.to_string()), Some(d.to_string())),
        None if after.is_some() => {
            return Err(ApiError::BadRequest(
                "after must be the nextCursor of a previous page".into(),
            ));
        }
        None => (None, None),
    };
    let mut items = Vec::new();
    for c in clusters
        .iter()
        .filter(|c| after_cluster.as_deref().is_none_or(|a| c.as_str() >= a))
    {
        let mut cursor = if after_cluster.as_deref() == Some(c.as_str()) {
            after_id.clone()
        } else {
            None
        };
        while items.len() < limit {
            let page = api.core.store.deployments(c, cursor.as_deref(), MAX_PAGE)?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.id.clone());
            for d in page {
                if namespace.as_deref().is_some_and(|n| n != d.namespace) {
                    continue;
                }
                items.push(DeploymentSummary {
                    cluster_id: d.cluster_id,
                    id: d.id,
                    namespace: d.namespace,
                    name: d.name,
                    kind: d.kind,
                    updated_unix_ms: d.updated_unix_ms,
                });
                if items.len() == limit {
                    break;
                }
            }
        }
        if items.len() == limit {
            break;
        }
    }
    let next = (items.len() == limit)
        .then(|| items.last().map(|d| format!("{}/{}", d.cluster_id, d.id)))
        .flatten();
    json(&serde_json::json!({ "deployments": items, "nextCursor": next }))
}

async fn deployment<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let Some(record) = api.core.store.deployment(&cluster, &id)? else {
        return Err(ApiError::NotFound(format!(
            "no deployment '{id}' in cluster '{cluster}'"
        )));
    };
    let active = alerts::persist::active_for(&api.core.store, &cluster, &id)?;
    let images = api.core.images.of_deployment(&cluster, &id);
    let risk = crate::risk::score_record(
        &api.core,
        &record,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )?
    .risk;
    json(
        &serde_json::json!({ "deployment": record, "activeAlerts": active, "images": images, "risk": risk }),
    )
}

/// What the Collectors saw of a deployment: processes, listening endpoints, flows.
async fn deployment_activity<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let core = Arc::clone(&api.core);
    let activity = tokio::task::spawn_blocking(move || {
        crate::activity::of_deployment(&core.store, &cluster, &id)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    json(&activity)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicySummary<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    severity: Severity,
    categories: &'a [String],
    lifecycle_stages: &'a [LifecycleStage],
    disabled: bool,
    /// Enforced at some stage (`enforcedStages` says which).
    enforced: bool,
    enforced_stages: Vec<LifecycleStage>,
    is_default: bool,
    /// Data the policy needs that Central does not have yet (it is not evaluable without it).
    needs: Vec<&'static str>,
}

async fn list_policies<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(
        raw.as_deref(),
        &["category", "severity", "disabled", "query"],
    )?;
    let state = api.core.policies.current();
    let categories = params.all("category");
    let severity = match params.one(&["severity"]) {
        Some(s) => Some(Severity::parse_short(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "'{s}' is not a severity (low, medium, high, critical)"
            ))
        })?),
        None => None,
    };
    let disabled = params.boolean("disabled")?;
    let text = params.one(&["query"]).map(str::to_lowercase);
    let list: Vec<PolicySummary<'_>> = state
        .policies
        .iter()
        .filter(|p| {
            (categories.is_empty()
                || p.categories
                    .iter()
                    .any(|c| categories.iter().any(|w| w.eq_ignore_ascii_case(c))))
                && severity.is_none_or(|s| p.severity == s)
                && disabled.is_none_or(|d| p.disabled == d)
                && text.as_deref().is_none_or(|t| {
                    p.name.to_lowercase().contains(t) || p.description.to_lowercase().contains(t)
                })
        })
        .map(|p| PolicySummary {
            id: &p.id,
            name: &p.name,
            description: &p.description,
            severity: p.severity,
            categories: &p.categories,
            lifecycle_stages: &p.lifecycle_stages,
            disabled: p.disabled,
            enforced: !p.enforced_stages().is_empty(),
            enforced_stages: p.enforced_stages(),
            is_default: p.is_default,
            needs: state
                .compiled
                .iter()
                .find(|c| c.policy.id == p.id)
                .map(|c| c.needs.iter().map(|n| n.describe()).collect())
                .unwrap_or_default(),
        })
        .collect();
    json(&serde_json::json!({ "policies": list, "revision": state.revision }))
}

async fn get_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let state = api.core.policies.current();
    match state.get(&id) {
        Some(p) => json(p),
        None => Err(PolicyError::NotFound(id).into()),
    }
}

/// A policy body: ACS JSON, unknown fields refused by name.
fn policy_from_body(body: &[u8]) -> ApiResult<Policy> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let mut list = parse_policies(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if list.len() != 1 {
        return Err(ApiError::BadRequest(format!(
            "expected one policy, got {} (use /v1/policies/import for several)",
            list.len()
        )));
    }
    Ok(list.remove(0))
}

async fn create_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let policy = policy_from_body(&body)?;
    let created = api.core.policies.create(policy).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn update_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let policy = policy_from_body(&body)?;
    json(&api.core.policies.update(&id, policy).await?)
}

/// `PATCH /v1/policies/{id}`: `{"disabled": bool}` as in ACS, and `"enforcementActions"` (ACS's
/// names) to switch enforcement without sending the whole policy.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyPatch {
    disabled: Option<bool>,
    enforcement_actions: Option<Vec<rampart_policy::policy::EnforcementAction>>,
}

async fn patch_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let patch: PolicyPatch = parse_json(&body)?;
    if patch.disabled.is_none() && patch.enforcement_actions.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give \"disabled\", \"enforcementActions\" or both".into(),
        ));
    }
    let change = crate::policies::PolicyChange {
        disabled: patch.disabled,
        enforcement_actions: patch.enforcement_actions,
    };
    json(&api.core.policies.patch(&id, change).await?)
}

async fn delete_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    api.core.policies.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImportRequest {
    policies: Vec<serde_json::Value>,
    #[serde(default)]
    overwrite: bool,
    /// ACS's metadata object (`{"overwrite": true}`) is accepted too.
    #[serde(default)]
    metadata: Option<ImportMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportMetadata {
    #[serde(default)]
    overwrite: bool,
}

async fn import_policies<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: ImportRequest = parse_json(&body)?;
    let overwrite = request.overwrite || request.metadata.is_some_and(|m| m.overwrite);
    let mut policies = Vec::with_capacity(request.policies.len());
    let mut parse_errors = Vec::new();
    for (i, value) in request.policies.into_iter().enumerate() {
        let text = value.to_string();
        match parse_policies(&text) {
            Ok(mut p) if p.len() == 1 => policies.push(p.remove(0)),
            Ok(_) => parse_errors.push(format!("policies[{i}]: not a single policy")),
            Err(e) => parse_errors.push(format!("policies[{i}]: {e}")),
        }
    }
    if !parse_errors.is_empty() {
        // Nothing is imported when the file itself is malformed: fix it and retry.
        return Err(ApiError::Invalid {
            message: "the import contains malformed policies; nothing was imported".into(),
            details: parse_errors,
        });
    }
    let results = api.core.policies.import(policies, overwrite).await?;
    let all_ok = results.iter().all(|r| r.succeeded);
    json(&serde_json::json!({ "responses": results, "allSucceeded": all_ok }))
}

fn export(api: &Api<impl Backend>, ids: &[String]) -> ApiResult<Response> {
    let state = api.core.policies.current();
    for id in ids {
        if state.get(id).is_none() {
            return Err(ApiError::NotFound(format!("no policy with id '{id}'")));
        }
    }
    let list = PolicyList {
        policies: state
            .policies
            .iter()
            .filter(|p| ids.is_empty() || ids.contains(&p.id))
            .cloned()
            .collect(),
    };
    json(&list)
}

async fn export_policies_get<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["id"])?;
    export(&api, &params.all("id"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportRequest {
    #[serde(default)]
    policy_ids: Vec<String>,
}

async fn export_policies_post<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: ExportRequest = parse_json(&body)?;
    export(&api, &request.policy_ids)
}

async fn dry_run<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["limit"])?;
    let limit = params.number(&["limit"], 100, MAX_PAGE)?;
    let policy = policy_from_body(&body)?;
    let core = Arc::clone(&api.core);
    let result =
        tokio::task::spawn_blocking(move || crate::reassess::dry_run(&core, &policy, limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    json(&result)
}

// --- Alerts ---

/// The value an alert list is sorted by (ties broken by id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Number(i64),
    Severity(Severity),
    Text(String),
}

impl SortKey {
    fn of(a: &crate::search::AlertView<'_>, field: SortField) -> SortKey {
        match field {
            SortField::Time => SortKey::Number(a.time_unix_ms),
            SortField::Severity => SortKey::Severity(a.severity),
            SortField::Policy => SortKey::Text(a.policy_name.to_string()),
            SortField::Deployment => SortKey::Text(a.deployment_name.to_string()),
            SortField::Namespace => SortKey::Text(a.namespace.to_string()),
            SortField::Cluster => SortKey::Text(a.cluster_id.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    Time,
    Severity,
    Policy,
    Deployment,
    Namespace,
    Cluster,
}

fn parse_sort(params: &Params) -> ApiResult<(SortField, bool)> {
    let raw = params
        .one(&["sort", "pagination.sortOption.field"])
        .unwrap_or("-Time");
    let (descending, name) = match raw.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, raw),
    };
    let reversed = params.boolean("pagination.sortOption.reversed")?;
    let field = match name.to_ascii_lowercase().replace(' ', "").as_str() {
        "time" | "violationtime" => SortField::Time,
        "severity" => SortField::Severity,
        "policy" => SortField::Policy,
        "deployment" => SortField::Deployment,
        "namespace" => SortField::Namespace,
        "cluster" => SortField::Cluster,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "cannot sort by '{name}'; use Time, Severity, Policy, Deployment, Namespace or Cluster (prefix - for descending)"
            )));
        }
    };
    Ok((field, reversed.unwrap_or(descending)))
}

/// The alert query: ACS's default is active violations unless the query names a state.
fn alert_query(params: &Params) -> ApiResult<Query> {
    let text = params.one(&["query"]).unwrap_or("");
    let mut query = Query::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !query.names(Field::ViolationState) {
        query = Query::parse(&format!("{text}+Violation State:ACTIVE,ATTEMPTED"))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    Ok(query)
}

/// A page of alerts found with the ACS search syntax.
#[derive(Debug, Serialize)]
pub(crate) struct AlertPage {
    pub alerts: Vec<AlertRecord>,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// The alerts a query string (`query`, `sort`, `limit`, `offset` and ACS's `pagination.*`
/// names) selects; the API's list and the console's Violations page.
pub(crate) async fn find_alerts<B: Backend>(
    core: &Arc<Core<B>>,
    raw: Option<&str>,
    extra: &[&str],
) -> ApiResult<AlertPage> {
    let mut known = vec![
        "query",
        "limit",
        "offset",
        "sort",
        "pagination.limit",
        "pagination.offset",
        "pagination.sortOption.field",
        "pagination.sortOption.reversed",
    ];
    known.extend_from_slice(extra);
    let params = Params::parse(raw, &known)?;
    let query = alert_query(&params)?;
    let limit = params
        .number(&["limit", "pagination.limit"], 100, MAX_PAGE)?
        .max(1);
    let offset = params.number(&["offset", "pagination.offset"], 0, MAX_OFFSET)?;
    let (field, descending) = parse_sort(&params)?;
    let core = Arc::clone(core);
    let (alerts, total) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        // Every alert is read through its searchable fields only; the best `want` are kept
        // by their sort key, and only the page's are decoded in full.
        let want = offset + limit;
        let order = |a: &(SortKey, String), b: &(SortKey, String)| {
            let o = a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1));
            if descending { o.reverse() } else { o }
        };
        let mut kept: Vec<(SortKey, String)> = Vec::new();
        let mut total = 0usize;
        core.store.for_each_raw(Table::Alerts, "a/", |k, bytes| {
            let view: crate::search::AlertView<'_> =
                serde_json::from_slice(bytes).map_err(|source| crate::store::Error::Corrupt {
                    table: Table::Alerts.name(),
                    key: k.to_string(),
                    source,
                })?;
            if query.matches_view(&view) {
                total += 1;
                kept.push((SortKey::of(&view, field), view.id.into_owned()));
                if kept.len() >= 2 * want + 1024 {
                    kept.sort_by(order);
                    kept.truncate(want);
                }
            }
            Ok(())
        })?;
        kept.sort_by(order);
        kept.truncate(want);
        let mut page = Vec::with_capacity(limit);
        for (_, id) in kept.into_iter().skip(offset) {
            if let Some(a) = alerts::persist::get(&core.store, &id)? {
                page.push(a);
            }
        }
        Ok((page, total))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(AlertPage {
        alerts,
        total,
        offset,
        limit,
    })
}

async fn list_alerts<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    json(&find_alerts(&api.core, raw.as_deref(), &[]).await?)
}

async fn count_alerts<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["query", "groupBy"])?;
    let query = alert_query(&params)?;
    let group = params.one(&["groupBy"]).map(str::to_ascii_lowercase);
    if let Some(g) = &group
        && !["severity", "cluster", "namespace", "policy", "category"].contains(&g.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "cannot group by '{g}'; use severity, cluster, namespace, policy or category"
        )));
    }
    let core = Arc::clone(&api.core);
    let (count, groups) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let mut count = 0usize;
        let mut groups: BTreeMap<String, usize> = BTreeMap::new();
        core.store
            .for_each_record::<AlertRecord>(Table::Alerts, "a/", |_, a| {
                if query.matches(&a) {
                    count += 1;
                    let keys: Vec<String> = match group.as_deref() {
                        Some("severity") => vec![a.severity.short().to_string()],
                        Some("cluster") => vec![a.cluster_id.clone()],
                        Some("namespace") => vec![format!("{}/{}", a.cluster_id, a.namespace)],
                        Some("policy") => vec![a.policy_name.clone()],
                        Some("category") => a.categories.clone(),
                        _ => vec![],
                    };
                    for k in keys {
                        *groups.entry(k).or_default() += 1;
                    }
                }
                Ok(())
            })?;
        Ok((count, groups))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    json(&serde_json::json!({ "count": count, "groups": groups }))
}

async fn get_alert<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let Some(alert) = alerts::persist::get(&api.core.store, &id)? else {
        return Err(ApiError::NotFound(format!("no alert '{id}'")));
    };
    let policy = api.core.policies.current().get(&alert.policy_id).cloned();
    json(&serde_json::json!({ "alert": alert, "policy": policy }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnforceRequest {
    /// Defaults to the policy's deploy-time action.
    #[serde(default)]
    action: Option<String>,
}

/// Orders the alert's Sensor to act on the workload now (scale to zero, node constraint, or
/// delete its pods). The order goes to the live stream; the outcome is recorded on the alert
/// when the Sensor reports it.
async fn enforce_alert<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: EnforceRequest = if body.iter().all(u8::is_ascii_whitespace) {
        EnforceRequest::default()
    } else {
        parse_json(&body)?
    };
    let Some(alert) = alerts::persist::get(&api.core.store, &id)? else {
        return Err(ApiError::NotFound(format!("no alert '{id}'")));
    };
    if alert.state != AlertState::Active {
        return Err(ApiError::Conflict(format!(
            "alert '{id}' is {}; only active alerts can be enforced",
            alert.state.as_str()
        )));
    }
    const ACTIONS: [&str; 3] = [
        "SCALE_TO_ZERO_ENFORCEMENT",
        "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT",
        "KILL_POD_ENFORCEMENT",
    ];
    let policy = api.core.policies.current().get(&alert.policy_id).cloned();
    let action = match request.action {
        Some(a) if ACTIONS.contains(&a.as_str()) => a,
        Some(a) => {
            return Err(ApiError::BadRequest(format!(
                "unknown action '{a}'; use one of {}",
                ACTIONS.join(", ")
            )));
        }
        None => {
            use rampart_policy::policy::EnforcementAction as E;
            let actions = policy
                .as_ref()
                .map(|p| p.enforcement_actions.clone())
                .unwrap_or_default();
            if actions.contains(&E::ScaleToZero) {
                ACTIONS[0].to_string()
            } else if actions.contains(&E::UnsatisfiableNodeConstraint) {
                ACTIONS[1].to_string()
            } else if actions.contains(&E::KillPod) {
                ACTIONS[2].to_string()
            } else {
                return Err(ApiError::BadRequest(
                    "the alert's policy has no enforcement action; name one in \"action\"".into(),
                ));
            }
        }
    };
    let order = rampart_proto::v1::EnforcementOrder {
        order_id: uuid::Uuid::now_v7().to_string(),
        deployment_id: alert.deployment_id.clone(),
        action: action.clone(),
        alert_id: alert.id.clone(),
        policy_id: alert.policy_id.clone(),
    };
    let order_id = order.order_id.clone();
    api.core
        .orders
        .send(&alert.cluster_id, order)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    tracing::info!(alert = %alert.id, order = %order_id, %action, "enforcement ordered");
    let mut response = json(&serde_json::json!({
        "orderId": order_id,
        "alertId": alert.id,
        "clusterId": alert.cluster_id,
        "deploymentId": alert.deployment_id,
        "action": action,
    }))?;
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// Resolves alerts by id, cluster by cluster: holding the cluster's lane, after one commit
/// barrier (the store is then the truth), in one durable batch. Returns those resolved.
pub(crate) async fn resolve_ids<B: Backend>(
    core: &Core<B>,
    ids: &[String],
) -> ApiResult<Vec<AlertRecord>> {
    let mut by_cluster: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for id in ids {
        if let Some(peek) = alerts::persist::get(&core.store, id)? {
            by_cluster.entry(peek.cluster_id).or_default().push(id);
        }
    }
    let mut resolved = Vec::new();
    for (cluster, ids) in by_cluster {
        let lane = core.lanes.lane(&cluster);
        let mut overlay = lane.lock().await;
        core.committer.commit(WriteBatch::default()).await?;
        let now = crate::model::now_unix_ms();
        let mut batch = WriteBatch::default();
        let mut done = Vec::new();
        for id in ids {
            let Some(mut alert) = alerts::persist::get(&core.store, id)? else {
                continue;
            };
            if alert.state == AlertState::Resolved {
                continue;
            }
            alert.state = AlertState::Resolved;
            alert.resolved_unix_ms = Some(now);
            alert.time_unix_ms = now;
            alerts::persist::put(&mut batch, &alert)?;
            done.push(alert);
        }
        if !batch.is_empty() {
            core.committer.commit(batch).await?;
        }
        for a in &done {
            overlay.forget(&a.deployment_id);
        }
        core.metrics
            .alerts_resolved
            .inc_by(u64::try_from(done.len()).unwrap_or(0));
        resolved.extend(done);
    }
    Ok(resolved)
}

/// `PATCH /v1/alerts/{id}/resolve[?addToBaseline=true]`: resolves an alert; with
/// `addToBaseline`, a runtime process alert's processes join their containers' baselines first
/// (ACS's "resolve and add to baseline").
async fn resolve_alert<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["addToBaseline"])?;
    let add = match params.one(&["addToBaseline"]) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "addToBaseline must be true or false, not '{other}'"
            )));
        }
    };
    let Some(alert) = alerts::persist::get(&api.core.store, &id)? else {
        return Err(ApiError::NotFound(format!("no alert '{id}'")));
    };
    if add {
        if alert.processes.is_empty() {
            return Err(ApiError::BadRequest(
                "only runtime process alerts can add to a baseline".into(),
            ));
        }
        add_to_baselines(&api.core, &alert).await?;
    }
    if alert.state == AlertState::Resolved {
        return json(&alert);
    }
    let mut done = resolve_ids(&api.core, &[id]).await?;
    match done.pop() {
        Some(a) => json(&a),
        None => Err(ApiError::Conflict("the alert changed; retry".into())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkResolve {
    query: String,
}

async fn resolve_alerts<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: BulkResolve = parse_json(&body)?;
    if request.query.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "a query is required (resolving every alert at once is not allowed)".into(),
        ));
    }
    let query = Query::parse(&request.query).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut ids = Vec::new();
    api.core
        .store
        .for_each_record::<AlertRecord>(Table::Alerts, "a/", |_, a| {
            if a.state != AlertState::Resolved && query.matches(&a) {
                ids.push(a.id);
            }
            Ok(())
        })?;
    let resolved = resolve_ids(&api.core, &ids).await?;
    json(&serde_json::json!({ "resolved": resolved.len() }))
}

// --- Detection ---

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DetectRequest {
    yaml: String,
    /// Name used in the report (the file the CLI read).
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    policy_categories: Vec<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    severity_at_least: Option<String>,
    /// ACS sends it; Rampart never calls out for external metadata during detection.
    #[serde(default)]
    no_external_metadata: bool,
}

async fn detect_deploy<B: Backend>(
    State(api): State<Shared<B>>,
    headers: HeaderMap,
    Limited(body): Limited<MAX_DETECT_BODY>,
) -> ApiResult<Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let request: DetectRequest = if is_json {
        parse_json(&body)?
    } else {
        DetectRequest {
            yaml: String::from_utf8(body.to_vec())
                .map_err(|_| ApiError::BadRequest("the manifests are not UTF-8".into()))?,
            ..DetectRequest::default()
        }
    };
    let _ = request.no_external_metadata;
    let severity = match &request.severity_at_least {
        Some(s) => Some(Severity::parse_short(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "'{s}' is not a severity (low, medium, high, critical)"
            ))
        })?),
        None => None,
    };
    let state = api.core.policies.current();
    let report = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let selected = select(
            state.compiled.clone(),
            &Selection {
                stage: LifecycleStage::Deploy,
                categories: &request.policy_categories,
                severity_at_least: severity,
                include: &request.include,
                exclude: &request.exclude,
            },
        )
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let source = Source {
            name: request.file_name.unwrap_or_else(|| "<request>".to_string()),
            text: request.yaml,
        };
        let ctx = EvalContext {
            cluster: request.cluster.as_deref(),
            ..EvalContext::default()
        };
        Ok(run_check(std::slice::from_ref(&source), &selected, &ctx))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    json(&report)
}

// --- Init bundles and tokens ---

async fn list_bundles<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    let bundles =
        persist::bundles(&api.core.store).map_err(|e| ApiError::Internal(e.to_string()))?;
    json(&serde_json::json!({ "bundles": bundles }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleRequest {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
}

fn default_namespace() -> String {
    "rampart".to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuedCertJson {
    service: &'static str,
    cert_pem: String,
    key_pem: String,
}

async fn create_bundle<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: BundleRequest = parse_json(&body)?;
    let bundle = persist::issue_bundle(
        &api.core.store,
        &api.ca,
        &request.name,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| match e {
        persist::Error::Pki(e @ crate::pki::Error::ClusterName(_)) => {
            ApiError::BadRequest(e.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    })?;
    tracing::info!(cluster = %bundle.record.cluster, id = %bundle.record.id, "init bundle issued over the API");
    let secrets = bundle.to_secrets_yaml(&request.namespace);
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "bundle": bundle.record,
            "caPem": bundle.ca_pem,
            "certs": bundle.certs.iter().map(|c| IssuedCertJson {
                service: c.service.as_str(),
                cert_pem: c.cert_pem.clone(),
                key_pem: c.key_pem.clone(),
            }).collect::<Vec<_>>(),
            "secretsYaml": secrets,
        })),
    )
        .into_response())
}

async fn revoke_bundle<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    match persist::revoke(&api.core.store, &api.revocations, &id) {
        Ok(revoked) => json(&serde_json::json!({ "revoked": revoked })),
        Err(persist::Error::NoSuchBundle(_)) => Err(ApiError::NotFound(format!(
            "no unrevoked init bundle with id or cluster name '{id}'"
        ))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

async fn list_tokens<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    let tokens =
        auth::list_tokens(&api.core.store).map_err(|e| ApiError::Internal(e.to_string()))?;
    json(&serde_json::json!({ "tokens": tokens }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    name: String,
    role: String,
    /// Lifetime in seconds; none means it does not expire.
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

async fn create_token<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: TokenRequest = parse_json(&body)?;
    if request.name.trim().is_empty() || request.name.len() > 200 {
        return Err(ApiError::BadRequest(
            "a token needs a name of 1 to 200 characters".into(),
        ));
    }
    let role = Role::parse(&request.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown role '{}'; use admin, analyst or ci",
            request.role
        ))
    })?;
    let expires = request.expires_in_seconds.map(auth::expiry_after);
    let (token, record) = auth::create_token(&api.core.store, &request.name, role, expires)
        .map_err(|e| match e {
            auth::Error::SensorToken(_) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })?;
    tracing::info!(token_id = %record.id, name = %record.name, role = record.role.as_str(), "API token created");
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "token": token, "record": record })),
    )
        .into_response())
}

async fn revoke_token<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    match auth::revoke_token(&api.core.store, &id) {
        Ok(record) => json(&record),
        Err(auth::Error::NoToken(_)) => Err(ApiError::NotFound(format!("no token '{id}'"))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Serving over TLS.

/// Serves the API on `listener` with `tls` until the task is dropped or aborted.
pub fn serve<B: Backend>(
    api: Shared<B>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let app = router(api);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let stream =
                    match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "API TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "API TLS handshake timed out");
                            return;
                        }
                    };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let mut builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                builder
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30));
                builder
                    .http2()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .max_concurrent_streams(128);
                if let Err(error) = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, %error, "API connection ended with an error");
                }
            });
        }
    });
    Ok((addr, task))
}

// ---------------------------------------------------------------------------------------------
// Images, CVEs and the vulnerability data.

impl From<crate::images::ImageError> for ApiError {
    fn from(e: crate::images::ImageError) -> ApiError {
        use crate::images::ImageError as E;
        match e {
            E::Reference(m) => ApiError::BadRequest(m),
            E::Scan(m) => ApiError::Upstream(m),
            E::Busy => ApiError::Timeout(Duration::from_secs(30)),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Largest vulnerability data file one import takes (osv.dev's largest ecosystem dump fits).
pub const MAX_VULNDB_BODY: usize = 512 * 1024 * 1024;

fn parse_level(text: &str) -> ApiResult<rampart_scanner::report::Level> {
    rampart_scanner::report::Level::parse(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "'{text}' is not a severity (low, medium/moderate, high/important, critical)"
        ))
    })
}

/// What image and CVE lists share: paging, severity (at least), fixable, and the scope of the
/// deployments concerned (cluster, namespace).
struct VulnListParams {
    limit: usize,
    offset: usize,
    severity: Option<rampart_scanner::report::Level>,
    fixable: Option<bool>,
    cluster: Option<String>,
    namespace: Option<String>,
}

impl VulnListParams {
    fn of(params: &Params) -> ApiResult<VulnListParams> {
        Ok(VulnListParams {
            limit: params.number(&["limit"], 100, MAX_PAGE)?.max(1),
            offset: params.number(&["offset"], 0, MAX_OFFSET)?,
            severity: params.one(&["severity"]).map(parse_level).transpose()?,
            fixable: params.boolean("fixable")?,
            cluster: params.one(&["cluster"]).map(str::to_string),
            namespace: params.one(&["namespace"]).map(str::to_string),
        })
    }

    /// Whether a cluster or namespace narrows the list.
    fn scoped(&self) -> bool {
        self.cluster.is_some() || self.namespace.is_some()
    }

    fn in_scope(&self, d: &crate::images::DeploymentRef) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == d.cluster_id)
            && self.namespace.as_deref().is_none_or(|n| n == d.namespace)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<T: Serialize> {
    total: usize,
    offset: usize,
    limit: usize,
    items: Vec<T>,
}

impl<T: Serialize> Page<T> {
    /// The `limit` items from `offset` of a whole sorted list.
    fn of(all: Vec<T>, offset: usize, limit: usize) -> Page<T> {
        Page {
            total: all.len(),
            offset,
            limit,
            items: all.into_iter().skip(offset).take(limit).collect(),
        }
    }
}

/// `GET /v1/images`: scanned images (and references waiting or failed), filtered and sorted.
/// `severity=critical` keeps images with at least one vulnerability that severe, `fixable=true`
/// those with a fixable one, `cve=` those affected by one, `cluster`/`namespace` those running
/// there, `status=` by scan state; `sort` is `-topCvss` (default), `name`, `-vulnerabilities`,
/// `-deployments` or `-scanned`.
async fn list_images<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(
        raw.as_deref(),
        &[
            "severity",
            "fixable",
            "cve",
            "cluster",
            "namespace",
            "status",
            "sort",
            "limit",
            "offset",
            "name",
        ],
    )?;
    let p = VulnListParams::of(&params)?;
    let cve = params.one(&["cve"]).map(str::to_ascii_uppercase);
    let status = params.one(&["status"]).map(str::to_ascii_uppercase);
    let name = params.one(&["name"]).map(str::to_string);
    let mut images: Vec<_> = api
        .core
        .images
        .list()
        .into_iter()
        .filter(|i| {
            p.severity
                .is_none_or(|s| i.max_level().is_some_and(|m| m >= s))
                && p.fixable.is_none_or(|f| (i.fixable > 0) == f)
                && cve
                    .as_deref()
                    .is_none_or(|c| i.cves.iter().any(|x| x.eq_ignore_ascii_case(c)))
                && status.as_deref().is_none_or(|s| i.status == s)
                && name
                    .as_deref()
                    .is_none_or(|n| i.references.iter().any(|r| r.contains(n)))
                && (!p.scoped() || i.users.iter().any(|d| p.in_scope(d)))
        })
        .collect();
    match params.one(&["sort"]).unwrap_or("-topCvss") {
        "-topCvss" => images.sort_by(|a, b| {
            b.top_cvss
                .partial_cmp(&a.top_cvss)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| b.vulnerabilities.cmp(&a.vulnerabilities))
                .then_with(|| a.name.cmp(&b.name))
        }),
        "name" => images.sort_by(|a, b| a.name.cmp(&b.name)),
        "-vulnerabilities" => images.sort_by(|a, b| {
            b.vulnerabilities
                .cmp(&a.vulnerabilities)
                .then_with(|| a.name.cmp(&b.name))
        }),
        "-deployments" => images.sort_by(|a, b| {
            b.deployments
                .cmp(&a.deployments)
                .then_with(|| a.name.cmp(&b.name))
        }),
        "-scanned" => images.sort_by(|a, b| {
            b.scanned_unix_ms
                .cmp(&a.scanned_unix_ms)
                .then_with(|| a.name.cmp(&b.name))
        }),
        other => {
            return Err(ApiError::BadRequest(format!(
                "sort must be -topCvss, name, -vulnerabilities, -deployments or -scanned, not '{other}'"
            )));
        }
    }
    json(&Page::of(images, p.offset, p.limit))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageDetail<'a> {
    id: &'a str,
    references: &'a [String],
    scanned_unix_ms: i64,
    image: &'a rampart_scanner::image::ImageScan,
    deployments: Vec<crate::images::DeploymentRef>,
}

/// `GET /v1/images/{id}` by digest (or a scanned reference): components with their
/// vulnerabilities, facts, notes, and the deployments running it.
async fn get_image<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let Some((scanned, deployments)) = api.core.images.get(&id) else {
        return Err(ApiError::NotFound(format!("no scanned image {id}")));
    };
    json(&ImageDetail {
        id: &scanned.record.facts.digest,
        references: &scanned.record.references,
        scanned_unix_ms: scanned.record.scanned_unix_ms,
        image: &scanned.scan,
        deployments,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScanRequest {
    image: String,
    /// Pull and analyze again even when Central has a scan.
    #[serde(default)]
    force: bool,
}

/// `POST /v1/images/scan {"image": REF, "force": false}`: Central's scan of an image (pulled
/// now unless it has one), as `rampart image scan` prints it.
async fn scan_image<B: Backend>(
    State(api): State<Shared<B>>,
    JsonBody { 0: body }: JsonBody,
) -> ApiResult<Response> {
    let request: ScanRequest = parse_json(&body)?;
    let scanned = api
        .core
        .images
        .scan_now(&api.core, &request.image, request.force)
        .await?;
    json(&scanned.scan)
}

/// `GET /v1/cves`: every vulnerability in the scanned images with how many images and
/// deployments it affects. Filters: `severity` (at least), `fixable`, `cluster`, `namespace`
/// (affecting deployments there); `sort` is `-cvss` (default), `-deployments` or `id`.
async fn list_cves<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(
        raw.as_deref(),
        &[
            "severity",
            "fixable",
            "cluster",
            "namespace",
            "sort",
            "limit",
            "offset",
        ],
    )?;
    let p = VulnListParams::of(&params)?;
    let mut cves: Vec<_> = api
        .core
        .images
        .cves()
        .into_iter()
        .filter(|c| {
            p.severity.is_none_or(|s| c.severity >= s)
                && p.fixable.is_none_or(|f| c.fixable == f)
                && (!p.scoped() || c.affected_deployments.iter().any(|d| p.in_scope(d)))
        })
        .map(|mut c| {
            if p.scoped() {
                c.affected_deployments.retain(|d| p.in_scope(d));
                c.deployments = c.affected_deployments.len();
            }
            c
        })
        .collect();
    match params.one(&["sort"]).unwrap_or("-cvss") {
        "-cvss" => cves.sort_by(|a, b| {
            b.cvss
                .partial_cmp(&a.cvss)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| b.severity.cmp(&a.severity))
                .then_with(|| b.deployments.cmp(&a.deployments))
                .then_with(|| a.id.cmp(&b.id))
        }),
        "-deployments" => cves.sort_by(|a, b| {
            b.deployments
                .cmp(&a.deployments)
                .then_with(|| a.id.cmp(&b.id))
        }),
        "id" => cves.sort_by(|a, b| a.id.cmp(&b.id)),
        other => {
            return Err(ApiError::BadRequest(format!(
                "sort must be -cvss, -deployments or id, not '{other}'"
            )));
        }
    }
    json(&Page::of(cves, p.offset, p.limit))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CveDetail<'a> {
    #[serde(flatten)]
    cve: &'a crate::images::CveSummary,
    affected_images: Vec<&'a crate::images::AffectedImage>,
    affected_deployments: &'a std::collections::BTreeSet<crate::images::DeploymentRef>,
}

/// `GET /v1/cves/{id}` (a CVE or any alias): the images and components it affects, with the
/// version that fixes each, and the deployments running them.
async fn get_cve<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let cves = api.core.images.cves();
    let Some(cve) = cves.iter().find(|c| {
        c.id.eq_ignore_ascii_case(&id) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(&id))
    }) else {
        return Err(ApiError::NotFound(format!(
            "no scanned image is affected by {id}"
        )));
    };
    json(&CveDetail {
        cve,
        affected_images: cve.affected_images.values().collect(),
        affected_deployments: &cve.affected_deployments,
    })
}

/// Vulnerability data older than this is flagged stale.
const STALE_DAYS: u64 = 7;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VulnDbStatus {
    #[serde(flatten)]
    status: rampart_scanner::store::Status,
    last_import_age_days: Option<u64>,
    stale: bool,
}

fn vulndb_view(status: rampart_scanner::store::Status) -> VulnDbStatus {
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let age = status
        .imports
        .iter()
        .map(|i| i.at)
        .max()
        .map(|at| now.saturating_sub(at) / 86_400);
    VulnDbStatus {
        stale: age.is_none_or(|a| a > STALE_DAYS),
        last_import_age_days: age,
        status,
    }
}

/// `GET /v1/vulndb`: what the vulnerability data holds, its age, and whether it is stale.
async fn vulndb_status<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    let status = api
        .core
        .images
        .vulndb_status()?
        .ok_or_else(|| ApiError::NotFound("Central keeps no vulnerability data".into()))?;
    json(&vulndb_view(status))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportResult {
    osv_records: usize,
    secdb_files: usize,
    debian_packages: usize,
    rejected: Vec<String>,
    /// Deployments reassessed because their images' findings changed.
    deployments_affected: usize,
    vulndb: VulnDbStatus,
}

/// `POST /v1/vulndb/import?name=FILE`: one vulnerability data file as the body (an OSV record
/// or array, JSON or YAML; an osv.dev zip; an Alpine secdb file; the Debian tracker JSON).
/// Every image is matched again and the deployments whose findings changed are reassessed.
async fn vulndb_import<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
    Limited(body): Limited<MAX_VULNDB_BODY>,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["name"])?;
    let name = params.one(&["name"]).unwrap_or("upload").to_string();
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty: send one data file".into(),
        ));
    }
    // The file keeps its name (`.yaml`, `.zip`) so the importer reads it as what it is.
    let safe: String = name
        .rsplit('/')
        .next()
        .unwrap_or("upload")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    let safe = if safe.is_empty() || safe.starts_with('.') {
        format!("upload{safe}")
    } else {
        safe
    };
    let core = Arc::clone(&api.core);
    let (stats, changed) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let dir = tempfile::tempdir().map_err(|e| ApiError::Internal(e.to_string()))?;
        let path = dir.path().join(&safe);
        std::fs::write(&path, &body).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(core.images.import_blocking(&path)?)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    if stats.osv_records + stats.secdb_files + stats.debian_packages == 0 {
        return Err(ApiError::Invalid {
            message: format!("{name} holds no vulnerability data Rampart reads"),
            details: stats
                .rejected
                .iter()
                .map(|(_, reason)| reason.clone())
                .collect(),
        });
    }
    let deployments_affected = changed.len();
    api.core.images.notify_changed(changed).await;
    let status = api
        .core
        .images
        .vulndb_status()?
        .ok_or_else(|| ApiError::Internal("the vulnerability store vanished".into()))?;
    json(&ImportResult {
        osv_records: stats.osv_records,
        secdb_files: stats.secdb_files,
        debian_packages: stats.debian_packages,
        rejected: stats
            .rejected
            .iter()
            .map(|(file, reason)| {
                let file = file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{file}: {reason}")
            })
            .collect(),
        deployments_affected,
        vulndb: vulndb_view(status),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BuildDetectRequest {
    image: String,
    #[serde(default)]
    force: bool,
    /// Only policies in these categories (case-insensitive).
    #[serde(default)]
    policy_categories: Vec<String>,
}

/// `POST /v1/detect/build {"image": REF}`: the image (Central's scan, pulled now when it has
/// none) against Central's enabled build-time policies, as `rampart image check` reports it.
async fn detect_build<B: Backend>(
    State(api): State<Shared<B>>,
    JsonBody { 0: body }: JsonBody,
) -> ApiResult<Response> {
    let request: BuildDetectRequest = parse_json(&body)?;
    let scanned = api
        .core
        .images
        .scan_now(&api.core, &request.image, request.force)
        .await?;
    let state = api.core.policies.current();
    let selected: Vec<&rampart_policy::compile::CompiledPolicy> = state
        .compiled
        .iter()
        .filter(|p| !p.policy.disabled && p.policy.has_stage(LifecycleStage::Build))
        .filter(|p| {
            request.policy_categories.is_empty()
                || p.policy.categories.iter().any(|c| {
                    request
                        .policy_categories
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(c))
                })
        })
        .collect();
    json(&rampart_scanner::image::build_check(
        &scanned.scan,
        &selected,
        time::OffsetDateTime::now_utc(),
    ))
}

/// `GET /v1/risk?cluster=&namespace=&limit=&offset=`: deployments, riskiest first, each with its
/// score and the factors behind it.
async fn list_risk<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["cluster", "namespace", "limit", "offset"])?;
    let limit = params.number(&["limit"], 100, MAX_PAGE)?.max(1);
    let offset = params.number(&["offset"], 0, MAX_OFFSET)?;
    let cluster = params.one(&["cluster"]).map(str::to_string);
    let namespace = params.one(&["namespace"]).map(str::to_string);
    let core = Arc::clone(&api.core);
    let ranked = tokio::task::spawn_blocking(move || core.ranking.get(&core))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let selected: Vec<&crate::risk::Ranked> = ranked
        .iter()
        .map(|r| &**r)
        .filter(|r| cluster.as_deref().is_none_or(|c| c == r.cluster_id))
        .filter(|r| namespace.as_deref().is_none_or(|n| n == r.namespace))
        .collect();
    json(&Page::of(selected, offset, limit))
}

/// One container's baseline as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BaselineView {
    container_name: String,
    /// `USER` (alerts on anything outside), `RAMPART` (learning is over: outside counts as
    /// suspicious in risk), or absent (still learning).
    locked_by: Option<&'static str>,
    learning_until_unix_ms: i64,
    user_locked_unix_ms: Option<i64>,
    elements: Vec<BaselineElementView>,
    suspicious: Vec<String>,
    last_update_unix_ms: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BaselineElementView {
    exec_file_path: String,
    auto: bool,
    added_unix_ms: i64,
}

pub(crate) fn baseline_view(b: crate::baselines::ProcessBaseline, now_ms: i64) -> impl Serialize {
    BaselineView {
        locked_by: if b.is_user_locked() {
            Some("USER")
        } else if b.is_locked(now_ms) {
            Some("RAMPART")
        } else {
            None
        },
        container_name: b.container_name,
        learning_until_unix_ms: b.learning_until_unix_ms,
        user_locked_unix_ms: b.user_locked_unix_ms,
        elements: b
            .elements
            .into_iter()
            .map(|(exec_file_path, e)| BaselineElementView {
                exec_file_path,
                auto: e.auto,
                added_unix_ms: e.added_unix_ms,
            })
            .collect(),
        suspicious: b.suspicious,
        last_update_unix_ms: b.last_update_unix_ms,
    }
}

/// A deployment Central stores, or 404.
fn stored_deployment<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    id: &str,
) -> ApiResult<crate::model::DeploymentRecord> {
    core.store
        .deployment(cluster, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no deployment '{id}' in cluster '{cluster}'")))
}

/// `GET /v1/deployments/{cluster}/{id}/baselines`: the deployment's process baselines.
async fn list_baselines<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    stored_deployment(&api.core, &cluster, &id)?;
    let now = crate::model::now_unix_ms();
    let baselines: Vec<_> = api
        .core
        .baselines
        .of_deployment(&cluster, &id)
        .into_iter()
        .map(|b| baseline_view(b, now))
        .collect();
    json(&serde_json::json!({ "baselines": baselines }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LockRequest {
    locked: bool,
    /// One container; absent: every container of the deployment.
    #[serde(default)]
    container_name: Option<String>,
}

/// Runs a baseline change under the cluster's lane (so it never interleaves with the Sensor
/// stream's own baseline writes) and commits it; announces user-locked changes to the Sensors.
pub(crate) async fn change_baselines<B: Backend, T>(
    core: &Core<B>,
    cluster: &str,
    change: impl FnOnce(&mut WriteBatch) -> crate::store::Result<T>,
) -> ApiResult<T> {
    let lane = core.lanes.lane(cluster);
    let _overlay = lane.lock().await;
    let mut batch = WriteBatch::default();
    let out = change(&mut batch)?;
    if !batch.is_empty() {
        core.committer.commit(batch).await?;
    }
    core.baselines.announce();
    Ok(out)
}

/// `PUT /v1/deployments/{cluster}/{id}/baselines/lock` `{"locked": true, "containerName"?}`:
/// a person locks (or unlocks) the baselines; locked, anything outside them raises
/// "Unexpected Process Executed".
async fn lock_baselines<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: LockRequest = parse_json(&body)?;
    stored_deployment(&api.core, &cluster, &id)?;
    let now = crate::model::now_unix_ms();
    let core = &api.core;
    let changed = change_baselines(core, &cluster, |batch| {
        core.baselines.set_user_lock(
            &cluster,
            &id,
            request.container_name.as_deref(),
            request.locked,
            now,
            batch,
        )
    })
    .await?;
    tracing::info!(cluster = %cluster, deployment = %id, locked = request.locked, changed = changed.len(), "process baselines locked");
    let baselines: Vec<_> = core
        .baselines
        .of_deployment(&cluster, &id)
        .into_iter()
        .map(|b| baseline_view(b, now))
        .collect();
    json(&serde_json::json!({ "changed": changed.len(), "baselines": baselines }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditRequest {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// `PATCH /v1/deployments/{cluster}/{id}/baselines/{container}` `{"add": [...], "remove":
/// [...]}`: executables (absolute paths) added to or removed from one container's baseline.
async fn edit_baseline<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id, container)): Path<(String, String, String)>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: EditRequest = parse_json(&body)?;
    let now = crate::model::now_unix_ms();
    let baseline = edit_process_baseline(
        &api.core,
        &cluster,
        &id,
        &container,
        &request.add,
        &request.remove,
        now,
    )
    .await?;
    json(&baseline_view(baseline, now))
}

/// Adds and removes executables of one container's baseline, after checking the paths, the
/// deployment and the container (for the API and the console alike).
pub(crate) async fn edit_process_baseline<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    id: &str,
    container: &str,
    add: &[String],
    remove: &[String],
    now: i64,
) -> ApiResult<crate::baselines::ProcessBaseline> {
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::BadRequest("nothing to add or remove".into()));
    }
    if let Some(bad) = add
        .iter()
        .chain(remove)
        .find(|p| !p.starts_with('/') || p.contains('\0') || p.len() > 4096)
    {
        return Err(ApiError::BadRequest(format!(
            "'{bad}' is not an executable's absolute path"
        )));
    }
    if add.len() + remove.len() > crate::baselines::MAX_ELEMENTS {
        return Err(ApiError::BadRequest(format!(
            "at most {} paths per change",
            crate::baselines::MAX_ELEMENTS
        )));
    }
    let record = stored_deployment(core, cluster, id)?;
    if !container_names(&record).iter().any(|c| c == container) {
        return Err(ApiError::NotFound(format!(
            "deployment '{}' has no container '{container}'",
            record.name
        )));
    }
    change_baselines(core, cluster, |batch| {
        core.baselines
            .edit(cluster, id, container, add, remove, now, batch)
    })
    .await
}

/// The container names of a stored deployment (init containers included).
fn container_names(record: &crate::model::DeploymentRecord) -> Vec<String> {
    record
        .normalize()
        .map(|d| d.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

/// Adds a runtime alert's processes to their containers' baselines.
pub(crate) async fn add_to_baselines<B: Backend>(
    core: &Core<B>,
    alert: &AlertRecord,
) -> ApiResult<()> {
    let mut by_container: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in &alert.processes {
        by_container
            .entry(&p.container_name)
            .or_default()
            .push(p.exec_file_path.clone());
    }
    let now = crate::model::now_unix_ms();
    change_baselines(core, &alert.cluster_id, |batch| {
        for (container, paths) in &by_container {
            core.baselines.edit(
                &alert.cluster_id,
                &alert.deployment_id,
                container,
                paths,
                &[],
                now,
                batch,
            )?;
        }
        Ok(())
    })
    .await
}

/// A cluster's id from its id or name, or 404.
pub(crate) fn cluster_id_of<B: Backend>(core: &Core<B>, wanted: &str) -> ApiResult<String> {
    core.store
        .clusters()?
        .into_iter()
        .find(|c| c.id == wanted || c.name == wanted)
        .map(|c| c.id)
        .ok_or_else(|| ApiError::NotFound(format!("no cluster '{wanted}'")))
}

/// The graph of a cluster (or namespace), anomalous edges marked from the network baselines.
pub(crate) fn graph_of<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    namespace: Option<&str>,
) -> ApiResult<crate::netgraph::Graph> {
    let graph = crate::netgraph::build(
        &core.store,
        cluster,
        namespace,
        |deployment, peer, port, protocol, ingress| {
            let as_peer = |id: String| crate::netbaselines::Peer {
                ingress,
                peer: id,
                port,
                protocol: protocol.to_string(),
            };
            core.netbaselines.is_anomalous(
                cluster,
                deployment,
                &as_peer(peer.id.clone()),
                crate::netgraph::broader(peer).map(as_peer).as_ref(),
            )
        },
    )?;
    if graph.nodes.len() > crate::netgraph::MAX_NODES {
        return Err(ApiError::BadRequest(format!(
            "the graph has {} nodes, more than {}: choose a namespace",
            graph.nodes.len(),
            crate::netgraph::MAX_NODES
        )));
    }
    Ok(graph)
}

/// `GET /v1/networkgraph?cluster=&namespace=`: deployments, external entities and the flows
/// between them, aggregated per source, destination, port and protocol.
async fn network_graph<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(raw.as_deref(), &["cluster", "namespace"])?;
    let Some(cluster) = params.one(&["cluster"]) else {
        return Err(ApiError::BadRequest("cluster is required".into()));
    };
    let cluster = cluster_id_of(&api.core, cluster)?;
    let namespace = params.one(&["namespace"]).map(str::to_string);
    let core = Arc::clone(&api.core);
    let graph =
        tokio::task::spawn_blocking(move || graph_of(&core, &cluster, namespace.as_deref()))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    json(&graph)
}

/// `GET /v1/networkpolicies/generate?cluster=&namespace=&from=flows|flows-except-anomalous|baseline&egress=&format=`:
/// one NetworkPolicy per deployment from the observed flows (or the network baselines),
/// simulated on the observed flows against the cluster's NetworkPolicies. `format=yaml` returns
/// only the YAML stream, ready for `kubectl apply -f -`. Nothing is applied.
async fn generate_network_policies<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(
        raw.as_deref(),
        &["cluster", "namespace", "from", "egress", "format"],
    )?;
    let Some(cluster) = params.one(&["cluster"]) else {
        return Err(ApiError::BadRequest("cluster is required".into()));
    };
    let cluster = cluster_id_of(&api.core, cluster)?;
    let namespace = params.one(&["namespace"]).map(str::to_string);
    let from = params.one(&["from"]).unwrap_or("flows");
    let source = crate::netpolicies::Source::parse(from).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "from must be flows, flows-except-anomalous or baseline, not '{from}'"
        ))
    })?;
    let egress = match params.one(&["egress"]).unwrap_or("true") {
        "true" | "1" => true,
        "false" | "0" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "egress must be true or false, not '{other}'"
            )));
        }
    };
    let yaml = match params.one(&["format"]).unwrap_or("json") {
        "json" => false,
        "yaml" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "format must be json or yaml, not '{other}'"
            )));
        }
    };
    let core = Arc::clone(&api.core);
    let report = tokio::task::spawn_blocking(move || {
        crate::netpolicies::generate(
            &core,
            &cluster,
            namespace.as_deref(),
            source,
            egress,
            crate::policies::now_rfc3339(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    if yaml {
        return Ok((
            [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
            report.yaml,
        )
            .into_response());
    }
    json(&report)
}

async fn get_cidrs<B: Backend>(State(api): State<Shared<B>>) -> ApiResult<Response> {
    json(&serde_json::json!({ "blocks": crate::netgraph::cidr_blocks(&api.core.store)? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CidrRequest {
    blocks: Vec<crate::netgraph::CidrBlock>,
}

/// `PUT /v1/networkgraph/cidrs` `{"blocks": [{"name", "cidr"}]}`: the user-defined external
/// networks, replaced whole.
async fn put_cidrs<B: Backend>(
    State(api): State<Shared<B>>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: CidrRequest = parse_json(&body)?;
    let mut batch = WriteBatch::default();
    if let Err(errors) = crate::netgraph::set_cidr_blocks(&request.blocks, &mut batch) {
        return Err(ApiError::Invalid {
            message: "the CIDR blocks are not valid; nothing was changed".into(),
            details: errors,
        });
    }
    api.core.committer.commit(batch).await?;
    json(&serde_json::json!({ "blocks": request.blocks }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkBaselineView {
    locked: bool,
    observation_until_unix_ms: i64,
    peers: Vec<PeerView>,
    rejected: Vec<crate::netbaselines::Peer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerView {
    #[serde(flatten)]
    peer: crate::netbaselines::Peer,
    learned: bool,
    added_unix_ms: i64,
}

fn network_baseline_view(b: crate::netbaselines::NetworkBaseline) -> NetworkBaselineView {
    NetworkBaselineView {
        locked: b.is_locked(),
        observation_until_unix_ms: b.observation_until_unix_ms,
        peers: b
            .peers
            .into_iter()
            .map(|(peer, added_unix_ms, learned)| PeerView {
                peer,
                learned,
                added_unix_ms,
            })
            .collect(),
        rejected: b.rejected.into_iter().collect(),
    }
}

async fn get_network_baseline<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    stored_deployment(&api.core, &cluster, &id)?;
    match api.core.netbaselines.get(&cluster, &id) {
        Some(b) => json(&network_baseline_view(b)),
        None => Err(ApiError::NotFound(format!(
            "deployment '{id}' has no network baseline yet: no flow of it was seen"
        ))),
    }
}

async fn lock_network_baseline<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Lock {
        locked: bool,
    }
    let request: Lock = parse_json(&body)?;
    stored_deployment(&api.core, &cluster, &id)?;
    let now = crate::model::now_unix_ms();
    let core = &api.core;
    let b = change_baselines(core, &cluster, |batch| {
        core.netbaselines
            .set_lock(&cluster, &id, request.locked, now, batch)
    })
    .await?;
    match b {
        Some(b) => json(&network_baseline_view(b)),
        None => Err(ApiError::NotFound(format!(
            "deployment '{id}' has no network baseline yet: no flow of it was seen"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerDecision {
    #[serde(default)]
    accept: Vec<crate::netbaselines::Peer>,
    #[serde(default)]
    reject: Vec<crate::netbaselines::Peer>,
}

/// `PATCH /v1/deployments/{cluster}/{id}/networkbaseline` `{"accept": [peer], "reject":
/// [peer]}`, a peer being `{"ingress", "peer", "port", "protocol"}`.
async fn decide_network_peers<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    Limited(body): JsonBody,
) -> ApiResult<Response> {
    let request: PeerDecision = parse_json(&body)?;
    if request.accept.is_empty() && request.reject.is_empty() {
        return Err(ApiError::BadRequest("nothing to accept or reject".into()));
    }
    if request.accept.len() + request.reject.len() > crate::netbaselines::MAX_PEERS {
        return Err(ApiError::BadRequest(format!(
            "at most {} peers per change",
            crate::netbaselines::MAX_PEERS
        )));
    }
    if let Some(bad) = request
        .accept
        .iter()
        .chain(&request.reject)
        .find(|p| p.peer.is_empty() || p.peer.contains('\0') || p.protocol.is_empty())
    {
        return Err(ApiError::BadRequest(format!(
            "peer {:?} needs a peer id and a protocol",
            bad.peer
        )));
    }
    stored_deployment(&api.core, &cluster, &id)?;
    let now = crate::model::now_unix_ms();
    let core = &api.core;
    let b = change_baselines(core, &cluster, |batch| {
        core.netbaselines
            .decide(&cluster, &id, &request.accept, &request.reject, now, batch)
    })
    .await?;
    json(&network_baseline_view(b))
}
