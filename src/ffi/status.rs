//! `kw_status`: the result of every fallible `kw_` function. Its numbers are exactly those
//! of [`crate::ErrorCode`] (explicit, never renumbered, only appended to).

use std::ffi::c_char;

use super::panic;
use crate::error::{Error, ErrorCode};

/// Result of a `kw_` call. `KW_OK` (0) is success; every other value says what failed.
/// The values are those of the Rust `keyward::ErrorCode`, explicit and never renumbered.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_status {
    /// Success.
    KW_OK = 0,
    /// An argument is invalid (empty where required, wrong charset, out of range, unknown flag).
    KW_INVALID_ARGUMENT = 1,
    /// A required pointer argument was NULL (or NULL with a non-zero length).
    KW_NULL_ARGUMENT = 2,
    /// Text that must be UTF-8 was not.
    KW_INVALID_UTF8 = 3,
    /// An input is longer than its documented limit.
    KW_TOO_LONG = 4,
    /// The caller's output buffer is too small; the size needed was written to the length
    /// out-pointer.
    KW_BUFFER_TOO_SMALL = 5,
    /// A panic was caught at the C boundary (a bug in keyward; the process can go on).
    KW_PANIC = 6,
    /// The store handle is closed, or was never returned by `kw_open`.
    KW_CLOSED = 7,
    /// No key with that id exists.
    KW_NOT_FOUND = 10,
    /// The owner already has the maximum number of active keys.
    KW_POLICY_MAX_ACTIVE_KEYS = 20,
    /// The operation would leave the owner without an active key.
    KW_POLICY_LAST_ACTIVE_KEY = 21,
    /// The expiry is missing or beyond the store's maximum key lifetime.
    KW_POLICY_MAX_LIFETIME = 22,
    /// The directory that should hold the database does not exist.
    KW_DIRECTORY_MISSING = 30,
    /// The database is locked by another process in an incompatible mode.
    KW_LOCKED = 31,
    /// The database (or its directory) is read-only for this process.
    KW_READ_ONLY = 32,
    /// The database file is damaged or is not a keyward store.
    KW_CORRUPT = 33,
    /// The pepper does not match the one the store was created with.
    KW_WRONG_PEPPER = 34,
    /// The store was written by a newer keyward format.
    KW_NEWER_FORMAT = 35,
    /// The pepper file of an existing store is missing.
    KW_PEPPER_MISSING = 36,
    /// The pepper (file or bytes) has the wrong length or encoding.
    KW_PEPPER_INVALID = 37,
    /// The pepper file is readable by other users.
    KW_PEPPER_PERMISSIONS = 38,
    /// The options conflict with how the store was created or is already open in this process.
    KW_CONFIG_MISMATCH = 39,
    /// Any other storage or I/O failure.
    KW_STORAGE = 40,
    /// The store has no free usage-credit slot left.
    KW_CREDIT_SLOTS_EXHAUSTED = 42,
    /// No credential was found in the request headers (HTTP 401).
    KW_CREDENTIAL_MISSING = 50,
    /// The `Authorization` header uses a scheme keyward does not accept (HTTP 401).
    KW_UNSUPPORTED_SCHEME = 51,
    /// The `Authorization: Basic` value is not valid base64 of UTF-8 text (HTTP 401).
    KW_BAD_BASE64 = 52,
    /// Only one of `X-Api-Token-Id` / `X-Api-Token-Secret-Key` was sent (HTTP 401).
    KW_HALF_PAIR = 53,
    /// The text is not a well-formed keyward key.
    KW_MALFORMED_KEY = 54,
    /// Several different credentials were sent in one request (HTTP 401).
    KW_AMBIGUOUS_CREDENTIAL = 55,
}

