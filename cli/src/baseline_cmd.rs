//! `rampart baseline ...` (needs -e): a deployment's process baselines in Central — list them,
//! lock or unlock them, add or remove executables. A deployment is named
//! `CLUSTER NAMESPACE/NAME`, as people know it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::output::simple_table;
use crate::remote::{Remote, encode};
use crate::remote_cmds::{Format, when};

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// The deployment's baselines: per container, its executables and lock state.
    List {
        /// Cluster name (or id).
        cluster: String,
        /// NAMESPACE/NAME of the deployment.
        deployment: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Lock the baselines: a process outside them raises "Unexpected Process Executed".
    Lock {
        cluster: String,
        deployment: String,
        /// One container only.
        #[arg(long)]
        container: Option<String>,
    },
    /// Unlock the baselines (no alerts; Rampart's own lock still marks suspicious processes).
    Unlock {
        cluster: String,
        deployment: String,
        #[arg(long)]
        container: Option<String>,
    },
    /// Add executables (absolute paths) to a container's baseline.
    Add {
        cluster: String,
        deployment: String,
        #[arg(long)]
        container: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove executables from a container's baseline.
    Remove {
        cluster: String,
        deployment: String,
        #[arg(long)]
        container: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

/// The cluster id of a cluster name or id.
pub(crate) fn cluster_id(remote: &Remote, wanted: &str) -> anyhow::Result<String> {
    let v = remote.get("/v1/clusters")?;
    v["clusters"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .find(|c| c["name"] == wanted || c["id"] == wanted)
        .and_then(|c| c["id"].as_str())
        .map(str::to_string)
        .with_context(|| format!("Central knows no cluster '{wanted}'"))
}

/// The deployment id of `NAMESPACE/NAME` in a cluster.
pub(crate) fn deployment_id(
    remote: &Remote,
    cluster: &str,
    wanted: &str,
) -> anyhow::Result<String> {
    let Some((namespace, name)) = wanted.split_once('/') else {
        bail!("name the deployment as NAMESPACE/NAME, not '{wanted}'");
    };
    let mut after: Option<String> = None;
    loop {
        let mut path = format!(
            "/v1/deployments?cluster={}&namespace={}&limit=500",
            encode(cluster),
            encode(namespace)
        );
        if let Some(a) = &after {
            path.push_str(&format!("&after={}", encode(a)));
        }
        let page = remote.get(&path)?;
        if let Some(id) = page["deployments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["id"].as_str())
        {
            return Ok(id.to_string());
        }
        match page["nextCursor"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => bail!("cluster '{cluster}' has no deployment {wanted}"),
        }
    }
}

fn base(remote: &Remote, cluster: &str, deployment: &str) -> anyhow::Result<String> {
    let cluster = cluster_id(remote, cluster)?;
    let id = deployment_id(remote, &cluster, deployment)?;
    Ok(format!(
        "/v1/deployments/{}/{}/baselines",
        encode(&cluster),
        encode(&id)
    ))
}

fn print(out: &mut dyn Write, baselines: &Value) -> anyhow::Result<()> {
    let list = baselines.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        writeln!(
            out,
            "No baselines yet: no process of this deployment was seen."
        )?;
        return Ok(());
    }
    let mut rows = Vec::new();
    for b in list {
        let state = match b["lockedBy"].as_str() {
            Some("USER") => "locked".to_string(),
            Some(_) => "locked by Rampart (learning over)".to_string(),
            None => format!(
                "learning until {}",
                b["learningUntilUnixMs"]
                    .as_i64()
                    .map(when)
                    .unwrap_or_default()
            ),
        };
        let container = b["containerName"].as_str().unwrap_or_default();
        for e in b["elements"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            rows.push(vec![
                container.to_string(),
                e["execFilePath"].as_str().unwrap_or_default().to_string(),
                if e["auto"] == true {
                    "learned"
                } else {
                    "added"
                }
                .to_string(),
                state.clone(),
            ]);
        }
        for s in b["suspicious"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            rows.push(vec![
                container.to_string(),
                s.as_str().unwrap_or_default().to_string(),
                "OUTSIDE (suspicious)".to_string(),
                state.clone(),
            ]);
        }
    }
    out.write_all(simple_table(&["CONTAINER", "EXECUTABLE", "", "BASELINE"], &rows).as_bytes())?;
    Ok(())
}

fn set_lock(
    remote: &Remote,
    cluster: &str,
    deployment: &str,
    container: Option<String>,
    locked: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut body = json!({ "locked": locked });
    if let Some(c) = container {
        body["containerName"] = json!(c);
    }
    let v = remote.send_json(
        "PUT",
        &format!("{}/lock", base(remote, cluster, deployment)?),
        &body,
    )?;
    writeln!(
        out,
        "{} {} baselines of {deployment}.",
        if locked { "Locked" } else { "Unlocked" },
        v["changed"].as_u64().unwrap_or(0)
    )?;
    print(out, &v["baselines"])
}

/// `PATCH`es one container's baseline: `change` is `add` or `remove`.
fn edit(
    remote: &Remote,
    cluster: &str,
    deployment: &str,
    container: &str,
    change: &str,
    paths: &[String],
) -> anyhow::Result<()> {
    let path = format!(
        "{}/{}",
        base(remote, cluster, deployment)?,
        encode(container)
    );
    remote.send_json("PATCH", &path, &json!({ change: paths }))?;
    Ok(())
}

pub fn run(
    remote: &Remote,
    command: BaselineCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        BaselineCommand::List {
            cluster,
            deployment,
            output,
        } => {
            let v = remote.get(&base(remote, &cluster, &deployment)?)?;
            if output == Format::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                print(out, &v["baselines"])?;
            }
        }
        BaselineCommand::Lock {
            cluster,
            deployment,
            container,
        } => set_lock(remote, &cluster, &deployment, container, true, out)?,
        BaselineCommand::Unlock {
            cluster,
            deployment,
            container,
        } => set_lock(remote, &cluster, &deployment, container, false, out)?,
        BaselineCommand::Add {
            cluster,
            deployment,
            container,
            paths,
        } => {
            edit(remote, &cluster, &deployment, &container, "add", &paths)?;
            writeln!(
                out,
                "Added {} to {deployment}'s {container} baseline.",
                paths.join(", ")
            )?;
        }
        BaselineCommand::Remove {
            cluster,
            deployment,
            container,
            paths,
        } => {
            edit(remote, &cluster, &deployment, &container, "remove", &paths)?;
            writeln!(
                out,
                "Removed {} from {deployment}'s {container} baseline.",
                paths.join(", ")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
