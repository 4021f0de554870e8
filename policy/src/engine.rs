//! Evaluates compiled policies against a normalized deployment.
//!
//! Semantics (ACS's): a policy is violated when any section matches; a section matches when all
//! its groups match; a group matches when any (OR) or every (AND) value matches; `negate` inverts a
//! group. Groups on the same element kind must match the same element: "privileged AND image tag
//! latest" means one container that is both. Evaluation is three-valued: a criterion that needs
//! data a manifest lacks is *unknown*, and a policy that could only be decided with that data is
//! reported as not evaluable — never as passing.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::compile::{
    Comparator, CompiledGroup, CompiledPolicy, CompiledScope, CompiledSection, Matcher, Pattern,
    Stage,
};
use crate::criteria::{Field, Needs, Target};
use crate::deployment::{ClusterContext, Container, Deployment, EnvVar, Mount, Port, PortExposure};
use crate::image_data::{DockerfileInstruction, ImageComponent, ImageData, ImageVuln};
use crate::policy::BooleanOperator;
use crate::text::{Piece, text};

/// What the engine knows beyond the deployment itself.
#[derive(Debug, Clone)]
pub struct EvalContext<'a> {
    /// Exclusions whose expiration lies before this instant no longer apply.
    pub now: OffsetDateTime,
    pub cluster: Option<&'a str>,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub cluster_labels: Option<&'a BTreeMap<String, String>>,
}