impl kw_status {
    /// Every status, in numeric order.
    pub const ALL: &'static [kw_status] = &[
        kw_status::KW_OK,
        kw_status::KW_INVALID_ARGUMENT,
        kw_status::KW_NULL_ARGUMENT,
        kw_status::KW_INVALID_UTF8,
        kw_status::KW_TOO_LONG,
        kw_status::KW_BUFFER_TOO_SMALL,
        kw_status::KW_PANIC,
        kw_status::KW_CLOSED,
        kw_status::KW_NOT_FOUND,
        kw_status::KW_POLICY_MAX_ACTIVE_KEYS,
        kw_status::KW_POLICY_LAST_ACTIVE_KEY,
        kw_status::KW_POLICY_MAX_LIFETIME,
        kw_status::KW_DIRECTORY_MISSING,
        kw_status::KW_LOCKED,
        kw_status::KW_READ_ONLY,
        kw_status::KW_CORRUPT,
        kw_status::KW_WRONG_PEPPER,
        kw_status::KW_NEWER_FORMAT,
        kw_status::KW_PEPPER_MISSING,
        kw_status::KW_PEPPER_INVALID,
        kw_status::KW_PEPPER_PERMISSIONS,
        kw_status::KW_CONFIG_MISMATCH,
        kw_status::KW_STORAGE,
        kw_status::KW_CREDIT_SLOTS_EXHAUSTED,
        kw_status::KW_CREDENTIAL_MISSING,
        kw_status::KW_UNSUPPORTED_SCHEME,
        kw_status::KW_BAD_BASE64,
        kw_status::KW_HALF_PAIR,
        kw_status::KW_MALFORMED_KEY,
        kw_status::KW_AMBIGUOUS_CREDENTIAL,
    ];

    /// The status with this number, if there is one.
    pub fn from_u32(value: u32) -> Option<kw_status> {
        kw_status::ALL.iter().copied().find(|s| *s as u32 == value)
    }

    /// The status of an engine error code (same number). A code this table does not know
    /// yet (a newer engine) becomes `KW_STORAGE`; a unit test keeps the two lists equal.
    pub fn from_code(code: ErrorCode) -> kw_status {
        kw_status::from_u32(code.as_u32()).unwrap_or(kw_status::KW_STORAGE)
    }

    /// Stable upper-case name without the prefix, e.g. `"NOT_FOUND"` (equal to
    /// `ErrorCode::name`).
    pub fn name(self) -> &'static str {
        self.strings().0
    }

    /// Static (name, message) of the status, NUL-terminated for C.
    fn strings(self) -> (&'static str, &'static std::ffi::CStr) {
        use kw_status::*;
        match self {
            KW_OK => ("OK", c"success"),
            KW_INVALID_ARGUMENT => ("INVALID_ARGUMENT", c"an argument is invalid"),
            KW_NULL_ARGUMENT => ("NULL_ARGUMENT", c"a required pointer argument was NULL"),
            KW_INVALID_UTF8 => ("INVALID_UTF8", c"text that must be UTF-8 is not"),
            KW_TOO_LONG => ("TOO_LONG", c"an input is longer than its documented limit"),
            KW_BUFFER_TOO_SMALL => (
                "BUFFER_TOO_SMALL",
                c"the output buffer is too small; the size needed was written to the length out-pointer",
            ),
            KW_PANIC => ("PANIC", c"internal error: a panic was caught at the C boundary"),
            KW_CLOSED => ("CLOSED", c"the store handle is closed or invalid"),
            KW_NOT_FOUND => ("NOT_FOUND", c"no key with that id exists"),
            KW_POLICY_MAX_ACTIVE_KEYS => (
                "POLICY_MAX_ACTIVE_KEYS",
                c"the owner already has the store's maximum number of active keys; revoke one first",
            ),
            KW_POLICY_LAST_ACTIVE_KEY => (
                "POLICY_LAST_ACTIVE_KEY",
                c"refused: this is the owner's last active key (keep-last-key policy); create a new key first",
            ),
            KW_POLICY_MAX_LIFETIME => (
                "POLICY_MAX_LIFETIME",
                c"the key needs an expiry within the store's maximum key lifetime",
            ),
            KW_DIRECTORY_MISSING => (
                "DIRECTORY_MISSING",
                c"the directory of the database path does not exist",
            ),
            KW_LOCKED => (
                "LOCKED",
                c"the database is locked by another process in an incompatible mode",
            ),
            KW_READ_ONLY => ("READ_ONLY", c"the database or its directory cannot be written"),
            KW_CORRUPT => ("CORRUPT", c"the database is damaged or not a keyward store"),
            KW_WRONG_PEPPER => (
                "WRONG_PEPPER",
                c"wrong pepper: it does not match the one this store was created with",
            ),
            KW_NEWER_FORMAT => ("NEWER_FORMAT", c"the store was written by a newer keyward; upgrade"),
            KW_PEPPER_MISSING => ("PEPPER_MISSING", c"the store exists but its pepper file is missing"),
            KW_PEPPER_INVALID => (
                "PEPPER_INVALID",
                c"invalid pepper: expected 32 bytes or 64 hexadecimal characters",
            ),
            KW_PEPPER_PERMISSIONS => (
                "PEPPER_PERMISSIONS",
                c"the pepper file is readable by other users; chmod 600 it",
            ),
            KW_CONFIG_MISMATCH => (
                "CONFIG_MISMATCH",
                c"the options do not match the store (or how this process already opened it)",
            ),
            KW_STORAGE => ("STORAGE", c"storage or I/O error"),
            KW_CREDIT_SLOTS_EXHAUSTED => (
                "CREDIT_SLOTS_EXHAUSTED",
                c"every usage-credit slot of the store is in use",
            ),
            KW_CREDENTIAL_MISSING => ("CREDENTIAL_MISSING", c"no API key in the request"),
            KW_UNSUPPORTED_SCHEME => (
                "UNSUPPORTED_SCHEME",
                c"unsupported Authorization scheme; use Bearer or Basic",
            ),
            KW_BAD_BASE64 => ("BAD_BASE64", c"the Basic credential is not valid base64 of UTF-8 text"),
            KW_HALF_PAIR => ("HALF_PAIR", c"only half of the X-Api-Token-Id / X-Api-Token-Secret-Key pair was sent"),
            KW_MALFORMED_KEY => ("MALFORMED_KEY", c"the text is not a well-formed key"),
            KW_AMBIGUOUS_CREDENTIAL => (
                "AMBIGUOUS_CREDENTIAL",
                c"the request carries several different credentials",
            ),
        }
    }
}

