//! The locks keyward uses: `std::sync`'s, without poisoning.
//!
//! keyward used parking_lot until the hostile fork run of 2026-11 (see RELIABILITY.md):
//! parking_lot keeps its waiters in one process-wide table of buckets, each behind its own
//! lock, and a thread that is parking or unparking at the moment of `fork()` leaves its bucket
//! locked in the child for ever — the child then hangs in the first contended lock or condvar
//! that hashes to that bucket (`kw_close` → `Condvar::notify_all`, seen in 10 of 300 forks).
//! On Linux `std::sync` keeps all of a lock's state in the lock's own word (a futex), so a child
//! can only be hurt by a lock another thread *held* at the fork, and keyward makes sure of
//! that: the child never touches its parent's engine, and the few process-wide locks are
//! taken around `fork()` (see `sys::fork`).
//!
//! keyward code never panics while holding one of these locks on purpose; if a panic does
//! (caught at the C ABI boundary), the data behind the lock is still consistent, so poisoning
//! is ignored rather than turned into a second failure.

use std::sync::{
    Mutex as StdMutex, MutexGuard, PoisonError, RwLock as StdRwLock, RwLockReadGuard,
    RwLockWriteGuard, TryLockError,
};

/// A mutex without poisoning.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(StdMutex<T>);

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex(StdMutex::new(value))
    }

    /// Locks, waiting as long as needed.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value, consuming the mutex.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks if free right now.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// A reader-writer lock without poisoning.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(StdRwLock<T>);

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub(crate) const fn new(value: T) -> RwLock<T> {
        RwLock(StdRwLock::new(value))
    }

    /// Shared access.
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Exclusive access.
    #[inline]
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}
