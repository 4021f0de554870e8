//! Group commit: many writers, one flush.
//!
//! A flush makes everything applied so far durable, and costs about as much for one record as for
//! a thousand. Writers hand their batches to one committer task through a bounded queue; it
//! applies every batch waiting, flushes once, and only then tells each writer its batch is
//! durable. Completion follows submission order, so a Sensor stream can acknowledge sequence
//! numbers in the order it submitted them.
//!
//! ```text
//!  stream A ─┐                 ┌─ apply A1, B1, A2 ... ─ flush ─┐
//!  stream B ─┼─▶ bounded queue ┤                                ├─▶ done(A1) done(B1) done(A2)
//!  stream C ─┘                 └────────────────────────────────┘
//! ```

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Backend, Store, WriteBatch};

/// Why a commit did not become durable. Cloneable: one failed flush fails a whole group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("store write failed: {0}")]
    Store(Arc<crate::store::Error>),
    #[error("the committer has stopped")]
    Stopped,
}

struct Job {
    batch: WriteBatch,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// Handle to the committer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("ops", &self.batch.ops.len())
            .finish()
    }
}

impl Committer {
    /// Starts the committer. `queue_capacity` bounds waiting batches (writers wait when it is
    /// full: back-pressure instead of memory growth); `max_group` bounds batches per flush.
    pub fn spawn<B: Backend>(
        store: Arc<Store<B>>,
        queue_capacity: usize,
        max_group: usize,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (queue, mut rx) = mpsc::channel::<Job>(queue_capacity.max(1));
        let max_group = max_group.max(1);
        let task = tokio::spawn(async move {
            let mut group = Vec::with_capacity(max_group);
            while rx.recv_many(&mut group, max_group).await > 0 {
                let jobs = std::mem::take(&mut group);
                let store = Arc::clone(&store);
                // sled's flush blocks on fsync: keep it off the async workers.
                let outcome = tokio::task::spawn_blocking(move || {
                    // One atomic write for the whole group, then one flush: the group lands whole
                    // or not at all, and every writer in it gets the same answer.
                    let mut merged = WriteBatch::default();
                    let mut waiting = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        merged.extend(job.batch);
                        waiting.push(job.done);
                    }
                    merged.compact();
                    let result = store
                        .apply(&merged)
                        .and_then(|()| store.flush())
                        .map_err(|e| CommitError::Store(Arc::new(e)));
                    for done in waiting {
                        let _ = done.send(result.clone());
                    }
                })
                .await;
                if outcome.is_err() {
                    // The blocking task panicked; its senders were dropped, so writers see Stopped.
                    break;
                }
            }
        });
        (Committer { queue }, task)
    }

    /// Submits a batch; the returned future resolves once the batch is durable.
    pub async fn submit(&self, batch: WriteBatch) -> Result<Durable, CommitError> {
        let (done, rx) = oneshot::channel();
        self.queue
            .send(Job { batch, done })
            .await
            .map_err(|_| CommitError::Stopped)?;
        Ok(Durable { rx })
    }

    /// Submits and waits for durability.
    pub async fn commit(&self, batch: WriteBatch) -> Result<(), CommitError> {
        self.submit(batch).await?.wait().await
    }
}

/// A submitted batch; `wait` resolves when it is durable (or failed).
#[derive(Debug)]
pub struct Durable {
    rx: oneshot::Receiver<Result<(), CommitError>>,
}

impl Durable {
    pub async fn wait(self) -> Result<(), CommitError> {
        self.rx.await.unwrap_or(Err(CommitError::Stopped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeploymentRecord;
    use crate::store::SledBackend;

    fn record(i: usize) -> DeploymentRecord {
        DeploymentRecord {
            cluster_id: "c1".into(),
            id: format!("d{i:05}"),
            namespace: "shop".into(),
            name: format!("web-{i}"),
            kind: "Deployment".into(),
            object: serde_json::value::to_raw_value(&serde_json::json!({"kind": "Deployment"}))
                .expect("json"),
            content_hash: 0,
            updated_unix_ms: 0,
            generation: 0,
            active_alerts: Vec::new(),
            context: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_are_durable_once_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Arc::new(
                Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store"),
            );
            let (committer, task) = Committer::spawn(Arc::clone(&store), 64, 256);
            let mut writers = Vec::new();
            for w in 0..4 {
                let committer = committer.clone();
                writers.push(tokio::spawn(async move {
                    // Pipeline: submit many, then wait for them in order.
                    let mut pending = Vec::new();
                    for i in 0..250 {
                        let mut batch = WriteBatch::default();
                        batch.put_deployment(&record(w * 1000 + i)).expect("put");
                        pending.push(committer.submit(batch).await.expect("submitted"));
                    }
                    for p in pending {
                        p.wait().await.expect("durable");
                    }
                }));
            }
            for w in writers {
                w.await.expect("writer");
            }
            drop(committer);
            task.await
                .expect("committer ends when every handle is gone");
        }
        // Reopen: everything acknowledged is there.
        let store = Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store");
        let mut count = 0;
        store
            .for_each_deployment_id("c1", |_| count += 1)
            .expect("scan");
        assert_eq!(count, 1000);
    }

    #[tokio::test]
    async fn a_stopped_committer_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store"));
        let (committer, task) = Committer::spawn(store, 1, 1);
        task.abort();
        let _ = task.await;
        let err = committer
            .commit(WriteBatch::default())
            .await
            .expect_err("stopped");
        assert!(matches!(err, CommitError::Stopped));
    }
}
