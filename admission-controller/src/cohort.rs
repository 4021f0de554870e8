//! Reviews decided in cohorts: the reviews that arrive on a worker thread while it serves its
//! other connections are decided back to back, by one task, instead of each between its own
//! request's TLS and HTTP work.
//!
//! ```text
//!  request ─▶ body read ─▶ joins its thread's cohort ─┐        ┌─▶ answer ─▶ HTTP, TLS
//!  request ─▶ body read ─▶ joins ─────────────────────┼─ run ──┼─▶ answer
//!  request ─▶ body read ─▶ joins ─────────────────────┘ (after └─▶ answer
//!                                                    the ready tasks)
//! ```
//!
//! A decision reads some 150 KB of code and 100 KB of data (the engine, the decoder, the
//! compiled policies), more than a core's first-level caches keep, while TLS and HTTP work for
//! dozens of connections passes through them between two reviews. Deciding the waiting
//! reviews together lets all but the first of a cohort find more of the decision's code and
//! data still in the cache, and the TLS and HTTP work of the answers runs together too: cohort
//! scheduling (Larus and Parkes, 2002). Measured on 2 cores under load, cohorts averaged 9
//! reviews at 32 connections, and the denied UPDATE's throughput rose by about a tenth.
//!
//! A queue per thread leaves a thread idle while the other works through its cohort (at 8
//! connections the server used 1.72 of its 2 cores). One queue shared by the worker threads,
//! each thread's run taking a review at a time so that an idle thread helps, was tried and not
//! kept: answers then cross threads, and in five alternating pairs it lost 17 % at 8
//! connections (23,500 against 28,400 requests/s) for 4 % gained at 32.
//!
//! A run waits a scheduler turn before deciding, so that the tasks ready then (other
//! connections' requests) join it, only when the thread's last run decided `BATCHING` (3)
//! reviews or more: a thread serving few connections decides each review at once instead of
//! making it wait for company that does not come. Measured in four alternating saturated
//! pairs against always waiting: +4 % at 8 connections (28,048 against 26,876 requests/s),
//! the same at 32 (36,824 against 37,059); never waiting lost about 5 % at 32. A cohort holds
//! only reviews whose requests are waiting for them (bounded by the connections and streams
//! being served). A task that dies mid-cohort (a panic outside the decision, which answers
//! panics itself, or a runtime shutting down) drops its reviews: their requests are answered
//! by the failure mode, and the next review starts a new cohort.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::StatusCode;
use tokio::sync::oneshot;

use crate::server::{Endpoint, State};

/// What decides a review (the server's [`State`]).
pub trait Decide: Send + Sync + 'static {
    fn decide(&self, endpoint: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>);
}

impl Decide for State {
    fn decide(&self, endpoint: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>) {
        self.review(endpoint, body)
    }
}

/// One review waiting in a cohort.
struct Job {
    decider: Arc<dyn Decide>,
    endpoint: Endpoint,
    body: Bytes,
    answer: oneshot::Sender<(StatusCode, Vec<u8>)>,
}

/// The reviews waiting on one worker thread, and whether a task is deciding them.
#[derive(Default)]
struct Cohort {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    jobs: Vec<Job>,
    running: bool,
    /// Reviews the thread's last run decided.
    last_run: usize,
}

