//! The one error type of keyward, and the stable numeric codes its variants map to.
//!
//! Every variant says what went wrong and, where there is one, what to do about it. The numeric
//! codes ([`ErrorCode`]) are shared with the C ABI (`kw_status`) and the bindings: they are
//! never renumbered, only added to.

use std::fmt;
use std::path::PathBuf;

/// What kind of file system object `metadata` describes, for messages ("a directory").
pub(crate) fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

/// A keyward result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of failure a code belongs to: what a binding turns into an exception class, a
/// server into an HTTP status, the CLI into an exit status. One per code, in the table below.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorFamily {
    /// Success.
    Ok = 0,
    /// The call was wrong: an argument, a limit, a closed handle, options that do not fit.
    Argument = 1,
    /// No key with that id.
    NotFound = 2,
    /// Refused by a rule or limit of the store (a policy, the credit slots).
    Policy = 3,
    /// The store's files or I/O: missing directory, locked, read-only, damaged, newer format.
    Storage = 4,
    /// The pepper: missing, wrong, invalid, readable by others.
    Pepper = 5,
    /// The credential of a request (HTTP 401): missing, malformed, unsupported, ambiguous.
    Credential = 6,
    /// A bug in keyward (a caught panic).
    Internal = 7,
    /// The upstream PostgreSQL of a store replicated across hosts (feature `postgres`):
    /// unreachable, or with a schema this build cannot use.
    Upstream = 8,
}

impl ErrorFamily {
    /// Stable upper-case name, e.g. `"CREDENTIAL"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorFamily::Ok => "OK",
            ErrorFamily::Argument => "ARGUMENT",
            ErrorFamily::NotFound => "NOT_FOUND",
            ErrorFamily::Policy => "POLICY",
            ErrorFamily::Storage => "STORAGE",
            ErrorFamily::Pepper => "PEPPER",
            ErrorFamily::Credential => "CREDENTIAL",
            ErrorFamily::Internal => "INTERNAL",
            ErrorFamily::Upstream => "UPSTREAM",
        }
    }

    /// Every family, in numeric order.
    pub const ALL: &'static [ErrorFamily] = &[
        ErrorFamily::Ok,
        ErrorFamily::Argument,
        ErrorFamily::NotFound,
        ErrorFamily::Policy,
        ErrorFamily::Storage,
        ErrorFamily::Pepper,
        ErrorFamily::Credential,
        ErrorFamily::Internal,
        ErrorFamily::Upstream,
    ];
}

/// Defines [`ErrorCode`] from the one table of codes: variant, number, name, family, message.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $value:literal, $name:literal, $family:ident, $message:literal; )*) => {
        /// Stable numeric code of an error (and of the C ABI's `kw_status`).
        ///
        /// Values are explicit and never renumbered; new codes are only appended (hence
        /// `#[non_exhaustive]`: a `match` outside this crate needs a wildcard arm). The table in
        /// `src/error.rs` is the one source of every code's number, name, family and message:
        /// the C ABI's `kw_status` (`src/ffi/status_table.rs`), `include/keyward.h` and the
        /// bindings' declarations are generated from it and checked by tests.
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant = $value, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order (for tests and bindings).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// Stable upper-case name, e.g. `"WRONG_PEPPER"`.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// A short English message (what the C ABI's `kw_status_message` returns).
            pub fn message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }

            /// The kind of failure.
            pub fn family(self) -> ErrorFamily {
                match self { $(ErrorCode::$variant => ErrorFamily::$family,)* }
            }
        }
    };
}

