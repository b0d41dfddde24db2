//! The shared verify table: one memory-mapped file per store per host, built from redb and
//! used by every process that opens the store, so a worker maps it in microseconds instead
//! of reading every key, and the host holds one copy of the keys instead of one per process.
//! It is a cache of redb, never the truth: a table that is missing, damaged, of another
//! format or behind redb is rebuilt or repaired from redb.
//!
//! Layout, in 64-bit words (every shared word is read and written atomically):
//!
//! | region | words | contents |
//! |---|---|---|
//! | header | 512 | magic, format, generation, geometry, counters, flush lease, writer intents |
//! | slots | 4 per slot | open addressing by digest: `seq`, digest tag (2 words), record ref |
//! | usage cells | 6 per key | key id (2), uses of two UTC days, refusals, last used |
//! | dirty bits | 1 per 64 cells | cells holding counts not yet flushed |
//! | heap | rest | key records ([`TableRecord`]), appended, never changed |
//!
//! **Slots** are probed linearly from digest bits, so an unknown id and a wrong secret take
//! the same path (the digest covers both). A slot's `seq` is 0 while it was never used, even
//! when stable and odd while a writer is changing it (a seqlock): readers load `seq`, the
//! other words, and `seq` again, and retry on a change. A slot that stays odd is *in doubt*
//! (a writer is between marking it and its commit, or died there): the reader answers from
//! redb. Writers are serialised across processes (see `store::table_sync`); each records the
//! slots it marks in the header's intent list first, so the next writer repairs what a
//! killed one left in doubt.
//!
//! **Usage cells** sit apart from the slots, so counting on one core does not keep
//! invalidating the lines other cores read. A day's uses are one word, `(day + 1) << 40 |
//! count`, one word per day parity, so a day change needs no lock.
//!
//! **Growth**: a table that runs out of slots, cells or heap is replaced by a new generation
//! (a new file renamed over the old one, its generation published through the sync file);
//! processes remap on their next call and the old mapping stays valid until they do.

#[cfg(test)]
mod model;
mod record;

use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use self::record::USAGE_CELL_BODY_WORD;
pub(crate) use self::record::{RecordBuffer, RecordView, Slots, TableRecord};
use crate::clock::{Day, Timestamp};
use crate::error::{Error, Result};
use crate::key_format::{ID_LEN, KeyId};
use crate::sys::mapped_file::{MappedFile, reserve};

const MAGIC: u64 = u64::from_le_bytes(*b"KWTABL01");
/// 2: key records end with the legacy origin; header word `H_LEGACY_SCHEMES`.
/// 3: key records carry an optional rate limit (before the legacy origin); both merged.
///
/// A process that finds another format rebuilds the table in its own, so processes of two
/// formats on one host rebuild it in turn (correct, slow: README, "Store format and
/// upgrades"). Readers trust the table they map to carry every committed change, and only a
/// writer of the table's own format can apply one; letting two formats coexist would need a
/// table file and generation word per format and readers that fall back to redb while their
/// format's table is behind the store's change counter.
const FORMAT: u64 = 3;

const H_MAGIC: usize = 0;
const H_FORMAT: usize = 1;
const H_GENERATION: usize = 2;
const H_GENERATION_CHECK: usize = 3;
const H_SLOTS: usize = 4;
const H_CELLS: usize = 5;
const H_HEAP_WORDS: usize = 6;
const H_STORE_TAG: usize = 7;
const H_HEAP_USED: usize = 8;
const H_CELLS_USED: usize = 9;
const H_LIVE_KEYS: usize = 10;
const H_USED_SLOTS: usize = 11;
const H_APPLIED_SEQ: usize = 12;
const H_FLUSH_LEASE: usize = 13;
const H_INTENTS_LEN: usize = 14;
/// Set by a reader that met a damaged record: the next check rebuilds the table.
const H_SUSPECT: usize = 15;
const H_INTENTS: usize = 16;
const MAX_INTENTS: u64 = 32;
/// Intent-list length meaning "more slots than the list holds": the next writer scans all.
const INTENTS_OVERFLOW: u64 = u64::MAX;
/// The legacy schemes the store holds keys of (`LegacyScheme::bit`s): verify routes a
/// non-keyward text to them only when this is non-zero.
const H_LEGACY_SCHEMES: usize = H_INTENTS + MAX_INTENTS as usize;
const HEADER_WORDS: usize = 512;

const SLOT_WORDS: usize = 4;
/// Cache lines of a record a verify asks for at once.
const RECORD_PREFETCH_LINES: usize = 4;
const CELL_WORDS: usize = 6;
const CELL_DAYS: usize = 2;
const CELL_REFUSED: usize = 4;
const CELL_LAST_USED: usize = 5;
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Set in a record ref: the key was deleted (the slot stays so probe chains hold).
const TOMBSTONE: u64 = 1 << 63;
/// The heap position part of a slot's ref word (offset + 1; 0 = none).
const REF_MASK: u64 = (1 << 40) - 1;
/// Bits 40..63 of a slot's ref word: a check over the slot's words, so a slot overwritten
/// with garbage is told from a real one (and answered from redb) instead of hiding a key.
const CHECK_SHIFT: u32 = 40;
const CHECK_MASK: u64 = (1 << 23) - 1;
/// Reader spins on an odd `seq` before calling the slot in doubt.
const SPINS: u32 = 128;
/// Most slots in use (keys and tombstones), as a fraction of all slots, before growing.
const MAX_LOAD_PERCENT: u64 = 80;

