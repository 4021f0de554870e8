//! A Kubernetes API server for tests (and, later, `rampart up --demo`), speaking the real
//! protocol over HTTPS so that kube-rs runs against it unchanged from a kubeconfig:
//!
//! - discovery (`/version`, `/api`, `/apis`, resource lists) for the resources in [`RESOURCES`];
//! - list with `resourceVersion` in the list metadata and chunking (`limit` / `continue`);
//! - watch as a chunked stream of JSON lines from a resource version, with `BOOKMARK` events when
//!   asked (`allowWatchBookmarks`), `timeoutSeconds`, and `410 Gone` (an `ERROR` event, as the
//!   real server sends it) when the version is older than the retained history;
//! - get, create (with `generateName`), update (optimistic concurrency on `resourceVersion`),
//!   patch (JSON merge, strategic merge for workloads, JSON patch), delete with owner-reference
//!   garbage collection and namespace cascade, and the `scale` subresource;
//! - bearer-token authentication; errors as `Status` objects.
//!
//! What it does not do: admission, validation beyond the object's identity, field and label
//! selectors, server-side apply, and controllers (a Deployment does not create Pods by itself;
//! tests create what a controller would, with owner references).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One kind of object the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub scalable: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn r(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    scalable: bool,
) -> Resource {
    Resource {
        group,
        version,
        plural,
        kind,
        namespaced,
        scalable,
    }
}

/// Everything the Sensor watches (and ConfigMaps).
pub const RESOURCES: &[Resource] = &[
    r("", "v1", "namespaces", "Namespace", false, false),
    r("", "v1", "nodes", "Node", false, false),
    r("", "v1", "pods", "Pod", true, false),
    r("", "v1", "services", "Service", true, false),
    r("", "v1", "serviceaccounts", "ServiceAccount", true, false),
    r("", "v1", "secrets", "Secret", true, false),
    r("", "v1", "configmaps", "ConfigMap", true, false),
    r(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        true,
    ),
    r("apps", "v1", "deployments", "Deployment", true, true),
    r("apps", "v1", "statefulsets", "StatefulSet", true, true),
    r("apps", "v1", "daemonsets", "DaemonSet", true, false),
    r("apps", "v1", "replicasets", "ReplicaSet", true, true),
    r("batch", "v1", "jobs", "Job", true, false),
    r("batch", "v1", "cronjobs", "CronJob", true, false),
    r(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        false,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
    ),
];

/// Watch events kept for clients resuming from a resource version; older versions get 410.
pub const DEFAULT_HISTORY: usize = 100_000;
/// Largest request body (the real server's limit is about 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;
const DEFAULT_PAGE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("start the API server: {0}")]
    Start(String),
}

impl Error {
    fn code_reason(&self) -> (u16, &'static str) {
        match self {
            Error::NotFound(_) => (404, "NotFound"),
            Error::AlreadyExists(_) => (409, "AlreadyExists"),
            Error::Conflict(_) => (409, "Conflict"),
            Error::Invalid(_) => (422, "Invalid"),
            Error::BadRequest(_) => (400, "BadRequest"),
            Error::Gone(_) => (410, "Expired"),
            Error::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            Error::UnsupportedMediaType(_) => (415, "UnsupportedMediaType"),
            Error::Start(_) => (500, "InternalError"),
        }
    }

    fn status(&self) -> Value {
        let (code, reason) = self.code_reason();
        status_object(code, reason, &self.to_string())
    }
}

fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (code, _) = self.code_reason();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.status())).into_response()
    }
}

type Key = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
struct Event {
    rv: u64,
    resource: usize,
    namespace: String,
    kind: EventType,
    object: Value,
}

#[derive(Debug)]
struct Objects {
    rv: u64,
    by_resource: Vec<BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Event>>,
    /// Watches from a version below this get 410 Gone.
    oldest_watchable: u64,
    history_limit: usize,
}

#[derive(Debug)]
struct Shared {
    objects: Mutex<Objects>,
    events: broadcast::Sender<Arc<Event>>,
    token: String,
    bookmark_interval: Duration,
}

