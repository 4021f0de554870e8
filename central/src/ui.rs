//! The web console, served by Central on its HTTPS port beside the API: server-rendered HTML
//! (askama templates, checked at compile time) and one stylesheet, no script and nothing
//! fetched from anywhere else.
//!
//! ```text
//!  browser ─▶ /ui/* ─▶ session_gate (PAGES: access per page; session cookie; CSRF on POST)
//!                         └─▶ page handlers ─▶ the same functions the API uses
//! ```
//!
//! A session is made by logging in with the admin password or an API token (checked as the API
//! checks them), kept in memory (bounded, 8 hours), and named by an HttpOnly, Secure,
//! SameSite=Strict cookie. Every POST carries the session's CSRF token in its form. Roles are
//! the API's: an Analyst reads every page and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rampart_policy::{LifecycleStage, Severity};

use crate::alerts::{AlertRecord, AlertState};
use crate::api::{ApiError, Shared, find_alerts, resolve_ids};
use crate::auth::{Access, AuthError, Principal};
use crate::store::{Backend, Table};

mod baselines;
mod editor;
mod facts;
mod network;
use editor::{edit_policy, new_policy, save_policy};
pub use network::svg as network_svg;

/// Every page, with the access it needs (`None`: public). A page missing here is refused.
pub const PAGES: &[(&str, &str, Option<Access>)] = &[
    ("GET", "/ui/login", None),
    ("POST", "/ui/login", None),
    ("GET", "/ui/app.css", None),
    ("GET", "/ui/app.js", None),
    ("GET", "/ui/counts", Some(Access::Read)),
    ("POST", "/ui/logout", Some(Access::Read)),
    ("GET", "/ui/", Some(Access::Read)),
    ("GET", "/ui/violations", Some(Access::Read)),
    ("GET", "/ui/violations/{id}", Some(Access::Read)),
    ("POST", "/ui/violations/{id}/resolve", Some(Access::Write)),
    ("GET", "/ui/risk", Some(Access::Read)),
    ("GET", "/ui/risk/{cluster}/{id}", Some(Access::Read)),
    (
        "POST",
        "/ui/deployments/{cluster}/{id}/baselines/lock",
        Some(Access::Write),
    ),
    (
        "POST",
        "/ui/deployments/{cluster}/{id}/baselines/{container}/edit",
        Some(Access::Write),
    ),
    (
        "POST",
        "/ui/deployments/{cluster}/{id}/networkbaseline/lock",
        Some(Access::Write),
    ),
    (
        "POST",
        "/ui/deployments/{cluster}/{id}/networkbaseline/decide",
        Some(Access::Write),
    ),
    ("GET", "/ui/images", Some(Access::Read)),
    ("GET", "/ui/images/{id}", Some(Access::Read)),
    ("GET", "/ui/cves/{id}", Some(Access::Read)),
    ("GET", "/ui/deployments", Some(Access::Read)),
    ("GET", "/ui/network", Some(Access::Read)),
    ("GET", "/ui/network/policies", Some(Access::Read)),
    ("GET", "/ui/network/policies.yaml", Some(Access::Read)),
    ("GET", "/ui/clusters", Some(Access::Read)),
    ("POST", "/ui/clusters/init-bundle", Some(Access::Write)),
    ("GET", "/ui/policies", Some(Access::Read)),
    ("POST", "/ui/policies/{id}/toggle", Some(Access::Write)),
    ("GET", "/ui/policies/new", Some(Access::Write)),
    ("POST", "/ui/policies/new", Some(Access::Write)),
    ("GET", "/ui/policies/{id}/edit", Some(Access::Write)),
    ("POST", "/ui/policies/{id}/edit", Some(Access::Write)),
    ("GET", "/ui/policies/export", Some(Access::Read)),
    ("GET", "/ui/policies/{id}", Some(Access::Read)),
    ("POST", "/ui/policies/import", Some(Access::Write)),
];

const COOKIE: &str = "rampart_session";
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 10_000;
/// Largest form body.
const MAX_FORM: usize = 64 * 1024;

#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    csrf: String,
    created: Instant,
}

/// The console's in-memory state.
#[derive(Debug, Default)]
pub struct Console {
    pub sessions: Sessions,
    /// The last live counts and when they were taken: every open page polls them, and one
    /// walk of the alerts serves every poll within `COUNTS_TTL`.
    counts: Mutex<Option<(Instant, Arc<LiveCounts>)>>,
}

/// How long one count of the alerts serves the pages' polls.
const COUNTS_TTL: Duration = Duration::from_secs(2);

/// What `/ui/counts` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveCounts {
    total: usize,
    by_severity: BTreeMap<Severity, usize>,
}

/// Logged-in browsers, by session id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    // The system's randomness failing is not something to serve sessions through.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn create(&self, principal: Principal) -> Option<(String, Session)> {
        let id = random_token();
        let csrf = random_token();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let session = Session {
            principal,
            csrf,
            created: Instant::now(),
        };
        let mut map = self
            .by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        Some((id, session))
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self
            .by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(id)
            .filter(|s| s.created.elapsed() < SESSION_TTL)
            .cloned()
    }

    fn remove(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The logged-in user as pages show them.
#[derive(Debug, Clone)]
pub struct UserView {
    name: String,
    role: &'static str,
    csrf: String,
    can_write: bool,
}

fn page_access(method: &Method, route: &str) -> Option<Option<Access>> {
    PAGES
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, a)| *a)
}

fn with_security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Runs store work on the blocking pool; a failure is the response to send.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::store::Error> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(ApiError::from(e).into_response()),
        Err(e) => Err(ApiError::Internal(e.to_string()).into_response()),
    }
}

fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

fn refused(user: Option<UserView>, status: StatusCode, message: String) -> Response {
    render(
        &RefusedPage {
            user,
            page: "",
            message,
        },
        status,
    )
}

