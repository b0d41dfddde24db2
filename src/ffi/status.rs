//! `kw_status`: the result of every fallible `kw_` function. Its numbers are exactly those
//! of [`crate::ErrorCode`] (explicit, never renumbered, only appended to).

use std::ffi::c_char;

use super::panic;
use super::status_table::{FAMILIES, MESSAGES, NAMES};
pub use super::status_table::{kw_family, kw_status};
use crate::error::{Error, ErrorCode};

impl kw_status {
    /// The status with this number, if there is one.
    pub fn from_u32(value: u32) -> Option<kw_status> {
        kw_status::ALL.iter().copied().find(|s| *s as u32 == value)
    }

    /// The status of an engine error code (same number). A code this table does not know
    /// yet (a newer engine) becomes `KW_STORAGE`; a unit test keeps the two lists equal.
    pub fn from_code(code: ErrorCode) -> kw_status {
        kw_status::from_u32(code.as_u32()).unwrap_or(kw_status::KW_STORAGE)
    }

    fn index(self) -> usize {
        kw_status::ALL
            .iter()
            .position(|s| *s == self)
            .expect("every status is in ALL")
    }

    /// Stable upper-case name without the prefix, e.g. `"NOT_FOUND"` (equal to
    /// `ErrorCode::name`).
    pub fn name(self) -> &'static str {
        NAMES[self.index()]
            .to_str()
            .expect("generated names are ASCII")
    }

    /// The kind of failure.
    pub fn family(self) -> kw_family {
        FAMILIES[self.index()]
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
            .map_or(UNKNOWN_STATUS, |s| MESSAGES[s.index()])
            .as_ptr()
    })
}

/// The stable name of a status without the `KW_` prefix, e.g. `"NOT_FOUND"`: a static,
/// NUL-terminated string (`"UNKNOWN"` for an unknown value). Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_status_name(status: u32) -> *const c_char {
    panic::boundary(|| match kw_status::from_u32(status) {
        Some(s) => NAMES[s.index()].as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    })
}

/// The kind of failure of a status, a `kw_family` value: `KW_FAMILY_ARGUMENT` (the call was
/// wrong), `KW_FAMILY_NOT_FOUND`, `KW_FAMILY_POLICY`, `KW_FAMILY_STORAGE`, `KW_FAMILY_PEPPER`,
/// `KW_FAMILY_CREDENTIAL` (the request's credential: answer HTTP 401), `KW_FAMILY_INTERNAL`;
/// `KW_FAMILY_OK` for `KW_OK`. Bindings choose their exception class from it instead of
/// keeping lists of codes. An unknown value gives `KW_FAMILY_INTERNAL`. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_status_family(status: u32) -> u32 {
    panic::boundary(|| {
        kw_status::from_u32(status).map_or(kw_family::KW_FAMILY_INTERNAL, kw_status::family) as u32
    })
}

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
            assert_eq!(status.family() as u32, code.family() as u32);
        }
    }
}
