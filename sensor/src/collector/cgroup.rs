//! Which container a process runs in, from `/proc/PID/cgroup`; pure.
//!
//! Every runtime and cgroup driver writes the container id into the cgroup path in its own way
//! (cgroup v1 lines name each hierarchy, v2 has one `0::` line; the kubelet's `cgroupfs` driver
//! uses `pod<uid>/<id>`, its `systemd` driver `kubepods-…-pod<uid_with_underscores>.slice/
//! <runtime>-<id>.scope`):
//!
//! ```text
//! containerd, cgroupfs   8:pids:/kubepods/besteffort/pod<uid>/<64 hex>
//! containerd, systemd    0::/kubepods.slice/…-pod<uid_>.slice/cri-containerd-<64 hex>.scope
//! CRI-O, systemd         0::/kubepods.slice/…-pod<uid_>.slice/crio-<64 hex>.scope
//! Docker, cgroupfs       12:memory:/docker/<64 hex>
//! Docker, systemd        0::/system.slice/docker-<64 hex>.scope
//! Podman                 0::/machine.slice/libpod-<64 hex>.scope
//! ```
//!
//! CRI-O's `crio-conmon-<id>.scope` is the monitor process beside the container, not in it.

/// The container a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// The runtime's full id (64 lower-case hex digits).
    pub id: String,
    /// The pod UID when the path names it (Kubernetes pods).
    pub pod_uid: Option<String>,
    pub runtime: Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
    /// A bare id under a `kubepods` path (cgroupfs driver: the runtime does not say).
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id in one path component, if it holds one.
fn container_component(component: &str) -> Option<(String, Runtime)> {
    let name = component.strip_suffix(".scope").unwrap_or(component);
    if name.starts_with("crio-conmon-") {
        return None;
    }
    let prefixes = [
        ("cri-containerd-", Runtime::Containerd),
        ("containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in prefixes {
        if let Some(id) = name.strip_prefix(prefix)
            && is_container_id(id)
        {
            return Some((id.to_ascii_lowercase(), runtime));
        }
    }
    is_container_id(name).then(|| (name.to_ascii_lowercase(), Runtime::Unknown))
}

fn is_uid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// The pod UID in one path component: `pod<uid>` (cgroupfs) or `kubepods-…pod<uid_>.slice`.
fn pod_component(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let at = name.rfind("pod")?;
    let before = &name[..at];
    if !(before.is_empty() || before.ends_with('-')) {
        return None;
    }
    let uid = name[at + 3..].replace('_', "-");
    is_uid(&uid).then_some(uid)
}

/// The container of a process, from the text of its `/proc/PID/cgroup`; `None` for processes
/// outside containers (host services, the kubelet, sessions).
pub fn parse(cgroup_file: &str) -> Option<ContainerRef> {
    for line in cgroup_file.lines() {
        // hierarchy-ID:controller-list:cgroup-path; the path may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some((index, (id, mut runtime))) = components
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, c)| container_component(c).map(|found| (i, found)))
        else {
            continue;
        };
        // A bare id counts only inside a recognisable container hierarchy.
        let parents = &components[..index];
        if runtime == Runtime::Unknown {
            match parents.first().copied() {
                Some("docker") => runtime = Runtime::Docker,
                Some(p) if p.starts_with("kubepods") => {}
                Some(p) if p == "k8s.io" || p.starts_with("containerd") => {
                    runtime = Runtime::Containerd;
                }
                _ => continue,
            }
        }
        let pod_uid = parents.iter().rev().find_map(|c| pod_component(c));
        return Some(ContainerRef {
            id,
            pod_uid,
            runtime,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4c01db0b339c1b6f7c7b5e0a1f2e3d4c5b6a79880716253443526170a0b0c0d0";
    const POD: &str = "3f4a1c8e-2b5d-4c6a-9e7f-0a1b2c3d4e5f";

    fn found(text: &str) -> (String, Option<String>, Runtime) {
        let c = parse(text).unwrap_or_else(|| panic!("no container in {text}"));
        (c.id, c.pod_uid, c.runtime)
    }

    #[test]
    fn kubelet_cgroupfs_driver_on_cgroup_v1() {
        let text = format!(
            "12:pids:/kubepods/besteffort/pod{POD}/{ID}\n\
             11:hugetlb:/kubepods/besteffort/pod{POD}/{ID}\n\
             4:memory:/kubepods/besteffort/pod{POD}/{ID}\n\
             1:name=systemd:/kubepods/besteffort/pod{POD}/{ID}\n\
             0::/\n"
        );
        assert_eq!(
            found(&text),
            (ID.into(), Some(POD.into()), Runtime::Unknown)
        );
    }

    #[test]
    fn containerd_and_cri_o_with_the_systemd_driver_on_cgroup_v2() {
        let pod_ = POD.replace('-', "_");
        let containerd = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            found(&containerd),
            (ID.into(), Some(POD.into()), Runtime::Containerd)
        );
        // Guaranteed QoS pods have no QoS slice.
        let crio = format!("0::/kubepods.slice/kubepods-pod{pod_}.slice/crio-{ID}.scope\n");
        assert_eq!(found(&crio), (ID.into(), Some(POD.into()), Runtime::CriO));
        // The conmon monitor is beside the container, not in it.
        let conmon =
            format!("0::/kubepods.slice/kubepods-pod{pod_}.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(parse(&conmon), None);
    }

    #[test]
    fn docker_and_podman_outside_kubernetes() {
        assert_eq!(
            found(&format!("12:memory:/docker/{ID}\n0::/\n")),
            (ID.into(), None, Runtime::Docker)
        );
        assert_eq!(
            found(&format!("0::/system.slice/docker-{ID}.scope\n")),
            (ID.into(), None, Runtime::Docker)
        );
        assert_eq!(
            found(&format!("0::/machine.slice/libpod-{ID}.scope/container\n")),
            (ID.into(), None, Runtime::Podman)
        );
    }

    #[test]
    fn host_processes_are_in_no_container() {
        for text in [
            "0::/user.slice/user-1000.slice/session-2.scope\n",
            "0::/system.slice/kubelet.service\n",
            "0::/\n",
            "9:name=systemd:/\n4:memory:/process_api/6cc19ffc8ece4ddda1e1505f706c41b4\n0::/\n",
            // A 64-hex directory outside any container hierarchy.
            &format!("0::/custom/{ID}\n"),
            "",
            "garbage",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
