//! Commands that run against Central's API: clusters, alerts, policies, tokens, init bundles,
//! and `deployment check --remote`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::output::simple_table;
use crate::remote::{Remote, encode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List clusters with their Sensor's health.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// List alerts (violations). Without a Violation State in the query, active and attempted
    /// ones are listed, as in ACS.
    List {
        /// ACS search syntax, e.g. `Severity:CRITICAL,HIGH+Namespace:shop`.
        #[arg(short = 'q', long, default_value = "")]
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Time, Severity, Policy, Deployment, Namespace or Cluster; prefix `-` for descending.
        #[arg(long, default_value = "-Time", allow_hyphen_values = true)]
        sort: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// One alert in full: its violations, what was enforced, the admission request or the
    /// processes behind it, and its policy's remediation.
    Get {
        id: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Resolve alerts by id, or every alert a query matches.
    Resolve {
        ids: Vec<String>,
        #[arg(short = 'q', long, conflicts_with = "ids")]
        query: Option<String>,
        /// Runtime process alerts: add their processes to the containers' baselines first.
        #[arg(long, conflicts_with = "query")]
        add_to_baseline: bool,
    },
}

/// An alert as `alert get` prints it.
fn describe_alert(a: &Value, policy: &Value) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let ms = |v: &Value| v.as_i64().map_or_else(|| "-".to_string(), when);
    let severity = s(&a["severity"]);
    let _ = writeln!(
        text,
        "{}  {}: {} (severity {}, {} stage)",
        s(&a["id"]),
        s(&a["state"]),
        s(&a["policyName"]),
        severity.trim_end_matches("_SEVERITY"),
        s(&a["lifecycleStage"])
    );
    let _ = writeln!(
        text,
        "Deployment:  {}/{}/{} ({})",
        s(&a["clusterId"]),
        s(&a["namespace"]),
        s(&a["deploymentName"]),
        s(&a["deploymentKind"])
    );
    let _ = writeln!(
        text,
        "Seen:        {} first, {} last",
        ms(&a["firstOccurredUnixMs"]),
        ms(&a["timeUnixMs"])
    );
    if !a["resolvedUnixMs"].is_null() {
        let _ = writeln!(text, "Resolved:    {}", ms(&a["resolvedUnixMs"]));
    }
    let admission = &a["admission"];
    if admission.is_object() {
        let outcome = if admission["breakGlass"] == true {
            "admitted with the break-glass annotation"
        } else if s(&a["state"]) == "ATTEMPTED" {
            "refused"
        } else {
            "admitted"
        };
        let pod = admission["pod"]
            .as_str()
            .map(|p| format!(" into pod {p}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "Request:     {}{pod} by {} (uid {}), {outcome}",
            s(&admission["operation"]),
            s(&admission["user"]),
            s(&admission["requestUid"])
        );
        // Identical retries the controller counted on the first (absent: just the one).
        if let Some(attempts) = admission["attempts"].as_u64().filter(|n| *n > 1) {
            let _ = writeln!(
                text,
                "             {attempts} identical attempts, the first with this uid"
            );
        }
    }
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let _ = writeln!(text, "Violations:");
    for v in list(&a["violations"]) {
        let _ = writeln!(text, "  - {}", s(&v));
    }
    let processes = list(&a["processes"]);
    if !processes.is_empty() {
        let _ = writeln!(text, "Processes:");
        for p in processes {
            let _ = writeln!(
                text,
                "  - {} {} {} (container {}, uid {})",
                ms(&p["timeUnixMs"]),
                s(&p["execFilePath"]),
                p["args"].as_str().unwrap_or_default(),
                s(&p["containerName"]),
                s(&p["uid"])
            );
        }
    }
    let enforcements = list(&a["enforcements"]);
    if !enforcements.is_empty() {
        let _ = writeln!(text, "Enforcement:");
        for e in enforcements {
            let _ = writeln!(
                text,
                "  - {} {}: {}{}",
                ms(&e["timeUnixMs"]),
                s(&e["action"]),
                s(&e["message"]),
                if e["succeeded"] == false {
                    " (failed)"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(remediation) = policy["remediation"]
        .as_str()
        .filter(|r| !r.trim().is_empty())
    {
        let _ = writeln!(text, "Remediation: {}", remediation.trim());
    }
    text
}

pub fn when(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_string())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn print_json(out: &mut dyn Write, v: &Value) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

pub fn cluster(
    remote: &Remote,
    command: ClusterCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::List { output } => {
            let v = remote.get("/v1/clusters")?;
            if output == Format::Json {
                print_json(out, &v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = v["clusters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    vec![
                        s(&c["name"]),
                        s(&c["connection"]),
                        s(&c["sensorVersion"]),
                        c["lastContactUnixMs"]
                            .as_i64()
                            .map(when)
                            .unwrap_or_else(|| "never".into()),
                        s(&c["droppedEvents"]),
                    ]
                })
                .collect();
            out.write_all(
                simple_table(
                    &[
                        "CLUSTER",
                        "SENSOR",
                        "VERSION",
                        "LAST CONTACT",
                        "DROPPED EVENTS",
                    ],
                    &rows,
                )
                .as_bytes(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn alert(
    remote: &Remote,
    command: AlertCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        AlertCommand::List {
            query,
            limit,
            offset,
            sort,
            output,
        } => {
            let v = remote.get(&format!(
                "/v1/alerts?query={}&limit={limit}&offset={offset}&sort={}",
                encode(&query),
                encode(&sort)
            ))?;
            if output == Format::Json {
                print_json(out, &v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let alerts = v["alerts"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        s(&a["id"]),
                        s(&a["policyName"]),
                        s(&a["severity"]).trim_end_matches("_SEVERITY").to_string(),
                        s(&a["state"]),
                        format!(
                            "{}/{}/{}",
                            s(&a["clusterId"]),
                            s(&a["namespace"]),
                            s(&a["deploymentName"])
                        ),
                        a["timeUnixMs"].as_i64().map(when).unwrap_or_default(),
                    ]
                })
                .collect();
            out.write_all(
                simple_table(
                    &["ID", "POLICY", "SEVERITY", "STATE", "DEPLOYMENT", "TIME"],
                    &rows,
                )
                .as_bytes(),
            )?;
            writeln!(
                out,
                "{} of {} alerts (offset {offset}).",
                alerts.len(),
                s(&v["total"])
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Get { id, output } => {
            let v = remote.get(&format!("/v1/alerts/{}", encode(id.trim())))?;
            if output == Format::Json {
                print_json(out, &v)?;
            } else {
                out.write_all(describe_alert(&v["alert"], &v["policy"]).as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Resolve {
            ids,
            query,
            add_to_baseline,
        } => {
            if let Some(q) = query {
                let v = remote.send_json("PATCH", "/v1/alerts/resolve", &json!({ "query": q }))?;
                writeln!(out, "Resolved {} alerts.", s(&v["resolved"]))?;
            } else {
                if ids.is_empty() {
                    bail!("name the alerts to resolve (ids) or pass --query");
                }
                for id in ids {
                    let suffix = if add_to_baseline {
                        "?addToBaseline=true"
                    } else {
                        ""
                    };
                    remote.request(
                        "PATCH",
                        &format!("/v1/alerts/{}/resolve{suffix}", encode(&id)),
                        None,
                    )?;
                    if add_to_baseline {
                        writeln!(out, "Resolved {id}; its processes are in the baseline now.")?;
                    } else {
                        writeln!(out, "Resolved {id}.")?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Finds a policy's id by id, name (case-insensitive) or slug.
pub fn policy_id(remote: &Remote, wanted: &str) -> anyhow::Result<String> {
    let v = remote.get("/v1/policies")?;
    let w = wanted.trim();
    v["policies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .find(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            p["id"].as_str() == Some(w)
                || name.eq_ignore_ascii_case(w)
                || rampart_policy::policy::slugify(name) == w
        })
        .and_then(|p| p["id"].as_str().map(str::to_string))
        .with_context(|| {
            format!("Central has no policy named '{wanted}' (see `rampart policy list`)")
        })
}

pub fn policy_list(
    remote: &Remote,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let v = remote.get("/v1/policies")?;
    if json_out {
        print_json(out, &v["policies"])?;
        return Ok(ExitCode::SUCCESS);
    }
    let policies = v["policies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = policies
        .iter()
        .map(|p| {
            let stages: Vec<String> = p["lifecycleStages"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            let needs: Vec<String> = p["needs"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            vec![
                s(&p["name"]),
                s(&p["severity"]).trim_end_matches("_SEVERITY").to_string(),
                stages.join(","),
                if p["disabled"] == true { "no" } else { "yes" }.to_string(),
                {
                    let enforced: Vec<String> = p["enforcedStages"]
                        .as_array()
                        .map(|a| a.iter().map(s).collect())
                        .unwrap_or_default();
                    if enforced.is_empty() {
                        "-".to_string()
                    } else {
                        enforced.join(",")
                    }
                },
                if needs.is_empty() {
                    "-".to_string()
                } else {
                    needs.join(", ")
                },
            ]
        })
        .collect();
    out.write_all(
        simple_table(
            &[
                "POLICY", "SEVERITY", "STAGES", "ENABLED", "ENFORCED", "NEEDS",
            ],
            &rows,
        )
        .as_bytes(),
    )?;
    writeln!(
        out,
        "{} policies (revision {}).",
        policies.len(),
        s(&v["revision"])
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn policy_get(remote: &Remote, wanted: &str, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let id = policy_id(remote, wanted)?;
    print_json(out, &remote.get(&format!("/v1/policies/{}", encode(&id)))?)?;
    Ok(ExitCode::SUCCESS)
}

pub fn policy_set_disabled(
    remote: &Remote,
    wanted: &str,
    disabled: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = policy_id(remote, wanted)?;
    let v = remote.send_json(
        "PATCH",
        &format!("/v1/policies/{}", encode(&id)),
        &json!({ "disabled": disabled }),
    )?;
    writeln!(
        out,
        "{} '{}'.",
        if disabled { "Disabled" } else { "Enabled" },
        s(&v["name"])
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Enforces a policy at `stages` (all of its own when none is given), or stops enforcing it
/// there (every stage it is enforced at when none is given), and says what that does.
pub fn policy_set_enforced(
    remote: &Remote,
    wanted: &str,
    stages: &[rampart_policy::LifecycleStage],
    enforced: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = policy_id(remote, wanted)?;
    let path = format!("/v1/policies/{}", encode(&id));
    let mut policy: rampart_policy::Policy = serde_json::from_value(remote.get(&path)?)
        .context("Central answered with a policy this CLI cannot read")?;
    let stages = match (stages.is_empty(), enforced) {
        (false, _) => {
            let mut given = stages.to_vec();
            given.sort();
            given.dedup();
            given
        }
        (true, true) => policy.lifecycle_stages.clone(),
        (true, false) => policy.enforced_stages(),
    };
    for &stage in &stages {
        policy
            .set_enforced(stage, enforced)
            .map_err(anyhow::Error::msg)?;
    }
    let v = remote.send_json(
        "PATCH",
        &path,
        &json!({ "enforcementActions": policy.enforcement_actions }),
    )?;
    let policy: rampart_policy::Policy =
        serde_json::from_value(v).context("Central answered with a policy this CLI cannot read")?;
    let name = &policy.name;
    if !enforced {
        let left = policy.enforced_stages();
        let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
        writeln!(
            out,
            "'{name}' is not enforced at {}; it still raises alerts.",
            if names.is_empty() {
                "any stage".to_string()
            } else {
                names.join(", ")
            }
        )?;
        if !left.is_empty() {
            let left: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
            writeln!(out, "Still enforced at {}.", left.join(", "))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for stage in &stages {
        let actions: Vec<&str> = policy
            .enforcement_actions
            .iter()
            .filter(|a| a.stage() == Some(*stage))
            .map(|a| a.as_str())
            .collect();
        let effect = match stage {
            rampart_policy::LifecycleStage::Build => {
                "`deployment check` and `image check` fail on its violations"
            }
            rampart_policy::LifecycleStage::Deploy => {
                "admission controllers refuse workloads that violate it, and Sensors scale down those that get in"
            }
            rampart_policy::LifecycleStage::Runtime if policy.tests_kube_events() => {
                "admission controllers refuse the exec, attach or port-forward requests it matches"
            }
            rampart_policy::LifecycleStage::Runtime => "Sensors kill the pods that violate it",
        };
        writeln!(
            out,
            "Enforced '{name}' at {} ({}): {effect}.",
            stage.as_str(),
            actions.join(", ")
        )?;
    }
    if policy.disabled {
        writeln!(
            out,
            "'{name}' is disabled, so it acts on nothing: `rampart policy enable '{name}'`."
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn policy_export(
    remote: &Remote,
    include: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut query = String::new();
    for wanted in include {
        let id = policy_id(remote, wanted)?;
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(&format!("id={}", encode(&id)));
    }
    print_json(out, &remote.get(&format!("/v1/policies/export{query}"))?)?;
    Ok(ExitCode::SUCCESS)
}

/// Imports policy files; exits 1 when any policy was refused.
pub fn policy_import(
    remote: &Remote,
    policies: Vec<rampart_policy::Policy>,
    overwrite: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let v = remote.send_json(
        "POST",
        "/v1/policies/import",
        &json!({ "policies": policies, "overwrite": overwrite }),
    )?;
    let mut failed = 0;
    for r in v["responses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if r["succeeded"] == true {
            writeln!(out, "imported '{}' ({})", s(&r["name"]), s(&r["id"]))?;
        } else {
            failed += 1;
            let errors: Vec<String> = r["errors"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            writeln!(err, "refused '{}': {}", s(&r["name"]), errors.join("; "))?;
        }
    }
    if failed > 0 && !overwrite {
        writeln!(
            err,
            "(pass --overwrite to replace policies with the same id or name)"
        )?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `deployment check --remote`: Central evaluates each source with its policies; the report is
/// the same structure the local check builds.
pub fn check_remote(
    remote: &Remote,
    sources: &[rampart_policy::check::Source],
    request: &Value,
) -> anyhow::Result<rampart_policy::check::Report> {
    let mut report = rampart_policy::check::Report::default();
    for source in sources {
        let mut body = request.clone();
        body["yaml"] = json!(source.text);
        body["fileName"] = json!(source.name);
        let v = remote.send_json("POST", "/v1/detect/deploy/yaml", &body)?;
        let part: rampart_policy::check::Report =
            serde_json::from_value(v).context("Central's report has an unexpected shape")?;
        report.policies_evaluated = part.policies_evaluated;
        report.objects.extend(part.objects);
        report.problems.extend(part.problems);
        for (k, n) in part.skipped_kinds {
            *report.skipped_kinds.entry(k).or_default() += n;
        }
        for (k, n) in part.unknown_kinds {
            *report.unknown_kinds.entry(k).or_default() += n;
        }
    }
    Ok(report)
}
