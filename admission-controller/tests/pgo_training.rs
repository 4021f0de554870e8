//! The profile-guided build's training workload (`benches/common/train.rs`, run by
//! `scripts/pgo-build`): it must take the paths a cluster's requests take — allowed and refused
//! workloads of every kind in the repository's manifests, dry runs, pods decided at their
//! owner and pods decided themselves — and never be the review the load benchmark measures.

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_admission::decide::Settings;
use rampart_admission::metrics::Metrics;
use rampart_admission::server::{Endpoint, State};
use serde_json::Value;

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_training_reviews_take_every_path_of_a_decision() {
    let reviews = common::train::training_reviews(&repo());
    let typical = common::typical_review();
    assert!(
        reviews.iter().all(|r| *r != typical),
        "the measured review is held out"
    );
    let state = State::new(
        Settings::default(),
        Arc::new(Metrics::new()),
        4 << 20,
        Duration::from_secs(5),
        10_000,
    );
    state.set_policies(common::all_enforced());
    let (mut allowed, mut denied, mut dry_runs, mut kinds) =
        (0, 0, 0, std::collections::BTreeSet::new());
    for body in &reviews {
        let review: Value = serde_json::from_slice(body).expect("a review");
        kinds.insert(
            review["request"]["kind"]["kind"]
                .as_str()
                .map(str::to_string),
        );
        dry_runs += usize::from(review["request"]["dryRun"] == true);
        let (status, answer) = state.review(Endpoint::Validate, body);
        assert_eq!(
            status,
            hyper::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let answer: Value = serde_json::from_slice(&answer).expect("an answer");
        match answer["response"]["allowed"].as_bool() {
            Some(true) => allowed += 1,
            Some(false) => denied += 1,
            None => panic!("no decision: {answer}"),
        }
    }
    // deploy/ alone has a StatefulSet, a DaemonSet and Deployments; their pods come too.
    for kind in ["Deployment", "StatefulSet", "DaemonSet", "Pod"] {
        assert!(
            kinds.contains(&Some(kind.to_string())),
            "{kind} in {kinds:?}"
        );
    }
    assert!(
        allowed >= 10 && denied >= 10,
        "allowed {allowed}, denied {denied}"
    );
    assert!(dry_runs > 0);
}

#[test]
fn the_policy_librarys_other_roles_have_work() {
    // One round: the CLI's check, evaluations with image findings, runtime events, risk.
    assert!(common::train::policy_roles(&repo(), 1) > 100);
}
