//! The files of a store in unusual states (issue 13): not regular files, an emptied database,
//! a sync file truncated, overwritten, or deleted and re-created under open stores, and the
//! limits of usage queries. Each test counts which outcome every case reached.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward::{Day, ErrorCode, NewKey, Reason, Store, StoreOptions};

fn options(flush: Duration) -> StoreOptions {
    StoreOptions {
        flush_interval: flush,
        ..StoreOptions::default()
    }
}

fn new_key() -> NewKey {
    NewKey {
        owner: "acct_files".into(),
        scopes: vec!["read".into()],
        ..NewKey::default()
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn open_code(path: &Path) -> Result<(), ErrorCode> {
    Store::open_unshared(path, options(Duration::ZERO))
        .map(drop)
        .map_err(|e| e.code())
}

#[test]
fn a_database_path_that_is_not_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let as_dir = dir.path().join("dir.redb");
    std::fs::create_dir(&as_dir).unwrap();
    let as_fifo = dir.path().join("fifo.redb");
    mkfifo(&as_fifo);
    let as_null = dir.path().join("null.redb");
    symlink("/dev/null", &as_null).unwrap();
    for (path, kind) in [
        (&as_dir, "a directory"),
        (&as_fifo, "a FIFO"),
        (&as_null, "a character device"),
    ] {
        let error = Store::open_unshared(path, options(Duration::ZERO)).unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::InvalidArgument,
            "{}",
            path.display()
        );
        assert!(error.to_string().contains(kind), "{error}");
        // Nothing was created beside it.
        assert!(!sibling(path, ".pepper").exists());
    }
}

#[test]
fn companion_files_that_are_not_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let key = store.create(new_key()).unwrap();
    drop(store);
    let pepper = sibling(&path, ".pepper");
    let aside = dir.path().join("pepper.aside");
    std::fs::rename(&pepper, &aside).unwrap();

    let mut outcomes = Vec::new();
    // The pepper path: a directory, a FIFO, /dev/null → PEPPER_INVALID.
    std::fs::create_dir(&pepper).unwrap();
    outcomes.push(("pepper dir", open_code(&path)));
    std::fs::remove_dir(&pepper).unwrap();
    mkfifo(&pepper);
    outcomes.push(("pepper fifo", open_code(&path)));
    std::fs::remove_file(&pepper).unwrap();
    symlink("/dev/null", &pepper).unwrap();
    outcomes.push(("pepper /dev/null", open_code(&path)));
    std::fs::remove_file(&pepper).unwrap();
    // A symlink to the real 0600 pepper file is followed (secret mounts are symlinks).
    symlink(&aside, &pepper).unwrap();
    outcomes.push(("pepper symlink", open_code(&path)));
    std::fs::remove_file(&pepper).unwrap();
    std::fs::rename(&aside, &pepper).unwrap();

    // The sync file: a directory, a FIFO, /dev/null → CORRUPT; then recreated.
    let sync = sibling(&path, ".kwsync");
    std::fs::remove_file(&sync).unwrap();
    std::fs::create_dir(&sync).unwrap();
    outcomes.push(("sync dir", open_code(&path)));
    std::fs::remove_dir(&sync).unwrap();
    mkfifo(&sync);
    outcomes.push(("sync fifo", open_code(&path)));
    std::fs::remove_file(&sync).unwrap();
    symlink("/dev/null", &sync).unwrap();
    outcomes.push(("sync /dev/null", open_code(&path)));
    std::fs::remove_file(&sync).unwrap();

    assert_eq!(
        outcomes,
        vec![
            ("pepper dir", Err(ErrorCode::PepperInvalid)),
            ("pepper fifo", Err(ErrorCode::PepperInvalid)),
            ("pepper /dev/null", Err(ErrorCode::PepperInvalid)),
            ("pepper symlink", Ok(())),
            ("sync dir", Err(ErrorCode::Corrupt)),
            ("sync fifo", Err(ErrorCode::Corrupt)),
            ("sync /dev/null", Err(ErrorCode::Corrupt)),
        ]
    );
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    assert!(store.verify(key.key(), &["read"]).unwrap().is_valid());
}

#[test]
fn an_emptied_database_is_corrupt_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    store.create(new_key()).unwrap();
    drop(store);
    std::fs::File::create(&path).unwrap(); // `: > keys.redb`
    for attempt in 0..2 {
        let error = Store::open_unshared(&path, options(Duration::ZERO)).unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::Corrupt,
            "attempt {attempt}: {error}"
        );
        assert!(error.to_string().contains("truncated"), "{error}");
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "the file was left alone"
    );

    // An empty file with no store history (say, from mktemp) is still a new store.
    let fresh = dir.path().join("fresh.redb");
    std::fs::File::create(&fresh).unwrap();
    let store = Store::open_unshared(&fresh, options(Duration::ZERO)).unwrap();
    store.create(new_key()).unwrap();
}

