//! The Collector (`rampart collector`, one per node): sees process executions and network
//! endpoints of the node's containers and streams them to its cluster's Sensor.
//!
//! ```text
//!  proc connector (netlink, every exec) ─┐
//!  or /proc polling (fallback)           ├─▶ Scanner ─▶ rate limit per container ─▶ Outbox ─▶ Sensor
//!  /proc/PID/net/{tcp,tcp6,udp,udp6}    ─┘   (cgroup → container, socket inode → process,
//!                                              afterglow for repeated short connections)
//! ```
//!
//! Processes outside containers (host services, the kubelet) are not reported. The mode in use
//! is logged at start and reported in every health message: `proc-connector` sees every exec,
//! `proc-polling` (no CAP_NET_ADMIN) sees processes that live at least one poll interval.

pub mod cgroup;
pub mod client;
pub mod connector;
pub mod health;
pub mod netstat;
pub mod procfs;
pub mod tracker;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_proto::collector::collector_message::Msg;
use rampart_proto::collector::{ConnectionEvent, ConnectionRole, Endpoint, ProcessEvent};

use crate::outbox::Outbox;
use cgroup::ContainerRef;
use netstat::{Protocol, State};
use procfs::{ProcInfo, Procfs};
use tracker::{ConnectionTracker, FlowKey, FlowUpdate, Holder, RateLimiter, Role};

/// Ancestors reported per process.
const MAX_LINEAGE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeChoice {
    /// The connector when it can be opened, else polling.
    Auto,
    Connector,
    Polling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ProcConnector,
    ProcPolling,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ProcConnector => "proc-connector",
            Mode::ProcPolling => "proc-polling",
        }
    }
}

/// Where the Sensor is and the Collector's certificate (the init bundle's collector files).
#[derive(Debug, Clone)]
pub struct SensorEndpoint {
    /// `https://sensor.rampart.svc:8443`
    pub endpoint: String,
    /// The name the Sensor's certificate carries (`sensor.rampart.svc`).
    pub server_name: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub sensor: SensorEndpoint,
    pub node_name: String,
    /// The host's procfs (`/proc`, or `/host/proc` in a pod).
    pub proc_root: PathBuf,
    pub mode: ModeChoice,
    /// How often `/proc` is listed (new processes in polling mode, exits in both).
    pub poll_interval: Duration,
    /// How often the network tables are read.
    pub net_interval: Duration,
    /// How long a connection stays reported after it was last seen.
    pub afterglow: Duration,
    /// Events per container: burst and sustained rate per second.
    pub rate_burst: u32,
    pub rate_per_second: u32,
    /// Messages held while the Sensor is away (oldest dropped, counted, beyond it).
    pub buffer: usize,
}

impl Config {
    pub fn new(sensor: SensorEndpoint, node_name: String) -> Config {
        Config {
            sensor,
            node_name,
            proc_root: PathBuf::from("/proc"),
            mode: ModeChoice::Auto,
            poll_interval: Duration::from_secs(1),
            net_interval: Duration::from_secs(5),
            afterglow: Duration::from_secs(30),
            rate_burst: 200,
            rate_per_second: 50,
            buffer: 20_000,
        }
    }
}

/// What the Collector reports about itself.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub mode: String,
    pub connected: bool,
    pub processes: u64,
    pub connections: u64,
    pub rate_limited: u64,
    /// Messages dropped because the buffer was full (the Sensor away), since start.
    pub dropped: u64,
    pub acked_seq: u64,
    /// When the scan loop last turned (the liveness probe's evidence).
    pub last_scan: Option<std::time::Instant>,
}

#[derive(Debug, Clone)]
struct Known {
    start_time: u64,
    exe: String,
    args: String,
    ppid: u32,
    container: Option<ContainerRef>,
    netns: Option<u64>,
}

/// The Collector's view of the node; every method takes the current time (since boot of the
/// Collector) and queues events in the outbox.
#[derive(Debug)]
pub struct Scanner {
    proc: Procfs,
    known: HashMap<u32, Known>,
    /// Socket inode → pid, for container processes.
    inodes: HashMap<u64, u32>,
    tracker: ConnectionTracker,
    limiter: RateLimiter,
    pub outbox: Arc<Mutex<Outbox<Msg>>>,
    pub processes: u64,
    pub connections: u64,
    epoch_ms: i64,
}

pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn endpoint(a: std::net::SocketAddr) -> Endpoint {
    Endpoint {
        address: a.ip().to_string(),
        port: u32::from(a.port()),
    }
}

