//! Loading, selecting, listing, validating and exporting policies.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rampart_policy::check::{self, Selection, names_policy};
use rampart_policy::compile::{CompiledPolicy, ValidationError, compile};
use rampart_policy::defaults::default_policies;
use rampart_policy::policy::{Policy, PolicyList, parse_policies};

use crate::remote::RemoteArgs;
use crate::{ListFormat, PolicyCommand, PolicySourceArgs, remote_cmds};

/// Policy JSON files are small; anything bigger is a mistake (or an attack).
const MAX_POLICY_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A policy file's name and its policies, or the reason it could not be read.
type PolicyFile = (String, Result<Vec<Policy>, String>);

/// Reads every policy file under the paths.
fn read_policy_files(paths: &[String]) -> anyhow::Result<Vec<PolicyFile>> {
    let mut files = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {p}"))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else {
            bail!("{p} does not exist");
        }
    }
    let mut out = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let size = std::fs::metadata(&f)
            .with_context(|| format!("cannot read {name}"))?
            .len();
        if size > MAX_POLICY_FILE_BYTES {
            out.push((
                name,
                Err(format!("file is larger than {MAX_POLICY_FILE_BYTES} bytes")),
            ));
            continue;
        }
        let text = std::fs::read(&f).with_context(|| format!("cannot read {name}"))?;
        let parsed = match String::from_utf8(text) {
            Ok(text) => parse_policies(&text).map_err(|e| e.to_string()),
            Err(_) => Err("file is not valid UTF-8".to_string()),
        };
        out.push((name, parsed));
    }
    Ok(out)
}