/// Sizes of one table generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Slots (a power of two).
    pub slots: u64,
    /// Usage cells (one per key ever inserted in this generation).
    pub cells: u64,
    /// Heap words.
    pub heap_words: u64,
}

impl Geometry {
    /// A geometry holding `keys` keys whose records take `record_words`, with room for a
    /// quarter as many keys again (slots at most 80 % used, cells) and as many record
    /// rewrites as there are keys (heap) before the next generation: growth costs one rebuild
    /// per quarter of growth. Slots are not rounded to a power of two (a probe starts at a
    /// multiply-shift of digest bits), so the table's size follows the key count closely.
    pub(crate) fn for_contents(keys: u64, record_words: u64) -> Geometry {
        let slots = (keys * 8 / 5).max(1024);
        let cells = (keys + keys / 4).max(1024).next_multiple_of(64);
        let heap_words = (record_words * 2).max(16 * 1024);
        Geometry {
            slots,
            cells,
            heap_words,
        }
    }

    fn slots_at(&self) -> usize {
        HEADER_WORDS
    }

    fn cells_at(&self) -> usize {
        self.slots_at() + self.slots as usize * SLOT_WORDS
    }

    fn dirty_at(&self) -> usize {
        self.cells_at() + self.cells as usize * CELL_WORDS
    }

    fn heap_at(&self) -> usize {
        self.dirty_at() + (self.cells as usize).div_ceil(64)
    }

    fn total_words(&self) -> usize {
        self.heap_at() + self.heap_words as usize
    }

    /// Bytes of the lookup part (slots and usage cells), the part every verify touches.
    pub(crate) fn lookup_bytes(&self) -> u64 {
        (self.heap_at() * 8) as u64
    }

    /// Bytes of the whole file.
    pub(crate) fn file_bytes(&self) -> u64 {
        (self.total_words() * 8) as u64
    }
}

/// What a reader found for a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A key with this digest tag: its record.
    Found { record_ref: u64 },
    /// No key with this digest.
    Missing,
    /// A slot on the way stayed in doubt: ask redb.
    InDoubt,
}

/// The counts a usage cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellCounts {
    /// Uses per UTC day (at most two days pending).
    pub days: [(Day, u64); 2],
    /// Refused verifies.
    pub refused: u64,
    /// Latest use, ms since the epoch (0 = none).
    pub last_used: i64,
}

impl Default for CellCounts {
    fn default() -> CellCounts {
        CellCounts {
            days: [(Day(0), 0); 2],
            refused: 0,
            last_used: 0,
        }
    }
}

impl CellCounts {
    /// Whether there is anything to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.refused == 0 && self.days.iter().all(|(_, n)| *n == 0)
    }

    /// Accepted verifies.
    pub(crate) fn uses(&self) -> u64 {
        self.days.iter().map(|(_, n)| n).sum()
    }
}

/// One mapped generation of the shared table. Geometry is validated once, when mapped, and
/// kept here: a header changed later under the mapping cannot send an access out of range.
pub(crate) struct SharedTable {
    map: MappedFile,
    generation: u64,
    geometry: Geometry,
    path: PathBuf,
    /// Device and inode of the mapped file.
    identity: (u64, u64),
}

impl std::fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTable")
            .field("generation", &self.generation)
            .field("geometry", &self.geometry)
            .finish()
    }
}

/// Why an existing table file cannot be used (logged, then the table is rebuilt).
pub(crate) type Rejection = String;

