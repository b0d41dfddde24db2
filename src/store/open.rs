//! Opening a store: options, the pepper, the redb file, its meta records, the sync file and
//! the initial verify index.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::engine::Engine;
use crate::clock::{Clock, SystemClock};
use crate::digest::Pepper;
use crate::error::{Error, Result, file_kind};
use crate::key_format::is_valid_tag;
use crate::policy::Policies;
use crate::schema::{
    FORMAT_VERSION, META, META_CHANGE_SEQ, META_FORMAT_VERSION, META_PEPPER_CHECK, META_PREFIX,
    with_crc, without_crc,
};
use crate::sys::shared_memory::SyncFile;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "kw";
/// Default interval between usage flushes.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of key records one process keeps decoded in front of the shared verify
/// table (about 40 MB at most, for typical records; the table itself is shared).
pub const DEFAULT_INDEX_CAPACITY: usize = 65_536;

/// How processes share the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// Any number of processes open the store at once (redb `MultiWriter`). The default.
    #[default]
    MultiProcess,
    /// This process is the only one (redb `ExclusiveWriter`): faster commits, and any other
    /// process opening the file is refused with [`Error::Locked`].
    SingleProcess,
}

/// Where the pepper comes from.
#[derive(Clone, Default)]
pub enum PepperSource {
    /// A file beside the database, `<database>.pepper`, generated (mode 0600) when the
    /// store is created. The default.
    #[default]
    DefaultFile,
    /// A pepper file at this path (64 hex characters or 32 raw bytes, mode 0600).
    File(PathBuf),
    /// 32 bytes supplied by the host (from an environment variable or a secret manager).
    Bytes(Pepper),
}

impl std::fmt::Debug for PepperSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PepperSource::DefaultFile => f.write_str("DefaultFile"),
            PepperSource::File(p) => f.debug_tuple("File").field(p).finish(),
            PepperSource::Bytes(_) => f.write_str("Bytes(<redacted>)"),
        }
    }
}

impl PepperSource {
    /// Whether two sources name the same pepper (constant-time for bytes).
    pub(crate) fn same_as(&self, other: &PepperSource) -> bool {
        match (self, other) {
            (PepperSource::DefaultFile, PepperSource::DefaultFile) => true,
            (PepperSource::File(a), PepperSource::File(b)) => a == b,
            (PepperSource::Bytes(a), PepperSource::Bytes(b)) => a.same_as(b),
            _ => false,
        }
    }
}

