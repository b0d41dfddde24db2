//! When the background flusher writes: every interval, unless the last flush was long.
//!
//! A flush's cost is mostly per distinct key and per commit, not per request: on a host whose
//! requests spread over many keys (100 000 keys, 11 300 requests/s) one flush per second
//! writes ~10 700 keys in ~23 ms, while one flush of 16 seconds' requests writes ~80 000 keys
//! in ~66 ms — 2.0 µs against 0.37 µs per request (`cargo bench --bench write --
//! flush_steady`). So after a flush that took `d`, the next periodic flush waits at least
//! `DUTY_DIVISOR × d`: the flusher stays busy at most ~1 % of the time, and a busy host's
//! flushes carry more requests each instead of costing it more CPU. The wait is never
//! shorter than the interval and, unless the interval is longer, never longer than
//! [`MAX_PACED_WAIT`], which bounds what a flusher killed mid-flush (or a lost host) can lose.
//!
//! Only the periodic flush is paced: `flush()`, close and a process's exit write at once, and
//! the flusher still wakes every interval to keep the host's flush lease and to repair the
//! sync binding and the table. Counts waiting meanwhile are in the shared table's cells, which
//! `usage()` reads.

use std::time::{Duration, Instant};

/// The next periodic flush waits at least this many times the last one's duration.
const DUTY_DIVISOR: u32 = 100;
/// The longest a long flush delays the next one (when the interval is shorter).
const MAX_PACED_WAIT: Duration = Duration::from_secs(30);

/// The flusher thread's record of when its next periodic flush is due.
#[derive(Debug, Clone)]
pub(crate) struct FlushPacing {
    interval: Duration,
    /// `None` until the first flush: the first is due at the first wake-up.
    next_due: Option<Instant>,
}

impl FlushPacing {
    /// Pacing for a flusher waking every `interval`.
    pub(crate) fn new(interval: Duration) -> FlushPacing {
        FlushPacing {
            interval,
            next_due: None,
        }
    }

    /// Whether a periodic flush should run at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_due.is_none_or(|due| now >= due)
    }

    /// Records a flush that ran from `began` to `ended`.
    pub(crate) fn flushed(&mut self, began: Instant, ended: Instant) {
        self.next_due = Some(ended + self.wait_after(ended.saturating_duration_since(began)));
    }

    /// How long the next periodic flush waits after one that took `took`.
    fn wait_after(&self, took: Duration) -> Duration {
        let paced = took.saturating_mul(DUTY_DIVISOR).min(MAX_PACED_WAIT);
        // The flusher wakes every interval: a flush due a little less than one interval from
        // now runs at the wake after it. Short flushes keep the interval exactly.
        paced.max(self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_short_flush_keeps_the_interval() {
        let pacing = FlushPacing::new(1000 * MS);
        assert_eq!(pacing.wait_after(Duration::ZERO), 1000 * MS);
        assert_eq!(pacing.wait_after(3 * MS), 1000 * MS);
        assert_eq!(pacing.wait_after(10 * MS), 1000 * MS);
    }

    #[test]
    fn a_long_flush_delays_the_next_by_its_duty_share() {
        let pacing = FlushPacing::new(1000 * MS);
        assert_eq!(pacing.wait_after(23 * MS), 2300 * MS);
        assert_eq!(pacing.wait_after(66 * MS), 6600 * MS);
    }

    #[test]
    fn the_delay_is_capped_unless_the_interval_is_longer() {
        assert_eq!(
            FlushPacing::new(1000 * MS).wait_after(Duration::from_secs(5)),
            MAX_PACED_WAIT
        );
        let hourly = Duration::from_secs(3600);
        assert_eq!(
            FlushPacing::new(hourly).wait_after(Duration::from_secs(5)),
            hourly
        );
        // No overflow on absurd durations.
        assert_eq!(
            FlushPacing::new(MS).wait_after(Duration::MAX),
            MAX_PACED_WAIT
        );
    }

    #[test]
    fn the_first_flush_is_due_at_once_and_later_ones_after_their_wait() {
        let start = Instant::now();
        let mut pacing = FlushPacing::new(10 * MS);
        assert!(pacing.is_due(start));
        // A 50 ms flush: the next is due 5 s after it ended, not 10 ms.
        pacing.flushed(start, start + 50 * MS);
        let ended = start + 50 * MS;
        assert!(!pacing.is_due(ended + 10 * MS));
        assert!(!pacing.is_due(ended + 4999 * MS));
        assert!(pacing.is_due(ended + 5000 * MS));
        // A quick flush (50 µs: 5 ms at 100 times, under the interval) brings the interval
        // back.
        let later = ended + 5000 * MS;
        let quick_end = later + Duration::from_micros(50);
        pacing.flushed(later, quick_end);
        assert!(!pacing.is_due(quick_end + 9 * MS));
        assert!(pacing.is_due(quick_end + 10 * MS));
    }
}
