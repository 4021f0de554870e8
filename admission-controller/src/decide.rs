//! The decisions, pure: a decoded request, the settings, the policy set and the Sensor's view of
//! the cluster in; the answer, what to count and which alerts to raise out.
//!
//! ```text
//!  /validate  CREATE|UPDATE ─▶ namespace / user / operation bypass ─▶ object (or cached
//!             workload + new replicas for `scale`) ─▶ Deployment ─▶ enforced deploy-time
//!             policies ─▶ allow │ break-glass: allow + alert │ deny + ATTEMPTED alert
//!  /events    CONNECT pods/exec|attach|portforward ─▶ pod's workload (cache) ─▶ Kubernetes-
//!             event policies ─▶ enforced: deny + ATTEMPTED alert │ not enforced: allow + alert
//! ```
//!
//! What cannot be decided — no policy set yet, an object that does not decode, a request
//! without the object it needs — is answered by the configured failure mode, with the reason in
//! the message (denied) or a warning (allowed).

use std::borrow::Cow;

use rampart_policy::compile::{CompiledPolicy, Stage};
use rampart_policy::criteria::Field;
use rampart_policy::image_data::ImageData;
use rampart_policy::{
    Deployment, EvalContext, KubeEvent, Outcome as Eval, RuntimeEvent, Workload, WorkloadKind,
    evaluate_event, violations,
};
use rampart_proto::v1::{AdmissionAlert, LifecycleStage as WireStage};

use crate::alerts::{PolicyAlert, ReviewAlerts};
use crate::policies::PolicySet;
use crate::resources::Resources;
use crate::review::{
    Answer, JsonText, Request, decode_object as decode, whole_workload, workload_kind_of,
};

/// The annotation that lets a workload through in an emergency (ACS's is honoured too).
pub const BREAK_GLASS: [&str; 2] = [
    "admission.rampart.io/break-glass",
    "admission.stackrox.io/break-glass",
];
/// The annotation that exempts a workload's pods from exec/attach/port-forward enforcement.
pub const BYPASS_KUBE_EVENTS: [&str; 2] = [
    "admission.rampart.io/bypass-kube-event-enforcement",
    "admission.stackrox.io/bypass-kube-event-enforcement",
];

/// Namespaces never evaluated unless configured otherwise: the control plane's and Rampart's
/// (the Sensor's automatic enforcement exempts the same by default).
pub const DEFAULT_EXCLUDED_NAMESPACES: [&str; 3] = rampart_policy::SYSTEM_NAMESPACES;

/// What to do when a request cannot be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Allow, with a warning (ACS's default).
    Open,
    /// Deny, naming the reason.
    Closed,
}

impl FailureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::Open => "open",
            FailureMode::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub failure_mode: FailureMode,
    /// Requests in these namespaces are never evaluated.
    pub excluded_namespaces: Vec<String>,
    /// Users whose requests are never evaluated.
    pub bypass_users: Vec<String>,
    /// Groups whose members' requests are never evaluated.
    pub bypass_groups: Vec<String>,
    /// Whether the break-glass annotation is honoured.
    pub break_glass: bool,
    pub enforce_on_creates: bool,
    pub enforce_on_updates: bool,
    /// Whether Kubernetes-event policies with FAIL_KUBE_REQUEST_ENFORCEMENT deny.
    pub enforce_events: bool,
    /// Users trusted to write an object for the workload that controls it (a ReplicaSet's
    /// pods): such an object is decided at that workload. Written by anyone else, an object
    /// naming a controlling workload is decided itself, as its ownerReference is only its
    /// writer's word. `system:serviceaccount:*:NAME` names that account in every namespace.
    pub controller_users: Vec<String>,
    /// Whether an admitted or refused workload that violates enabled deploy-time policies the
    /// set does not enforce gets a warning naming each (`kubectl` prints them; nothing is
    /// refused for them, and no alert is raised: Central reports the deployment).
    pub warn_unenforced: bool,
}

/// Warnings given at most for the policies not enforced; the last says how many more.
pub const MAX_WARNINGS: usize = 8;

/// The longest warning, in bytes (the API server keeps warnings short, and cuts them).
pub const MAX_WARNING_BYTES: usize = 240;