/// Options for [`ApiServer::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    pub history: usize,
    pub bookmark_interval: Duration,
    /// `127.0.0.1:0` by default.
    pub listen: SocketAddr,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history: DEFAULT_HISTORY,
            bookmark_interval: Duration::from_secs(5),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A running API server. Dropping it stops it.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl ApiServer {
    /// Starts on an ephemeral loopback port (inside a Tokio runtime).
    pub async fn start() -> Result<ApiServer, Error> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Result<ApiServer, Error> {
        let start = |e: &dyn std::fmt::Display| Error::Start(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(|e| start(&e))?;
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart test apiserver CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| start(&e))?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().map_err(|e| start(&e))?;
        let mut params = rcgen::CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .map_err(|e| start(&e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver");
        let cert = params.signed_by(&key, &issuer).map_err(|e| start(&e))?;

        let server_config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(|e| start(&e))?;
        let mut server_config = server_config;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let token: [u8; 24] = rand::random();
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            objects: Mutex::new(Objects {
                rv: 1,
                by_resource: vec![BTreeMap::new(); RESOURCES.len()],
                history: VecDeque::new(),
                oldest_watchable: 0,
                history_limit: options.history.max(1),
            }),
            events,
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token),
            bookmark_interval: options.bookmark_interval,
        });
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| start(&e))?;
        let addr = listener.local_addr().map_err(|e| start(&e))?;
        let app = axum::Router::new()
            .fallback(dispatch)
            .with_state(Arc::clone(&shared));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Ok(ApiServer {
            shared,
            addr,
            ca_pem: ca_cert.pem(),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A kubeconfig for this server (CA, bearer token).
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rampart-test\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: rampart-test\n  user:\n    token: {}\ncontexts:\n- name: rampart-test\n  context:\n    cluster: rampart-test\n    user: rampart-test\ncurrent-context: rampart-test\n",
            self.url(),
            self.shared.token
        )
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Creates or replaces an object (what `kubectl apply` would leave behind).
    pub fn apply(&self, object: Value) -> Result<Value, Error> {
        let (resource, namespace, name) = identify(&object)?;
        let exists = self.shared.lock().by_resource[resource]
            .contains_key(&(namespace.clone(), name.clone()));
        if exists {
            self.shared
                .update(resource, &namespace, &name, object, false)
        } else {
            self.shared.create(resource, &namespace, object)
        }
    }

    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = resource_by_kind(kind)?;
        self.shared.lock().by_resource[resource]
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<Value, Error> {
        let resource = resource_by_kind(kind)
            .ok_or_else(|| Error::NotFound(format!("no resource of kind {kind}")))?;
        self.shared.delete(resource, namespace, name)
    }

    /// Every object of a kind.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        resource_by_kind(kind)
            .map(|r| {
                self.shared.lock().by_resource[r]
                    .values()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }
}

fn resource_by_kind(kind: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.kind == kind)
}

