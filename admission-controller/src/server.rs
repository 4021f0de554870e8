//! The webhook's HTTPS server and the plain-HTTP health port.
//!
//! ```text
//!  TCP ─▶ connection limit ─▶ TLS handshake (time-limited) ─▶ HTTP/1.1 or HTTP/2
//!    (header read time-limited) ─▶ POST /validate | /events ─▶ body: size-limited (413) and
//!    time-limited (408) ─▶ the thread's cohort of waiting reviews (`cohort`) ─▶
//!    review::decode (400 with the reason) ─▶ decide (panics caught and answered by the
//!    failure mode) ─▶ AdmissionReview ─▶ alerts queued for the Sensor
//! ```
//!
//! Every review that decodes is answered with a well-formed AdmissionReview; what cannot be
//! decoded is answered with a 4xx status and a JSON body naming the problem (the API server
//! then applies the webhook's failurePolicy). Never a hang, never a bare 500.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::alerts::AlertQueue;
use crate::decide::{self, Decision, Inputs, Settings};
use crate::log_budget::LogBudget;
use crate::metrics::{Metrics, PolicyLabel, RejectLabel};
use crate::policies::PolicySet;
use crate::resources::Resources;
use crate::review;

/// Most connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of request head (line and headers) a connection buffers; the API server sends a
/// few hundred. With the connection cap, this bounds what a flood of slow or endless headers
/// can hold: 4,096 × 64 KiB at worst.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What every request reads.
#[derive(Debug)]
pub struct State {
    pub settings: Settings,
    policies: RwLock<Option<Arc<PolicySet>>>,
    pub resources: RwLock<Resources>,
    pub alerts: AlertQueue,
    pub metrics: Arc<Metrics>,
    /// Largest review body read.
    pub max_body: usize,
    /// Longest wait for a request body.
    pub body_timeout: Duration,
    /// Longest wait for a decision once the body is read (queued behind other reviews, then
    /// decided); past it the review is answered by the failure mode.
    pub decision_budget: Duration,
    /// Lines a second for denials, break-glass, failure-mode answers and refused reviews.
    pub log_budget: LogBudget,
    /// Images met without Central's findings, for the report link to ask scans of.
    pub scan_wants: crate::scan_wants::ScanWants,
}

