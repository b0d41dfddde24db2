//! Checked conversions of C arguments: (pointer, length) byte slices and UTF-8 text, output
//! pointers and caller-owned buffers. Every helper refuses NULL before touching memory.

use std::ffi::c_char;

use super::status::kw_status;
use super::types::kw_str;

/// Largest length accepted for any (pointer, length) input: `from_raw_parts` needs
/// `len <= isize::MAX`; anything near it is a caller bug.
const MAX_SLICE_LEN: usize = isize::MAX as usize;

/// A required byte slice: NULL → `KW_NULL_ARGUMENT` (even with length 0).
///
/// # Safety
/// If `ptr` is not NULL it must point to `len` readable bytes that stay valid and unchanged
/// for `'a`.
#[inline]
pub unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], kw_status> {
    if ptr.is_null() {
        return Err(kw_status::KW_NULL_ARGUMENT);
    }
    if len > MAX_SLICE_LEN {
        return Err(kw_status::KW_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL and, by the caller's contract, `len` readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An optional byte slice: NULL with length 0 → `None`; NULL with a length → `KW_NULL_ARGUMENT`.
///
/// # Safety
/// As [`bytes`].
#[inline]
pub unsafe fn opt_bytes<'a>(ptr: *const u8, len: usize) -> Result<Option<&'a [u8]>, kw_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(kw_status::KW_NULL_ARGUMENT)
        };
    }
    // SAFETY: forwarded contract.
    unsafe { bytes(ptr, len) }.map(Some)
}

/// Required UTF-8 text.
///
/// # Safety
/// As [`bytes`].
#[inline]
pub unsafe fn text<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, kw_status> {
    // SAFETY: forwarded contract.
    let raw = unsafe { bytes(ptr.cast(), len) }?;
    std::str::from_utf8(raw).map_err(|_| kw_status::KW_INVALID_UTF8)
}

/// Optional UTF-8 text (NULL with length 0 = absent).
///
/// # Safety
/// As [`bytes`].
#[inline]
pub unsafe fn opt_text<'a>(ptr: *const c_char, len: usize) -> Result<Option<&'a str>, kw_status> {
    // SAFETY: forwarded contract.
    match unsafe { opt_bytes(ptr.cast(), len) }? {
        None => Ok(None),
        Some(raw) => std::str::from_utf8(raw)
            .map(Some)
            .map_err(|_| kw_status::KW_INVALID_UTF8),
    }
}

/// A required [`kw_str`] as UTF-8.
///
/// # Safety
/// `s.ptr` as in [`bytes`].
#[inline]
pub unsafe fn str_field<'a>(s: &kw_str) -> Result<&'a str, kw_status> {
    // SAFETY: forwarded contract.
    unsafe { text(s.ptr, s.len) }
}

/// An optional [`kw_str`] (NULL pointer and zero length = absent).
///
/// # Safety
/// `s.ptr` as in [`bytes`].
#[inline]
pub unsafe fn opt_str_field<'a>(s: &kw_str) -> Result<Option<&'a str>, kw_status> {
    // SAFETY: forwarded contract.
    unsafe { opt_text(s.ptr, s.len) }
}