/// Options for [`crate::Store::open`].
#[derive(Clone)]
pub struct StoreOptions {
    /// Multi-process (default) or single-process.
    pub concurrency: Concurrency,
    /// Where the pepper comes from.
    pub pepper: PepperSource,
    /// Key prefix for a new store (`[a-z0-9]{1,16}`); `None` = the stored one, or `kw`.
    pub prefix: Option<String>,
    /// Management policies.
    pub policies: Policies,
    /// Interval of the background usage flush; zero = flush only on `flush()` and close.
    /// After a long flush the next waits 100 times its duration (at most 30 s, unless the
    /// interval is longer), so the flusher stays under ~1 % of a core.
    pub flush_interval: Duration,
    /// Most key records this process keeps decoded for the verdicts of
    /// [`Store::verify`](crate::Store::verify) (the C ABI's verifies read records in place
    /// and keep none).
    pub index_capacity: usize,
    /// The clock (tests inject a [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
    /// Days of audit events kept; older ones are pruned as part of later writes. `None`
    /// (or 0) = keep all. See `Store::set_audit_retention_days`.
    pub audit_retention_days: Option<u32>,
    /// The connection URL of the upstream PostgreSQL this store replicates (several hosts,
    /// feature `postgres`; README "Several hosts"): `create`, `create_many`, `update`,
    /// `revoke`, `delete` and `rotate` are then written to PostgreSQL first and applied here
    /// once it committed, as `keyward::upstream::Upstream` does. Opening connects to nothing:
    /// the first management call does (verifies never). `None` (the default): a store of its
    /// own. A library built without the feature refuses a URL (`UPSTREAM_UNSUPPORTED`).
    pub upstream: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            concurrency: Concurrency::MultiProcess,
            pepper: PepperSource::DefaultFile,
            prefix: None,
            policies: Policies::default(),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            index_capacity: DEFAULT_INDEX_CAPACITY,
            clock: Arc::new(SystemClock),
            audit_retention_days: None,
            upstream: None,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("concurrency", &self.concurrency)
            .field("pepper", &self.pepper)
            .field("prefix", &self.prefix)
            .field("policies", &self.policies)
            .field("flush_interval", &self.flush_interval)
            .field("index_capacity", &self.index_capacity)
            .field("audit_retention_days", &self.audit_retention_days)
            // The URL may carry a password.
            .field("upstream", &self.upstream.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl StoreOptions {
    /// Whether a second open with `other` may share a store opened with `self`.
    pub(crate) fn compatible_with(&self, other: &StoreOptions) -> Result<()> {
        let mismatch = |what: &str| {
            Err(Error::ConfigMismatch {
                detail: format!("this process already has the store open with another {what}"),
            })
        };
        if self.concurrency != other.concurrency {
            return mismatch("concurrency mode");
        }
        if !self.pepper.same_as(&other.pepper) {
            return mismatch("pepper");
        }
        if self.policies != other.policies {
            return mismatch("policy set");
        }
        if other.prefix.is_some() && self.prefix != other.prefix {
            return mismatch("key prefix");
        }
        if other.upstream.is_some() && self.upstream != other.upstream {
            return mismatch("upstream URL");
        }
        Ok(())
    }
}

/// The default pepper file of a database: `<database>.pepper`.
pub fn default_pepper_path(db: &Path) -> PathBuf {
    sibling(db, ".pepper")
}

/// The sync file of a database: `<database>.kwsync`.
pub fn sync_file_path(db: &Path) -> PathBuf {
    sibling(db, ".kwsync")
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Maps a redb open error to keyward's typed errors.
pub(crate) fn map_open_error(path: &Path, error: impl Into<redb::Error>) -> Error {
    let error: redb::Error = error.into();
    match error {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => Error::Locked {
            path: path.to_owned(),
        },
        redb::Error::Io(e) => match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                Error::ReadOnly {
                    path: path.to_owned(),
                    detail: e.to_string(),
                }
            }
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => Error::Corrupt {
                path: path.to_owned(),
                detail: e.to_string(),
            },
            std::io::ErrorKind::NotFound => Error::DirectoryMissing {
                dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            },
            _ => Error::storage(format!("{}: {e}", path.display())),
        },
        redb::Error::Corrupted(detail) => Error::Corrupt {
            path: path.to_owned(),
            detail,
        },
        redb::Error::RepairAborted | redb::Error::UpgradeRequired(_) => Error::Corrupt {
            path: path.to_owned(),
            detail: error.to_string(),
        },
        other => Error::storage(format!("{}: {other}", path.display())),
    }
}

/// Fills in the path of a `Corrupt` error raised below the open.
fn with_path(path: &Path, error: Error) -> Error {
    match error {
        Error::Corrupt { detail, .. } => Error::Corrupt {
            path: path.to_owned(),
            detail,
        },
        other => other,
    }
}

impl Engine {
    /// Opens the store at `path` (see [`crate::Store::open`]).
    pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<Engine> {
        if let Some(prefix) = &options.prefix
            && !is_valid_tag(prefix)
        {
            return Err(Error::invalid("prefix", "must be 1-16 characters a-z, 0-9"));
        }
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Path::new("."),
            Some(d) => d,
            None => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::DirectoryMissing {
                dir: dir.to_owned(),
            });
        }
        check_store_files(path, options)?;
        let is_new = std::fs::metadata(path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        let pepper = resolve_pepper(path, &options.pepper, is_new)?;

        guarded(path, || open_database(path, options, pepper))
    }