impl Scanner {
    pub fn new(config: &Config, outbox: Arc<Mutex<Outbox<Msg>>>) -> Scanner {
        Scanner {
            proc: Procfs::new(&config.proc_root),
            known: HashMap::new(),
            inodes: HashMap::new(),
            tracker: ConnectionTracker::new(config.afterglow),
            limiter: RateLimiter::new(config.rate_burst, config.rate_per_second),
            outbox,
            processes: 0,
            connections: 0,
            epoch_ms: unix_ms(),
        }
    }

    pub fn rate_limited(&self) -> u64 {
        self.limiter.limited
    }

    fn to_unix(&self, at: Duration) -> i64 {
        self.epoch_ms
            .saturating_add(i64::try_from(at.as_millis()).unwrap_or(i64::MAX))
    }

    fn push(&self, msg: Msg) {
        crate::lock(&self.outbox).push(msg);
    }

    fn learn(&mut self, info: &ProcInfo) -> Option<ContainerRef> {
        let container = cgroup::parse(&info.cgroup);
        let netns = self.known.get(&info.pid).and_then(|k| k.netns);
        self.known.insert(
            info.pid,
            Known {
                start_time: info.start_time,
                exe: info.exe.clone(),
                args: info.args.clone(),
                ppid: info.ppid,
                container: container.clone(),
                netns,
            },
        );
        container
    }

    /// Executable paths of the ancestors in the same container, parent first.
    fn lineage(&mut self, info: &ProcInfo, container: &ContainerRef) -> Vec<String> {
        let mut lineage = Vec::new();
        let mut pid = info.ppid;
        while lineage.len() < MAX_LINEAGE && pid > 1 {
            if !self.known.contains_key(&pid) {
                let Some(parent) = self.proc.read(pid) else {
                    break;
                };
                self.learn(&parent);
            }
            let Some(parent) = self.known.get(&pid) else {
                break;
            };
            if parent.container.as_ref().map(|c| &c.id) != Some(&container.id) {
                break;
            }
            lineage.push(parent.exe.clone());
            pid = parent.ppid;
        }
        lineage
    }

    fn report_process(&mut self, info: &ProcInfo, container: &ContainerRef, now: Duration) {
        if !self.limiter.allow(&container.id, now) {
            return;
        }
        let lineage = self.lineage(info, container);
        self.processes += 1;
        self.push(Msg::Process(ProcessEvent {
            container_id: container.id.clone(),
            pod_uid: container.pod_uid.clone().unwrap_or_default(),
            pid: info.pid,
            ppid: info.ppid,
            exe_path: info.exe.clone(),
            name: info.name.clone(),
            args: info.args.clone(),
            uid: info.uid,
            gid: info.gid,
            lineage,
            time_unix_ms: self.to_unix(now),
        }));
    }

    /// A process executed a program (from the connector).
    pub fn on_exec(&mut self, pid: u32, now: Duration) {
        let Some(info) = self.proc.read(pid) else {
            return; // already gone
        };
        if let Some(container) = self.learn(&info) {
            self.report_process(&info, &container, now);
        }
    }

    /// Lists `/proc`: forgets exited processes and learns new ones. With `report`, new
    /// container processes (and programs executed in place) are reported — polling mode — except
    /// forks that did not exec (same program and arguments as their parent).
    pub fn refresh(&mut self, now: Duration, report: bool) {
        let pids: HashSet<u32> = self.proc.pids().into_iter().collect();
        self.known.retain(|pid, _| pids.contains(pid));
        self.inodes.retain(|_, pid| pids.contains(pid));
        let mut sorted: Vec<u32> = pids.into_iter().collect();
        // Parents before children, so a fork is recognised as one.
        sorted.sort_unstable();
        for pid in sorted {
            let changed = match self.known.get(&pid) {
                None => true,
                // A program executed in place (same pid): polling only notices the new exe.
                Some(k) if report => self.proc.exe(pid).is_some_and(|exe| exe != k.exe),
                Some(_) => false,
            };
            if !changed {
                continue;
            }
            let Some(info) = self.proc.read(pid) else {
                continue;
            };
            if self
                .known
                .get(&pid)
                .is_some_and(|k| k.start_time != info.start_time)
            {
                self.known.remove(&pid);
            }
            let fork_copy = self
                .known
                .get(&info.ppid)
                .is_some_and(|p| p.exe == info.exe && p.args == info.args);
            if let Some(container) = self.learn(&info)
                && report
                && !fork_copy
            {
                self.report_process(&info, &container, now);
            }
        }
    }