error_codes! {
    /// Success (never carried by an [`Error`]; reserved for the C ABI).
    Ok = 0, "OK", Ok, "success";
    /// An argument is invalid (empty where required, wrong charset, out of range).
    InvalidArgument = 1, "INVALID_ARGUMENT", Argument, "an argument is invalid";
    /// A required pointer argument was NULL (C ABI only).
    NullArgument = 2, "NULL_ARGUMENT", Argument, "a required pointer argument was NULL";
    /// Text that must be UTF-8 was not (C ABI only).
    InvalidUtf8 = 3, "INVALID_UTF8", Argument, "text that must be UTF-8 is not";
    /// An input is longer than its documented limit.
    TooLong = 4, "TOO_LONG", Argument, "an input is longer than its documented limit";
    /// The caller's output buffer is too small (C ABI only).
    BufferTooSmall = 5, "BUFFER_TOO_SMALL", Argument,
        "the output buffer is too small; the size needed was written to the length out-pointer";
    /// A panic was caught at the C ABI boundary.
    Panic = 6, "PANIC", Internal, "internal error: a panic was caught at the C boundary";
    /// The handle was already closed (C ABI only).
    Closed = 7, "CLOSED", Argument, "the store handle is closed or invalid";
    /// No key with that id exists.
    NotFound = 10, "NOT_FOUND", NotFound, "no key with that id exists";
    /// The owner has neither an owner record nor keys.
    OwnerNotFound = 11, "OWNER_NOT_FOUND", NotFound, "no owner record and no key of that owner exist";
    /// The owner already has the maximum number of active keys.
    PolicyMaxActiveKeys = 20, "POLICY_MAX_ACTIVE_KEYS", Policy,
        "the owner already has the store's maximum number of active keys; revoke one first";
    /// The operation would leave the owner without an active key.
    PolicyLastActiveKey = 21, "POLICY_LAST_ACTIVE_KEY", Policy,
        "refused: this is the owner's last active key (keep-last-key policy); create a new key first";
    /// The expiry is missing or beyond the store's maximum key lifetime.
    PolicyMaxLifetime = 22, "POLICY_MAX_LIFETIME", Policy,
        "the key needs an expiry within the store's maximum key lifetime";
    /// The directory that should hold the database does not exist.
    DirectoryMissing = 30, "DIRECTORY_MISSING", Storage,
        "the directory of the database path does not exist";
    /// The database is locked by another process in an incompatible mode.
    Locked = 31, "LOCKED", Storage,
        "the database is locked by another process in an incompatible mode";
    /// The database (or its directory) is read-only for this process.
    ReadOnly = 32, "READ_ONLY", Storage, "the database or its directory cannot be written";
    /// The database file is damaged or is not a keyward/redb database.
    Corrupt = 33, "CORRUPT", Storage, "the database is damaged or not a keyward store";
    /// The pepper does not match the one the store was created with.
    WrongPepper = 34, "WRONG_PEPPER", Pepper,
        "wrong pepper: it does not match the one this store was created with";
    /// The store was written by a newer keyward format.
    NewerFormat = 35, "NEWER_FORMAT", Storage, "the store was written by a newer keyward; upgrade";
    /// The pepper file of an existing store is missing.
    PepperMissing = 36, "PEPPER_MISSING", Pepper, "the store exists but its pepper file is missing";
    /// The pepper (file or bytes) has the wrong length or encoding.
    PepperInvalid = 37, "PEPPER_INVALID", Pepper,
        "invalid pepper: expected 32 bytes or 64 hexadecimal characters";
    /// The pepper file is readable by other users.
    PepperPermissions = 38, "PEPPER_PERMISSIONS", Pepper,
        "the pepper file is readable by other users; chmod 600 it";
    /// The options conflict with how the store was created (e.g. another key prefix).
    ConfigMismatch = 39, "CONFIG_MISMATCH", Argument,
        "the options do not match the store (or how this process already opened it)";
    /// Any other storage or I/O failure.
    Storage = 40, "STORAGE", Storage, "storage or I/O error";
    /// The store has no free usage-credit slot left.
    CreditSlotsExhausted = 42, "CREDIT_SLOTS_EXHAUSTED", Policy,
        "every usage-credit slot of the store is in use";
    /// The store has no free rate-limit slot left.
    RateSlotsExhausted = 43, "RATE_SLOTS_EXHAUSTED", Policy,
        "every rate-limit slot of the store is in use";
    /// No credential was found in the request headers.
    CredentialMissing = 50, "CREDENTIAL_MISSING", Credential, "no API key in the request";
    /// The `Authorization` header uses a scheme keyward does not accept.
    UnsupportedScheme = 51, "UNSUPPORTED_SCHEME", Credential,
        "unsupported Authorization scheme; use Bearer or Basic";
    /// The `Authorization: Basic` value is not valid base64 (or not UTF-8).
    BadBase64 = 52, "BAD_BASE64", Credential,
        "the Basic credential is not valid base64 of UTF-8 text";
    /// Only one of `X-Api-Token-Id` / `X-Api-Token-Secret-Key` was sent.
    HalfPair = 53, "HALF_PAIR", Credential,
        "only half of the X-Api-Token-Id / X-Api-Token-Secret-Key pair was sent";
    /// The text is not a well-formed keyward key (see [`crate::KeyFormatError`]).
    MalformedKey = 54, "MALFORMED_KEY", Credential, "the text is not a well-formed key";
    /// Several different credentials were sent in one request.
    AmbiguousCredential = 55, "AMBIGUOUS_CREDENTIAL", Credential,
        "the request carries several different credentials";
    /// A legacy-key export (`Store::import_legacy`) is not what the source system writes:
    /// the error names the line and the column.
    LegacyImportInvalid = 60, "LEGACY_IMPORT_INVALID", Argument,
        "the legacy key export is not in the source system's format (see the line and column named)";
    /// The upstream PostgreSQL could not be reached or refused the change; nothing was changed
    /// (verifies go on with the last replicated state).
    UpstreamUnavailable = 70, "UPSTREAM_UNAVAILABLE", Upstream,
        "the upstream PostgreSQL is unreachable; the change was not made (verifies go on with the last replicated state)";
    /// The upstream PostgreSQL schema was written by a newer keyward, or is not keyward's.
    UpstreamSchema = 71, "UPSTREAM_SCHEMA", Upstream,
        "the upstream PostgreSQL schema is newer than this keyward or not keyward's; upgrade";
    /// The store is a replica of an upstream PostgreSQL: changes made to it alone would be
    /// lost or would diverge from the other hosts.
    UpstreamRequired = 72, "UPSTREAM_REQUIRED", Upstream,
        "this store is a replica of an upstream PostgreSQL: make the change through the upstream";
    /// The store was opened with an upstream URL, but this library was built without
    /// PostgreSQL support (the `postgres` feature).
    UpstreamUnsupported = 73, "UPSTREAM_UNSUPPORTED", Upstream,
        "this libkeyward was built without PostgreSQL support (feature `postgres`): it cannot use an upstream URL";
}