fn identify(object: &Value) -> Result<(usize, String, String), Error> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resource = resource_by_kind(kind)
        .ok_or_else(|| Error::BadRequest(format!("no resource of kind '{kind}'")))?;
    let meta = object.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = if RESOURCES[resource].namespaced {
        meta.and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string()
    } else {
        String::new()
    };
    Ok((resource, namespace, name))
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, objects: &mut Objects, resource: usize, kind: EventType, object: &Value) {
        let event = Arc::new(Event {
            rv: objects.rv,
            resource,
            namespace: meta_str(object, "namespace")
                .unwrap_or_default()
                .to_string(),
            kind,
            object: object.clone(),
        });
        objects.history.push_back(Arc::clone(&event));
        while objects.history.len() > objects.history_limit {
            if let Some(old) = objects.history.pop_front() {
                objects.oldest_watchable = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    fn create(&self, resource: usize, namespace: &str, mut object: Value) -> Result<Value, Error> {
        let res = RESOURCES[resource];
        if !object.is_object() {
            return Err(Error::BadRequest("the body is not a JSON object".into()));
        }
        if object.get("kind").and_then(Value::as_str) != Some(res.kind) {
            return Err(Error::BadRequest(format!(
                "the object's kind is not {}",
                res.kind
            )));
        }
        let mut objects = self.lock();
        let meta = object
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})));
        let Some(Value::Object(meta)) = meta else {
            return Err(Error::BadRequest("metadata is not an object".into()));
        };
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
                return Err(Error::Invalid(
                    "metadata.name or metadata.generateName is required".into(),
                ));
            };
            let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
            name = format!("{prefix}{suffix}");
        }
        if res.namespaced {
            if let Some(ns) = meta.get("namespace").and_then(Value::as_str)
                && ns != namespace
            {
                return Err(Error::BadRequest(format!(
                    "the namespace of the object ({ns}) does not match the namespace on the request ({namespace})"
                )));
            }
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        let key = (
            if res.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name.clone(),
        );
        if objects.by_resource[resource].contains_key(&key) {
            return Err(Error::AlreadyExists(format!(
                "{}.{} \"{name}\" already exists",
                res.plural, res.group
            )));
        }
        objects.rv += 1;
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("resourceVersion".into(), json!(objects.rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("managedFields");
        objects.by_resource[resource].insert(key, object.clone());
        self.record(&mut objects, resource, EventType::Added, &object);
        Ok(object)
    }

    /// Replaces an object. `check_version`: a stale `metadata.resourceVersion` is a conflict.
    fn update(
        &self,
        resource: usize,
        namespace: &str,
        name: &str,
        mut object: Value,
        check_version: bool,
    ) -> Result<Value, Error> {
        let res = RESOURCES[resource];
        let mut objects = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(current) = objects.by_resource[resource].get(&key) else {
            return Err(not_found(res, name));
        };
        let current_rv = meta_str(current, "resourceVersion").unwrap_or_default();
        if check_version
            && let Some(sent) = meta_str(&object, "resourceVersion")
            && sent != current_rv
        {
            return Err(Error::Conflict(format!(
                "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.plural, res.group
            )));
        }
        if meta_str(&object, "name").is_some_and(|n| n != name) {
            return Err(Error::BadRequest(
                "the name of the object does not match the name on the URL".into(),
            ));
        }
        let generation = current
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = current.get("spec") != object.get("spec");
        let keep: Vec<(String, Value)> = ["uid", "creationTimestamp", "ownerReferences"]
            .iter()
            .filter_map(|f| {
                current
                    .get("metadata")
                    .and_then(|m| m.get(*f))
                    .map(|v| (f.to_string(), v.clone()))
            })
            .collect();
        let Some(meta) = object
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        else {
            return Err(Error::BadRequest("the body is not a JSON object".into()));
        };
        for (field, value) in keep {
            if field != "ownerReferences" || !meta.contains_key("ownerReferences") {
                meta.insert(field, value);
            }
        }
        objects.rv += 1;
        meta.insert("name".into(), json!(name));
        if res.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("resourceVersion".into(), json!(objects.rv.to_string()));
        meta.insert(
            "generation".into(),
            json!(if spec_changed {
                generation + 1
            } else {
                generation
            }),
        );
        meta.remove("managedFields");
        objects.by_resource[resource].insert(key, object.clone());
        self.record(&mut objects, resource, EventType::Modified, &object);
        Ok(object)
    }

    fn delete(&self, resource: usize, namespace: &str, name: &str) -> Result<Value, Error> {
        let res = RESOURCES[resource];
        let mut objects = self.lock();
        let Some(object) =
            objects.by_resource[resource].remove(&(namespace.to_string(), name.to_string()))
        else {
            return Err(not_found(res, name));
        };
        let mut deleted = object.clone();
        objects.rv += 1;
        let rv = objects.rv;
        if let Some(meta) = deleted.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        self.record(&mut objects, resource, EventType::Deleted, &deleted);
        // Garbage collection: what this object owned (and a namespace's contents) goes too.
        let uid = meta_str(&object, "uid").unwrap_or_default().to_string();
        let mut dependents = Vec::new();
        for (i, map) in objects.by_resource.iter().enumerate() {
            for ((ns, n), o) in map {
                let owned = o
                    .get("metadata")
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    });
                let in_namespace = res.kind == "Namespace" && RESOURCES[i].namespaced && ns == name;
                if owned || in_namespace {
                    dependents.push((i, ns.clone(), n.clone()));
                }
            }
        }
        drop(objects);
        for (i, ns, n) in dependents {
            // Already gone through another owner: fine.
            let _ = self.delete(i, &ns, &n);
        }
        Ok(deleted)
    }
}

fn not_found(res: Resource, name: &str) -> Error {
    if res.group.is_empty() {
        Error::NotFound(format!("{} \"{name}\" not found", res.plural))
    } else {
        Error::NotFound(format!("{}.{} \"{name}\" not found", res.plural, res.group))
    }
}

/// What a request path names.
#[derive(Debug)]
struct Target {
    resource: usize,
    /// `None`: all namespaces (or a cluster-scoped resource).
    namespace: Option<String>,
    name: Option<String>,
    scale: bool,
}

