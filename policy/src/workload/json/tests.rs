//! The fast decoder against serde's, the reference: the corpus and thousands of generated
//! objects of every kind — every field Rampart reads, `null`s, wrong types, numbers in every
//! JSON form, escapes, unknown fields, any order and spacing — must decode to the same workload,
//! or be refused by both.

use super::{Spec, decode, decode_with};
use crate::deployment::WorkloadKind;
use crate::scan::Scanner;
use crate::workload::{Workload, decode_workload};

use Shape::*;

/// What a field holds, to generate it.
#[derive(Clone)]
enum Shape {
    Str,
    /// One of these strings (JSON text).
    Pick(&'static [&'static str]),
    Bool,
    Int,
    Int32,
    Quantity,
    StrMap,
    StrList,
    /// Any JSON (skipped by both decoders, or only present).
    Any,
    /// Fields: name, shape, required.
    Obj(Vec<(&'static str, Shape, bool)>),
    List(Box<Shape>),
}

fn obj(fields: &[(&'static str, Shape)]) -> Shape {
    Obj(fields.iter().map(|(n, s)| (*n, s.clone(), false)).collect())
}

fn list(s: Shape) -> Shape {
    List(Box::new(s))
}

fn meta() -> Shape {
    obj(&[
        ("name", Str),
        ("generateName", Str),
        ("namespace", Str),
        ("uid", Str),
        ("resourceVersion", Str),
        ("labels", StrMap),
        ("annotations", StrMap),
        (
            "ownerReferences",
            list(obj(&[
                ("apiVersion", Pick(OWNER_API_VERSIONS)),
                ("kind", Pick(OWNER_KINDS)),
                ("name", Str),
                ("uid", Str),
                ("controller", Bool),
            ])),
        ),
        ("managedFields", Any),
    ])
}

fn label_selector() -> Shape {
    obj(&[
        ("matchLabels", StrMap),
        (
            "matchExpressions",
            list(Obj(vec![
                ("key", Str, true),
                ("operator", Str, true),
                ("values", StrList, false),
            ])),
        ),
    ])
}

fn seccomp() -> Shape {
    obj(&[("type", Str)])
}

fn apparmor() -> Shape {
    obj(&[("type", Str), ("localhostProfile", Str)])
}

fn container() -> Shape {
    let key_ref = obj(&[("name", Str), ("key", Str)]);
    let cpu_memory = obj(&[
        ("cpu", Quantity),
        ("memory", Quantity),
        ("nvidia.com/gpu", Any),
    ]);
    obj(&[
        ("name", Str),
        ("image", Str),
        ("imagePullPolicy", Str),
        ("command", StrList),
        (
            "securityContext",
            obj(&[
                ("privileged", Bool),
                ("capabilities", obj(&[("add", StrList), ("drop", StrList)])),
                ("allowPrivilegeEscalation", Bool),
                ("seccompProfile", seccomp()),
                ("appArmorProfile", apparmor()),
                ("readOnlyRootFilesystem", Bool),
                ("runAsUser", Int),
                ("runAsGroup", Int),
                ("runAsNonRoot", Bool),
                ("procMount", Str),
            ]),
        ),
        (
            "env",
            list(Obj(vec![
                ("name", Str, true),
                ("value", Str, false),
                (
                    "valueFrom",
                    obj(&[
                        ("secretKeyRef", key_ref.clone()),
                        ("configMapKeyRef", key_ref),
                        ("fieldRef", obj(&[("fieldPath", Str), ("apiVersion", Str)])),
                        (
                            "resourceFieldRef",
                            obj(&[("resource", Str), ("divisor", Any)]),
                        ),
                    ]),
                    false,
                ),
            ])),
        ),
        (
            "resources",
            obj(&[("requests", cpu_memory.clone()), ("limits", cpu_memory)]),
        ),
        (
            "volumeMounts",
            list(obj(&[
                ("name", Str),
                ("mountPath", Str),
                ("readOnly", Bool),
                ("mountPropagation", Str),
            ])),
        ),
        (
            "ports",
            list(Obj(vec![
                ("name", Str, false),
                ("containerPort", Int32, true),
                ("protocol", Str, false),
                ("hostPort", Int32, false),
            ])),
        ),
        ("livenessProbe", Any),
        ("readinessProbe", Any),
    ])
}

fn pod_spec() -> Shape {
    obj(&[
        ("serviceAccountName", Str),
        ("serviceAccount", Str),
        ("automountServiceAccountToken", Bool),
        ("hostNetwork", Bool),
        ("hostPID", Bool),
        ("hostIPC", Bool),
        ("runtimeClassName", Str),
        (
            "securityContext",
            obj(&[
                ("runAsUser", Int),
                ("runAsGroup", Int),
                ("runAsNonRoot", Bool),
                ("fsGroup", Int),
                ("seccompProfile", seccomp()),
                ("appArmorProfile", apparmor()),
                (
                    "sysctls",
                    list(Obj(vec![("name", Str, true), ("value", Str, false)])),
                ),
            ]),
        ),
        (
            "volumes",
            list(obj(&[
                ("name", Str),
                ("hostPath", obj(&[("path", Str), ("type", Str)])),
                ("secret", obj(&[("secretName", Str)])),
                ("configMap", obj(&[("name", Str)])),
                ("emptyDir", Any),
                ("persistentVolumeClaim", obj(&[("claimName", Str)])),
                ("projected", Any),
                ("downwardAPI", Any),
                ("nfs", obj(&[("server", Str), ("path", Str)])),
                ("csi", obj(&[("driver", Str)])),
                ("ephemeral", Any),
                ("image", obj(&[("reference", Str)])),
            ])),
        ),
        ("initContainers", list(container())),
        ("containers", list(container())),
        ("ephemeralContainers", list(container())),
        ("nodeSelector", StrMap),
    ])
}

fn template() -> Shape {
    obj(&[("metadata", meta()), ("spec", pod_spec())])
}

fn job_spec() -> Shape {
    obj(&[
        ("parallelism", Int32),
        ("manualSelector", Bool),
        ("selector", label_selector()),
        ("template", template()),
    ])
}

fn spec_of(kind: WorkloadKind) -> Shape {
    use WorkloadKind::*;
    match kind {
        Deployment | StatefulSet | DaemonSet | ReplicaSet => obj(&[
            ("replicas", Int32),
            ("selector", label_selector()),
            ("template", template()),
            ("strategy", Any),
        ]),
        ReplicationController | DeploymentConfig => obj(&[
            ("replicas", Int32),
            ("selector", StrMap),
            ("template", template()),
        ]),
        Job => job_spec(),
        CronJob => obj(&[
            ("schedule", Str),
            (
                "jobTemplate",
                obj(&[("metadata", meta()), ("spec", job_spec())]),
            ),
        ]),
        Pod => pod_spec(),
    }
}

fn workload(kind: WorkloadKind) -> Shape {
    obj(&[
        ("apiVersion", Str),
        ("kind", Str),
        ("metadata", meta()),
        ("spec", spec_of(kind)),
        ("status", Any),
    ])
}

/// xorshift64*: deterministic, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const STRINGS: &[&str] = &[
    r#""""#,
    r#""nginx""#,
    r#""registry.example.com/shop/app@sha256:4d0f1b4c""#,
    r#""CAP_NET_RAW""#,
    r#""all""#,
    r#""RuntimeDefault""#,
    r#""Localhost""#,
    r#""Unconfined""#,
    r#""app.kubernetes.io/name""#,
    r#""quo\"te and back\\slash""#,
    r#""\u00e9t\u00e9 \ud83d\ude00""#,
    r#""tab\there\nnew""#,
    r#""été ✓""#,
    r#""/var/run/docker.sock""#,
    r#""default""#,
];
/// Owners that are workloads and owners that are not (an operator's resource, any object).
const OWNER_API_VERSIONS: &[&str] = &[
    r#""apps/v1""#,
    r#""apps/v1""#,
    r#""apps/v1""#,
    r#""batch/v1""#,
    r#""monitoring.coreos.com/v1""#,
    r#""""#,
];
const OWNER_KINDS: &[&str] = &[
    r#""ReplicaSet""#,
    r#""ReplicaSet""#,
    r#""StatefulSet""#,
    r#""Job""#,
    r#""Prometheus""#,
    r#""ConfigMap""#,
];
const INTS: &[&str] = &[
    "0",
    "1",
    "-5",
    "10001",
    "9223372036854775807",
    "-9223372036854775808",
    "1.0",
    "1e3",
    "9223372036854775808",
    "-0",
];
const INT32S: &[&str] = &["80", "8080", "65535", "0", "-1", "2147483648", "443.0"];
const QUANTITIES: &[&str] = &[
    r#""250m""#,
    r#""1Gi""#,
    r#""0.5""#,
    "2",
    "0.5",
    "1e3",
    "2.50",
    "-3",
    "-0",
    "18446744073709551616",
    "1E-2",
];
const ANY: &[&str] = &[
    "{}",
    "[]",
    "null",
    "true",
    "-1.5e3",
    r#""x""#,
    r#"{"exec":{"command":["true"]},"periodSeconds":10}"#,
    r#"[{"f:metadata":{"f:labels":{".":{},"f:app":{}}}},{"k:{\"name\":\"c\"}":[1,2,{}]}]"#,
];

/// Spacing between tokens: none mostly, as the API server writes, sometimes a pretty printer's.
fn space(out: &mut String, rng: &mut Rng) {
    if rng.one_in(8) {
        out.push_str(["\n  ", " ", "\t", "\r\n"][rng.below(4)]);
    }
}

/// A value of the wrong JSON type for `shape`. Not an array for a struct: serde reads a struct
/// written as an array of its fields in order, which the fast decoder leaves to serde.
fn wrong(shape: &Shape, rng: &mut Rng) -> &'static str {
    match shape {
        Obj(_) => ["7", "true", r#""s""#][rng.below(3)],
        Str | Pick(_) | StrMap | StrList | List(_) | Quantity => {
            ["7", "true", r#"{"a":"b"}"#, r#"["x"]"#, r#""s""#][rng.below(5)]
        }
        Bool | Int | Int32 => [r#""yes""#, "{}", "[]", "1"][rng.below(4)],
        Any => "{",
    }
}

fn write(out: &mut String, shape: &Shape, rng: &mut Rng) {
    match shape {
        Str => out.push_str(rng.pick(STRINGS)),
        Pick(from) => out.push_str(rng.pick(from)),
        Bool => out.push_str(if rng.one_in(2) { "true" } else { "false" }),
        Int => out.push_str(rng.pick(INTS)),
        Int32 => out.push_str(rng.pick(INT32S)),
        Quantity => out.push_str(rng.pick(QUANTITIES)),
        Any => out.push_str(rng.pick(ANY)),
        StrMap => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                space(out, rng);
                out.push_str(rng.pick(STRINGS));
                out.push(':');
                space(out, rng);
                if rng.one_in(40) {
                    out.push_str("null");
                } else {
                    out.push_str(rng.pick(STRINGS));
                }
            }
            out.push('}');
        }
        StrList => write(out, &list(Str), rng),
        List(element) => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                space(out, rng);
                value(out, element, true, rng);
            }
            space(out, rng);
            out.push(']');
        }
        Obj(fields) => {
            let mut chosen: Vec<&(&str, Shape, bool)> = fields
                .iter()
                .filter(|(_, _, required)| *required || !rng.one_in(3))
                .collect();
            // Any order.
            for i in (1..chosen.len()).rev() {
                chosen.swap(i, rng.below(i + 1));
            }
            let unknown = ("unknownField", Any, false);
            if rng.one_in(5) {
                let at = rng.below(chosen.len() + 1);
                chosen.insert(at, &unknown);
            }
            out.push('{');
            for (i, (name, shape, required)) in chosen.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, rng);
                out.push('"');
                out.push_str(name);
                out.push_str("\":");
                space(out, rng);
                value(out, shape, *required, rng);
            }
            space(out, rng);
            out.push('}');
        }
    }
}

