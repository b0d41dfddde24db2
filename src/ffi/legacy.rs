//! Legacy keys through the C ABI: importing another system's export (`kw_import_legacy`) and
//! the public id an imported key gets (`kw_legacy_key_id`). Imported keys are verified by
//! `kw_verify` like any key; their records (`kw_get`) carry a `"legacy"` object.

use std::ffi::c_char;

use super::args;
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{KW_MAX_OWNER_LEN, KW_MAX_SCOPE_LEN, KW_MAX_SCOPES, kw_str};
use crate::legacy::source::LegacyImportOptions;
use crate::legacy::{LegacyScheme, legacy_key_id};

/// A system whose keys keyward imports (`kw_import_legacy`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_legacy_scheme {
    /// Laravel Sanctum personal access tokens.
    KW_LEGACY_SANCTUM = 1,
    /// djangorestframework-api-key (SHA-512 hasher).
    KW_LEGACY_DRF = 2,
    /// Unkey.
    KW_LEGACY_UNKEY = 3,
    /// Better Auth's api-key plugin.
    KW_LEGACY_BETTER_AUTH = 4,
}

/// Longest id of a key in its source system (`kw_legacy_key_id`), in bytes.
pub const KW_MAX_LEGACY_SOURCE_ID_LEN: usize = 128;

/// Options of `kw_import_legacy` (all zero / NULL = the defaults).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_legacy_import_options {
    /// 1 = dry run: report what would be imported, write nothing.
    pub dry_run: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Sanctum's `sanctum.expiration` in minutes (a token then expires at the earlier of its
    /// `expires_at` and `created_at` + this); 0 = none.
    pub sanctum_expiration_minutes: u64,
    /// The scopes a Sanctum ability `*` stands for (`all_scopes_len` entries). NULL = not
    /// given: rows with `*` are refused (keyward has no wildcard scope).
    pub all_scopes: *const kw_str,
    /// Entries of `all_scopes` (at most `KW_MAX_SCOPES`).
    pub all_scopes_len: usize,
    /// Owner of rows that name none (DRF's table has no owner column); `ptr` NULL = none.
    pub default_owner: kw_str,
}

/// What `kw_import_legacy` did (or would do, for a dry run).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_legacy_import_report {
    /// The `kw_legacy_scheme`.
    pub scheme: u32,
    /// 1 for a dry run (nothing written).
    pub dry_run: u32,
    /// Rows read.
    pub rows: u64,
    /// Keys imported (would be, for a dry run).
    pub imported: u64,
    /// Rows whose key the store already holds (left as they are).
    pub already_present: u64,
    /// Rows deleted in the source system (not imported).
    pub deleted: u64,
    /// Imported keys that are revoked.
    pub revoked: u64,
    /// Imported keys already expired.
    pub expired: u64,
}

fn scheme_of(code: u32) -> Result<LegacyScheme, kw_status> {
    LegacyScheme::from_code(code).ok_or_else(|| {
        super::error_detail::record(format_args!(
            "unknown legacy scheme {code} (1 sanctum, 2 drf, 3 unkey, 4 better-auth)"
        ));
        kw_status::KW_INVALID_ARGUMENT
    })
}

/// Imports the keys another system issued, from its export (`data`: the file's bytes, CSV
/// with a header row or JSON lines; the columns each scheme reads are in README.md,
/// "Migrating keys from another system"), so they keep working as they are. All or nothing:
/// a row keyward cannot read fails with `KW_LEGACY_IMPORT_INVALID` and
/// `kw_last_error_message()` names its line. Keys already imported are left as they are.
///
/// - `scheme`: a `kw_legacy_scheme`;
/// - `data`, `data_len`: required;
/// - `options`: NULL = defaults;
/// - `out_report`: required; written on success.
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_ARGUMENT` (scheme), `KW_INVALID_UTF8`,
/// `KW_TOO_LONG` (options), `KW_LEGACY_IMPORT_INVALID`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `data` readable for `data_len` bytes; `options` NULL or valid (its pointers valid for
/// their lengths); `out_report` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_import_legacy(
    store: kw_store,
    scheme: u32,
    data: *const u8,
    data_len: usize,
    options: *const kw_legacy_import_options,
    out_report: *mut kw_legacy_import_report,
) -> kw_status {
    guard(|| {
        if out_report.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        let scheme = scheme_of(scheme)?;
        // SAFETY: caller's contract on every pointer.
        let (data, options) = unsafe {
            let data = args::bytes(data, data_len)?;
            let mut parsed = LegacyImportOptions::default();
            if !options.is_null() {
                let o = &*options;
                parsed.dry_run = o.dry_run != 0;
                parsed.sanctum_expiration_minutes =
                    (o.sanctum_expiration_minutes != 0).then_some(o.sanctum_expiration_minutes);
                if !o.all_scopes.is_null() {
                    parsed.all_scopes = Some(args::owned_strings(
                        args::str_array(o.all_scopes, o.all_scopes_len)?,
                        KW_MAX_SCOPES,
                        KW_MAX_SCOPE_LEN,
                    )?);
                }
                if let Some(owner) = args::opt_str_field(&o.default_owner)? {
                    if owner.len() > KW_MAX_OWNER_LEN {
                        return Err(kw_status::KW_TOO_LONG);
                    }
                    parsed.default_owner = Some(owner.to_owned());
                }
            }
            (data, parsed)
        };
        let report = handles::cloned(store)?.import_legacy(scheme, data, &options)?;
        let out = kw_legacy_import_report {
            scheme: scheme.code(),
            dry_run: u32::from(report.dry_run),
            rows: report.rows as u64,
            imported: report.imported as u64,
            already_present: report.already_present as u64,
            deleted: report.deleted as u64,
            revoked: report.revoked as u64,
            expired: report.expired as u64,
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { args::put(out_report, out) };
        Ok(())
    })
}

/// The public id keyward gives the key with id `source_id` in the system `scheme` (derived:
/// the same on every import), NUL-terminated into `out_id` (at least `KW_KEY_ID_LEN + 1`
/// bytes).
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_ARGUMENT` (scheme, empty id), `KW_INVALID_UTF8`,
/// `KW_TOO_LONG` (past `KW_MAX_LEGACY_SOURCE_ID_LEN`).
///
/// # Safety
/// `source_id` readable for `source_id_len` bytes; `out_id` writable for
/// `KW_KEY_ID_LEN + 1` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_legacy_key_id(
    scheme: u32,
    source_id: *const c_char,
    source_id_len: usize,
    out_id: *mut c_char,
) -> kw_status {
    guard(|| {
        if out_id.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        let scheme = scheme_of(scheme)?;
        // SAFETY: caller's contract.
        let source_id = unsafe { args::text(source_id, source_id_len) }?;
        if source_id.is_empty() {
            return Err(kw_status::KW_INVALID_ARGUMENT);
        }
        if source_id.len() > KW_MAX_LEGACY_SOURCE_ID_LEN {
            return Err(kw_status::KW_TOO_LONG);
        }
        let id = legacy_key_id(scheme, source_id);
        let mut buf = [0 as c_char; super::types::KW_KEY_ID_LEN + 1];
        args::fill_cstr(&mut buf, id.as_str());
        // SAFETY: writable for KW_KEY_ID_LEN + 1 bytes by contract.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), out_id, buf.len()) };
        Ok(())
    })
}