impl Default for EvalContext<'_> {
    fn default() -> Self {
        EvalContext {
            now: OffsetDateTime::now_utc(),
            cluster: None,
            namespace_labels: None,
            cluster_labels: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Violated(Vec<String>),
    /// The policy could match, but deciding needs the listed data.
    NotEvaluable(Vec<&'static str>),
    /// The policy's scope does not include the deployment.
    OutOfScope,
    /// An exclusion (named) covers the deployment.
    Excluded(String),
}

/// What a match carries. Policies are evaluated quietly first — a match carries nothing (`()`),
/// no message is built and alternatives stop at the first match — and again with the violation
/// messages (`Vec<String>`) only when they are violated. Quiet results are two bytes, copied
/// and never dropped: the common case moves no vectors around.
trait Said: Sized {
    /// Nothing is said: only whether it matches counts.
    const QUIET: bool;
    fn nothing() -> Self;
    /// The messages `say` builds, unless quiet.
    fn build(say: impl FnOnce() -> Vec<String>) -> Self;
    /// Both parts of a match (the groups of a section), in order.
    fn and(self, other: Self) -> Self;
    /// Another alternative's messages, those not said already.
    fn merge(&mut self, other: Self);
}

impl Said for () {
    const QUIET: bool = true;
    fn nothing() {}
    fn build(_: impl FnOnce() -> Vec<String>) {}
    fn and(self, _: ()) {}
    fn merge(&mut self, _: ()) {}
}

impl Said for Vec<String> {
    const QUIET: bool = false;
    fn nothing() -> Vec<String> {
        Vec::new()
    }
    fn build(say: impl FnOnce() -> Vec<String>) -> Vec<String> {
        say()
    }
    fn and(mut self, other: Vec<String>) -> Vec<String> {
        if self.is_empty() {
            return other;
        }
        self.extend(other);
        self
    }
    fn merge(&mut self, other: Vec<String>) {
        let said = self.len();
        if said == 0 {
            // The first alternative keeps its own vector instead of being copied.
            *self = other;
        } else {
            self.extend(other);
        }
        // Repeats of what was said before are dropped, the first saying kept.
        let mut i = said.max(1);
        while i < self.len() {
            if self[..i].contains(&self[i]) {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// Three-valued match of a section, group or element.
#[derive(Debug, Clone, Copy)]
enum Tri<M> {
    Match(M),
    NoMatch,
    Unknown(NeedsSet),
}

impl<M: Said> Tri<M> {
    /// A match that says nothing of its own.
    fn matched() -> Tri<M> {
        Tri::Match(M::nothing())
    }

    fn is_no_match(&self) -> bool {
        matches!(self, Tri::NoMatch)
    }

    fn and(self, other: Tri<M>) -> Tri<M> {
        match (self, other) {
            (Tri::NoMatch, _) | (_, Tri::NoMatch) => Tri::NoMatch,
            (Tri::Unknown(a), Tri::Unknown(b)) => Tri::Unknown(a.with(b)),
            (Tri::Unknown(a), _) | (_, Tri::Unknown(a)) => Tri::Unknown(a),
            (Tri::Match(a), Tri::Match(b)) => Tri::Match(a.and(b)),
        }
    }

    /// Folds the results of several alternatives (elements, sections): any match wins. Quiet,
    /// the first match ends the fold.
    fn any(results: impl IntoIterator<Item = Tri<M>>) -> Tri<M> {
        // Every alternative's messages are merged, the first's too, so that none is said twice.
        let mut said = M::nothing();
        let mut matched = false;
        let mut unknown = NeedsSet::default();
        let mut any_unknown = false;
        for r in results {
            match r {
                Tri::Match(m) if M::QUIET => return Tri::Match(m),
                Tri::Match(m) => {
                    matched = true;
                    said.merge(m);
                }
                Tri::Unknown(n) => {
                    any_unknown = true;
                    unknown = unknown.with(n);
                }
                Tri::NoMatch => {}
            }
        }
        if matched {
            Tri::Match(said)
        } else if any_unknown {
            Tri::Unknown(unknown)
        } else {
            Tri::NoMatch
        }
    }
}

/// A group as evaluation sees it, evaluated quietly or with messages (see [`Said`]).
struct G<'a, M> {
    group: &'a CompiledGroup,
    said: std::marker::PhantomData<fn() -> M>,
}

impl<M> Clone for G<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for G<'_, M> {}

impl<M> std::ops::Deref for G<'_, M> {
    type Target = CompiledGroup;
    fn deref(&self) -> &CompiledGroup {
        self.group
    }
}

impl<'a, M: Said> G<'a, M> {
    fn new(group: &'a CompiledGroup) -> G<'a, M> {
        G {
            group,
            said: std::marker::PhantomData,
        }
    }

    /// A match with the message `say` builds, unless quiet.
    fn says(self, say: impl FnOnce() -> String) -> Tri<M> {
        Tri::Match(M::build(|| vec![say()]))
    }
}

/// What an undecided result waits for: a set of [`Needs`], kept in a byte so that the many
/// undecided groups of a quiet evaluation allocate nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct NeedsSet(u8);

const ALL_NEEDS: [Needs; 6] = [
    Needs::Manifest,
    Needs::ImageData,
    Needs::ClusterRbac,
    Needs::ClusterNetworkPolicies,
    Needs::ClusterServices,
    Needs::RuntimeEvent,
];

impl NeedsSet {
    fn bit(n: Needs) -> u8 {
        // Exhaustive: a new kind of need gets its own bit here and a place in ALL_NEEDS.
        1 << match n {
            Needs::Manifest => 0,
            Needs::ImageData => 1,
            Needs::ClusterRbac => 2,
            Needs::ClusterNetworkPolicies => 3,
            Needs::ClusterServices => 4,
            Needs::RuntimeEvent => 5,
        }
    }

    fn of(n: Needs) -> NeedsSet {
        NeedsSet(NeedsSet::bit(n))
    }

    fn with(self, other: NeedsSet) -> NeedsSet {
        NeedsSet(self.0 | other.0)
    }

    fn describe(self) -> Vec<&'static str> {
        ALL_NEEDS
            .iter()
            .filter(|n| self.0 & NeedsSet::bit(**n) != 0)
            .map(|n| n.describe())
            .collect()
    }
}

/// A request on a pod's subresource (exec, attach, port-forward) as the API server's admission
/// chain reports it: what ACS calls a Kubernetes event on a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeEvent {
    /// `PODS_EXEC`, `PODS_ATTACH` or `PODS_PORTFORWARD`.
    pub resource: String,
    /// `CREATE` for the CONNECT of exec, attach and port-forward (RBAC's verb for them).
    pub verb: String,
    /// The pod's name.
    pub object_name: String,
    pub user: String,
    pub groups: Vec<String>,
    pub impersonated: bool,
}

impl KubeEvent {
    /// How a violation message names the action.
    fn describe(&self) -> &'static str {
        match self.resource.as_str() {
            "PODS_EXEC" => "exec into",
            "PODS_ATTACH" => "attach to",
            "PODS_PORTFORWARD" => "port-forward to",
            _ => "access",
        }
    }
}

/// A program a container executed, as the Collector saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessEvent {
    /// The container (of the deployment's pod) that ran it: container criteria of the same
    /// section are evaluated on that container only.
    pub container_name: String,
    /// The program's name (`comm`: `bash`).
    pub name: String,
    pub exec_file_path: String,
    pub args: String,
    pub uid: u32,
    /// The ancestors' executable paths, parent first.
    pub lineage: Vec<String>,
    /// The container's process baseline is locked and lacks this executable.
    pub outside_locked_baseline: bool,
}

impl ProcessEvent {
    /// The violation message a process adds (ACS's wording).
    pub fn describe(&self) -> String {
        let binary = if self.exec_file_path.is_empty() {
            &self.name
        } else {
            &self.exec_file_path
        };
        if self.args.is_empty() {
            text!(
                "Binary '",
                binary,
                "' executed without arguments under user ID ",
                self.uid
            )
        } else {
            text!(
                "Binary '",
                binary,
                "' executed with arguments '",
                self.args,
                "' under user ID ",
                self.uid
            )
        }
    }
}

/// What happened at runtime, for RUNTIME policies.
#[derive(Debug, Clone, Copy)]
pub enum RuntimeEvent<'a> {
    Kube(&'a KubeEvent),
    Process(&'a ProcessEvent),
}

/// Whether a policy can be violated by a deployment that carries no image data. A section with
/// an image criterion (CVE, image age, components...) is "not evaluable" at best until the
/// scanner provides the data, so a policy whose every section has one cannot be violated; a
/// caller with only manifests (the admission controller) need not evaluate it at all.
pub fn can_violate_without_image_data(policy: &CompiledPolicy) -> bool {
    policy.sections.iter().any(|s| {
        s.groups
            .iter()
            .all(|g| g.criterion.needs != crate::criteria::Needs::ImageData)
    })
}

/// Evaluates one policy against one deployment.
pub fn evaluate(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    ctx: &EvalContext<'_>,
) -> Outcome {
    evaluate_with(policy, deployment, None, ctx)
}

/// Evaluates a RUNTIME policy against an event in a deployment: the policy's event criteria
/// against the event, the others against the deployment.
pub fn evaluate_event(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    event: RuntimeEvent<'_>,
    ctx: &EvalContext<'_>,
) -> Outcome {
    evaluate_with(policy, deployment, Some(event), ctx)
}

fn evaluate_with(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    event: Option<RuntimeEvent<'_>>,
    ctx: &EvalContext<'_>,
) -> Outcome {
    if let Some(outcome) = not_applicable(policy, deployment, ctx) {
        return outcome;
    }
    let quiet = sections::<()>(policy, deployment, event, ctx.now);
    judged(policy, deployment, event, ctx.now, quiet)
}

/// The violations of one policy by one deployment; `None` when it passes, is out of scope or
/// excluded, or cannot be evaluated. The same answer as [`evaluate`]'s `Violated`, found in the
/// order that suits a caller acting on violations only (the admission controller): the criteria
/// first, and the policy's scopes and exclusions (namespace patterns, most of them) only for a
/// match — most policies pass, and would have checked those for nothing.
pub fn violations(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    ctx: &EvalContext<'_>,
) -> Option<Vec<String>> {
    let quiet = sections::<()>(policy, deployment, None, ctx.now);
    if !matches!(quiet, Tri::Match(())) || not_applicable(policy, deployment, ctx).is_some() {
        return None;
    }
    match judged(policy, deployment, None, ctx.now, quiet) {
        Outcome::Violated(v) => Some(v),
        _ => None,
    }
}

/// Why the policy does not apply to the deployment at all: out of its scopes, or excluded.
fn not_applicable(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    ctx: &EvalContext<'_>,
) -> Option<Outcome> {
    if !policy.scopes.is_empty()
        && !policy
            .scopes
            .iter()
            .any(|s| scope_matches(s, deployment, ctx))
    {
        return Some(Outcome::OutOfScope);
    }
    for e in &policy.exclusions {
        if e.expires.is_some_and(|t| t <= ctx.now) {
            continue;
        }
        if e.deployment_name.is_none() && e.scope.is_none() {
            continue;
        }
        let excluded = e
            .deployment_name
            .as_ref()
            .is_none_or(|n| *n == deployment.name)
            && e.scope
                .as_ref()
                .is_none_or(|s| scope_matches(s, deployment, ctx));
        if excluded {
            return Some(Outcome::Excluded(e.name.clone()));
        }
    }
    None
}

/// The sections' verdict, any of them matching; quiet (`()`) or with messages.
fn sections<M: Said>(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    event: Option<RuntimeEvent<'_>>,
    now: OffsetDateTime,
) -> Tri<M> {
    Tri::any(
        policy
            .sections
            .iter()
            .map(|s| evaluate_section(s, policy, deployment, event, now)),
    )
}

/// The outcome of a policy that applies, from its quiet verdict: evaluated again with messages
/// only when it matched.
fn judged(
    policy: &CompiledPolicy,
    deployment: &Deployment,
    event: Option<RuntimeEvent<'_>>,
    now: OffsetDateTime,
    quiet: Tri<()>,
) -> Outcome {
    let result: Tri<Vec<String>> = match quiet {
        Tri::Match(()) => sections(policy, deployment, event, now),
        Tri::NoMatch => Tri::NoMatch,
        Tri::Unknown(needs) => Tri::Unknown(needs),
    };
    let result = match (result, event) {
        // A process violation names the process first, then what else of the section matched.
        (Tri::Match(mut messages), Some(RuntimeEvent::Process(p))) => {
            messages.insert(0, p.describe());
            Tri::Match(messages)
        }
        (other, _) => other,
    };
    match result {
        Tri::Match(messages) if messages.is_empty() => Outcome::Violated(vec![text!(
            deployment.kind.as_str(),
            " ",
            deployment.name,
            " matches the policy criteria"
        )]),
        Tri::Match(messages) => Outcome::Violated(messages),
        Tri::NoMatch => Outcome::Pass,
        Tri::Unknown(needs) => Outcome::NotEvaluable(needs.describe()),
    }
}

fn scope_matches(scope: &CompiledScope, d: &Deployment, ctx: &EvalContext<'_>) -> bool {
    let label_ok =
        |want: &Option<(String, Pattern)>, labels: Option<&BTreeMap<String, String>>| match want {
            None => true,
            Some((k, v)) => labels
                .and_then(|l| l.get(k))
                .is_some_and(|actual| v.is_match(actual)),
        };
    scope
        .cluster
        .as_deref()
        .is_none_or(|c| ctx.cluster == Some(c))
        && scope
            .namespace
            .as_ref()
            .is_none_or(|r| r.is_match(&d.namespace))
        && label_ok(&scope.label, Some(&d.labels))
        && label_ok(&scope.namespace_label, ctx.namespace_labels)
        && label_ok(&scope.cluster_label, ctx.cluster_labels)
}

fn evaluate_section<M: Said>(
    section: &CompiledSection,
    policy: &CompiledPolicy,
    d: &Deployment,
    event: Option<RuntimeEvent<'_>>,
    now: OffsetDateTime,
) -> Tri<M> {
    let mut result = Tri::matched();
    for group in section.stage(Stage::Deployment) {
        let g = G::new(group);
        // The deployment stage holds deployment and event groups only.
        let r = match g.criterion.target {
            Target::Event => match event {
                Some(RuntimeEvent::Kube(e)) => kube_event_group(g, d, e),
                Some(RuntimeEvent::Process(p)) => process_group(g, p),
                None => unknown(g),
            },
            _ => deployment_group(g, d),
        };
        result = result.and(r);
        if result.is_no_match() {
            return Tri::NoMatch;
        }
    }
    if !section.per_container() {
        return result;
    }
    let process_container = match event {
        Some(RuntimeEvent::Process(p)) => Some(p.container_name.as_str()),
        _ => None,
    };
    let containers = d
        .containers
        .iter()
        .filter(|c| !(policy.skip_init_containers && c.is_init))
        .filter(|c| process_container.is_none_or(|name| name == c.name));
    let cluster = d.cluster.as_ref();
    let containers = Tri::any(containers.map(|c| evaluate_container(section, c, cluster, now)));
    result.and(containers)
}

fn evaluate_container<M: Said>(
    section: &CompiledSection,
    c: &Container,
    cluster: Option<&ClusterContext>,
    now: OffsetDateTime,
) -> Tri<M> {
    let mut result = Tri::matched();
    for group in section.stage(Stage::Container) {
        result = result.and(container_group(G::new(group), c, now));
        if result.is_no_match() {
            return Tri::NoMatch;
        }
    }
    let linked = section.stage(Stage::Linked);
    if !linked.is_empty() {
        result = result.and(vulnerability_groups(linked, c, now));
        if result.is_no_match() {
            return Tri::NoMatch;
        }
    }
    let ports = section.stage(Stage::Port);
    if !ports.is_empty() {
        result = result.and(elements(ports, &c.ports, |g, p| {
            port_group(g, c, p, cluster)
        }));
    }
    let volumes = section.stage(Stage::Volume);
    if !volumes.is_empty() {
        result = result.and(elements(volumes, &c.mounts, |g, m| volume_group(g, c, m)));
    }
    let env = section.stage(Stage::Env);
    if !env.is_empty() {
        result = result.and(elements(env, &c.env, |g, e| env_group(g, c, e)));
    }
    result
}

/// Some element of the list must satisfy every one of `groups` (all on that element kind).
fn elements<M: Said, T>(
    groups: &[CompiledGroup],
    items: &[T],
    eval: impl Fn(G<'_, M>, &T) -> Tri<M>,
) -> Tri<M> {
    Tri::any(items.iter().map(|item| {
        let mut result = Tri::matched();
        for group in groups {
            result = result.and(eval(G::new(group), item));
            if result.is_no_match() {
                break;
            }
        }
        result
    }))
}

/// Applies a group's values (with its operator and negation) to the candidate values an element
/// offers. `describe` turns the matched candidates into messages, and runs only on a match.
fn match_candidates<M: Said, C>(
    g: G<'_, M>,
    candidates: &[C],
    matches: impl Fn(&Matcher, &C) -> bool,
    describe: impl Fn(&C) -> String,
) -> Tri<M> {
    let matched = holds(g, |m| candidates.iter().any(|c| matches(m, c)));
    if matched != g.negate {
        // A negated group states what the object is not; the other groups of the section say
        // what it is, so it adds no message of its own.
        Tri::Match(if g.negate {
            M::nothing()
        } else {
            M::build(|| {
                candidates
                    .iter()
                    .filter(|c| g.values.iter().any(|m| matches(m, c)))
                    .map(&describe)
                    .collect()
            })
        })
    } else {
        Tri::NoMatch
    }
}

/// Whether the group's values hold under its operator (before negation).
fn holds<M>(g: G<'_, M>, value_holds: impl Fn(&Matcher) -> bool) -> bool {
    match g.operator {
        BooleanOperator::Or => g.values.iter().any(value_holds),
        BooleanOperator::And => !g.values.is_empty() && g.values.iter().all(value_holds),
    }
}

fn bool_group<M: Said>(g: G<'_, M>, actual: bool, describe: impl Fn(bool) -> String) -> Tri<M> {
    match_candidates(g, &[actual], |m, b| m.matches_bool(*b), |b| describe(*b))
}

fn str_group<M: Said>(g: G<'_, M>, actual: &str, describe: impl Fn(&str) -> String) -> Tri<M> {
    match_candidates(g, &[actual], |m, s| m.matches_str(s), |s| describe(s))
}

fn number_group<M: Said>(g: G<'_, M>, actual: f64, describe: impl Fn(f64) -> String) -> Tri<M> {
    match_candidates(g, &[actual], |m, n| m.matches_number(*n), |n| describe(*n))
}

/// ACS's RBAC permission levels, lowest first.
const RBAC_LEVELS: [&str; 4] = [
    "DEFAULT",
    "ELEVATED_IN_NAMESPACE",
    "ELEVATED_CLUSTER_WIDE",
    "CLUSTER_ADMIN",
];

fn rbac_words(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "CLUSTER_ADMIN" => "cluster admin",
        "ELEVATED_CLUSTER_WIDE" => "elevated cluster-wide",
        "ELEVATED_IN_NAMESPACE" => "elevated namespace",
        _ => "default",
    }
}

fn unknown<M: Said>(g: G<'_, M>) -> Tri<M> {
    Tri::Unknown(NeedsSet::of(g.criterion.needs))
}

fn key_value_matches(m: &Matcher, (k, v): &(&String, &String)) -> bool {
    match m {
        Matcher::KeyValue { key, value } => {
            key.is_match(k) && value.as_ref().is_none_or(|r| r.is_match(v))
        }
        _ => false,
    }
}

/// A Kubernetes event criterion; criteria about other event kinds (processes, flows, audit
/// logs) never match a Kubernetes event.
fn kube_event_group<M: Said>(g: G<'_, M>, d: &Deployment, e: &KubeEvent) -> Tri<M> {
    let action = e.describe();
    let pod = &e.object_name;
    let user = &e.user;
    match g.criterion.field {
        Field::KubernetesResource => str_group(g, &e.resource, |_| {
            text!(
                "Kubernetes API received ",
                action,
                " pod '",
                pod,
                "' request from user '",
                user,
                "'"
            )
        }),
        Field::KubernetesApiVerb => str_group(g, &e.verb, |v| {
            text!("Kubernetes API verb '", v, "' on pod '", pod, "'")
        }),
        Field::KubernetesResourceName => str_group(g, pod, |n| {
            text!("Kubernetes request on resource '", n, "' in ", d.namespace)
        }),
        Field::KubernetesUserName => str_group(g, user, |u| {
            text!(
                "Kubernetes request to ",
                action,
                " pod '",
                pod,
                "' by user '",
                u,
                "'"
            )
        }),
        Field::KubernetesUserGroups => match_candidates(
            g,
            &e.groups,
            |m, group| m.matches_str(group),
            |group| text!("Kubernetes request by a member of group '", group, "'"),
        ),
        Field::IsImpersonatedUser => bool_group(g, e.impersonated, |b| {
            if b {
                text!(
                    "Kubernetes request to ",
                    action,
                    " pod '",
                    pod,
                    "' by an impersonated user"
                )
            } else {
                text!(
                    "Kubernetes request to ",
                    action,
                    " pod '",
                    pod,
                    "' by a user acting as themselves"
                )
            }
        }),
        _ => Tri::NoMatch,
    }
}

/// A process criterion; criteria about other event kinds never match a process. Process groups
/// add no message of their own: the violation names the process once (`ProcessEvent::describe`).
fn process_group<M: Said>(g: G<'_, M>, p: &ProcessEvent) -> Tri<M> {
    let matched = match g.criterion.field {
        Field::ProcessName => holds(g, |m| m.matches_str(&p.name)),
        Field::ProcessArguments => holds(g, |m| m.matches_str(&p.args)),
        // An ancestor matches by its path or its file name (`java` or `.*/java`).
        Field::ProcessAncestor => holds(g, |m| {
            p.lineage
                .iter()
                .any(|a| m.matches_str(a) || m.matches_str(a.rsplit('/').next().unwrap_or(a)))
        }),
        Field::ProcessUid => holds(g, |m| m.matches_number(f64::from(p.uid))),
        Field::UnexpectedProcessExecuted => holds(g, |m| m.matches_bool(p.outside_locked_baseline)),
        _ => return Tri::NoMatch,
    };
    if matched != g.negate {
        Tri::matched()
    } else {
        Tri::NoMatch
    }
}

// Out of line, as `container_group`.
#[inline(never)]
fn deployment_group<M: Said>(g: G<'_, M>, d: &Deployment) -> Tri<M> {
    let kind = d.kind.as_str();
    match g.criterion.field {
        Field::Namespace => str_group(g, &d.namespace, |n| {
            text!(kind, " is in namespace '", n, "'")
        }),
        Field::ServiceAccount => str_group(g, &d.service_account, |s| {
            text!(kind, " uses service account '", s, "'")
        }),
        Field::AutomountServiceAccountToken => {
            bool_group(g, d.automount_service_account_token, |b| {
                if b {
                    text!(kind, " mounts the service account token automatically")
                } else {
                    text!(kind, " does not mount the service account token")
                }
            })
        }
        Field::HostNetwork => bool_group(g, d.host_network, |b| {
            text!(
                kind,
                " ",
                if b { "uses" } else { "does not use" },
                " the host's network namespace"
            )
        }),
        Field::HostPid => bool_group(g, d.host_pid, |b| {
            text!(
                kind,
                " ",
                if b { "uses" } else { "does not use" },
                " the host's process ID namespace"
            )
        }),
        Field::HostIpc => bool_group(g, d.host_ipc, |b| {
            text!(
                kind,
                " ",
                if b { "uses" } else { "does not use" },
                " the host's IPC namespace"
            )
        }),
        Field::Replicas => match d.replicas {
            Some(r) => number_group(g, r as f64, |n| {
                text!(
                    kind,
                    " has ",
                    n,
                    " replica",
                    if n == 1.0 { "" } else { "s" }
                )
            }),
            None => Tri::NoMatch,
        },
        Field::RuntimeClass => str_group(g, &d.runtime_class, |r| {
            if r.is_empty() {
                text!(kind, " sets no runtime class")
            } else {
                text!(kind, " uses runtime class '", r, "'")
            }
        }),
        Field::DisallowedAnnotation => {
            let pairs: Vec<_> = d.annotations.iter().collect();
            match_candidates(g, &pairs, key_value_matches, |(k, v)| {
                text!("Disallowed annotation found: '", k, "=", v, "'")
            })
        }
        Field::RequiredLabel | Field::RequiredAnnotation => {
            let (what, map) = if g.criterion.field == Field::RequiredLabel {
                ("label", &d.labels)
            } else {
                ("annotation", &d.annotations)
            };
            // ACS compiles these as "map should not contain": with OR any missing value violates,
            // with AND only all of them missing does.
            let present = |m: &Matcher| map.iter().any(|p| key_value_matches(m, &p));
            let missing: Vec<&String> = g
                .values
                .iter()
                .zip(&g.raw_values)
                .filter(|(m, _)| !present(m))
                .map(|(_, raw)| raw)
                .collect();
            let violated = match g.operator {
                BooleanOperator::Or => !missing.is_empty(),
                BooleanOperator::And => missing.len() == g.values.len(),
            };
            if violated {
                Tri::Match(M::build(|| {
                    missing
                        .iter()
                        .map(|raw| {
                            text!(
                                "Required ",
                                what,
                                " not found (found ",
                                what,
                                "s: ",
                                describe_map(map),
                                "); expected one matching '",
                                raw,
                                "'"
                            )
                        })
                        .collect()
                }))
            } else {
                Tri::NoMatch
            }
        }
        Field::UnsafeSysctl => {
            let unsafe_ones = d.unsafe_sysctls();
            bool_group(g, !unsafe_ones.is_empty(), |b| {
                if b {
                    text!(kind, " sets unsafe sysctls: ", unsafe_ones.join(", "))
                } else {
                    text!(kind, " sets no unsafe sysctl")
                }
            })
        }
        Field::SelectorMatchesPodLabels => bool_group(g, d.selector_matches_pod_labels, |b| {
            if b {
                text!(kind, " selector matches its pod template labels")
            } else {
                text!(
                    kind,
                    " selector does not match its pod template labels (",
                    describe_map(&d.pod_labels),
                    ")"
                )
            }
        }),
        Field::DeprecatedServiceAccountField => {
            bool_group(g, d.deprecated_service_account_field, |b| {
                if b {
                    text!(
                        kind,
                        " uses the deprecated serviceAccount field ('",
                        d.service_account,
                        "') instead of serviceAccountName"
                    )
                } else {
                    text!(kind, " uses serviceAccountName")
                }
            })
        }
        Field::HasIngressNetworkPolicy | Field::HasEgressNetworkPolicy => {
            let Some(cluster) = &d.cluster else {
                return unknown(g);
            };
            let (covered, direction) = if g.criterion.field == Field::HasIngressNetworkPolicy {
                (cluster.ingress_network_policy, "ingress")
            } else {
                (cluster.egress_network_policy, "egress")
            };
            bool_group(g, covered, |b| {
                if b {
                    text!(
                        kind,
                        " has ",
                        direction,
                        " NetworkPolicies selecting its pods"
                    )
                } else {
                    text!(
                        "No ",
                        direction,
                        " NetworkPolicy selects the pods of this ",
                        kind
                    )
                }
            })
        }
        Field::MinimumRbacPermissions => {
            let Some(cluster) = &d.cluster else {
                return unknown(g);
            };
            let rank = |level: &str| {
                RBAC_LEVELS
                    .iter()
                    .position(|l| l.eq_ignore_ascii_case(level))
            };
            let actual = rank(&cluster.rbac_level).unwrap_or(0);
            // "at least this level": the service account's level meets or exceeds the value.
            let matched = holds(g, |m| match m {
                Matcher::Enum(v) => rank(v).is_some_and(|wanted| actual >= wanted),
                _ => false,
            });
            if matched != g.negate {
                Tri::Match(if g.negate {
                    M::nothing()
                } else {
                    M::build(|| {
                        vec![text!(
                            "Service account '",
                            d.service_account,
                            "' has ",
                            rbac_words(&cluster.rbac_level),
                            " permissions"
                        )]
                    })
                })
            } else {
                Tri::NoMatch
            }
        }
        _ => unknown(g),
    }
}

fn describe_map(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "none".to_string();
    }
    let mut out = String::with_capacity(map.iter().map(|(k, v)| k.len() + v.len() + 3).sum());
    for (k, v) in map {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// "Container 'x'" / "init container 'x'", formatted only when a message is actually built
/// (evaluation that does not match allocates nothing).
#[derive(Clone, Copy)]
struct Who<'a> {
    container: &'a Container,
    capitalized: bool,
}

impl Who<'_> {
    fn kind(&self) -> &'static str {
        match (self.container.is_init, self.capitalized) {
            (true, true) => "Init container",
            (true, false) => "init container",
            (false, true) => "Container",
            (false, false) => "container",
        }
    }
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written piece by piece: `write!` would pad each piece through the formatter.
        f.write_str(self.kind())?;
        f.write_str(" '")?;
        f.write_str(&self.container.name)?;
        f.write_str("'")
    }
}

