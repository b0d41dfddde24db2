//! The per-process verify index: public id → what a verify needs (digest, state, scopes,
//! public fields, usage cell, credit slot), so a warm verify opens no redb transaction and
//! makes no system call. Bounded by a capacity: while the store holds no more keys than that,
//! the index is *complete* (a miss is a definite `NOT_FOUND`); beyond it, it is a cache and
//! a miss is looked up in the database.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::key_format::KeyId;
use crate::schema::KeyInfo;
use crate::usage::UsageCell;

/// What the verify path needs to know about one key.
#[derive(Debug)]
pub(crate) struct IndexEntry {
    pub digest: blake3::Hash,
    pub info: Arc<KeyInfo>,
    pub usage: Arc<UsageCell>,
    pub credit_slot: Option<u32>,
}

/// Hashes a key id by its first 8 bytes (~48 random bits). Ids are drawn uniformly from the OS RNG and only the
/// engine inserts them, so they are already well spread; a client choosing the ids it
/// *looks up* cannot make stored ids collide. Saves a SipHash per verify.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            // The bytes are ASCII (top bit always 0): a multiply spreads them over all 64
            // bits, which hashbrown needs (it tags buckets with the top 7).
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

type IdMap<V> = HashMap<KeyId, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
struct IndexState {
    map: IdMap<Arc<IndexEntry>>,
    complete: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct VerifyIndex {
    state: RwLock<IndexState>,
    capacity: usize,
}

impl VerifyIndex {
    pub(crate) fn new(capacity: usize) -> VerifyIndex {
        VerifyIndex {
            state: RwLock::new(IndexState::default()),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `id`, and whether a miss is definitive (the index is complete).
    #[inline]
    pub(crate) fn get(&self, id: &KeyId) -> (Option<Arc<IndexEntry>>, bool) {
        let state = self.state.read();
        (state.map.get(id).cloned(), state.complete)
    }

    /// The usage cell currently attached to `id`, if the key is indexed.
    pub(crate) fn usage_cell(&self, id: &KeyId) -> Option<Arc<UsageCell>> {
        self.state.read().map.get(id).map(|e| e.usage.clone())
    }

    /// Replaces the whole index (initial load or fall-back full reload). Usage cells of keys
    /// already indexed are kept, so pending counts survive.
    pub(crate) fn replace_all(&self, entries: Vec<(KeyId, IndexEntry)>, complete: bool) {
        let mut state = self.state.write();
        let mut map = IdMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (id, mut entry) in entries {
            if let Some(old) = state.map.get(&id) {
                entry.usage = old.usage.clone();
            }
            map.insert(id, Arc::new(entry));
        }
        state.map = map;
        state.complete = complete;
    }

    /// Inserts or updates one key after a change. In cache mode, a key that is not cached
    /// is only inserted when `insert_if_absent` (a lookup after a miss).
    pub(crate) fn upsert(&self, id: KeyId, mut entry: IndexEntry, insert_if_absent: bool) {
        let mut state = self.state.write();
        if let Some(old) = state.map.get(&id) {
            entry.usage = old.usage.clone();
            state.map.insert(id, Arc::new(entry));
            return;
        }
        if !state.complete && !insert_if_absent {
            return;
        }
        if state.map.len() >= self.capacity {
            if state.complete {
                // The store outgrew the index: from now on it is a cache.
                state.complete = false;
            }
            if let Some(victim) = state.map.keys().next().copied() {
                // The victim's usage cell stays queued for flushing if it is dirty.
                state.map.remove(&victim);
            }
        }
        state.map.insert(id, Arc::new(entry));
    }

    /// Forgets a deleted key.
    pub(crate) fn remove(&self, id: &KeyId) {
        self.state.write().map.remove(id);
    }

    /// Number of indexed keys and whether the index is complete.
    pub(crate) fn stats(&self) -> (usize, bool) {
        let state = self.state.read();
        (state.map.len(), state.complete)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}