    /// Opens a store over a custom redb storage backend (fault-injection tests). `path` names
    /// the sync file and the default pepper file; the backend must support the locks of the
    /// requested concurrency mode (an in-memory backend only supports `SingleProcess`).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn open_with_backend(
        path: &Path,
        backend: impl redb::StorageBackend,
        options: &StoreOptions,
    ) -> Result<Engine> {
        let is_new = backend.len().map(|len| len == 0).unwrap_or(false);
        let pepper = resolve_pepper(path, &options.pepper, is_new)?;
        guarded(path, || {
            let db = redb::Database::builder()
                .set_concurrency_mode(redb_mode(options.concurrency))
                .set_cache_size(16 * 1024 * 1024)
                .create_with_backend(backend)
                .map_err(|e| map_open_error(path, e))?;
            let prefix = init_or_check_meta(path, &db, options, &pepper)?;
            Engine::start(path, db, pepper, prefix, options)
        })
    }
}

/// Refuses, with an error that names the cause, store files that are not regular files (a
/// directory, a FIFO, a device such as `/dev/null` behind a symlink), and an empty database
/// file where a store existed before (its sync file says so): a truncated database must not
/// silently become a new, empty store.
fn check_store_files(path: &Path, options: &StoreOptions) -> Result<()> {
    if let Ok(metadata) = std::fs::metadata(path) {
        if !metadata.is_file() {
            return Err(Error::InvalidArgument {
                field: "path",
                reason: format!(
                    "{} is {}, not a key store file",
                    path.display(),
                    file_kind(&metadata)
                ),
            });
        }
        if metadata.len() == 0 && SyncFile::recorded_epoch(&sync_file_path(path)).is_some() {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                detail: format!(
                    "the database file is empty, but {} shows that a store was created here: \
                     the file was truncated. Restore it from a backup; to start a new, empty \
                     store instead, delete the database, that sync file and the pepper file",
                    sync_file_path(path).display()
                ),
            });
        }
    }
    let pepper_file = match &options.pepper {
        PepperSource::DefaultFile => Some(default_pepper_path(path)),
        PepperSource::File(file) => Some(file.clone()),
        PepperSource::Bytes(_) => None,
    };
    if let Some(file) = pepper_file
        && let Ok(metadata) = std::fs::metadata(&file)
        && !metadata.is_file()
    {
        return Err(Error::PepperInvalid {
            detail: format!(
                "{} is {}, not a pepper file",
                file.display(),
                file_kind(&metadata)
            ),
        });
    }
    Ok(())
}

/// Runs an open so that a panic inside redb (its debug assertions can fire on a damaged
/// file) becomes a `Corrupt` error instead of unwinding into the host, and fills in the path
/// of `Corrupt` errors raised below.
fn guarded(path: &Path, open: impl FnOnce() -> Result<Engine>) -> Result<Engine> {
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(result) => result.map_err(|e| with_path(path, e)),
        Err(panic) => Err(Error::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "redb failed while reading the file: {}",
                panic_message(&panic)
            ),
        }),
    }
}

fn redb_mode(concurrency: Concurrency) -> redb::ConcurrencyMode {
    match concurrency {
        Concurrency::MultiProcess => redb::ConcurrencyMode::MultiWriter,
        Concurrency::SingleProcess => redb::ConcurrencyMode::ExclusiveWriter,
    }
}

pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

fn resolve_pepper(db: &Path, source: &PepperSource, is_new: bool) -> Result<Pepper> {
    match source {
        PepperSource::Bytes(p) => Ok(p.clone()),
        PepperSource::File(file) => Pepper::read_file(file),
        PepperSource::DefaultFile => {
            let file = default_pepper_path(db);
            match Pepper::read_file(&file) {
                Err(Error::PepperMissing { .. }) if is_new => Pepper::create_file(&file),
                other => other,
            }
        }
    }
}

fn open_database(path: &Path, options: &StoreOptions, pepper: Pepper) -> Result<Engine> {
    let db = redb::Database::builder()
        .set_concurrency_mode(redb_mode(options.concurrency))
        .set_cache_size(64 * 1024 * 1024)
        .create(path)
        .map_err(|e| map_open_error(path, e))?;

    let prefix = init_or_check_meta(path, &db, options, &pepper)?;
    Engine::start(path, db, pepper, prefix, options)
}

