//! Failpoints for the crash tests: `KEYWARD_FAILPOINT=<name>` in the environment makes the
//! process kill itself with SIGKILL the first time it reaches the point of that name (after
//! `KEYWARD_FAILPOINT_SKIP` earlier hits, default 0). Reading the variable once per process
//! costs one relaxed load per point afterwards; without the variable nothing else happens.
//!
//! Points: `table-after-mark` (slots in doubt, before the commit), `table-after-commit`
//! (committed, slots not settled), `flush-before-commit`, `flush-after-commit` (counts
//! written, not yet taken out of the shared cells), `owner-after-mark` (owner epoch odd, before
//! the commit), `owner-after-commit` (committed, epoch still odd).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    skip: u64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Kills the process here if this failpoint is armed.
#[inline]
pub(crate) fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| {
        let name = std::env::var("KEYWARD_FAILPOINT").ok()?;
        let skip = std::env::var("KEYWARD_FAILPOINT_SKIP")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Some(Armed { name, skip })
    });
    if let Some(armed) = armed
        && armed.name == name
        && HITS.fetch_add(1, Ordering::Relaxed) >= armed.skip
    {
        crate::sys::fork::kill_self();
    }
}