impl SharedTable {
    /// Maps the table at `path` if it is a valid table of this store (`store_tag`) and of
    /// generation `expected` (0 = any).
    pub(crate) fn open(
        path: &Path,
        store_tag: u64,
        expected: u64,
    ) -> std::result::Result<SharedTable, Rejection> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
            Err(e) => return Err(format!("cannot open it: {e}")),
        };
        let metadata = file
            .metadata()
            .map_err(|e| format!("cannot stat it: {e}"))?;
        if !metadata.is_file() {
            return Err("not a regular file".into());
        }
        let mut header = [0u8; 8 * 16];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| format!("truncated ({} bytes)", metadata.len()))?;
        let word = |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap());
        if word(H_MAGIC) != MAGIC {
            return Err("not a keyward table (bad magic)".into());
        }
        if word(H_FORMAT) != FORMAT {
            return Err(format!(
                "table format {} (this build reads {FORMAT})",
                word(H_FORMAT)
            ));
        }
        let generation = word(H_GENERATION);
        if generation == 0 || word(H_GENERATION_CHECK) != !generation {
            return Err("damaged header".into());
        }
        if expected != 0 && generation != expected {
            return Err(format!(
                "generation {generation:#x}, the store uses {expected:#x}"
            ));
        }
        if word(H_STORE_TAG) != store_tag {
            return Err("built for another store or pepper".into());
        }
        let geometry = Geometry {
            slots: word(H_SLOTS),
            cells: word(H_CELLS),
            heap_words: word(H_HEAP_WORDS),
        };
        let sane = geometry.slots >= 1
            && geometry.slots <= 1 << 32
            && geometry.cells <= u32::MAX as u64
            && geometry.heap_words <= 1 << 36;
        if !sane {
            return Err("damaged geometry".into());
        }
        if metadata.len() < geometry.file_bytes() {
            return Err(format!(
                "truncated: {} bytes, its geometry needs {}",
                metadata.len(),
                geometry.file_bytes()
            ));
        }
        let map = MappedFile::map(&file, geometry.total_words())
            .map_err(|e| format!("cannot map it: {e}"))?;
        let table = SharedTable {
            map,
            generation,
            geometry,
            path: path.to_owned(),
            identity: (metadata.dev(), metadata.ino()),
        };
        table.check_counters()?;
        Ok(table)
    }

    /// Creates an empty table of `geometry` in a new file beside `path` (renamed over `path`
    /// by [`SharedTable::publish`] once filled).
    pub(crate) fn create(path: &Path, geometry: Geometry, store_tag: u64) -> Result<SharedTable> {
        let temporary = temporary_path(path);
        let storage = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) {
                return Error::ReadOnly {
                    path: path.to_owned(),
                    detail: format!(
                        "cannot create keyward's shared verify table beside the database: {e}"
                    ),
                };
            }
            Error::storage(format!(
                "cannot create the shared verify table {}: {e} (free space and permissions of \
                 that directory)",
                temporary.display()
            ))
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(storage)?;
        let reserved = reserve(&file, geometry.file_bytes())
            .and_then(|()| MappedFile::map(&file, geometry.total_words()));
        let map = match reserved.and_then(|map| Ok((map, file.metadata()?))) {
            Ok(map) => map,
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(storage(e));
            }
        };
        let (map, metadata) = map;
        let generation = random_nonzero();
        let table = SharedTable {
            map,
            generation,
            geometry,
            path: temporary,
            identity: (metadata.dev(), metadata.ino()),
        };
        table.header(H_FORMAT).store(FORMAT, Ordering::Relaxed);
        table
            .header(H_SLOTS)
            .store(geometry.slots, Ordering::Relaxed);
        table
            .header(H_CELLS)
            .store(geometry.cells, Ordering::Relaxed);
        table
            .header(H_HEAP_WORDS)
            .store(geometry.heap_words, Ordering::Relaxed);
        table
            .header(H_STORE_TAG)
            .store(store_tag, Ordering::Relaxed);
        table
            .header(H_GENERATION_CHECK)
            .store(!generation, Ordering::Relaxed);
        table
            .header(H_GENERATION)
            .store(generation, Ordering::Relaxed);
        table.header(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(table)
    }

    /// Fails with `READ_ONLY` when a table file exists at `path` that this process may not
    /// write (owned by another user): rebuilding beside it would take the file away from the
    /// processes that use it.
    pub(crate) fn check_writable(path: &Path) -> Result<()> {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Err(Error::ReadOnly {
                    path: path.to_owned(),
                    detail: format!("cannot open keyward's shared verify table for writing: {e}"),
                })
            }
            _ => Ok(()),
        }
    }

    /// Renames a table made by [`SharedTable::create`] over `path`.
    pub(crate) fn publish(&mut self, path: &Path) -> Result<()> {
        std::fs::rename(&self.path, path).map_err(|e| {
            let _ = std::fs::remove_file(&self.path);
            Error::storage(format!(
                "cannot put the shared verify table in place at {}: {e}",
                path.display()
            ))
        })?;
        self.path = path.to_owned();
        Ok(())
    }

    /// Removes the file of a table that was never published.
    pub(crate) fn discard(self) {
        if self.path.extension().is_some_and(|e| e == "tmp") {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Whether the file at the table's path is still the one mapped (false once another file
    /// was put in its place by something other than keyward's own rebuild).
    pub(crate) fn is_file_at_path(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }

    fn check_counters(&self) -> std::result::Result<(), Rejection> {
        let g = &self.geometry;
        if self.header(H_HEAP_USED).load(Ordering::Acquire) > g.heap_words
            || self.header(H_CELLS_USED).load(Ordering::Acquire) > g.cells
            || self.header(H_USED_SLOTS).load(Ordering::Acquire) > g.slots
        {
            return Err("damaged counters".into());
        }
        Ok(())
    }

    #[inline]
    fn header(&self, index: usize) -> &AtomicU64 {
        self.map.word(index)
    }

    /// The legacy schemes whose keys this table may hold (one atomic load).
    #[inline]
    pub(crate) fn legacy_schemes(&self) -> u64 {
        self.header(H_LEGACY_SCHEMES).load(Ordering::Acquire)
    }

    /// Adds legacy schemes (never removes one: a scheme enabled too early only costs
    /// lookups that miss).
    pub(crate) fn enable_legacy_schemes(&self, bits: u64) {
        self.header(H_LEGACY_SCHEMES)
            .fetch_or(bits, Ordering::AcqRel);
    }

    /// This mapping's generation.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the mapped header still names this generation (false once the file was
    /// truncated under the mapping, which the SIGBUS handler turns into zero pages).
    #[inline]
    pub(crate) fn is_intact(&self) -> bool {
        self.header(H_GENERATION).load(Ordering::Acquire) == self.generation
            && self.header(H_MAGIC).load(Ordering::Relaxed) == MAGIC
    }

    /// The geometry.
    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Keys in the table.
    pub(crate) fn live_keys(&self) -> u64 {
        self.header(H_LIVE_KEYS).load(Ordering::Relaxed)
    }

    /// Change sequence of redb the table reflects.
    pub(crate) fn applied_seq(&self) -> u64 {
        self.header(H_APPLIED_SEQ).load(Ordering::Acquire)
    }

    /// Records that the table reflects redb up to `seq` (writers only).
    pub(crate) fn set_applied_seq(&self, seq: u64) {
        self.header(H_APPLIED_SEQ).store(seq, Ordering::Release);
    }

    /// Records that a reader met a damaged record.
    pub(crate) fn report_damage(&self) {
        self.header(H_SUSPECT).store(1, Ordering::Relaxed);
    }

    /// Whether a reader met a damaged record.
    pub(crate) fn damage_reported(&self) -> bool {
        self.header(H_SUSPECT).load(Ordering::Relaxed) != 0
    }

    /// The host-wide flush lease word.
    pub(crate) fn flush_lease(&self) -> &AtomicU64 {
        self.header(H_FLUSH_LEASE)
    }

    // ------------------------------------------------------------------ readers

    #[inline]
    fn slot_word(&self, slot: u64, field: usize) -> &AtomicU64 {
        self.map
            .word(self.geometry.slots_at() + slot as usize * SLOT_WORDS + field)
    }

    /// Reads one slot consistently: `Some((seq, tag, record ref))`, or `None` if it stayed
    /// in doubt.
    #[inline]
    fn read_slot(&self, slot: u64) -> Option<(u64, [u64; 2], u64)> {
        for _ in 0..SPINS {
            let before = self.slot_word(slot, 0).load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let tag = [
                self.slot_word(slot, 1).load(Ordering::Relaxed),
                self.slot_word(slot, 2).load(Ordering::Relaxed),
            ];
            let record_ref = self.slot_word(slot, 3).load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.slot_word(slot, 0).load(Ordering::Relaxed) == before {
                return Some((before, tag, record_ref));
            }
        }
        None
    }

    /// Finds the key whose digest is `digest`.
    #[inline]
    pub(crate) fn lookup(&self, digest: &[u8; 32]) -> Lookup {
        let tag = digest_tag(digest);
        let slots = self.geometry.slots;
        let mut slot = start_slot(digest, slots);
        let mut in_doubt = false;
        for _ in 0..self.geometry.slots {
            match self.read_slot(slot) {
                None => in_doubt = true,
                Some((0, [0, 0], 0)) => break,
                Some((seq, found, raw)) => {
                    let target = raw & (REF_MASK | TOMBSTONE);
                    if seq == 0 || (raw >> CHECK_SHIFT) & CHECK_MASK != slot_check(found, target) {
                        // Not a slot any writer wrote: the table is damaged here.
                        self.report_damage();
                        in_doubt = true;
                    } else if found == tag && target & REF_MASK != 0 && target & TOMBSTONE == 0 {
                        return Lookup::Found { record_ref: target };
                    }
                }
            }
            slot = next_slot(slot, slots);
        }
        if in_doubt {
            Lookup::InDoubt
        } else {
            Lookup::Missing
        }
    }

    /// Copies a record out of the heap and decodes it; `None` if it is out of range or
    /// damaged.
    pub(crate) fn read_record(&self, record_ref: u64) -> Option<TableRecord> {
        let mut buffer = RecordBuffer::new();
        self.view_record(record_ref, &mut buffer)
            .and_then(RecordView::to_owned)
    }

    /// Copies a record out of the heap into `buffer` and reads it in place (no allocation for
    /// an ordinary record); `None` if it is out of range or damaged.
    #[inline]
    pub(crate) fn view_record<'b>(
        &self,
        record_ref: u64,
        buffer: &'b mut RecordBuffer,
    ) -> Option<RecordView<'b>> {
        let offset = (record_ref & REF_MASK).checked_sub(1)?;
        let heap_at = self.geometry.heap_at() as u64;
        if offset >= self.geometry.heap_words {
            return None;
        }
        // The record's lines are loaded together rather than one after the other (an ordinary
        // record spans three or four).
        self.map
            .prefetch((heap_at + offset) as usize, RECORD_PREFETCH_LINES);
        let header = self
            .map
            .word((heap_at + offset) as usize)
            .load(Ordering::Relaxed);
        let words = TableRecord::words_for(header)? as u64;
        if offset + words > self.geometry.heap_words {
            return None;
        }
        let body_at = (heap_at + offset + 1) as usize;
        // The usage cell a verify counts in is loaded while the record is copied, checked and
        // judged (a wrong guess from a damaged record only wastes the hint).
        if words as usize > USAGE_CELL_BODY_WORD + 1 {
            let cell = self
                .map
                .word(body_at + USAGE_CELL_BODY_WORD)
                .load(Ordering::Relaxed) as u32;
            self.prefetch_cell(cell);
        }
        RecordView::read(buffer, header, words as usize - 1, |i| {
            self.map.word(body_at + i).load(Ordering::Relaxed)
        })
    }

    // ------------------------------------------------------------------ usage cells

    #[inline]
    fn cell_word(&self, cell: u32, field: usize) -> &AtomicU64 {
        self.map
            .word(self.geometry.cells_at() + cell as usize * CELL_WORDS + field)
    }

    /// Starts loading the words of `cell` a use changes (its two lines when it spans two).
    #[inline]
    fn prefetch_cell(&self, cell: u32) {
        if self.valid_cell(cell) {
            let first = self.geometry.cells_at() + cell as usize * CELL_WORDS;
            self.map.prefetch(first + CELL_DAYS, 1);
            self.map.prefetch(first + CELL_LAST_USED, 1);
        }
    }

    fn valid_cell(&self, cell: u32) -> bool {
        u64::from(cell) < self.geometry.cells
    }

    #[inline]
    fn mark_dirty(&self, cell: u32) {
        self.map
            .word(self.geometry.dirty_at() + cell as usize / 64)
            .fetch_or(1 << (cell % 64), Ordering::Release);
    }

    /// Counts one accepted verify at `now`. Returns false (nothing counted) when the cell
    /// still holds uses of a day two days back that no flush has taken yet: the caller
    /// counts it in process memory instead.
    #[inline]
    pub(crate) fn count_use(&self, cell: u32, now: Timestamp) -> bool {
        if !self.valid_cell(cell) {
            return false;
        }
        let day = now.day();
        let tag = day_tag(day);
        let word = self.cell_word(cell, CELL_DAYS + (day.0 & 1) as usize);
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let next = if current >> COUNT_BITS == tag {
                current + 1
            } else if current & COUNT_MASK == 0 {
                tag << COUNT_BITS | 1
            } else {
                return false;
            };
            match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if current & COUNT_MASK == 0 {
                        self.mark_dirty(cell);
                    }
                    break;
                }
                Err(seen) => current = seen,
            }
        }
        self.cell_word(cell, CELL_LAST_USED)
            .fetch_max(now.as_millis() as u64, Ordering::Relaxed);
        true
    }

    /// Counts one refused verify of a known key.
    #[inline]
    pub(crate) fn count_refusal(&self, cell: u32) -> bool {
        if !self.valid_cell(cell) {
            return false;
        }
        if self
            .cell_word(cell, CELL_REFUSED)
            .fetch_add(1, Ordering::AcqRel)
            == 0
        {
            self.mark_dirty(cell);
        }
        true
    }

    /// The key a cell counts for (set when the cell was assigned).
    pub(crate) fn cell_key(&self, cell: u32) -> Option<KeyId> {
        if !self.valid_cell(cell) {
            return None;
        }
        let mut bytes = [0u8; ID_LEN];
        bytes[..8].copy_from_slice(
            &self
                .cell_word(cell, 0)
                .load(Ordering::Acquire)
                .to_le_bytes(),
        );
        bytes[8..].copy_from_slice(
            &self
                .cell_word(cell, 1)
                .load(Ordering::Acquire)
                .to_le_bytes(),
        );
        KeyId::parse(std::str::from_utf8(&bytes).ok()?).ok()
    }

    /// What a cell holds now.
    pub(crate) fn cell_counts(&self, cell: u32) -> CellCounts {
        if !self.valid_cell(cell) {
            return CellCounts::default();
        }
        let mut counts = CellCounts {
            refused: self.cell_word(cell, CELL_REFUSED).load(Ordering::Acquire),
            last_used: self.cell_word(cell, CELL_LAST_USED).load(Ordering::Acquire) as i64,
            ..CellCounts::default()
        };
        for (i, pending) in counts.days.iter_mut().enumerate() {
            let word = self.cell_word(cell, CELL_DAYS + i).load(Ordering::Acquire);
            let count = word & COUNT_MASK;
            if count > 0 {
                *pending = (Day((word >> COUNT_BITS) as i32 - 1), count);
            }
        }
        counts
    }

    /// Takes every count out of a cell at once (an atomic swap per word, so counts are taken
    /// exactly once whoever races for them: a flush, or a move out of a retired generation).
    pub(crate) fn drain_cell(&self, cell: u32) -> CellCounts {
        if !self.valid_cell(cell) {
            return CellCounts::default();
        }
        let mut counts = CellCounts {
            refused: self.cell_word(cell, CELL_REFUSED).swap(0, Ordering::AcqRel),
            last_used: self.cell_word(cell, CELL_LAST_USED).load(Ordering::Acquire) as i64,
            ..CellCounts::default()
        };
        for (i, pending) in counts.days.iter_mut().enumerate() {
            let word = self
                .cell_word(cell, CELL_DAYS + i)
                .swap(0, Ordering::AcqRel);
            if word & COUNT_MASK > 0 {
                *pending = (Day((word >> COUNT_BITS) as i32 - 1), word & COUNT_MASK);
            }
        }
        counts
    }

    /// Takes the set of dirty cells (clearing their bits).
    pub(crate) fn take_dirty_cells(&self) -> Vec<u32> {
        let mut cells = Vec::new();
        let dirty_at = self.geometry.dirty_at();
        for w in 0..(self.geometry.cells as usize).div_ceil(64) {
            let word = self.map.word(dirty_at + w);
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let bit = bits.trailing_zeros();
                cells.push((w * 64) as u32 + bit);
                bits &= bits - 1;
            }
        }
        cells
    }

    /// Number of cells assigned so far.
    pub(crate) fn cells_used(&self) -> u32 {
        self.header(H_CELLS_USED)
            .load(Ordering::Acquire)
            .min(self.geometry.cells) as u32
    }

    /// Cells holding counts (dirty bits set).
    pub(crate) fn dirty_cell_count(&self) -> usize {
        let dirty_at = self.geometry.dirty_at();
        (0..(self.geometry.cells as usize).div_ceil(64))
            .map(|w| {
                self.map
                    .word(dirty_at + w)
                    .load(Ordering::Relaxed)
                    .count_ones() as usize
            })
            .sum()
    }

    // ------------------------------------------------------------------ writers
    //
    // Everything below runs only in the one writer the table-writer lease admits.

    /// The slot holding `digest` (stable or in doubt).
    pub(crate) fn find_slot(&self, digest: &[u8; 32]) -> Option<u64> {
        let tag = digest_tag(digest);
        let slots = self.geometry.slots;
        let mut slot = start_slot(digest, slots);
        for _ in 0..self.geometry.slots {
            if self.slot_word(slot, 0).load(Ordering::Acquire) == 0 {
                return None;
            }
            let found = [
                self.slot_word(slot, 1).load(Ordering::Relaxed),
                self.slot_word(slot, 2).load(Ordering::Relaxed),
            ];
            let record_ref = self.slot_word(slot, 3).load(Ordering::Relaxed);
            if found == tag && record_ref & REF_MASK != 0 && record_ref & TOMBSTONE == 0 {
                return Some(slot);
            }
            slot = next_slot(slot, slots);
        }
        None
    }

    /// The usage cell of the key with this digest, read without the seqlock (for a verify
    /// answered from redb because the key's slot is in doubt: the cell of a key never changes
    /// within a generation, whichever of its records the slot names). `None` for a key not in
    /// the table yet, or when the record read is damaged or torn (its CRC then fails).
    pub(crate) fn cell_for_digest(&self, digest: &[u8; 32]) -> Option<u32> {
        let slot = self.find_slot(digest)?;
        let record = self.read_record(self.slot_record(slot))?;
        (record.digest == *digest).then_some(record.usage_cell)
    }

    /// The record ref a slot holds now.
    pub(crate) fn slot_record(&self, slot: u64) -> u64 {
        self.slot_word(slot, 3).load(Ordering::Acquire) & (REF_MASK | TOMBSTONE)
    }

    /// A never-used slot for a new digest (tombstones are left alone: reusing one would let
    /// a reader that started before the insert miss a key further along the chain).
    fn free_slot(&self, digest: &[u8; 32]) -> Option<u64> {
        let slots = self.geometry.slots;
        let mut slot = start_slot(digest, slots);
        for _ in 0..self.geometry.slots {
            if self.slot_word(slot, 0).load(Ordering::Acquire) == 0 {
                return Some(slot);
            }
            slot = next_slot(slot, slots);
        }
        None
    }

    /// Marks a slot in doubt, recording it in the intent list first.
    pub(crate) fn mark_in_doubt(&self, slot: u64) {
        let len = self.header(H_INTENTS_LEN).load(Ordering::Acquire);
        if len < MAX_INTENTS {
            self.header(H_INTENTS + len as usize)
                .store(slot, Ordering::Relaxed);
            self.header(H_INTENTS_LEN).store(len + 1, Ordering::Release);
        } else if len != INTENTS_OVERFLOW {
            self.header(H_INTENTS_LEN)
                .store(INTENTS_OVERFLOW, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        let seq = self.slot_word(slot, 0);
        let current = seq.load(Ordering::Relaxed);
        if current & 1 == 0 {
            seq.store(current + 1, Ordering::Relaxed);
            fence(Ordering::Release);
        }
    }

    /// Takes a never-used slot for a new key and marks it in doubt (readers meeting it ask
    /// redb until [`SharedTable::settle`]).
    pub(crate) fn claim_slot(&self, digest: &[u8; 32]) -> Option<u64> {
        let slot = self.free_slot(digest)?;
        self.header(H_USED_SLOTS).fetch_add(1, Ordering::AcqRel);
        self.mark_in_doubt(slot);
        Some(slot)
    }

    /// Writes a slot's contents while it is in doubt.
    pub(crate) fn fill_slot(&self, slot: u64, digest: &[u8; 32], record_ref: u64) {
        debug_assert!(self.slot_word(slot, 0).load(Ordering::Relaxed) & 1 == 1);
        let was_live = {
            let old = self.slot_word(slot, 3).load(Ordering::Relaxed);
            old & REF_MASK != 0 && old & TOMBSTONE == 0
        };
        let tag = digest_tag(digest);
        let target = record_ref & (REF_MASK | TOMBSTONE);
        self.slot_word(slot, 1).store(tag[0], Ordering::Relaxed);
        self.slot_word(slot, 2).store(tag[1], Ordering::Relaxed);
        self.slot_word(slot, 3).store(
            target | (slot_check(tag, target) << CHECK_SHIFT),
            Ordering::Relaxed,
        );
        let is_live = target & TOMBSTONE == 0;
        match (was_live, is_live) {
            (false, true) => {
                self.header(H_LIVE_KEYS).fetch_add(1, Ordering::AcqRel);
            }
            (true, false) => {
                self.header(H_LIVE_KEYS).fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }

    /// Turns a slot into a tombstone (its key was deleted).
    pub(crate) fn bury_slot(&self, slot: u64) {
        let old = self.slot_record(slot) & REF_MASK;
        let tag = [
            self.slot_word(slot, 1).load(Ordering::Relaxed),
            self.slot_word(slot, 2).load(Ordering::Relaxed),
        ];
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&tag[0].to_le_bytes());
        digest[8..16].copy_from_slice(&tag[1].to_le_bytes());
        self.fill_slot(slot, &digest, old.max(1) | TOMBSTONE);
    }

    /// Makes a slot stable again (after the commit its change belongs to).
    pub(crate) fn settle(&self, slot: u64) {
        let seq = self.slot_word(slot, 0);
        let current = seq.load(Ordering::Relaxed);
        if current & 1 == 1 {
            seq.store(current + 1, Ordering::Release);
        }
    }

    /// Slots a writer may have left in doubt: `None` means "more than the list holds" (scan
    /// every slot).
    pub(crate) fn intents(&self) -> Option<Vec<u64>> {
        let len = self.header(H_INTENTS_LEN).load(Ordering::Acquire);
        if len == INTENTS_OVERFLOW || len > MAX_INTENTS {
            return None;
        }
        Some(
            (0..len as usize)
                .map(|i| self.header(H_INTENTS + i).load(Ordering::Relaxed))
                .filter(|&slot| slot < self.geometry.slots)
                .collect(),
        )
    }

    /// Every slot now in doubt (full scan).
    pub(crate) fn slots_in_doubt(&self) -> Vec<u64> {
        (0..self.geometry.slots)
            .filter(|&slot| self.slot_word(slot, 0).load(Ordering::Acquire) & 1 == 1)
            .collect()
    }

    /// Whether a slot is in doubt.
    pub(crate) fn is_in_doubt(&self, slot: u64) -> bool {
        self.slot_word(slot, 0).load(Ordering::Acquire) & 1 == 1
    }

    /// Empties the intent list (every slot in it is settled).
    pub(crate) fn clear_intents(&self) {
        self.header(H_INTENTS_LEN).store(0, Ordering::Release);
    }

    /// Appends a record to the heap; `None` when the heap is full.
    pub(crate) fn append_record(&self, words: &[u64]) -> Option<u64> {
        let used = self.header(H_HEAP_USED).load(Ordering::Acquire);
        let end = used.checked_add(words.len() as u64)?;
        if end > self.geometry.heap_words {
            return None;
        }
        let at = self.geometry.heap_at() + used as usize;
        for (i, &word) in words.iter().enumerate() {
            self.map.word(at + i).store(word, Ordering::Relaxed);
        }
        self.header(H_HEAP_USED).store(end, Ordering::Release);
        Some(used + 1)
    }

    /// Assigns a usage cell to `id`; `None` when every cell is taken.
    pub(crate) fn assign_cell(&self, id: &KeyId) -> Option<u32> {
        let used = self.header(H_CELLS_USED).load(Ordering::Acquire);
        if used >= self.geometry.cells {
            return None;
        }
        let cell = used as u32;
        let bytes = id.as_bytes();
        for field in 0..CELL_WORDS {
            self.cell_word(cell, field).store(0, Ordering::Relaxed);
        }
        self.cell_word(cell, 0).store(
            u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            Ordering::Relaxed,
        );
        self.cell_word(cell, 1).store(
            u64::from_le_bytes(bytes[8..].try_into().unwrap()),
            Ordering::Relaxed,
        );
        self.header(H_CELLS_USED).store(used + 1, Ordering::Release);
        Some(cell)
    }

    /// Adds counts to a cell (putting back the counts of a failed flush, or moving them into a
    /// new generation). Returns what could not be added, for the caller to keep in process
    /// memory: all of it for a cell out of range, and the uses of a day whose word still
    /// holds another day's uses (the same parity two days apart) — every other part is added,
    /// so nothing is counted twice.
    pub(crate) fn add_counts(&self, cell: u32, counts: &CellCounts) -> CellCounts {
        if !self.valid_cell(cell) {
            return *counts;
        }
        let mut rest = CellCounts::default();
        for (i, (day, count)) in counts.days.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            let word = self.cell_word(cell, CELL_DAYS + (day.0 & 1) as usize);
            let tag = day_tag(day);
            let mut current = word.load(Ordering::Relaxed);
            loop {
                let next = if current >> COUNT_BITS == tag {
                    current + count
                } else if current & COUNT_MASK == 0 {
                    tag << COUNT_BITS | count
                } else {
                    rest.days[i] = (day, count);
                    rest.last_used = counts.last_used;
                    break;
                };
                match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(seen) => current = seen,
                }
            }
        }
        self.cell_word(cell, CELL_REFUSED)
            .fetch_add(counts.refused, Ordering::AcqRel);
        self.cell_word(cell, CELL_LAST_USED)
            .fetch_max(counts.last_used.max(0) as u64, Ordering::Relaxed);
        if counts.refused > 0 || counts.uses() > rest.uses() {
            self.mark_dirty(cell);
        }
        rest
    }

    /// Whether the table has room for `new_keys` more keys and `record_words` more heap.
    pub(crate) fn has_room(&self, new_keys: u64, record_words: u64) -> bool {
        let g = &self.geometry;
        let used_slots = self.header(H_USED_SLOTS).load(Ordering::Acquire);
        let cells = self.header(H_CELLS_USED).load(Ordering::Acquire);
        let heap = self.header(H_HEAP_USED).load(Ordering::Acquire);
        (used_slots + new_keys) * 100 <= g.slots * MAX_LOAD_PERCENT
            && cells + new_keys <= g.cells
            && heap + record_words <= g.heap_words
    }
}

