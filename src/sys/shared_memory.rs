//! The sync file: a small file beside the database, memory-mapped `MAP_SHARED` by every
//! process that opens the store, holding 64-bit atomics:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | magic `KWSYNC02` |
//! | 1 | change counter: highest change sequence committed (see `store::refresh`) |
//! | 2 | epoch: a random non-zero number naming this incarnation of the file |
//! | 3 | `!epoch`, so a damaged header is told from a valid one |
//! | 4 | generation of the shared verify table now in use (see `table`); 0 = none yet |
//! | 5 | table-writer lease: `pid << 32 | deadline` (seconds), 0 = free (see `store::table_sync`) |
//! | 6 | owner epoch: bumped to odd before an owner change commits and to even after (see `store::owners`); 0 = never changed |
//! | 7 | version of the owner rate limits (see `store::rate_limits`) |
//! | 8.. | usage-credit pools, one word per slot: `period << 40 | credits` |
//! | 8 + 65,536.. | rate-limit words, one per slot: the GCRA theoretical arrival time (ns) |
//!
//! Two kinds of open-file-description locks (`F_OFD_SETLK`, never stored in the file) are taken
//! on it: on a credit slot's word while a top-up's credits are between database and pool
//! ([`SyncFile::lock_credit_slot`]), and on the byte just past the last word while a flush's
//! counts are between memory and database ([`SyncFile::lock_flushes`]).
//!
//! Losing the file loses nothing durable: the change counter is re-derived from the database,
//! and credits in a pool are at worst forfeited (never over-spent). A rate-limit word lost
//! with the file starts again from rest (one burst more may pass once).
//!
//! **Damage, truncation, replacement.** Every process remembers the epoch it validated and
//! compares it with word 2 on each verify (same cache line as the counter). A file that is
//! re-initialised (because it was found damaged) gets a new epoch; a file truncated under a
//! running process would raise `SIGBUS` on the next access, so keyward installs a `SIGBUS`
//! handler that, for a fault inside one of its own sync mappings only, maps zero pages over the
//! mapping (epoch 0: the next check fails) and returns; every other `SIGBUS` goes to the
//! handler that was installed before keyward's. A process whose check fails remaps the file
//! at the same address ([`SyncFile::recover`]) and refreshes its view from the database. A
//! file deleted and re-created under running processes is a different inode that they cannot
//! see: its epoch is recorded in the database, and the engine compares the two every flush
//! interval (see `store::engine`).

use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::locks::Mutex;

const MAGIC: u64 = u64::from_le_bytes(*b"KWSYNC02");
const WORD_MAGIC: usize = 0;
const WORD_CHANGE_COUNTER: usize = 1;
const WORD_EPOCH: usize = 2;
const WORD_EPOCH_CHECK: usize = 3;
const WORD_TABLE_GENERATION: usize = 4;
const WORD_TABLE_WRITER: usize = 5;
const WORD_OWNER_EPOCH: usize = 6;
const WORD_OWNER_RATE_VERSION: usize = 7;
const HEADER_WORDS: usize = 8;

/// Number of usage-credit slots, i.e. of keys with credits a store can hold at once.
pub const CREDIT_SLOTS: u32 = 65_536;

/// Number of rate-limit slots, i.e. of rate-limited keys and owners a store can hold at once.
pub const RATE_SLOTS: u32 = 65_536;

const RATE_WORDS: usize = HEADER_WORDS + CREDIT_SLOTS as usize;
const FILE_LEN: usize = (RATE_WORDS + RATE_SLOTS as usize) * 8;

/// What [`SyncFile::recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovered {
    /// Another thread of this process had already remapped it.
    AlreadyCurrent,
    /// Remapped onto a valid file another process had (re)initialised.
    Adopted,
    /// This process found no valid file and initialised a new incarnation.
    Initialized,
}

