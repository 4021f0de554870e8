//! kube-rs watchers feeding the index: one per kind, untyped (`DynamicObject`) so that an
//! object the Sensor cannot model is still stored and never breaks a typed decode; each with
//! kube-rs' default exponential backoff, so an API server outage or an expired watch (410) only
//! delays it — the watcher re-lists and the index removes what disappeared meanwhile.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};

use crate::Shared;
use crate::index::Kind;

/// Group, version and plural of each kind.
pub fn api_resource(kind: Kind) -> ApiResource {
    let (group, version, plural) = match kind {
        Kind::Deployment => ("apps", "v1", "deployments"),
        Kind::StatefulSet => ("apps", "v1", "statefulsets"),
        Kind::DaemonSet => ("apps", "v1", "daemonsets"),
        Kind::ReplicaSet => ("apps", "v1", "replicasets"),
        Kind::ReplicationController => ("", "v1", "replicationcontrollers"),
        Kind::Job => ("batch", "v1", "jobs"),
        Kind::CronJob => ("batch", "v1", "cronjobs"),
        Kind::Pod => ("", "v1", "pods"),
        Kind::Namespace => ("", "v1", "namespaces"),
        Kind::Service => ("", "v1", "services"),
        Kind::Route => ("route.openshift.io", "v1", "routes"),
        Kind::NetworkPolicy => ("networking.k8s.io", "v1", "networkpolicies"),
        Kind::ServiceAccount => ("", "v1", "serviceaccounts"),
        Kind::Role => ("rbac.authorization.k8s.io", "v1", "roles"),
        Kind::ClusterRole => ("rbac.authorization.k8s.io", "v1", "clusterroles"),
        Kind::RoleBinding => ("rbac.authorization.k8s.io", "v1", "rolebindings"),
        Kind::ClusterRoleBinding => ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
        Kind::Node => ("", "v1", "nodes"),
        Kind::Secret => ("", "v1", "secrets"),
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind.name());
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

/// The kinds to watch on this cluster: all of them, Routes only where the API serves them.
pub async fn kinds_to_watch(client: &kube::Client) -> Vec<Kind> {
    let routes = match client.list_api_groups().await {
        Ok(groups) => groups.groups.iter().any(|g| g.name == "route.openshift.io"),
        Err(error) => {
            tracing::warn!(%error, "API group discovery failed; not watching Routes");
            false
        }
    };
    Kind::ALL
        .into_iter()
        .filter(|k| *k != Kind::Route || routes)
        .collect()
}

fn to_value(kind: Kind, object: DynamicObject) -> Option<serde_json::Value> {
    match serde_json::to_value(object) {
        Ok(mut v) => {
            // DynamicObject carries type information separately; put it back on the object.
            if let Some(o) = v.as_object_mut() {
                let ar = api_resource(kind);
                o.insert("apiVersion".into(), ar.api_version.into());
                o.insert("kind".into(), kind.name().into());
            }
            Some(v)
        }
        Err(error) => {
            tracing::warn!(kind = kind.name(), %error, "skipping an object that cannot be encoded");
            None
        }
    }
}

/// Watches one kind until the task is dropped; `shared.changed` moves after each applied event.
pub async fn watch_kind(client: kube::Client, kind: Kind, shared: Arc<Shared>) {
    let api: Api<DynamicObject> = Api::all_with(client, &api_resource(kind));
    let mut events = watcher(api, watcher::Config::default().page_size(500))
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(error) => {
                // The backoff retries; the index keeps what it has.
                tracing::warn!(kind = kind.name(), %error, "watch failed; retrying with backoff");
                continue;
            }
        };
        {
            let mut index = crate::lock(&shared.index);
            match event {
                watcher::Event::Init => index.begin_relist(kind),
                watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                    if let Some(v) = to_value(kind, o) {
                        index.apply(kind, v);
                    }
                }
                watcher::Event::Delete(o) => {
                    if let Some(v) = to_value(kind, o) {
                        index.delete(kind, &v);
                    }
                }
                watcher::Event::InitDone => index.end_relist(kind),
            }
        }
        shared.notify_changed();
    }
}