/// The 16 digest bytes a slot holds (the whole digest is compared, in constant time, with the
/// record's).
#[inline]
fn digest_tag(digest: &[u8; 32]) -> [u64; 2] {
    [
        u64::from_le_bytes(digest[..8].try_into().unwrap()),
        u64::from_le_bytes(digest[8..16].try_into().unwrap()),
    ]
}

/// The check stored with a slot's ref (see [`CHECK_MASK`]).
#[inline]
fn slot_check(tag: [u64; 2], target: u64) -> u64 {
    let mixed = (tag[0] ^ tag[1].rotate_left(21) ^ target.rotate_left(43))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 41) & CHECK_MASK
}

/// Where the probe for a digest starts: a multiply-shift of 64 digest bits onto
/// `0..slots` (no power-of-two size needed).
#[inline]
fn start_slot(digest: &[u8; 32], slots: u64) -> u64 {
    let bits = u64::from_le_bytes(digest[16..24].try_into().unwrap());
    ((u128::from(bits) * u128::from(slots)) >> 64) as u64
}

#[inline]
fn next_slot(slot: u64, slots: u64) -> u64 {
    if slot + 1 == slots { 0 } else { slot + 1 }
}

fn day_tag(day: Day) -> u64 {
    (i64::from(day.0) + 1) as u64 & ((1 << (64 - COUNT_BITS)) - 1)
}