/// [`State::decision_budget`] unless set: well inside the webhook's `timeoutSeconds` (10), so
/// that the controller's failure mode answers, not the API server's timeout.
pub const DEFAULT_DECISION_BUDGET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Events,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Events => "events",
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl State {
    pub fn new(
        settings: Settings,
        metrics: Arc<Metrics>,
        max_body: usize,
        body_timeout: Duration,
        alert_capacity: usize,
    ) -> State {
        State {
            settings,
            policies: RwLock::new(None),
            resources: RwLock::default(),
            alerts: AlertQueue::new(alert_capacity),
            metrics,
            max_body,
            body_timeout,
            decision_budget: DEFAULT_DECISION_BUDGET,
            log_budget: LogBudget::default(),
            scan_wants: Default::default(),
        }
    }

    pub fn policies(&self) -> Option<Arc<PolicySet>> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a policy set in use.
    pub fn set_policies(&self, mut set: PolicySet) {
        set.violation_counters = set
            .deploy
            .iter()
            .map(|p| {
                self.metrics
                    .policy_violations
                    .get_or_create(&PolicyLabel {
                        policy: p.policy.name.clone(),
                    })
                    .clone()
            })
            .collect();
        for problem in &set.problems {
            tracing::warn!(revision = %set.revision, %problem, "policy skipped");
        }
        self.metrics.policy_revision.clear();
        self.metrics
            .policy_revision
            .get_or_create(&crate::metrics::RevisionLabel {
                revision: set.revision.clone(),
            })
            .set(1);
        self.metrics
            .policies_enforced
            .set(i64::try_from(set.enforced_ids().len()).unwrap_or(i64::MAX));
        self.metrics
            .policies_on_image_data
            .set(i64::try_from(set.on_image_data().len()).unwrap_or(i64::MAX));
        tracing::info!(revision = %set.revision, cluster = %set.cluster, deploy = set.image_from, on_image_data = set.on_image_data().len(), events = set.events.len(), "policy set in use");
        *self.policies.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(set));
    }

    /// Decides one review body: the HTTP status and the response body.
    pub fn review(&self, endpoint: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let (version, mut req) = match review::decode(body) {
            Ok(r) => r,
            Err(e) => {
                self.metrics
                    .rejected
                    .get_or_create(&RejectLabel {
                        reason: "malformed",
                    })
                    .inc();
                if let Some(withheld) = self.admit_log_line(unix_ms()) {
                    tracing::warn!(endpoint = endpoint.as_str(), error = %e, withheld, "review refused");
                }
                return (StatusCode::BAD_REQUEST, error_body(&e.to_string()));
            }
        };
        let policies = self.policies();
        let now_unix_ms = unix_ms();
        let decision = {
            let resources = self.resources.read().unwrap_or_else(|e| e.into_inner());
            let inputs = Inputs {
                settings: &self.settings,
                policies: policies.as_deref(),
                resources: &resources,
                now_unix_ms,
                scan_wants: Some(&self.scan_wants),
            };
            let decide = || match endpoint {
                Endpoint::Validate => decide::validate(&mut req, inputs),
                Endpoint::Events => decide::event(&req, inputs),
            };
            // A defect in the engine answers by the failure mode instead of dropping the
            // connection (which the API server would treat as a timeout).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide))
                .unwrap_or_else(|_| Decision::failure(self.settings.failure_mode, "internal error"))
        };
        self.record(endpoint, &req, &decision, policies.as_deref(), now_unix_ms);
        let Decision { answer, alerts, .. } = decision;
        if !alerts.is_empty() {
            self.alerts.push(alerts, &self.metrics);
        }
        (StatusCode::OK, review::encode(&version, &req.uid, &answer))
    }

    /// The answer to a review whose decision was lost (the task deciding it died): the
    /// failure mode's, as for an internal error, counted and logged as one.
    pub fn review_failed(&self, endpoint: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>) {
        self.review_failed_for(endpoint, body, "internal error")
    }

    /// The answer to a review not decided within [`State::decision_budget`]: the failure
    /// mode's, counted and logged as such.
    pub fn review_over_budget(&self, endpoint: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>) {
        self.metrics.over_budget.inc();
        self.review_failed_for(endpoint, body, "not decided within the decision budget")
    }

    fn review_failed_for(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        reason: &'static str,
    ) -> (StatusCode, Vec<u8>) {
        let Ok((version, req)) = review::decode(body) else {
            // Not a review: refused as `review` refuses it (its decoding fails the same way).
            return self.review(endpoint, body);
        };
        let decision = Decision::failure(self.settings.failure_mode, reason);
        self.record(endpoint, &req, &decision, None, unix_ms());
        (
            StatusCode::OK,
            review::encode(&version, &req.uid, &decision.answer),
        )
    }

    fn record(
        &self,
        endpoint: Endpoint,
        req: &review::Request<'_>,
        d: &Decision,
        policies: Option<&PolicySet>,
        now_unix_ms: i64,
    ) {
        self.metrics.decision(endpoint.as_str(), d.outcome).inc();
        if !d.answer.warnings.is_empty() {
            self.metrics.warnings.inc_by(d.answer.warnings.len() as u64);
        }
        // The set's own handles for its deploy-time policies; by name otherwise (events).
        let counters = policies.map_or(&[][..], |p| p.violation_counters.as_slice());
        let by_position =
            !d.violated_deploy.is_empty() && d.violated_deploy.iter().all(|&i| i < counters.len());
        if by_position {
            for counter in d.violated_deploy.iter().filter_map(|&i| counters.get(i)) {
                counter.inc();
            }
        } else {
            for policy in &d.violated {
                self.metrics
                    .policy_violations
                    .get_or_create(&PolicyLabel {
                        policy: policy.clone(),
                    })
                    .inc();
            }
        }
        let fields = || {
            format!(
                "{} {} {}/{}",
                req.operation, req.kind.kind, req.namespace, req.name
            )
        };
        match d.outcome {
            decide::Outcome::Allowed | decide::Outcome::Bypassed => {
                tracing::debug!(uid = %req.uid, endpoint = endpoint.as_str(), request = %fields(), user = %req.user_info.username, outcome = d.outcome.as_str(), reason = %d.reason, "admission decision");
            }
            _ => {
                if let Some(withheld) = self.admit_log_line(now_unix_ms) {
                    tracing::info!(uid = %req.uid, endpoint = endpoint.as_str(), request = %fields(), user = %req.user_info.username, outcome = d.outcome.as_str(), reason = %d.reason, policies = ?NameList(&d.violated), dry_run = req.dry_run.unwrap_or(false), withheld, "admission decision");
                }
            }
        }
    }

    /// Whether the log has room for one more line of the kind a storm repeats, with the
    /// lines withheld before it (`withheld` on the line); withheld lines are counted.
    fn admit_log_line(&self, now_unix_ms: i64) -> Option<u64> {
        let admitted = self.log_budget.admit(now_unix_ms);
        if admitted.is_none() {
            self.metrics.log_lines_withheld.inc();
        }
        admitted
    }
}