/// The mapped sync file.
pub(crate) struct SyncFile {
    path: PathBuf,
    /// Start of the mapping: FILE_LEN bytes, page-aligned, valid until drop (remaps replace
    /// the pages in place with `MAP_FIXED`, never unmap them).
    base: usize,
    /// The epoch this process validated.
    epoch: AtomicU64,
    /// Device and inode of the file mapped now (to tell a re-initialised file from a
    /// replaced one).
    identity: [AtomicU64; 2],
    remap_lock: Mutex<()>,
    /// Locks on credit slots (see [`SyncFile::lock_credit_slot`]).
    slot_locks: RangeLocks,
    /// The flush lock (see [`SyncFile::lock_flushes`]).
    flush_locks: RangeLocks,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; the raw address
// is never handed out except as `&AtomicU64` tied to `&self`.
unsafe impl Send for SyncFile {}
// SAFETY: as above: every access is atomic, and remapping is serialised by `remap_lock`.
unsafe impl Sync for SyncFile {}

impl SyncFile {
    /// Opens (creating if needed) the sync file at `path` and maps it.
    pub(crate) fn open(path: &Path) -> Result<SyncFile> {
        install_sigbus_handler();
        let prepared = prepare_file(path)?;
        // SAFETY: maps FILE_LEN bytes of a regular file that `prepare_file` sized (and
        // reserved) to at least FILE_LEN, shared and read-write, at an address the kernel
        // chooses. The file descriptor may be closed afterwards: the mapping keeps the file.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                prepared.file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::storage(format!(
                "cannot map sync file {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        let sync = SyncFile {
            path: path.to_owned(),
            base: base as usize,
            epoch: AtomicU64::new(0),
            identity: [
                AtomicU64::new(prepared.identity.0),
                AtomicU64::new(prepared.identity.1),
            ],
            remap_lock: Mutex::new(()),
            slot_locks: RangeLocks::default(),
            flush_locks: RangeLocks::default(),
        };
        register_range(sync.base, FILE_LEN);
        sync.validate_or_init(&prepared.file)?;
        Ok(sync)
    }

    /// Reads the epoch of the file at `path` without mapping it: `Some` when it holds a valid
    /// header, i.e. some store at this path was opened before.
    pub(crate) fn recorded_epoch(path: &Path) -> Option<u64> {
        use std::io::Read;
        let mut header = [0u8; 32];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut header))
            .ok()?;
        let word = |i: usize| u64::from_ne_bytes(header[i * 8..i * 8 + 8].try_into().unwrap());
        let epoch = word(WORD_EPOCH);
        (word(WORD_MAGIC) == MAGIC && epoch != 0 && word(WORD_EPOCH_CHECK) == !epoch)
            .then_some(epoch)
    }

    /// The epoch this process validated.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Device and inode of the file mapped now.
    pub(crate) fn identity(&self) -> (u64, u64) {
        (
            self.identity[0].load(Ordering::Acquire),
            self.identity[1].load(Ordering::Acquire),
        )
    }

    /// Whether the mapping still holds the incarnation this process validated. Read *after*
    /// any word whose value is about to be trusted (re-initialisation changes the epoch first).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.word(WORD_EPOCH).load(Ordering::Acquire) == self.epoch.load(Ordering::Relaxed)
    }

    /// Maps the file at the path again, at the same address (after damage, truncation, or
    /// replacement by another file). Whatever was signalled through the old mapping may have
    /// been missed: the caller must refresh from the database.
    pub(crate) fn recover(&self, force: bool) -> Result<Recovered> {
        let _guard = self.remap_lock.lock();
        self.slot_locks.forget_file();
        self.flush_locks.forget_file();
        if !force && self.is_current() {
            return Ok(Recovered::AlreadyCurrent);
        }
        let prepared = prepare_file(&self.path)?;
        // SAFETY: replaces the pages of this process's own mapping [base, base + FILE_LEN)
        // with a shared mapping of the (re-sized, reserved) file. `MAP_FIXED` swaps the pages
        // atomically, so other threads reading the range see either the old or the new pages,
        // never an unmapped hole.
        let mapped = unsafe {
            libc::mmap(
                self.base as *mut c_void,
                FILE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                prepared.file.as_raw_fd(),
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(Error::storage(format!(
                "cannot map sync file {} again: {}",
                self.path.display(),
                std::io::Error::last_os_error()
            )));
        }
        self.identity[0].store(prepared.identity.0, Ordering::Release);
        self.identity[1].store(prepared.identity.1, Ordering::Release);
        let initialized = self.validate_or_init(&prepared.file)?;
        Ok(if initialized {
            Recovered::Initialized
        } else {
            Recovered::Adopted
        })
    }

    /// Under an exclusive `flock` on the file: adopts a valid header, or initialises a new
    /// incarnation (zeroed counters, a new epoch). Returns whether it initialised.
    fn validate_or_init(&self, file: &std::fs::File) -> Result<bool> {
        let _lock = FileLock::exclusive(file, &self.path)?;
        let epoch = self.word(WORD_EPOCH).load(Ordering::Acquire);
        let valid = self.word(WORD_MAGIC).load(Ordering::Acquire) == MAGIC
            && epoch != 0
            && self.word(WORD_EPOCH_CHECK).load(Ordering::Acquire) == !epoch;
        if valid {
            self.epoch.store(epoch, Ordering::Release);
            return Ok(false);
        }
        // The epoch goes first: a process reading a zeroed counter below then also sees an
        // epoch that is not its own, and refreshes from the database.
        self.word(WORD_EPOCH).store(0, Ordering::SeqCst);
        self.word(WORD_MAGIC).store(0, Ordering::SeqCst);
        for index in (WORD_EPOCH_CHECK..FILE_LEN / 8).filter(|&i| i != WORD_EPOCH) {
            self.word(index).store(0, Ordering::Release);
        }
        self.word(WORD_CHANGE_COUNTER).store(0, Ordering::Release);
        let new_epoch = random_epoch();
        self.word(WORD_EPOCH_CHECK)
            .store(!new_epoch, Ordering::Release);
        self.word(WORD_MAGIC).store(MAGIC, Ordering::Release);
        self.word(WORD_EPOCH).store(new_epoch, Ordering::SeqCst);
        self.epoch.store(new_epoch, Ordering::Release);
        Ok(true)
    }

    #[inline]
    fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < FILE_LEN / 8);
        // SAFETY: the mapping is page-aligned and FILE_LEN bytes long for the life of `self`
        // (remaps replace pages in place), so `index * 8` is an 8-byte-aligned offset inside
        // it; it is only ever accessed atomically. If the file is truncated under us, the
        // SIGBUS handler replaces the pages with zeroed anonymous memory instead of letting
        // the access kill the process.
        unsafe { AtomicU64::from_ptr((self.base + index * 8) as *mut u64) }
    }

    /// The shared change counter.
    #[inline]
    pub(crate) fn change_counter(&self) -> &AtomicU64 {
        self.word(WORD_CHANGE_COUNTER)
    }

    /// The generation of the shared verify table every process should map.
    #[inline]
    pub(crate) fn table_generation(&self) -> &AtomicU64 {
        self.word(WORD_TABLE_GENERATION)
    }

    /// The lease that serialises writers of the shared verify table across processes.
    #[inline]
    pub(crate) fn table_writer(&self) -> &AtomicU64 {
        self.word(WORD_TABLE_WRITER)
    }

    /// The owner epoch: odd while an owner change is being committed, even otherwise; every
    /// process reloads its owner rules when it differs from the one they were loaded at.
    #[inline]
    pub(crate) fn owner_epoch(&self) -> &AtomicU64 {
        self.word(WORD_OWNER_EPOCH)
    }

    /// The shared credit pool of `slot`.
    #[inline]
    pub(crate) fn credit_pool(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < CREDIT_SLOTS, "credit slot out of range");
        self.word(HEADER_WORDS + slot as usize)
    }
}

