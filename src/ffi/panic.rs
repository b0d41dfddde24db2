//! The panic boundary: every `kw_` body runs inside [`boundary`] (or [`guard`], its
//! status-returning form), so a panic never unwinds into C. Fallible functions turn it into
//! `KW_PANIC`; the few infallible ones return a documented neutral value.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::kw_status;

/// The value a function returns when its body panicked.
pub trait PanicValue {
    /// The value returned after a caught panic.
    fn panic_value() -> Self;
}

impl PanicValue for kw_status {
    fn panic_value() -> Self {
        kw_status::KW_PANIC
    }
}

impl PanicValue for u32 {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for *const std::ffi::c_char {
    fn panic_value() -> Self {
        c"panic in keyward".as_ptr()
    }
}

/// Runs `body`, turning a panic into `R::panic_value()`.
#[inline(always)]
pub fn boundary<R: PanicValue>(body: impl FnOnce() -> R) -> R {
    // AssertUnwindSafe: after a panic nothing of the body's state is used again; shared
    // state (the handle table, the stores) uses locks that do not poison and stays valid.
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| R::panic_value())
}

/// Runs a fallible body inside the panic boundary and returns its status.
#[inline(always)]
pub fn guard(body: impl FnOnce() -> Result<(), kw_status>) -> kw_status {
    boundary(|| {
        super::error_detail::clear();
        match body() {
            Ok(()) => kw_status::KW_OK,
            Err(status) => status,
        }
    })
}
