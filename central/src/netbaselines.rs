//! Network baselines (ACS's semantics): per deployment, the peers it talks to — each a direction,
//! a peer (a deployment, or an external entity of the network graph), a port and a protocol.
//!
//! - **Observation.** The first flow of a deployment opens its baseline and an observation
//!   period (`NetworkBaselineSettings::observation`, one hour by default); flows seen in it are
//!   added. After it, nothing is added by itself.
//! - **Lock.** A person locks the baseline; then a flow outside it is anomalous — highlighted in
//!   the graph and raising "Unexpected Network Flow Detected" (default policy "Unauthorized
//!   Network Flow"). Unlocked baselines flag nothing, except rejected peers.
//! - **Accept / reject** per peer: accepted peers join the baseline; rejected ones leave it and
//!   are anomalous from then on, locked or not.
//!
//! Like process baselines they live in memory, written through to [`Table::Baselines`] under
//! `net\0...` keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Backend, Result, Store, Table, WriteBatch};

/// Peers kept per baseline.
pub const MAX_PEERS: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkBaselineSettings {
    pub observation: Duration,
}

impl Default for NetworkBaselineSettings {
    fn default() -> Self {
        NetworkBaselineSettings {
            observation: Duration::from_secs(3600),
        }
    }
}

/// One peer of a deployment: `in|out`, the peer node's id, port and protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// The flow comes in to the deployment (it is the destination).
    pub ingress: bool,
    /// A deployment id, or an entity of the graph (`cidr:<name>`, `private`, `internet`).
    pub peer: String,
    pub port: u32,
    pub protocol: String,
}