/// Who writes the objects Kubernetes' own workload controllers control: kube-controller-manager
/// under its own name or under each controller's service account
/// (`--use-service-account-credentials`, as managed clusters run it), the garbage collector
/// (which updates dependents' ownerReferences), and OpenShift's DeploymentConfig controllers
/// (the second creates a rollout's deployer pod, owned by its ReplicationController).
pub const DEFAULT_CONTROLLER_USERS: [&str; 11] = [
    "system:kube-controller-manager",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:openshift-infra:deploymentconfig-controller",
    "system:serviceaccount:openshift-infra:deployer-controller",
];

impl Settings {
    /// Whether `user` is one of [`Settings::controller_users`].
    pub fn is_controller(&self, user: &str) -> bool {
        self.controller_users.iter().any(|c| {
            match c
                .strip_prefix("system:serviceaccount:*:")
                .zip(user.strip_prefix("system:serviceaccount:"))
            {
                Some((name, account)) => account
                    .split_once(':')
                    .is_some_and(|(_, account)| account == name),
                None => c == user,
            }
        })
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            failure_mode: FailureMode::Open,
            excluded_namespaces: DEFAULT_EXCLUDED_NAMESPACES.map(String::from).to_vec(),
            bypass_users: Vec::new(),
            bypass_groups: Vec::new(),
            break_glass: true,
            enforce_on_creates: true,
            enforce_on_updates: true,
            enforce_events: true,
            controller_users: DEFAULT_CONTROLLER_USERS.map(String::from).into(),
            warn_unenforced: true,
        }
    }
}

/// How a request ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Evaluated; nothing enforced was violated.
    Allowed,
    Denied,
    /// Not evaluated: excluded namespace, bypass user, operation not enforced, not a workload...
    Bypassed,
    /// Violations, let through by the break-glass annotation.
    BreakGlass,
    /// Could not be decided; allowed by the failure mode.
    FailedOpen,
    /// Could not be decided; denied by the failure mode.
    FailedClosed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Bypassed => "bypassed",
            Outcome::BreakGlass => "break_glass",
            Outcome::FailedOpen => "failed_open",
            Outcome::FailedClosed => "failed_closed",
        }
    }

    pub const ALL: [Outcome; 6] = [
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::Bypassed,
        Outcome::BreakGlass,
        Outcome::FailedOpen,
        Outcome::FailedClosed,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub answer: Answer,
    pub outcome: Outcome,
    /// Why, in a few words (logged).
    pub reason: String,
    /// Names of the violated enforced policies (counted per policy).
    pub violated: Vec<String>,
    /// Where the violated deploy-time policies are in the set's `deploy` (their counters).
    pub violated_deploy: Vec<usize>,
    /// Alerts to raise; none for dry-run requests.
    pub alerts: ReviewAlerts,
}

impl Decision {
    fn plain(outcome: Outcome, reason: impl Into<String>) -> Decision {
        Decision {
            answer: Answer {
                allowed: !matches!(outcome, Outcome::Denied | Outcome::FailedClosed),
                ..Answer::default()
            },
            outcome,
            reason: reason.into(),
            violated: Vec::new(),
            violated_deploy: Vec::new(),
            alerts: ReviewAlerts::default(),
        }
    }

    fn bypass(reason: impl Into<String>) -> Decision {
        Decision::plain(Outcome::Bypassed, reason)
    }

    /// A request that cannot be decided, answered by the failure mode.
    pub fn failure(mode: FailureMode, reason: impl Into<String>) -> Decision {
        let reason = reason.into();
        match mode {
            FailureMode::Open => Decision {
                answer: Answer {
                    allowed: true,
                    message: JsonText::default(),
                    warnings: vec![format!(
                        "Rampart admission controller could not evaluate this request ({reason}); allowed because it fails open"
                    )],
                },
                ..Decision::plain(Outcome::FailedOpen, reason)
            },
            FailureMode::Closed => Decision {
                answer: Answer {
                    allowed: false,
                    message: format!(
                        "Rampart admission controller could not evaluate this request ({reason}); denied because it fails closed"
                    )
                    .into(),
                    warnings: Vec::new(),
                },
                ..Decision::plain(Outcome::FailedClosed, reason)
            },
        }
    }
}

/// What a decision needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub policies: Option<&'a PolicySet>,
    pub resources: &'a Resources,
    pub now_unix_ms: i64,
    /// Where images met without findings are asked to be scanned.
    pub scan_wants: Option<&'a crate::scan_wants::ScanWants>,
}

