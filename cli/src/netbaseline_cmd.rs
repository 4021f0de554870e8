//! `rampart netbaseline ...` (needs -e): a deployment's network baseline in Central — list its
//! peers, lock or unlock it, accept a peer into it or mark one anomalous. Deployments are named
//! `CLUSTER NAMESPACE/NAME`; a peer is another deployment's `NAMESPACE/NAME`, `internet`,
//! `private` or `cidr:<block name>`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::baseline_cmd::{cluster_id, deployment_id};
use crate::output::simple_table;
use crate::remote::{Remote, encode};
use crate::remote_cmds::Format;

#[derive(Debug, Subcommand)]
pub enum NetBaselineCommand {
    /// The deployment's network baseline: its peers, and whether it is locked.
    List {
        cluster: String,
        deployment: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Lock it: a flow with a peer outside it raises "Unauthorized Network Flow".
    Lock { cluster: String, deployment: String },
    /// Unlock it (no alerts for new peers).
    Unlock { cluster: String, deployment: String },
    /// Add a peer to the baseline (a flow with it is expected).
    Accept(PeerArgs),
    /// Mark a peer anomalous: a flow with it raises an alert, locked or not.
    Reject(PeerArgs),
}

#[derive(Debug, Args)]
pub struct PeerArgs {
    cluster: String,
    deployment: String,
    /// NAMESPACE/NAME of a deployment, `internet`, `private` or `cidr:<block name>`.
    #[arg(long)]
    peer: String,
    #[arg(long)]
    port: u32,
    #[arg(long, default_value = "TCP")]
    protocol: String,
    /// The peer connects to the deployment (default: the deployment connects to the peer).
    #[arg(long)]
    incoming: bool,
}

fn base(remote: &Remote, cluster: &str, deployment: &str) -> anyhow::Result<(String, String)> {
    let cluster = cluster_id(remote, cluster)?;
    let id = deployment_id(remote, &cluster, deployment)?;
    Ok((
        format!(
            "/v1/deployments/{}/{}/networkbaseline",
            encode(&cluster),
            encode(&id)
        ),
        cluster,
    ))
}

/// Peer ids in words: deployment ids become NAMESPACE/NAME.
fn peer_name(remote: &Remote, cluster: &str, peer: &str) -> String {
    if peer == "internet" || peer == "private" || peer.starts_with("cidr:") {
        return peer.to_string();
    }
    remote
        .get(&format!(
            "/v1/deployments/{}/{}",
            encode(cluster),
            encode(peer)
        ))
        .ok()
        .and_then(|d| {
            let d = if d["deployment"].is_object() {
                &d["deployment"]
            } else {
                &d
            };
            Some(format!(
                "{}/{}",
                d["namespace"].as_str()?,
                d["name"].as_str()?
            ))
        })
        .unwrap_or_else(|| peer.to_string())
}

fn print(remote: &Remote, cluster: &str, v: &Value, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}",
        if v["locked"] == true {
            "Locked: a flow with a peer outside it raises an alert."
        } else {
            "Not locked."
        }
    )?;
    let mut rows = Vec::new();
    let row = |p: &Value, how: &str| {
        vec![
            if p["ingress"] == true {
                "incoming from"
            } else {
                "outgoing to"
            }
            .to_string(),
            peer_name(remote, cluster, p["peer"].as_str().unwrap_or_default()),
            format!(
                "{}/{}",
                p["port"],
                p["protocol"].as_str().unwrap_or_default()
            ),
            how.to_string(),
        ]
    };
    for p in v["peers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        rows.push(row(
            p,
            if p["learned"] == true {
                "learned"
            } else {
                "accepted"
            },
        ));
    }
    for p in v["rejected"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        rows.push(row(p, "REJECTED (anomalous)"));
    }
    out.write_all(simple_table(&["DIRECTION", "PEER", "PORT", "BASELINE"], &rows).as_bytes())?;
    Ok(())
}

pub fn run(
    remote: &Remote,
    command: NetBaselineCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let locking = matches!(command, NetBaselineCommand::Lock { .. });
    let accepting = matches!(command, NetBaselineCommand::Accept(_));
    match command {
        NetBaselineCommand::List {
            cluster,
            deployment,
            output,
        } => {
            let (path, cluster) = base(remote, &cluster, &deployment)?;
            let v = remote.get(&path)?;
            if output == Format::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                print(remote, &cluster, &v, out)?;
            }
        }
        NetBaselineCommand::Lock {
            cluster,
            deployment,
        }
        | NetBaselineCommand::Unlock {
            cluster,
            deployment,
        } => {
            let locked = locking;
            let (path, cluster) = base(remote, &cluster, &deployment)?;
            let v =
                remote.send_json("PUT", &format!("{path}/lock"), &json!({ "locked": locked }))?;
            print(remote, &cluster, &v, out)?;
        }
        NetBaselineCommand::Accept(p) | NetBaselineCommand::Reject(p) => {
            let accept = accepting;
            let (path, cluster) = base(remote, &p.cluster, &p.deployment)?;
            let peer = if p.peer.contains('/') {
                deployment_id(remote, &cluster, &p.peer)?
            } else {
                p.peer.clone()
            };
            let body = json!({
                if accept { "accept" } else { "reject" }: [{
                    "ingress": p.incoming, "peer": peer, "port": p.port,
                    "protocol": p.protocol.to_ascii_uppercase(),
                }]
            });
            let v = remote.send_json("PATCH", &path, &body)?;
            print(remote, &cluster, &v, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
