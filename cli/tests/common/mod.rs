//! Central as a real process, for the CLI's end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `rampart central start`, with what its banner said.
pub struct CentralProcess {
    pub child: Child,
    /// `host:port` of the Sensor endpoint.
    pub sensor: String,
    /// `https://localhost:port`
    pub api: String,
    pub ca: String,
    /// Printed on the first start only.
    pub password: Option<String>,
    /// `rampart up`'s admission controller: its `https://localhost:port` and CA file.
    pub admission: Option<(String, String)>,
}

impl Drop for CentralProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rampart central init-bundle generate CLUSTER` into `bundle` (files), on Central's data.
pub fn init_bundle(data: &std::path::Path, bundle: &std::path::Path, cluster: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["central", "init-bundle", "generate", cluster, "--data-dir"])
        .arg(data)
        .arg("--output-dir")
        .arg(bundle)
        .stdout(Stdio::null())
        .status()
        .expect("init-bundle");
    assert!(status.success(), "init-bundle failed: {status:?}");
}

/// Starts Central on `data` with free ports and reads its banner; the rest of its stdout is
/// drained in the background so it never blocks on a full pipe.
pub fn start_central(data: &std::path::Path) -> CentralProcess {
    start_central_on(data, "127.0.0.1:0")
}

/// Like [`start_central`], with the Sensor endpoint on `sensor_listen` (a restarted Central
/// keeps its address, as it would behind a Service).
pub fn start_central_on(data: &std::path::Path, sensor_listen: &str) -> CentralProcess {
    start_with(&["central", "start"], data, sensor_listen)
}

/// `rampart up --demo`: Central, the demo cluster and its Sensor, with free ports.
pub fn start_demo(data: &std::path::Path) -> CentralProcess {
    start_with(
        &["up", "--demo", "--admission-listen", "127.0.0.1:0"],
        data,
        "127.0.0.1:0",
    )
}

fn start_with(command: &[&str], data: &std::path::Path, sensor_listen: &str) -> CentralProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(command)
        .args([
            "--sensor-listen",
            sensor_listen,
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn central");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut sensor, mut api, mut ca, mut password) = (None, None, None, None);
    loop {
        let line = lines
            .next()
            .expect("central prints its banner")
            .expect("read");
        let line = line.trim();
        let field = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        };
        if let Some(v) = field("sensor endpoint: ") {
            sensor = Some(v);
        } else if let Some(v) = field("API: ") {
            api = Some(v.trim_end_matches("/v1/").to_string());
        } else if let Some(v) = field("CA certificate: ") {
            ca = Some(v);
        } else if let Some(v) = field("admin password: ") {
            if v != "in" && v != "set" {
                password = Some(v);
            }
        } else if line.starts_with("try:") {
            break;
        }
    }
    // `up` goes on to say where its admission controller serves, once it does.
    let mut admission = None;
    if command.first() == Some(&"up") {
        for line in lines.by_ref() {
            let line = line.expect("read");
            if let Some(rest) = line.trim().strip_prefix("admission:") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .and_then(|u| u.strip_suffix("/validate"))
                    .expect("the admission controller's URL")
                    .to_string();
                let ca = rest
                    .split_once("(CA ")
                    .and_then(|(_, r)| r.split(';').next())
                    .expect("the admission controller's CA")
                    .to_string();
                admission = Some((url, ca));
                break;
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    CentralProcess {
        child,
        sensor: sensor.expect("sensor endpoint"),
        api: api.expect("API URL"),
        ca: ca.expect("CA path"),
        password,
        admission,
    }
}