impl SyncFile {
    /// Locks the word of credit `slot` (exclusive) against every other locker, in this
    /// process or another; see [`RangeLocks`]. A top-up holds it from before the commit that
    /// takes credits out of the database until they are in the pool.
    pub(crate) fn lock_credit_slot(
        &self,
        slot: u32,
        patience: Duration,
        on_wait: impl FnOnce(),
    ) -> RangeLock<'_> {
        assert!(slot < CREDIT_SLOTS, "credit slot out of range");
        let offset = ((HEADER_WORDS + slot as usize) * 8) as libc::off_t;
        self.slot_locks
            .lock(&self.path, offset, 8, libc::F_WRLCK, patience, on_wait)
    }

    /// The flush lock: a flush holds it exclusive from taking counts out of memory and the
    /// shared table until its commit has put them in the database; a reader of usage holds it
    /// shared, so it sees every count in one place or the other. A byte past the words of the
    /// file (locks do not need the byte to exist); see [`RangeLocks`].
    pub(crate) fn lock_flushes(
        &self,
        exclusive: bool,
        patience: Duration,
        on_wait: impl FnOnce(),
    ) -> RangeLock<'_> {
        let kind = if exclusive {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        };
        self.flush_locks.lock(
            &self.path,
            FILE_LEN as libc::off_t,
            1,
            kind,
            patience,
            on_wait,
        )
    }

    /// The version of the owner rate limits every process should hold.
    #[inline]
    pub(crate) fn owner_rate_version(&self) -> &AtomicU64 {
        self.word(WORD_OWNER_RATE_VERSION)
    }

    /// The shared GCRA word (theoretical arrival time, ns) of rate-limit `slot`.
    #[inline]
    pub(crate) fn rate_word(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < RATE_SLOTS, "rate-limit slot out of range");
        self.word(RATE_WORDS + slot as usize)
    }
}

