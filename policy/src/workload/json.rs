//! The workload decoder for JSON text the admission controller reads on every request: the same
//! fields and the same rules as the serde decoder above (`null` where Kubernetes allows it,
//! unknown fields skipped, whole numbers where a field is an integer, required fields required),
//! read straight off a [`Scanner`] — keys matched as borrowed text, skipped values passed over by
//! their brackets, no visitor per field and no large `Option<struct>` moved through
//! deserializers. On the typical UPDATE review this is the larger half of a decision's cost.
//!
//! It is the fast path, not the reference: where it refuses an object it says only where, and
//! the caller decodes that object with serde for the full message (serde also reads the rare
//! shapes this does not, such as a struct written as an array). A test decodes every workload
//! in the corpus both ways and requires the same result.

use std::collections::BTreeMap;

use super::{
    AppArmorProfile, Capabilities, ClaimSource, Container, ContainerPort, ContainerSecurityContext,
    ControllerSpec, CpuMemory, CronJobSpec, CsiSource, Env, EnvSourceRef, FieldRef, ImageSource,
    JobSpec, JobTemplate, KeyRef, LabelSelector, Meta, NamedSource, NfsSource, Object,
    OwnerReference, PathSource, PodSecurityContext, PodSpec, PodTemplate, Quantity,
    ResourceFieldRef, ResourceRequirements, SeccompProfile, SecretSource, Selector,
    SelectorRequirement, Sysctl, Volume, VolumeMount, Workload,
};
use crate::deployment::WorkloadKind;
use crate::scan::{ScanError, Scanner};
use serde::de::IgnoredAny;

type Result<T> = std::result::Result<T, ScanError>;

/// Which objects' `spec` the decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// Every object's.
    Always,
    /// Not that of an object whose metadata, read before it, names a controlling owner
    /// ([`Meta::controlled`]): such an object is decided at its owner, from its metadata alone
    /// — the pods a ReplicaSet creates, the most frequent admission request of a cluster. The
    /// spec is still passed over as well-formed JSON, and read after all where it was if the
    /// object turns out not to be controlled (a later `metadata` key).
    ///
    /// [`Meta::controlled`]: super::Meta::controlled
    UnlessControlled,
}

/// Decodes the workload of `kind` that is the scanner's next value.
pub fn decode(kind: WorkloadKind, s: &mut Scanner<'_>) -> Result<Workload> {
    decode_with(kind, s, Spec::Always)
}

/// [`decode`], reading the spec as `when` says.
pub fn decode_with(kind: WorkloadKind, s: &mut Scanner<'_>, when: Spec) -> Result<Workload> {
    use WorkloadKind::*;
    Ok(match kind {
        Deployment | StatefulSet | DaemonSet | ReplicaSet => {
            let o = object(s, |s| controller_spec(s, label_selector), when)?;
            Workload::controller(kind, o, Selector::Label)
        }
        ReplicationController | DeploymentConfig => {
            let o = object(s, |s| controller_spec(s, string_map), when)?;
            Workload::controller(kind, o, Selector::Map)
        }
        Job => {
            let o = object(s, job_spec, when)?;
            Workload::job(kind, o.metadata, o.spec)
        }
        CronJob => {
            let o = object(s, cron_job_spec, when)?;
            let spec = o.spec.and_then(|s| s.job_template).and_then(|t| t.spec);
            Workload::job(kind, o.metadata, spec)
        }
        Pod => {
            let o = object(s, pod_spec, when)?;
            Workload::pod(o.metadata, o.spec)
        }
    })
}

/// Walks the object that is the next value, handing each key to `field`, which reads (or
/// skips) its value.
fn fields<'a>(
    s: &mut Scanner<'a>,
    mut field: impl FnMut(&mut Scanner<'a>, &str) -> Result<()>,
) -> Result<()> {
    each_field(s, &mut field)
}

/// [`fields`]' loop, compiled once: the key scan is inlined here, and each object's own match
/// is called through `field`.
fn each_field<'a>(
    s: &mut Scanner<'a>,
    field: &mut dyn FnMut(&mut Scanner<'a>, &str) -> Result<()>,
) -> Result<()> {
    s.begin_object()?;
    while let Some(key) = s.next_key()? {
        field(s, &key)?;
    }
    Ok(())
}

