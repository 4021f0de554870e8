//! The console's and the API's list pages with a large fleet in the store: 50,000 deployments
//! (10 clusters, 40 namespaces, real Deployment objects that normalize) and 100,000 alerts, two
//! per deployment. Each page is requested through the real router (session cookie, CSRF-free
//! GETs), in process, and its server time is recorded.
//!
//! `cargo bench -p rampart-central --bench console`

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use rampart_central::alerts::{AlertRecord, AlertState, persist};
use rampart_central::api::Api;
use rampart_central::commit::Committer;
use rampart_central::core::Core;
use rampart_central::model::{Cluster, DeploymentRecord};
use rampart_central::store::{SledBackend, Store, WriteBatch};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEPLOYMENTS: usize = 50_000;
const CLUSTERS: usize = 10;

fn deployment(i: usize) -> DeploymentRecord {
    let name = format!("app-{i}");
    let object = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": format!("team-{}", i % 40), "uid": format!("uid-{i}"), "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/team/app-{}:1.{}", i % 500, i % 7),
                "securityContext": {"privileged": i.is_multiple_of(10)},
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}]}}}
    });
    DeploymentRecord {
        cluster_id: format!("cluster-{}", i % CLUSTERS),
        id: format!("uid-{i}"),
        namespace: format!("team-{}", i % 40),
        name,
        kind: "Deployment".into(),
        object: serde_json::value::to_raw_value(&object).expect("json"),
        content_hash: i as u64,
        updated_unix_ms: 1_700_000_000_000 + i as i64,
        generation: 1,
        active_alerts: vec![format!("{i:08}-a"), format!("{i:08}-b")],
        context: None,
    }
}

fn alert(i: usize, suffix: &str, policy: &str, severity: rampart_policy::Severity) -> AlertRecord {
    let d = deployment(i);
    AlertRecord {
        id: format!("{i:08}-{suffix}"),
        policy_id: format!("policy-{policy}"),
        policy_name: policy.to_string(),
        severity,
        categories: vec!["Security Best Practices".into()],
        lifecycle_stage: "DEPLOY".into(),
        cluster_id: d.cluster_id,
        namespace: d.namespace,
        deployment_id: d.id,
        deployment_name: d.name,
        deployment_kind: "Deployment".into(),
        state: if i.is_multiple_of(5) {
            AlertState::Resolved
        } else {
            AlertState::Active
        },
        violations: vec![format!("Container 'app' of app-{i} violates {policy}")],
        first_occurred_unix_ms: 1_700_000_000_000 + i as i64,
        time_unix_ms: 1_700_000_000_000 + i as i64,
        resolved_unix_ms: None,
        enforcements: Vec::new(),
        admission: None,
        processes: Vec::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(SledBackend::open(dir.path()).expect("sled")).expect("store"));
    let started = Instant::now();
    let mut batch = WriteBatch::default();
    for c in 0..CLUSTERS {
        batch
            .put_cluster(&Cluster {
                id: format!("cluster-{c}"),
                name: format!("cluster-{c}"),
                ..Cluster::default()
            })
            .expect("cluster");
    }
    for i in 0..DEPLOYMENTS {
        batch.put_deployment(&deployment(i)).expect("deployment");
        persist::put(
            &mut batch,
            &alert(i, "a", "Latest tag", rampart_policy::Severity::Low),
        )
        .expect("alert");
        persist::put(
            &mut batch,
            &alert(
                i,
                "b",
                "Privileged Container",
                rampart_policy::Severity::High,
            ),
        )
        .expect("alert");
        if batch.ops.len() >= 3_000 {
            store.apply(&std::mem::take(&mut batch)).expect("apply");
        }
    }
    store.apply(&batch).expect("apply");
    store.flush().expect("flush");
    println!(
        "store: {DEPLOYMENTS} deployments, {} alerts, written in {:.1} s",
        DEPLOYMENTS * 2,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (committer, _task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
        let core = Core::new(
            Arc::clone(&store),
            committer,
            rampart_policy::defaults::default_policies(),
        )
        .expect("core");
        let ca =
            rampart_central::pki::CertificateAuthority::generate(time::OffsetDateTime::now_utc())
                .expect("ca");
        let password = rampart_central::auth::bootstrap_admin(&store)
            .expect("admin")
            .expect("first start");
        let api = Arc::new(Api {
            core,
            auth: rampart_central::auth::Authenticator::default(),
            ca: Arc::new(ca),
            revocations: Default::default(),
            console: Default::default(),
        });
        let router = rampart_central::api::router(Arc::clone(&api));
        let login = router
            .clone()
            .oneshot(
                Request::post("/ui/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(format!("username=admin&password={password}")))
                    .expect("request"),
            )
            .await
            .expect("login");
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session")
            .to_string();
        let basic = {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
            )
        };
        // Central starts the first ranking in the background at start; time it on its own.
        let t = Instant::now();
        let ranked = api.core.ranking.get(&api.core).expect("ranking");
        println!(
            "first risk ranking (at start, in the background): {} deployments in {:.0} ms",
            ranked.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
        println!("| page | requests | p50 | p99 | max |");
        println!("|---|---|---|---|---|");
        for (path, runs) in [
            ("/ui/violations", 20),
            (
                "/ui/violations?query=Severity%3AHIGH%2BNamespace%3Ateam-7&sort=-Severity",
                20,
            ),
            ("/ui/violations?offset=20000", 10),
            ("/v1/alerts?limit=50", 20),
            ("/ui/deployments", 20),
            ("/ui/deployments?cluster=cluster-3&namespace=team-3", 20),
            ("/ui/risk", 20),
            ("/ui/", 10),
            ("/ui/policies", 20),
            ("/ui/counts", 20),
        ] {
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let request = Request::get(path)
                    .header("cookie", &cookie)
                    .header("authorization", &basic)
                    .body(Body::empty())
                    .expect("request");
                let t = Instant::now();
                let response = router.clone().oneshot(request).await.expect("response");
                let status = response.status();
                let _ = axum::body::to_bytes(response.into_body(), 64 << 20).await;
                times.push(t.elapsed());
                assert!(status.is_success(), "{path}: {status}");
            }
            times.sort();
            println!(
                "| `{path}` | {runs} | {:.0} ms | {:.0} ms | {:.0} ms |",
                percentile(&times, 0.5).as_secs_f64() * 1000.0,
                percentile(&times, 0.99).as_secs_f64() * 1000.0,
                times[times.len() - 1].as_secs_f64() * 1000.0
            );
        }

        // The ranking after writes: each round resolves 100 deployments' HIGH alerts (as a
        // user's bulk resolve would), then asks for the Risk page, which rescores just those.
        let rounds = 20;
        let mut times = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut batch = WriteBatch::default();
            for i in (round * 100..(round + 1) * 100).map(|i| i * 7 % DEPLOYMENTS) {
                let mut a = alert(
                    i,
                    "b",
                    "Privileged Container",
                    rampart_policy::Severity::High,
                );
                a.state = AlertState::Resolved;
                persist::put(&mut batch, &a).expect("alert");
            }
            store.apply(&batch).expect("apply");
            let request = Request::get("/ui/risk")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("request");
            let t = Instant::now();
            let response = router.clone().oneshot(request).await.expect("response");
            let _ = axum::body::to_bytes(response.into_body(), 64 << 20).await;
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| `/ui/risk` after 100 alerts resolved | {rounds} | {:.0} ms | {:.0} ms | {:.0} ms |",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    });
}
