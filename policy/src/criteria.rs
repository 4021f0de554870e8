//! Every policy criterion (ACS's 79 field names plus Rampart's extensions): where it applies,
//! what its values look like, and what it needs to be evaluated.

use crate::policy::LifecycleStage::{self, Build, Deploy, Runtime};

/// What part of a deployment a criterion looks at. Criteria on the same element kind within a
/// section must match the same element (the same container, the same volume...), as in ACS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Deployment,
    Container,
    Port,
    Volume,
    Env,
    /// Process, network flow, Kubernetes event or audit log: only RUNTIME policies.
    Event,
}

/// What a criterion needs beyond the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Needs {
    Manifest,
    ImageData,
    ClusterRbac,
    ClusterNetworkPolicies,
    ClusterServices,
    RuntimeEvent,
}

impl Needs {
    /// How a "not evaluable" result names what is missing.
    pub fn describe(self) -> &'static str {
        match self {
            Needs::Manifest => "nothing",
            Needs::ImageData => "image scan data",
            Needs::ClusterRbac => "cluster context (RBAC)",
            Needs::ClusterNetworkPolicies => "cluster context (NetworkPolicies)",
            Needs::ClusterServices => "cluster context (Services)",
            Needs::RuntimeEvent => "runtime events",
        }
    }
}

/// The shape of a criterion's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    /// Whole-string, case-insensitive regular expression.
    Regex,
    /// Case-insensitive prefix (ACS's plain search match).
    Prefix,
    /// Number with an optional comparator: `0`, `> 0`, `<= 1024`, `>= 7.000000`.
    Number,
    /// Integer with an optional comparator (days, counts).
    Integer,
    /// `key=value`, both regular expressions, value optional.
    KeyValue,
    /// `SOURCE=NAME=VALUE` environment variables.
    EnvVar,
    /// Linux capability names (`SYS_ADMIN`, `CAP_NET_RAW`; `ALL` where allowed).
    Capability,
    /// One of a fixed set, compared case-insensitively.
    Enum(&'static [&'static str]),
    /// `INSTRUCTION=value` (Dockerfile Line).
    DockerfileLine,
    /// Vulnerability severity with an optional comparator.
    Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    AddCapabilities,
    AllowPrivilegeEscalation,
    AppArmorProfile,
    AutomountServiceAccountToken,
    ContainerCpuLimit,
    ContainerCpuRequest,
    ContainerMemoryLimit,
    ContainerMemoryRequest,
    ContainerName,
    Cve,
    Cvss,
    DaysSinceCveFixAvailable,
    DaysSinceCveFirstDiscoveredInImage,
    DaysSinceCveFirstDiscoveredInSystem,
    DaysSinceCvePublished,
    DisallowedAnnotation,
    DisallowedImageLabel,
    DockerfileLine,
    DropCapabilities,
    EnvironmentVariable,
    ExposedNodePort,
    ExposedPort,
    ExposedPortProtocol,
    FileOperation,
    FilePath,
    Fixable,
    FixedBy,
    HasEgressNetworkPolicy,
    HasIngressNetworkPolicy,
    HostIpc,
    HostNetwork,
    HostPid,
    ImageAge,
    ImageComponent,
    ImageOs,
    ImageRegistry,
    ImageRemote,
    ImageScanAge,
    ImageSignatureVerifiedBy,
    ImageTag,
    ImageUser,
    IsImpersonatedUser,
    KubernetesApiVerb,
    KubernetesResource,
    KubernetesResourceName,
    KubernetesUserGroups,
    KubernetesUserName,
    LivenessProbeDefined,
    MinimumRbacPermissions,
    MountPropagation,
    Namespace,
    NvdCvss,
    PortExposureMethod,
    PrivilegedContainer,
    ProcessAncestor,
    ProcessArguments,
    ProcessName,
    ProcessUid,
    ReadOnlyRootFilesystem,
    ReadinessProbeDefined,
    Replicas,
    RequiredAnnotation,
    RequiredImageLabel,
    RequiredLabel,
    RuntimeClass,
    SeccompProfileType,
    ServiceAccount,
    Severity,
    SourceIpAddress,
    UnexpectedNetworkFlowDetected,
    UnexpectedProcessExecuted,
    UnscannedImage,
    UserAgent,
    VolumeDestination,
    VolumeName,
    VolumeSource,
    VolumeType,
    WritableHostMount,
    WritableMountedVolume,
    // Rampart extensions (KubeLinter-class checks ACS has no criterion for).
    RunAsNonRoot,
    UnsafeSysctl,
    DuplicateEnvironmentVariable,
    SelectorMatchesPodLabels,
    UnmaskedProcMount,
    DeprecatedServiceAccountField,
}