impl Peer {
    pub fn describe(&self, peer_name: &str) -> String {
        if self.ingress {
            format!(
                "Unexpected incoming network flow from {peer_name} on port {}/{}",
                self.port, self.protocol
            )
        } else {
            format!(
                "Unexpected outgoing network flow to {peer_name} on port {}/{}",
                self.port, self.protocol
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBaseline {
    pub cluster_id: String,
    pub deployment_id: String,
    /// Peer → when it was added and whether it was learned (true) or accepted (false).
    pub peers: Vec<(Peer, i64, bool)>,
    #[serde(default)]
    pub rejected: BTreeSet<Peer>,
    pub observation_until_unix_ms: i64,
    #[serde(default)]
    pub user_locked_unix_ms: Option<i64>,
    pub last_update_unix_ms: i64,
}

impl NetworkBaseline {
    /// An empty baseline created at `now_ms`, observing until `observation_until_unix_ms`.
    fn new(
        cluster: &str,
        deployment: &str,
        now_ms: i64,
        observation_until_unix_ms: i64,
    ) -> NetworkBaseline {
        NetworkBaseline {
            cluster_id: cluster.to_string(),
            deployment_id: deployment.to_string(),
            peers: Vec::new(),
            rejected: BTreeSet::new(),
            observation_until_unix_ms,
            user_locked_unix_ms: None,
            last_update_unix_ms: now_ms,
        }
    }

    pub fn contains(&self, p: &Peer) -> bool {
        self.peers.iter().any(|(x, _, _)| x == p)
    }

    pub fn is_locked(&self) -> bool {
        self.user_locked_unix_ms.is_some()
    }

    /// Whether a flow to or from `p` leaves the baseline.
    pub fn is_anomalous(&self, p: &Peer) -> bool {
        self.is_anomalous_within(p, None)
    }

    /// As `is_anomalous`, where `broader` is the same flow with the peer as the entity it
    /// belonged to before a CIDR block named it (`internet`, `private`): what the baseline
    /// learned as the Internet stays known once a block covers the address.
    pub fn is_anomalous_within(&self, p: &Peer, broader: Option<&Peer>) -> bool {
        if self.rejected.contains(p) {
            return true;
        }
        self.is_locked()
            && !self.contains(p)
            && !broader.is_some_and(|b| self.contains(b) && !self.rejected.contains(b))
    }

    fn knows(&self, p: &Peer, broader: Option<&Peer>) -> bool {
        self.contains(p) || broader.is_some_and(|b| self.contains(b))
    }
}

fn key(cluster: &str, deployment: &str) -> String {
    format!("{cluster}\0{deployment}")
}

/// What one flow did to a deployment's baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowObserved {
    Known,
    Added,
    /// Outside the baseline, not anomalous (observation over, not locked).
    Unlisted,
    /// Anomalous: the baseline is locked and lacks the peer, or the peer was rejected.
    Anomalous(Peer),
}

#[derive(Debug)]
pub struct NetworkBaselines {
    settings: NetworkBaselineSettings,
    by_key: Mutex<HashMap<String, NetworkBaseline>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl NetworkBaselines {
    pub fn load<B: Backend>(
        store: &Store<B>,
        settings: NetworkBaselineSettings,
    ) -> Result<NetworkBaselines> {
        let mut by_key = HashMap::new();
        store.for_each_record::<NetworkBaseline>(Table::Baselines, "net\0", |_, b| {
            by_key.insert(key(&b.cluster_id, &b.deployment_id), b);
            Ok(())
        })?;
        Ok(NetworkBaselines {
            settings,
            by_key: Mutex::new(by_key),
        })
    }

    fn write(batch: &mut WriteBatch, b: &NetworkBaseline) -> Result<()> {
        batch.put_parts(
            Table::Baselines,
            &["net", &b.cluster_id, &b.deployment_id],
            b,
        )
    }

    /// A flow of `deployment` with `peer`.
    pub fn observe(
        &self,
        cluster: &str,
        deployment: &str,
        peer: Peer,
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<FlowObserved> {
        self.observe_within(cluster, deployment, peer, None, now_ms, batch)
    }

    /// A flow of `deployment` with `peer`, `broader` being the entity the peer belonged to
    /// before a CIDR block named it (see `NetworkBaseline::is_anomalous_within`).
    pub fn observe_within(
        &self,
        cluster: &str,
        deployment: &str,
        peer: Peer,
        broader: Option<Peer>,
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<FlowObserved> {
        if deployment.contains('\0') || cluster.contains('\0') {
            return Ok(FlowObserved::Unlisted);
        }
        let observation = i64::try_from(self.settings.observation.as_millis()).unwrap_or(i64::MAX);
        let mut all = lock(&self.by_key);
        let b = all.entry(key(cluster, deployment)).or_insert_with(|| {
            NetworkBaseline::new(
                cluster,
                deployment,
                now_ms,
                now_ms.saturating_add(observation),
            )
        });
        if b.is_anomalous_within(&peer, broader.as_ref()) {
            return Ok(FlowObserved::Anomalous(peer));
        }
        if b.knows(&peer, broader.as_ref()) {
            return Ok(FlowObserved::Known);
        }
        if !b.is_locked() && now_ms < b.observation_until_unix_ms && b.peers.len() < MAX_PEERS {
            b.peers.push((peer, now_ms, true));
            b.peers.sort();
            b.last_update_unix_ms = now_ms;
            Self::write(batch, b)?;
            return Ok(FlowObserved::Added);
        }
        Ok(FlowObserved::Unlisted)
    }

    pub fn get(&self, cluster: &str, deployment: &str) -> Option<NetworkBaseline> {
        lock(&self.by_key).get(&key(cluster, deployment)).cloned()
    }

    /// Whether a flow with `peer` is anomalous for `deployment` (for the graph); `broader` as
    /// in `observe_within`.
    pub fn is_anomalous(
        &self,
        cluster: &str,
        deployment: &str,
        peer: &Peer,
        broader: Option<&Peer>,
    ) -> bool {
        lock(&self.by_key)
            .get(&key(cluster, deployment))
            .is_some_and(|b| b.is_anomalous_within(peer, broader))
    }

    /// Locks or unlocks; `None` when the deployment has no baseline yet.
    pub fn set_lock(
        &self,
        cluster: &str,
        deployment: &str,
        locked: bool,
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<Option<NetworkBaseline>> {
        let mut all = lock(&self.by_key);
        let Some(b) = all.get_mut(&key(cluster, deployment)) else {
            return Ok(None);
        };
        if b.is_locked() != locked {
            b.user_locked_unix_ms = locked.then_some(now_ms);
            b.last_update_unix_ms = now_ms;
            Self::write(batch, b)?;
        }
        Ok(Some(b.clone()))
    }

    /// Accepts peers into the baseline and rejects others (created when missing, observation
    /// over: a person is defining it).
    pub fn decide(
        &self,
        cluster: &str,
        deployment: &str,
        accept: &[Peer],
        reject: &[Peer],
        now_ms: i64,
        batch: &mut WriteBatch,
    ) -> Result<NetworkBaseline> {
        let mut all = lock(&self.by_key);
        let b = all
            .entry(key(cluster, deployment))
            .or_insert_with(|| NetworkBaseline::new(cluster, deployment, now_ms, now_ms));
        for p in accept {
            b.rejected.remove(p);
            if !b.contains(p) && b.peers.len() < MAX_PEERS {
                b.peers.push((p.clone(), now_ms, false));
            }
        }
        for p in reject {
            b.peers.retain(|(x, _, _)| x != p);
            b.rejected.insert(p.clone());
        }
        b.peers.sort();
        b.last_update_unix_ms = now_ms;
        Self::write(batch, b)?;
        Ok(b.clone())
    }

    /// Forgets a removed deployment's baseline.
    pub fn forget(&self, cluster: &str, deployment: &str, batch: &mut WriteBatch) -> Result<()> {
        if lock(&self.by_key)
            .remove(&key(cluster, deployment))
            .is_some()
        {
            batch.delete_parts(Table::Baselines, &["net", cluster, deployment])?;
        }
        Ok(())
    }

    /// Peers grouped for display: (peer, learned?, added at).
    pub fn peers_of(&self, cluster: &str, deployment: &str) -> BTreeMap<Peer, (bool, i64)> {
        self.get(cluster, deployment)
            .map(|b| {
                b.peers
                    .into_iter()
                    .map(|(p, at, auto)| (p, (auto, at)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(p: &str, port: u32) -> Peer {
        Peer {
            ingress: false,
            peer: p.into(),
            port,
            protocol: "TCP".into(),
        }
    }

    #[test]
    fn observed_then_locked_then_accept_and_reject() {
        let n = NetworkBaselines {
            settings: NetworkBaselineSettings {
                observation: Duration::from_secs(60),
            },
            by_key: Mutex::default(),
        };
        let mut batch = WriteBatch::default();
        let mut see = |p: Peer, at: i64| n.observe("c", "web", p, at, &mut batch).expect("observe");
        assert_eq!(see(peer("db", 5432), 0), FlowObserved::Added);
        assert_eq!(see(peer("db", 5432), 10), FlowObserved::Known);
        assert_eq!(see(peer("internet", 443), 59_999), FlowObserved::Added);
        // Observation over, not locked: listed nowhere, flagged nowhere.
        assert_eq!(see(peer("cache", 6379), 60_000), FlowObserved::Unlisted);
        let mut batch = WriteBatch::default();
        n.set_lock("c", "web", true, 70_000, &mut batch)
            .expect("lock");
        let mut see = |p: Peer, at: i64| n.observe("c", "web", p, at, &mut batch).expect("observe");
        assert_eq!(see(peer("db", 5432), 80_000), FlowObserved::Known);
        assert_eq!(
            see(peer("cache", 6379), 80_000),
            FlowObserved::Anomalous(peer("cache", 6379))
        );
        // Accept cache, reject the Internet: the Internet is anomalous even unlocked.
        let mut batch = WriteBatch::default();
        n.decide(
            "c",
            "web",
            &[peer("cache", 6379)],
            &[peer("internet", 443)],
            90_000,
            &mut batch,
        )
        .expect("decide");
        n.set_lock("c", "web", false, 91_000, &mut batch)
            .expect("unlock");
        assert!(!n.is_anomalous("c", "web", &peer("cache", 6379), None));
        assert!(n.is_anomalous("c", "web", &peer("internet", 443), None));
        assert!(
            !n.is_anomalous("c", "web", &peer("elsewhere", 1), None),
            "unlocked"
        );
    }

    #[test]
    fn a_peer_learned_as_the_internet_stays_known_once_a_block_names_it() {
        let n = NetworkBaselines {
            settings: NetworkBaselineSettings {
                observation: Duration::from_secs(60),
            },
            by_key: Mutex::default(),
        };
        let mut batch = WriteBatch::default();
        n.observe("c", "web", peer("internet", 443), 0, &mut batch)
            .expect("observe");
        n.set_lock("c", "web", true, 1, &mut batch).expect("lock");
        let internet = peer("internet", 443);
        let named = peer("cidr:partner", 443);
        assert_eq!(
            n.observe_within(
                "c",
                "web",
                named.clone(),
                Some(internet.clone()),
                2,
                &mut batch
            )
            .expect("observe"),
            FlowObserved::Known
        );
        assert!(!n.is_anomalous("c", "web", &named, Some(&internet)));
        assert!(
            n.is_anomalous("c", "web", &named, None),
            "without the broader entity"
        );
        assert!(
            n.is_anomalous(
                "c",
                "web",
                &peer("cidr:partner", 22),
                Some(&peer("internet", 22))
            ),
            "another port is new"
        );
    }
}
