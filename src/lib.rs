//! # keyward
//!
//! An embedded API-key engine: issue, verify, revoke, rotate and count API keys in-process,
//! in a redb file that many worker processes share, with a verify that opens no database
//! transaction and makes no system call (about 0.3 µs with 1,000 keys, 1.2 µs with 100,000 on
//! the 2-core development machine: BENCHMARKS.md) and stays correct across processes.
//!
//! ```no_run
//! use keyward::{NewKey, Store, StoreOptions};
//!
//! let store = Store::open("/var/lib/myapp/keys.redb", StoreOptions::default())?;
//! let created = store.create(NewKey {
//!     owner: "acct_42".into(),
//!     name: "CI deploy".into(),
//!     scopes: vec!["deploy".into()],
//!     env: Some("live".into()),
//!     ..NewKey::default()
//! })?;
//! println!("give this to the customer once: {}", created.key());
//! let verdict = store.verify(created.key(), &["deploy"])?;
//! assert!(verdict.is_valid());
//! # Ok::<(), keyward::Error>(())
//! ```
//!
//! Layers, top to bottom: the C ABI ([`ffi`]) uses the public API of the engine ([`Store`]);
//! the engine uses the key format, the credential parser, the digest and the storage schema
//! (private modules); those use only the error type ([`Error`]). Every public item is
//! re-exported here, at the crate root, from one `pub use` block.

#![deny(missing_docs)]

mod clock;
mod credential;
mod digest;
mod error;
pub mod ffi;
mod key_format;
mod key_record;
mod legacy;
mod policy;
mod rate_limit;
mod schema;
mod store;
mod usage;
mod verdict;

mod failpoint;
mod locks;
mod sys;
mod table;
#[cfg(feature = "postgres")]
pub mod upstream;

// The public API: every item a user of the crate can name, in one place. The modules above are
// private; README.md ("Rust", "The public API") lists the same items and tests/public_api.rs
// checks that the two agree.
pub use clock::{Clock, Day, ManualClock, SystemClock, Timestamp};
pub use credential::{Credential, extract_credential, extract_from_header_line};
pub use digest::Pepper;
pub use error::{Error, ErrorCode, ErrorFamily, Result};
pub use key_format::{
    BODY_LEN, CHECKSUM_LEN, ID_LEN, KeyFormatError, KeyId, ParsedKey, SECRET_LEN, Secret,
    encode_checksum, format_key, is_valid_tag, parse_key,
};
pub use legacy::source::LegacyImportOptions;
pub use legacy::{LegacyOrigin, LegacyScheme, legacy_key_id};
pub use policy::Policies;
pub use rate_limit::{MAX_RATE_BURST, MAX_RATE_PERIOD_MS, RateLimit, RateScope, RateStatus};
pub use schema::{CreditTerms, FORMAT_VERSION, KeyInfo, Refill, RefillInterval};
pub use store::{
    AuditAction, AuditEvent, AuditPage, AuditQuery, Concurrency, CreatedKey, CreditBalance,
    DEFAULT_FLUSH_INTERVAL, DEFAULT_INDEX_CAPACITY, DEFAULT_PREFIX, DEFAULT_ROTATION_GRACE,
    KeyUpdate, LegacyImportReport, ListOptions, MAX_ACTOR_LEN, MAX_LEGACY_SOURCE_ID_LEN,
    MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, MAX_PAGE_SIZE, MAX_PRESENTED_LEN,
    MAX_REASON_LEN, MAX_SCOPE_LEN, MAX_SCOPES, MAX_USAGE_DAYS, NewCredits, NewKey, OwnerInfo, Page,
    PepperSource, Presented, ReplicaStats, StateFilter, Store, StoreOptions, StoreStats,
    TableStats, VerifyRequest, default_pepper_path,
};
pub use sys::shared_memory::{CREDIT_SLOTS, RATE_SLOTS};
pub use usage::{DailyUsage, UsageStats};
pub use verdict::{HttpVerdict, Reason, Verdict};