impl Piece for Who<'_> {
    fn append_to(&self, out: &mut String) {
        out.push_str(self.kind());
        out.push_str(" '");
        out.push_str(&self.container.name);
        out.push('\'');
    }
}

/// `8080/TCP`.
struct PortName<'a>(&'a Port);

impl Piece for PortName<'_> {
    fn append_to(&self, out: &mut String) {
        self.0.container_port.append_to(out);
        out.push('/');
        out.push_str(&self.0.protocol);
    }
}

fn who(c: &Container) -> Who<'_> {
    Who {
        container: c,
        capitalized: true,
    }
}

/// [`who`] within a sentence: "container 'app'".
fn whom(c: &Container) -> Who<'_> {
    Who {
        container: c,
        capitalized: false,
    }
}

/// Criteria that must hold for one component (and one of its vulnerabilities) together, as ACS
/// links them: "CVSS >= 7 and Fixable" means one fixable vulnerability with CVSS >= 7.
pub(crate) fn is_linked(field: Field) -> bool {
    matches!(
        field,
        Field::ImageComponent
            | Field::Cve
            | Field::Cvss
            | Field::Severity
            | Field::Fixable
            | Field::FixedBy
            | Field::DaysSinceCvePublished
            | Field::DaysSinceCveFixAvailable
    )
}

