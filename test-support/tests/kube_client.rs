//! kube-rs, unchanged, against the test API server: the protocol the Sensor relies on.
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rampart_test_support::ApiServer;
use serde_json::json;

async fn client(server: &ApiServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}
    }))
    .expect("deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_watches_writes_and_scales() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = ApiServer::start().await.expect("server");
    let client = client(&server).await;
    assert_eq!(
        client.apiserver_version().await.expect("version").minor,
        "34"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            )
            .expect("ns"),
        )
        .await
        .expect("create namespace");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    for i in 0..7 {
        deployments
            .create(&PostParams::default(), &deployment(&format!("web-{i}"), 2))
            .await
            .expect("create");
    }
    // Already there: 409 AlreadyExists, as a Status kube-rs understands.
    let err = deployments
        .create(&PostParams::default(), &deployment("web-0", 2))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    // Chunked list: three pages of at most three, one resource version.
    let first = deployments
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("more pages");
    let second = deployments
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 3);
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );

    // The watcher (list + watch, bookmarks) sees the initial state, then changes.
    let mut events = watcher(deployments.clone(), watcher::Config::default()).boxed();
    let mut initial = 0;
    loop {
        match events.next().await.expect("event").expect("ok") {
            watcher::Event::InitApply(_) => initial += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 7);
    deployments
        .patch(
            "web-3",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}})),
        )
        .await
        .expect("patch");
    let changed = loop {
        if let watcher::Event::Apply(d) = events.next().await.expect("event").expect("ok") {
            break d;
        }
    };
    assert_eq!(changed.metadata.name.as_deref(), Some("web-3"));
    assert_eq!(
        changed
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers[0].image.clone()),
        Some(Some("nginx:1.28".to_string()))
    );

    // Scale subresource.
    deployments
        .patch_scale(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scale");
    let scaled = deployments.get("web-1").await.expect("get");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(0));

    // Owner-reference garbage collection: a pod owned by the deployment goes with it.
    let owner = deployments.get("web-2").await.expect("get");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-2-abc", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": "web-2", "uid": owner.metadata.uid, "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}))
        .expect("pod"),
    )
    .await
    .expect("create pod");
    deployments
        .delete("web-2", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(pods.get_opt("web-2-abc").await.expect("get").is_none());
    let deleted = loop {
        if let watcher::Event::Delete(d) = events.next().await.expect("event").expect("ok") {
            break d;
        }
    };
    assert_eq!(deleted.metadata.name.as_deref(), Some("web-2"));

    // A stale update is a conflict.
    let mut stale = deployments.get("web-4").await.expect("get");
    deployments
        .patch(
            "web-4",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("patch");
    stale.metadata.labels = None;
    let err = deployments
        .replace("web-4", &PostParams::default(), &stale)
        .await
        .expect_err("conflict");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_resource_version_makes_the_watcher_relist() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = ApiServer::start_with(rampart_test_support::apiserver::Options {
        history: 4,
        ..Default::default()
    })
    .await
    .expect("server");
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let old_version = server.resource_version();
    for i in 0..10 {
        server
            .apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
            .expect("apply");
    }
    // Too old for the retained history: the server says 410, and kube-rs surfaces it.
    let mut stream = pods
        .watch(&kube::api::WatchParams::default(), &old_version.to_string())
        .await
        .expect("watch")
        .boxed();
    match stream.next().await.expect("one event").expect("decoded") {
        kube::api::WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}
