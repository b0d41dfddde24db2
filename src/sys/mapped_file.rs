//! A regular file mapped `MAP_SHARED` read-write and accessed only as 64-bit atomics: the
//! storage under the shared verify table (`crate::table`). The file is sized and its blocks
//! reserved before it is mapped, so a full file system is an error at creation, never a
//! `SIGBUS` later; a file truncated under a running process is caught by the sync file's
//! `SIGBUS` handler, which maps zero pages over the range (the table then fails its header
//! check and is rebuilt).

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;

use super::shared_memory::{install_sigbus_handler, register_range, unregister_range};

/// A mapped file of `words` 64-bit words.
pub(crate) struct MappedFile {
    base: usize,
    words: usize,
}

// SAFETY: the mapping is shared memory accessed only through atomics; the raw address is
// never handed out except as `&AtomicU64` tied to `&self`.
unsafe impl Send for MappedFile {}
// SAFETY: as above.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps the first `words * 8` bytes of `file`, which must be at least that long.
    pub(crate) fn map(file: &File, words: usize) -> std::io::Result<MappedFile> {
        install_sigbus_handler();
        let len = words * 8;
        // SAFETY: maps `len` bytes of an open regular file, shared read-write, at an address
        // the kernel chooses; the caller checked (or reserved) the file's length.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        register_range(base as usize, len);
        Ok(MappedFile {
            base: base as usize,
            words,
        })
    }

    /// The word at `index`. Panics when `index` is out of range (callers validate indices
    /// read from the file first).
    #[inline]
    pub(crate) fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < self.words, "word {index} outside the mapped table");
        // SAFETY: the mapping is page-aligned and `words * 8` bytes long for the life of
        // `self`, so `index * 8` is an aligned offset inside it; it is only accessed
        // atomically. A truncated file faults into the SIGBUS handler, which maps zero pages.
        unsafe { AtomicU64::from_ptr((self.base + index * 8) as *mut u64) }
    }

    /// Asks the CPU to start loading the `lines` cache lines from the word at `index` (no
    /// effect out of range, or on targets without a prefetch instruction): a reader that knows
    /// which words it will read next overlaps their cache misses with its other work.
    #[inline]
    pub(crate) fn prefetch(&self, index: usize, lines: usize) {
        if index >= self.words {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let end = self.base + self.words * 8;
            let mut at = self.base + index * 8;
            for _ in 0..lines {
                if at >= end {
                    break;
                }
                // SAFETY: SSE is part of every x86-64 CPU; a prefetch only hints the cache
                // (it reads nothing and never faults), and the address is inside the mapping.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(at as *const i8) };
                at += 64;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = lines;
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        unregister_range(self.base);
        // SAFETY: unmaps the range this value mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.base as *mut c_void, self.words * 8) };
    }
}

/// Grows `file` to `len` bytes and reserves its blocks (`posix_fallocate`).
pub(crate) fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    // SAFETY: plain system call on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Whether a process with this id exists (it may belong to another user).
pub(crate) fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing; the call only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
