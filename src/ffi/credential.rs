//! Credential extraction from headers, key parsing, and the reason helpers (no store needed).

use std::ffi::c_char;

use super::args::{self, OutBuf, out_ptr, put};
use super::panic::{boundary, guard};
use super::status::kw_status;
use super::types::{kw_credential_kind, kw_header, kw_key_error, kw_parsed_key};
use crate::key_format::{KeyFormatError, parse_key};
use crate::store::Presented;
use crate::verdict::Reason;

/// Extracts the credential from request headers without verifying it.
///
/// - `headers`, `headers_len`: as `kw_verify_headers`;
/// - `out_kind`: required; receives a `kw_credential_kind`;
/// - `secret_buf`, `secret_cap`, `out_secret_len`: required (`secret_buf` may be NULL only
///   with `secret_cap` 0); receive the full key (`KW_CREDENTIAL_KEY`) or the pair's secret
///   (`KW_CREDENTIAL_PAIR`), not NUL-terminated. Holds a secret: wipe it after use.
/// - `id_buf`, `id_cap`, `out_id_len`: required likewise; receive the pair's public id
///   (length 0 for a full key).
///
/// When either buffer is too small: `KW_BUFFER_TOO_SMALL`, and both length out-pointers
/// receive the sizes needed (nothing else is written). Other errors: those of
/// `kw_verify_headers`' header handling.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_extract_credential(
    headers: *const kw_header,
    headers_len: usize,
    out_kind: *mut u32,
    secret_buf: *mut u8,
    secret_cap: usize,
    out_secret_len: *mut usize,
    id_buf: *mut u8,
    id_cap: usize,
    out_id_len: *mut usize,
) -> kw_status {
    guard(|| {
        let kind_out = out_ptr(out_kind)?;
        let secret_out = OutBuf::new(secret_buf, secret_cap, out_secret_len)?;
        let id_out = OutBuf::new(id_buf, id_cap, out_id_len)?;
        // SAFETY: caller's contract on the headers.
        let credential = unsafe { super::verify::extract(headers, headers_len) }?;
        let (kind, secret, id): (kw_credential_kind, &str, &str) = match credential.presented() {
            Presented::Key(key) => (kw_credential_kind::KW_CREDENTIAL_KEY, key, ""),
            Presented::Pair { id, secret } => (kw_credential_kind::KW_CREDENTIAL_PAIR, secret, id),
        };
        if secret_cap < secret.len() || id_cap < id.len() {
            // SAFETY: length pointers checked non-NULL; writable by contract.
            unsafe {
                put(out_secret_len, secret.len());
                put(out_id_len, id.len());
            }
            return Err(kw_status::KW_BUFFER_TOO_SMALL);
        }
        // SAFETY: caller's contract on the buffers (sizes checked above).
        unsafe {
            secret_out.write(secret.as_bytes())?;
            id_out.write(id.as_bytes())?;
            put(kind_out, kind as u32);
        }
        Ok(())
    })
}

fn key_error_code(e: KeyFormatError) -> kw_key_error {
    match e {
        KeyFormatError::Empty => kw_key_error::KW_KEY_EMPTY,
        KeyFormatError::TooLong => kw_key_error::KW_KEY_TOO_LONG,
        KeyFormatError::BadStructure => kw_key_error::KW_KEY_BAD_STRUCTURE,
        KeyFormatError::BadPrefix => kw_key_error::KW_KEY_BAD_PREFIX,
        KeyFormatError::BadEnv => kw_key_error::KW_KEY_BAD_ENV,
        KeyFormatError::BadLength => kw_key_error::KW_KEY_BAD_LENGTH,
        KeyFormatError::NotBase62 => kw_key_error::KW_KEY_NOT_BASE62,
        KeyFormatError::BadChecksum => kw_key_error::KW_KEY_BAD_CHECKSUM,
    }
}

