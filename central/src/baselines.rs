//! Process baselines (ACS's semantics): per deployment and container, the executables it is
//! known to run, keyed on the executable's path.
//!
//! - **Learning.** The first process of a container opens its baseline and a learning window
//!   (`BaselineSettings::learning`, one hour by default); what runs in the window is added.
//! - **Automatic lock.** When the window ends the baseline is locked by Rampart: later processes
//!   are not added, and those outside it count as suspicious in the risk score.
//! - **User lock.** A person locks a baseline (API, CLI, console): the Sensors receive it, and a
//!   process outside it violates "Unexpected Process Executed" (the default policy
//!   "Unauthorized Process Execution"). Only user-locked baselines raise alerts.
//! - Elements can be added and removed by hand; "resolve and add to baseline" adds an alert's
//!   processes.
//!
//! Baselines live in memory (loaded at start, bounded by the containers of the fleet) and every
//! change is written through to [`Table::Baselines`] in the same batch as the event that caused
//! it. Changes to user-locked baselines bump a version the Sensor streams watch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Backend, Result, Store, Table, WriteBatch};

/// Suspicious executables remembered per baseline.
const MAX_SUSPICIOUS: usize = 50;
/// Elements per baseline (a container that runs more is not a baseline any more).
pub const MAX_ELEMENTS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineSettings {
    /// How long a new container's processes are learned before the baseline locks itself.
    pub learning: Duration,
    /// How long a new deployment's network peers are added to its network baseline.
    pub network_observation: Duration,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        BaselineSettings {
            learning: Duration::from_secs(3600),
            network_observation: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    pub added_unix_ms: i64,
    /// Learned (true) or added by a person (false).
    pub auto: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessBaseline {
    pub cluster_id: String,
    pub deployment_id: String,
    pub container_name: String,
    /// Executable path → how it got in.
    pub elements: BTreeMap<String, Element>,
    pub created_unix_ms: i64,
    /// The learning window ends here; Rampart locks the baseline then.
    pub learning_until_unix_ms: i64,
    #[serde(default)]
    pub user_locked_unix_ms: Option<i64>,
    /// Executables seen outside the baseline after it locked (newest last, bounded).
    #[serde(default)]
    pub suspicious: Vec<String>,
    pub last_update_unix_ms: i64,
}

impl ProcessBaseline {
    /// An empty baseline created at `now_ms`, learning until `learning_until_unix_ms`.
    fn new(
        cluster: &str,
        deployment: &str,
        container: &str,
        now_ms: i64,
        learning_until_unix_ms: i64,
    ) -> ProcessBaseline {
        ProcessBaseline {
            cluster_id: cluster.to_string(),
            deployment_id: deployment.to_string(),
            container_name: container.to_string(),
            elements: BTreeMap::new(),
            created_unix_ms: now_ms,
            learning_until_unix_ms,
            user_locked_unix_ms: None,
            suspicious: Vec::new(),
            last_update_unix_ms: now_ms,
        }
    }

    /// Locked by Rampart (the learning window is over) or by a person.
    pub fn is_locked(&self, now_ms: i64) -> bool {
        self.user_locked_unix_ms.is_some() || now_ms >= self.learning_until_unix_ms
    }

    pub fn is_user_locked(&self) -> bool {
        self.user_locked_unix_ms.is_some()
    }

    fn key(&self) -> String {
        key(&self.cluster_id, &self.deployment_id, &self.container_name)
    }
}

fn key(cluster: &str, deployment: &str, container: &str) -> String {
    format!("{cluster}\0{deployment}\0{container}")
}

/// What a process did to its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Learned (the window is open).
    Added,
    /// Already in the baseline.
    Known,
    /// Outside a locked baseline: suspicious.
    Outside,
}

/// Every baseline, in memory, written through to the store.
#[derive(Debug)]
pub struct Baselines {
    settings: BaselineSettings,
    by_key: Mutex<HashMap<String, ProcessBaseline>>,
    /// Bumped when a user-locked baseline changes (what the Sensors hold).
    version: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Baselines {
    /// Loads every stored baseline.
    pub fn load<B: Backend>(store: &Store<B>, settings: BaselineSettings) -> Result<Baselines> {
        let mut by_key = HashMap::new();
        store.for_each_record::<ProcessBaseline>(Table::Baselines, "proc\0", |_, b| {
            by_key.insert(b.key(), b);
            Ok(())
        })?;
        Ok(Baselines {
            settings,
            by_key: Mutex::new(by_key),
            version: tokio::sync::watch::channel(0).0,
        })
    }

    pub fn settings(&self) -> BaselineSettings {
        self.settings
    }

    /// Watched by the Sensor streams: the user-locked baselines changed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn write(batch: &mut WriteBatch, b: &ProcessBaseline) -> Result<()> {
        batch.touch_deployment(&b.cluster_id, &b.deployment_id);
        batch.put_parts(
            Table::Baselines,
            &["proc", &b.cluster_id, &b.deployment_id, &b.container_name],
            b,
        )
    }

    /// A process ran: learned while the window is open, else checked against the baseline.
    pub fn observe(
        &self,
        cluster: &str,
        deployment: &str,
        container: &str,
        exec_file_path: &str,
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<Observed> {
        if exec_file_path.is_empty() || container.is_empty() {
            return Ok(Observed::Known);
        }
        let mut all = lock(&self.by_key);
        let k = key(cluster, deployment, container);
        let learning_ms = i64::try_from(self.settings.learning.as_millis()).unwrap_or(i64::MAX);
        let b = all.entry(k).or_insert_with(|| {
            ProcessBaseline::new(
                cluster,
                deployment,
                container,
                now_ms,
                now_ms.saturating_add(learning_ms),
            )
        });
        if b.elements.contains_key(exec_file_path) {
            return Ok(Observed::Known);
        }
        if !b.is_locked(now_ms) && b.elements.len() < MAX_ELEMENTS {
            b.elements.insert(
                exec_file_path.to_string(),
                Element {
                    added_unix_ms: now_ms,
                    auto: true,
                },
            );
            b.last_update_unix_ms = now_ms;
            Self::write(batch, b)?;
            return Ok(Observed::Added);
        }
        if !b.suspicious.iter().any(|s| s == exec_file_path) {
            b.suspicious.push(exec_file_path.to_string());
            if b.suspicious.len() > MAX_SUSPICIOUS {
                b.suspicious.remove(0);
            }
            b.last_update_unix_ms = now_ms;
            Self::write(batch, b)?;
        }
        Ok(Observed::Outside)
    }

    /// The baselines of one deployment, by container name.
    pub fn of_deployment(&self, cluster: &str, deployment: &str) -> Vec<ProcessBaseline> {
        let prefix = format!("{cluster}\0{deployment}\0");
        let mut out: Vec<ProcessBaseline> = lock(&self.by_key)
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, b)| b.clone())
            .collect();
        out.sort_by(|a, b| a.container_name.cmp(&b.container_name));
        out
    }

    /// Executables seen outside the deployment's locked baselines (for the risk score).
    pub fn suspicious(&self, cluster: &str, deployment: &str, now_ms: i64) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for b in self.of_deployment(cluster, deployment) {
            if b.is_locked(now_ms) {
                out.extend(b.suspicious.iter().cloned());
            }
        }
        out.into_iter().collect()
    }

    /// Locks (or unlocks) the baselines of a deployment (`container`: one of them). Returns the
    /// baselines changed; an unknown deployment or container changes nothing.
    pub fn set_user_lock(
        &self,
        cluster: &str,
        deployment: &str,
        container: Option<&str>,
        locked: bool,
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<Vec<ProcessBaseline>> {
        let mut changed = Vec::new();
        let prefix = format!("{cluster}\0{deployment}\0");
        for (k, b) in lock(&self.by_key).iter_mut() {
            if !k.starts_with(&prefix) || container.is_some_and(|c| c != b.container_name) {
                continue;
            }
            if b.is_user_locked() == locked {
                continue;
            }
            b.user_locked_unix_ms = locked.then_some(now_ms);
            b.last_update_unix_ms = now_ms;
            Self::write(batch, b)?;
            changed.push(b.clone());
        }
        Ok(changed)
    }

    /// Adds and removes elements of one container's baseline (created when missing, already
    /// past learning: a person is defining it). Added executables are no longer suspicious.
    #[allow(clippy::too_many_arguments)]
    pub fn edit(
        &self,
        cluster: &str,
        deployment: &str,
        container: &str,
        add: &[String],
        remove: &[String],
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<ProcessBaseline> {
        let mut all = lock(&self.by_key);
        let b = all
            .entry(key(cluster, deployment, container))
            .or_insert_with(|| {
                ProcessBaseline::new(cluster, deployment, container, now_ms, now_ms)
            });
        for path in add.iter().filter(|p| !p.is_empty()) {
            if b.elements.len() >= MAX_ELEMENTS {
                break;
            }
            b.elements.entry(path.clone()).or_insert(Element {
                added_unix_ms: now_ms,
                auto: false,
            });
            b.suspicious.retain(|s| s != path);
        }
        for path in remove {
            b.elements.remove(path);
        }
        b.last_update_unix_ms = now_ms;
        Self::write(batch, b)?;
        Ok(b.clone())
    }

    /// The user-locked baselines of a cluster, as the Sensor receives them.
    pub fn locked_in(&self, cluster: &str) -> Vec<rampart_proto::v1::LockedBaseline> {
        let prefix = format!("{cluster}\0");
        let mut out: Vec<rampart_proto::v1::LockedBaseline> = lock(&self.by_key)
            .iter()
            .filter(|(k, b)| k.starts_with(&prefix) && b.is_user_locked())
            .map(|(_, b)| rampart_proto::v1::LockedBaseline {
                deployment_id: b.deployment_id.clone(),
                container_name: b.container_name.clone(),
                exec_file_paths: b.elements.keys().cloned().collect(),
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.deployment_id, &a.container_name).cmp(&(&b.deployment_id, &b.container_name))
        });
        out
    }

    /// Announces a change to user-locked baselines once its batch is committed.
    pub fn announce(&self) {
        self.bump();
    }

    /// Forgets a removed deployment's baselines.
    pub fn forget(&self, cluster: &str, deployment: &str, batch: &mut WriteBatch) -> Result<()> {
        let prefix = format!("{cluster}\0{deployment}\0");
        let mut all = lock(&self.by_key);
        let gone: Vec<String> = all
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        let mut was_locked = false;
        for k in gone {
            if let Some(b) = all.remove(&k) {
                was_locked |= b.is_user_locked();
                let parts: Vec<&str> = std::iter::once("proc").chain(k.split('\0')).collect();
                batch.delete_parts(Table::Baselines, &parts)?;
            }
        }
        drop(all);
        if was_locked {
            self.bump();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baselines() -> Baselines {
        Baselines {
            settings: BaselineSettings {
                learning: Duration::from_secs(60),
                ..BaselineSettings::default()
            },
            by_key: Mutex::default(),
            version: tokio::sync::watch::channel(0).0,
        }
    }

    #[test]
    fn learns_then_locks_itself_then_a_person_locks_it() {
        let b = baselines();
        let mut batch = WriteBatch::default();
        let observe = |path: &str, at: i64, batch: &mut WriteBatch| {
            b.observe("prod", "web", "app", path, at, batch)
                .expect("observe")
        };
        assert_eq!(observe("/usr/bin/java", 0, &mut batch), Observed::Added);
        assert_eq!(observe("/usr/bin/java", 1_000, &mut batch), Observed::Known);
        assert_eq!(observe("/bin/sh", 59_999, &mut batch), Observed::Added);
        // The window is over: locked by Rampart, nothing more is learned.
        assert_eq!(
            observe("/usr/bin/curl", 60_000, &mut batch),
            Observed::Outside
        );
        assert_eq!(
            observe("/usr/bin/curl", 61_000, &mut batch),
            Observed::Outside
        );
        assert_eq!(b.suspicious("prod", "web", 61_000), ["/usr/bin/curl"]);
        let stored = b.of_deployment("prod", "web");
        assert_eq!(
            stored[0].elements.keys().collect::<Vec<_>>(),
            ["/bin/sh", "/usr/bin/java"]
        );
        assert!(stored[0].is_locked(60_000) && !stored[0].is_user_locked());
        // Not user-locked: nothing for the Sensors.
        assert!(b.locked_in("prod").is_empty());
        let changed = b
            .set_user_lock("prod", "web", None, true, 70_000, &mut batch)
            .expect("lock");
        assert_eq!(changed.len(), 1);
        let locked = b.locked_in("prod");
        assert_eq!(locked[0].exec_file_paths, ["/bin/sh", "/usr/bin/java"]);
        assert!(b.locked_in("staging").is_empty());
        // Adding curl by hand: in the baseline, no longer suspicious.
        b.edit(
            "prod",
            "web",
            "app",
            &["/usr/bin/curl".into()],
            &["/bin/sh".into()],
            80_000,
            &mut batch,
        )
        .expect("edit");
        assert!(b.suspicious("prod", "web", 80_000).is_empty());
        assert_eq!(
            b.locked_in("prod")[0].exec_file_paths,
            ["/usr/bin/curl", "/usr/bin/java"]
        );
        // Unlocking: nothing for the Sensors again.
        b.set_user_lock("prod", "web", Some("app"), false, 90_000, &mut batch)
            .expect("unlock");
        assert!(b.locked_in("prod").is_empty());
        assert!(batch.touched.iter().all(|k| k == "prod\0web"));
    }

    #[test]
    fn suspicious_and_elements_are_bounded() {
        let b = baselines();
        let mut batch = WriteBatch::default();
        b.observe("c", "d", "app", "/first", 0, &mut batch)
            .expect("observe");
        for i in 0..(MAX_SUSPICIOUS + 10) {
            b.observe("c", "d", "app", &format!("/x{i}"), 120_000, &mut batch)
                .expect("observe");
        }
        let s = b.suspicious("c", "d", 120_000);
        assert_eq!(s.len(), MAX_SUSPICIOUS);
        assert!(!s.contains(&"/x0".to_string()), "the oldest went first");
    }
}