/// Access per page, the session and, for every POST, its CSRF token.
async fn session_gate<B: Backend>(
    State(api): State<Shared<B>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(access) = page_access(request.method(), &route) else {
        return with_security_headers(refused(None, StatusCode::NOT_FOUND, "No such page.".into()));
    };
    let Some(access) = access else {
        return with_security_headers(next.run(request).await);
    };
    let session_id = cookie(request.headers(), COOKIE).map(str::to_string);
    let Some((id, session)) =
        session_id.and_then(|id| api.console.sessions.get(&id).map(|s| (id, s)))
    else {
        if request.method() == Method::GET {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/ui/".into());
            return Redirect::to(&format!("/ui/login?next={}", urlencode(&target))).into_response();
        }
        return with_security_headers(refused(
            None,
            StatusCode::UNAUTHORIZED,
            "Your session has ended; log in again.".into(),
        ));
    };
    let user = UserView {
        name: session.principal.name.clone(),
        role: session.principal.role.as_str(),
        csrf: session.csrf.clone(),
        can_write: Access::Write.allows(session.principal.role),
    };
    if !access.allows(session.principal.role) {
        let message = format!(
            "Your role, {}, may not do this: it needs {}.",
            session.principal.role.as_str(),
            if access == Access::Write {
                "the Admin role"
            } else {
                "more access"
            }
        );
        return with_security_headers(refused(Some(user), StatusCode::FORBIDDEN, message));
    }
    let (mut parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return with_security_headers(refused(
                Some(user),
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.".into(),
            ));
        };
        let form: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !form.get("csrf").is_some_and(|t| same(t, &session.csrf)) {
            tracing::warn!(user = %session.principal.name, route = %route, "console form refused: missing or wrong CSRF token");
            return with_security_headers(refused(
                Some(user),
                StatusCode::FORBIDDEN,
                "The form's security token is missing or wrong; reload the page and try again."
                    .into(),
            ));
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(user);
    parts.extensions.insert(SessionId(id));
    with_security_headers(next.run(Request::from_parts(parts, body)).await)
}

#[derive(Debug, Clone)]
struct SessionId(String);

/// A page's query string as a map (a malformed one is an empty map: pages fall back to defaults).
fn query_params(raw: Option<&str>) -> BTreeMap<String, String> {
    serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default()
}

/// The `offset` of a paged list, bounded as the API bounds it.
fn offset_of(params: &BTreeMap<String, String>) -> usize {
    params
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0usize)
        .min(crate::api::MAX_OFFSET)
}

/// Percent-encodes everything but unreserved characters and `/`.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The console's routes, for `api::router` to merge.
pub fn router<B: Backend>(api: Shared<B>) -> Router {
    Router::new()
        .route("/ui/login", get(login_page).post(login::<B>))
        .route("/ui/logout", post(logout::<B>))
        .route("/ui/app.css", get(stylesheet))
        .route("/ui/app.js", get(script))
        .route("/ui/counts", get(counts::<B>))
        .route("/ui/", get(dashboard::<B>))
        .route("/ui/violations", get(violations::<B>))
        .route("/ui/violations/{id}", get(violation::<B>))
        .route("/ui/violations/{id}/resolve", post(resolve::<B>))
        .route("/ui/risk", get(risk::<B>))
        .route("/ui/risk/{cluster}/{id}", get(risk_detail::<B>))
        .route(
            "/ui/deployments/{cluster}/{id}/baselines/lock",
            post(baselines::lock::<B>),
        )
        .route(
            "/ui/deployments/{cluster}/{id}/baselines/{container}/edit",
            post(baselines::edit::<B>),
        )
        .route(
            "/ui/deployments/{cluster}/{id}/networkbaseline/lock",
            post(baselines::lock_network::<B>),
        )
        .route(
            "/ui/deployments/{cluster}/{id}/networkbaseline/decide",
            post(baselines::decide_network::<B>),
        )
        .route("/ui/images", get(images::<B>))
        .route("/ui/images/{id}", get(image::<B>))
        .route("/ui/cves/{id}", get(cve::<B>))
        .route("/ui/deployments", get(deployments::<B>))
        .route("/ui/network", get(network::network::<B>))
        .route("/ui/network/policies", get(network::network_policies::<B>))
        .route(
            "/ui/network/policies.yaml",
            get(network::network_policies_yaml::<B>),
        )
        .route("/ui/clusters", get(clusters::<B>))
        .route("/ui/clusters/init-bundle", post(init_bundle::<B>))
        .route("/ui/policies", get(policies::<B>))
        .route("/ui/policies/{id}/toggle", post(toggle_policy::<B>))
        .route("/ui/policies/new", get(new_policy).post(save_policy::<B>))
        .route("/ui/policies/export", get(export_policies::<B>))
        .route("/ui/policies/{id}", get(policy_detail::<B>))
        .route("/ui/policies/import", post(import_policies::<B>))
        .route(
            "/ui/policies/{id}/edit",
            get(edit_policy::<B>).post(save_policy::<B>),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            session_gate::<B>,
        ))
        .with_state(api)
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../templates/app.js"),
    )
        .into_response()
}

/// Active violations: in all, by severity, by cluster and namespace.
#[derive(Default)]
struct ActiveCounts {
    total: usize,
    by_severity: BTreeMap<Severity, usize>,
    by_namespace: BTreeMap<(String, String), usize>,
    /// Violations first seen per day (days since the epoch), over the last `TREND_DAYS`.
    by_day: BTreeMap<i64, usize>,
}

/// Days the dashboard's trend covers.
const TREND_DAYS: i64 = 14;

fn count_active<B: Backend>(
    core: &crate::core::Core<B>,
) -> Result<ActiveCounts, crate::store::Error> {
    let mut c = ActiveCounts::default();
    let today = time::OffsetDateTime::now_utc().unix_timestamp() / 86_400;
    core.store.for_each_raw(Table::Alerts, "a/", |k, bytes| {
        let a: crate::search::AlertView<'_> =
            serde_json::from_slice(bytes).map_err(|source| crate::store::Error::Corrupt {
                table: Table::Alerts.name(),
                key: k.to_string(),
                source,
            })?;
        let day = a.first_occurred_unix_ms / 86_400_000;
        if day > today - TREND_DAYS && day <= today {
            *c.by_day.entry(day).or_default() += 1;
        }
        if a.state == AlertState::Active {
            c.total += 1;
            *c.by_severity.entry(a.severity).or_default() += 1;
            *c.by_namespace
                .entry((a.cluster_id.into_owned(), a.namespace.into_owned()))
                .or_default() += 1;
        }
        Ok(())
    })?;
    Ok(c)
}

