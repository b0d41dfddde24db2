//! The designs keyward is measured against, verifying the same key texts as keyward does.
//!
//! Shared by `keyward bench` (declared from `bench.rs`) and the Criterion benchmarks in
//! `benches/` (declared from `benches/common/mod.rs` with `#[path]`), so both measure exactly
//! the same code:
//!
//! - [`Floor`]: the physical limit of an in-memory verifier of this key format — parse and
//!   checksum the key ([`keyward::parse_key`]), keyed BLAKE3 of id ‖ secret, one `HashMap`
//!   lookup, a constant-time digest compare and two atomics (a change-counter load and a
//!   usage count), with no lock, no clock read and no usage bookkeeping;
//! - [`SqliteSha256`]: what Laravel Sanctum and djangorestframework-api-key do per request —
//!   SHA-256 of the presented token, hex, looked up in an indexed column of an on-disk SQLite
//!   database through a cached prepared statement;
//! - [`RedbTxn`]: a redb read transaction per verify (`begin_read` + `open_table` + `get`),
//!   in `MultiWriter` (several processes) or `ExclusiveWriter` mode.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use keyward::{KeyId, parse_key};
use redb::{ReadableDatabase, TableDefinition};
use sha2::{Digest, Sha256};

/// The prefix of the keys every contender verifies.
pub const PREFIX: &str = "kw";

/// The redb table of the `redb_txn_*` baselines: public id → keyed BLAKE3 digest.
const DIGESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("digests");

/// The pepper of the baselines' keyed digests (fixed: the baselines are not a key store).
const BASELINE_PEPPER: [u8; 32] = *b"keyward-bench-baseline-pepper-32";

/// Keyed BLAKE3 of id ‖ secret, as keyward computes it.
#[inline]
fn keyed_digest(id: &KeyId, secret: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(&BASELINE_PEPPER);
    hasher.update(id.as_bytes());
    hasher.update(secret);
    hasher.finalize()
}

/// The in-memory floor (see the module documentation).
pub struct Floor {
    map: HashMap<KeyId, blake3::Hash>,
    change_counter: AtomicU64,
    uses: AtomicU64,
}

impl Floor {
    /// Indexes the digests of `keys` (full key texts).
    pub fn new(keys: &[String]) -> Floor {
        let mut map = HashMap::with_capacity(keys.len());
        for key in keys {
            let parsed = parse_key(key, Some(PREFIX)).expect("bench keys are well formed");
            map.insert(parsed.id, keyed_digest(&parsed.id, parsed.secret.expose()));
        }
        Floor {
            map,
            change_counter: AtomicU64::new(0),
            uses: AtomicU64::new(0),
        }
    }

    /// Verifies a full key; true when it is known and its secret matches.
    #[inline]
    pub fn verify(&self, key: &str) -> bool {
        let Ok(parsed) = parse_key(key, Some(PREFIX)) else {
            return false;
        };
        // What a cross-process design must check before trusting its map.
        std::hint::black_box(self.change_counter.load(Ordering::Acquire));
        let digest = keyed_digest(&parsed.id, parsed.secret.expose());
        match self.map.get(&parsed.id) {
            // blake3::Hash equality is constant-time.
            Some(stored) if *stored == digest => {
                self.uses.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

/// Lower-case hex of a SHA-256 digest, as Sanctum stores it.
fn sha256_hex(text: &str) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 64];
    for (i, byte) in digest.iter().enumerate() {
        out[i * 2] = HEX[(byte >> 4) as usize];
        out[i * 2 + 1] = HEX[(byte & 15) as usize];
    }
    out
}

/// SQLite with a SHA-256 hex digest in an indexed column (see the module documentation).
pub struct SqliteSha256 {
    conn: rusqlite::Connection,
}

impl SqliteSha256 {
    /// Creates the database at `path` holding the digests of `keys`.
    pub fn create(path: &Path, keys: &[String]) -> rusqlite::Result<SqliteSha256> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE personal_access_tokens (
                 id INTEGER PRIMARY KEY,
                 tokenable_id INTEGER NOT NULL,
                 token TEXT NOT NULL UNIQUE,
                 abilities TEXT,
                 last_used_at INTEGER,
                 expires_at INTEGER
             );",
        )?;
        let txn = conn.transaction()?;
        {
            let mut insert = txn.prepare(
                "INSERT INTO personal_access_tokens (tokenable_id, token, abilities) VALUES (?1, ?2, '[\"read\"]')",
            )?;
            for (i, key) in keys.iter().enumerate() {
                let hex = sha256_hex(key);
                let hex = std::str::from_utf8(&hex).expect("hex is ASCII");
                insert.execute(rusqlite::params![i as i64 % 1000, hex])?;
            }
        }
        txn.commit()?;
        Ok(SqliteSha256 { conn })
    }

    /// Verifies a full key; true when a row holds its digest.
    #[inline]
    pub fn verify(&self, key: &str) -> bool {
        let hex = sha256_hex(key);
        let hex = std::str::from_utf8(&hex).expect("hex is ASCII");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, abilities, expires_at FROM personal_access_tokens WHERE token = ?1",
            )
            .expect("prepare the lookup");
        let mut rows = stmt.query([hex]).expect("run the lookup");
        matches!(rows.next(), Ok(Some(_)))
    }
}

/// A redb read transaction per verify (see the module documentation).
pub struct RedbTxn {
    db: redb::Database,
}

impl RedbTxn {
    /// Creates the redb file at `path` holding the digests of `keys`.
    pub fn create(path: &Path, keys: &[String]) -> Result<(), redb::Error> {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)?;
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(DIGESTS)?;
            for key in keys {
                let parsed = parse_key(key, Some(PREFIX)).expect("bench keys are well formed");
                let digest = keyed_digest(&parsed.id, parsed.secret.expose());
                table.insert(parsed.id.as_str(), digest.as_bytes().as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Opens a file made by [`RedbTxn::create`]; `exclusive` selects `ExclusiveWriter`.
    pub fn open(path: &Path, exclusive: bool) -> Result<RedbTxn, redb::Error> {
        let mode = if exclusive {
            redb::ConcurrencyMode::ExclusiveWriter
        } else {
            redb::ConcurrencyMode::MultiWriter
        };
        let db = redb::Database::builder()
            .set_concurrency_mode(mode)
            .create(path)?;
        Ok(RedbTxn { db })
    }

    /// Verifies a full key; true when it is known and its secret matches.
    #[inline]
    pub fn verify(&self, key: &str) -> bool {
        let Ok(parsed) = parse_key(key, Some(PREFIX)) else {
            return false;
        };
        let digest = keyed_digest(&parsed.id, parsed.secret.expose());
        let txn = self.db.begin_read().expect("begin a read transaction");
        let table = txn.open_table(DIGESTS).expect("open the digest table");
        match table.get(parsed.id.as_str()).expect("read a digest") {
            Some(stored) => {
                let stored: [u8; 32] = stored.value().try_into().unwrap_or([0; 32]);
                blake3::Hash::from_bytes(stored) == digest
            }
            None => false,
        }
    }
}