impl Cohort {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A run that decided this many reviews or more makes the next one wait a turn for others.
const BATCHING: usize = 3;

thread_local! {
    static COHORT: Arc<Cohort> = Arc::new(Cohort::default());
}

/// Decides a review with the others waiting on this thread: what `decider` answers, or
/// `failed` if the cohort's task died before deciding it. Runs on a Tokio runtime.
pub async fn review(
    decider: Arc<dyn Decide>,
    endpoint: Endpoint,
    body: Bytes,
    failed: impl FnOnce() -> (StatusCode, Vec<u8>),
) -> (StatusCode, Vec<u8>) {
    let (tx, rx) = oneshot::channel();
    let cohort = COHORT.with(Arc::clone);
    let start = {
        let mut waiting = cohort.lock();
        waiting.jobs.push(Job {
            decider,
            endpoint,
            body,
            answer: tx,
        });
        !std::mem::replace(&mut waiting.running, true)
    };
    if start {
        // Made before the task exists: a task dropped before it first runs (its runtime
        // shutting down) still ends its run.
        let run = Run {
            cohort,
            done: false,
        };
        tokio::spawn(run.decide());
    }
    rx.await.unwrap_or_else(|_| failed())
}

/// A task deciding its thread's waiting reviews until none is left. Its end, however it
/// comes, is seen: a run dropped mid-way or before it first ran (a panic, a runtime shutting
/// down) leaves no review waiting for ever, and the next review starts a new run.
struct Run {
    cohort: Arc<Cohort>,
    /// Ended with no review waiting, `running` cleared.
    done: bool,
}

impl Run {
    async fn decide(mut self) {
        // Let the tasks ready now (other connections' requests) join first, when the last
        // run found others to decide with: a thread serving few connections does not make
        // each review wait a scheduler turn for company that does not come.
        if self.cohort.lock().last_run >= BATCHING {
            tokio::task::yield_now().await;
        }
        let mut batch = Vec::new();
        let mut decided = 0;
        loop {
            {
                let mut waiting = self.cohort.lock();
                if waiting.jobs.is_empty() {
                    // Under the lock: a review joining after this starts a new run.
                    waiting.running = false;
                    waiting.last_run = decided;
                    self.done = true;
                    return;
                }
                std::mem::swap(&mut batch, &mut waiting.jobs);
            }
            decided += batch.len();
            for job in batch.drain(..) {
                // An answer whose request went away (the client hung up) is dropped.
                let _ = job.answer.send(job.decider.decide(job.endpoint, &job.body));
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut waiting = self.cohort.lock();
        waiting.running = false;
        // Their requests are answered by `failed`.
        waiting.jobs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Echoes each body; panics on `boom`; counts the reviews that had joined when it was
    /// first asked.
    #[derive(Default)]
    struct Echo {
        joined: AtomicUsize,
        joined_at_first_decision: AtomicUsize,
        decided: AtomicUsize,
    }

    impl Decide for Echo {
        fn decide(&self, _: Endpoint, body: &[u8]) -> (StatusCode, Vec<u8>) {
            if self.decided.fetch_add(1, Ordering::SeqCst) == 0 {
                self.joined_at_first_decision
                    .store(self.joined.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            assert_ne!(body, b"boom", "a defect outside the decision's own guard");
            (StatusCode::OK, body.to_vec())
        }
    }

    fn failed() -> (StatusCode, Vec<u8>) {
        (StatusCode::OK, b"failure mode".to_vec())
    }

    async fn ask(echo: &Arc<Echo>, body: &'static [u8]) -> Vec<u8> {
        echo.joined.fetch_add(1, Ordering::SeqCst);
        let decider: Arc<dyn Decide> = echo.clone();
        review(
            decider,
            Endpoint::Validate,
            Bytes::from_static(body),
            failed,
        )
        .await
        .1
    }

    #[tokio::test]
    async fn the_reviews_ready_together_are_decided_together_each_answered_its_own() {
        let echo = Arc::new(Echo::default());
        let bodies: Vec<&'static [u8]> = vec![b"r0", b"r1", b"r2", b"r3", b"r4", b"r5"];
        let tasks: Vec<_> = bodies
            .iter()
            .map(|&b| {
                let echo = Arc::clone(&echo);
                tokio::spawn(async move { (b, ask(&echo, b).await) })
            })
            .collect();
        for task in tasks {
            let (asked, answered) = task.await.expect("task");
            assert_eq!(answered, asked);
        }
        assert_eq!(
            echo.joined_at_first_decision.load(Ordering::SeqCst),
            bodies.len(),
            "one cohort: every review had joined before the first was decided"
        );
        // Later, alone: a cohort of one.
        assert_eq!(ask(&echo, b"late").await, b"late");
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Decisions of one runtime's thread: a review that becomes ready after another's run was
    /// spawned joins it only when the thread's last run had company.
    #[test]
    fn a_run_waits_a_turn_for_company_only_after_a_run_that_had_some() {
        let rt = current_thread();
        let echo = Arc::new(Echo::default());
        let first_two = |echo: &Arc<Echo>| {
            let echo = Arc::clone(echo);
            rt.block_on(async move {
                echo.decided.store(0, Ordering::SeqCst);
                let before = echo.joined.load(Ordering::SeqCst);
                let mut a = Box::pin(ask(&echo, b"a"));
                // Polled once: `a` joins and its run is spawned; `b` becomes ready after that.
                std::future::poll_fn(|cx| {
                    assert!(a.as_mut().poll(cx).is_pending());
                    std::task::Poll::Ready(())
                })
                .await;
                let b = tokio::spawn({
                    let echo = Arc::clone(&echo);
                    async move { ask(&echo, b"b").await }
                });
                let (_, b) = tokio::join!(a, b);
                b.expect("b");
                // How many of the two had joined when the first was decided.
                echo.joined_at_first_decision.load(Ordering::SeqCst) - before
            })
        };
        // A fresh thread (its last run decided nothing): `a` is decided alone, at once.
        assert_eq!(first_two(&echo), 1);
        // After a run of several reviews, the run waits a turn: `b` joins before `a` is decided.
        rt.block_on(async {
            let tasks: Vec<_> = (0..BATCHING)
                .map(|_| {
                    let echo = Arc::clone(&echo);
                    tokio::spawn(async move { ask(&echo, b"busy").await })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        assert_eq!(first_two(&echo), 2);
    }

    #[test]
    fn a_runtime_gone_before_its_cohort_was_decided_leaves_the_thread_able_to_decide() {
        let echo = Arc::new(Echo::default());
        let first = current_thread();
        let waiting = {
            let echo = Arc::clone(&echo);
            first.spawn(async move { ask(&echo, b"lost").await })
        };
        // The review joins and its cohort's task starts, which then waits its turn; the
        // runtime is dropped with both.
        first.block_on(tokio::task::yield_now());
        drop(first);
        drop(waiting);
        let second = current_thread();
        let answer = second.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), ask(&echo, b"next")).await
        });
        assert_eq!(answer.expect("decided, not left waiting"), b"next");
    }

    #[test]
    fn a_run_dropped_before_it_first_ran_leaves_the_reviews_able_to_be_decided() {
        let echo = Arc::new(Echo::default());
        let first = current_thread();
        let mut lost = Box::pin(ask(&echo, b"lost"));
        // Polled once: the review joins and its run is spawned, but never runs.
        first.block_on(std::future::poll_fn(|cx| {
            assert!(lost.as_mut().poll(cx).is_pending(), "not decided yet");
            std::task::Poll::Ready(())
        }));
        drop(first);
        assert_eq!(
            echo.decided.load(Ordering::SeqCst),
            0,
            "the run never started"
        );
        let second = current_thread();
        let answer = second.block_on(async {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), ask(&echo, b"next"));
            next.await
        });
        assert_eq!(answer.expect("decided, not left waiting"), b"next");
        drop(lost);
    }

    #[tokio::test]
    async fn a_cohort_whose_task_dies_is_answered_by_the_failure_mode_and_the_next_is_decided() {
        let echo = Arc::new(Echo::default());
        let tasks: Vec<_> = [&b"a"[..], b"boom", b"c"]
            .into_iter()
            .map(|b| {
                let echo = Arc::clone(&echo);
                tokio::spawn(async move { ask(&echo, b).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }
        assert_eq!(
            answers,
            [&b"a"[..], b"failure mode", b"failure mode"],
            "decided before the defect, or answered by the failure mode; none left waiting"
        );
        assert_eq!(ask(&echo, b"next").await, b"next");
    }
}