async fn counts<B: Backend>(State(api): State<Shared<B>>) -> Response {
    let cached = api
        .console
        .counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .filter(|(at, _)| at.elapsed() < COUNTS_TTL)
        .map(|(_, c)| Arc::clone(c));
    let live = match cached {
        Some(c) => c,
        None => {
            let core = Arc::clone(&api.core);
            let fresh = match off_thread(move || count_active(&core)).await {
                Ok(c) => Arc::new(LiveCounts {
                    total: c.total,
                    by_severity: c.by_severity,
                }),
                Err(response) => return response,
            };
            *api.console
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((Instant::now(), Arc::clone(&fresh)));
            fresh
        }
    };
    let mut out = serde_json::Map::new();
    out.insert("active".into(), live.total.into());
    for s in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        out.insert(
            format!("severity-{}", severity_text(s)),
            live.by_severity.get(&s).copied().unwrap_or(0).into(),
        );
    }
    axum::Json(serde_json::Value::Object(out)).into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../templates/app.css"),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Log in and out.

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    user: Option<UserView>,
    page: &'static str,
    error: Option<String>,
    next: String,
}

/// Only a path of the console is a place to return to after logging in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/ui/".into(),
    }
}

async fn login_page(RawQuery(raw): RawQuery) -> Response {
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    render(
        &LoginPage {
            user: None,
            page: "login",
            error: None,
            next: safe_next(query.get("next").map(String::as_str)),
        },
        StatusCode::OK,
    )
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    token: String,
    next: String,
}

async fn login<B: Backend>(State(api): State<Shared<B>>, body: axum::body::Bytes) -> Response {
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = safe_next(Some(&form.next));
    let authorization = if !form.token.trim().is_empty() {
        format!("Bearer {}", form.token.trim())
    } else {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                form.username.trim(),
                form.password
            ))
        )
    };
    let checked = {
        let api = Arc::clone(&api);
        tokio::task::spawn_blocking(move || {
            api.auth.authenticate(&api.core.store, Some(&authorization))
        })
        .await
        .unwrap_or(Err(AuthError::Store("authentication task failed".into())))
    };
    let principal = match checked {
        Ok(p) if Access::Read.allows(p.role) => p,
        Ok(p) => {
            return render(
                &LoginPage {
                    user: None,
                    page: "login",
                    error: Some(format!(
                        "The {} role has no console access.",
                        p.role.as_str()
                    )),
                    next,
                },
                StatusCode::FORBIDDEN,
            );
        }
        Err(AuthError::Store(e)) => return ApiError::Internal(e).into_response(),
        Err(_) => {
            api.core.metrics.auth_failures.inc();
            return render(
                &LoginPage {
                    user: None,
                    page: "login",
                    error: Some("The password or token is not valid.".into()),
                    next,
                },
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let Some((id, session)) = api.console.sessions.create(principal) else {
        return ApiError::Internal("no randomness for a session id".into()).into_response();
    };
    tracing::info!(user = %session.principal.name, role = session.principal.role.as_str(), "console login");
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(SessionId(id)): axum::Extension<SessionId>,
) -> Response {
    api.console.sessions.remove(&id);
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "rampart_session=; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Pages.

fn time_text(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn severity_text(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Unset => "Unset",
    }
}

struct SeverityTile {
    label: &'static str,
    count: usize,
    query: String,
}

struct NamespaceRow {
    cluster: String,
    namespace: String,
    count: usize,
}

struct ClusterRow {
    name: String,
    connection: String,
    last_contact: String,
}

struct TrendBar {
    x: usize,
    y: usize,
    height: usize,
    label: String,
    count: usize,
}

struct RiskyRow {
    cluster: String,
    id: String,
    name: String,
    namespace: String,
    score: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    user: Option<UserView>,
    page: &'static str,
    trend: Vec<TrendBar>,
    riskiest: Vec<RiskyRow>,
    by_severity: Vec<SeverityTile>,
    by_namespace: Vec<NamespaceRow>,
    clusters: Vec<ClusterRow>,
}

async fn dashboard<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
) -> Response {
    let core = Arc::clone(&api.core);
    let counted = off_thread(move || {
        let counts = count_active(&core)?;
        // The dashboard never waits for a ranking: it shows the kept one and has it brought up
        // to date in the background for the next visit.
        let riskiest = core.ranking.peek().unwrap_or_default();
        crate::risk::Ranking::compute_in_background(&core);
        Ok((counts, riskiest))
    })
    .await;
    let (
        ActiveCounts {
            by_severity,
            by_namespace,
            by_day,
            ..
        },
        riskiest,
    ) = match counted {
        Ok(c) => c,
        Err(response) => return response,
    };
    let clusters = match api.core.store.clusters() {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tiles = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .into_iter()
    .map(|s| SeverityTile {
        label: severity_text(s),
        count: by_severity.get(&s).copied().unwrap_or(0),
        query: format!("Severity:{}", severity_text(s).to_ascii_uppercase()),
    })
    .collect();
    let mut namespaces: Vec<NamespaceRow> = by_namespace
        .into_iter()
        .map(|((cluster, namespace), count)| NamespaceRow {
            cluster,
            namespace,
            count,
        })
        .collect();
    namespaces.sort_by_key(|r| std::cmp::Reverse(r.count));
    namespaces.truncate(15);
    let clusters = clusters
        .into_iter()
        .map(|c| ClusterRow {
            last_contact: c
                .last_contact_unix_ms
                .map(time_text)
                .unwrap_or_else(|| "never".into()),
            name: c.name,
            connection: format!("{:?}", c.connection),
        })
        .collect();
    // Violations first seen per day, as bars 30 px apart in a 100 px tall chart.
    let today = time::OffsetDateTime::now_utc().unix_timestamp() / 86_400;
    let most = by_day.values().copied().max().unwrap_or(0).max(1);
    let trend = (0..TREND_DAYS)
        .map(|i| {
            let day = today - (TREND_DAYS - 1 - i);
            let count = by_day.get(&day).copied().unwrap_or(0);
            let height = count * 100 / most;
            TrendBar {
                x: usize::try_from(i).unwrap_or(0) * 30 + 5,
                y: 100 - height,
                height,
                label: time::OffsetDateTime::from_unix_timestamp(day * 86_400)
                    .map(|d| format!("{:02}", d.day()))
                    .unwrap_or_default(),
                count,
            }
        })
        .collect();
    let riskiest = riskiest
        .iter()
        .take(5)
        .map(|r| RiskyRow {
            cluster: r.cluster_id.clone(),
            id: r.id.clone(),
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            score: format!("{:.2}", r.risk.score),
        })
        .collect();
    render(
        &DashboardPage {
            user: Some(user),
            page: "dashboard",
            trend,
            riskiest,
            by_severity: tiles,
            by_namespace: namespaces,
            clusters,
        },
        StatusCode::OK,
    )
}

struct ViolationRow {
    id: String,
    policy: String,
    severity: &'static str,
    deployment: String,
    namespace: String,
    cluster: String,
    state: &'static str,
    time: String,
}

struct SortOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "violations.html")]
struct ViolationsPage {
    user: Option<UserView>,
    page: &'static str,
    query: String,
    sorts: Vec<SortOption>,
    error: Option<String>,
    total: usize,
    rows: Vec<ViolationRow>,
    prev: Option<String>,
    next: Option<String>,
}

const SORTS: [(&str, &str); 5] = [
    ("-Time", "Newest first"),
    ("-Severity", "Most severe first"),
    ("Policy", "Policy"),
    ("Deployment", "Deployment"),
    ("Namespace", "Namespace"),
];
const PAGE_SIZE: usize = 50;

fn state_text(s: AlertState) -> &'static str {
    s.as_str()
}

