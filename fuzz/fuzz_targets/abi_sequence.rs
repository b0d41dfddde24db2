//! Sequences of C ABI calls (open, create, verify, revoke, delete, rotate, flush, close,
//! reopen, garbage input) checked against an in-memory model: every status and every verdict
//! must be what the model predicts, and nothing may panic or crash.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use keyward::ffi::*;
use libfuzzer_sys::fuzz_target;

const VALID: u32 = 0;
const MALFORMED: u32 = 1;
const NOT_FOUND: u32 = 2;
const REVOKED: u32 = 3;
const EXPIRED: u32 = 4;
const INSUFFICIENT_SCOPE: u32 = 5;

struct ModelKey {
    key: Vec<u8>,
    id: Vec<u8>,
    scoped: bool,
    state: u32,
}

static RUN: AtomicU64 = AtomicU64::new(0);

fn s(text: &[u8]) -> kw_str {
    kw_str {
        ptr: text.as_ptr().cast(),
        len: text.len(),
    }
}

fn open(path: &str) -> (kw_status, kw_store) {
    // SAFETY: kw_options is a plain C struct for which all-zero is "every option default".
    let mut options: kw_options = unsafe { std::mem::zeroed() };
    options.path = path.as_ptr().cast();
    options.path_len = path.len();
    options.flush_interval_ms = KW_FLUSH_MANUAL;
    let mut store: kw_store = 0;
    // SAFETY: options and out-pointer are valid for the call.
    let status = unsafe { kw_open(&options, &mut store) };
    (status, store)
}