    /// Reads the network tables of every container network namespace and reports connections
    /// and listening endpoints that opened or closed.
    pub fn scan_network(&mut self, now: Duration) {
        // Container processes by network namespace.
        let mut by_netns: HashMap<u64, Vec<u32>> = HashMap::new();
        let pids: Vec<u32> = self
            .known
            .iter()
            .filter(|(_, k)| k.container.is_some())
            .map(|(pid, _)| *pid)
            .collect();
        for pid in pids {
            let netns = match self.known.get(&pid).and_then(|k| k.netns) {
                Some(n) => Some(n),
                None => {
                    let n = self.proc.netns(pid);
                    if let (Some(k), Some(n)) = (self.known.get_mut(&pid), n) {
                        k.netns = Some(n);
                    }
                    n
                }
            };
            if let Some(n) = netns {
                by_netns.entry(n).or_default().push(pid);
            }
        }
        let mut present: Vec<(FlowKey, Holder)> = Vec::new();
        for pids in by_netns.values() {
            let Some(reader) = pids.first().copied() else {
                continue;
            };
            let mut sockets = Vec::new();
            for (table, protocol) in [
                ("tcp", Protocol::Tcp),
                ("tcp6", Protocol::Tcp),
                ("udp", Protocol::Udp),
                ("udp6", Protocol::Udp),
            ] {
                if let Some(text) = self.proc.net_table(reader, table) {
                    sockets.extend(netstat::parse(protocol, &text));
                }
            }
            let relevant = |s: &netstat::Socket| {
                s.inode != 0
                    && match (s.protocol, s.state) {
                        (_, State::Established) | (Protocol::Tcp, State::Listen) => true,
                        (Protocol::Udp, State::Unconnected) => s.local.port() != 0,
                        _ => false,
                    }
            };
            if sockets
                .iter()
                .any(|s| relevant(s) && !self.inodes.contains_key(&s.inode))
            {
                for pid in pids {
                    for inode in self.proc.socket_inodes(*pid) {
                        self.inodes.insert(inode, *pid);
                    }
                }
            }
            let listening: HashSet<(Protocol, u16)> = sockets
                .iter()
                .filter(|s| s.state == State::Listen)
                .map(|s| (s.protocol, s.local.port()))
                .collect();
            for s in sockets.iter().filter(|s| relevant(s)) {
                let Some(pid) = self.inodes.get(&s.inode).copied() else {
                    continue; // held by a process outside containers
                };
                let Some(k) = self.known.get(&pid) else {
                    continue;
                };
                let Some(container) = &k.container else {
                    continue;
                };
                let role = match s.state {
                    State::Listen | State::Unconnected => Role::Listen,
                    _ if listening.contains(&(s.protocol, s.local.port())) => Role::Server,
                    _ => Role::Client,
                };
                present.push((
                    FlowKey::new(&container.id, s.protocol, role, s.local, s.remote),
                    Holder {
                        pid,
                        exe: k.exe.clone(),
                        pod_uid: container.pod_uid.clone(),
                    },
                ));
            }
        }
        for update in self.tracker.observe(now, present) {
            if !update.closed && !self.limiter.allow(&update.key.container, now) {
                continue;
            }
            self.connections += u64::from(!update.closed);
            let msg = self.connection_event(&update);
            self.push(Msg::Connection(msg));
        }
    }

    fn connection_event(&self, u: &FlowUpdate) -> ConnectionEvent {
        ConnectionEvent {
            container_id: u.key.container.clone(),
            pod_uid: u.holder.pod_uid.clone().unwrap_or_default(),
            pid: u.holder.pid,
            exe_path: u.holder.exe.clone(),
            protocol: u.key.protocol.as_str().to_string(),
            role: match u.key.role {
                Role::Client => ConnectionRole::Client,
                Role::Server => ConnectionRole::Server,
                Role::Listen => ConnectionRole::Listen,
            } as i32,
            local: Some(endpoint(u.key.local)),
            remote: Some(endpoint(u.key.remote)),
            first_seen_unix_ms: self.to_unix(u.first_seen),
            last_seen_unix_ms: self.to_unix(u.last_seen),
            closed: u.closed,
        }
    }
}