/// Requests the settings exempt before anything is decoded.
fn exempt(req: &Request<'_>, settings: &Settings) -> Option<Decision> {
    if settings
        .excluded_namespaces
        .iter()
        .any(|n| n == req.namespace.as_ref())
    {
        return Some(Decision::bypass(format!(
            "namespace {} is excluded",
            req.namespace
        )));
    }
    let user = req.user_info.username.as_ref();
    if settings.bypass_users.iter().any(|u| u == user) {
        return Some(Decision::bypass(format!(
            "user {user} bypasses enforcement"
        )));
    }
    if let Some(g) = req
        .user_info
        .groups
        .iter()
        .find(|g| settings.bypass_groups.iter().any(|b| b == g.as_ref()))
    {
        return Some(Decision::bypass(format!("group {g} bypasses enforcement")));
    }
    // The controllers of excluded namespaces (kube-system's replicaset-controller creating
    // pods, for one) act for workloads that were decided when they were created.
    if let Some(rest) = user.strip_prefix("system:serviceaccount:")
        && let Some((ns, _)) = rest.split_once(':')
        && settings.excluded_namespaces.iter().any(|n| n == ns)
    {
        return Some(Decision::bypass(format!(
            "service account {user} of an excluded namespace"
        )));
    }
    None
}

/// The kind a `<resource>/scale` request scales.
fn scaled_kind(resource: &str) -> Option<WorkloadKind> {
    Some(match resource {
        "deployments" => WorkloadKind::Deployment,
        "statefulsets" => WorkloadKind::StatefulSet,
        "replicasets" => WorkloadKind::ReplicaSet,
        "replicationcontrollers" => WorkloadKind::ReplicationController,
        "deploymentconfigs" => WorkloadKind::DeploymentConfig,
        _ => return None,
    })
}

fn uid_of(w: &Workload) -> String {
    w.metadata().uid.clone().unwrap_or_default()
}

/// `/validate`: CREATE and UPDATE of workloads and their `scale` subresource.
pub fn validate(req: &mut Request<'_>, inputs: Inputs<'_>) -> Decision {
    let settings = inputs.settings;
    let operation = req.operation.as_ref();
    match operation {
        "CREATE" if !settings.enforce_on_creates => {
            return Decision::bypass("creates are not enforced");
        }
        "UPDATE" if !settings.enforce_on_updates => {
            return Decision::bypass("updates are not enforced");
        }
        "CREATE" | "UPDATE" => {}
        other => return Decision::bypass(format!("operation {other} is not validated")),
    }
    if let Some(d) = exempt(req, settings) {
        return d;
    }
    let scale = match (req.resource.resource.as_ref(), req.sub_resource.as_ref()) {
        (_, "") => false,
        (_, "scale") => true,
        ("pods", "ephemeralcontainers") => return ephemeral_containers(req, inputs),
        (_, other) => return Decision::bypass(format!("subresource {other} is not validated")),
    };
    let kind = if scale {
        scaled_kind(&req.resource.resource)
    } else {
        workload_kind_of(&req.kind)
    };
    let Some(kind) = kind else {
        return Decision::bypass(format!("{} is not a workload", req.kind.kind));
    };
    let Some(policies) = inputs.policies else {
        return Decision::failure(settings.failure_mode, "no policy set received yet");
    };
    let Some(object) = req.object.take() else {
        return Decision::failure(settings.failure_mode, "the request carries no object");
    };
    let text = object.text();
    let (mut workload, replicas) = if scale {
        let Some(cached) = inputs.resources.workload(kind, &req.namespace, &req.name) else {
            return Decision::failure(
                settings.failure_mode,
                format!(
                    "{} {}/{} is not known to the admission controller yet",
                    kind.as_str(),
                    req.namespace,
                    req.name
                ),
            );
        };
        let replicas = match new_replicas(object.raw().unwrap_or_default()) {
            Ok(r) => r,
            Err(e) => return Decision::failure(settings.failure_mode, e),
        };
        if replicas == 0 {
            return Decision::plain(Outcome::Allowed, "scaling to zero");
        }
        match decode(kind, &cached.json) {
            Ok(w) => (Box::new(w), Some(replicas)),
            Err(e) => return Decision::failure(settings.failure_mode, e),
        }
    } else {
        match object.into_workload(kind) {
            Ok(w) => (w, None),
            Err(e) => return Decision::failure(settings.failure_mode, e),
        }
    };
    // A controlled object written by a controller is decided at its owner (the review's
    // decoder has not read its spec). Written by anyone else, the ownerReference is only the
    // writer's word — a pod naming some ReplicaSet — and the object is decided itself.
    let mut uncontrolled_writer = None;
    if !scale && let Some(owner) = workload.metadata().controller() {
        let user = req.user_info.username.as_ref();
        if settings.is_controller(user) {
            return Decision::bypass(format!(
                "controlled by {} {}, which is decided instead",
                owner.kind, owner.name
            ));
        }
        let whole = match whole_workload(kind, text) {
            Ok(w) => w,
            Err(e) => return Decision::failure(settings.failure_mode, e),
        };
        // Labels and annotations changed on an object of its controller's (`kubectl label
        // pod`, or a break-glass annotation added to a pod before `kubectl debug`): what the
        // controller's decision covered is unchanged.
        if operation == "UPDATE"
            && !matches!(req.old_object, "" | "null")
            && whole_workload(kind, req.old_object).is_ok_and(|old| same_spec(&whole, &old))
        {
            return Decision::bypass(format!(
                "controlled by {} {}, which is decided instead; the update leaves the spec as it was",
                owner.kind, owner.name
            ));
        }
        uncontrolled_writer = Some(format!(
            "The {} names {} {} as its controller, but {user} is not a workload controller, so the {} itself was evaluated.",
            kind.as_str(),
            owner.kind,
            owner.name,
            kind.as_str()
        ));
        *workload = whole;
    }
    let deployment_id = uid_of(&workload);
    let mut deployment = Deployment::from_owned(*workload, &req.namespace);
    if deployment.name.is_empty() {
        deployment.name = req.name.to_string();
    }
    if let Some(r) = replicas {
        deployment.replicas = Some(r);
    }
    judge(
        req,
        inputs,
        policies,
        deployment,
        deployment_id,
        uncontrolled_writer.as_deref(),
        |_| true,
    )
}