impl From<&Error> for kw_status {
    /// Also records the error's message for `kw_last_error_message`.
    fn from(error: &Error) -> Self {
        super::error_detail::record(error);
        kw_status::from_code(error.code())
    }
}

impl From<Error> for kw_status {
    fn from(error: Error) -> Self {
        kw_status::from(&error)
    }
}

const UNKNOWN_STATUS: &std::ffi::CStr = c"unknown status";

/// A static, NUL-terminated English message for a status (never NULL, never freed; an
/// unknown value gives `"unknown status"`). Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_status_message(status: u32) -> *const c_char {
    panic::boundary(|| {
        kw_status::from_u32(status)
            .map_or(UNKNOWN_STATUS, |s| s.strings().1)
            .as_ptr()
    })
}

/// The stable name of a status without the `KW_` prefix, e.g. `"NOT_FOUND"`: a static,
/// NUL-terminated string (`"UNKNOWN"` for an unknown value). Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_status_name(status: u32) -> *const c_char {
    panic::boundary(|| match kw_status::from_u32(status) {
        Some(s) => NAMES[kw_status::ALL.iter().position(|x| *x == s).unwrap_or(0)].as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    })
}

/// NUL-terminated names, in the order of [`kw_status::ALL`].
static NAMES: [&std::ffi::CStr; 30] = [
    c"OK",
    c"INVALID_ARGUMENT",
    c"NULL_ARGUMENT",
    c"INVALID_UTF8",
    c"TOO_LONG",
    c"BUFFER_TOO_SMALL",
    c"PANIC",
    c"CLOSED",
    c"NOT_FOUND",
    c"POLICY_MAX_ACTIVE_KEYS",
    c"POLICY_LAST_ACTIVE_KEY",
    c"POLICY_MAX_LIFETIME",
    c"DIRECTORY_MISSING",
    c"LOCKED",
    c"READ_ONLY",
    c"CORRUPT",
    c"WRONG_PEPPER",
    c"NEWER_FORMAT",
    c"PEPPER_MISSING",
    c"PEPPER_INVALID",
    c"PEPPER_PERMISSIONS",
    c"CONFIG_MISMATCH",
    c"STORAGE",
    c"CREDIT_SLOTS_EXHAUSTED",
    c"CREDENTIAL_MISSING",
    c"UNSUPPORTED_SCHEME",
    c"BAD_BASE64",
    c"HALF_PAIR",
    c"MALFORMED_KEY",
    c"AMBIGUOUS_CREDENTIAL",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_engine_error_codes() {
        assert_eq!(kw_status::ALL.len(), ErrorCode::ALL.len());
        for (status, code) in kw_status::ALL.iter().zip(ErrorCode::ALL) {
            assert_eq!(*status as u32, code.as_u32(), "{status:?}");
            assert_eq!(status.name(), code.name());
            assert_eq!(kw_status::from_code(*code), *status);
        }
        for (i, status) in kw_status::ALL.iter().enumerate() {
            assert_eq!(NAMES[i].to_str().unwrap(), status.name());
        }
    }
}
