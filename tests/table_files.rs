//! The shared verify table's file (`<db>.kwtable`) damaged, replaced or out of date (issue
//! 14): under open stores and between opens. Whatever happened to the file, a verify never
//! answers VALID for a revoked or deleted key, and the table is rebuilt or repaired from the
//! database. Each test counts which outcome every case reached.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward::{NewKey, Reason, Store, StoreOptions};

fn options() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    }
}

fn new_key() -> NewKey {
    NewKey {
        owner: "acct_table".into(),
        scopes: vec!["read".into()],
        ..NewKey::default()
    }
}

fn table_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".kwtable");
    PathBuf::from(name)
}

/// A store with keys in three states: valid, revoked, deleted.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    valid: Vec<keyward::CreatedKey>,
    revoked: keyward::CreatedKey,
    deleted: keyward::CreatedKey,
}

fn fixture(extra_keys: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(&path, options()).unwrap();
    let valid = store
        .create_many((0..extra_keys.max(1)).map(|_| new_key()).collect())
        .unwrap();
    let revoked = store.create(new_key()).unwrap();
    let deleted = store.create(new_key()).unwrap();
    store.revoke(revoked.id(), None).unwrap();
    store.delete(deleted.id()).unwrap();
    drop(store);
    Fixture {
        _dir: dir,
        path,
        valid,
        revoked,
        deleted,
    }
}

/// Every key of the fixture gets the right verdict from `store`.
fn assert_right(store: &Store, f: &Fixture, case: &str) {
    for key in &f.valid {
        assert_eq!(
            store.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Valid,
            "{case}: a valid key"
        );
    }
    assert_eq!(
        store.verify(f.revoked.key(), &["read"]).unwrap().reason,
        Reason::Revoked,
        "{case}: the revoked key"
    );
    assert_eq!(
        store.verify(f.deleted.key(), &["read"]).unwrap().reason,
        Reason::NotFound,
        "{case}: the deleted key"
    );
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncated,
    Shortened,
    GarbageHeader,
    GarbageBody,
}

fn damage(path: &Path, kind: Damage) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(table_path(path))
        .unwrap();
    let len = file.metadata().unwrap().len();
    match kind {
        Damage::Truncated => file.set_len(0).unwrap(),
        Damage::Shortened => file.set_len(len / 2).unwrap(),
        Damage::GarbageHeader => file.write_all_at(&[0xA5; 4096], 0).unwrap(),
        Damage::GarbageBody => {
            // Everything after the header: slots, usage cells, records.
            let garbage = vec![0x5A; (len - 4096) as usize];
            file.write_all_at(&garbage, 4096).unwrap();
        }
    }
}

/// The table header's format word (word 1).
fn format_word(path: &Path) -> u64 {
    let mut word = [0u8; 8];
    std::fs::File::open(table_path(path))
        .unwrap()
        .read_exact_at(&mut word, 8)
        .unwrap();
    u64::from_le_bytes(word)
}

fn set_format_word(path: &Path, format: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(table_path(path))
        .unwrap()
        .write_all_at(&format.to_le_bytes(), 8)
        .unwrap();
}

#[test]
fn a_damaged_table_under_open_stores_never_gives_a_wrong_verdict() {
    let mut rebuilt = 0;
    let mut answered_from_the_database = 0;
    let kinds = [
        Damage::Truncated,
        Damage::Shortened,
        Damage::GarbageHeader,
        Damage::GarbageBody,
    ];
    for kind in kinds {
        let f = fixture(50);
        let writer = Store::open_unshared(&f.path, options()).unwrap();
        let reader = Store::open_unshared(&f.path, options()).unwrap();
        assert_right(&reader, &f, "before");
        let generation = reader.stats().unwrap().table.generation;
        damage(&f.path, kind);
        let case = format!("{kind:?}");
        // The reader survives (no SIGBUS) and answers right, from a rebuilt table or, for
        // slots it cannot trust, from the database.
        assert_right(&reader, &f, &case);
        // A revoke through the writer's (damaged) mapping reaches the reader at once.
        writer.revoke(f.valid[0].id(), None).unwrap();
        assert_eq!(
            reader.verify(f.valid[0].key(), &["read"]).unwrap().reason,
            Reason::Revoked,
            "{case}: revoked after the damage"
        );
        let stats = reader.stats().unwrap().table;
        let writer_stats = writer.stats().unwrap().table;
        if stats.generation != generation {
            rebuilt += 1;
            assert!(
                stats.rebuilds + writer_stats.rebuilds >= 1,
                "{case}: {stats:?}"
            );
        } else {
            answered_from_the_database += 1;
        }
        // A process opening now gets a sound table.
        drop((writer, reader));
        let fresh = Store::open_unshared(&f.path, options()).unwrap();
        let mut g = f;
        g.valid.remove(0);
        assert_right(&fresh, &g, &format!("{case}, reopened"));
    }
    println!(
        "damage under open stores: {rebuilt} rebuilt at once, {answered_from_the_database} answered from the database"
    );
    assert_eq!(rebuilt + answered_from_the_database, kinds.len());
    // Truncation and a garbage header always force a new generation.
    assert!(rebuilt >= 3, "rebuilt {rebuilt} of {}", kinds.len());
}