impl Drop for SyncFile {
    fn drop(&mut self) {
        unregister_range(self.base);
        // SAFETY: unmaps the range this value mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.base as *mut c_void, FILE_LEN) };
    }
}

struct PreparedFile {
    file: std::fs::File,
    identity: (u64, u64),
}

/// Opens or creates the file, checks it is a regular file, and sizes and reserves it (so a
/// full tmpfs gives an error here, not a SIGBUS later).
fn prepare_file(path: &Path) -> Result<PreparedFile> {
    let open = |create_new: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create_new)
            .mode(0o600)
            .open(path)
    };
    let file = match open(true) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            open(false).map_err(|e| open_error(path, e))?
        }
        Err(e) => return Err(open_error(path, e)),
    };
    let metadata = file
        .metadata()
        .map_err(|e| Error::storage(format!("cannot stat sync file {}: {e}", path.display())))?;
    if !metadata.is_file() {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "keyward's sync file is {}, not a regular file: remove it (keyward recreates it)",
                crate::error::file_kind(&metadata)
            ),
        });
    }
    if metadata.len() < FILE_LEN as u64 {
        // SAFETY: plain system call on an open descriptor; growing with zeros is idempotent,
        // so racing processes all reach the same length.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, FILE_LEN as libc::off_t) };
        if rc != 0 {
            return Err(Error::storage(format!(
                "cannot reserve {FILE_LEN} bytes for the sync file {}: {} (free space on that \
                 file system)",
                path.display(),
                std::io::Error::from_raw_os_error(rc)
            )));
        }
    }
    Ok(PreparedFile {
        file,
        identity: (metadata.dev(), metadata.ino()),
    })
}

fn open_error(path: &Path, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Error::ReadOnly {
                path: path.to_owned(),
                detail: format!("cannot open keyward's sync file for writing: {e}"),
            }
        }
        std::io::ErrorKind::IsADirectory => Error::Corrupt {
            path: path.to_owned(),
            detail: "keyward's sync file is a directory: remove it (keyward recreates it)".into(),
        },
        _ => Error::storage(format!("cannot open sync file {}: {e}", path.display())),
    }
}

/// Open-file-description locks (`F_OFD_SETLK`) on byte ranges of the sync file, for one use
/// (credit slots, flushes): the kernel releases them if the process dies. They are taken
/// through one descriptor of this process (opened on first use, forgotten by a remap so the
/// next lock is on the file mapped now) under a mutex, which keeps this process's threads to
/// one lock of this use at a time: they share the descriptor, and so the lock.
#[derive(Default)]
struct RangeLocks {
    file: Mutex<Option<std::fs::File>>,
}

impl RangeLocks {
    /// Locks `len` bytes at `offset` (`kind`: `F_WRLCK` or `F_RDLCK`). Waits at most
    /// `patience` for another process's lock: one still held after that (its holder stalled,
    /// or killed after a fork left a copy of its descriptor in a child) is given up and the
    /// caller goes on without it, as it does when the file cannot be opened. `on_wait` runs
    /// once, when the lock is first found held (by a thread or a process).
    fn lock(
        &self,
        path: &Path,
        offset: libc::off_t,
        len: libc::off_t,
        kind: libc::c_int,
        patience: Duration,
        on_wait: impl FnOnce(),
    ) -> RangeLock<'_> {
        let mut on_wait = Some(on_wait);
        let mut file = match self.file.try_lock() {
            Some(file) => file,
            None => {
                // Another thread of this process holds a lock of this use.
                if let Some(on_wait) = on_wait.take() {
                    on_wait();
                }
                self.file.lock()
            }
        };
        if file.is_none() {
            *file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .ok();
        }
        let unlocked = |file| RangeLock {
            file,
            offset,
            len,
            locked: false,
        };
        let Some(descriptor) = file.as_ref() else {
            return unlocked(file);
        };
        let started = Instant::now();
        loop {
            match ofd_lock(descriptor, kind as libc::c_short, offset, len) {
                Ok(()) => {
                    return RangeLock {
                        file,
                        offset,
                        len,
                        locked: true,
                    };
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
                    if let Some(on_wait) = on_wait.take() {
                        on_wait();
                    }
                    if started.elapsed() >= patience {
                        return unlocked(file);
                    }
                    std::thread::yield_now();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return unlocked(file),
            }
        }
    }