/// A field's value: now and then `null` or the wrong type.
fn value(out: &mut String, shape: &Shape, required: bool, rng: &mut Rng) {
    if !required && rng.one_in(25) {
        out.push_str("null");
    } else if rng.one_in(150) {
        out.push_str(wrong(shape, rng));
    } else {
        write(out, shape, rng);
    }
}

fn fast(kind: WorkloadKind, text: &str) -> Result<Workload, String> {
    let mut s = Scanner::new(text);
    decode(kind, &mut s)
        .and_then(|w| s.end().map(|()| w))
        .map_err(|e| e.to_string())
}

fn reference(kind: WorkloadKind, text: &str) -> Result<Workload, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    decode_workload(kind, &mut de)
        .and_then(|w| de.end().map(|()| w))
        .map_err(|e| e.to_string())
}

/// Both decoders' answers agree; whether it decoded.
fn agree(kind: WorkloadKind, text: &str, case: &str) -> bool {
    match (fast(kind, text), reference(kind, text)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{case}: {text}");
            true
        }
        (Err(_), Err(_)) => false,
        (Ok(_), Err(e)) => {
            panic!("{case}: the fast decoder accepts what serde refuses ({e}): {text}")
        }
        (Err(e), Ok(_)) => {
            panic!("{case}: the fast decoder refuses what serde reads ({e}): {text}")
        }
    }
}