/// Policy names as `Debug` writes a list of strings, without its per-character escaping for
/// names that need none: a denial's log line names every violated policy, and escaping them
/// character by character cost more than the rest of the line.
struct NameList<'a>(&'a [String]);

impl std::fmt::Debug for NameList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let plain = name
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
            if plain {
                f.write_str("\"")?;
                f.write_str(name)?;
                f.write_str("\"")?;
            } else {
                write!(f, "{name:?}")?;
            }
        }
        f.write_str("]")
    }
}

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let endpoint = match req.uri().path() {
        "/validate" => Endpoint::Validate,
        "/events" => Endpoint::Events,
        _ => return respond(StatusCode::NOT_FOUND, error_body("not found")),
    };
    if req.method() != Method::POST {
        state
            .metrics
            .rejected
            .get_or_create(&RejectLabel { reason: "method" })
            .inc();
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body("only POST is accepted"),
        );
    }
    let too_large = |state: &State| {
        state
            .metrics
            .rejected
            .get_or_create(&RejectLabel {
                reason: "too_large",
            })
            .inc();
        respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_body(&format!(
                "the review is larger than {} bytes",
                state.max_body
            )),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body as u64) {
        return too_large(&state);
    }
    let body = Limited::new(req.into_body(), state.max_body);
    let bytes = match tokio::time::timeout(state.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(&state),
        Ok(Err(e)) => {
            return respond(
                StatusCode::BAD_REQUEST,
                error_body(&format!("the body could not be read: {e}")),
            );
        }
        Err(_) => {
            state
                .metrics
                .rejected
                .get_or_create(&RejectLabel { reason: "timeout" })
                .inc();
            return respond(
                StatusCode::REQUEST_TIMEOUT,
                error_body(&format!(
                    "the body did not arrive within {} ms",
                    state.body_timeout.as_millis()
                )),
            );
        }
    };
    let decider: Arc<dyn crate::cohort::Decide> = state.clone();
    let (status, body) = decide_within_budget(&state, decider, endpoint, bytes).await;
    state
        .metrics
        .latency_of(endpoint.as_str())
        .observe(started.elapsed().as_secs_f64());
    respond(status, body)
}

