//! The pepper and the stored digest of a secret.
//!
//! A key's digest is `blake3::keyed_hash(pepper, id ‖ secret)`: binding the id means a digest
//! cannot be moved to another record. The 32-byte pepper lives outside the database (given by
//! the host, or in a 0600 file beside it), so a stolen database confirms nothing. Digests are
//! compared with `blake3::Hash` equality, which is constant-time.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use getrandom::SysRng;
use rand_core::TryRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key_format::{ID_LEN, KeyId, SECRET_LEN, Secret};
use crate::legacy::LegacyScheme;

/// Length of a pepper in bytes.
pub const PEPPER_LEN: usize = 32;

/// Domain-separated message whose keyed hash is the store's pepper check value.
const PEPPER_CHECK_MESSAGE: &[u8] = b"keyward pepper check v1";

/// The 32-byte secret key of every digest. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct Pepper(Zeroizing<[u8; PEPPER_LEN]>);

impl Pepper {
    /// Wraps 32 bytes supplied by the host.
    pub fn from_bytes(bytes: &[u8]) -> Result<Pepper> {
        if bytes.len() != PEPPER_LEN {
            return Err(Error::PepperInvalid {
                detail: format!("expected {PEPPER_LEN} bytes, got {}", bytes.len()),
            });
        }
        let mut pepper = Zeroizing::new([0u8; PEPPER_LEN]);
        pepper.copy_from_slice(bytes);
        Ok(Pepper(pepper))
    }

    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Pepper> {
        let text = text.trim();
        if text.len() != PEPPER_LEN * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::PepperInvalid {
                detail: format!("expected {} hexadecimal characters", PEPPER_LEN * 2),
            });
        }
        let mut pepper = Zeroizing::new([0u8; PEPPER_LEN]);
        for (i, slot) in pepper.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).expect("checked hex");
        }
        Ok(Pepper(pepper))
    }

    /// A fresh pepper from the OS RNG.
    pub fn generate() -> Pepper {
        let mut pepper = Zeroizing::new([0u8; PEPPER_LEN]);
        SysRng
            .try_fill_bytes(&mut pepper[..])
            .expect("the OS random number generator failed");
        Pepper(pepper)
    }

    /// Reads a pepper file: 64 hex characters (optionally newline-terminated) or 32 raw bytes.
    /// Refuses a file that group or others can read, as ssh refuses a readable private key.
    pub fn read_file(path: &Path) -> Result<Pepper> {
        let metadata = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::PepperMissing {
                path: path.to_owned(),
            },
            _ => Error::storage(format!("cannot read pepper file {}: {e}", path.display())),
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::PepperPermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(|e| {
            Error::storage(format!("cannot read pepper file {}: {e}", path.display()))
        })?);
        if bytes.len() == PEPPER_LEN {
            return Pepper::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::PepperInvalid {
            detail: format!(
                "{} holds {} bytes: expected 32 raw bytes or 64 hex characters",
                path.display(),
                bytes.len()
            ),
        })?;
        Pepper::from_hex(text).map_err(|_| Error::PepperInvalid {
            detail: format!(
                "{} holds {} bytes: expected 32 raw bytes or 64 hex characters",
                path.display(),
                bytes.len()
            ),
        })
    }

    /// Writes a new random pepper file with mode 0600, atomically: it either appears whole or
    /// not at all, and an existing file is never replaced (several processes may race here;
    /// the loser reads the winner's file).
    pub fn create_file(path: &Path) -> Result<Pepper> {
        let pepper = Pepper::generate();
        let dir = path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("pepper"),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            let hex = Zeroizing::new(pepper.to_hex());
            file.write_all(hex.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            Ok(())
        };
        let written = write();
        let linked = written.and_then(|()| fs::hard_link(&temp, path));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(pepper),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Pepper::read_file(path),
            Err(e) => Err(match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    Error::ReadOnly {
                        path: path.to_owned(),
                        detail: e.to_string(),
                    }
                }
                _ => Error::storage(format!("cannot write pepper file {}: {e}", path.display())),
            }),
        }
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The value stored in the database to recognise this pepper at open.
    pub(crate) fn check_value(&self) -> blake3::Hash {
        blake3::keyed_hash(&self.0, PEPPER_CHECK_MESSAGE)
    }

    /// The digest of a key's secret, bound to its id.
    #[inline]
    pub(crate) fn digest(&self, id: &KeyId, secret: &Secret) -> blake3::Hash {
        // One call over the id and secret side by side (the same hash as two updates; the
        // one-shot form skips the incremental hasher's bookkeeping on every verify). The copy
        // holds the secret: zeroized when it goes.
        let mut input = Zeroizing::new([0u8; ID_LEN + SECRET_LEN]);
        input[..ID_LEN].copy_from_slice(id.as_bytes());
        input[ID_LEN..].copy_from_slice(secret.expose());
        blake3::keyed_hash(&self.0, &input[..])
    }

    /// The wrapped digest of a legacy key: a keyed hash of the scheme and the raw legacy
    /// hash (what a legacy record stores instead of that hash, see `crate::legacy`).
    #[inline]
    pub(crate) fn legacy_digest(&self, scheme: LegacyScheme, raw_hash: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(b"keyward legacy hash v1\0");
        hasher.update(&scheme.code().to_le_bytes());
        hasher.update(raw_hash);
        hasher.finalize()
    }

    /// The digest of an upgraded legacy key: a keyed hash of the text its scheme hashes
    /// (`crate::legacy::Candidate::canonical`), domain-separated from native digests.
    #[inline]
    pub(crate) fn upgraded_digest(&self, canonical: &str) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(b"keyward upgraded legacy key v1\0");
        hasher.update(canonical.as_bytes());
        hasher.finalize()
    }

    /// A 64-bit tag naming this pepper, stored in the shared verify table so a table built
    /// with another pepper (another store) is never used. Reveals nothing about the pepper.
    pub(crate) fn table_tag(&self) -> u64 {
        let tag = blake3::keyed_hash(&self.0, b"keyward shared verify table v1");
        u64::from_le_bytes(tag.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Constant-time equality with another pepper.
    pub(crate) fn same_as(&self, other: &Pepper) -> bool {
        blake3::Hash::from_bytes(*self.0) == blake3::Hash::from_bytes(*other.0)
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_pepper_id_and_secret() {
        let p1 = Pepper::generate();
        let p2 = Pepper::generate();
        let id = KeyId::generate();
        let other_id = KeyId::generate();
        let secret = Secret::generate();
        assert_eq!(p1.digest(&id, &secret), p1.digest(&id, &secret));
        assert_ne!(p1.digest(&id, &secret), p2.digest(&id, &secret));
        assert_ne!(p1.digest(&id, &secret), p1.digest(&other_id, &secret));
    }

    /// The one-shot digest is BLAKE3's keyed hash of the id followed by the secret (what the
    /// stores written before it hold).
    #[test]
    fn digest_is_the_keyed_hash_of_id_then_secret() {
        let pepper = Pepper::generate();
        let (id, secret) = (KeyId::generate(), Secret::generate());
        let mut hasher = blake3::Hasher::new_keyed(&pepper.0);
        hasher.update(id.as_bytes());
        hasher.update(secret.expose());
        assert_eq!(pepper.digest(&id, &secret), hasher.finalize());
    }

    #[test]
    fn hex_round_trip_and_bad_lengths() {
        let p = Pepper::generate();
        let again = Pepper::from_hex(&p.to_hex()).unwrap();
        assert!(p.same_as(&again));
        assert!(Pepper::from_hex("abcd").is_err());
        assert!(Pepper::from_bytes(&[0u8; 31]).is_err());
    }
}