enum Route {
    Version,
    CoreVersions,
    Groups,
    ResourceList(&'static str, &'static str),
    Object(Target),
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::CoreVersions),
        ["apis"] => return Some(Route::Groups),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let known = |plural: &str| {
        RESOURCES
            .iter()
            .position(|r| r.group == group && r.version == version && r.plural == plural)
    };
    let target = |resource: usize, namespace: Option<&str>, name: Option<&str>, scale: bool| {
        Some(Route::Object(Target {
            resource,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            scale,
        }))
    };
    match rest {
        [] => RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version)
            .map(|r| Route::ResourceList(r.group, r.version)),
        ["namespaces", ns, plural] => known(plural).and_then(|i| target(i, Some(ns), None, false)),
        ["namespaces", ns, plural, name] => {
            known(plural).and_then(|i| target(i, Some(ns), Some(name), false))
        }
        ["namespaces", ns, plural, name, "scale"] => known(plural)
            .filter(|i| RESOURCES[*i].scalable)
            .and_then(|i| target(i, Some(ns), Some(name), true)),
        [plural] => known(plural).and_then(|i| target(i, None, None, false)),
        [plural, name] => known(plural)
            .filter(|i| !RESOURCES[*i].namespaced)
            .and_then(|i| target(i, None, Some(name), false)),
        _ => None,
    }
}

fn query_params(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    Some((percent_decode(k)?, percent_decode(v)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t == shared.token);
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(status_object(401, "Unauthorized", "Unauthorized")),
        )
            .into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(status_object(
                    413,
                    "RequestEntityTooLarge",
                    "the request body is too large",
                )),
            )
                .into_response();
        }
    };
    let Some(route) = route(uri.path()) else {
        return Error::NotFound(format!(
            "the server could not find the requested resource ({})",
            uri.path()
        ))
        .into_response();
    };
    let params = query_params(&uri);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    match handle(&shared, method, route, &params, &content_type, body) {
        Ok(Reply::Json(code, value)) => (code, axum::Json(value)).into_response(),
        Ok(Reply::Watch(watch)) => watch_response(shared, watch),
        Err(e) => e.into_response(),
    }
}

enum Reply {
    Json(StatusCode, Value),
    Watch(WatchRequest),
}

struct WatchRequest {
    resource: usize,
    namespace: Option<String>,
    from: u64,
    bookmarks: bool,
    timeout: Duration,
}

