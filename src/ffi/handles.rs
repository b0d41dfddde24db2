//! The handle table: a `kw_store` is an opaque 64-bit value naming a slot of a process-wide
//! table and the slot's generation. Closing bumps the generation, so a closed (or forged)
//! handle is recognised and refused with `KW_CLOSED` instead of touching freed memory.
//!
//! Handle values stay below 2^53 (exact in a JavaScript number): the low 24 bits are the
//! slot index + 1, the next 29 bits the generation. `0` is never a valid handle.

use crate::locks::{Mutex, RwLock};

use super::status::kw_status;
use crate::store::Store;
use crate::sys::fork;

/// An open store, as seen from C: an opaque handle returned by `kw_open`. `0` is never a
/// valid handle (`KW_STORE_NONE`).
pub type kw_store = u64;

/// The handle value that never names a store (`kw_close(KW_STORE_NONE)` is a no-op).
pub const KW_STORE_NONE: kw_store = 0;

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const GENERATION_BITS: u32 = 29;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
const MAX_SLOTS: usize = (1 << INDEX_BITS) - 1;

struct Slot {
    generation: u32,
    store: Option<Store>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static TABLE: RwLock<Table> = RwLock::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Stores pinned by `KW_OPEN_PERSISTENT`: kept open for the life of the process.
static PINNED: Mutex<Vec<Store>> = Mutex::new(Vec::new());

fn encode(index: usize, generation: u32) -> kw_store {
    ((generation as u64) << INDEX_BITS) | (index as u64 + 1)
}

fn decode(handle: kw_store) -> Option<(usize, u32)> {
    let index = handle & INDEX_MASK;
    let generation = handle >> INDEX_BITS;
    if index == 0 || generation == 0 || generation > GENERATION_MASK as u64 {
        return None;
    }
    Some((index as usize - 1, generation as u32))
}

static HOLD_ACROSS_FORK: std::sync::Once = std::sync::Once::new();

/// Taken around `fork()` (see `sys::fork`): a child forked while another thread was inside a
/// keyward call must not inherit the table or the pinned list locked by that thread.
extern "C" fn lock_tables_for_fork() {
    fork::keep_until_forked(Box::new(TABLE.write()));
    fork::keep_until_forked(Box::new(PINNED.lock()));
}

/// Registers an open store and returns its new handle.
pub(crate) fn insert(store: Store) -> Result<kw_store, kw_status> {
    HOLD_ACROSS_FORK.call_once(|| fork::hold_across_fork(lock_tables_for_fork));
    let mut table = TABLE.write();
    if let Some(index) = table.free.pop() {
        let slot = &mut table.slots[index as usize];
        slot.store = Some(store);
        return Ok(encode(index as usize, slot.generation));
    }
    if table.slots.len() >= MAX_SLOTS {
        return Err(kw_status::KW_STORAGE);
    }
    table.slots.push(Slot {
        generation: 1,
        store: Some(store),
    });
    Ok(encode(table.slots.len() - 1, 1))
}

/// Unregisters a handle and returns its store, and whether it was the store's last handle
/// in the table (and the store is not pinned). A stale or forged handle → `KW_CLOSED`.
pub(crate) fn remove(handle: kw_store) -> Result<(Store, bool), kw_status> {
    let (index, generation) = decode(handle).ok_or(kw_status::KW_CLOSED)?;
    let mut table = TABLE.write();
    let slot = table
        .slots
        .get_mut(index)
        .filter(|s| s.generation == generation && s.store.is_some())
        .ok_or(kw_status::KW_CLOSED)?;
    let store = slot.store.take().ok_or(kw_status::KW_CLOSED)?;
    // Skip 0 on wrap-around: generation 0 is never valid.
    slot.generation = (slot.generation % GENERATION_MASK) + 1;
    table.free.push(index as u32);
    let shared = table.slots.iter().any(|s| {
        s.store
            .as_ref()
            .is_some_and(|other| other.same_store(&store))
    });
    drop(table);
    let last = !shared && !PINNED.lock().iter().any(|p| p.same_store(&store));
    Ok((store, last))
}

/// Runs `f` on the store of a live handle. The table's read lock is held only to clone the
/// store (one reference-count increment), never across the call: a verify may refresh from
/// the database or top up credits (I/O), and `kw_close` on another thread, `kw_open`, and the
/// fork handler that takes the table must not wait for that. A store closed meanwhile stays
/// alive until `f` returns. `0` → `KW_NULL_ARGUMENT`; stale or forged → `KW_CLOSED`.
#[inline]
pub(crate) fn with<R>(
    handle: kw_store,
    f: impl FnOnce(&Store) -> Result<R, kw_status>,
) -> Result<R, kw_status> {
    let store = cloned(handle)?;
    f(&store)
}

/// A clone of the store of a live handle (see [`with`]).
#[inline]
pub(crate) fn cloned(handle: kw_store) -> Result<Store, kw_status> {
    if handle == KW_STORE_NONE {
        return Err(kw_status::KW_NULL_ARGUMENT);
    }
    let (index, generation) = decode(handle).ok_or(kw_status::KW_CLOSED)?;
    let table = TABLE.read();
    match table.slots.get(index) {
        Some(Slot {
            generation: g,
            store: Some(store),
        }) if *g == generation => Ok(store.clone()),
        _ => Err(kw_status::KW_CLOSED),
    }
}

/// Keeps one reference to `store` for the life of the process (once per store), and makes
/// sure pinned stores are flushed when the process exits normally.
pub(crate) fn pin(store: &Store) {
    static FLUSH_AT_EXIT: std::sync::Once = std::sync::Once::new();
    FLUSH_AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function without captured state; it runs
        // during `exit()`, catches every panic and only flushes.
        unsafe { libc::atexit(flush_pinned_at_exit) };
    });
    let mut pinned = PINNED.lock();
    if !pinned.iter().any(|s| s.same_store(store)) {
        pinned.push(store.clone());
    }
}

/// `atexit` hook: writes the usage counted by pinned stores (a PHP-FPM worker that exits
/// keeps its last interval of counts). Never unwinds into `exit()`.
extern "C" fn flush_pinned_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        // try_lock: a thread that died holding the lock must not hang the exit.
        let Some(pinned) = PINNED.try_lock() else {
            return;
        };
        for store in pinned.iter() {
            let _ = store.flush_before_exit();
        }
    });
}

/// Unpins every store pinned by `KW_OPEN_PERSISTENT`; returns each with whether no open
/// handle still refers to it (its last reference from C is then gone).
pub(crate) fn unpin_all() -> Vec<(Store, bool)> {
    let pinned = std::mem::take(&mut *PINNED.lock());
    let table = TABLE.read();
    pinned
        .into_iter()
        .map(|store| {
            let open = table.slots.iter().any(|s| {
                s.store
                    .as_ref()
                    .is_some_and(|other| other.same_store(&store))
            });
            (store, !open)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_stay_below_2_pow_53() {
        let top = encode(MAX_SLOTS - 1, GENERATION_MASK);
        assert!(top < 1 << 53);
        assert_eq!(decode(top), Some((MAX_SLOTS - 1, GENERATION_MASK)));
        assert_eq!(decode(0), None);
        assert_eq!(decode(1), None, "generation 0 is never valid");
        assert_eq!(decode(u64::MAX), None);
    }
}
