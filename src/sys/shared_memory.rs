//! The sync file: a small file beside the database, memory-mapped `MAP_SHARED` by every
//! process that opens the store, holding 64-bit atomics:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | magic `KWSYNC01` |
//! | 1 | change counter: highest change sequence committed (see `store::refresh`) |
//! | 2..8 | reserved |
//! | 8.. | usage-credit pools, one word per slot: `period << 40 | credits` |
//!
//! Losing the file loses nothing durable: the change counter is re-derived from the database
//! at open, and credits in a pool are at worst forfeited (never over-spent).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;

use crate::error::{Error, Result};

const MAGIC: u64 = u64::from_le_bytes(*b"KWSYNC01");
const HEADER_WORDS: usize = 8;
const WORD_CHANGE_COUNTER: usize = 1;

/// Number of usage-credit slots, i.e. of keys with credits a store can hold at once.
pub const CREDIT_SLOTS: u32 = 65_536;

const FILE_LEN: usize = (HEADER_WORDS + CREDIT_SLOTS as usize) * 8;

/// The mapped sync file.
pub(crate) struct SyncFile {
    map: MmapMut,
}

impl SyncFile {
    /// Opens (creating if needed) the sync file at `path`.
    pub(crate) fn open(path: &Path) -> Result<SyncFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    Error::ReadOnly {
                        path: path.to_owned(),
                        detail: e.to_string(),
                    }
                }
                _ => Error::storage(format!("cannot open sync file {}: {e}", path.display())),
            })?;
        let len = file
            .metadata()
            .map_err(|e| Error::storage(format!("cannot stat sync file {}: {e}", path.display())))?
            .len();
        if len < FILE_LEN as u64 {
            // Growing with zeros is idempotent: racing processes all set the same length.
            file.set_len(FILE_LEN as u64).map_err(|e| {
                Error::storage(format!("cannot size sync file {}: {e}", path.display()))
            })?;
        }
        // SAFETY: the mapping is MAP_SHARED over a file only keyward writes, and every access
        // to it goes through `AtomicU64` (see `word`), so concurrent writers in other
        // processes cannot cause a data race in the Rust sense. The file is never truncated
        // below FILE_LEN by keyward, so the mapped range stays valid.
        let map = unsafe { MmapMut::map_mut(&file) }
            .map_err(|e| Error::storage(format!("cannot map sync file {}: {e}", path.display())))?;
        if map.len() < FILE_LEN {
            return Err(Error::storage(format!(
                "sync file {} is too short",
                path.display()
            )));
        }
        let sync = SyncFile { map };
        let magic = sync.word(0);
        if magic.load(Ordering::Acquire) != MAGIC {
            // A new (all-zero) file, or a damaged one: its counters are derivable, start over.
            let _ = magic.compare_exchange(0, MAGIC, Ordering::AcqRel, Ordering::Acquire);
            if magic.load(Ordering::Acquire) != MAGIC {
                magic.store(MAGIC, Ordering::Release);
            }
        }
        Ok(sync)
    }

    #[inline]
    fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < FILE_LEN / 8);
        // SAFETY: the mapping is page-aligned and at least FILE_LEN bytes long (checked in
        // `open`), so `index * 8` is an 8-byte-aligned offset inside it; the memory lives as
        // long as `self`, and it is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(index * 8) as *mut u64) }
    }

    /// The shared change counter.
    #[inline]
    pub(crate) fn change_counter(&self) -> &AtomicU64 {
        self.word(WORD_CHANGE_COUNTER)
    }

    /// The shared credit pool of `slot`.
    #[inline]
    pub(crate) fn credit_pool(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < CREDIT_SLOTS, "credit slot out of range");
        self.word(HEADER_WORDS + slot as usize)
    }
}
