//! The per-process verify index, so a warm verify opens no redb transaction and makes no
//! system call. Bounded by a capacity: while the store holds no more keys than that, the
//! index is *complete* (a miss is a definite `NOT_FOUND`); beyond it, it is a cache and a
//! miss is looked up in the database.
//!
//! Entries are keyed by the key's **digest** (`keyed_hash(pepper, id ‖ secret)`), not by its
//! id: a presented key is found only if both its id and its secret are right, so an unknown id
//! and a known id with a wrong secret take exactly the same path (a miss) and cannot be told
//! apart by timing. Bucket keys are `blake3::Hash`, whose equality is constant-time. A second,
//! small map from id to digest serves management (refreshes, usage queries).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::locks::RwLock;

use crate::key_format::KeyId;
use crate::schema::KeyInfo;
use crate::usage::UsageCell;

/// Hashes a value by its first 8 bytes. Digests are PRF outputs and ids are drawn uniformly
/// from the OS RNG, and only the engine inserts them, so they are already well spread; a
/// client choosing what it *looks up* cannot make stored entries collide. Saves a SipHash
/// per verify.
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(chunk) = bytes.chunks(8).next() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            // Ids are ASCII (top bit always 0): a multiply spreads the bits over all 64,
            // which hashbrown needs (it tags buckets with the top 7).
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

type PrefixMap<K, V> = HashMap<K, V, BuildHasherDefault<PrefixHasher>>;

/// What the verify path needs to know about one key, flat for the hot fields.
#[derive(Debug)]
pub(crate) struct IndexEntry {
    pub id: KeyId,
    pub revoked: bool,
    pub expires_at: Option<i64>,
    pub credit_slot: Option<u32>,
    pub info: Arc<KeyInfo>,
    pub usage: Arc<UsageCell>,
}

#[derive(Debug, Default)]
struct IndexState {
    by_digest: PrefixMap<blake3::Hash, IndexEntry>,
    digest_of: PrefixMap<KeyId, blake3::Hash>,
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

    /// Runs `f` under the read lock with the entry whose digest is `digest` (if any) and
    /// whether a miss is definitive (the index is complete).
    #[inline]
    pub(crate) fn with_entry<R>(
        &self,
        digest: &blake3::Hash,
        f: impl FnOnce(Option<&IndexEntry>, bool) -> R,
    ) -> R {
        let state = self.state.read();
        f(state.by_digest.get(digest), state.complete)
    }

    /// The usage cell currently attached to `id`, if the key is indexed.
    pub(crate) fn usage_cell(&self, id: &KeyId) -> Option<Arc<UsageCell>> {
        let state = self.state.read();
        let digest = state.digest_of.get(id)?;
        state.by_digest.get(digest).map(|e| e.usage.clone())
    }

    /// The public record of `id`, if the key is indexed.
    pub(crate) fn info(&self, id: &KeyId) -> Option<Arc<KeyInfo>> {
        let state = self.state.read();
        let digest = state.digest_of.get(id)?;
        state.by_digest.get(digest).map(|e| e.info.clone())
    }

    /// Replaces the whole index (initial load or fall-back full reload). Usage cells of keys
    /// already indexed are kept, so pending counts survive.
    pub(crate) fn replace_all(&self, entries: Vec<(blake3::Hash, IndexEntry)>, complete: bool) {
        let mut state = self.state.write();
        let mut by_digest = PrefixMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut digest_of = PrefixMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (digest, mut entry) in entries {
            if let Some(old) = state
                .digest_of
                .get(&entry.id)
                .and_then(|d| state.by_digest.get(d))
            {
                entry.usage = old.usage.clone();
            }
            digest_of.insert(entry.id, digest);
            by_digest.insert(digest, entry);
        }
        state.by_digest = by_digest;
        state.digest_of = digest_of;
        state.complete = complete;
    }

    /// Inserts or updates one key after a change. In cache mode, a key that is not cached
    /// is only inserted when `insert_if_absent` (a lookup after a miss).
    pub(crate) fn upsert(
        &self,
        digest: blake3::Hash,
        mut entry: IndexEntry,
        insert_if_absent: bool,
    ) {
        let mut state = self.state.write();
        let state = &mut *state;
        if let Some(old_digest) = state.digest_of.get(&entry.id).copied() {
            if let Some(old) = state.by_digest.remove(&old_digest) {
                entry.usage = old.usage;
            }
            state.digest_of.insert(entry.id, digest);
            state.by_digest.insert(digest, entry);
            return;
        }
        if !state.complete && !insert_if_absent {
            return;
        }
        if state.by_digest.len() >= self.capacity {
            // The store outgrew the index: from now on it is a cache.
            state.complete = false;
            if let Some(victim) = state.by_digest.keys().next().copied()
                && let Some(evicted) = state.by_digest.remove(&victim)
            {
                // The victim's usage cell stays queued for flushing if it is dirty.
                state.digest_of.remove(&evicted.id);
            }
        }
        state.digest_of.insert(entry.id, digest);
        state.by_digest.insert(digest, entry);
    }

    /// Forgets a deleted key.
    pub(crate) fn remove(&self, id: &KeyId) {
        let mut state = self.state.write();
        if let Some(digest) = state.digest_of.remove(id) {
            state.by_digest.remove(&digest);
        }
    }

    /// Number of indexed keys and whether the index is complete.
    pub(crate) fn stats(&self) -> (usize, bool) {
        let state = self.state.read();
        (state.by_digest.len(), state.complete)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}