#[test]
fn a_bad_table_file_found_at_open_is_rebuilt() {
    let mut outcomes = std::collections::BTreeMap::new();
    // An old generation of this store's table: copied before the table grew.
    let old_generation = {
        let f = fixture(10);
        let copy = std::fs::read(table_path(&f.path)).unwrap();
        let store = Store::open_unshared(&f.path, options()).unwrap();
        store
            .create_many((0..3_000).map(|_| new_key()).collect())
            .unwrap();
        let grown = store.stats().unwrap().table;
        assert!(grown.keys > 3_000);
        (f, copy)
    };
    // A table of another store, with more keys (another pepper).
    let other = fixture(2_000);
    let other_table = std::fs::read(table_path(&other.path)).unwrap();
    type Setup = Box<dyn Fn(&Fixture)>;
    let cases: Vec<(&str, Setup)> = vec![
        (
            "missing",
            Box::new(|f: &Fixture| std::fs::remove_file(table_path(&f.path)).unwrap()),
        ),
        (
            "truncated",
            Box::new(|f: &Fixture| damage(&f.path, Damage::Shortened)),
        ),
        (
            "garbage",
            Box::new(|f: &Fixture| damage(&f.path, Damage::GarbageHeader)),
        ),
        (
            "another store's bigger table",
            Box::new(move |f: &Fixture| std::fs::write(table_path(&f.path), &other_table).unwrap()),
        ),
        (
            "another table format (a newer keyward's)",
            Box::new(|f: &Fixture| set_format_word(&f.path, format_word(&f.path) + 1)),
        ),
        (
            "a directory",
            Box::new(|f: &Fixture| {
                std::fs::remove_file(table_path(&f.path)).unwrap();
                std::fs::create_dir(table_path(&f.path)).unwrap();
            }),
        ),
    ];
    let this_format = format_word(&fixture(1).path);
    for (name, setup) in &cases {
        let f = fixture(20);
        setup(&f);
        match Store::open_unshared(&f.path, options()) {
            Ok(store) => {
                assert_right(&store, &f, name);
                let table = store.stats().unwrap().table;
                assert!(table.mapped && table.keys == 21, "{name}: {table:?}");
                // Whatever was there, the table is now in this build's format.
                assert_eq!(format_word(&f.path), this_format, "{name}");
                *outcomes
                    .entry(if table.rebuilds > 0 {
                        "rebuilt"
                    } else {
                        "used"
                    })
                    .or_insert(0) += 1;
            }
            Err(e) => {
                // Only a directory in the table's place may stop the open, with a clear
                // message naming the file.
                assert_eq!(*name, "a directory", "{name}: {e}");
                assert!(e.to_string().contains("kwtable"), "{e}");
                *outcomes.entry("refused").or_insert(0) += 1;
            }
        }
    }
    // The old generation put back under a store that has moved on.
    let (f, copy) = old_generation;
    std::fs::write(table_path(&f.path), copy).unwrap();
    let store = Store::open_unshared(&f.path, options()).unwrap();
    assert_right(&store, &f, "an old generation");
    assert!(store.stats().unwrap().table.keys > 3_000);
    *outcomes.entry("rebuilt").or_insert(0) += 1;
    println!("bad table files at open: {outcomes:?}");
    assert_eq!(
        outcomes.values().sum::<i32>(),
        cases.len() as i32 + 1,
        "{outcomes:?}"
    );
    assert!(outcomes["rebuilt"] >= 6, "{outcomes:?}");
}

#[test]
fn an_old_copy_of_the_current_generation_is_caught_up_before_it_is_trusted() {
    let f = fixture(20);
    let store = Store::open_unshared(&f.path, options()).unwrap();
    let copy = std::fs::read(table_path(&f.path)).unwrap();
    // Changes after the copy was taken: a revoke and a delete.
    store.revoke(f.valid[0].id(), None).unwrap();
    store.delete(f.valid[1].id()).unwrap();
    let generation = store.stats().unwrap().table.generation;
    drop(store);
    std::fs::write(table_path(&f.path), copy).unwrap();
    let fresh = Store::open_unshared(&f.path, options()).unwrap();
    assert_eq!(
        fresh.verify(f.valid[0].key(), &["read"]).unwrap().reason,
        Reason::Revoked
    );
    assert_eq!(
        fresh.verify(f.valid[1].key(), &["read"]).unwrap().reason,
        Reason::NotFound
    );
    let table = fresh.stats().unwrap().table;
    // The deletion cannot be applied in place (its slot is unknown): a new generation.
    assert_ne!(table.generation, generation, "{table:?}");
}