fn parse_body(body: &Bytes) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn handle(
    shared: &Shared,
    method: Method,
    route: Route,
    params: &HashMap<String, String>,
    content_type: &str,
    body: Bytes,
) -> Result<Reply, Error> {
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    let target = match route {
        Route::Version => {
            return ok(
                json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-rampart-test",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "", "compiler": "", "platform": "linux/amd64"}),
            );
        }
        Route::CoreVersions => {
            return ok(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": []}));
        }
        Route::Groups => {
            let mut groups: Vec<&str> = RESOURCES
                .iter()
                .map(|r| r.group)
                .filter(|g| !g.is_empty())
                .collect();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            return ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        }
        Route::ResourceList(group, version) => {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .flat_map(|r| {
                    let mut list = vec![json!({"name": r.plural, "singularName": r.kind.to_ascii_lowercase(),
                        "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})];
                    if r.scalable {
                        list.push(json!({"name": format!("{}/scale", r.plural), "singularName": "",
                            "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale",
                            "verbs": ["get", "patch", "update"]}));
                    }
                    list
                })
                .collect();
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            return ok(json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": gv, "resources": resources}));
        }
        Route::Object(t) => t,
    };
    let res = RESOURCES[target.resource];
    let namespace = target.namespace.clone().unwrap_or_default();
    match (method, &target.name) {
        (Method::GET, None) if params.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            let from = match params.get("resourceVersion").map(String::as_str) {
                None | Some("") | Some("0") => None,
                Some(v) => Some(
                    v.parse::<u64>()
                        .map_err(|_| Error::BadRequest(format!("invalid resourceVersion '{v}'")))?,
                ),
            };
            let timeout = params
                .get("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .map_or(Duration::from_secs(1800), Duration::from_secs);
            Ok(Reply::Watch(WatchRequest {
                resource: target.resource,
                namespace: target.namespace,
                // From "now" when no version is given: send the current objects first.
                from: from.unwrap_or(0),
                bookmarks: params
                    .get("allowWatchBookmarks")
                    .is_some_and(|b| b == "true"),
                timeout,
            }))
        }
        (Method::GET, None) => ok(list(
            shared,
            target.resource,
            target.namespace.as_deref(),
            params,
        )?),
        (Method::GET, Some(name)) => {
            let objects = shared.lock();
            let object = objects.by_resource[target.resource]
                .get(&(namespace.clone(), name.clone()))
                .ok_or_else(|| not_found(res, name))?;
            if target.scale {
                ok(scale_of(object))
            } else {
                ok(object.clone())
            }
        }
        (Method::POST, None) => {
            if res.namespaced && target.namespace.is_none() {
                return Err(Error::MethodNotAllowed(
                    "create needs a namespace in the path".into(),
                ));
            }
            let created = shared.create(target.resource, &namespace, parse_body(&body)?)?;
            Ok(Reply::Json(StatusCode::CREATED, created))
        }
        (Method::PUT, Some(name)) => {
            let sent = parse_body(&body)?;
            let object = if target.scale {
                let replicas = sent
                    .get("spec")
                    .and_then(|s| s.get("replicas"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| Error::Invalid("spec.replicas is required".into()))?;
                with_replicas(shared, target.resource, &namespace, name, replicas)?
            } else {
                shared.update(target.resource, &namespace, name, sent, true)?
            };
            if target.scale {
                ok(scale_of(&object))
            } else {
                ok(object)
            }
        }
        (Method::PATCH, Some(name)) => {
            let patch = parse_body(&body)?;
            let current = shared.lock().by_resource[target.resource]
                .get(&(namespace.clone(), name.clone()))
                .cloned()
                .ok_or_else(|| not_found(res, name))?;
            let mut patched = if target.scale {
                scale_of(&current)
            } else {
                current.clone()
            };
            match content_type {
                "application/merge-patch+json" => json_patch::merge(&mut patched, &patch),
                "application/strategic-merge-patch+json" => {
                    crate::patch::strategic_merge(&mut patched, &patch)
                }
                "application/json-patch+json" => {
                    let ops: json_patch::Patch = serde_json::from_value(patch)
                        .map_err(|e| Error::BadRequest(format!("invalid JSON patch: {e}")))?;
                    json_patch::patch(&mut patched, &ops).map_err(|e| {
                        Error::Invalid(format!("the JSON patch does not apply: {e}"))
                    })?;
                }
                other => {
                    return Err(Error::UnsupportedMediaType(format!(
                        "the body of the request was in an unknown format ({other}); accepted: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
                    )));
                }
            }
            if target.scale {
                let replicas = patched
                    .get("spec")
                    .and_then(|s| s.get("replicas"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| Error::Invalid("spec.replicas is required".into()))?;
                let object = with_replicas(shared, target.resource, &namespace, name, replicas)?;
                ok(scale_of(&object))
            } else {
                ok(shared.update(target.resource, &namespace, name, patched, false)?)
            }
        }
        (Method::DELETE, Some(name)) => ok(shared.delete(target.resource, &namespace, name)?),
        (method, _) => Err(Error::MethodNotAllowed(format!(
            "{method} is not allowed here"
        ))),
    }
}

fn with_replicas(
    shared: &Shared,
    resource: usize,
    namespace: &str,
    name: &str,
    replicas: i64,
) -> Result<Value, Error> {
    if replicas < 0 {
        return Err(Error::Invalid("spec.replicas must be >= 0".into()));
    }
    let mut object = shared.lock().by_resource[resource]
        .get(&(namespace.to_string(), name.to_string()))
        .cloned()
        .ok_or_else(|| not_found(RESOURCES[resource], name))?;
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    shared.update(resource, namespace, name, object, false)
}

fn scale_of(object: &Value) -> Value {
    let replicas = object
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta_str(object, "name"), "namespace": meta_str(object, "namespace"),
            "uid": meta_str(object, "uid"), "resourceVersion": meta_str(object, "resourceVersion")},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas}})
}

/// Lists in key order, `limit` at a time; the `continue` token carries the list's resource
/// version and the last key, so every page reports the version of the first.
fn list(
    shared: &Shared,
    resource: usize,
    namespace: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Value, Error> {
    let res = RESOURCES[resource];
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_PAGE);
    let objects = shared.lock();
    let (list_rv, after): (u64, Option<Key>) = match params
        .get("continue")
        .filter(|c| !c.is_empty())
    {
        None => (objects.rv, None),
        Some(token) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice::<(u64, String, String)>(&b).ok())
                .ok_or_else(|| Error::BadRequest("invalid continue token".into()))?;
            if decoded.0 < objects.oldest_watchable {
                return Err(Error::Gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ));
            }
            (decoded.0, Some((decoded.1, decoded.2)))
        }
    };
    let map = &objects.by_resource[resource];
    let range: Box<dyn Iterator<Item = (&Key, &Value)>> = match &after {
        None => Box::new(map.iter()),
        Some(k) => Box::new(map.range::<Key, _>((
            std::ops::Bound::Excluded(k.clone()),
            std::ops::Bound::Unbounded,
        ))),
    };
    let mut items = Vec::new();
    let mut last: Option<&Key> = None;
    let mut more = false;
    for (key, object) in range {
        if let Some(ns) = namespace
            && res.namespaced
            && key.0 != ns
        {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(object.clone());
        last = Some(key);
    }
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if more && let Some((ns, name)) = last {
        let token = serde_json::to_vec(&(list_rv, ns, name)).unwrap_or_default();
        metadata["continue"] =
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
    }
    Ok(
        json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
        "metadata": metadata, "items": items}),
    )
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch_response(shared: Arc<Shared>, watch: WatchRequest) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    tokio::spawn(async move {
        let _ = stream_watch(&shared, watch, &tx).await;
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

type Sink = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

async fn stream_watch(shared: &Shared, watch: WatchRequest, tx: &Sink) -> Result<(), ()> {
    let res = RESOURCES[watch.resource];
    let selected = |event: &Event| {
        event.resource == watch.resource
            && watch
                .namespace
                .as_ref()
                .is_none_or(|ns| !res.namespaced || &event.namespace == ns)
    };
    // Subscribe while holding the lock: no event falls between the backlog and the live feed.
    let start = {
        let objects = shared.lock();
        let live = shared.events.subscribe();
        if watch.from != 0 && watch.from < objects.oldest_watchable {
            Err(status_object(
                410,
                "Expired",
                &format!(
                    "too old resource version: {} ({})",
                    watch.from, objects.oldest_watchable
                ),
            ))
        } else {
            let backlog: Vec<Bytes> = if watch.from == 0 {
                // No version: the current objects as ADDED, then changes.
                objects.by_resource[watch.resource]
                    .iter()
                    .filter(|((ns, _), _)| {
                        watch
                            .namespace
                            .as_ref()
                            .is_none_or(|w| !res.namespaced || ns == w)
                    })
                    .map(|(_, o)| watch_line("ADDED", o))
                    .collect()
            } else {
                objects
                    .history
                    .iter()
                    .filter(|e| e.rv > watch.from && selected(e))
                    .map(|e| watch_line(e.kind.as_str(), &e.object))
                    .collect()
            };
            Ok((backlog, live, objects.rv))
        }
    };
    let (backlog, mut live, mut sent_rv) = match start {
        Ok(s) => s,
        Err(gone) => {
            let _ = tx.send(Ok(watch_line("ERROR", &gone))).await;
            return Ok(());
        }
    };
    for line in backlog {
        tx.send(Ok(line)).await.map_err(|_| ())?;
    }
    let deadline = tokio::time::Instant::now() + watch.timeout;
    let mut bookmark = tokio::time::interval(shared.bookmark_interval);
    bookmark.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            _ = tx.closed() => return Err(()),
            _ = bookmark.tick(), if watch.bookmarks => {
                let mark = json!({"kind": res.kind, "apiVersion": res.api_version(),
                    "metadata": {"resourceVersion": sent_rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}}});
                tx.send(Ok(watch_line("BOOKMARK", &mark))).await.map_err(|_| ())?;
            }
            event = live.recv() => match event {
                Ok(event) => {
                    sent_rv = sent_rv.max(event.rv);
                    if selected(&event) {
                        tx.send(Ok(watch_line(event.kind.as_str(), &event.object)))
                            .await
                            .map_err(|_| ())?;
                    }
                }
                // This watcher fell behind: end the watch with 410 so the client re-lists.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let gone = status_object(410, "Expired", "the watch fell behind; list again");
                    let _ = tx.send(Ok(watch_line("ERROR", &gone))).await;
                    return Ok(());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }
}