#[test]
fn generated_objects_of_every_kind_decode_as_serde_decodes_them() {
    for kind in WorkloadKind::ALL {
        let shape = workload(kind);
        let (mut decoded, mut refused) = (0, 0);
        for seed in 1..=1000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ kind as u64);
            let mut text = String::new();
            write(&mut text, &shape, &mut rng);
            if agree(kind, &text, &format!("{kind:?} seed {seed}")) {
                decoded += 1;
            } else {
                refused += 1;
            }
        }
        // Both paths are exercised: most objects decode, some are refused.
        assert!(
            decoded > 250 && refused > 25,
            "{kind:?}: {decoded} decoded, {refused} refused"
        );
    }
}

#[test]
fn manifests_decode_as_serde_decodes_them() {
    let mut texts = vec![
        include_str!("../../../benches/fixtures/typical-deployment.yaml").to_string(),
        include_str!("../../../../cli/tests/fixtures/mixed.yaml").to_string(),
    ];
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/microservices-demo/release/kubernetes-manifests.yaml");
    if let Ok(text) = std::fs::read_to_string(&corpus) {
        texts.push(text);
    }
    let mut decoded = 0;
    for text in &texts {
        for doc in crate::yaml::split_documents(text) {
            let Ok(value) = crate::yaml::parse_document(doc) else {
                continue;
            };
            let kind = value["kind"].as_str().unwrap_or_default();
            let group = value["apiVersion"]
                .as_str()
                .and_then(|v| v.rsplit_once('/'))
                .map_or("", |(g, _)| g);
            let Some(kind) = crate::manifest::workload_kind_in_group(group, kind) else {
                continue;
            };
            let json = serde_json::to_string(&value).expect("json");
            assert!(agree(kind, &json, "manifest"), "decodes: {json}");
            let pretty = serde_json::to_string_pretty(&value).expect("json");
            assert!(
                agree(kind, &pretty, "manifest, pretty"),
                "decodes: {pretty}"
            );
            decoded += 1;
        }
    }
    assert!(decoded >= 5, "{decoded} workloads");
}