/// The array that is the next value, each element read by `element`.
fn array<'a, T>(
    s: &mut Scanner<'a>,
    mut element: impl FnMut(&mut Scanner<'a>) -> Result<T>,
) -> Result<Vec<T>> {
    s.begin_array()?;
    let mut out = Vec::new();
    while s.next_element()? {
        out.push(element(s)?);
    }
    Ok(out)
}

/// [`array`] into `out` (emptied first), each element read in place into a default one by
/// `element`: no element (a container is some 400 bytes) is moved through a `Result`, a push and
/// the closures between them.
fn array_into<'a, T: Default>(
    s: &mut Scanner<'a>,
    out: &mut Vec<T>,
    mut element: impl FnMut(&mut Scanner<'a>, &mut T) -> Result<()>,
) -> Result<()> {
    out.clear();
    s.begin_array()?;
    while s.next_element()? {
        out.push(T::default());
        if let Some(last) = out.last_mut() {
            element(s, last)?;
        }
    }
    Ok(())
}

/// A list field read in place: `null` is the empty list.
fn nullable_array_into<'a, T: Default>(
    s: &mut Scanner<'a>,
    out: &mut Vec<T>,
    element: impl FnMut(&mut Scanner<'a>, &mut T) -> Result<()>,
) -> Result<()> {
    if s.null() {
        out.clear();
        return Ok(());
    }
    array_into(s, out, element)
}

/// A struct field read in place, starting from its default (a repeated key replaces the whole
/// value, as serde does); `null` reads as the default.
fn nullable_into<'a, T: Default>(
    s: &mut Scanner<'a>,
    slot: &mut T,
    read: impl FnOnce(&mut Scanner<'a>, &mut T) -> Result<()>,
) -> Result<()> {
    *slot = T::default();
    if s.null() {
        return Ok(());
    }
    read(s, slot)
}

/// An optional struct field read in place: `null` is `None`.
fn option_into<'a, T: Default>(
    s: &mut Scanner<'a>,
    slot: &mut Option<T>,
    read: impl FnOnce(&mut Scanner<'a>, &mut T) -> Result<()>,
) -> Result<()> {
    if s.null() {
        *slot = None;
        return Ok(());
    }
    read(s, slot.insert(T::default()))
}

/// `Option<T>`: `null` is `None`.
fn option<'a, T>(
    s: &mut Scanner<'a>,
    read: impl FnOnce(&mut Scanner<'a>) -> Result<T>,
) -> Result<Option<T>> {
    if s.null() {
        Ok(None)
    } else {
        read(s).map(Some)
    }
}

/// A field that reads `null` as its default.
fn nullable<'a, T: Default>(
    s: &mut Scanner<'a>,
    read: impl FnOnce(&mut Scanner<'a>) -> Result<T>,
) -> Result<T> {
    option(s, read).map(Option::unwrap_or_default)
}

fn skip(s: &mut Scanner<'_>) -> Result<()> {
    s.value().map(drop)
}

/// A value only whose presence matters (a probe, an `emptyDir`).
fn present(s: &mut Scanner<'_>) -> Result<Option<IgnoredAny>> {
    option(s, |s| skip(s).map(|()| IgnoredAny))
}

fn string(s: &mut Scanner<'_>) -> Result<String> {
    Ok(s.string()?.into_owned())
}

fn opt_string(s: &mut Scanner<'_>) -> Result<Option<String>> {
    option(s, string)
}

fn opt_bool(s: &mut Scanner<'_>) -> Result<Option<bool>> {
    option(s, Scanner::boolean)
}

fn opt_i64(s: &mut Scanner<'_>) -> Result<Option<i64>> {
    option(s, Scanner::integer)
}

fn i32(s: &mut Scanner<'_>) -> Result<i32> {
    let mark = s.mark();
    let n = s.integer()?;
    i32::try_from(n).map_err(|_| {
        s.reset(mark);
        s.error_here("number out of range for a 32-bit integer")
    })
}