fn days_since(now: OffsetDateTime, then: i64) -> f64 {
    let now = now.unix_timestamp();
    ((now - then).max(0) / 86_400) as f64
}

/// "N days" criteria without a comparator mean "at least N days".
fn days_hold(m: &Matcher, days: f64) -> bool {
    match m {
        Matcher::Number(Comparator::Eq, n) => days >= *n,
        m => m.matches_number(days),
    }
}

fn days_group<M: Said>(g: G<'_, M>, days: f64, describe: impl Fn(f64) -> String) -> Tri<M> {
    match_candidates(g, &[days], |m, d| days_hold(m, *d), |d| describe(*d))
}

/// The image's components (each with one of its vulnerabilities when the section names a
/// vulnerability criterion) of which every linked group holds.
fn vulnerability_groups<M: Said>(
    linked: &[CompiledGroup],
    c: &Container,
    now: OffsetDateTime,
) -> Tri<M> {
    let Some(data) = c.image_data.as_deref().filter(|d| d.scanned) else {
        return Tri::Unknown(NeedsSet::of(Needs::ImageData));
    };
    let per_vuln = linked
        .iter()
        .any(|g| g.criterion.field != Field::ImageComponent);
    let mut messages = Vec::new();
    for comp in &data.components {
        let vulns: Vec<Option<&ImageVuln>> = if per_vuln {
            comp.vulns.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for vuln in vulns {
            if !linked.iter().all(|g| linked_holds(g, comp, vuln, now)) {
                continue;
            }
            if M::QUIET {
                return Tri::matched();
            }
            let whom = whom(c);
            let message = match vuln {
                None => text!(
                    "Image of ",
                    whom,
                    " contains component '",
                    comp.name,
                    "' (version ",
                    comp.version,
                    ")"
                ),
                Some(v) => {
                    let cvss = v.cvss.map_or(String::new(), |s| format!("CVSS {s:.1}, "));
                    let fix = v
                        .fixed_by
                        .as_ref()
                        .map_or("no fix yet".to_string(), |f| text!("fixed by ", f));
                    text!(
                        v.cve,
                        " (",
                        cvss,
                        v.severity.as_str(),
                        ") found in component '",
                        comp.name,
                        "' (version ",
                        comp.version,
                        ") in the image of ",
                        whom,
                        "; ",
                        fix
                    )
                }
            };
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
    }
    if messages.is_empty() {
        Tri::NoMatch
    } else {
        Tri::Match(M::build(|| messages))
    }
}

fn linked_holds(
    g: &CompiledGroup,
    comp: &ImageComponent,
    vuln: Option<&ImageVuln>,
    now: OffsetDateTime,
) -> bool {
    let any = |f: &dyn Fn(&Matcher) -> bool| holds(G::<()>::new(g), f);
    let held = match (g.criterion.field, vuln) {
        (Field::ImageComponent, _) => {
            // A Maven artifact (`group:artifact`) also answers to its artifact name, as ACS
            // names Java components (`log4j-core=`).
            let artifact = comp.name.rsplit_once(':').map(|(_, a)| a.to_string());
            let full = (&comp.name, &comp.version);
            any(&|m| {
                key_value_matches(m, &full)
                    || artifact
                        .as_ref()
                        .is_some_and(|a| key_value_matches(m, &(a, &comp.version)))
            })
        }
        (_, None) => false,
        (Field::Cve, Some(v)) => any(&|m| m.matches_str(&v.cve)),
        (Field::Cvss, Some(v)) => v.cvss.is_some_and(|s| any(&|m| m.matches_number(s))),
        (Field::Severity, Some(v)) => any(&|m| match m {
            Matcher::Severity(cmp, want) => cmp.holds(v.severity as u8 as f64, *want as u8 as f64),
            _ => false,
        }),
        (Field::Fixable, Some(v)) => any(&|m| m.matches_bool(v.fixed_by.is_some())),
        (Field::FixedBy, Some(v)) => v
            .fixed_by
            .as_deref()
            .is_some_and(|f| any(&|m| m.matches_str(f))),
        (Field::DaysSinceCvePublished, Some(v)) => v
            .published
            .is_some_and(|p| any(&|m| days_hold(m, days_since(now, p)))),
        (Field::DaysSinceCveFixAvailable, Some(v)) => v
            .fix_available
            .is_some_and(|p| any(&|m| days_hold(m, days_since(now, p)))),
        _ => false,
    };
    held != g.negate
}

/// The image criteria that read the image as a whole (not its components).
fn image_group<M: Said>(
    g: G<'_, M>,
    c: &Container,
    data: &ImageData,
    now: OffsetDateTime,
) -> Tri<M> {
    // Of an image without a scan only that is known.
    if !data.scanned && g.criterion.field != Field::UnscannedImage {
        return unknown(g);
    }
    let whom = whom(c);
    match g.criterion.field {
        Field::UnscannedImage => bool_group(g, !data.scanned, |b| {
            if b {
                text!("Image of ", whom, " has not been scanned")
            } else {
                text!("Image of ", whom, " has been scanned")
            }
        }),
        Field::ImageOs => str_group(g, &data.os, |os| text!("Image of ", whom, " has OS ", os)),
        Field::ImageUser => str_group(g, &data.user, |u| {
            if u.is_empty() {
                text!("Image of ", whom, " sets no user (runs as root)")
            } else {
                text!("Image of ", whom, " runs as user '", u, "'")
            }
        }),
        Field::ImageAge => match data.created {
            Some(t) => days_group(g, days_since(now, t), |d| {
                text!("Image of ", whom, " was created ", d, " days ago")
            }),
            None => unknown(g),
        },
        Field::ImageScanAge => match data.scan_time {
            Some(t) => days_group(g, days_since(now, t), |d| {
                text!("Image of ", whom, " was last scanned ", d, " days ago")
            }),
            None => unknown(g),
        },
        Field::DisallowedImageLabel => {
            let pairs: Vec<_> = data.labels.iter().collect();
            match_candidates(g, &pairs, key_value_matches, |(k, v)| {
                text!("Image of ", whom, " has disallowed label ", k, "=", v)
            })
        }
        Field::RequiredImageLabel => {
            let pairs: Vec<_> = data.labels.iter().collect();
            let present = |m: &Matcher| pairs.iter().any(|p| key_value_matches(m, p));
            let missing: Vec<&String> = g
                .values
                .iter()
                .zip(&g.raw_values)
                .filter(|(m, _)| !present(m))
                .map(|(_, raw)| raw)
                .collect();
            let violated = match g.operator {
                BooleanOperator::Or => !missing.is_empty(),
                BooleanOperator::And => missing.len() == g.values.len(),
            };
            if !violated {
                return Tri::NoMatch;
            }
            Tri::Match(M::build(|| {
                missing
                    .iter()
                    .map(|raw| text!("Image of ", whom, " has no label matching '", raw, "'"))
                    .collect()
            }))
        }
        Field::DockerfileLine => {
            let matches = |m: &Matcher, line: &DockerfileInstruction| match m {
                Matcher::Dockerfile { instruction, value } => {
                    line.instruction.eq_ignore_ascii_case(instruction)
                        && value.as_ref().is_none_or(|r| r.is_match(&line.value))
                }
                _ => false,
            };
            match_candidates(g, &data.dockerfile, matches, |l| {
                text!(
                    "Image of ",
                    whom,
                    " has Dockerfile line '",
                    l.instruction,
                    " ",
                    l.value,
                    "'"
                )
            })
        }
        _ => unknown(g),
    }
}

// Out of line: inlined into the container loop, the compiler loads every field any criterion
// might read before each call, whichever criterion the group is.
#[inline(never)]
fn container_group<M: Said>(g: G<'_, M>, c: &Container, now: OffsetDateTime) -> Tri<M> {
    if g.criterion.needs == Needs::ImageData {
        return match c.image_data.as_deref() {
            Some(data) => image_group(g, c, data, now),
            None => unknown(g),
        };
    }
    let who = who(c);
    let sc = &c.security_context;
    match g.criterion.field {
        Field::ContainerName => str_group(g, &c.name, |n| text!(who, " has name '", n, "'")),
        Field::PrivilegedContainer => bool_group(g, sc.privileged, |b| {
            if b {
                text!(who, " is privileged")
            } else {
                text!(who, " is not privileged")
            }
        }),
        Field::AllowPrivilegeEscalation => {
            bool_group(g, sc.allow_privilege_escalation, |b| {
                match (b, sc.allow_privilege_escalation_set) {
                    (true, true) => text!(who, " allows privilege escalation"),
                    (true, false) => text!(
                        who,
                        " allows privilege escalation (allowPrivilegeEscalation is not set to false)"
                    ),
                    (false, _) => text!(who, " does not allow privilege escalation"),
                }
            })
        }
        Field::ReadOnlyRootFilesystem => bool_group(g, sc.read_only_root_filesystem, |b| {
            if b {
                text!(who, " uses a read-only root filesystem")
            } else {
                text!(who, " uses a read-write root filesystem")
            }
        }),
        Field::AddCapabilities => {
            let added = &sc.add_capabilities;
            let matches = |m: &Matcher, cap: &String| match m {
                Matcher::Capability(want) => cap == want || cap == "ALL",
                _ => false,
            };
            match_candidates(g, added, matches, |cap| {
                text!(who, " adds capability ", cap)
            })
        }
        Field::DropCapabilities => {
            let dropped = |want: &str| sc.drop_capabilities.iter().any(|d| d == want || d == "ALL");
            let not_dropped: Vec<&str> = g
                .values
                .iter()
                .filter_map(|m| match m {
                    Matcher::Capability(want) if !dropped(want) => Some(want.as_str()),
                    _ => None,
                })
                .collect();
            let violated = match g.operator {
                BooleanOperator::Or => !not_dropped.is_empty(),
                BooleanOperator::And => not_dropped.len() == g.values.len(),
            };
            if violated {
                g.says(|| {
                    let have = if sc.drop_capabilities.is_empty() {
                        "drops none".to_string()
                    } else {
                        text!("drops ", sc.drop_capabilities.join(", "))
                    };
                    text!(
                        who,
                        " does not drop expected capabilities (",
                        not_dropped.join(", "),
                        "; it ",
                        have,
                        ")"
                    )
                })
            } else {
                Tri::NoMatch
            }
        }
        Field::AppArmorProfile => str_group(g, &sc.apparmor, |p| {
            if p.is_empty() {
                text!(who, " has no AppArmor profile set")
            } else {
                text!(who, " has AppArmor profile '", p, "'")
            }
        }),
        Field::SeccompProfileType => {
            // Unset means the runtime's default of running unconfined, as ACS reads it.
            let actual = sc.seccomp.map_or("UNCONFINED", |s| s.as_str());
            str_group(g, actual, |s| {
                if sc.seccomp.is_none() {
                    text!(who, " has no seccomp profile set (runs ", s, ")")
                } else {
                    text!(who, " has seccomp profile type ", s)
                }
            })
        }
        Field::ContainerCpuRequest => number_group(g, c.resources.cpu_request, |n| {
            resource_message(who, "CPU request", n, "cores")
        }),
        Field::ContainerCpuLimit => number_group(g, c.resources.cpu_limit, |n| {
            resource_message(who, "CPU limit", n, "cores")
        }),
        Field::ContainerMemoryRequest => number_group(g, c.resources.memory_request, |n| {
            resource_message(who, "memory request", n, "MB")
        }),
        Field::ContainerMemoryLimit => number_group(g, c.resources.memory_limit, |n| {
            resource_message(who, "memory limit", n, "MB")
        }),
        // Init containers cannot have probes: the probe criteria do not apply to them.
        Field::LivenessProbeDefined | Field::ReadinessProbeDefined if c.is_init => Tri::NoMatch,
        Field::LivenessProbeDefined => bool_group(g, c.liveness_probe, |b| {
            if b {
                text!(who, " defines a liveness probe")
            } else {
                text!(who, " does not define a liveness probe")
            }
        }),
        Field::ReadinessProbeDefined => bool_group(g, c.readiness_probe, |b| {
            if b {
                text!(who, " defines a readiness probe")
            } else {
                text!(who, " does not define a readiness probe")
            }
        }),
        Field::ImageRegistry => str_group(g, &c.image.registry, |r| {
            text!(
                who,
                " uses image '",
                c.image.full_name,
                "' from registry '",
                r,
                "'"
            )
        }),
        Field::ImageRemote => str_group(g, &c.image.remote, |r| {
            text!(
                who,
                " uses image '",
                c.image.full_name,
                "' with remote '",
                r,
                "'"
            )
        }),
        Field::ImageTag => str_group(g, &c.image.tag, |t| {
            text!(
                who,
                " uses image '",
                c.image.full_name,
                "' with tag '",
                t,
                "'"
            )
        }),
        Field::RunAsNonRoot => bool_group(g, sc.runs_as_non_root(), |b| {
            if b {
                text!(who, " runs as a non-root user")
            } else {
                match sc.run_as_user {
                    Some(0) => text!(who, " runs as root (runAsUser: 0)"),
                    _ => text!(
                        who,
                        " may run as root (neither runAsNonRoot: true nor a non-zero runAsUser is set)"
                    ),
                }
            }
        }),
        Field::DuplicateEnvironmentVariable => {
            let dups = c.duplicate_env_names();
            bool_group(g, !dups.is_empty(), |b| {
                if b {
                    text!(
                        who,
                        " defines environment variables more than once: ",
                        dups.join(", ")
                    )
                } else {
                    text!(who, " defines each environment variable once")
                }
            })
        }
        Field::UnmaskedProcMount => {
            let unmasked = sc.proc_mount.as_deref() == Some("Unmasked");
            bool_group(g, unmasked, |b| {
                if b {
                    text!(who, " mounts /proc unmasked (procMount: Unmasked)")
                } else {
                    text!(who, " uses the default /proc mount")
                }
            })
        }
        _ => unknown(g),
    }
}

fn resource_message(who: Who<'_>, what: &str, n: f64, unit: &str) -> String {
    if n == 0.0 {
        text!(who, " has no ", what, " set")
    } else {
        text!(who, " has a ", what, " of ", n, " ", unit)
    }
}

fn port_group<M: Said>(
    g: G<'_, M>,
    c: &Container,
    p: &Port,
    cluster: Option<&ClusterContext>,
) -> Tri<M> {
    let who = who(c);
    let port = PortName(p);
    // How this port is exposed, when the cluster is known.
    let exposures: Option<Vec<&PortExposure>> = cluster.map(|cl| {
        cl.exposures
            .iter()
            .filter(|e| {
                e.container == c.name
                    && e.container_port == p.container_port
                    && e.protocol.eq_ignore_ascii_case(&p.protocol)
            })
            .collect()
    });
    match g.criterion.field {
        Field::ExposedPort => number_group(g, p.container_port as f64, |_| {
            text!(who, " exposes port ", port)
        }),
        Field::ExposedPortProtocol => {
            str_group(g, &p.protocol, |_| text!(who, " exposes port ", port))
        }
        Field::ExposedNodePort => match exposures {
            Some(exposures) => {
                let mut node_ports: Vec<(i64, String)> = exposures
                    .iter()
                    .filter(|e| e.node_port > 0)
                    .map(|e| {
                        let via = if e.service_name.is_empty() {
                            "hostPort".to_string()
                        } else {
                            text!("service '", e.service_name, "'")
                        };
                        (e.node_port, via)
                    })
                    .collect();
                if let Some(h) = p.host_port
                    && !node_ports.iter().any(|(n, _)| *n == h)
                {
                    node_ports.push((h, "hostPort".to_string()));
                }
                match_candidates(
                    g,
                    &node_ports,
                    |m, (n, _)| m.matches_number(*n as f64),
                    |(n, via)| {
                        text!(
                            who,
                            " exposes port ",
                            port,
                            " on node port ",
                            n,
                            " (",
                            via,
                            ")"
                        )
                    },
                )
            }
            // A hostPort is known from the manifest; Services that expose the port are not.
            None => match p.host_port {
                Some(h) if !g.negate && holds(g, |m| m.matches_number(h as f64)) => g.says(|| {
                    text!(
                        who,
                        " exposes port ",
                        port,
                        " on node port ",
                        h,
                        " (hostPort)"
                    )
                }),
                _ => unknown(g),
            },
        },
        Field::PortExposureMethod => match exposures {
            Some(exposures) => {
                let mut levels: Vec<(String, String)> = exposures
                    .iter()
                    .map(|e| (e.level.to_ascii_uppercase(), e.service_name.clone()))
                    .collect();
                if p.host_port.is_some() && !levels.iter().any(|(l, _)| l == "HOST") {
                    levels.push(("HOST".to_string(), String::new()));
                }
                if levels.is_empty() {
                    levels.push(("UNSET".to_string(), String::new()));
                }
                match_candidates(
                    g,
                    &levels,
                    |m, (l, _)| m.matches_str(l),
                    |(l, svc)| {
                        if svc.is_empty() {
                            text!(who, " exposes port ", port, " with exposure ", l)
                        } else {
                            text!(
                                who,
                                " exposes port ",
                                port,
                                " with exposure ",
                                l,
                                " (service '",
                                svc,
                                "')"
                            )
                        }
                    },
                )
            }
            None => {
                let host = Matcher::Enum("HOST".into());
                let wants_host = holds(
                    g,
                    |m| matches!((m, &host), (Matcher::Enum(a), Matcher::Enum(b)) if a == b),
                );
                match p.host_port {
                    Some(h) if !g.negate && wants_host => g.says(|| {
                        text!(
                            who,
                            " exposes port ",
                            port,
                            " with exposure HOST (hostPort ",
                            h,
                            ")"
                        )
                    }),
                    _ => unknown(g),
                }
            }
        },
        _ => unknown(g),
    }
}

fn volume_group<M: Said>(g: G<'_, M>, c: &Container, m: &Mount) -> Tri<M> {
    let who = who(c);
    let describe = || {
        let source = if m.source.is_empty() {
            String::new()
        } else {
            text!(" ", m.source)
        };
        let access = if m.read_only { "read-only" } else { "writable" };
        let propagation = if m.propagation == "NONE" {
            String::new()
        } else {
            text!(", propagation ", m.propagation)
        };
        text!(
            who,
            " mounts volume '",
            m.name,
            "' (",
            m.volume_type,
            source,
            ") at ",
            m.destination,
            " (",
            access,
            propagation,
            ")"
        )
    };
    match g.criterion.field {
        Field::VolumeName => str_group(g, &m.name, |_| describe()),
        Field::VolumeSource => str_group(g, &m.source, |_| describe()),
        Field::VolumeDestination => str_group(g, &m.destination, |_| describe()),
        Field::VolumeType => str_group(g, m.volume_type, |_| describe()),
        Field::MountPropagation => str_group(g, m.propagation, |_| describe()),
        Field::WritableMountedVolume => bool_group(g, !m.read_only, |_| describe()),
        Field::WritableHostMount => {
            bool_group(g, m.volume_type == "HostPath" && !m.read_only, |_| {
                describe()
            })
        }
        _ => unknown(g),
    }
}

fn env_group<M: Said>(g: G<'_, M>, c: &Container, e: &EnvVar) -> Tri<M> {
    let who = Who {
        container: c,
        capitalized: false,
    };
    match g.criterion.field {
        Field::EnvironmentVariable => {
            let matches = |m: &Matcher, e: &&EnvVar| match m {
                Matcher::Env {
                    sources,
                    name,
                    value,
                } => {
                    sources.contains(e.source)
                        && name.as_ref().is_none_or(|r| r.is_match(&e.name))
                        && value.as_ref().is_none_or(|r| {
                            e.source == crate::deployment::EnvSource::Raw && r.is_match(&e.value)
                        })
                }
                _ => false,
            };
            match_candidates(g, &[e], matches, |e| {
                use crate::deployment::EnvSource;
                let (origin, value) = match e.source {
                    EnvSource::Raw => ("has a raw value", None),
                    EnvSource::SecretKey => ("is set from secret key", Some(&e.value)),
                    EnvSource::ConfigMapKey => ("is set from config map key", Some(&e.value)),
                    EnvSource::Field => ("is set from field", Some(&e.value)),
                    EnvSource::ResourceField => ("is set from resource field", Some(&e.value)),
                    EnvSource::Unknown => ("is set from an unknown source", None),
                };
                match value {
                    Some(v) => text!(
                        "Environment variable '",
                        e.name,
                        "' in ",
                        who,
                        " ",
                        origin,
                        " '",
                        v,
                        "'"
                    ),
                    None => text!("Environment variable '", e.name, "' in ", who, " ", origin),
                }
            })
        }
        _ => unknown(g),
    }
}