/// What happened to the sync file under two open stores (separate engines and mappings, as
/// in two processes).
enum SyncDamage {
    Truncated,
    Garbage,
    Zeroed,
    Shortened,
}

#[test]
fn a_damaged_sync_file_under_open_stores_never_gives_a_stale_answer() {
    let mut recovered = 0;
    for (case, damage) in [
        SyncDamage::Truncated,
        SyncDamage::Garbage,
        SyncDamage::Zeroed,
        SyncDamage::Shortened,
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        let writer = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        let reader = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        let key = writer.create(new_key()).unwrap();
        let second = writer.create(new_key()).unwrap();
        let limited = writer
            .create(NewKey {
                credits: Some(keyward::NewCredits {
                    remaining: 1_000,
                    refill: None,
                    cost: 1,
                }),
                ..new_key()
            })
            .unwrap();
        assert!(reader.verify(key.key(), &["read"]).unwrap().is_valid());
        assert!(reader.verify(limited.key(), &["read"]).unwrap().is_valid());
        let sync = sibling(&path, ".kwsync");
        let file = std::fs::OpenOptions::new().write(true).open(&sync).unwrap();
        match damage {
            SyncDamage::Truncated => file.set_len(0).unwrap(),
            SyncDamage::Garbage => {
                std::os::unix::fs::FileExt::write_all_at(&file, &[0xA5; 4096], 0).unwrap()
            }
            SyncDamage::Zeroed => {
                std::os::unix::fs::FileExt::write_all_at(&file, &[0; 64], 0).unwrap()
            }
            SyncDamage::Shortened => file.set_len(16).unwrap(), // cuts the header
        }
        drop(file);
        // The reader survives (no SIGBUS, also on the credit pools past a shortened end)
        // and answers right.
        assert!(reader.verify(key.key(), &["read"]).unwrap().is_valid());
        assert!(reader.verify(limited.key(), &["read"]).unwrap().is_valid());
        // The writer revokes through its own (possibly dead) mapping; the reader refuses the
        // key on its very next verify.
        writer.revoke(key.id(), None).unwrap();
        assert_eq!(
            reader.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Revoked
        );
        // And signalling works again afterwards.
        writer.revoke(second.id(), None).unwrap();
        assert_eq!(
            reader.verify(second.key(), &["read"]).unwrap().reason,
            Reason::Revoked
        );
        let stats = reader.stats().unwrap();
        assert!(
            stats.sync_recoveries >= 1,
            "case {case}: the reader remapped: {stats:?}"
        );
        recovered += 1;
    }
    assert_eq!(recovered, 4, "every kind of damage was exercised");
}

#[test]
fn a_sync_file_deleted_under_a_running_process_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    // The running worker: a background flusher every 50 ms.
    let worker = Store::open_unshared(&path, options(Duration::from_millis(50))).unwrap();
    let key = worker.create(new_key()).unwrap();
    assert!(worker.verify(key.key(), &["read"]).unwrap().is_valid());
    std::fs::remove_file(sibling(&path, ".kwsync")).unwrap();
    // A new process opens: it creates a new sync file, records it in the database and waits
    // until running processes have had time to move to it.
    let started = std::time::Instant::now();
    let newcomer = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the opener waited for running processes"
    );
    newcomer.revoke(key.id(), None).unwrap();
    assert_eq!(
        worker.verify(key.key(), &["read"]).unwrap().reason,
        Reason::Revoked,
        "the worker refuses the key on its next verify"
    );
    assert!(worker.stats().unwrap().sync_recoveries >= 1);
}

#[test]
fn usage_ranges_are_checked_without_overflow() {
    let t = common::temp_store();
    let key = t.store.create(new_key()).unwrap();
    let id = key.id();
    let max = keyward::MAX_USAGE_DAYS;
    let cases = [
        (i32::MIN, i32::MAX, false),
        (-2, i32::MAX - 1, false),
        (20_000, 20_000 + max, false), // max + 1 days
        (20_000, 20_000 + max - 1, true),
        (i32::MAX - 1, i32::MAX, true),
        (20_001, 20_000, false),
    ];
    for (from, to, accepted) in cases {
        let result = t.store.usage_by_day(id, Day(from), Day(to));
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(e)) => assert_eq!(e.code(), ErrorCode::InvalidArgument),
            (expected, got) => panic!("{from}..={to}: expected accepted={expected}, got {got:?}"),
        }
    }
}