/// Parses and checks a key offline (structure, charset, CRC32 checksum), with no store.
///
/// - `key`, `key_len`: the text (required; any bytes: text that is not UTF-8 is answered
///   `valid = 0` with `KW_KEY_NOT_BASE62`);
/// - `prefix`, `prefix_len`: the expected prefix, or NULL to accept any valid prefix;
/// - `out_parsed`: required; receives `valid = 1` and the parts, or `valid = 0` and the
///   `kw_key_error`. A malformed key is `KW_OK` (the answer is in `out_parsed`).
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8` (prefix).
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; `out_parsed` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_parse_key(
    key: *const c_char,
    key_len: usize,
    prefix: *const c_char,
    prefix_len: usize,
    out_parsed: *mut kw_parsed_key,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_parsed)?;
        // SAFETY: caller's contract.
        let raw = unsafe { args::bytes(key.cast(), key_len) }?;
        // SAFETY: caller's contract.
        let prefix = unsafe { args::opt_text(prefix, prefix_len) }?;
        let mut parsed = kw_parsed_key {
            valid: 0,
            error: 0,
            prefix: [0; 24],
            env: [0; 24],
            id: [0; 24],
            secret: [0; 40],
        };
        let result = match std::str::from_utf8(raw) {
            Ok(text) => parse_key(text, prefix),
            Err(_) if raw.is_empty() => Err(KeyFormatError::Empty),
            Err(_) if raw.len() > crate::key_format::MAX_KEY_LEN => Err(KeyFormatError::TooLong),
            Err(_) => Err(KeyFormatError::NotBase62),
        };
        match result {
            Ok(key) => {
                parsed.valid = 1;
                args::fill_cstr(&mut parsed.prefix, &key.prefix);
                args::fill_cstr(&mut parsed.env, key.env.as_deref().unwrap_or(""));
                args::fill_cstr(&mut parsed.id, key.id.as_str());
                // The secret is ASCII base62.
                let secret = std::str::from_utf8(key.secret.expose())
                    .map_err(|_| kw_status::KW_MALFORMED_KEY)?;
                args::fill_cstr(&mut parsed.secret, secret);
            }
            Err(e) => parsed.error = key_error_code(e) as u32,
        }
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, parsed) };
        Ok(())
    })
}

/// The stable name of a `kw_key_error` as used in the test vectors (`"bad_checksum"`, …;
/// `"ok"` for 0, `"unknown"` otherwise): static, NUL-terminated. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_key_error_name(error: u32) -> *const c_char {
    boundary(|| {
        let name: &std::ffi::CStr = match error {
            0 => c"ok",
            1 => c"empty",
            2 => c"too_long",
            3 => c"bad_structure",
            4 => c"bad_prefix",
            5 => c"bad_env",
            6 => c"bad_length",
            7 => c"not_base62",
            8 => c"bad_checksum",
            _ => c"unknown",
        };
        name.as_ptr()
    })
}

fn reason_of(value: u32) -> Option<Reason> {
    Reason::ALL.iter().copied().find(|r| *r as u32 == value)
}

/// The stable code of a `kw_reason`, e.g. `"INSUFFICIENT_SCOPE"` (`"UNKNOWN"` for an unknown
/// value): static, NUL-terminated. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_reason_code(reason: u32) -> *const c_char {
    boundary(|| {
        let code: &std::ffi::CStr = match reason_of(reason) {
            Some(Reason::Valid) => c"VALID",
            Some(Reason::Malformed) => c"MALFORMED",
            Some(Reason::NotFound) => c"NOT_FOUND",
            Some(Reason::Revoked) => c"REVOKED",
            Some(Reason::Expired) => c"EXPIRED",
            Some(Reason::InsufficientScope) => c"INSUFFICIENT_SCOPE",
            Some(Reason::UsageExceeded) => c"USAGE_EXCEEDED",
            Some(Reason::OwnerSuspended) => c"OWNER_SUSPENDED",
            Some(Reason::RateLimited) => c"RATE_LIMITED",
            None => c"UNKNOWN",
        };
        code.as_ptr()
    })
}

/// A short English message for a `kw_reason` (`"unknown reason"` for an unknown value):
/// static, NUL-terminated. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_reason_message(reason: u32) -> *const c_char {
    boundary(|| {
        let message: &std::ffi::CStr = match reason_of(reason) {
            Some(Reason::Valid) => c"the API key is valid",
            Some(Reason::Malformed) => c"the API key is malformed",
            Some(Reason::NotFound) => c"the API key is not recognised",
            Some(Reason::Revoked) => c"the API key has been revoked",
            Some(Reason::Expired) => c"the API key has expired",
            Some(Reason::InsufficientScope) => c"the API key lacks a scope this route requires",
            Some(Reason::UsageExceeded) => c"the API key has used up its credits",
            Some(Reason::OwnerSuspended) => c"the account that owns the API key is suspended",
            Some(Reason::RateLimited) => c"too many requests with this API key; retry later",
            None => c"unknown reason",
        };
        message.as_ptr()
    })
}

/// The HTTP status for a `kw_reason`: 200, 401, 403 or 429 (0 for an unknown value). Never
/// fails.
#[unsafe(no_mangle)]
pub extern "C" fn kw_reason_http_status(reason: u32) -> u32 {
    boundary(|| reason_of(reason).map_or(0, |r| r.http_status() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_strings_match_the_engine() {
        for r in Reason::ALL {
            // SAFETY: the functions return static NUL-terminated strings.
            let code = unsafe { std::ffi::CStr::from_ptr(kw_reason_code(*r as u32)) };
            assert_eq!(code.to_str().unwrap(), r.code());
            // SAFETY: as above.
            let message = unsafe { std::ffi::CStr::from_ptr(kw_reason_message(*r as u32)) };
            assert_eq!(message.to_str().unwrap(), r.message());
        }
    }
}