/// Defaults (unless replaced) plus custom policies; a custom policy with a default's id or name
/// replaces it. Invalid custom policies are an error naming every problem.
pub fn load(args: &PolicySourceArgs) -> anyhow::Result<Vec<CompiledPolicy>> {
    let mut policies: Vec<Policy> = if args.replace_defaults {
        Vec::new()
    } else {
        default_policies()
    };
    let mut problems = Vec::new();
    for (file, parsed) in read_policy_files(&args.policies)? {
        match parsed {
            Ok(custom) => {
                for p in custom {
                    policies.retain(|d| !((!p.id.is_empty() && d.id == p.id) || d.name == p.name));
                    policies.push(p);
                }
            }
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    let mut compiled = Vec::new();
    for p in &policies {
        match compile(p) {
            Ok(c) => compiled.push(c),
            Err(errors) => problems.extend(errors.iter().map(ToString::to_string)),
        }
    }
    if !problems.is_empty() {
        bail!("invalid policies:\n  {}", problems.join("\n  "));
    }
    Ok(compiled)
}

/// Applies the command-line filters. Naming an unknown policy is an error, not a silent no-op.
pub fn select(
    all: Vec<CompiledPolicy>,
    sel: &Selection<'_>,
) -> anyhow::Result<Vec<CompiledPolicy>> {
    check::select(all, sel).map_err(|e| anyhow::anyhow!("{e} (see `rampart policy list`)"))
}

pub fn run(
    command: PolicyCommand,
    remote: &RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let central = remote.connect()?;
    match (command, &central) {
        (PolicyCommand::List { output, .. }, Some(central)) => {
            remote_cmds::policy_list(central, output == ListFormat::Json, out)
        }
        (PolicyCommand::Export { include, .. }, Some(central)) => {
            remote_cmds::policy_export(central, &include, out)
        }
        (PolicyCommand::Get { policy, source }, _) => match &central {
            Some(central) => remote_cmds::policy_get(central, &policy, out),
            None => {
                let policies = load(&source)?;
                let found = policies
                    .into_iter()
                    .find(|c| names_policy(&policy, &c.policy))
                    .with_context(|| {
                        format!("no policy named '{policy}' (see `rampart policy list`)")
                    })?;
                writeln!(out, "{}", serde_json::to_string_pretty(&found.policy)?)?;
                Ok(ExitCode::SUCCESS)
            }
        },
        (PolicyCommand::Import { files, overwrite }, _) => {
            let central = remote.require("policy import")?;
            let mut policies = Vec::new();
            let mut problems = Vec::new();
            for (file, parsed) in read_policy_files(&files)? {
                match parsed {
                    Ok(p) => policies.extend(p),
                    Err(e) => problems.push(format!("{file}: {e}")),
                }
            }
            if !problems.is_empty() {
                bail!(
                    "nothing imported; fix these files first:\n  {}",
                    problems.join("\n  ")
                );
            }
            remote_cmds::policy_import(&central, policies, overwrite, out, err)
        }
        (PolicyCommand::Enable { policy }, _) => {
            remote_cmds::policy_set_disabled(&remote.require("policy enable")?, &policy, false, out)
        }
        (PolicyCommand::Disable { policy }, _) => {
            remote_cmds::policy_set_disabled(&remote.require("policy disable")?, &policy, true, out)
        }
        (PolicyCommand::Enforce { policy, stages }, _) => remote_cmds::policy_set_enforced(
            &remote.require("policy enforce")?,
            &policy,
            &stages.into_iter().map(Into::into).collect::<Vec<_>>(),
            true,
            out,
        ),
        (PolicyCommand::Unenforce { policy, stages }, _) => remote_cmds::policy_set_enforced(
            &remote.require("policy unenforce")?,
            &policy,
            &stages.into_iter().map(Into::into).collect::<Vec<_>>(),
            false,
            out,
        ),
        (PolicyCommand::List { source, output }, None) => {
            let mut policies = load(&source)?;
            policies.sort_by(|a, b| {
                a.policy
                    .name
                    .to_lowercase()
                    .cmp(&b.policy.name.to_lowercase())
            });
            match output {
                ListFormat::Json => {
                    let list: Vec<_> = policies
                        .iter()
                        .map(|c| {
                            serde_json::json!({
                                "id": c.policy.id, "name": c.policy.name, "slug": c.policy.slug(),
                                "severity": c.policy.severity, "lifecycleStages": c.policy.lifecycle_stages,
                                "categories": c.policy.categories, "enabled": !c.policy.disabled,
                                "enforced": !c.policy.enforced_stages().is_empty(),
                                "enforcedStages": c.policy.enforced_stages(),
                                "needs": c.needs.iter().map(|n| n.describe()).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                }
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = policies
                        .iter()
                        .map(|c| {
                            let p = &c.policy;
                            vec![
                                p.name.clone(),
                                p.severity.short().to_string(),
                                p.lifecycle_stages
                                    .iter()
                                    .map(|s| format!("{s:?}").to_uppercase())
                                    .collect::<Vec<_>>()
                                    .join(","),
                                if p.disabled { "no" } else { "yes" }.to_string(),
                                match p.enforced_stages() {
                                    stages if stages.is_empty() => "-".to_string(),
                                    stages => stages
                                        .iter()
                                        .map(|s| s.as_str())
                                        .collect::<Vec<_>>()
                                        .join(","),
                                },
                                if c.needs.is_empty() {
                                    "-".to_string()
                                } else {
                                    c.needs
                                        .iter()
                                        .map(|n| n.describe())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                },
                            ]
                        })
                        .collect();
                    out.write_all(
                        crate::output::simple_table(
                            &[
                                "POLICY", "SEVERITY", "STAGES", "ENABLED", "ENFORCED", "NEEDS",
                            ],
                            &rows,
                        )
                        .as_bytes(),
                    )?;
                    writeln!(out, "{} policies.", policies.len())?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        (PolicyCommand::Validate { files }, _) => {
            let mut invalid = 0usize;
            let mut valid = 0usize;
            for (file, parsed) in read_policy_files(&files)? {
                match parsed {
                    Err(e) => {
                        invalid += 1;
                        writeln!(err, "{file}: {e}")?;
                    }
                    Ok(policies) => {
                        for p in policies {
                            match compile(&p) {
                                Ok(_) => valid += 1,
                                Err(errors) => {
                                    invalid += 1;
                                    for ValidationError {
                                        policy,
                                        path,
                                        message,
                                    } in errors
                                    {
                                        let at = if path.is_empty() {
                                            String::new()
                                        } else {
                                            format!(" at {path}")
                                        };
                                        writeln!(err, "{file}: policy '{policy}'{at}: {message}")?;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            writeln!(out, "{valid} valid, {invalid} invalid")?;
            Ok(if invalid == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        (PolicyCommand::Export { source, include }, None) => {
            let policies = load(&source)?;
            for wanted in &include {
                if !policies.iter().any(|p| names_policy(wanted, &p.policy)) {
                    bail!("no policy named '{wanted}' (see `rampart policy list`)");
                }
            }
            let list = PolicyList {
                policies: policies
                    .into_iter()
                    .filter(|c| {
                        include.is_empty() || include.iter().any(|w| names_policy(w, &c.policy))
                    })
                    .map(|c| c.policy)
                    .collect(),
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