async fn violations<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_params(raw.as_deref());
    let query = params.get("query").cloned().unwrap_or_default();
    let sort = params
        .get("sort")
        .filter(|s| SORTS.iter().any(|(v, _)| v == s))
        .cloned()
        .unwrap_or_else(|| "-Time".into());
    let offset = offset_of(&params);
    let search = serde_urlencoded::to_string([
        ("query", query.as_str()),
        ("sort", sort.as_str()),
        ("offset", &offset.to_string()),
        ("limit", &PAGE_SIZE.to_string()),
    ])
    .unwrap_or_default();
    let (rows, total, error) = match find_alerts(&api.core, Some(&search), &[]).await {
        Ok(page) => (page.alerts, page.total, None),
        Err(ApiError::BadRequest(m)) => (Vec::new(), 0, Some(m)),
        Err(e) => return e.into_response(),
    };
    let link = |offset: usize| {
        format!(
            "/ui/violations?{}",
            serde_urlencoded::to_string([
                ("query", query.as_str()),
                ("sort", sort.as_str()),
                ("offset", &offset.to_string()),
            ])
            .unwrap_or_default()
        )
    };
    render(
        &ViolationsPage {
            user: Some(user),
            page: "violations",
            sorts: SORTS
                .iter()
                .map(|(value, label)| SortOption {
                    value,
                    label,
                    selected: *value == sort,
                })
                .collect(),
            error,
            total,
            rows: rows
                .into_iter()
                .map(|a| ViolationRow {
                    id: a.id,
                    policy: a.policy_name,
                    severity: severity_text(a.severity),
                    deployment: a.deployment_name,
                    namespace: a.namespace,
                    cluster: a.cluster_id,
                    state: state_text(a.state),
                    time: time_text(a.time_unix_ms),
                })
                .collect(),
            prev: (offset > 0).then(|| link(offset.saturating_sub(PAGE_SIZE))),
            next: (offset + PAGE_SIZE < total).then(|| link(offset + PAGE_SIZE)),
            query,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "violation.html")]
struct ViolationPage {
    user: Option<UserView>,
    page: &'static str,
    a: AlertRecord,
    policy: Option<rampart_policy::Policy>,
    state: &'static str,
    severity: &'static str,
    first_seen: String,
    last_seen: String,
    resolved: bool,
    can_resolve: bool,
    csrf: String,
    facts: Option<facts::DeploymentFacts>,
}

async fn violation<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let alert = match crate::alerts::persist::get(&api.core.store, &id) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return refused(
                Some(user),
                StatusCode::NOT_FOUND,
                format!("No violation {id}."),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let policy = api.core.policies.current().get(&alert.policy_id).cloned();
    let facts = match api
        .core
        .store
        .deployment(&alert.cluster_id, &alert.deployment_id)
    {
        Ok(record) => record.as_ref().and_then(facts::of),
        Err(e) => return ApiError::from(e).into_response(),
    };
    render(
        &ViolationPage {
            facts,
            state: state_text(alert.state),
            severity: severity_text(alert.severity),
            first_seen: time_text(alert.first_occurred_unix_ms),
            last_seen: time_text(alert.time_unix_ms),
            resolved: raw.as_deref() == Some("resolved=1"),
            can_resolve: user.can_write && alert.state != AlertState::Resolved,
            csrf: user.csrf.clone(),
            user: Some(user),
            page: "violations",
            a: alert,
            policy,
        },
        StatusCode::OK,
    )
}