#[derive(Debug)]
pub struct Criterion {
    pub field: Field,
    /// The `fieldName` in policy JSON.
    pub name: &'static str,
    pub stages: &'static [LifecycleStage],
    pub target: Target,
    pub needs: Needs,
    pub kind: ValueKind,
    pub negate_forbidden: bool,
    /// ACS "operatorsForbidden": exactly one value, no AND/OR.
    pub single_value: bool,
    /// Not an ACS criterion: a policy using it will not load in ACS.
    pub rampart_extension: bool,
}

const DR: &[LifecycleStage] = &[Deploy, Runtime];
const BDR: &[LifecycleStage] = &[Build, Deploy, Runtime];
const R: &[LifecycleStage] = &[Runtime];

const SECCOMP: &[&str] = &["UNCONFINED", "RUNTIME_DEFAULT", "LOCALHOST"];
const PROPAGATION: &[&str] = &["NONE", "HOSTTOCONTAINER", "BIDIRECTIONAL"];
const EXPOSURE: &[&str] = &["UNSET", "EXTERNAL", "NODE", "HOST", "INTERNAL", "ROUTE"];
const RBAC: &[&str] = &[
    "DEFAULT",
    "ELEVATED_IN_NAMESPACE",
    "ELEVATED_CLUSTER_WIDE",
    "CLUSTER_ADMIN",
];
const KUBE_RESOURCES: &[&str] = &[
    "PODS_EXEC",
    "PODS_PORTFORWARD",
    "PODS_ATTACH",
    "SECRETS",
    "CONFIGMAPS",
    "CLUSTER_ROLES",
    "CLUSTER_ROLE_BINDINGS",
    "NETWORK_POLICIES",
    "SECURITY_CONTEXT_CONSTRAINTS",
    "EGRESS_FIREWALLS",
];
const API_VERBS: &[&str] = &["CREATE", "DELETE", "GET", "PATCH", "UPDATE"];
const FILE_OPS: &[&str] = &[
    "OPEN",
    "CREATE",
    "RENAME",
    "UNLINK",
    "OWNERSHIP_CHANGE",
    "PERMISSION_CHANGE",
    "XATTR_CHANGE",
];

macro_rules! criterion {
    ($field:ident, $name:literal, $stages:expr, $target:ident, $needs:ident, $kind:expr $(, $flag:ident)*) => {
        Criterion {
            field: Field::$field,
            name: $name,
            stages: $stages,
            target: Target::$target,
            needs: Needs::$needs,
            kind: $kind,
            negate_forbidden: criterion!(@has no_negate $($flag)*),
            single_value: criterion!(@has single $($flag)*),
            rampart_extension: criterion!(@has extension $($flag)*),
        }
    };
    (@has $want:ident) => { false };
    (@has no_negate no_negate $($rest:ident)*) => { true };
    (@has single single $($rest:ident)*) => { true };
    (@has extension extension $($rest:ident)*) => { true };
    (@has $want:ident $other:ident $($rest:ident)*) => { criterion!(@has $want $($rest)*) };
}

use ValueKind as K;