impl ErrorCode {
    /// The numeric value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code with this number, if there is one.
    pub fn from_u32(value: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_u32() == value)
    }
}

/// Everything that can go wrong in keyward.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An argument is invalid; `field` names it, `reason` says why.
    InvalidArgument {
        /// The argument.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An input exceeds its documented limit.
    TooLong {
        /// The argument.
        field: &'static str,
        /// The limit in bytes (or items).
        limit: usize,
    },
    /// No key with this public id exists.
    NotFound {
        /// The public key id asked for.
        key_id: String,
    },
    /// The owner has neither an owner record nor keys.
    OwnerNotFound {
        /// The owner asked for.
        owner: String,
    },
    /// Creating the key would give the owner more than `limit` active keys.
    PolicyMaxActiveKeys {
        /// The owner.
        owner: String,
        /// The store's limit.
        limit: u32,
    },
    /// Revoking or deleting this key would leave its owner without an active key.
    PolicyLastActiveKey {
        /// The owner.
        owner: String,
    },
    /// The expiry is missing or too far away for the store's maximum lifetime.
    PolicyMaxLifetime {
        /// The maximum lifetime in seconds.
        max_lifetime_secs: u64,
    },
    /// The directory of the database path does not exist.
    DirectoryMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// Another process holds the database in an incompatible mode.
    Locked {
        /// The database path.
        path: PathBuf,
    },
    /// The database or its directory cannot be written by this process.
    ReadOnly {
        /// The path that could not be written.
        path: PathBuf,
        /// The underlying error.
        detail: String,
    },
    /// The database file is damaged or not a keyward store.
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// What redb or keyward found.
        detail: String,
    },
    /// The pepper does not match the store's check value.
    WrongPepper,
    /// The store was written by a newer format version.
    NewerFormat {
        /// Version found in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The store exists but its pepper file does not.
    PepperMissing {
        /// Where the pepper file was expected.
        path: PathBuf,
    },
    /// The pepper has the wrong length or encoding.
    PepperInvalid {
        /// What is wrong with it.
        detail: String,
    },
    /// The pepper file can be read by group or others.
    PepperPermissions {
        /// The pepper file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The options contradict the store's stored configuration.
    ConfigMismatch {
        /// What differs.
        detail: String,
    },
    /// One new key of a batch (`Store::create_many`) was refused, so nothing was created;
    /// `index` is its 0-based position in the batch. Its code is that of `error`.
    InBatch {
        /// Position of the refused new key in the batch (0-based).
        index: usize,
        /// Why it was refused.
        error: Box<Error>,
    },
    /// Any other storage or I/O failure.
    Storage {
        /// What failed.
        detail: String,
    },
    /// Every usage-credit slot of the store is in use.
    CreditSlotsExhausted {
        /// The number of slots.
        slots: u32,
    },
    /// Every rate-limit slot of the store is in use (rate-limited keys and owners).
    RateSlotsExhausted {
        /// The number of slots.
        slots: u32,
    },
    /// No credential header was present.
    CredentialMissing,
    /// An `Authorization` header with a scheme other than Bearer or Basic.
    UnsupportedScheme {
        /// The scheme that was sent (truncated).
        scheme: String,
    },
    /// `Authorization: Basic` carried invalid base64 or non-UTF-8 text.
    BadBase64,
    /// One header of the id/secret pair was sent without the other.
    HalfPair {
        /// The header that is missing.
        missing: &'static str,
    },
    /// The text is not a well-formed key.
    MalformedKey(crate::key_format::KeyFormatError),
    /// Several different credentials were sent in one request.
    AmbiguousCredential,
    /// A row of a legacy-key export could not be read; nothing was imported.
    LegacyImportInvalid {
        /// The scheme being imported.
        scheme: &'static str,
        /// 1-based line of the file.
        line: usize,
        /// What is wrong (never a hash or a key).
        detail: String,
    },
    /// The upstream PostgreSQL could not be reached, or the statement failed; nothing changed.
    UpstreamUnavailable {
        /// What failed (the driver's message; never a secret or a password).
        detail: String,
    },
    /// The upstream schema is newer than this build (or not keyward's).
    UpstreamSchema {
        /// What was found.
        detail: String,
    },
    /// A management call on a store that replicates an upstream PostgreSQL.
    UpstreamRequired,
    /// An upstream URL was given to a library built without the `postgres` feature.
    UpstreamUnsupported,
}

impl Error {
    /// The stable numeric code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::TooLong { .. } => ErrorCode::TooLong,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::OwnerNotFound { .. } => ErrorCode::OwnerNotFound,
            Error::PolicyMaxActiveKeys { .. } => ErrorCode::PolicyMaxActiveKeys,
            Error::PolicyLastActiveKey { .. } => ErrorCode::PolicyLastActiveKey,
            Error::PolicyMaxLifetime { .. } => ErrorCode::PolicyMaxLifetime,
            Error::DirectoryMissing { .. } => ErrorCode::DirectoryMissing,
            Error::Locked { .. } => ErrorCode::Locked,
            Error::ReadOnly { .. } => ErrorCode::ReadOnly,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::WrongPepper => ErrorCode::WrongPepper,
            Error::NewerFormat { .. } => ErrorCode::NewerFormat,
            Error::PepperMissing { .. } => ErrorCode::PepperMissing,
            Error::PepperInvalid { .. } => ErrorCode::PepperInvalid,
            Error::PepperPermissions { .. } => ErrorCode::PepperPermissions,
            Error::ConfigMismatch { .. } => ErrorCode::ConfigMismatch,
            Error::InBatch { error, .. } => error.code(),
            Error::Storage { .. } => ErrorCode::Storage,
            Error::CreditSlotsExhausted { .. } => ErrorCode::CreditSlotsExhausted,
            Error::RateSlotsExhausted { .. } => ErrorCode::RateSlotsExhausted,
            Error::CredentialMissing => ErrorCode::CredentialMissing,
            Error::UnsupportedScheme { .. } => ErrorCode::UnsupportedScheme,
            Error::BadBase64 => ErrorCode::BadBase64,
            Error::HalfPair { .. } => ErrorCode::HalfPair,
            Error::MalformedKey(_) => ErrorCode::MalformedKey,
            Error::AmbiguousCredential => ErrorCode::AmbiguousCredential,
            Error::LegacyImportInvalid { .. } => ErrorCode::LegacyImportInvalid,
            Error::UpstreamUnavailable { .. } => ErrorCode::UpstreamUnavailable,
            Error::UpstreamSchema { .. } => ErrorCode::UpstreamSchema,
            Error::UpstreamRequired => ErrorCode::UpstreamRequired,
            Error::UpstreamUnsupported => ErrorCode::UpstreamUnsupported,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn storage(detail: impl fmt::Display) -> Error {
        Error::Storage {
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { field, reason } => write!(f, "invalid {field}: {reason}"),
            Error::TooLong { field, limit } => {
                write!(f, "{field} is too long: the limit is {limit}")
            }
            Error::NotFound { key_id } => write!(f, "no key with id {key_id:?} exists"),
            Error::OwnerNotFound { owner } => write!(
                f,
                "owner {owner:?} has no owner record and no key; check the spelling"
            ),
            Error::PolicyMaxActiveKeys { owner, limit } => write!(
                f,
                "owner {owner:?} already has {limit} active keys, the store's maximum; revoke one first"
            ),
            Error::PolicyLastActiveKey { owner } => write!(
                f,
                "refused: this is the last active key of owner {owner:?} (keep-last-key policy); create a new key first"
            ),
            Error::PolicyMaxLifetime { max_lifetime_secs } => write!(
                f,
                "the key needs an expiry at most {max_lifetime_secs} s from now (max-lifetime policy)"
            ),
            Error::DirectoryMissing { dir } => write!(
                f,
                "the directory {} does not exist; create it or choose another database path",
                dir.display()
            ),
            Error::Locked { path } => write!(
                f,
                "{} is locked by another process in an incompatible mode; open every process in multi-process mode, or stop the other process",
                path.display()
            ),
            Error::ReadOnly { path, detail } => write!(
                f,
                "{} cannot be written ({detail}); give this process write access to the file and its directory",
                path.display()
            ),
            Error::Corrupt { path, detail } => write!(
                f,
                "{} is damaged or not a keyward store ({detail}); restore it from a backup",
                path.display()
            ),
            Error::WrongPepper => write!(
                f,
                "wrong pepper: it does not match the one this store was created with; pass the store's original pepper"
            ),
            Error::NewerFormat { found, supported } => write!(
                f,
                "the store has format version {found}, but this keyward reads up to version {supported}; upgrade keyward"
            ),
            Error::PepperMissing { path } => write!(
                f,
                "the store exists but its pepper file {} is missing; restore it, or pass the pepper explicitly",
                path.display()
            ),
            Error::PepperInvalid { detail } => write!(f, "invalid pepper: {detail}"),
            Error::PepperPermissions { path, mode } => write!(
                f,
                "pepper file {} has mode {mode:o} and is readable by others; run `chmod 600` on it",
                path.display()
            ),
            Error::ConfigMismatch { detail } => {
                write!(f, "options do not match the store: {detail}")
            }
            Error::InBatch { index, error } => {
                write!(
                    f,
                    "new key {index} of the batch (0-based), nothing created: {error}"
                )
            }
            Error::Storage { detail } => write!(f, "storage error: {detail}"),
            Error::CreditSlotsExhausted { slots } => write!(
                f,
                "all {slots} usage-credit slots are in use; delete unused limited keys"
            ),
            Error::RateSlotsExhausted { slots } => write!(
                f,
                "all {slots} rate-limit slots are in use; delete unused rate-limited keys or \
                 owner limits"
            ),
            Error::CredentialMissing => write!(
                f,
                "no API key in the request: send `x-api-key`, `Authorization: Bearer`, `Authorization: Basic` or the X-Api-Token-Id/X-Api-Token-Secret-Key pair"
            ),
            Error::UnsupportedScheme { scheme } => write!(
                f,
                "unsupported Authorization scheme {scheme:?}; use Bearer or Basic"
            ),
            Error::BadBase64 => write!(f, "the Basic credential is not valid base64 of UTF-8 text"),
            Error::HalfPair { missing } => {
                write!(
                    f,
                    "half of the token pair was sent: header {missing} is missing"
                )
            }
            Error::MalformedKey(e) => write!(f, "malformed key: {e}"),
            Error::AmbiguousCredential => write!(
                f,
                "the request carries several different credentials; send exactly one"
            ),
            Error::LegacyImportInvalid {
                scheme,
                line,
                detail,
            } => write!(
                f,
                "{scheme} export, line {line}: {detail}; nothing was imported"
            ),
            Error::UpstreamUnavailable { detail } => write!(
                f,
                "the upstream PostgreSQL is unavailable ({detail}); nothing was changed, retry later (verifies go on with the last replicated state)"
            ),
            Error::UpstreamSchema { detail } => write!(
                f,
                "the upstream PostgreSQL schema cannot be used ({detail}); upgrade keyward"
            ),
            Error::UpstreamRequired => write!(
                f,
                "this store is a replica of an upstream PostgreSQL: a change made here alone would not reach the other hosts; make it through the upstream (open the store with its upstream URL, keyward::upstream::Upstream, or `keyward --upstream URL`)"
            ),
            Error::UpstreamUnsupported => write!(
                f,
                "this libkeyward was built without PostgreSQL support (Cargo feature `postgres`): it cannot open a store with an upstream URL; use a build with the feature"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Marks this error as that of the new key at `index` of a batch.
    pub(crate) fn in_batch(self, index: usize) -> Error {
        Error::InBatch {
            index,
            error: Box::new(self),
        }
    }
}

impl From<crate::key_format::KeyFormatError> for Error {
    fn from(e: crate::key_format::KeyFormatError) -> Self {
        Error::MalformedKey(e)
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(detail) => Error::Corrupt {
                path: PathBuf::new(),
                detail,
            },
            other => Error::storage(other),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
