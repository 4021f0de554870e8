//! The Collector on this machine with real processes: a process placed in a real cgroup that
//! has a Kubernetes container's path execs, listens and connects on loopback; the Collector
//! reports it to the Sensor over mTLS, the Sensor maps the container to its pod and deployment,
//! and Central stores what ran and who talked to whom.
//!
//! Needs root (it creates cgroups), as the test command runs on these machines.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use rampart_central::pki::Service;
use rampart_central::runtime::Running;
use rampart_sensor::collector::{self, ModeChoice};
use rampart_test_support::ApiServer;
use serde_json::{Value, json};

async fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    rampart_test_support::eventually(what, Duration::from_secs(30), check).await
}

/// A cgroup named the way the kubelet's cgroupfs driver names a container's, removed on drop.
struct ContainerCgroup {
    dir: PathBuf,
    children: Vec<Child>,
}

impl ContainerCgroup {
    fn create(pod_uid: &str, container_id: &str) -> ContainerCgroup {
        // cgroup v1 (a named hierarchy) or the v2 unified root.
        let base = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .into_iter()
            .find(|b| Path::new(b).join("cgroup.procs").exists())
            .expect("a cgroup hierarchy");
        let dir = Path::new(base).join(format!("kubepods/besteffort/pod{pod_uid}/{container_id}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "creating {} failed ({e}): the Collector tests create cgroups and run as root",
                dir.display()
            )
        });
        ContainerCgroup {
            dir,
            children: Vec::new(),
        }
    }

    /// Runs `script` with sh after moving the shell into the cgroup, so that whatever it execs
    /// starts inside the "container".
    fn spawn(&mut self, script: &str) -> &mut Child {
        let procs = self.dir.join("cgroup.procs");
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("echo $$ > {} && {script}", procs.display()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        self.children.push(child);
        self.children.last_mut().expect("child")
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        // Everything still in the "container" (grandchildren too), then the direct children.
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines().filter(|l| !l.trim().is_empty()) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut dir = Some(self.dir.as_path());
        for _ in 0..3 {
            if let Some(d) = dir {
                let _ = std::fs::remove_dir(d);
                dir = d.parent();
            }
        }
    }
}

fn pod(name: &str, ip: &str, container_id: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/shop/app:1.0"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "containerStatuses": [{"name": "app", "containerID": format!("containerd://{container_id}"),
                "image": "registry.example/shop/app:1.0"}]}})
}

/// A TCP server on `addr` that accepts and holds connections; its port.
fn serve(addr: &str) -> u16 {
    let server = std::net::TcpListener::bind((addr, 0)).expect("bind");
    let port = server.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in server.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

fn random_container_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect()
}

struct World {
    _dir: tempfile::TempDir,
    api: ApiServer,
    central: Running,
    sensor: rampart_sensor::Sensor,
    collector_endpoint: collector::SensorEndpoint,
}

async fn world() -> World {
    let setup = common::setup().await;
    let sensor =
        rampart_sensor::start(setup.sensor_config(Some("127.0.0.1:0".parse().expect("addr"))))
            .await
            .expect("sensor");
    let collector_cert = setup.cert(Service::Collector);
    let collector_endpoint = collector::SensorEndpoint {
        endpoint: format!(
            "https://{}",
            sensor.collector_addr.expect("collector endpoint")
        ),
        server_name: "sensor.rampart.svc".into(),
        ca_pem: setup.bundle.ca_pem.clone(),
        cert_pem: collector_cert.cert_pem.clone(),
        key_pem: collector_cert.key_pem.clone(),
    };
    World {
        _dir: setup.dir,
        api: setup.api,
        central: setup.central,
        sensor,
        collector_endpoint,
    }
}

impl World {
    /// A Collector for `node` (100 ms scans; the kernel's process events when root), once the
    /// Sensor has it connected.
    async fn collector(&self, node: &str) -> collector::Collector {
        let mut config = collector::Config::new(self.collector_endpoint.clone(), node.into());
        config.poll_interval = Duration::from_millis(100);
        config.net_interval = Duration::from_millis(100);
        config.mode = ModeChoice::Auto;
        let collector = collector::start(config).await.expect("collector");
        eventually("the collector to connect", || {
            self.sensor
                .status()
                .nodes
                .get(node)
                .filter(|n| n.connected)
                .map(|_| ())
        })
        .await;
        collector
    }

    /// The id Central gave cluster `prod` (the Sensor's hello may still be on its way).
    async fn cluster_id(&self) -> String {
        eventually("the cluster in Central", || {
            self.central
                .core
                .store
                .clusters()
                .expect("clusters")
                .into_iter()
                .find(|c| c.name == "prod")
                .map(|c| c.id)
        })
        .await
    }
}