/// Creates the meta records of a new store, or checks those of an existing one. Returns the
/// store's key prefix.
fn init_or_check_meta(
    path: &Path,
    db: &redb::Database,
    options: &StoreOptions,
    pepper: &Pepper,
) -> Result<String> {
    let read_meta = || -> Result<Option<(u32, Vec<u8>, String)>> {
        let txn = db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(version) = meta.get(META_FORMAT_VERSION)? else {
            return Ok(None);
        };
        let damaged = |what: &str| Error::Corrupt {
            path: path.to_owned(),
            detail: format!("the {what} record is damaged"),
        };
        let version = without_crc(version.value())
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| damaged("format version"))?;
        let check = match meta.get(META_PEPPER_CHECK)? {
            Some(v) => without_crc(v.value())
                .ok_or_else(|| damaged("pepper check"))?
                .to_vec(),
            None => Vec::new(),
        };
        let prefix = match meta.get(META_PREFIX)? {
            Some(v) => without_crc(v.value())
                .and_then(|p| std::str::from_utf8(p).ok())
                .ok_or_else(|| damaged("key prefix"))?
                .to_owned(),
            None => DEFAULT_PREFIX.to_owned(),
        };
        Ok(Some((version, check, prefix)))
    };

    let existing = match read_meta()? {
        Some(found) => found,
        None => {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                if meta.get(META_FORMAT_VERSION)?.is_none() {
                    crate::schema::create_tables(&txn)?;
                    let prefix = options.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
                    meta.insert(
                        META_FORMAT_VERSION,
                        with_crc(&FORMAT_VERSION.to_le_bytes()).as_slice(),
                    )?;
                    meta.insert(
                        META_PEPPER_CHECK,
                        with_crc(pepper.check_value().as_bytes()).as_slice(),
                    )?;
                    meta.insert(META_PREFIX, with_crc(prefix.as_bytes()).as_slice())?;
                    meta.insert(META_CHANGE_SEQ, 0u64.to_le_bytes().as_slice())?;
                }
            }
            txn.commit()?;
            read_meta()?.ok_or_else(|| Error::Corrupt {
                path: path.to_owned(),
                detail: "meta records vanished after creation".into(),
            })?
        }
    };

    let (version, check, prefix) = existing;
    if version > FORMAT_VERSION {
        return Err(Error::NewerFormat {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let stored_check: [u8; 32] = check.as_slice().try_into().map_err(|_| Error::Corrupt {
        path: path.to_owned(),
        detail: "bad pepper check record".into(),
    })?;
    // blake3::Hash equality is constant-time.
    if blake3::Hash::from_bytes(stored_check) != pepper.check_value() {
        return Err(Error::WrongPepper);
    }
    if let Some(wanted) = &options.prefix
        && *wanted != prefix
    {
        return Err(Error::ConfigMismatch {
            detail: format!("the store's key prefix is {prefix:?}, not {wanted:?}"),
        });
    }
    if version < FORMAT_VERSION {
        upgrade_format(db)?;
    }
    Ok(prefix)
}

/// Raises an older store's format version to this build's. Format 1 → 2 writes nothing else:
/// format-1 usage rows are read as they are (`store::usage_rows`). Once raised, older builds
/// refuse the store (`NEWER_FORMAT`) instead of reading its usage low.
fn upgrade_format(db: &redb::Database) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let stored = meta
            .get(META_FORMAT_VERSION)?
            .and_then(|v| without_crc(v.value()).and_then(|v| v.try_into().ok()))
            .map(u32::from_le_bytes);
        // Another process may have raised it meanwhile; never lower it.
        if stored.is_some_and(|v| v < FORMAT_VERSION) {
            meta.insert(
                META_FORMAT_VERSION,
                with_crc(&FORMAT_VERSION.to_le_bytes()).as_slice(),
            )?;
        }
    }
    txn.commit()?;
    Ok(())
}
