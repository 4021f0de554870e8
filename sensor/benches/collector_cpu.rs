//! Collector CPU on a busy node: 1,000 processes in 50 "containers" (real cgroups named the way
//! the kubelet names them; needs root), 100 of them holding TCP connections, a new short-lived
//! process (living 1.5 s) exec'd every second. The Collector's scanner runs with its default intervals (list
//! /proc every second, read the network tables every 5 s) for 30 s in each mode, and the CPU
//! it used is read from /proc/self/stat. Target: ≤ 2 % of a core.
//!
//! Run: `cargo bench -p rampart-sensor --bench collector_cpu` (`COLLECTOR_CPU_SECONDS=N`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_sensor::collector::{self, Scanner};
use rampart_sensor::outbox::Outbox;

const CONTAINERS: usize = 50;
const PER_CONTAINER: usize = 20;
const CONNECTED_PER_CONTAINER: usize = 2;

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_second() -> f64 {
    // CLK_TCK is 100 on every Linux architecture Rampart runs on.
    100.0
}

struct Node {
    cgroups: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("pkill").args(["-f", "sleep 6000"]).status();
        std::thread::sleep(Duration::from_millis(300));
        for dir in &self.cgroups {
            let _ = std::fs::remove_dir(dir);
            if let Some(pod) = dir.parent() {
                let _ = std::fs::remove_dir(pod);
            }
        }
    }
}

fn hex(n: usize) -> String {
    (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect::<String>()
        .chars()
        .take(64 - 4)
        .chain(format!("{n:04x}").chars())
        .collect()
}

fn populate(port: u16) -> Node {
    let base = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .into_iter()
        .find(|b| Path::new(b).join("cgroup.procs").exists())
        .expect("a cgroup hierarchy");
    let mut node = Node {
        cgroups: Vec::new(),
        children: Vec::new(),
    };
    for c in 0..CONTAINERS {
        let pod = format!("{:08x}-0000-4000-8000-{:012x}", rand::random::<u32>(), c);
        let dir = Path::new(base).join(format!("kubepods/burstable/pod{pod}/{}", hex(c)));
        std::fs::create_dir_all(&dir).expect("cgroup (run as root)");
        let connected = (0..CONNECTED_PER_CONTAINER)
            .map(|_| format!("(exec 3<>/dev/tcp/127.0.0.1/{port}; exec sleep 6000) &"))
            .collect::<Vec<_>>()
            .join(" ");
        let idle = PER_CONTAINER - CONNECTED_PER_CONTAINER - 1;
        let script = format!(
            "echo $$ > {}/cgroup.procs && {connected} for i in $(seq {idle}); do sleep 6000 & done; wait",
            dir.display()
        );
        node.children.push(
            Command::new("/usr/bin/bash")
                .arg("-c")
                .arg(script)
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn"),
        );
        node.cgroups.push(dir);
    }
    node
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("COLLECTOR_CPU_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let node = populate(port);
    std::thread::sleep(Duration::from_secs(5));
    let processes = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .ok()
                    .and_then(|e| e.file_name().to_str().map(|n| n.parse::<u32>().is_ok()))
                    .unwrap_or(false)
            })
            .count()
        })
        .unwrap_or(0);
    println!(
        "node: {processes} processes, {} in {CONTAINERS} containers, {} with a TCP connection",
        CONTAINERS * PER_CONTAINER,
        CONTAINERS * CONNECTED_PER_CONTAINER
    );
    let churn_dir = node.cgroups[0].clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (label, polling) in [("proc-connector", false), ("proc-polling", true)] {
        let config = collector::Config::new(
            collector::SensorEndpoint {
                endpoint: String::new(),
                server_name: String::new(),
                ca_pem: String::new(),
                cert_pem: String::new(),
                key_pem: String::new(),
            },
            "bench".into(),
        );
        let outbox = Arc::new(Mutex::new(Outbox::new(1_000_000)));
        let mut scanner = Scanner::new(&config, Arc::clone(&outbox));
        let (events, cpu, wall) = runtime.block_on(async {
            let mut connector = if polling {
                None
            } else {
                Some(
                    collector::connector::Connector::open(std::path::Path::new("/proc"))
                        .await
                        .expect("proc connector (run as root)"),
                )
            };
            let started = tokio::time::Instant::now();
            scanner.refresh(started.elapsed(), true);
            scanner.scan_network(started.elapsed());
            let first = outbox.lock().map(|o| o.len()).unwrap_or(0);
            let cpu0 = cpu_ticks();
            let wall0 = Instant::now();
            let mut poll = tokio::time::interval(config.poll_interval);
            let mut net = tokio::time::interval(config.net_interval);
            let mut churn = tokio::time::interval(Duration::from_secs(1));
            let end = started + Duration::from_secs(seconds) + Duration::from_millis(50);
            loop {
                tokio::select! {
                    pids = async {
                        match connector.as_mut() {
                            Some(c) => c.next().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        for pid in pids.unwrap_or_default() {
                            scanner.on_exec(pid, started.elapsed());
                        }
                    }
                    _ = poll.tick() => scanner.refresh(started.elapsed(), polling),
                    _ = net.tick() => scanner.scan_network(started.elapsed()),
                    _ = churn.tick() => {
                        // A short-lived process in a container (its launcher is not counted).
                        let dir = churn_dir.clone();
                        std::thread::spawn(move || {
                            let _ = Command::new("/bin/sh")
                                .arg("-c")
                                .arg(format!("echo $$ > {}/cgroup.procs && exec sleep 1.5", dir.display()))
                                .status();
                        });
                    }
                    _ = tokio::time::sleep_until(end) => break,
                }
            }
            let events = outbox.lock().map(|o| o.len()).unwrap_or(0) - first;
            (events, cpu_ticks() - cpu0, wall0.elapsed())
        });
        let percent = cpu as f64 / ticks_per_second() / wall.as_secs_f64() * 100.0;
        println!(
            "{label}: {percent:.2} % of a core over {:.0} s ({} events after the initial scan)",
            wall.as_secs_f64(),
            events
        );
    }
    drop(node);
}