fn uid(api: &ApiServer, name: &str) -> String {
    api.get("Pod", "shop", name)
        .and_then(|p| p.pointer("/metadata/uid")?.as_str().map(str::to_string))
        .expect("pod uid")
}

fn activity(central: &Running, deployment: &str) -> rampart_central::activity::DeploymentActivity {
    let cluster = central
        .core
        .store
        .clusters()
        .expect("clusters")
        .into_iter()
        .find(|c| c.name == "prod")
        .map(|c| c.id)
        .unwrap_or_default();
    rampart_central::activity::of_deployment(&central.core.store, &cluster, deployment)
        .expect("activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_processes_listeners_and_connections_reach_central_with_their_deployment() {
    let w = world().await;
    let web_container = random_container_id();
    w.api
        .apply(pod("web", "10.1.2.3", &web_container))
        .expect("web pod");
    // The server the "web" container talks to: a pod whose IP is the loopback address.
    w.api
        .apply(pod("db", "127.0.0.1", &random_container_id()))
        .expect("db pod");
    let (web, db) = (uid(&w.api, "web"), uid(&w.api, "db"));
    let server_port = serve("127.0.0.1");

    let mut config = collector::Config::new(w.collector_endpoint.clone(), "node-1".into());
    config.poll_interval = Duration::from_millis(200);
    config.net_interval = Duration::from_millis(200);
    config.afterglow = Duration::from_secs(2);
    config.mode = ModeChoice::Auto;
    let collector = collector::start(config).await.expect("collector");
    assert_eq!(
        collector.status().mode,
        "proc-connector",
        "as root the kernel's process events are used"
    );
    eventually("the collector to connect", || {
        let nodes = w.sensor.status().nodes;
        nodes
            .get("node-1")
            .filter(|n| n.connected && n.mode == "proc-connector")
            .map(|_| ())
    })
    .await;

    let mut cgroup = ContainerCgroup::create(&web, &web_container);
    let client_pid = cgroup
        .spawn(&format!(
            "exec /usr/bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/{server_port}; exec /usr/bin/sleep 30'"
        ))
        .id();
    let listener = cgroup.spawn(
        "exec /usr/bin/python3.11 -c \"import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\ntime.sleep(30)\"",
    );
    let listener_pid = listener.id();
    let mut line = String::new();
    std::io::BufReader::new(listener.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let listen_port: u32 = line.trim().parse().expect("port number");

    let seen = eventually("the processes, listener and connection in Central", || {
        let a = activity(&w.central, &web);
        let sleep = a
            .processes
            .iter()
            .find(|p| p.exec_file_path == "/usr/bin/sleep")?
            .clone();
        let python = a
            .processes
            .iter()
            .find(|p| p.exec_file_path == "/usr/bin/python3.11")?
            .clone();
        let listening = a.listening.iter().find(|l| l.port == listen_port)?.clone();
        let flow = a
            .flows
            .iter()
            .find(|f| f.port == u32::from(server_port))?
            .clone();
        Some((sleep, python, listening, flow))
    })
    .await;
    let (sleep, python, listening, flow) = seen;
    assert_eq!(sleep.last_pid, client_pid);
    assert_eq!(sleep.name, "sleep");
    assert_eq!(sleep.args, "30");
    assert_eq!(sleep.container_name, "app");
    assert_eq!(sleep.pod_id, "web");
    assert_eq!(sleep.container_id, web_container);
    assert_eq!(python.last_pid, listener_pid);
    assert_eq!(listening.protocol, "TCP");
    assert_eq!(listening.process_exe_path, "/usr/bin/python3.11");
    assert!(listening.active);
    assert_eq!(flow.source_deployment_id, web);
    assert_eq!(
        flow.destination_deployment_id, db,
        "the peer's pod IP names it"
    );
    assert_eq!(flow.protocol, "TCP");
    assert_eq!(flow.process_exe_path, "/usr/bin/sleep");
    assert!(flow.active);

    // The connection ends: after the afterglow it is reported closed.
    drop(cgroup);
    eventually("the flow to close", || {
        activity(&w.central, &web)
            .flows
            .iter()
            .any(|f| f.port == u32::from(server_port) && !f.active)
            .then_some(())
    })
    .await;
    assert!(
        activity(&w.central, &db)
            .flows
            .iter()
            .any(|f| f.source_deployment_id == web),
        "the flow shows on both deployments"
    );
    let status = collector.status();
    assert_eq!(status.dropped, 0);
    assert!(status.processes >= 2, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_mode_sees_a_new_container_process_without_the_connector() {
    let w = world().await;
    let container = random_container_id();
    w.api
        .apply(pod("batch", "10.1.2.4", &container))
        .expect("pod");
    let pod_uid = uid(&w.api, "batch");
    let mut config = collector::Config::new(w.collector_endpoint.clone(), "node-2".into());
    config.poll_interval = Duration::from_millis(100);
    config.mode = ModeChoice::Polling;
    let mut collector = collector::start(config).await.expect("collector");
    assert_eq!(collector.status().mode, "proc-polling");
    let health = collector
        .serve_health("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("health endpoint");
    let mut cgroup = ContainerCgroup::create(&pod_uid, &container);
    let pid = cgroup.spawn("exec /usr/bin/sleep 31").id();
    let record = eventually("the polled process in Central", || {
        activity(&w.central, &pod_uid)
            .processes
            .into_iter()
            .find(|p| p.exec_file_path == "/usr/bin/sleep")
    })
    .await;
    assert_eq!(record.last_pid, pid);
    assert_eq!(record.args, "31");
    let node = w
        .sensor
        .status()
        .nodes
        .get("node-2")
        .cloned()
        .expect("node");
    assert_eq!(node.mode, "proc-polling");

    // Probes and metrics for the kubelet and Prometheus: alive, connected, what it reported.
    let [live, ready, metrics]: [(u16, String); 3] =
        common::probe(health, &["/healthz", "/readyz", "/metrics"])
            .await
            .try_into()
            .expect("three answers");
    assert_eq!(live, (200, "ok\n".to_string()));
    assert_eq!(ready, (200, "ready\n".to_string()));
    assert_eq!(metrics.0, 200);
    let value = |name: &str| {
        metrics
            .1
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in\n{}", metrics.1))
    };
    assert_eq!(value("rampart_collector_info{mode=\"proc-polling\"}"), 1);
    assert_eq!(value("rampart_collector_sensor_connected"), 1);
    assert!(value("rampart_collector_processes") >= 1);
    assert_eq!(value("rampart_collector_dropped_events"), 0);
}

/// A "Java" program (a copy of bash named `java`) in a container starts a shell: the Collector
/// sees the exec with its lineage, the Sensor's runtime detection raises "Shell Spawned by Java
/// Application" in Central, and — the policy set to kill the pod — the pod is deleted in the API
/// server and the deletion is recorded on the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_spawned_by_java_is_alerted_and_its_pod_killed() {
    let w = world().await;
    let policy_id = {
        let state = w.central.core.policies.current();
        let mut policy = state
            .policies
            .iter()
            .find(|p| p.name == "Shell Spawned by Java Application")
            .cloned()
            .expect("default runtime policy");
        policy.enforcement_actions = vec![rampart_policy::policy::EnforcementAction::KillPod];
        let id = policy.id.clone();
        w.central
            .core
            .policies
            .update(&id, policy)
            .await
            .expect("update");
        id
    };
    let revision = w.central.core.policies.current().sync.revision.clone();
    eventually("the Sensor to hold the kill-pod policy", || {
        (w.sensor.status().policy_revision == revision).then_some(())
    })
    .await;
    let container = random_container_id();
    w.api
        .apply(pod("payments", "10.1.2.5", &container))
        .expect("pod");
    let pod_uid = uid(&w.api, "payments");
    let _collector = w.collector("node-3").await;

    let bin = tempfile::tempdir().expect("tempdir");
    let java = bin.path().join("java");
    std::fs::copy("/usr/bin/bash", &java).expect("a program named java");
    let mut cgroup = ContainerCgroup::create(&pod_uid, &container);
    // The shell waits for its child, so it lives long enough to be read.
    cgroup.spawn(&format!(
        "exec {} -c \"/bin/sh -c 'sleep 30; true'; true\"",
        java.display()
    ));

    let alert = eventually("the runtime alert in Central", || {
        rampart_central::alerts::persist::all(&w.central.core.store)
            .expect("alerts")
            .into_iter()
            .find(|a| a.policy_id == policy_id && a.deployment_id == pod_uid)
    })
    .await;
    assert_eq!(alert.lifecycle_stage, "RUNTIME");
    assert!(
        alert
            .violations
            .iter()
            .any(|v| v.starts_with("Binary '/usr/bin/dash' executed with arguments")),
        "{:?}",
        alert.violations
    );
    eventually("the pod to be deleted", || {
        w.api.get("Pod", "shop", "payments").is_none().then_some(())
    })
    .await;
    let recorded = eventually("the kill recorded on the alert", || {
        rampart_central::alerts::persist::get(&w.central.core.store, &alert.id)
            .expect("alert")
            .filter(|a| !a.enforcements.is_empty())
    })
    .await;
    assert_eq!(recorded.enforcements[0].action, "KILL_POD_ENFORCEMENT");
    assert!(
        recorded.enforcements[0].succeeded,
        "{:?}",
        recorded.enforcements
    );
    drop(cgroup);
}

/// Process baselines with real processes: what a container runs is learned; once a person
/// locks the baseline the Sensor receives it, and a program outside it raises "Unauthorized
/// Process Execution" and counts as suspicious in the risk score. "Resolve and add to
/// baseline" lets it run from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_baseline_flags_a_new_process_until_it_is_added() {
    let w = world().await;
    let container = random_container_id();
    w.api
        .apply(pod("ledger", "10.1.2.6", &container))
        .expect("pod");
    let pod_uid = uid(&w.api, "ledger");
    let _collector = w.collector("node-4").await;
    let cluster = w.cluster_id().await;
    let mut cgroup = ContainerCgroup::create(&pod_uid, &container);
    cgroup.spawn("exec /usr/bin/sleep 30");
    eventually("sleep learned in the baseline", || {
        w.central
            .core
            .baselines
            .of_deployment(&cluster, &pod_uid)
            .into_iter()
            .find(|b| b.container_name == "app" && b.elements.contains_key("/usr/bin/sleep"))
    })
    .await;

    let base = format!("/v1/deployments/{cluster}/{pod_uid}/baselines");
    let (status, locked) = common::admin_call(
        &w.central,
        "PUT",
        &format!("{base}/lock"),
        json!({"locked": true}),
    )
    .await;
    assert_eq!(status, 200, "{locked}");
    assert_eq!(locked["baselines"][0]["lockedBy"], "USER", "{locked}");
    eventually("the Sensor to hold the locked baseline", || {
        (w.sensor.status().locked_baselines == 1).then_some(())
    })
    .await;

    cgroup.spawn("exec /usr/bin/tail -f /dev/null");
    let unexpected = |path: &'static str| {
        let store = &w.central.core.store;
        move || {
            rampart_central::alerts::persist::all(store)
                .expect("alerts")
                .into_iter()
                .find(|a| {
                    a.policy_name == "Unauthorized Process Execution"
                        && a.state == rampart_central::alerts::AlertState::Active
                        && a.processes.iter().any(|p| p.exec_file_path == path)
                })
        }
    };
    let alert = eventually("the unexpected-process alert", unexpected("/usr/bin/tail")).await;
    assert_eq!(alert.deployment_id, pod_uid);
    assert_eq!(alert.processes[0].container_name, "app");
    let (_, risk) = common::admin_call(&w.central, "GET", "/v1/risk", json!(null)).await;
    let ranked = risk["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["id"] == pod_uid.as_str())
        .cloned()
        .expect("ranked");
    assert!(
        ranked.to_string().contains("Suspicious Process Executions")
            && ranked.to_string().contains("/usr/bin/tail"),
        "{ranked}"
    );

    // Resolve and add to baseline: tail is expected now.
    let (status, resolved) = common::admin_call(
        &w.central,
        "PATCH",
        &format!("/v1/alerts/{}/resolve?addToBaseline=true", alert.id),
        json!(null),
    )
    .await;
    assert_eq!(
        (status, &resolved["state"]),
        (200, &json!("RESOLVED")),
        "{resolved}"
    );
    let (_, baselines) = common::admin_call(&w.central, "GET", &base, json!(null)).await;
    let elements = baselines["baselines"][0]["elements"].to_string();
    assert!(elements.contains("/usr/bin/tail"), "{baselines}");
    // Central sends the baseline after committing; the Sensor holds tail before the next
    // processes run. Then a tail with new arguments passes, and timeout, started after it,
    // is flagged: the alert for timeout proves tail's event went through unflagged.
    eventually("tail in the Sensor's locked baseline", || {
        w.sensor
            .shared
            .runtime
            .lock()
            .ok()?
            .locked_paths(&pod_uid, "app")
            .filter(|p| p.iter().any(|x| x == "/usr/bin/tail"))
    })
    .await;
    cgroup.spawn("exec /usr/bin/tail -n 1 -f /dev/null");
    // A long-lived program outside the baseline (a short one could exit before it is read).
    cgroup.spawn("exec /usr/bin/timeout 30 /usr/bin/sleep 30");
    let timeout = eventually("the alert for timeout", unexpected("/usr/bin/timeout")).await;
    assert!(
        timeout
            .processes
            .iter()
            .all(|p| p.exec_file_path != "/usr/bin/tail"),
        "{:?}",
        timeout.processes
    );
    drop(cgroup);
}

/// Network baselines and NetworkPolicies with real connections: "web" connects to "db"; the
/// flow is learned in web's network baseline, a person locks it, then web connects to "cache"
/// — a peer outside the locked baseline raises "Unauthorized Network Flow". NetworkPolicies
/// generated from the baselines, simulated on the observed flows, let web → db through and
/// block web → cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_peer_on_a_locked_network_baseline_is_alerted_and_generated_policies_block_it() {
    let w = world().await;
    let web_container = random_container_id();
    w.api
        .apply(pod("web", "10.1.2.7", &web_container))
        .expect("web pod");
    // Servers the "web" container talks to: pods whose IPs are loopback addresses.
    w.api
        .apply(pod("db", "127.0.0.1", &random_container_id()))
        .expect("db pod");
    w.api
        .apply(pod("cache", "127.0.0.2", &random_container_id()))
        .expect("cache pod");
    let (web, db, cache) = (uid(&w.api, "web"), uid(&w.api, "db"), uid(&w.api, "cache"));
    let (db_port, cache_port) = (serve("127.0.0.1"), serve("127.0.0.2"));
    let _collector = w.collector("node-5").await;
    let cluster = w.cluster_id().await;

    let mut cgroup = ContainerCgroup::create(&web, &web_container);
    let connect = |addr: &str, port: u16| {
        format!("exec /usr/bin/bash -c 'exec 3<>/dev/tcp/{addr}/{port}; exec /usr/bin/sleep 30'")
    };
    cgroup.spawn(&connect("127.0.0.1", db_port));
    let base = format!("/v1/deployments/{cluster}/{web}/networkbaseline");
    eventually("web → db learned in web's network baseline", || {
        w.central
            .core
            .netbaselines
            .get(&cluster, &web)
            .filter(|b| {
                b.peers
                    .iter()
                    .any(|(p, _, _)| p.peer == db && p.port == u32::from(db_port))
            })
            .map(|_| ())
    })
    .await;
    let (status, locked) = common::admin_call(
        &w.central,
        "PUT",
        &format!("{base}/lock"),
        json!({"locked": true}),
    )
    .await;
    assert_eq!((status, &locked["locked"]), (200, &json!(true)), "{locked}");

    cgroup.spawn(&connect("127.0.0.2", cache_port));
    let alert = eventually("the unexpected-flow alert", || {
        rampart_central::alerts::persist::all(&w.central.core.store)
            .expect("alerts")
            .into_iter()
            .find(|a| {
                a.policy_name == "Unauthorized Network Flow"
                    && a.deployment_id == web
                    && a.state == rampart_central::alerts::AlertState::Active
            })
    })
    .await;
    assert!(
        alert.violations.iter().any(|v| v
            == &format!(
                "Unexpected outgoing network flow to deployment shop/cache on port {cache_port}/TCP"
            )),
        "{:?}",
        alert.violations
    );
    let (_, graph) = common::admin_call(
        &w.central,
        "GET",
        "/v1/networkgraph?cluster=prod",
        json!(null),
    )
    .await;
    let edge = |dst: &str| {
        graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|e| e["source"] == web.as_str() && e["destination"] == dst)
            .cloned()
            .unwrap_or_else(|| panic!("no edge to {dst}: {graph}"))
    };
    assert_eq!(edge(&db)["anomalous"], false);
    assert_eq!(edge(&cache)["anomalous"], true);

    let (status, generated) = common::admin_call(
        &w.central,
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&namespace=shop&from=baseline",
        json!(null),
    )
    .await;
    assert_eq!(status, 200, "{generated}");
    let blocked: Vec<String> = generated["blockedAfter"]
        .as_array()
        .expect("blockedAfter")
        .iter()
        .map(|f| {
            format!(
                "{} → {} {}",
                f["source"].as_str().unwrap_or_default(),
                f["destination"].as_str().unwrap_or_default(),
                f["port"]
            )
        })
        .collect();
    assert!(
        blocked.contains(&format!("shop/web → shop/cache {cache_port}")),
        "{blocked:?}"
    );
    assert!(
        !blocked.iter().any(|b| b.contains("shop/db")),
        "the baseline flow passes: {blocked:?}"
    );
    let web_policy = generated["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["name"] == "rampart-generated-web")
        .cloned()
        .expect("web's policy");
    let yaml = web_policy["yaml"].as_str().expect("yaml");
    assert!(
        yaml.contains("app: db") && yaml.contains(&format!("port: {db_port}")),
        "{yaml}"
    );
    assert!(!yaml.contains("app: cache"), "{yaml}");
    drop(cgroup);
}
