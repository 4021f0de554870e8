//! The default policies, embedded in the binary as ACS-format JSON files (`policy/defaults/`).
//!
//! They are ACS's default policies (same names, severities and enabled state): BUILD and DEPLOY
//! ones (criteria that need image data report "not evaluable" until an image scan is
//! available), RUNTIME ones on processes and Kubernetes events, plus Rampart's
//! KubeLinter-class checks ACS lacks. Their texts and process lists are Rampart's own.

use crate::policy::{Policy, parse_policies};

/// (file name, JSON text) of every default policy.
pub const FILES: &[(&str, &str)] = &[
    (
        "add_instruction.json",
        include_str!("../defaults/add_instruction.json"),
    ),
    (
        "admission_controller_annotation.json",
        include_str!("../defaults/admission_controller_annotation.json"),
    ),
    ("apk.json", include_str!("../defaults/apk.json")),
    ("apt.json", include_str!("../defaults/apt.json")),
    (
        "automount_service_account_token.json",
        include_str!("../defaults/automount_service_account_token.json"),
    ),
    (
        "baselining_policy.json",
        include_str!("../defaults/baselining_policy.json"),
    ),
    (
        "cap_sys_admin.json",
        include_str!("../defaults/cap_sys_admin.json"),
    ),
    (
        "container_port_22.json",
        include_str!("../defaults/container_port_22.json"),
    ),
    ("curl.json", include_str!("../defaults/curl.json")),
    (
        "cvss_6_privileged.json",
        include_str!("../defaults/cvss_6_privileged.json"),
    ),
    ("cvss_7.json", include_str!("../defaults/cvss_7.json")),
    (
        "deployment_has_egress_network_policy.json",
        include_str!("../defaults/deployment_has_egress_network_policy.json"),
    ),
    (
        "deployment_has_ingress_network_policy.json",
        include_str!("../defaults/deployment_has_ingress_network_policy.json"),
    ),
    ("dnf.json", include_str!("../defaults/dnf.json")),
    (
        "docker_sock.json",
        include_str!("../defaults/docker_sock.json"),
    ),
    (
        "drop_all_capabilities.json",
        include_str!("../defaults/drop_all_capabilities.json"),
    ),
    (
        "email_annotation.json",
        include_str!("../defaults/email_annotation.json"),
    ),
    (
        "exec-addgroup.json",
        include_str!("../defaults/exec-addgroup.json"),
    ),
    (
        "exec-adduser.json",
        include_str!("../defaults/exec-adduser.json"),
    ),
    ("exec-apk.json", include_str!("../defaults/exec-apk.json")),
    ("exec-apt.json", include_str!("../defaults/exec-apt.json")),
    (
        "exec-chkconfig.json",
        include_str!("../defaults/exec-chkconfig.json"),
    ),
    (
        "exec-crontab.json",
        include_str!("../defaults/exec-crontab.json"),
    ),
    ("exec-dnf.json", include_str!("../defaults/exec-dnf.json")),
    (
        "exec-iptables-root.json",
        include_str!("../defaults/exec-iptables-root.json"),
    ),
    (
        "exec-iptables.json",
        include_str!("../defaults/exec-iptables.json"),
    ),
    (
        "exec-java-shell.json",
        include_str!("../defaults/exec-java-shell.json"),
    ),
    ("exec-make.json", include_str!("../defaults/exec-make.json")),
    (
        "exec-mining-binaries.json",
        include_str!("../defaults/exec-mining-binaries.json"),
    ),
    (
        "exec-net-tools.json",
        include_str!("../defaults/exec-net-tools.json"),
    ),
    (
        "exec-netcat.json",
        include_str!("../defaults/exec-netcat.json"),
    ),
    ("exec-nmap.json", include_str!("../defaults/exec-nmap.json")),
    (
        "exec-remote-copy.json",
        include_str!("../defaults/exec-remote-copy.json"),
    ),
    ("exec-sshd.json", include_str!("../defaults/exec-sshd.json")),
    (
        "exec-systemctl.json",
        include_str!("../defaults/exec-systemctl.json"),
    ),
    (
        "exec-systemd.json",
        include_str!("../defaults/exec-systemd.json"),
    ),
    (
        "exeline-kubelet-contact.json",
        include_str!("../defaults/exeline-kubelet-contact.json"),
    ),
    (
        "exeline-kubernetes-docker-stats.json",
        include_str!("../defaults/exeline-kubernetes-docker-stats.json"),
    ),
    (
        "exeline-kubernetes-service.json",
        include_str!("../defaults/exeline-kubernetes-service.json"),
    ),
    (
        "external_exposure.json",
        include_str!("../defaults/external_exposure.json"),
    ),
    (
        "fixable_cves.json",
        include_str!("../defaults/fixable_cves.json"),
    ),
    ("host_ipc.json", include_str!("../defaults/host_ipc.json")),
    (
        "host_network.json",
        include_str!("../defaults/host_network.json"),
    ),
    ("host_pids.json", include_str!("../defaults/host_pids.json")),
    (
        "image_age_days.json",
        include_str!("../defaults/image_age_days.json"),
    ),
    (
        "image_port_22.json",
        include_str!("../defaults/image_port_22.json"),
    ),
    (
        "insecure_command.json",
        include_str!("../defaults/insecure_command.json"),
    ),
    (
        "k8s-dashboard.json",
        include_str!("../defaults/k8s-dashboard.json"),
    ),
    (
        "latest_tag.json",
        include_str!("../defaults/latest_tag.json"),
    ),
    ("log4shell.json", include_str!("../defaults/log4shell.json")),
    (
        "login_binaries.json",
        include_str!("../defaults/login_binaries.json"),
    ),
    (
        "mount_propagation.json",
        include_str!("../defaults/mount_propagation.json"),
    ),
    (
        "network_baseline.json",
        include_str!("../defaults/network_baseline.json"),
    ),
    (
        "no_app_armor.json",
        include_str!("../defaults/no_app_armor.json"),
    ),
    (
        "no_resources_specified.json",
        include_str!("../defaults/no_resources_specified.json"),
    ),
    ("no_scans.json", include_str!("../defaults/no_scans.json")),
    (
        "no_seccomp_profile.json",
        include_str!("../defaults/no_seccomp_profile.json"),
    ),
    (
        "owner_team_annotation.json",
        include_str!("../defaults/owner_team_annotation.json"),
    ),
    (
        "owner_team_label.json",
        include_str!("../defaults/owner_team_label.json"),
    ),
    (
        "passwd_binaries.json",
        include_str!("../defaults/passwd_binaries.json"),
    ),
    (
        "pod_attach.json",
        include_str!("../defaults/pod_attach.json"),
    ),
    ("pod_exec.json", include_str!("../defaults/pod_exec.json")),
    (
        "pod_portforward.json",
        include_str!("../defaults/pod_portforward.json"),
    ),
    (
        "privilege_escalation.json",
        include_str!("../defaults/privilege_escalation.json"),
    ),
    (
        "privileged.json",
        include_str!("../defaults/privileged.json"),
    ),
    (
        "process_uid_zero.json",
        include_str!("../defaults/process_uid_zero.json"),
    ),
    (
        "rampart_default_service_account.json",
        include_str!("../defaults/rampart_default_service_account.json"),
    ),
    (
        "rampart_deprecated_service_account.json",
        include_str!("../defaults/rampart_deprecated_service_account.json"),
    ),
    (
        "rampart_drop_net_raw.json",
        include_str!("../defaults/rampart_drop_net_raw.json"),
    ),
    (
        "rampart_duplicate_env.json",
        include_str!("../defaults/rampart_duplicate_env.json"),
    ),
    (
        "rampart_mismatching_selector.json",
        include_str!("../defaults/rampart_mismatching_selector.json"),
    ),
    (
        "rampart_no_liveness_probe.json",
        include_str!("../defaults/rampart_no_liveness_probe.json"),
    ),
    (
        "rampart_no_readiness_probe.json",
        include_str!("../defaults/rampart_no_readiness_probe.json"),
    ),
    (
        "rampart_run_as_non_root.json",
        include_str!("../defaults/rampart_run_as_non_root.json"),
    ),
    (
        "rampart_sensitive_host_mounts.json",
        include_str!("../defaults/rampart_sensitive_host_mounts.json"),
    ),
    (
        "rampart_unsafe_proc_mount.json",
        include_str!("../defaults/rampart_unsafe_proc_mount.json"),
    ),
    (
        "rampart_unsafe_sysctls.json",
        include_str!("../defaults/rampart_unsafe_sysctls.json"),
    ),
    (
        "rampart_writable_host_mount.json",
        include_str!("../defaults/rampart_writable_host_mount.json"),
    ),
    (
        "rapid-reset.json",
        include_str!("../defaults/rapid-reset.json"),
    ),
    (
        "read-write-root-fs.json",
        include_str!("../defaults/read-write-root-fs.json"),
    ),
    (
        "required_image_label.json",
        include_str!("../defaults/required_image_label.json"),
    ),
    (
        "restricted_host_ports.json",
        include_str!("../defaults/restricted_host_ports.json"),
    ),
    ("root_user.json", include_str!("../defaults/root_user.json")),
    (
        "run_secrets_volume.json",
        include_str!("../defaults/run_secrets_volume.json"),
    ),
    ("scan_age.json", include_str!("../defaults/scan_age.json")),
    (
        "secret_env.json",
        include_str!("../defaults/secret_env.json"),
    ),
    (
        "secret_env_mount.json",
        include_str!("../defaults/secret_env_mount.json"),
    ),
    (
        "sensitive_files.json",
        include_str!("../defaults/sensitive_files.json"),
    ),
    (
        "setuid_binaries.json",
        include_str!("../defaults/setuid_binaries.json"),
    ),
    (
        "severity_high_privileged.json",
        include_str!("../defaults/severity_high_privileged.json"),
    ),
    (
        "severity_important.json",
        include_str!("../defaults/severity_important.json"),
    ),
    (
        "shadow_binaries.json",
        include_str!("../defaults/shadow_binaries.json"),
    ),
    (
        "shell_mgmt.json",
        include_str!("../defaults/shell_mgmt.json"),
    ),
    (
        "spring4shell.json",
        include_str!("../defaults/spring4shell.json"),
    ),
    (
        "struts_cve.json",
        include_str!("../defaults/struts_cve.json"),
    ),
    (
        "update_instructions.json",
        include_str!("../defaults/update_instructions.json"),
    ),
    ("wget.json", include_str!("../defaults/wget.json")),
];

/// The default policies, parsed. The files are tested to parse and validate, so a failure here is
/// a build defect, reported rather than hidden.
pub fn default_policies() -> Vec<Policy> {
    FILES
        .iter()
        .flat_map(|(name, text)| match parse_policies(text) {
            Ok(p) => p,
            Err(e) => panic!("embedded default policy {name} is invalid: {e}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;

    #[test]
    fn every_file_in_the_directory_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/defaults");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("defaults directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn every_default_policy_validates_and_has_guidance() {
        let policies = default_policies();
        let mut names = std::collections::BTreeSet::new();
        for p in &policies {
            compile(p).unwrap_or_else(|e| panic!("{}: {e:?}", p.name));
            assert!(names.insert(p.name.clone()), "duplicate name {}", p.name);
            assert!(
                !p.rationale.is_empty() && !p.remediation.is_empty(),
                "{}",
                p.name
            );
            assert!(p.is_default);
        }
    }
}