fn verify(store: kw_store, key: &[u8], scoped: bool) -> (kw_status, u32) {
    let read = [s(b"read")];
    // SAFETY: kw_verdict is a plain C struct; zero is a valid value.
    let mut verdict: kw_verdict = unsafe { std::mem::zeroed() };
    let scopes_len = if scoped { 1 } else { 0 };
    // SAFETY: every pointer is valid for its length; the info buffer is absent.
    let status = unsafe {
        kw_verify(
            store,
            key.as_ptr().cast(),
            key.len(),
            read.as_ptr(),
            scopes_len,
            0,
            0,
            &mut verdict,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    (status, verdict.reason)
}

fn create(store: kw_store, scoped: bool) -> (kw_status, Vec<u8>) {
    let read = [s(b"read")];
    // SAFETY: kw_new_key is a plain C struct; zero means "absent" for every optional field.
    let mut new: kw_new_key = unsafe { std::mem::zeroed() };
    new.owner = s(b"fuzz");
    if scoped {
        new.scopes = read.as_ptr();
        new.scopes_len = 1;
    }
    let mut key = vec![0u8; KW_MAX_KEY_LEN];
    let mut len = 0usize;
    // SAFETY: every pointer is valid for its length.
    let status = unsafe {
        kw_create(store, &new, key.as_mut_ptr(), key.len(), &mut len, std::ptr::null_mut(), 0, std::ptr::null_mut())
    };
    key.truncate(len);
    (status, key)
}

fn id_of(key: &[u8]) -> Vec<u8> {
    let body = &key[key.len() - 54..];
    body[..16].to_vec()
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("kw-fuzz-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.redb").to_str().unwrap().to_owned();
    let (status, mut store) = open(&path);
    assert_eq!(status, kw_status::KW_OK);
    let mut is_open = true;
    let mut keys: Vec<ModelKey> = Vec::new();
    let closed_or = |is_open: bool, ok: kw_status| if is_open { ok } else { kw_status::KW_CLOSED };

    let mut chunks = data.chunks(3);
    while let Some(chunk) = chunks.next() {
        let op = chunk[0] % 10;
        let a = chunk.get(1).copied().unwrap_or(0) as usize;
        let b = chunk.get(2).copied().unwrap_or(0);
        let pick = (!keys.is_empty()).then(|| a % keys.len());
        match op {
            0 => {
                let scoped = b & 1 == 1;
                let (status, key) = create(store, scoped);
                assert_eq!(status, closed_or(is_open, kw_status::KW_OK));
                if is_open {
                    let id = id_of(&key);
                    keys.push(ModelKey { key, id, scoped, state: VALID });
                }
            }
            1 => if let Some(i) = pick {
                let k = &keys[i];
                let require = b & 1 == 1;
                let (status, reason) = verify(store, &k.key, require);
                assert_eq!(status, closed_or(is_open, kw_status::KW_OK));
                if is_open {
                    let want = if k.state == VALID && require && !k.scoped { INSUFFICIENT_SCOPE } else { k.state };
                    assert_eq!(reason, want);
                }
            },
            2 => {
                // The rest of the input as a presented key: never VALID unless it is a real key.
                let rest: Vec<u8> = chunks.by_ref().flatten().copied().take(200).collect();
                let (status, reason) = verify(store, &rest, false);
                // Text must be UTF-8 (documented); anything else is judged as a key.
                // Arguments are checked before the handle.
                let utf8 = std::str::from_utf8(&rest).is_ok();
                let want = if utf8 { closed_or(is_open, kw_status::KW_OK) } else { kw_status::KW_INVALID_UTF8 };
                assert_eq!(status, want);
                if is_open && want == kw_status::KW_OK && !keys.iter().any(|k| k.key == rest) {
                    assert!(reason == MALFORMED || reason == NOT_FOUND, "garbage got reason {reason}");
                }
            }
            3 => if let Some(i) = pick {
                let k = &mut keys[i];
                // SAFETY: id is valid for its length; the info buffer is absent.
                let status = unsafe {
                    kw_revoke(store, k.id.as_ptr().cast(), k.id.len(), std::ptr::null(), 0, std::ptr::null_mut(), 0, std::ptr::null_mut())
                };
                let want = if k.state == NOT_FOUND { kw_status::KW_NOT_FOUND } else { kw_status::KW_OK };
                assert_eq!(status, closed_or(is_open, want));
                if is_open && k.state != NOT_FOUND {
                    k.state = REVOKED;
                }
            },
            4 => if let Some(i) = pick {
                let k = &mut keys[i];
                // SAFETY: id is valid for its length.
                let status = unsafe { kw_delete(store, k.id.as_ptr().cast(), k.id.len()) };
                let want = if k.state == NOT_FOUND { kw_status::KW_NOT_FOUND } else { kw_status::KW_OK };
                assert_eq!(status, closed_or(is_open, want));
                if is_open {
                    k.state = NOT_FOUND;
                }
            },
            5 => if let Some(i) = pick {
                let mut key = vec![0u8; KW_MAX_KEY_LEN];
                let mut len = 0usize;
                let id = keys[i].id.clone();
                // SAFETY: every pointer is valid for its length.
                let status = unsafe {
                    kw_rotate(store, id.as_ptr().cast(), id.len(), 0, key.as_mut_ptr(), key.len(), &mut len, std::ptr::null_mut(), 0, std::ptr::null_mut())
                };
                let want = match keys[i].state {
                    NOT_FOUND => kw_status::KW_NOT_FOUND,
                    // Revoked, or already rotated (the only way a key expires here).
                    REVOKED | EXPIRED => kw_status::KW_INVALID_ARGUMENT,
                    _ => kw_status::KW_OK,
                };
                assert_eq!(status, closed_or(is_open, want));
                if is_open && want == kw_status::KW_OK {
                    key.truncate(len);
                    keys[i].state = EXPIRED;
                    let scoped = keys[i].scoped;
                    keys.push(ModelKey { id: id_of(&key), key, scoped, state: VALID });
                }
            },
            6 => {
                let status = kw_close(store);
                assert_eq!(status, closed_or(is_open, kw_status::KW_OK));
                is_open = false;
            }
            7 => if !is_open {
                let (status, reopened) = open(&path);
                assert_eq!(status, kw_status::KW_OK);
                store = reopened;
                is_open = true;
            },
            8 => {
                let mut written = 0usize;
                // SAFETY: the out-pointer is valid.
                let status = unsafe { kw_flush(store, &mut written) };
                assert_eq!(status, closed_or(is_open, kw_status::KW_OK));
            }
            _ => if let Some(i) = pick {
                // A wrong secret for a real id is NOT_FOUND, whatever the key's state.
                let k = &keys[i];
                let secret = vec![b'Z'; 32];
                // SAFETY: kw_verdict is a plain C struct; zero is a valid value.
                let mut verdict: kw_verdict = unsafe { std::mem::zeroed() };
                // SAFETY: every pointer is valid for its length; no scopes, no info buffer.
                let status = unsafe {
                    kw_verify_pair(store, k.id.as_ptr().cast(), k.id.len(), secret.as_ptr().cast(), secret.len(), std::ptr::null(), 0, 0, 0, &mut verdict, std::ptr::null_mut(), 0, std::ptr::null_mut())
                };
                assert_eq!(status, closed_or(is_open, kw_status::KW_OK));
                if is_open {
                    assert_eq!(verdict.reason, NOT_FOUND);
                }
            },
        }
    }
    if is_open {
        assert_eq!(kw_close(store), kw_status::KW_OK);
    }
    let _ = std::fs::remove_dir_all(&dir);
});
