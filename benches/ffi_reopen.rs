//! Cost of the C ABI's hot calls, measured through the exported `kw_` functions:
//!
//! - `reopen_close_warm`: `kw_open` + `kw_close` of a path this process already has open
//!   (what a PHP request does when another handle, or `KW_OPEN_PERSISTENT`, keeps the store);
//!   must be well under 1 µs and keep the warm verify index (checked before measuring);
//! - `reopen_close_persistent`: the same with `KW_OPEN_PERSISTENT` and no other handle;
//! - `verify_ffi` vs `verify_rust`: one verify through `kw_verify` and through
//!   `Store::verify` on the same store (the ABI must stay within 1.5× of the Rust call);
//! - `verify_headers_ffi`: the same key as one `Authorization: Bearer` header through
//!   `kw_verify_headers_ex`, as the bindings' middlewares pass it.
//!
//! Run: `cargo bench --bench ffi_reopen`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::ffi::{kw_close, kw_open, kw_open_flags, kw_stats, kw_verify, kw_verify_headers_ex};
use keyward::ffi::{kw_header, kw_options, kw_status, kw_store, kw_store_stats, kw_verdict};
use keyward::{NewKey, Store, StoreOptions};

fn options(path: &str, flags: u32) -> kw_options {
    kw_options {
        path: path.as_ptr().cast(),
        path_len: path.len(),
        pepper: std::ptr::null(),
        pepper_len: 0,
        pepper_file: std::ptr::null(),
        pepper_file_len: 0,
        prefix: std::ptr::null(),
        prefix_len: 0,
        concurrency: 0,
        flags,
        max_active_keys_per_owner: 0,
        keep_last_key: 0,
        max_lifetime_ms: 0,
        flush_interval_ms: 0,
        index_capacity: 0,
        upstream: std::ptr::null(),
        upstream_len: 0,
    }
}

fn open(o: &kw_options) -> kw_store {
    let mut handle = 0;
    // SAFETY: `o` points to a valid path for the call; `handle` is writable.
    let status = unsafe { kw_open(o, &mut handle) };
    assert_eq!(status, kw_status::KW_OK);
    handle
}

fn stats(handle: kw_store) -> kw_store_stats {
    let mut out = kw_store_stats::default();
    // SAFETY: `out` is writable.
    assert_eq!(unsafe { kw_stats(handle, &mut out) }, kw_status::KW_OK);
    out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir
        .path()
        .join("bench.redb")
        .to_str()
        .expect("UTF-8 path")
        .to_owned();
    let o = options(&path, 0);
    let keeper = open(&o);

    // A warm index: one key created and verified through the keeper.
    let rust = Store::open(&path, StoreOptions::default()).expect("open");
    let created = rust
        .create(NewKey {
            owner: "acct".into(),
            ..NewKey::default()
        })
        .expect("create");
    let key = created.key().to_owned();
    let mut verdict = kw_verdict::zeroed();
    let ffi_verify = |handle: kw_store, verdict: &mut kw_verdict| {
        // SAFETY: the key outlives the call; the verdict is writable; no info buffer.
        unsafe {
            kw_verify(
                handle,
                key.as_ptr().cast(),
                key.len(),
                std::ptr::null(),
                0,
                0,
                0,
                verdict,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        }
    };
    assert_eq!(ffi_verify(keeper, &mut verdict), kw_status::KW_OK);
    assert_eq!(verdict.reason, 0);

    // A re-open shares the warm engine: same counters, same index, no refresh.
    let before = stats(keeper);
    let again = open(&o);
    let after = stats(again);
    assert_eq!(
        (before.indexed_keys, before.commits),
        (after.indexed_keys, after.commits)
    );
    assert_eq!(kw_close(again), kw_status::KW_OK);

    c.bench_function("reopen_close_warm", |b| {
        b.iter(|| {
            let handle = open(black_box(&o));
            black_box(kw_close(handle))
        })
    });

    let persistent_path = dir
        .path()
        .join("persistent.redb")
        .to_str()
        .expect("UTF-8")
        .to_owned();
    let p = options(&persistent_path, kw_open_flags::KW_OPEN_PERSISTENT as u32);
    assert_eq!(kw_close(open(&p)), kw_status::KW_OK);
    c.bench_function("reopen_close_persistent", |b| {
        b.iter(|| {
            let handle = open(black_box(&p));
            black_box(kw_close(handle))
        })
    });

    c.bench_function("verify_ffi", |b| {
        b.iter(|| black_box(ffi_verify(keeper, &mut verdict)))
    });
    let name = "authorization";
    let value = format!("Bearer {key}");
    let header = kw_header {
        name: name.as_ptr().cast(),
        name_len: name.len(),
        value: value.as_ptr().cast(),
        value_len: value.len(),
    };
    let headers_verify = |handle: kw_store, verdict: &mut kw_verdict| {
        // SAFETY: the header's name and value outlive the call; the verdict is writable; no
        // info buffer.
        unsafe {
            kw_verify_headers_ex(
                handle,
                &header,
                1,
                std::ptr::null(),
                0,
                0,
                0,
                0,
                verdict,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        }
    };
    assert_eq!(headers_verify(keeper, &mut verdict), kw_status::KW_OK);
    assert_eq!(verdict.reason, 0);
    c.bench_function("verify_headers_ffi", |b| {
        b.iter(|| black_box(headers_verify(keeper, &mut verdict)))
    });
    c.bench_function("verify_rust", |b| {
        b.iter(|| black_box(rust.verify(black_box(&key), &[]).expect("verify").reason))
    });

    assert_eq!(kw_close(keeper), kw_status::KW_OK);
}

criterion_group!(benches, bench);
criterion_main!(benches);