/// Whether an update leaves what policies read of a workload as it was: its replicas, its pod
/// template (for a pod, its spec: a pod's labels and annotations are its metadata).
fn same_spec(new: &Workload, old: &Workload) -> bool {
    new.replicas == old.replicas
        && new.template.spec == old.template.spec
        && (new.kind == WorkloadKind::Pod || new.template.metadata == old.template.metadata)
}

/// What Kubernetes forbids in an ephemeral container (ports, resources, probes): a policy on
/// any of these says nothing about one.
const NOT_IN_EPHEMERAL_CONTAINERS: [Field; 6] = [
    Field::ContainerCpuLimit,
    Field::ContainerCpuRequest,
    Field::ContainerMemoryLimit,
    Field::ContainerMemoryRequest,
    Field::LivenessProbeDefined,
    Field::ReadinessProbeDefined,
];

/// Whether every criterion of the policy is on a container's own settings (its image,
/// security context, environment, mounts), and can be violated by an ephemeral container:
/// none on the workload (its labels, replicas, host namespaces, which a container added to a
/// running pod does not change), none on what such a container cannot have.
fn on_ephemeral_containers(p: &CompiledPolicy) -> bool {
    p.sections.iter().all(|s| {
        s.stage(Stage::Deployment).is_empty()
            && s.groups
                .iter()
                .all(|g| !NOT_IN_EPHEMERAL_CONTAINERS.contains(&g.criterion.field))
    })
}