    /// Drops the descriptor (after a remap): the next lock opens the file at the path.
    fn forget_file(&self) {
        *self.file.lock() = None;
    }
}

/// A lock taken by [`RangeLocks::lock`], released on drop.
pub(crate) struct RangeLock<'a> {
    /// The descriptor, its mutex held.
    file: MutexGuard<'a, Option<std::fs::File>>,
    offset: libc::off_t,
    len: libc::off_t,
    /// Whether the file lock is held (else the caller goes on with the mutex alone).
    locked: bool,
}

impl Drop for RangeLock<'_> {
    fn drop(&mut self) {
        if let (true, Some(file)) = (self.locked, self.file.as_ref()) {
            // Unlocked explicitly, never by a close: a child forked meanwhile shares the
            // open file description.
            let _ = ofd_lock(file, libc::F_UNLCK as libc::c_short, self.offset, self.len);
        }
    }
}

/// Sets (`F_WRLCK`, `F_RDLCK`) or clears (`F_UNLCK`) an open-file-description lock on `len`
/// bytes at `offset`, without waiting.
fn ofd_lock(
    file: &std::fs::File,
    kind: libc::c_short,
    offset: libc::off_t,
    len: libc::off_t,
) -> std::io::Result<()> {
    // SAFETY: a zeroed `flock` is a valid value of that plain C struct (OFD locks require
    // `l_pid` to be 0).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = kind;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request.l_start = offset;
    request.l_len = len;
    // SAFETY: plain system call on an open descriptor with a pointer to a live `flock`.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut request) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// An exclusive `flock`, released on drop.
struct FileLock<'a>(&'a std::fs::File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a std::fs::File, path: &Path) -> Result<FileLock<'a>> {
        loop {
            // SAFETY: plain system call on an open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::storage(format!(
                    "cannot lock sync file {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // SAFETY: plain system call on an open descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn random_epoch() -> u64 {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let epoch = u64::from_ne_bytes(bytes);
        if epoch != 0 {
            return epoch;
        }
    }
}

// ------------------------------------------------------------------ SIGBUS

const MAX_RANGES: usize = 256;

/// The sync mappings of this process: (start, length), start 0 = free slot.
static RANGES: [(AtomicUsize, AtomicUsize); MAX_RANGES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_RANGES];
/// The SIGBUS action installed before keyward's, to pass other faults on to.
static PREVIOUS_SIGBUS: OnceLock<libc::sigaction> = OnceLock::new();

pub(super) fn register_range(start: usize, len: usize) {
    for (slot_start, slot_len) in &RANGES {
        if slot_start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            slot_len.store(len, Ordering::Release);
            return;
        }
    }
    // More than MAX_RANGES stores open at once: this one is simply not protected from a
    // truncated file (a SIGBUS then ends the process, as it would without keyward).
}

pub(super) fn unregister_range(start: usize) {
    for (slot_start, _) in &RANGES {
        if slot_start
            .compare_exchange(start, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
    }
}

pub(super) fn install_sigbus_handler() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `sigaction` structs are plain data, zero is a valid initial value; the
        // handler is an `extern "C"` function that only reads atomics, makes one `mmap`
        // system call, and otherwise calls the previously installed handler.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
                let _ = PREVIOUS_SIGBUS.set(previous);
            }
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    for (slot_start, slot_len) in &RANGES {
        let start = slot_start.load(Ordering::Acquire);
        let len = slot_len.load(Ordering::Acquire);
        if start != 0 && address >= start && address < start + len {
            // SAFETY: replaces keyward's own mapping of a truncated sync file with zeroed
            // private memory of the same size at the same address (async-signal-safe: one
            // system call). The faulting access is then retried and reads epoch 0.
            let mapped = unsafe {
                libc::mmap(
                    start as *mut c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped != libc::MAP_FAILED {
                return;
            }
        }
    }
    // Not ours: hand it to whoever handled SIGBUS before, or to the default action.
    match PREVIOUS_SIGBUS.get() {
        Some(previous)
            if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
        {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
                // signature; it gets the same arguments the kernel gave us.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal, info, context);
            } else {
                // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
                let handler: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal);
            }
        }
        _ => {
            // SAFETY: restores the default action; returning re-executes the faulting access,
            // which then ends the process the way it would have without keyward.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut default.sa_mask);
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}