fn random_nonzero() -> u64 {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let value = u64::from_ne_bytes(bytes);
        if value != 0 {
            return value;
        }
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}.{:x}.tmp",
        std::process::id(),
        random_nonzero()
    ));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_in(dir: &Path) -> SharedTable {
        let geometry = Geometry::for_contents(1, 64);
        SharedTable::create(&dir.join("t.kwtable"), geometry, 1).unwrap()
    }

    /// A failed flush puts its counts back with `add_counts`: when one day's word is taken by
    /// another day, the other day's uses (and the refusals) are added and only the uses that
    /// did not fit come back — they used to come back with the rest, which the caller then
    /// kept in process memory as well: counted twice.
    #[test]
    fn add_counts_adds_what_fits_and_returns_only_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let table = table_in(dir.path());
        let id = KeyId::parse("AAAAAAAAAAAAAAAA").unwrap();
        let cell = table.assign_cell(&id).unwrap();
        // Day 10's word (parity 0) holds day 12's uses: day 10 cannot go back in.
        let day12 = Timestamp::from_millis(12 * 86_400_000);
        assert!(table.count_use(cell, day12));
        let counts = CellCounts {
            days: [(Day(10), 5), (Day(11), 7)],
            refused: 3,
            last_used: 11 * 86_400_000,
        };
        let rest = table.add_counts(cell, &counts);
        assert_eq!(rest.days, [(Day(10), 5), (Day(0), 0)]);
        assert_eq!((rest.uses(), rest.refused), (5, 0));
        let now = table.cell_counts(cell);
        assert_eq!(now.uses(), 1 + 7, "day 12's use and day 11's 7");
        assert_eq!(now.refused, 3);
        // Uses added plus uses returned are exactly the uses given: none lost, none twice.
        assert_eq!(now.uses() - 1 + rest.uses(), counts.uses());
        // Everything fits in an empty cell; a cell out of range takes nothing.
        let empty = table.assign_cell(&id).unwrap();
        assert!(table.add_counts(empty, &counts).is_empty());
        assert_eq!(table.cell_counts(empty).uses(), 12);
        let outside = table.geometry().cells as u32;
        assert_eq!(table.add_counts(outside, &counts), counts);
    }
}