/// Has `decider` decide the review in its thread's cohort, within [`State::decision_budget`]:
/// past it the review is answered by the failure mode (its decision, if still to come, is
/// dropped), and if the task deciding it dies, too.
async fn decide_within_budget(
    state: &State,
    decider: Arc<dyn crate::cohort::Decide>,
    endpoint: Endpoint,
    bytes: Bytes,
) -> (StatusCode, Vec<u8>) {
    let kept = bytes.clone();
    let failed = || state.review_failed(endpoint, &kept);
    let decided = tokio::time::timeout(
        state.decision_budget,
        crate::cohort::review(decider, endpoint, bytes, failed),
    )
    .await;
    decided.unwrap_or_else(|_| state.review_over_budget(endpoint, &kept))
}

/// Serves the webhook on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
) {
    serve_with(listener, tls, move |req| handle(Arc::clone(&state), req)).await;
}

/// The connection handling of [`serve`] (limit, handshake and header timeouts, HTTP/1.1 and
/// HTTP/2) around any handler: the load benchmark measures a no-op handler on the same stack
/// as its ceiling.
pub async fn serve_with<H, F>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(acceptor, tcp, peer, handler).await;
        });
    }
}

async fn serve_connection<H, F>(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| {
        let response = handler(req);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let io = hyper_util::rt::TokioIo::new(tls);
    if let Err(error) = builder.serve_connection(io, service).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// `/healthz`, `/readyz` (a policy set is in use) and `/metrics` on a plain-HTTP port.
pub async fn serve_health(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = Arc::clone(&state);
                async move {
                    let (status, body) = match req.uri().path() {
                        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
                        "/readyz" => match state.policies() {
                            Some(p) => (
                                StatusCode::OK,
                                format!("ready: policy revision {}\n", p.revision),
                            ),
                            None => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "not ready: no policy set received yet\n".to_string(),
                            ),
                        },
                        "/metrics" => {
                            let age = state.policies().map_or(0, |p| p.age().as_secs());
                            state
                                .metrics
                                .policy_age_seconds
                                .set(i64::try_from(age).unwrap_or(i64::MAX));
                            (StatusCode::OK, state.metrics.render())
                        }
                        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = status;
                    Ok::<_, Infallible>(r)
                }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_logged_as_debug_writes_them() {
        let names: Vec<String> = [
            "Privileged Container",
            "",
            "Quote \" and backslash \\",
            "Line\nbreak\tand\u{7f}",
            "Non-ASCII é ✓ \u{200b}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in 0..=names.len() {
            assert_eq!(
                format!("{:?}", NameList(&names[..n])),
                format!("{:?}", &names[..n])
            );
        }
    }

    /// A server state whose failure mode is `mode`.
    fn answering_by(mode: decide::FailureMode) -> State {
        State::new(
            Settings {
                failure_mode: mode,
                ..Settings::default()
            },
            Arc::new(Metrics::new()),
            1 << 20,
            Duration::from_secs(1),
            10,
        )
    }

    #[test]
    fn a_lost_decision_is_answered_by_the_failure_mode_and_counted() {
        for (mode, allowed, outcome) in [
            (
                decide::FailureMode::Closed,
                false,
                decide::Outcome::FailedClosed,
            ),
            (decide::FailureMode::Open, true, decide::Outcome::FailedOpen),
        ] {
            let state = answering_by(mode);
            let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-lost","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"shop","operation":"CREATE","userInfo":{"username":"alice"},"object":{"metadata":{"name":"web"}}}}"#;
            let (status, answer) = state.review_failed(Endpoint::Validate, body);
            assert_eq!(status, StatusCode::OK);
            let answer: serde_json::Value = serde_json::from_slice(&answer).expect("json");
            assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(answer["response"]["uid"], "u-lost");
            assert_eq!(answer["response"]["allowed"], allowed, "{answer}");
            assert_eq!(state.metrics.decision("validate", outcome).get(), 1);
            // What does not decode is refused as the review itself would be.
            let (status, _) = state.review_failed(Endpoint::Validate, b"{");
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
    }

    /// Decides nothing until let go (or 10 s passed).
    struct Stuck(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

    impl crate::cohort::Decide for Stuck {
        fn decide(&self, _: Endpoint, _: &[u8]) -> (StatusCode, Vec<u8>) {
            let _ = self
                .0
                .lock()
                .expect("lock")
                .recv_timeout(Duration::from_secs(10));
            (StatusCode::OK, b"decided too late".to_vec())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_review_not_decided_within_the_budget_is_answered_by_the_failure_mode() {
        for (mode, allowed, outcome) in [
            (decide::FailureMode::Open, true, decide::Outcome::FailedOpen),
            (
                decide::FailureMode::Closed,
                false,
                decide::Outcome::FailedClosed,
            ),
        ] {
            let mut state = answering_by(mode);
            state.decision_budget = Duration::from_millis(50);
            let (release, stuck) = std::sync::mpsc::channel();
            let decider: Arc<dyn crate::cohort::Decide> =
                Arc::new(Stuck(std::sync::Mutex::new(stuck)));
            let body = Bytes::from_static(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-slow","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"shop","operation":"CREATE","userInfo":{"username":"alice"},"object":{"metadata":{"name":"web"}}}}"#,
            );
            let (status, answer) =
                decide_within_budget(&state, decider, Endpoint::Validate, body).await;
            // Only the budget could answer: the decider has not been let go.
            let _ = release.send(());
            assert_eq!(status, StatusCode::OK);
            let answer: serde_json::Value = serde_json::from_slice(&answer).expect("json");
            assert_eq!(answer["response"]["uid"], "u-slow");
            assert_eq!(answer["response"]["allowed"], allowed, "{answer}");
            let text = if allowed {
                answer["response"]["warnings"][0].as_str()
            } else {
                answer["response"]["status"]["message"].as_str()
            };
            assert!(
                text.expect("explained")
                    .contains("not decided within the decision budget"),
                "{answer}"
            );
            assert_eq!(state.metrics.over_budget.get(), 1);
            assert_eq!(state.metrics.decision("validate", outcome).get(), 1);
        }
    }
}

#[cfg(test)]
mod image_data_tests {
    use super::*;

    /// Enforced policies on image data alone come last in the set, and an operator can see
    /// how many there are.
    #[test]
    fn enforced_policies_on_image_data_alone_are_set_apart_and_counted() {
        let policies: Vec<Vec<u8>> = rampart_policy::defaults::default_policies()
            .into_iter()
            .map(|mut p| {
                if p.has_stage(rampart_policy::LifecycleStage::Deploy) {
                    p.disabled = false;
                    p.enforcement_actions = vec![
                        serde_json::from_value(serde_json::json!("SCALE_TO_ZERO_ENFORCEMENT"))
                            .expect("action"),
                    ];
                }
                serde_json::to_vec(&p).expect("json")
            })
            .collect();
        let set = PolicySet::build("r1", "prod", std::time::SystemTime::now(), &policies);
        let on_image_data = set.on_image_data().len();
        let names: Vec<&str> = set
            .on_image_data()
            .iter()
            .map(|p| p.policy.name.as_str())
            .collect();
        assert!(
            names.contains(&"Fixable Severity at least Important"),
            "{names:?}"
        );
        assert!(
            set.deploy[..set.image_from]
                .iter()
                .all(rampart_policy::engine::can_violate_without_image_data)
        );
        assert!(
            !set.on_image_data()
                .iter()
                .any(rampart_policy::engine::can_violate_without_image_data)
        );
        let state = State::new(
            Settings::default(),
            Arc::new(Metrics::new()),
            1 << 20,
            Duration::from_secs(1),
            10,
        );
        state.set_policies(set);
        assert_eq!(
            state.metrics.policies_on_image_data.get(),
            on_image_data as i64
        );
        let text = state.metrics.render();
        assert!(
            text.contains(&format!(
                "rampart_admission_policies_on_image_data {on_image_data}"
            )),
            "{text}"
        );
    }
}
