//! The detailed message of the last failed call on each thread (`kw_last_error_message`).
//!
//! A status says *what kind* of failure happened; the message says which file, which
//! permission, which record, and what to do — the text the Rust `Error` displays (it never
//! holds a secret). It is kept per thread, so threads never see each other's failures; it is
//! replaced by the next call on the same thread that fails with a cause, and cleared when a
//! call starts, so it never describes an older failure than the last call's.

use std::cell::RefCell;

use super::args::OutBuf;
use super::panic;
use super::status::kw_status;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Forgets the message of an earlier call (called as each guarded call starts).
#[inline]
pub(crate) fn clear() {
    // `try_with`: during process exit glibc destroys thread-locals before it runs `atexit`
    // handlers, and a binding's `kw_close` at exit must still work (it flushes the last counts).
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut()
            && !last.is_empty()
        {
            last.clear();
        }
    });
}

/// Records the message of the error a call is failing with.
pub(crate) fn record(message: impl std::fmt::Display) {
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            use std::fmt::Write;
            last.clear();
            let _ = write!(last, "{message}");
        }
    });
}

/// Copies the detailed message of the last call on this thread that failed into `buf`
/// (UTF-8, not NUL-terminated) and its length into `*out_len`: which file, which permission,
/// what to do. Empty (`*out_len` = 0) when that call had nothing to add to its status (a NULL
/// argument, say) or no call has failed on this thread. Thread-safe: each thread has its own.
/// Read it right after the failing call: the next keyward call on the thread clears it.
/// This call itself does not clear it.
///
/// `buf` may be NULL when `cap` is 0 (a size query); `out_len` is required.
/// Returns `KW_OK`, `KW_NULL_ARGUMENT`, or `KW_BUFFER_TOO_SMALL` (with the size needed).
///
/// # Safety
/// `buf` must be writable for `cap` bytes; `out_len` must be valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_last_error_message(
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    // Not `panic::guard`: that would clear the message this call reads.
    panic::boundary(|| {
        let out = match OutBuf::new(buf, cap, out_len) {
            Ok(out) => out,
            Err(status) => return status,
        };
        let message = LAST_ERROR
            .try_with(|last| last.borrow().clone())
            .unwrap_or_default();
        // SAFETY: forwarded contract of this function.
        match unsafe { out.write(message.as_bytes()) } {
            Ok(()) => kw_status::KW_OK,
            Err(status) => status,
        }
    })
}