#[test]
fn refusals_say_where() {
    let text = r#"{"spec":{"template":{"spec":{"hostNetwork":"yes"}}}}"#;
    let e = fast(WorkloadKind::Deployment, text).expect_err("a string is not a bool");
    assert_eq!(
        e,
        format!(
            "expected true or false at byte {}",
            text.find("\"yes").unwrap_or(0)
        )
    );
    let missing = r#"{"spec":{"containers":[{"ports":[{"name":"http"}]}]}}"#;
    assert!(
        fast(WorkloadKind::Pod, missing).is_err(),
        "containerPort is required"
    );
}

fn passing_over_controlled(kind: WorkloadKind, text: &str) -> Result<Workload, String> {
    let mut s = Scanner::new(text);
    decode_with(kind, &mut s, Spec::UnlessControlled)
        .and_then(|w| s.end().map(|()| w))
        .map_err(|e| e.to_string())
}

/// Passing over a controlled object's spec changes nothing else: an object that is not
/// controlled decodes as it always does, a controlled one keeps its metadata, and what reading
/// everything refuses is refused too, unless what was wrong lay in the spec passed over.
#[test]
fn a_controlled_objects_spec_passed_over_changes_nothing_else() {
    let (mut passed_over, mut read, mut refused) = (0, 0, 0);
    for kind in WorkloadKind::ALL {
        let shape = workload(kind);
        for seed in 1..=3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ kind as u64);
            let mut text = String::new();
            write(&mut text, &shape, &mut rng);
            let case = format!("{kind:?} seed {seed}: {text}");
            match (fast(kind, &text), passing_over_controlled(kind, &text)) {
                (Ok(full), Ok(lazy)) if full.metadata().controlled() => {
                    assert_eq!(lazy.metadata(), full.metadata(), "{case}");
                    if lazy != full {
                        assert_eq!(lazy.template.spec, Default::default(), "{case}");
                        passed_over += 1;
                    }
                }
                (Ok(full), Ok(lazy)) => {
                    assert_eq!(lazy, full, "{case}");
                    read += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                (Err(e), Ok(lazy)) => assert!(lazy.metadata().controlled(), "{e}: {case}"),
                (Ok(_), Err(e)) => panic!("refused only when passing over: {e}: {case}"),
            }
        }
    }
    assert!(
        passed_over > 20 && read > 1000 && refused > 100,
        "{passed_over} passed over, {read} read, {refused} refused"
    );
}

