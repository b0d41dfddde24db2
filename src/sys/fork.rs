//! Fork detection: a `pthread_atfork` child handler bumps a process-wide generation, so every
//! store can tell, with one relaxed atomic load and no system call, that it now lives in a
//! child of the process that opened it.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn on_fork_child() {
    // Async-signal-safe: a single atomic add.
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Installs the fork handler (once per process).
pub(crate) fn install() {
    REGISTER.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function with no captured state; the handler
        // only performs an atomic add, which is async-signal-safe as required in a fork child.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// How many forks this process is removed from the one that installed the handler.
#[inline]
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}