/// All criteria, in ACS's order, then Rampart's extensions.
pub static CRITERIA: &[Criterion] = &[
    criterion!(
        AddCapabilities,
        "Add Capabilities",
        DR,
        Container,
        Manifest,
        K::Capability,
        no_negate
    ),
    criterion!(
        AllowPrivilegeEscalation,
        "Allow Privilege Escalation",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        AppArmorProfile,
        "AppArmor Profile",
        DR,
        Container,
        Manifest,
        K::Regex
    ),
    criterion!(
        AutomountServiceAccountToken,
        "Automount Service Account Token",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        ContainerCpuLimit,
        "Container CPU Limit",
        DR,
        Container,
        Manifest,
        K::Number,
        no_negate
    ),
    criterion!(
        ContainerCpuRequest,
        "Container CPU Request",
        DR,
        Container,
        Manifest,
        K::Number,
        no_negate
    ),
    criterion!(
        ContainerMemoryLimit,
        "Container Memory Limit",
        DR,
        Container,
        Manifest,
        K::Number,
        no_negate
    ),
    criterion!(
        ContainerMemoryRequest,
        "Container Memory Request",
        DR,
        Container,
        Manifest,
        K::Number,
        no_negate
    ),
    criterion!(
        ContainerName,
        "Container Name",
        DR,
        Container,
        Manifest,
        K::Regex
    ),
    criterion!(Cve, "CVE", BDR, Container, ImageData, K::Regex),
    criterion!(
        Cvss,
        "CVSS",
        BDR,
        Container,
        ImageData,
        K::Number,
        no_negate
    ),
    criterion!(
        DaysSinceCveFixAvailable,
        "Days Since CVE Fix Was Available",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        DaysSinceCveFirstDiscoveredInImage,
        "Days Since CVE Was First Discovered In Image",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        DaysSinceCveFirstDiscoveredInSystem,
        "Days Since CVE Was First Discovered In System",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        DaysSinceCvePublished,
        "Days Since CVE Was Published",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        DisallowedAnnotation,
        "Disallowed Annotation",
        DR,
        Deployment,
        Manifest,
        K::KeyValue,
        no_negate
    ),
    criterion!(
        DisallowedImageLabel,
        "Disallowed Image Label",
        BDR,
        Container,
        ImageData,
        K::KeyValue,
        no_negate
    ),
    criterion!(
        DockerfileLine,
        "Dockerfile Line",
        BDR,
        Container,
        ImageData,
        K::DockerfileLine,
        no_negate
    ),
    criterion!(
        DropCapabilities,
        "Drop Capabilities",
        DR,
        Container,
        Manifest,
        K::Capability,
        no_negate
    ),
    criterion!(
        EnvironmentVariable,
        "Environment Variable",
        DR,
        Env,
        Manifest,
        K::EnvVar,
        no_negate
    ),
    criterion!(
        ExposedNodePort,
        "Exposed Node Port",
        DR,
        Port,
        ClusterServices,
        K::Number
    ),
    criterion!(ExposedPort, "Exposed Port", DR, Port, Manifest, K::Number),
    criterion!(
        ExposedPortProtocol,
        "Exposed Port Protocol",
        DR,
        Port,
        Manifest,
        K::Prefix
    ),
    criterion!(
        FileOperation,
        "File Operation",
        R,
        Event,
        RuntimeEvent,
        K::Enum(FILE_OPS)
    ),
    criterion!(
        FilePath,
        "File Path",
        R,
        Event,
        RuntimeEvent,
        K::Regex,
        no_negate
    ),
    criterion!(
        Fixable,
        "Fixable",
        BDR,
        Container,
        ImageData,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(FixedBy, "Fixed By", BDR, Container, ImageData, K::Regex),
    criterion!(
        HasEgressNetworkPolicy,
        "Has Egress Network Policy",
        DR,
        Deployment,
        ClusterNetworkPolicies,
        K::Bool,
        single
    ),
    criterion!(
        HasIngressNetworkPolicy,
        "Has Ingress Network Policy",
        DR,
        Deployment,
        ClusterNetworkPolicies,
        K::Bool,
        single
    ),
    criterion!(
        HostIpc,
        "Host IPC",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        HostNetwork,
        "Host Network",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        HostPid,
        "Host PID",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        ImageAge,
        "Image Age",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        ImageComponent,
        "Image Component",
        BDR,
        Container,
        ImageData,
        K::KeyValue,
        no_negate
    ),
    criterion!(ImageOs, "Image OS", BDR, Container, ImageData, K::Regex),
    criterion!(
        ImageRegistry,
        "Image Registry",
        BDR,
        Container,
        Manifest,
        K::Regex
    ),
    criterion!(
        ImageRemote,
        "Image Remote",
        BDR,
        Container,
        Manifest,
        K::Regex
    ),
    criterion!(
        ImageScanAge,
        "Image Scan Age",
        BDR,
        Container,
        ImageData,
        K::Integer,
        no_negate,
        single
    ),
    criterion!(
        ImageSignatureVerifiedBy,
        "Image Signature Verified By",
        BDR,
        Container,
        ImageData,
        K::Regex,
        no_negate
    ),
    criterion!(ImageTag, "Image Tag", BDR, Container, Manifest, K::Regex),
    criterion!(ImageUser, "Image User", BDR, Container, ImageData, K::Regex),
    criterion!(
        IsImpersonatedUser,
        "Is Impersonated User",
        R,
        Event,
        RuntimeEvent,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        KubernetesApiVerb,
        "Kubernetes API Verb",
        R,
        Event,
        RuntimeEvent,
        K::Enum(API_VERBS),
        no_negate
    ),
    criterion!(
        KubernetesResource,
        "Kubernetes Resource",
        R,
        Event,
        RuntimeEvent,
        K::Enum(KUBE_RESOURCES),
        no_negate
    ),
    criterion!(
        KubernetesResourceName,
        "Kubernetes Resource Name",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        KubernetesUserGroups,
        "Kubernetes User Groups",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        KubernetesUserName,
        "Kubernetes User Name",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        LivenessProbeDefined,
        "Liveness Probe Defined",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        MinimumRbacPermissions,
        "Minimum RBAC Permissions",
        DR,
        Deployment,
        ClusterRbac,
        K::Enum(RBAC),
        single
    ),
    criterion!(
        MountPropagation,
        "Mount Propagation",
        DR,
        Volume,
        Manifest,
        K::Enum(PROPAGATION)
    ),
    criterion!(Namespace, "Namespace", DR, Deployment, Manifest, K::Regex),
    criterion!(
        NvdCvss,
        "NVD CVSS",
        BDR,
        Container,
        ImageData,
        K::Number,
        no_negate
    ),
    criterion!(
        PortExposureMethod,
        "Port Exposure Method",
        DR,
        Port,
        ClusterServices,
        K::Enum(EXPOSURE)
    ),
    criterion!(
        PrivilegedContainer,
        "Privileged Container",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        ProcessAncestor,
        "Process Ancestor",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        ProcessArguments,
        "Process Arguments",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        ProcessName,
        "Process Name",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        ProcessUid,
        "Process UID",
        R,
        Event,
        RuntimeEvent,
        K::Integer
    ),
    criterion!(
        ReadOnlyRootFilesystem,
        "Read-Only Root Filesystem",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        ReadinessProbeDefined,
        "Readiness Probe Defined",
        DR,
        Container,
        Manifest,
        K::Bool,
        single
    ),
    criterion!(Replicas, "Replicas", DR, Deployment, Manifest, K::Number),
    criterion!(
        RequiredAnnotation,
        "Required Annotation",
        DR,
        Deployment,
        Manifest,
        K::KeyValue,
        no_negate
    ),
    criterion!(
        RequiredImageLabel,
        "Required Image Label",
        BDR,
        Container,
        ImageData,
        K::KeyValue,
        no_negate
    ),
    criterion!(
        RequiredLabel,
        "Required Label",
        DR,
        Deployment,
        Manifest,
        K::KeyValue,
        no_negate
    ),
    criterion!(
        RuntimeClass,
        "Runtime Class",
        DR,
        Deployment,
        Manifest,
        K::Regex
    ),
    criterion!(
        SeccompProfileType,
        "Seccomp Profile Type",
        DR,
        Container,
        Manifest,
        K::Enum(SECCOMP),
        single
    ),
    criterion!(
        ServiceAccount,
        "Service Account",
        DR,
        Deployment,
        Manifest,
        K::Regex
    ),
    criterion!(
        Severity,
        "Severity",
        BDR,
        Container,
        ImageData,
        K::Severity,
        no_negate
    ),
    criterion!(
        SourceIpAddress,
        "Source IP Address",
        R,
        Event,
        RuntimeEvent,
        K::Regex
    ),
    criterion!(
        UnexpectedNetworkFlowDetected,
        "Unexpected Network Flow Detected",
        R,
        Event,
        RuntimeEvent,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        UnexpectedProcessExecuted,
        "Unexpected Process Executed",
        R,
        Event,
        RuntimeEvent,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        UnscannedImage,
        "Unscanned Image",
        BDR,
        Container,
        ImageData,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(UserAgent, "User Agent", R, Event, RuntimeEvent, K::Regex),
    criterion!(
        VolumeDestination,
        "Volume Destination",
        DR,
        Volume,
        Manifest,
        K::Regex
    ),
    criterion!(VolumeName, "Volume Name", DR, Volume, Manifest, K::Regex),
    criterion!(
        VolumeSource,
        "Volume Source",
        DR,
        Volume,
        Manifest,
        K::Regex
    ),
    criterion!(VolumeType, "Volume Type", DR, Volume, Manifest, K::Regex),
    criterion!(
        WritableHostMount,
        "Writable Host Mount",
        DR,
        Volume,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        WritableMountedVolume,
        "Writable Mounted Volume",
        DR,
        Volume,
        Manifest,
        K::Bool,
        no_negate,
        single
    ),
    criterion!(
        RunAsNonRoot,
        "Run As Non-Root",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
    criterion!(
        UnsafeSysctl,
        "Unsafe Sysctl",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
    criterion!(
        DuplicateEnvironmentVariable,
        "Duplicate Environment Variable",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
    criterion!(
        SelectorMatchesPodLabels,
        "Selector Matches Pod Labels",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
    criterion!(
        UnmaskedProcMount,
        "Unmasked Proc Mount",
        DR,
        Container,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
    criterion!(
        DeprecatedServiceAccountField,
        "Deprecated Service Account Field",
        DR,
        Deployment,
        Manifest,
        K::Bool,
        no_negate,
        single,
        extension
    ),
];

/// Looks a criterion up by its exact `fieldName`.
pub fn lookup(name: &str) -> Option<&'static Criterion> {
    CRITERIA.iter().find(|c| c.name == name)
}

/// The closest known field name, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    CRITERIA
        .iter()
        .map(|c| {
            let candidate = c.name.to_ascii_lowercase();
            let d = if candidate.contains(&lower) || lower.contains(&candidate) {
                0
            } else {
                edit_distance(&lower, &candidate)
            };
            (d, c.name)
        })
        .filter(|(d, n)| *d <= 3.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_79_acs_criteria_are_known_once() {
        let acs: Vec<_> = CRITERIA.iter().filter(|c| !c.rampart_extension).collect();
        assert_eq!(acs.len(), 79);
        let mut names: Vec<_> = CRITERIA.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CRITERIA.len());
    }

    #[test]
    fn suggests_near_misses() {
        assert_eq!(suggest("Privileged"), Some("Privileged Container"));
        assert_eq!(suggest("image tag"), Some("Image Tag"));
        assert_eq!(suggest("Completely Different Thing"), None);
    }
}