/// A running Collector; dropping it stops it.
#[derive(Debug)]
pub struct Collector {
    pub status: Arc<Mutex<Status>>,
    outbox: Arc<Mutex<Outbox<Msg>>>,
    /// The scan loop's slowest interval (the liveness probe allows it and a grace).
    slowest_interval: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Collector {
    /// Serves `/healthz`, `/readyz` and `/metrics` on `addr` for as long as the Collector runs;
    /// returns the bound address.
    pub async fn serve_health(
        &mut self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<std::net::SocketAddr> {
        let (addr, task) = health::serve(
            Arc::clone(&self.status),
            Arc::clone(&self.outbox),
            self.slowest_interval,
            addr,
        )
        .await?;
        self.tasks.push(task);
        Ok(addr)
    }

    pub fn status(&self) -> Status {
        let mut status = crate::lock(&self.status).clone();
        status.dropped = crate::lock(&self.outbox).dropped();
        status
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the proc connector cannot be opened ({0}); give the Collector CAP_NET_ADMIN in the host's namespaces, or choose --mode polling"
    )]
    Connector(std::io::Error),
    #[error("{0} is not a readable procfs")]
    Procfs(String),
}

/// Starts scanning and streaming to the Sensor.
pub async fn start(config: Config) -> Result<Collector, Error> {
    if std::fs::read_dir(&config.proc_root).is_err() {
        return Err(Error::Procfs(config.proc_root.display().to_string()));
    }
    let (mode, connector) = match config.mode {
        ModeChoice::Polling => (Mode::ProcPolling, None),
        ModeChoice::Connector => (
            Mode::ProcConnector,
            Some(
                connector::Connector::open(&config.proc_root)
                    .await
                    .map_err(Error::Connector)?,
            ),
        ),
        ModeChoice::Auto => match connector::Connector::open(&config.proc_root).await {
            Ok(c) => (Mode::ProcConnector, Some(c)),
            Err(error) => {
                tracing::warn!(%error, "proc connector unavailable; polling /proc (short-lived processes can be missed)");
                (Mode::ProcPolling, None)
            }
        },
    };
    tracing::info!(mode = mode.as_str(), node = %config.node_name, "collector started");
    let status = Arc::new(Mutex::new(Status {
        mode: mode.as_str().to_string(),
        ..Status::default()
    }));
    let outbox = Arc::new(Mutex::new(Outbox::new(config.buffer)));
    let ready = Arc::new(tokio::sync::Notify::new());
    let scanner = Scanner::new(&config, Arc::clone(&outbox));
    let slowest_interval = config.poll_interval.max(config.net_interval);
    let tasks = vec![
        tokio::spawn(scan_loop(
            scanner,
            connector,
            config.clone(),
            Arc::clone(&status),
            Arc::clone(&ready),
        )),
        tokio::spawn(client::run(
            config,
            mode,
            Arc::clone(&outbox),
            ready,
            Arc::clone(&status),
        )),
    ];
    Ok(Collector {
        status,
        outbox,
        slowest_interval,
        tasks,
    })
}

async fn scan_loop(
    mut scanner: Scanner,
    mut connector: Option<connector::Connector>,
    config: Config,
    status: Arc<Mutex<Status>>,
    ready: Arc<tokio::sync::Notify>,
) {
    let started = tokio::time::Instant::now();
    let polling = connector.is_none();
    // What runs already is reported once at start, in both modes.
    scanner.refresh(started.elapsed(), true);
    scanner.scan_network(started.elapsed());
    let mut poll = tokio::time::interval(config.poll_interval);
    let mut net = tokio::time::interval(config.net_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    net.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            pids = async {
                match connector.as_mut() {
                    Some(c) => c.next().await,
                    None => std::future::pending().await,
                }
            } => match pids {
                Ok(pids) => {
                    for pid in pids {
                        scanner.on_exec(pid, started.elapsed());
                    }
                }
                Err(error) => {
                    // ENOBUFS: the kernel dropped events faster than they were read.
                    tracing::warn!(%error, "proc connector read failed; events may have been lost");
                }
            },
            _ = poll.tick() => scanner.refresh(started.elapsed(), polling),
            _ = net.tick() => scanner.scan_network(started.elapsed()),
        }
        {
            let mut s = crate::lock(&status);
            s.processes = scanner.processes;
            s.connections = scanner.connections;
            s.rate_limited = scanner.rate_limited();
            s.last_scan = Some(std::time::Instant::now());
        }
        ready.notify_one();
    }
}