/// A spec passed over for a `metadata` naming a controller is read after all, where it was,
/// when a later `metadata` names none; one that is not well-formed JSON is refused either way.
#[test]
fn a_spec_passed_over_is_read_after_all_for_a_later_metadata() {
    let owned = r#"{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-1","uid":"u","controller":true}]}"#;
    let spec = r#"{"containers":[{"name":"app","image":"nginx:1.27"}]}"#;
    let text = format!(r#"{{"metadata":{owned},"spec":{spec},"metadata":{{"name":"web"}}}}"#);
    let lazy = passing_over_controlled(WorkloadKind::Pod, &text).expect("decodes");
    assert_eq!(lazy, fast(WorkloadKind::Pod, &text).expect("decodes"));
    assert_eq!(lazy.template.spec.containers.len(), 1);
    assert!(!lazy.metadata().controlled());

    let controlled = format!(r#"{{"metadata":{owned},"spec":{spec}}}"#);
    let lazy = passing_over_controlled(WorkloadKind::Pod, &controlled).expect("decodes");
    assert!(lazy.metadata().controlled());
    assert!(lazy.template.spec.containers.is_empty());

    let broken = format!(r#"{{"metadata":{owned},"spec":{{"containers":[}}}}"#);
    assert!(passing_over_controlled(WorkloadKind::Pod, &broken).is_err());
}
