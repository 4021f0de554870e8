//! Renders a check report as a table, JSON, SARIF 2.1.0, JUnit XML or CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rampart_policy::Severity;

use rampart_policy::check::{Finding, Report};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Junit,
    Csv,
}

pub fn render(format: Format, report: &Report, failing: &dyn Fn(&Finding) -> bool) -> String {
    match format {
        Format::Table => table(report, failing),
        Format::Json => json_report(report, failing),
        Format::Sarif => sarif(report),
        Format::Junit => junit(report),
        Format::Csv => csv(report, failing),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "-" }
}

/// A plain boxed table: no wrapping, so it can be grepped and diffed.
fn boxed(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let rule = format!("+{rule}+\n");
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from("|");
        for (cell, w) in cells.zip(&widths) {
            let pad = w - cell.chars().count();
            let _ = write!(s, " {cell}{} |", " ".repeat(pad));
        }
        s.push('\n');
        s
    };
    let mut out = rule.clone();
    out.push_str(&line(&mut headers.iter().copied()));
    out.push_str(&rule);
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out.push_str(&rule);
    out
}

fn table(report: &Report, failing: &dyn Fn(&Finding) -> bool) -> String {
    let mut rows = Vec::new();
    for (object, f) in report.active_findings() {
        for v in &f.violations {
            rows.push(vec![
                f.policy.clone(),
                f.severity.short().to_string(),
                yes_no(failing(f)).to_string(),
                object.display(),
                v.clone(),
                f.remediation.clone(),
            ]);
        }
    }
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&boxed(
            &[
                "POLICY",
                "SEVERITY",
                "BREAKS BUILD",
                "OBJECT",
                "VIOLATION",
                "REMEDIATION",
            ],
            &rows,
        ));
    }
    out.push_str(&summary(report, failing));
    out
}

/// The lines after the table: counts, what was skipped, what could not be evaluated.
pub fn summary(report: &Report, failing: &dyn Fn(&Finding) -> bool) -> String {
    let mut out = String::new();
    let active: Vec<_> = report.active_findings().collect();
    let failing_count = active.iter().filter(|(_, f)| failing(f)).count();
    let suppressed = report
        .objects
        .iter()
        .flat_map(|o| &o.findings)
        .filter(|f| f.suppressed.is_some())
        .count();
    let _ = writeln!(
        out,
        "Checked {} workload object(s) against {} policies: {} violated polic{} ({} breaking the build), {} suppressed.",
        report.objects.len(),
        report.policies_evaluated,
        active.len(),
        if active.len() == 1 { "y" } else { "ies" },
        failing_count,
        suppressed
    );
    let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for (_, f) in &active {
        *by_severity
            .entry(std::cmp::Reverse(f.severity))
            .or_default() += 1;
    }
    if !by_severity.is_empty() {
        let parts: Vec<_> = by_severity
            .iter()
            .map(|(s, n)| format!("{} {n}", s.0.short()))
            .collect();
        let _ = writeln!(out, "By severity: {}.", parts.join(", "));
    }
    let mut not_evaluated: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
    for o in &report.objects {
        for n in &o.not_evaluated {
            let entry = not_evaluated.entry(&n.policy).or_default();
            entry.0 += 1;
            for need in &n.needs {
                if !entry.1.contains(&need.as_str()) {
                    entry.1.push(need);
                }
            }
        }
    }
    if !not_evaluated.is_empty() {
        let _ = writeln!(
            out,
            "Not evaluable without more data (neither passed nor violated):"
        );
        for (policy, (count, needs)) in &not_evaluated {
            let _ = writeln!(
                out,
                "  - {policy}: {count} object(s), needs {}",
                needs.join(" and ")
            );
        }
    }
    if !report.skipped_kinds.is_empty() {
        let _ = writeln!(
            out,
            "Skipped non-workload objects: {}.",
            counts(&report.skipped_kinds)
        );
    }
    if !report.unknown_kinds.is_empty() {
        let _ = writeln!(
            out,
            "Unknown kinds (not evaluated): {}.",
            counts(&report.unknown_kinds)
        );
    }
    for p in &report.problems {
        let line = p.line.map(|l| format!(", line {l}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "error: {} (document {}{line}): {}",
            p.file, p.document, p.message
        );
    }
    out
}

fn counts(map: &BTreeMap<String, usize>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummary<'a> {
    objects: usize,
    policies: usize,
    violations: usize,
    failing: usize,
    skipped_kinds: &'a BTreeMap<String, usize>,
    unknown_kinds: &'a BTreeMap<String, usize>,
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    results: &'a [rampart_policy::check::ObjectReport],
    problems: &'a [rampart_policy::check::InputProblem],
    summary: JsonSummary<'a>,
}

/// Serialized straight from the report (no intermediate JSON tree): 10,000 objects stay cheap.
fn json_report(report: &Report, failing: &dyn Fn(&Finding) -> bool) -> String {
    let active: Vec<_> = report.active_findings().collect();
    let value = JsonReport {
        results: &report.objects,
        problems: &report.problems,
        summary: JsonSummary {
            objects: report.objects.len(),
            policies: report.policies_evaluated,
            violations: active.len(),
            failing: active.iter().filter(|(_, f)| failing(f)).count(),
            skipped_kinds: &report.skipped_kinds,
            unknown_kinds: &report.unknown_kinds,
        },
    };
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unset => "note",
    }
}

/// GitHub code scanning ranks alerts by `security-severity` (0-10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Unset => "0.0",
    }
}