/// An array of [`kw_str`]: NULL with count 0 = empty.
///
/// # Safety
/// If not NULL, `ptr` must point to `len` readable `kw_str` values valid for `'a`.
#[inline]
pub unsafe fn str_array<'a>(ptr: *const kw_str, len: usize) -> Result<&'a [kw_str], kw_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(kw_status::KW_NULL_ARGUMENT)
        };
    }
    if len > MAX_SLICE_LEN / std::mem::size_of::<kw_str>() {
        return Err(kw_status::KW_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, `len` elements by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Converts an array of [`kw_str`] to owned strings, each checked against `max_len`.
///
/// # Safety
/// Every element's `ptr` as in [`bytes`].
pub unsafe fn owned_strings(
    items: &[kw_str],
    max_count: usize,
    max_len: usize,
) -> Result<Vec<String>, kw_status> {
    if items.len() > max_count {
        return Err(kw_status::KW_TOO_LONG);
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        // SAFETY: forwarded contract.
        let s = unsafe { text(item.ptr, item.len) }?;
        if s.len() > max_len {
            return Err(kw_status::KW_TOO_LONG);
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

/// Checks that a required out-pointer is not NULL (before any work is done).
#[inline]
pub fn out_ptr<T>(ptr: *mut T) -> Result<*mut T, kw_status> {
    if ptr.is_null() {
        Err(kw_status::KW_NULL_ARGUMENT)
    } else {
        Ok(ptr)
    }
}

/// Writes an out-value (only ever called on success).
///
/// # Safety
/// `ptr` must be a non-NULL (checked by [`out_ptr`]), aligned pointer to writable memory
/// for one `T`.
#[inline]
pub unsafe fn put<T>(ptr: *mut T, value: T) {
    // SAFETY: checked non-NULL; alignment and validity are the caller's contract. `write`
    // does not read or drop the (possibly uninitialised) old value.
    unsafe { ptr.write(value) }
}

/// A caller-owned output buffer: `buf` may be NULL only when `cap` is 0 (a size query);
/// `out_len` is required.
pub struct OutBuf {
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
}

impl OutBuf {
    /// Checks the pointers of a required buffer.
    pub fn new(buf: *mut u8, cap: usize, out_len: *mut usize) -> Result<OutBuf, kw_status> {
        if out_len.is_null() || (buf.is_null() && cap != 0) {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        Ok(OutBuf { buf, cap, out_len })
    }

    /// An optional buffer: `buf` NULL and `cap` 0 → `None` (`out_len` may then be NULL too).
    pub fn optional(
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> Result<Option<OutBuf>, kw_status> {
        if buf.is_null() && cap == 0 {
            return Ok(None);
        }
        OutBuf::new(buf, cap, out_len).map(Some)
    }

    /// Fails with `KW_BUFFER_TOO_SMALL` (writing `need` to the length pointer) unless the
    /// buffer holds `need` bytes. Used before a change to the store, so a too-small buffer
    /// never loses a result that cannot be produced again (a new key).
    ///
    /// # Safety
    /// `out_len` must be valid for one write (the type's contract).
    pub unsafe fn require(&self, need: usize) -> Result<(), kw_status> {
        if self.cap < need {
            // SAFETY: out_len checked non-NULL in `new`; validity is the caller's contract.
            unsafe { put(self.out_len, need) };
            return Err(kw_status::KW_BUFFER_TOO_SMALL);
        }
        Ok(())
    }

    /// Copies `data` into the buffer and writes its length; too small → `KW_BUFFER_TOO_SMALL`
    /// with the size needed.
    ///
    /// # Safety
    /// `buf` must be writable for `cap` bytes and `out_len` valid for one write.
    pub unsafe fn write(&self, data: &[u8]) -> Result<(), kw_status> {
        // SAFETY: forwarded contract.
        unsafe { self.require(data.len()) }?;
        if !data.is_empty() {
            // SAFETY: buf is non-NULL here (cap >= len > 0), writable for cap >= len bytes,
            // and cannot overlap `data`, which Rust owns.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.buf, data.len()) };
        }
        // SAFETY: as in `require`.
        unsafe { put(self.out_len, data.len()) };
        Ok(())
    }

    /// Writes a JSON value.
    ///
    /// # Safety
    /// As [`OutBuf::write`].
    pub unsafe fn write_json<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), kw_status> {
        let json = serde_json::to_vec(value).map_err(|_| kw_status::KW_STORAGE)?;
        // SAFETY: forwarded contract.
        unsafe { self.write(&json) }
    }
}

/// Copies `text` into a fixed NUL-terminated array (truncating on a character boundary
/// if it does not fit, which the limits rule out for the fields used).
pub fn fill_cstr<const N: usize>(dst: &mut [c_char; N], text: &str) {
    let mut end = text.len().min(N - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let (head, tail) = dst.split_at_mut(end);
    // `c_char` and `u8` have the same size; the copy reinterprets the bytes.
    for (d, s) in head.iter_mut().zip(&text.as_bytes()[..end]) {
        *d = *s as c_char;
    }
    tail.fill(0);
}
