//! How many decision lines a second the log gets. A denial storm (a controller retrying a
//! rejected update, a CI job looping) would otherwise write a line per request: at tens of
//! thousands a second, the log costs more than the decisions and floods the node's log
//! pipeline. Past the budget, lines are withheld and counted; the next line written says how
//! many, and `rampart_admission_log_lines_withheld_total` counts them all. Every decision is still
//! counted in the metrics and every denial still becomes an alert.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of [`LogBudget::window`] that count lines; the rest hold the second.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

#[derive(Debug)]
pub struct LogBudget {
    /// Lines allowed in each second; `None`: all of them.
    per_second: Option<u64>,
    /// The current second (unix) above [`COUNT_BITS`], lines written in it below.
    window: AtomicU64,
    /// Lines withheld since the last one written.
    withheld: AtomicU64,
}

impl LogBudget {
    /// `per_second` lines a second at most; `0` for no limit. Values past 16 million are
    /// taken as that many.
    pub fn new(per_second: u32) -> LogBudget {
        LogBudget {
            per_second: (per_second > 0).then(|| u64::from(per_second).min(COUNT_MASK)),
            window: AtomicU64::new(0),
            withheld: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written at `now_unix_ms`: `Some(n)` with the lines withheld
    /// since the last one written, or `None` (counted as withheld).
    pub fn admit(&self, now_unix_ms: i64) -> Option<u64> {
        let Some(limit) = self.per_second else {
            return Some(0);
        };
        let second = u64::try_from(now_unix_ms / 1000).unwrap_or(0) & (u64::MAX >> COUNT_BITS);
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let next = if current >> COUNT_BITS != second {
                // A new second (or the clock stepped back): the count starts over.
                second << COUNT_BITS | 1
            } else if current & COUNT_MASK < limit {
                current + 1
            } else {
                self.withheld.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.withheld.swap(0, Ordering::Relaxed)),
                Err(actual) => current = actual,
            }
        }
    }
}

impl Default for LogBudget {
    fn default() -> LogBudget {
        LogBudget::new(DEFAULT_PER_SECOND)
    }
}

/// The default budget: enough to follow any ordinary cluster's denials one by one.
pub const DEFAULT_PER_SECOND: u32 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_budget_are_withheld_and_reported_by_the_next_line_written() {
        let budget = LogBudget::new(3);
        let t = 1_700_000_000_123;
        assert_eq!(budget.admit(t), Some(0));
        assert_eq!(budget.admit(t + 100), Some(0));
        assert_eq!(budget.admit(t + 200), Some(0));
        assert_eq!(budget.admit(t + 300), None);
        assert_eq!(budget.admit(t + 400), None);
        // The next second: a fresh budget, and the first line tells of the two withheld.
        assert_eq!(budget.admit(t + 1_000), Some(2));
        assert_eq!(budget.admit(t + 1_001), Some(0));
        // A clock stepping back starts a window too instead of silencing the log.
        assert_eq!(budget.admit(t - 5_000), Some(0));
    }

    #[test]
    fn no_limit_admits_every_line() {
        let budget = LogBudget::new(0);
        for i in 0..10_000 {
            assert_eq!(budget.admit(1_700_000_000_000 + i), Some(0));
        }
    }

    #[test]
    fn threads_together_stay_within_the_budget_and_lose_no_count() {
        let budget = std::sync::Arc::new(LogBudget::new(100));
        let t = 1_700_000_000_000;
        let written: u64 = (0..4)
            .map(|_| {
                let budget = std::sync::Arc::clone(&budget);
                std::thread::spawn(move || (0..1_000).filter(|_| budget.admit(t).is_some()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("thread") as u64)
            .sum();
        assert_eq!(written, 100);
        // The 3,900 withheld come out with the next second's first line.
        assert_eq!(budget.admit(t + 1_000), Some(3_900));
    }
}