// SARIF 2.1.0, as typed structs serialized directly: a tree of `serde_json::Value`s for tens of
// thousands of results costs seconds and hundreds of megabytes.
#[derive(serde::Serialize)]
struct SarifText<'a> {
    text: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule<'a> {
    id: String,
    name: String,
    short_description: SarifText<'a>,
    full_description: SarifText<'a>,
    help: SarifText<'a>,
    default_configuration: SarifLevel,
    properties: SarifRuleProperties,
}

#[derive(serde::Serialize)]
struct SarifLevel {
    level: &'static str,
}

#[derive(serde::Serialize)]
struct SarifRuleProperties {
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    tags: [&'static str; 2],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: SarifMessage,
    locations: [SarifLocation<'a>; 1],
    partial_fingerprints: SarifFingerprints,
}

#[derive(serde::Serialize)]
struct SarifMessage {
    text: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: SarifPhysical,
    logical_locations: [SarifLogical<'a>; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(serde::Serialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
}

#[derive(serde::Serialize)]
struct SarifLogical<'a> {
    name: String,
    kind: &'a str,
}

#[derive(serde::Serialize)]
struct SarifFingerprints {
    #[serde(rename = "rampartObject/v1")]
    object: String,
}

fn sarif(report: &Report) -> String {
    // One rule per violated policy, in first-seen order.
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<SarifRule<'_>> = Vec::new();
    let mut pending = Vec::new();
    for (object, f) in report.active_findings() {
        let index = *rule_index.entry(&f.policy).or_insert_with(|| {
            let slug = rampart_policy::policy::slugify(&f.policy);
            rules.push(SarifRule {
                id: if f.policy_id.is_empty() {
                    slug.clone()
                } else {
                    f.policy_id.clone()
                },
                name: slug,
                short_description: SarifText { text: &f.policy },
                full_description: SarifText { text: &f.policy },
                help: SarifText {
                    text: &f.remediation,
                },
                default_configuration: SarifLevel {
                    level: sarif_level(f.severity),
                },
                properties: SarifRuleProperties {
                    security_severity: security_severity(f.severity),
                    tags: ["security", "kubernetes"],
                },
            });
            rules.len() - 1
        });
        pending.push((object, f, index));
    }
    let results: Vec<SarifResult<'_>> = pending
        .into_iter()
        .map(|(object, f, index)| {
            let rule_id = rules[index].id.clone();
            let fingerprint = format!(
                "{}/{}/{}/{rule_id}",
                object.kind, object.namespace, object.name
            );
            SarifResult {
                rule_id,
                rule_index: index,
                level: sarif_level(f.severity),
                message: SarifMessage {
                    text: format!("{}: {}", object.display(), f.violations.join("; ")),
                },
                locations: [SarifLocation {
                    physical_location: SarifPhysical {
                        artifact_location: SarifArtifact {
                            uri: sarif_uri(&object.file),
                        },
                        region: SarifRegion {
                            start_line: object.line,
                        },
                    },
                    logical_locations: [SarifLogical {
                        name: object.display(),
                        kind: "object",
                    }],
                }],
                partial_fingerprints: SarifFingerprints {
                    object: fingerprint,
                },
            }
        })
        .collect();
    let log = SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "rampart",
                    information_uri: "https://github.com/rampart-sec/rampart",
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            results,
        }],
    };
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}

#[derive(serde::Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(serde::Serialize)]
struct SarifRun<'a> {
    tool: SarifTool<'a>,
    results: Vec<SarifResult<'a>>,
}

#[derive(serde::Serialize)]
struct SarifTool<'a> {
    driver: SarifDriver<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver<'a> {
    name: &'static str,
    information_uri: &'static str,
    semantic_version: &'static str,
    rules: Vec<SarifRule<'a>>,
}

/// SARIF wants URIs: forward slashes, relative paths kept relative for code scanning.
fn sarif_uri(file: &str) -> String {
    let path = file.replace('\\', "/");
    path.strip_prefix("./").unwrap_or(&path).to_string()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// One test case per object and violated policy; objects without findings pass as one case.
fn junit(report: &Report) -> String {
    let mut cases = String::new();
    let mut tests = 0;
    let mut failures = 0;
    for object in &report.objects {
        let class = xml_escape(&object.display());
        let active: Vec<&Finding> = object
            .findings
            .iter()
            .filter(|f| f.suppressed.is_none())
            .collect();
        if active.is_empty() {
            tests += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"all policies\"/>"
            );
        }
        for f in active {
            tests += 1;
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{}\">\n      <failure message=\"{}\" type=\"{}\">{}\n\nRemediation: {}</failure>\n    </testcase>",
                xml_escape(&f.policy),
                xml_escape(&f.violations.join("; ")),
                f.severity.short(),
                xml_escape(&f.violations.join("\n")),
                xml_escape(&f.remediation)
            );
        }
    }
    for p in &report.problems {
        tests += 1;
        failures += 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}\" name=\"document {}\">\n      <failure message=\"{}\" type=\"input\"/>\n    </testcase>",
            xml_escape(&p.file),
            p.document,
            xml_escape(&p.message)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rampart\" tests=\"{tests}\" failures=\"{failures}\">\n  <testsuite name=\"rampart deployment check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

fn csv(report: &Report, failing: &dyn Fn(&Finding) -> bool) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "POLICY",
        "SEVERITY",
        "BREAKS BUILD",
        "OBJECT",
        "FILE",
        "LINE",
        "VIOLATION",
        "REMEDIATION",
    ]);
    for (object, f) in report.active_findings() {
        for v in &f.violations {
            let _ = w.write_record([
                f.policy.as_str(),
                f.severity.short(),
                if failing(f) { "yes" } else { "no" },
                &object.display(),
                &object.file,
                &object.line.to_string(),
                v,
                &f.remediation,
            ]);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Exposed for table output of `policy list`.
pub fn simple_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    boxed(headers, rows)
}
