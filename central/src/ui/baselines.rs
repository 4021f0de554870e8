//! Process baselines in the console: shown on the deployment's page (per container: lock state,
//! learned and added executables, suspicious ones), locked and unlocked, edited; and "resolve
//! and add to baseline" on a runtime alert. The handlers call the API's own functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::urlencode;
use crate::api::Shared;
use crate::store::Backend;

pub(super) struct BaselineView {
    pub container: String,
    /// "Locked", "Locked by Rampart (learning over)", "Learning until ...".
    pub state: String,
    pub user_locked: bool,
    pub elements: Vec<(String, &'static str)>,
    pub suspicious: Vec<String>,
}

/// The deployment's baselines, as the deployment page shows them.
pub(super) fn of_deployment<B: Backend>(
    core: &crate::core::Core<B>,
    cluster: &str,
    id: &str,
) -> Vec<BaselineView> {
    let now = crate::model::now_unix_ms();
    core.baselines
        .of_deployment(cluster, id)
        .into_iter()
        .map(|b| BaselineView {
            state: if b.is_user_locked() {
                "Locked: a process outside it raises an alert".into()
            } else if b.is_locked(now) {
                "Locked by Rampart (learning over): outside counts as suspicious".into()
            } else {
                format!(
                    "Learning until {}",
                    super::time_text(b.learning_until_unix_ms)
                )
            },
            user_locked: b.is_user_locked(),
            container: b.container_name,
            elements: b
                .elements
                .into_iter()
                .map(|(path, e)| (path, if e.auto { "learned" } else { "added" }))
                .collect(),
            suspicious: b.suspicious,
        })
        .collect()
}

fn back(cluster: &str, id: &str) -> Response {
    Redirect::to(&format!(
        "/ui/risk/{}/{}#baselines",
        urlencode(cluster),
        urlencode(id)
    ))
    .into_response()
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// `POST /ui/deployments/{cluster}/{id}/baselines/lock` (`locked`, optional `container`).
pub(super) async fn lock<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let locked = form.get("locked").is_some_and(|v| v == "true");
    let container = form.get("container").filter(|c| !c.is_empty()).cloned();
    let core = Arc::clone(&api.core);
    let now = crate::model::now_unix_ms();
    let changed = crate::api::change_baselines(&core, &cluster, |batch| {
        core.baselines
            .set_user_lock(&cluster, &id, container.as_deref(), locked, now, batch)
    })
    .await;
    match changed {
        Ok(_) => back(&cluster, &id),
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/deployments/{cluster}/{id}/baselines/{container}/edit` (`add` or `remove`: a path).
pub(super) async fn edit<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id, container)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let pick = |k: &str| -> Vec<String> {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .into_iter()
            .collect()
    };
    let (add, remove) = (pick("add"), pick("remove"));
    if add.is_empty() && remove.is_empty() {
        return back(&cluster, &id);
    }
    let now = crate::model::now_unix_ms();
    let edited =
        crate::api::edit_process_baseline(&api.core, &cluster, &id, &container, &add, &remove, now)
            .await;
    match edited {
        Ok(_) => back(&cluster, &id),
        Err(e) => e.into_response(),
    }
}