async fn resolve<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("add_to_baseline").is_some_and(|v| v == "true") {
        let alert = match crate::alerts::persist::get(&api.core.store, &id) {
            Ok(Some(a)) if !a.processes.is_empty() => a,
            Ok(_) => {
                return ApiError::BadRequest(
                    "only runtime process alerts can add to a baseline".into(),
                )
                .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        };
        if let Err(e) = crate::api::add_to_baselines(&api.core, &alert).await {
            return e.into_response();
        }
    }
    match resolve_ids(&api.core, std::slice::from_ref(&id)).await {
        Ok(_) => {
            Redirect::to(&format!("/ui/violations/{}?resolved=1", urlencode(&id))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

struct RiskRow {
    rank: usize,
    cluster: String,
    id: String,
    name: String,
    namespace: String,
    score: String,
    factors: String,
}

#[derive(Template)]
#[template(path = "risk.html")]
struct RiskPage {
    user: Option<UserView>,
    page: &'static str,
    rows: Vec<RiskRow>,
    prev: Option<String>,
    next: Option<String>,
}

async fn risk<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_params(raw.as_deref());
    let offset = offset_of(&params);
    let core = Arc::clone(&api.core);
    let ranked = match off_thread(move || core.ranking.get(&core)).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let total = ranked.len();
    let rows = ranked
        .iter()
        .map(|r| crate::risk::Ranked::clone(r))
        .enumerate()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|(i, r)| RiskRow {
            rank: i + 1,
            factors: r
                .risk
                .factors
                .iter()
                .map(|f| format!("{} ×{:.2}", f.name, f.score))
                .collect::<Vec<_>>()
                .join(", "),
            score: format!("{:.2}", r.risk.score),
            cluster: r.cluster_id,
            id: r.id,
            name: r.name,
            namespace: r.namespace,
        })
        .collect();
    render(
        &RiskPage {
            user: Some(user),
            page: "risk",
            rows,
            prev: (offset > 0)
                .then(|| format!("/ui/risk?offset={}", offset.saturating_sub(PAGE_SIZE))),
            next: (offset + PAGE_SIZE < total)
                .then(|| format!("/ui/risk?offset={}", offset + PAGE_SIZE)),
        },
        StatusCode::OK,
    )
}

struct FactorView {
    name: &'static str,
    score: String,
    reasons: Vec<String>,
}

struct ViolationLink {
    id: String,
    policy: String,
}

#[derive(Template)]
#[template(path = "risk_detail.html")]
struct RiskDetailPage {
    user: Option<UserView>,
    page: &'static str,
    kind: String,
    images: Vec<ImageRow>,
    violations: Vec<ViolationLink>,
    facts: Option<facts::DeploymentFacts>,
    baselines: Vec<baselines::BaselineView>,
    network: Option<baselines::NetworkBaselineView>,
    cluster_id: String,
    deployment_id: String,
    can_write: bool,
    csrf: String,
    name: String,
    namespace: String,
    cluster: String,
    score: String,
    factors: Vec<FactorView>,
}

async fn risk_detail<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path((cluster, id)): Path<(String, String)>,
) -> Response {
    let record = match api.core.store.deployment(&cluster, &id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return refused(
                Some(user),
                StatusCode::NOT_FOUND,
                format!("No deployment {id} in {cluster}."),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ranked = match crate::risk::score_record(&api.core, &record, now) {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let violations = match crate::alerts::persist::active_of_record(&api.core.store, &record) {
        Ok(a) => a
            .into_iter()
            .map(|a| ViolationLink {
                id: a.id,
                policy: a.policy_name,
            })
            .collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (can_write, csrf) = (user.can_write, user.csrf.clone());
    render(
        &RiskDetailPage {
            user: Some(user),
            page: "risk",
            kind: record.kind.clone(),
            images: api
                .core
                .images
                .of_deployment(&record.cluster_id, &record.id)
                .into_iter()
                .map(image_row)
                .collect(),
            violations,
            facts: facts::of(&record),
            baselines: baselines::of_deployment(&api.core, &record.cluster_id, &record.id),
            network: baselines::network_of_deployment(&api.core, &record.cluster_id, &record.id),
            cluster_id: record.cluster_id.clone(),
            deployment_id: record.id.clone(),
            can_write,
            csrf,
            name: ranked.name,
            namespace: ranked.namespace,
            cluster: ranked.cluster_id,
            score: format!("{:.2}", ranked.risk.score),
            factors: ranked
                .risk
                .factors
                .into_iter()
                .map(|f| FactorView {
                    name: f.name,
                    score: format!("{:.2}", f.score),
                    reasons: f.reasons,
                })
                .collect(),
        },
        StatusCode::OK,
    )
}

struct ImageRow {
    id: Option<String>,
    name: String,
    status: &'static str,
    error: Option<String>,
    os: String,
    components: usize,
    vulnerabilities: usize,
    fixable: usize,
    top_cvss: String,
    deployments: usize,
}

struct CveRow {
    id: String,
    severity: &'static str,
    cvss: String,
    fixable: bool,
    images: usize,
    deployments: usize,
    components: String,
}

struct SelectOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "images.html")]
struct ImagesPage {
    user: Option<UserView>,
    page: &'static str,
    severities: Vec<SelectOption>,
    fixable: bool,
    images: Vec<ImageRow>,
    cves: Vec<CveRow>,
}

fn image_row(i: crate::images::ImageSummary) -> ImageRow {
    ImageRow {
        top_cvss: cvss_text(i.top_cvss),
        os: i.os.clone().unwrap_or_default(),
        id: i.id,
        name: i.name,
        status: i.status,
        error: i.error,
        components: i.components,
        vulnerabilities: i.vulnerabilities,
        fixable: i.fixable,
        deployments: i.deployments,
    }
}

fn cvss_text(c: Option<f64>) -> String {
    c.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// At most this many rows per table on the Vulnerabilities page.
const VULN_ROWS: usize = 200;

async fn images<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    use rampart_scanner::report::Level;
    let params = query_params(raw.as_deref());
    let at_least = params.get("severity").and_then(|s| Level::parse(s));
    let fixable = params.get("fixable").is_some_and(|v| v == "true");
    let mut images = api.core.images.list();
    images.retain(|i| {
        at_least.is_none_or(|s| i.max_level().is_some_and(|m| m >= s))
            && (!fixable || i.fixable > 0)
    });
    images.sort_by(|a, b| {
        b.top_cvss
            .partial_cmp(&a.top_cvss)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.vulnerabilities.cmp(&a.vulnerabilities))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut cves = api.core.images.cves();
    cves.retain(|c| at_least.is_none_or(|s| c.severity >= s) && (!fixable || c.fixable));
    cves.sort_by(|a, b| {
        b.cvss
            .partial_cmp(&a.cvss)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.deployments.cmp(&a.deployments))
            .then_with(|| a.id.cmp(&b.id))
    });
    let selected = params.get("severity").map(String::as_str).unwrap_or("");
    render(
        &ImagesPage {
            user: Some(user),
            page: "images",
            severities: [
                ("", "Any severity"),
                ("critical", "Critical"),
                ("high", "High"),
                ("medium", "Medium"),
                ("low", "Low"),
            ]
            .into_iter()
            .map(|(value, label)| SelectOption {
                value,
                label,
                selected: value == selected,
            })
            .collect(),
            fixable,
            images: images.into_iter().take(VULN_ROWS).map(image_row).collect(),
            cves: cves
                .into_iter()
                .take(VULN_ROWS)
                .map(|c| CveRow {
                    severity: c.severity.as_str(),
                    cvss: cvss_text(c.cvss),
                    fixable: c.fixable,
                    images: c.images,
                    deployments: c.deployments,
                    components: c
                        .components
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    id: c.id,
                })
                .collect(),
        },
        StatusCode::OK,
    )
}

struct ComponentVulnRow {
    component: String,
    version: String,
    cve: String,
    severity: &'static str,
    fixed_by: String,
}

#[derive(Template)]
#[template(path = "image.html")]
struct ImagePage {
    user: Option<UserView>,
    page: &'static str,
    name: String,
    digest: String,
    os: String,
    created: String,
    user_name: String,
    scanned: String,
    deployments: String,
    notes: Vec<String>,
    rows: Vec<ComponentVulnRow>,
    components: usize,
}

async fn image<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path(id): Path<String>,
) -> Response {
    let Some((scanned, deployments)) = api.core.images.get(&id) else {
        return refused(
            Some(user),
            StatusCode::NOT_FOUND,
            format!("No scanned image {id}."),
        );
    };
    let scan = &scanned.scan;
    let mut rows: Vec<ComponentVulnRow> = scan
        .components
        .iter()
        .flat_map(|c| {
            c.vulnerabilities.iter().map(move |v| ComponentVulnRow {
                component: c.name.clone(),
                version: c.version.clone(),
                cve: v.id.clone(),
                severity: v.severity.as_str(),
                fixed_by: v.fixed_by.clone().unwrap_or_else(|| "not fixed".into()),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        a.component
            .cmp(&b.component)
            .then_with(|| a.cve.cmp(&b.cve))
    });
    render(
        &ImagePage {
            user: Some(user),
            page: "images",
            name: scanned.record.references.join(", "),
            digest: scanned.record.facts.digest.clone(),
            os: scan.os.clone().unwrap_or_else(|| "unknown".into()),
            created: scan.created.clone().unwrap_or_default(),
            user_name: if scan.user.is_empty() {
                "root (none set)".into()
            } else {
                scan.user.clone()
            },
            scanned: time_text(scanned.record.scanned_unix_ms),
            deployments: deployments
                .iter()
                .map(|d| format!("{}/{} ({})", d.namespace, d.name, d.cluster_id))
                .collect::<Vec<_>>()
                .join(", "),
            notes: scan.notes.clone(),
            components: scan.components.len(),
            rows,
        },
        StatusCode::OK,
    )
}

struct AffectedRow {
    image_id: String,
    image: String,
    component: String,
    version: String,
    fixed_by: String,
}

#[derive(Template)]
#[template(path = "cve.html")]
struct CvePage {
    user: Option<UserView>,
    page: &'static str,
    id: String,
    summary: String,
    severity: &'static str,
    cvss: String,
    aliases: String,
    images: Vec<AffectedRow>,
    deployments: Vec<crate::images::DeploymentRef>,
}

async fn cve<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path(id): Path<String>,
) -> Response {
    let cves = api.core.images.cves();
    let Some(c) = cves.into_iter().find(|c| {
        c.id.eq_ignore_ascii_case(&id) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(&id))
    }) else {
        return refused(
            Some(user),
            StatusCode::NOT_FOUND,
            format!("No scanned image is affected by {id}."),
        );
    };
    render(
        &CvePage {
            user: Some(user),
            page: "images",
            severity: c.severity.as_str(),
            cvss: cvss_text(c.cvss),
            aliases: if c.aliases.is_empty() {
                "-".into()
            } else {
                c.aliases.join(", ")
            },
            images: c
                .affected_images
                .values()
                .flat_map(|i| {
                    i.components.iter().map(move |comp| AffectedRow {
                        image_id: i.id.clone(),
                        image: i.name.clone(),
                        component: comp.name.clone(),
                        version: comp.version.clone(),
                        fixed_by: comp.fixed_by.clone().unwrap_or_else(|| "not fixed".into()),
                    })
                })
                .collect(),
            deployments: c.affected_deployments.iter().cloned().collect(),
            summary: c.summary,
            id: c.id,
        },
        StatusCode::OK,
    )
}

struct DeploymentRow {
    cluster: String,
    id: String,
    name: String,
    kind: String,
    namespace: String,
    violations: usize,
    images: usize,
    updated: String,
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    user: Option<UserView>,
    page: &'static str,
    cluster: String,
    namespace: String,
    rows: Vec<DeploymentRow>,
    next: Option<String>,
}

/// The deployment inventory, cluster by cluster in id order, a page at a time (the cursor is
/// the last row's `cluster/id`).
async fn deployments<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_params(raw.as_deref());
    let cluster = params.get("cluster").cloned().unwrap_or_default();
    let namespace = params.get("namespace").cloned().unwrap_or_default();
    let after = params.get("after").cloned();
    let core = Arc::clone(&api.core);
    let (cluster_f, namespace_f) = (cluster.clone(), namespace.clone());
    let found = off_thread(move || {
        let mut clusters: Vec<String> = core.store.clusters()?.into_iter().map(|c| c.id).collect();
        clusters.sort();
        let (after_cluster, after_id) = match after.as_deref().and_then(|a| a.split_once('/')) {
            Some((c, d)) => (Some(c.to_string()), Some(d.to_string())),
            None => (None, None),
        };
        let mut rows = Vec::new();
        let mut more = false;
        'clusters: for c in clusters
            .iter()
            .filter(|c| cluster_f.is_empty() || **c == cluster_f)
            .filter(|c| after_cluster.as_deref().is_none_or(|a| c.as_str() >= a))
        {
            let mut cursor = if after_cluster.as_deref() == Some(c.as_str()) {
                after_id.clone()
            } else {
                None
            };
            loop {
                let page = core.store.deployments(c, cursor.as_deref(), 500)?;
                let Some(last) = page.last() else { break };
                cursor = Some(last.id.clone());
                for d in page {
                    if !namespace_f.is_empty() && d.namespace != namespace_f {
                        continue;
                    }
                    if rows.len() == PAGE_SIZE {
                        more = true;
                        break 'clusters;
                    }
                    rows.push(d);
                }
            }
        }
        Ok((rows, more))
    })
    .await;
    let (records, more) = match found {
        Ok(f) => f,
        Err(response) => return response,
    };
    let next = more.then(|| {
        let last = records
            .last()
            .map(|d| format!("{}/{}", d.cluster_id, d.id))
            .unwrap_or_default();
        format!(
            "/ui/deployments?{}",
            serde_urlencoded::to_string([
                ("cluster", cluster.as_str()),
                ("namespace", namespace.as_str()),
                ("after", last.as_str()),
            ])
            .unwrap_or_default()
        )
    });
    let rows = records
        .into_iter()
        .map(|d| DeploymentRow {
            images: api.core.images.of_deployment(&d.cluster_id, &d.id).len(),
            violations: crate::alerts::persist::active_of_record(&api.core.store, &d)
                .map_or(d.active_alerts.len(), |a| a.len()),
            updated: time_text(d.updated_unix_ms),
            cluster: d.cluster_id,
            id: d.id,
            name: d.name,
            kind: d.kind,
            namespace: d.namespace,
        })
        .collect();
    render(
        &DeploymentsPage {
            user: Some(user),
            page: "deployments",
            cluster,
            namespace,
            rows,
            next,
        },
        StatusCode::OK,
    )
}

struct ClusterHealthRow {
    id: String,
    name: String,
    connection: String,
    version: String,
    last_contact: String,
    collector_mode: String,
    events: String,
    deployments: usize,
}

#[derive(Template)]
#[template(path = "clusters.html")]
struct ClustersPage {
    user: Option<UserView>,
    page: &'static str,
    rows: Vec<ClusterHealthRow>,
    can_write: bool,
    csrf: String,
    error: Option<String>,
    secrets_yaml: Option<String>,
    bundle_cluster: String,
}

fn clusters_page<B: Backend>(
    api: &Shared<B>,
    user: UserView,
    error: Option<String>,
    issued: Option<(String, String)>,
    status: StatusCode,
) -> Response {
    let clusters = match api.core.store.clusters() {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut rows = Vec::new();
    for c in clusters {
        let mut deployments = 0;
        if let Err(e) = api
            .core
            .store
            .for_each_deployment_id(&c.id, |_| deployments += 1)
        {
            return ApiError::from(e).into_response();
        }
        rows.push(ClusterHealthRow {
            connection: format!("{:?}", c.connection),
            version: if c.sensor_version.is_empty() {
                "-".into()
            } else {
                c.sensor_version.clone()
            },
            last_contact: c
                .last_contact_unix_ms
                .map(time_text)
                .unwrap_or_else(|| "never".into()),
            collector_mode: if c.collector_mode.is_empty() {
                "none".into()
            } else {
                c.collector_mode.clone()
            },
            events: format!("{} / {}", c.buffered_events, c.dropped_events),
            deployments,
            id: c.id,
            name: c.name,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let (bundle_cluster, secrets_yaml) = match issued {
        Some((c, y)) => (c, Some(y)),
        None => (String::new(), None),
    };
    render(
        &ClustersPage {
            can_write: user.can_write,
            csrf: user.csrf.clone(),
            user: Some(user),
            page: "clusters",
            rows,
            error,
            secrets_yaml,
            bundle_cluster,
        },
        status,
    )
}

async fn clusters<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
) -> Response {
    clusters_page(&api, user, None, None, StatusCode::OK)
}

async fn init_bundle<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    body: axum::body::Bytes,
) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let name = form
        .get("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    match crate::pki::persist::issue_bundle(
        &api.core.store,
        &api.ca,
        &name,
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(bundle) => {
            tracing::info!(cluster = %bundle.record.cluster, id = %bundle.record.id, user = %user.name, "init bundle issued in the console");
            let yaml = bundle.to_secrets_yaml("rampart");
            clusters_page(&api, user, None, Some((name, yaml)), StatusCode::OK)
        }
        Err(crate::pki::persist::Error::Pki(e @ crate::pki::Error::ClusterName(_))) => {
            clusters_page(
                &api,
                user,
                Some(e.to_string()),
                None,
                StatusCode::BAD_REQUEST,
            )
        }
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

struct PolicyRow {
    id: String,
    slug: String,
    name: String,
    categories: String,
    stages: String,
    severity: &'static str,
    enforcement: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    user: Option<UserView>,
    page: &'static str,
    message: Option<String>,
    rows: Vec<PolicyRow>,
    enabled: usize,
    can_write: bool,
    csrf: String,
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

async fn policies<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_params(raw.as_deref());
    policies_page(
        &api,
        user,
        params
            .get("saved")
            .map(|n| format!("Saved policy \u{201c}{n}\u{201d}.")),
    )
}

fn policies_page<B: Backend>(api: &Shared<B>, user: UserView, message: Option<String>) -> Response {
    let state = api.core.policies.current();
    let mut rows: Vec<PolicyRow> = state
        .policies
        .iter()
        .map(|p| PolicyRow {
            id: p.id.clone(),
            slug: slug(&p.name),
            name: p.name.clone(),
            categories: p.categories.join(", "),
            stages: p
                .lifecycle_stages
                .iter()
                .map(|s| match s {
                    LifecycleStage::Build => "Build",
                    LifecycleStage::Deploy => "Deploy",
                    LifecycleStage::Runtime => "Runtime",
                })
                .collect::<Vec<_>>()
                .join(", "),
            severity: severity_text(p.severity),
            enforcement: if p.enforcement_actions.is_empty() {
                "Inform".into()
            } else {
                "Enforce".into()
            },
            disabled: p.disabled,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    render(
        &PoliciesPage {
            message,
            enabled: rows.iter().filter(|r| !r.disabled).count(),
            can_write: user.can_write,
            csrf: user.csrf.clone(),
            user: Some(user),
            page: "policies",
            rows,
        },
        StatusCode::OK,
    )
}

async fn toggle_policy<B: Backend>(
    State(api): State<Shared<B>>,
    Path(id): Path<String>,
) -> Response {
    let Some(disabled) = api.core.policies.current().get(&id).map(|p| p.disabled) else {
        return ApiError::NotFound(format!("no policy '{id}'")).into_response();
    };
    match api.core.policies.set_disabled(&id, !disabled).await {
        Ok(p) => {
            tracing::info!(policy = %p.name, disabled = p.disabled, "policy toggled in the console");
            Redirect::to("/ui/policies").into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

struct SectionView {
    title: String,
    criteria: Vec<String>,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    user: Option<UserView>,
    page: &'static str,
    p: rampart_policy::Policy,
    severity: &'static str,
    categories: String,
    stages: String,
    enforcement: String,
    sections: Vec<SectionView>,
    can_write: bool,
}

/// A policy as it reads: texts, stages, enforcement and its criteria in words.
async fn policy_detail<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path(id): Path<String>,
) -> Response {
    let state = api.core.policies.current();
    let Some(p) = state.get(&id).cloned() else {
        return refused(
            Some(user),
            StatusCode::NOT_FOUND,
            format!("No policy {id}."),
        );
    };
    let sections = p
        .policy_sections
        .iter()
        .enumerate()
        .map(|(i, s)| SectionView {
            title: if s.section_name.is_empty() {
                format!("Section {}", i + 1)
            } else {
                s.section_name.clone()
            },
            criteria: s
                .policy_groups
                .iter()
                .map(|g| {
                    let values: Vec<&str> = g.values.iter().map(|v| v.value.as_str()).collect();
                    let joiner = match g.boolean_operator {
                        rampart_policy::policy::BooleanOperator::And => " and ",
                        rampart_policy::policy::BooleanOperator::Or => " or ",
                    };
                    format!(
                        "{}{} {}",
                        g.field_name,
                        if g.negate { " is not" } else { " is" },
                        values.join(joiner)
                    )
                })
                .collect(),
        })
        .collect();
    render(
        &PolicyPage {
            severity: severity_text(p.severity),
            categories: p.categories.join(", "),
            stages: p
                .lifecycle_stages
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            enforcement: if p.enforcement_actions.is_empty() {
                "Inform only".into()
            } else {
                p.enforcement_actions
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            can_write: user.can_write,
            user: Some(user),
            page: "policies",
            sections,
            p,
        },
        StatusCode::OK,
    )
}

async fn export_policies<B: Backend>(State(api): State<Shared<B>>) -> Response {
    let state = api.core.policies.current();
    let list = rampart_policy::policy::PolicyList {
        policies: state.policies.clone(),
    };
    match serde_json::to_string_pretty(&list) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"rampart-policies.json\"",
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn import_policies<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    body: axum::body::Bytes,
) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let text = form.get("json").map(String::as_str).unwrap_or("");
    let overwrite = form.get("overwrite").is_some_and(|v| v == "on");
    let policies = match rampart_policy::policy::parse_policies(text) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            return policies_page(
                &api,
                user,
                Some("Nothing to import: paste an ACS export.".into()),
            );
        }
        Err(e) => return policies_page(&api, user, Some(format!("Nothing was imported: {e}"))),
    };
    let results = match api.core.policies.import(policies, overwrite).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let done = results.iter().filter(|r| r.succeeded).count();
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.succeeded)
        .map(|r| format!("{} ({})", r.name, r.errors.join("; ")))
        .collect();
    let mut message = format!("Imported {done} of {} policies.", results.len());
    if !failed.is_empty() {
        message.push_str(&format!(" Not imported: {}", failed.join(", ")));
    }
    policies_page(&api, user, Some(message))
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage {
    user: Option<UserView>,
    page: &'static str,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AdmissionRequest;

    fn page(attempts: u64) -> String {
        let a = AlertRecord {
            id: "a1".into(),
            policy_id: "p1".into(),
            policy_name: "Privileged Container".into(),
            severity: Severity::High,
            categories: Vec::new(),
            lifecycle_stage: "DEPLOY".into(),
            cluster_id: "c1".into(),
            namespace: "shop".into(),
            deployment_id: String::new(),
            deployment_name: "web".into(),
            deployment_kind: "Deployment".into(),
            state: AlertState::Attempted,
            violations: vec!["Container 'app' is privileged".into()],
            first_occurred_unix_ms: 1_765_000_000_000,
            time_unix_ms: 1_765_000_600_000,
            resolved_unix_ms: None,
            enforcements: Vec::new(),
            admission: Some(AdmissionRequest {
                operation: "UPDATE".into(),
                user: "system:serviceaccount:argocd:argocd-application-controller".into(),
                request_uid: "u-first".into(),
                break_glass: false,
                pod: String::new(),
                attempts,
            }),
            processes: Vec::new(),
        };
        ViolationPage {
            user: None,
            page: "violations",
            state: state_text(a.state),
            severity: severity_text(a.severity),
            first_seen: time_text(a.first_occurred_unix_ms),
            last_seen: time_text(a.time_unix_ms),
            resolved: false,
            can_resolve: false,
            csrf: String::new(),
            facts: None,
            policy: None,
            a,
        }
        .render()
        .expect("renders")
    }

    #[test]
    fn a_violation_page_shows_the_admission_request_and_its_attempts() {
        let storm = page(37);
        assert!(storm.contains("Admission request"), "{storm}");
        assert!(storm.contains("argocd-application-controller"));
        assert!(
            storm.contains("<code>u-first</code> (the first attempt's)"),
            "{storm}"
        );
        assert!(
            storm.contains(
                r#"<dd id="attempts">37 identical attempts, the first at 2025-12-06 05:46 UTC, the last at 2025-12-06 05:56 UTC</dd>"#
            ),
            "{storm}"
        );
        let once = page(1);
        assert!(once.contains("Admission request"));
        assert!(!once.contains(r#"id="attempts""#), "{once}");
        assert!(!once.contains("the first attempt"));
    }
}