fn opt_i32(s: &mut Scanner<'_>) -> Result<Option<i32>> {
    option(s, i32)
}

fn strings(s: &mut Scanner<'_>) -> Result<Vec<String>> {
    nullable(s, |s| array(s, string))
}

fn string_map(s: &mut Scanner<'_>) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    fields(s, |s, key| {
        map.insert(key.to_string(), string(s)?);
        Ok(())
    })?;
    Ok(map)
}

fn nullable_map(s: &mut Scanner<'_>) -> Result<BTreeMap<String, String>> {
    nullable(s, string_map)
}

/// A field serde requires: its absence is an error at the end of its object.
fn required<T>(s: &Scanner<'_>, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| s.error_here("missing field"))
}

/// `{metadata, spec}`; everything else (`apiVersion`, `kind`, `status`) skipped, and the spec
/// too where `when` allows.
fn object<'a, S>(
    s: &mut Scanner<'a>,
    spec: impl Fn(&mut Scanner<'a>) -> Result<S>,
    when: Spec,
) -> Result<Object<S>> {
    let mut o = Object {
        metadata: Meta::default(),
        spec: None,
    };
    // Where the spec passed over is, to read it after all should the object not be controlled.
    let mut passed = None;
    fields(s, |s, key| {
        match key {
            "metadata" => o.metadata = nullable(s, meta)?,
            "spec" if when == Spec::UnlessControlled && o.metadata.controlled() => {
                passed = Some(s.mark());
                o.spec = None;
                skip(s)?;
            }
            "spec" => {
                passed = None;
                o.spec = option(s, &spec)?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })?;
    if let Some(at) = passed
        && !o.metadata.controlled()
    {
        let end = s.mark();
        s.reset(at);
        o.spec = option(s, &spec)?;
        s.reset(end);
    }
    Ok(o)
}

fn meta(s: &mut Scanner<'_>) -> Result<Meta> {
    let mut m = Meta::default();
    fields(s, |s, key| {
        match key {
            "name" => m.name = opt_string(s)?,
            "generateName" => m.generate_name = opt_string(s)?,
            "namespace" => m.namespace = opt_string(s)?,
            "uid" => m.uid = opt_string(s)?,
            "labels" => m.labels = nullable_map(s)?,
            "annotations" => m.annotations = nullable_map(s)?,
            "ownerReferences" => m.owner_references = nullable(s, |s| array(s, owner_reference))?,
            // managedFields, the largest part of most objects, among them.
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn owner_reference(s: &mut Scanner<'_>) -> Result<OwnerReference> {
    let mut r = OwnerReference::default();
    fields(s, |s, key| {
        match key {
            "apiVersion" => r.api_version = string(s)?,
            "kind" => r.kind = string(s)?,
            "name" => r.name = string(s)?,
            "uid" => r.uid = string(s)?,
            "controller" => r.controller = opt_bool(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(r)
}

fn label_selector(s: &mut Scanner<'_>) -> Result<LabelSelector> {
    let mut l = LabelSelector::default();
    fields(s, |s, key| {
        match key {
            "matchLabels" => l.match_labels = nullable_map(s)?,
            "matchExpressions" => {
                l.match_expressions = nullable(s, |s| array(s, selector_requirement))?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(l)
}

fn selector_requirement(s: &mut Scanner<'_>) -> Result<SelectorRequirement> {
    let (mut key_, mut operator, mut values) = (None, None, Vec::new());
    fields(s, |s, key| {
        match key {
            "key" => key_ = Some(string(s)?),
            "operator" => operator = Some(string(s)?),
            "values" => values = strings(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(SelectorRequirement {
        key: required(s, key_)?,
        operator: required(s, operator)?,
        values,
    })
}

fn controller_spec<'a, Sel>(
    s: &mut Scanner<'a>,
    selector: fn(&mut Scanner<'a>) -> Result<Sel>,
) -> Result<ControllerSpec<Sel>> {
    let mut c = ControllerSpec {
        replicas: None,
        selector: None,
        template: PodTemplate::default(),
    };
    fields(s, |s, key| {
        match key {
            "replicas" => c.replicas = opt_i32(s)?,
            "selector" => c.selector = option(s, selector)?,
            "template" => nullable_into(s, &mut c.template, pod_template)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(c)
}

fn job_spec(s: &mut Scanner<'_>) -> Result<JobSpec> {
    let mut j = JobSpec {
        parallelism: None,
        manual_selector: None,
        selector: None,
        template: PodTemplate::default(),
    };
    fields(s, |s, key| {
        match key {
            "parallelism" => j.parallelism = opt_i32(s)?,
            "manualSelector" => j.manual_selector = opt_bool(s)?,
            "selector" => j.selector = option(s, label_selector)?,
            "template" => nullable_into(s, &mut j.template, pod_template)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(j)
}

fn cron_job_spec(s: &mut Scanner<'_>) -> Result<CronJobSpec> {
    let mut c = CronJobSpec { job_template: None };
    fields(s, |s, key| {
        match key {
            "jobTemplate" => {
                c.job_template = option(s, |s| {
                    let mut t = JobTemplate { spec: None };
                    fields(s, |s, key| {
                        match key {
                            "spec" => t.spec = option(s, job_spec)?,
                            _ => skip(s)?,
                        }
                        Ok(())
                    })?;
                    Ok(t)
                })?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(c)
}

fn pod_template(s: &mut Scanner<'_>, t: &mut PodTemplate) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "metadata" => t.metadata = nullable(s, meta)?,
            "spec" => nullable_into(s, &mut t.spec, pod_spec_into)?,
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn pod_spec(s: &mut Scanner<'_>) -> Result<PodSpec> {
    let mut p = PodSpec::default();
    pod_spec_into(s, &mut p)?;
    Ok(p)
}

fn pod_spec_into(s: &mut Scanner<'_>, p: &mut PodSpec) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "serviceAccountName" => p.service_account_name = opt_string(s)?,
            "serviceAccount" => p.service_account = opt_string(s)?,
            "automountServiceAccountToken" => p.automount_service_account_token = opt_bool(s)?,
            "hostNetwork" => p.host_network = opt_bool(s)?,
            "hostPID" => p.host_pid = opt_bool(s)?,
            "hostIPC" => p.host_ipc = opt_bool(s)?,
            "runtimeClassName" => p.runtime_class_name = opt_string(s)?,
            "securityContext" => p.security_context = option(s, pod_security_context)?,
            "volumes" => nullable_array_into(s, &mut p.volumes, volume)?,
            "initContainers" => nullable_array_into(s, &mut p.init_containers, container)?,
            "containers" => nullable_array_into(s, &mut p.containers, container)?,
            "ephemeralContainers" => {
                nullable_array_into(s, &mut p.ephemeral_containers, container)?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn pod_security_context(s: &mut Scanner<'_>) -> Result<PodSecurityContext> {
    let mut c = PodSecurityContext::default();
    fields(s, |s, key| {
        match key {
            "runAsUser" => c.run_as_user = opt_i64(s)?,
            "runAsGroup" => c.run_as_group = opt_i64(s)?,
            "runAsNonRoot" => c.run_as_non_root = opt_bool(s)?,
            "seccompProfile" => c.seccomp_profile = option(s, seccomp_profile)?,
            "appArmorProfile" => c.app_armor_profile = option(s, app_armor_profile)?,
            "sysctls" => c.sysctls = nullable(s, |s| array(s, sysctl))?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(c)
}

fn sysctl(s: &mut Scanner<'_>) -> Result<Sysctl> {
    let (mut name, mut value) = (None, String::new());
    fields(s, |s, key| {
        match key {
            "name" => name = Some(string(s)?),
            "value" => value = string(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(Sysctl {
        name: required(s, name)?,
        value,
    })
}

/// A struct whose only field Rampart reads is the string `field` (`""` when absent).
fn one_string(s: &mut Scanner<'_>, field: &str) -> Result<String> {
    let mut value = String::new();
    fields(s, |s, key| {
        if key == field {
            value = string(s)?;
        } else {
            skip(s)?;
        }
        Ok(())
    })?;
    Ok(value)
}

/// A struct whose only field Rampart reads is the optional string `field`.
fn one_opt_string(s: &mut Scanner<'_>, field: &str) -> Result<Option<String>> {
    let mut value = None;
    fields(s, |s, key| {
        if key == field {
            value = opt_string(s)?;
        } else {
            skip(s)?;
        }
        Ok(())
    })?;
    Ok(value)
}

fn seccomp_profile(s: &mut Scanner<'_>) -> Result<SeccompProfile> {
    Ok(SeccompProfile {
        type_: one_string(s, "type")?,
    })
}

fn app_armor_profile(s: &mut Scanner<'_>) -> Result<AppArmorProfile> {
    let mut p = AppArmorProfile::default();
    fields(s, |s, key| {
        match key {
            "type" => p.type_ = string(s)?,
            "localhostProfile" => p.localhost_profile = opt_string(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(p)
}

fn container(s: &mut Scanner<'_>, c: &mut Container) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "name" => c.name = string(s)?,
            "image" => c.image = opt_string(s)?,
            "securityContext" => {
                option_into(s, &mut c.security_context, container_security_context)?;
            }
            "env" => nullable_array_into(s, &mut c.env, env)?,
            "resources" => option_into(s, &mut c.resources, resources)?,
            "volumeMounts" => nullable_array_into(s, &mut c.volume_mounts, volume_mount)?,
            "ports" => nullable_array_into(s, &mut c.ports, container_port)?,
            "livenessProbe" => c.liveness_probe = present(s)?,
            "readinessProbe" => c.readiness_probe = present(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn container_security_context(s: &mut Scanner<'_>, c: &mut ContainerSecurityContext) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "privileged" => c.privileged = opt_bool(s)?,
            "capabilities" => {
                c.capabilities = option(s, |s| {
                    let mut caps = Capabilities::default();
                    fields(s, |s, key| {
                        match key {
                            "add" => caps.add = strings(s)?,
                            "drop" => caps.drop = strings(s)?,
                            _ => skip(s)?,
                        }
                        Ok(())
                    })?;
                    Ok(caps)
                })?;
            }
            "allowPrivilegeEscalation" => c.allow_privilege_escalation = opt_bool(s)?,
            "seccompProfile" => c.seccomp_profile = option(s, seccomp_profile)?,
            "appArmorProfile" => c.app_armor_profile = option(s, app_armor_profile)?,
            "readOnlyRootFilesystem" => c.read_only_root_filesystem = opt_bool(s)?,
            "runAsUser" => c.run_as_user = opt_i64(s)?,
            "runAsGroup" => c.run_as_group = opt_i64(s)?,
            "runAsNonRoot" => c.run_as_non_root = opt_bool(s)?,
            "procMount" => c.proc_mount = opt_string(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn env(s: &mut Scanner<'_>, e: &mut Env) -> Result<()> {
    let mut named = false;
    fields(s, |s, key| {
        match key {
            "name" => {
                e.name = string(s)?;
                named = true;
            }
            "value" => e.value = opt_string(s)?,
            "valueFrom" => option_into(s, &mut e.value_from, env_source)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    required(s, named.then_some(()))
}

fn env_source(s: &mut Scanner<'_>, r: &mut Box<EnvSourceRef>) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "secretKeyRef" => r.secret_key_ref = option(s, key_ref)?,
            "configMapKeyRef" => r.config_map_key_ref = option(s, key_ref)?,
            "fieldRef" => {
                r.field_ref = option(s, |s| {
                    Ok(FieldRef {
                        field_path: one_string(s, "fieldPath")?,
                    })
                })?;
            }
            "resourceFieldRef" => {
                r.resource_field_ref = option(s, |s| {
                    Ok(ResourceFieldRef {
                        resource: one_string(s, "resource")?,
                    })
                })?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn key_ref(s: &mut Scanner<'_>) -> Result<KeyRef> {
    let mut r = KeyRef::default();
    fields(s, |s, key| {
        match key {
            "name" => r.name = string(s)?,
            "key" => r.key = string(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(r)
}

fn resources(s: &mut Scanner<'_>, r: &mut ResourceRequirements) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "requests" => r.requests = nullable(s, cpu_memory)?,
            "limits" => r.limits = nullable(s, cpu_memory)?,
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn cpu_memory(s: &mut Scanner<'_>) -> Result<CpuMemory> {
    let mut c = CpuMemory::default();
    fields(s, |s, key| {
        match key {
            "cpu" => c.cpu = option(s, quantity)?,
            "memory" => c.memory = option(s, quantity)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(c)
}

/// A quantity: a string, or a number written as serde_json reads it (whole numbers as
/// themselves, others through `f64`).
fn quantity(s: &mut Scanner<'_>) -> Result<Quantity> {
    if s.at_string() {
        return Ok(Quantity(crate::quantity::parse_quantity(&s.string()?)));
    }
    let text = s.number()?;
    let whole = !text.contains(['.', 'e', 'E']);
    let value = match (text.parse::<u64>(), text.parse::<i64>()) {
        (Ok(n), _) if whole => n as f64,
        (_, Ok(n)) if whole && n != 0 => n as f64,
        // Beyond 64 bits, a fraction, an exponent, or `-0` (kept signed, as serde reads it):
        // as the float it is.
        _ => text
            .parse::<f64>()
            .map_err(|_| s.error_here("expected a number"))?,
    };
    Ok(Quantity(Some(value)))
}

fn volume_mount(s: &mut Scanner<'_>, m: &mut VolumeMount) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "name" => m.name = string(s)?,
            "mountPath" => m.mount_path = string(s)?,
            "readOnly" => m.read_only = opt_bool(s)?,
            "mountPropagation" => m.mount_propagation = opt_string(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })
}

fn container_port(s: &mut Scanner<'_>, p: &mut ContainerPort) -> Result<()> {
    let mut numbered = false;
    fields(s, |s, key| {
        match key {
            "name" => p.name = opt_string(s)?,
            "containerPort" => {
                p.container_port = i32(s)?;
                numbered = true;
            }
            "protocol" => p.protocol = opt_string(s)?,
            "hostPort" => p.host_port = opt_i32(s)?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    required(s, numbered.then_some(()))
}

fn volume(s: &mut Scanner<'_>, v: &mut Volume) -> Result<()> {
    fields(s, |s, key| {
        match key {
            "name" => v.name = string(s)?,
            "hostPath" => {
                v.host_path = option(s, |s| {
                    Ok(PathSource {
                        path: one_string(s, "path")?,
                    })
                })?;
            }
            "secret" => {
                v.secret = option(s, |s| {
                    Ok(SecretSource {
                        secret_name: one_opt_string(s, "secretName")?,
                    })
                })?;
            }
            "configMap" => {
                v.config_map = option(s, |s| {
                    Ok(NamedSource {
                        name: one_string(s, "name")?,
                    })
                })?;
            }
            "emptyDir" => v.empty_dir = present(s)?,
            "persistentVolumeClaim" => {
                v.persistent_volume_claim = option(s, |s| {
                    Ok(ClaimSource {
                        claim_name: one_string(s, "claimName")?,
                    })
                })?;
            }
            "projected" => v.projected = present(s)?,
            "downwardAPI" => v.downward_api = present(s)?,
            "nfs" => {
                v.nfs = option(s, |s| {
                    let mut n = NfsSource::default();
                    fields(s, |s, key| {
                        match key {
                            "server" => n.server = string(s)?,
                            "path" => n.path = string(s)?,
                            _ => skip(s)?,
                        }
                        Ok(())
                    })?;
                    Ok(n)
                })?;
            }
            "csi" => {
                v.csi = option(s, |s| {
                    Ok(CsiSource {
                        driver: one_string(s, "driver")?,
                    })
                })?;
            }
            "ephemeral" => v.ephemeral = present(s)?,
            "image" => {
                v.image = option(s, |s| {
                    Ok(ImageSource {
                        reference: one_opt_string(s, "reference")?,
                    })
                })?;
            }
            _ => skip(s)?,
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
