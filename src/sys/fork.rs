//! Fork handling.
//!
//! - A `pthread_atfork` child handler bumps a process-wide generation, so every store can tell,
//!   with one relaxed atomic load and no system call, that it now lives in a child of the
//!   process that opened it (the child then opens its own engine and never touches the
//!   parent's: its redb handle, flusher thread and locks belong to the parent).
//! - The few process-wide locks a child may need (the store registry, the C ABI's handle
//!   table) are registered with [`hold_across_fork`]: the prepare handler takes each of them,
//!   so no other thread can be holding one at the instant of `fork()`, and the parent and
//!   child handlers release them again. Without this, a child forked while another thread was
//!   inside a keyward call waited for ever on a lock whose holder does not exist in the child.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

thread_local! {
    /// Guards taken by the prepare handlers, released after the fork (the prepare, parent and
    /// child handlers all run on the forking thread, or its copy in the child).
    static HELD_ACROSS_FORK: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn on_fork_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    release_held();
}

extern "C" fn on_fork_parent() {
    release_held();
}

fn release_held() {
    let held = HELD_ACROSS_FORK.with(|held| std::mem::take(&mut *held.borrow_mut()));
    // Release in the reverse order of taking.
    for guard in held.into_iter().rev() {
        drop(guard);
    }
}

/// Installs the fork handlers (once per process).
pub(crate) fn install() {
    REGISTER.call_once(|| {
        // SAFETY: registers plain `extern "C"` functions with no captured state. They only
        // touch an atomic and this thread's own thread-local list of guards, and never unwind
        // (dropping a lock guard cannot panic).
        let rc = unsafe { libc::pthread_atfork(None, Some(on_fork_parent), Some(on_fork_child)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// Registers `prepare`, which must take one process-wide lock and pass its guard to
/// [`keep_until_forked`]; the guard is dropped in both processes right after `fork()`.
/// Call once per lock (behind a `Once`). Prepare handlers run in the reverse order of
/// registration; the locks registered here are never nested, so any order is deadlock-free.
pub(crate) fn hold_across_fork(prepare: extern "C" fn()) {
    install();
    // SAFETY: registers a plain `extern "C"` function without captured state (no parent or
    // child handler: `install` registered the ones that release every held guard).
    let rc = unsafe { libc::pthread_atfork(Some(prepare), None, None) };
    assert_eq!(rc, 0, "pthread_atfork failed");
}

/// Keeps a lock guard taken by a prepare handler until the fork is over.
pub(crate) fn keep_until_forked(guard: Box<dyn Any>) {
    HELD_ACROSS_FORK.with(|held| held.borrow_mut().push(guard));
}

/// How many forks this process is removed from the one that installed the handler.
#[inline]
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Ends this process at once with SIGKILL (the failpoints of the crash tests).
pub(crate) fn kill_self() -> ! {
    // SAFETY: plain system calls; SIGKILL cannot be caught, so `kill` does not return.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