/// `pods/ephemeralcontainers`: containers added to a running pod (`kubectl debug`), a
/// privileged one as readily as any. The containers the request adds (those `oldObject` does
/// not have) are evaluated, as the pod's containers with the pod's settings, against the
/// enforced policies on containers' own settings; the pod's other containers were decided
/// with their workload.
fn ephemeral_containers(req: &mut Request<'_>, inputs: Inputs<'_>) -> Decision {
    let settings = inputs.settings;
    let Some(policies) = inputs.policies else {
        return Decision::failure(settings.failure_mode, "no policy set received yet");
    };
    let Some(object) = req.object.take() else {
        return Decision::failure(settings.failure_mode, "the request carries no object");
    };
    let mut pod = match whole_workload(WorkloadKind::Pod, object.text()) {
        Ok(w) => w,
        Err(e) => return Decision::failure(settings.failure_mode, e),
    };
    let before: Vec<String> = match req.old_object {
        "" | "null" => Vec::new(),
        old => match whole_workload(WorkloadKind::Pod, old) {
            Ok(w) => w
                .template
                .spec
                .ephemeral_containers
                .into_iter()
                .map(|c| c.name)
                .collect(),
            Err(e) => return Decision::failure(settings.failure_mode, format!("oldObject: {e}")),
        },
    };
    let spec = &mut pod.template.spec;
    let added: Vec<_> = std::mem::take(&mut spec.ephemeral_containers)
        .into_iter()
        .filter(|c| !before.contains(&c.name))
        .collect();
    if added.is_empty() {
        return Decision::plain(Outcome::Allowed, "no ephemeral container added");
    }
    let names = added
        .iter()
        .map(|c| format!("'{}'", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let note = format!(
        "Evaluated: the ephemeral container{} {names} being added to the running Pod (kubectl debug), against the enforced policies on containers.",
        if added.len() == 1 { "" } else { "s" }
    );
    spec.containers = added;
    spec.init_containers.clear();
    let deployment_id = uid_of(&pod);
    let mut deployment = Deployment::from_owned(pod, &req.namespace);
    if deployment.name.is_empty() {
        deployment.name = req.name.to_string();
    }
    let mut decision = judge(
        req,
        inputs,
        policies,
        deployment,
        deployment_id,
        Some(&note),
        on_ephemeral_containers,
    );
    // The alert belongs to the pod's workload, as a runtime alert on the pod would.
    let common = &mut decision.alerts.common;
    common.pod = req.name.to_string();
    if let Some(owner) = inputs.resources.owner_of_pod(&req.namespace, &req.name) {
        common.kind = owner.kind.as_str().to_string();
        common.name.clone_from(&owner.name);
        common.deployment_id.clone_from(&owner.uid);
    }
    decision
}

/// The decision on `deployment`, normalized from the request's object: the enforced policies
/// `which` selects evaluated, and a denial (with `note` under its first line), break-glass or
/// allowance, with its alerts.
fn judge(
    req: &Request<'_>,
    inputs: Inputs<'_>,
    policies: &PolicySet,
    mut deployment: Deployment,
    deployment_id: String,
    note: Option<&str>,
    which: impl Fn(&CompiledPolicy) -> bool,
) -> Decision {
    let settings = inputs.settings;
    let operation = req.operation.as_ref();
    let ctx = EvalContext {
        cluster: Some(&policies.cluster),
        ..EvalContext::default()
    };
    // Central's findings for the containers' images, for the image criteria. The policies on
    // image data alone can be violated only by an image with image data; without any, they are
    // not evaluated (they could only say "not evaluable"). Once the Sensor's view has arrived
    // (findings included), an image without findings is one Central has not scanned: where an
    // enforced policy tests that ("Images with no scans"), the Unscanned Image criterion then
    // holds for it, as at ACS's admission when its inline scan does not come; before, nothing
    // is known of it.
    let known_unscanned = policies.tests_unscanned && inputs.resources.synced;
    if inputs.resources.images() > 0 || known_unscanned {
        for c in &mut deployment.containers {
            c.image_data = inputs.resources.image(&c.image.full_name).cloned();
            if known_unscanned && c.image_data.is_none() {
                c.image_data = Some(ImageData::unscanned_shared());
            }
        }
    }
    // Images without findings are asked to be scanned, so that the next request is decided on
    // them. Not for a dry run: the webhook declares no side effects on those.
    let dry_run = req.dry_run == Some(true);
    let unscanned = policies.tests_image_data
        && deployment
            .containers
            .iter()
            .any(|c| c.image_data.as_ref().is_none_or(|d| !d.scanned));
    if unscanned
        && !dry_run
        && let Some(wants) = inputs.scan_wants
    {
        // One lock for the review's images.
        let images = deployment
            .containers
            .iter()
            .filter(|c| c.image_data.as_ref().is_none_or(|d| !d.scanned))
            .map(|c| c.image.full_name.as_str());
        wants.want_all(images, inputs.now_unix_ms);
    }
    let evaluated = if deployment.containers.iter().any(|c| c.image_data.is_some()) {
        policies.deploy.len()
    } else {
        // `deploy` is public: a bound past its end reads as its end.
        policies.image_from.min(policies.deploy.len())
    };
    let violated: Vec<Violated<'_>> = policies.deploy[..evaluated]
        .iter()
        .enumerate()
        .filter(|(_, p)| which(p))
        .filter_map(|(index, p)| violations(p, &deployment, &ctx).map(|v| (index, p, v)))
        .collect();
    let break_glass = settings.break_glass
        && BREAK_GLASS
            .iter()
            .any(|a| deployment.annotations.contains_key(*a));
    let warnings = if settings.warn_unenforced {
        unenforced_warnings(policies, &deployment, &ctx)
    } else {
        Vec::new()
    };
    if violated.is_empty() {
        let mut allowed = Decision::plain(Outcome::Allowed, "no enforced policy violated");
        allowed.answer.warnings = warnings;
        return allowed;
    }
    let action = if operation == "CREATE" {
        "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"
    } else {
        "FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT"
    };
    let names: Vec<String> = violated
        .iter()
        .map(|(_, p, _)| p.policy.name.clone())
        .collect();
    let violated_deploy = violated.iter().map(|(index, _, _)| *index).collect();
    let (answer, outcome, reason) = if break_glass {
        let answer = Answer {
            allowed: true,
            message: JsonText::default(),
            warnings: std::iter::once(format!(
                "Rampart: admitted with the break-glass annotation despite violating {}; this was recorded as an alert",
                names.join(", ")
            ))
            .chain(warnings)
            .collect(),
        };
        (answer, Outcome::BreakGlass, "break-glass annotation")
    } else {
        let answer = Answer {
            allowed: false,
            message: deny_message(
                policies,
                operation,
                &deployment,
                &violated,
                note,
                dry_run,
                settings.break_glass,
            ),
            warnings,
        };
        (answer, Outcome::Denied, "enforced policies violated")
    };
    let alerts = if dry_run {
        ReviewAlerts::default()
    } else {
        let enforcement_action = if break_glass { "" } else { action };
        ReviewAlerts {
            common: AdmissionAlert {
                namespace: deployment.namespace,
                name: deployment.name,
                kind: deployment.kind.as_str().to_string(),
                deployment_id,
                operation: operation.to_string(),
                user: req.user_info.username.to_string(),
                request_uid: req.uid.to_string(),
                break_glass,
                stage: WireStage::Deploy as i32,
                time_unix_ms: inputs.now_unix_ms,
                ..AdmissionAlert::default()
            },
            // The violations move into the alerts: the message has been written.
            policies: violated
                .into_iter()
                .map(|(_, p, violations)| PolicyAlert {
                    policy_id: p.policy.id.clone(),
                    violations,
                    enforcement_action: Cow::Borrowed(enforcement_action),
                })
                .collect(),
        }
    };
    Decision {
        answer,
        outcome,
        reason: reason.into(),
        violated: names,
        violated_deploy,
        alerts,
    }
}

/// A warning per enabled deploy-time policy the set does not enforce and the workload violates
/// (its name, severity and first violation; at most [`MAX_WARNINGS`], the last then saying how
/// many more), for `kubectl` to print: the developer learns of it at once, nothing is refused.
fn unenforced_warnings(
    policies: &PolicySet,
    deployment: &Deployment,
    ctx: &EvalContext<'_>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut more = 0;
    for p in &policies.unenforced {
        let Some(found) = violations(p, deployment, ctx) else {
            continue;
        };
        if warnings.len() == MAX_WARNINGS {
            more += 1;
            continue;
        }
        let first = found.first().map_or("violated", String::as_str);
        let mut w = format!(
            "Rampart: violates \"{}\" ({}, not enforced): {first}",
            p.policy.name,
            p.policy.severity.short()
        );
        if w.len() > MAX_WARNING_BYTES {
            let mut end = MAX_WARNING_BYTES - 3;
            while !w.is_char_boundary(end) {
                end -= 1;
            }
            w.truncate(end);
            w.push_str("...");
        }
        warnings.push(w);
    }
    if more > 0 {
        warnings.push(format!(
            "Rampart: and {more} more policies not enforced (rampart deployment check shows all)"
        ));
    }
    warnings
}

/// `spec.replicas` of a Scale object.
fn new_replicas(scale: &str) -> Result<i64, String> {
    #[derive(serde::Deserialize)]
    struct Scale {
        #[serde(default)]
        spec: ScaleSpec,
    }
    #[derive(serde::Deserialize, Default)]
    struct ScaleSpec {
        #[serde(default)]
        replicas: i64,
    }
    serde_json::from_str::<Scale>(scale)
        .map(|s| s.spec.replicas)
        .map_err(|e| format!("the Scale object does not decode: {e}"))
}

/// A policy's part of a denial up to its violations: its name, severity and texts.
pub(crate) fn policy_header(out: &mut String, p: &CompiledPolicy) {
    // Plain appends: a denial names several policies with their texts, and the formatting
    // machinery costs more than the copying.
    let policy = &p.policy;
    out.push_str("\nPolicy: ");
    out.push_str(&policy.name);
    out.push_str(" (severity ");
    out.push_str(policy.severity.short());
    out.push_str(")\n");
    for (name, text) in [
        ("Description", &policy.description),
        ("Rationale", &policy.rationale),
        ("Remediation", &policy.remediation),
    ] {
        let text = text.trim();
        if !text.is_empty() {
            out.push_str("- ");
            out.push_str(name);
            out.push_str(": ");
            out.push_str(text);
            out.push('\n');
        }
    }
    out.push_str("- Violations:\n");
}

/// A policy's part of a denial: [`policy_header`], then its violations.
fn policy_block(out: &mut JsonText, header: &JsonText, violations: &[String]) {
    out.push_json(header);
    for v in violations {
        out.push_escaped_literal("    - ");
        out.push_str(v);
        out.push_escaped_literal("\\n");
    }
}

/// A violated policy: its position in the set's `deploy`, the policy, its violations.
type Violated<'a> = (usize, &'a CompiledPolicy, Vec<String>);

fn deny_message(
    policies: &PolicySet,
    operation: &str,
    d: &Deployment,
    violated: &[Violated<'_>],
    note: Option<&str>,
    dry_run: bool,
    break_glass: bool,
) -> JsonText {
    let mut out = JsonText::with_capacity(4096);
    // Piece by piece: the formatting machinery costs more than the rest of the line.
    out.push_str("Rampart denied the ");
    match operation {
        "CREATE" => out.push_str("create"),
        "UPDATE" => out.push_str("update"),
        other => out.push_str(&other.to_lowercase()),
    }
    for piece in [" of ", d.kind.as_str(), " ", &d.namespace, "/", &d.name] {
        out.push_str(piece);
    }
    out.push_str(": it violates ");
    out.push_str(itoa::Buffer::new().format(violated.len()));
    out.push_str(if violated.len() == 1 {
        " enforced policy.\n"
    } else {
        " enforced policies.\n"
    });
    if let Some(note) = note {
        out.push_str(note);
        out.push_str("\n");
    }
    for (index, p, v) in violated {
        policy_block(&mut out, &policies.header(*index, p), v);
    }
    if violated
        .iter()
        .any(|(_, p, _)| crate::policies::tests_unscanned(p))
    {
        scan_note(&mut out, d, dry_run);
    }
    if break_glass {
        out.push_str(&format!(
            "\nIn an emergency, add the annotation {}=<reason or ticket> to the workload's metadata to bypass enforcement; the bypass raises an alert.",
            BREAK_GLASS[0]
        ));
    }
    out
}

/// What happens to the images a denial names as unscanned: they have been asked for (not by a
/// dry run), and the retry will be decided on their findings.
fn scan_note(out: &mut JsonText, d: &Deployment, dry_run: bool) {
    let mut images: Vec<&str> = Vec::new();
    for c in &d.containers {
        if c.image_data.as_ref().is_some_and(|d| !d.scanned)
            && !images.contains(&c.image.full_name.as_str())
        {
            images.push(&c.image.full_name);
        }
    }
    if images.is_empty() {
        return;
    }
    out.push_str("\nCentral has not scanned ");
    out.push_str(&images.join(", "));
    out.push_str(match (dry_run, images.len()) {
        (true, _) => " yet. A dry run asks for no scan: the first request that is not one does; retry once the scan is done (usually within a minute).\n",
        (false, 1) => " yet. Rampart has asked Central to scan it; retry once the scan is done (usually within a minute).\n",
        (false, _) => " yet. Rampart has asked Central to scan them; retry once the scans are done (usually within a minute).\n",
    });
}

/// `/events`: CONNECT of pods/exec, pods/attach and pods/portforward.
pub fn event(req: &Request<'_>, inputs: Inputs<'_>) -> Decision {
    let settings = inputs.settings;
    if req.operation != "CONNECT" {
        return Decision::bypass(format!("operation {} is not an event", req.operation));
    }
    let resource = match (req.resource.resource.as_ref(), req.sub_resource.as_ref()) {
        ("pods", "exec") => "PODS_EXEC",
        ("pods", "attach") => "PODS_ATTACH",
        ("pods", "portforward") => "PODS_PORTFORWARD",
        (r, s) => return Decision::bypass(format!("{r}/{s} is not a pod event")),
    };
    if let Some(d) = exempt(req, settings) {
        return d;
    }
    let Some(policies) = inputs.policies else {
        return Decision::failure(settings.failure_mode, "no policy set received yet");
    };
    if policies.events.is_empty() {
        return Decision::plain(Outcome::Allowed, "no Kubernetes-event policy");
    }
    let owner = inputs.resources.owner_of_pod(&req.namespace, &req.name);
    let deployment = owner
        .and_then(|w| decode(w.kind, &w.json).ok())
        .map(|w| Deployment::from_owned(w, &req.namespace))
        .or_else(|| {
            // Unknown pod: decided on the namespace and pod name alone.
            let stub =
                serde_json::json!({"metadata": {"name": req.name, "namespace": req.namespace}})
                    .to_string();
            decode(WorkloadKind::Pod, &stub)
                .ok()
                .map(|w| Deployment::from_owned(w, &req.namespace))
        });
    let Some(deployment) = deployment else {
        return Decision::failure(settings.failure_mode, "the pod could not be described");
    };
    let kube = KubeEvent {
        resource: resource.to_string(),
        verb: "CREATE".to_string(),
        object_name: req.name.to_string(),
        user: req.user_info.username.to_string(),
        groups: req.user_info.groups.iter().map(|g| g.to_string()).collect(),
        impersonated: false,
    };
    let ctx = EvalContext {
        cluster: Some(&policies.cluster),
        ..EvalContext::default()
    };
    let bypass = BYPASS_KUBE_EVENTS
        .iter()
        .any(|a| deployment.annotations.contains_key(*a));
    let mut denied: Vec<(&CompiledPolicy, Vec<String>)> = Vec::new();
    let mut alerts = ReviewAlerts {
        common: AdmissionAlert {
            namespace: deployment.namespace.clone(),
            name: deployment.name.clone(),
            kind: deployment.kind.as_str().to_string(),
            deployment_id: owner.map(|w| w.uid.clone()).unwrap_or_default(),
            operation: "CONNECT".to_string(),
            user: kube.user.clone(),
            request_uid: req.uid.to_string(),
            break_glass: false,
            stage: WireStage::Runtime as i32,
            time_unix_ms: inputs.now_unix_ms,
            pod: req.name.to_string(),
            ..AdmissionAlert::default()
        },
        policies: Vec::new(),
    };
    for p in &policies.events {
        let Eval::Violated(v) =
            evaluate_event(&p.compiled, &deployment, RuntimeEvent::Kube(&kube), &ctx)
        else {
            continue;
        };
        let deny = p.enforced && settings.enforce_events && !bypass;
        alerts.policies.push(PolicyAlert {
            policy_id: p.compiled.policy.id.clone(),
            violations: v.clone(),
            enforcement_action: Cow::Borrowed(if deny {
                "FAIL_KUBE_REQUEST_ENFORCEMENT"
            } else {
                ""
            }),
        });
        if deny {
            denied.push((&p.compiled, v));
        }
    }
    if req.dry_run == Some(true) {
        alerts.policies.clear();
    }
    if denied.is_empty() {
        let reason = if alerts.is_empty() {
            "no Kubernetes-event policy violated"
        } else {
            "violations raised as alerts, none enforced"
        };
        return Decision {
            alerts,
            ..Decision::plain(Outcome::Allowed, reason)
        };
    }
    let mut message = JsonText::from(format!(
        "Rampart denied {} pod {}/{}: it violates {} enforced {}.\n",
        match resource {
            "PODS_EXEC" => "exec into",
            "PODS_ATTACH" => "attaching to",
            _ => "port-forwarding to",
        },
        req.namespace,
        req.name,
        denied.len(),
        if denied.len() == 1 {
            "policy"
        } else {
            "policies"
        }
    ));
    // Events are rare next to deployments: their headers are written when needed.
    for (p, v) in &denied {
        policy_block(&mut message, &crate::policies::header_of(p), v);
    }
    Decision {
        answer: Answer {
            allowed: false,
            message,
            warnings: Vec::new(),
        },
        outcome: Outcome::Denied,
        reason: "enforced Kubernetes-event policies violated".into(),
        violated: denied.iter().map(|(p, _)| p.policy.name.clone()).collect(),
        violated_deploy: Vec::new(),
        alerts,
    }
}

#[cfg(test)]
mod tests;
