//! Multi-process tests. This binary is both the test driver and, when started with
//! `child <role> ...`, the worker processes it spawns (it re-executes itself).
//!
//! - `revoke_rounds`: 4 processes create keys and verify each other's; one revokes, every
//!   other must answer REVOKED on its very next verify — 120 rounds, zero stale accepts.
//! - `usage_counts`: 4 processes verify the same 100 keys 2,500 times each; after they close,
//!   every key's count is exact and last-used set.
//! - `credits`: a key with 1,000 credits verified 500 times by each of 4 processes at once:
//!   exactly 1,000 VALID and 1,000 USAGE_EXCEEDED.
//! - `crash`: a child running a mixed workload is SIGKILLed at random moments; every
//!   acknowledged create, revoke and rotation survives, and the uses lost are at most the
//!   child's unflushed interval.
//! - `fork`: a store opened before fork() works in both processes.
//! - `fork_stress`: forks (200; `KEYWARD_FORK_CYCLES`) from a parent whose flusher runs every
//!   5 ms while another thread verifies without pause; each child verifies through the
//!   inherited store and through one of its own, and closes, under `alarm(20)`: 0 hangs, and
//!   the use counts are exact (issue 13, items 1 and 2).
//! - `soak`: N processes (default 4 for 5 s; `KEYWARD_SOAK_PROCESSES=8 KEYWARD_SOAK_SECS=60`
//!   for the long run) mix create / verify / revoke / rotate / flush on one store: no key is
//!   accepted after a revoke or rotation that returned, use counts are exact, and the file
//!   passes redb's integrity check.
//!
//! Ends with `N passed, M failed` and a non-zero exit status on failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::{NewCredits, NewKey, Reason, Store, StoreOptions};

const WORKERS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child_main(&args[2..]);
        return;
    }
    // A hung child must not hang CI: give the whole run a deadline.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(600));
        eprintln!("multiprocess tests: deadline exceeded");
        std::process::exit(2);
    });
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let tests: Vec<(&str, fn())> = vec![
        ("revoke_rounds", revoke_rounds),
        ("usage_counts", usage_counts),
        ("credits", credits),
        ("crash", crash),
        ("fork", fork),
        ("fork_stress", fork_stress),
        ("soak", soak),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(test)) {
            Ok(()) => {
                passed += 1;
                println!(
                    "test {name} ... ok ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ worker processes

/// A child process speaking a line protocol on stdin/stdout. Killed when dropped.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(args: &[&str]) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start a worker process");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            input,
            output,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.input, "{line}").unwrap();
        self.input.flush().unwrap();
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        let n = self.output.read_line(&mut line).unwrap();
        assert!(n > 0, "worker exited unexpectedly");
        line.trim_end().to_owned()
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.read()
    }

    fn finish(mut self) {
        // Roles that end by themselves may already be gone: a closed pipe is fine here.
        let _ = writeln!(self.input, "quit").and_then(|()| self.input.flush());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "worker failed: {status}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(flush: Duration) -> StoreOptions {
    StoreOptions {
        flush_interval: flush,
        ..StoreOptions::default()
    }
}

fn new_key(owner: &str) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: "multiprocess".into(),
        scopes: vec!["read".into()],
        env: Some("live".into()),
        ..NewKey::default()
    }
}

fn child_main(args: &[String]) {
    let role = args[0].as_str();
    let path = PathBuf::from(&args[1]);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut say = |line: String| {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    match role {
        // Serves create / verify / revoke commands.
        "serve" => {
            let store = Store::open(&path, options(Duration::from_secs(1))).unwrap();
            say("ready".into());
            for line in stdin.lock().lines() {
                let line = line.unwrap();
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("create") => {
                        let created = store.create(new_key("acct")).unwrap();
                        say(format!("{} {}", created.key(), created.id()));
                    }
                    Some("verify") => {
                        let verdict = store.verify(words.next().unwrap(), &["read"]).unwrap();
                        say(verdict.reason.code().into());
                    }
                    Some("revoke") => {
                        store.revoke(words.next().unwrap(), Some("test")).unwrap();
                        say("ok".into());
                    }
                    Some("quit") | None => break,
                    Some(other) => panic!("unknown command {other}"),
                }
            }
            store.close().unwrap();
        }
        // Verifies every key in a file `rounds` times, then closes.
        "count" => {
            let keys: Vec<String> = std::fs::read_to_string(&args[2])
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let rounds: usize = args[3].parse().unwrap();
            let store = Store::open(&path, options(Duration::from_millis(50))).unwrap();
            say("ready".into());
            let mut go = String::new();
            stdin.lock().read_line(&mut go).unwrap();
            let mut valid = 0;
            for _ in 0..rounds {
                for key in &keys {
                    if store.verify(key, &["read"]).unwrap().is_valid() {
                        valid += 1;
                    }
                }
            }
            store.close().unwrap();
            say(format!("valid {valid}"));
        }
        // Spends credits of one key.
        "spend" => {
            let key = &args[2];
            let times: usize = args[3].parse().unwrap();
            let store = Store::open(&path, options(Duration::from_secs(1))).unwrap();
            say("ready".into());
            let mut go = String::new();
            stdin.lock().read_line(&mut go).unwrap();
            let mut tally: HashMap<Reason, usize> = HashMap::new();
            for _ in 0..times {
                *tally
                    .entry(store.verify(key, &[]).unwrap().reason)
                    .or_default() += 1;
            }
            store.close().unwrap();
            say(format!(
                "valid {} exceeded {}",
                tally.get(&Reason::Valid).copied().unwrap_or(0),
                tally.get(&Reason::UsageExceeded).copied().unwrap_or(0)
            ));
        }
        // A mixed workload that reports each acknowledged operation, until killed.
        "workload" => {
            let counted_key = &args[2];
            let store = Store::open(&path, options(Duration::ZERO)).unwrap();
            let mut verifies: u64 = 0;
            let mut live: Vec<String> = Vec::new();
            for round in 0u64.. {
                let created = store.create(new_key("crash")).unwrap();
                say(format!("created {} {}", created.id(), created.key()));
                live.push(created.id().to_owned());
                for _ in 0..250 {
                    assert!(store.verify(counted_key, &["read"]).unwrap().is_valid());
                    verifies += 1;
                }
                if round % 3 == 2 {
                    let id = live.remove(0);
                    store.revoke(&id, None).unwrap();
                    say(format!("revoked {id}"));
                }
                if round % 4 == 3 {
                    let id = live.remove(0);
                    let rotated = store.rotate(&id, Duration::ZERO).unwrap();
                    say(format!("rotated {id} {} {}", rotated.id(), rotated.key()));
                    live.push(rotated.id().to_owned());
                }
                if round % 2 == 1 {
                    store.flush().unwrap();
                    say(format!("flushed {verifies}"));
                }
            }
        }
        "soak" => soak_worker(&path, args),
        other => panic!("unknown role {other}"),
    }
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    // Create the store (and its pepper file) before the workers race to open it.
    Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    (dir, path)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ------------------------------------------------------------------ scenarios

fn revoke_rounds() {
    let (_dir, path) = temp_db();
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| Worker::spawn(&["serve", path_arg(&path)]))
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), "ready");
    }
    let rounds = 120;
    let mut stale_accepts = 0;
    let mut stale_negatives = 0;
    for round in 0..rounds {
        let creator = round % WORKERS;
        let revoker = (round + 1) % WORKERS;
        let reply = workers[creator].ask("create");
        let (key, id) = reply.split_once(' ').unwrap();
        for w in workers.iter_mut() {
            // Created in one process, valid at once in every other.
            if w.ask(&format!("verify {key}")) != "VALID" {
                stale_negatives += 1;
            }
        }
        assert_eq!(workers[revoker].ask(&format!("revoke {id}")), "ok");
        for (i, w) in workers.iter_mut().enumerate() {
            let answer = w.ask(&format!("verify {key}"));
            if answer == "VALID" {
                stale_accepts += 1;
            }
            assert_eq!(answer, "REVOKED", "round {round}, worker {i}");
        }
    }
    assert_eq!(stale_accepts, 0);
    assert_eq!(stale_negatives, 0);
    for w in workers {
        w.finish();
    }
    println!(
        "  revoke_rounds: {rounds} rounds x {WORKERS} processes, 0 stale accepts, 0 stale negatives"
    );
}

fn usage_counts() {
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let created = store
        .create_many((0..100).map(|i| new_key(&format!("acct_{i}"))).collect())
        .unwrap();
    let key_file = dir.path().join("keys.txt");
    let listing: Vec<&str> = created.iter().map(|c| c.key()).collect();
    std::fs::write(&key_file, listing.join("\n")).unwrap();
    drop(store);
    let rounds_per_key = 25; // 100 keys x 25 = 2,500 verifies per process
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            Worker::spawn(&[
                "count",
                path_arg(&path),
                path_arg(&key_file),
                &rounds_per_key.to_string(),
            ])
        })
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), "ready");
    }
    for w in &mut workers {
        w.send("go");
    }
    for w in &mut workers {
        assert_eq!(w.read(), format!("valid {}", 100 * rounds_per_key));
    }
    for w in workers {
        w.finish();
    }
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    for key in &created {
        let usage = store.usage(key.id()).unwrap();
        assert_eq!(
            usage.uses,
            (WORKERS * rounds_per_key) as u64,
            "key {}",
            key.id()
        );
        assert!(usage.last_used.is_some());
    }
    println!(
        "  usage_counts: {WORKERS} processes x 2,500 verifies, 100 keys each exactly {}",
        WORKERS * rounds_per_key
    );
}

fn credits() {
    let (_dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let mut new = new_key("acct");
    new.scopes.clear();
    new.credits = Some(NewCredits {
        remaining: 1000,
        refill: None,
        cost: 1,
    });
    let key = store.create(new).unwrap();
    drop(store);
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| Worker::spawn(&["spend", path_arg(&path), key.key(), "500"]))
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), "ready");
    }
    for w in &mut workers {
        w.send("go");
    }
    let (mut valid, mut exceeded) = (0, 0);
    for w in &mut workers {
        let reply = w.read();
        let words: Vec<&str> = reply.split_whitespace().collect();
        valid += words[1].parse::<usize>().unwrap();
        exceeded += words[3].parse::<usize>().unwrap();
    }
    for w in workers {
        w.finish();
    }
    assert_eq!(valid, 1000);
    assert_eq!(exceeded, 1000);
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    assert_eq!(store.credits(key.id()).unwrap().unwrap().remaining, 0);
    assert_eq!(store.usage(key.id()).unwrap().uses, 1000);
    println!("  credits: {valid} VALID, {exceeded} USAGE_EXCEEDED over {WORKERS} processes");
}

fn crash() {
    let (_dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let counted = store.create(new_key("counted")).unwrap();
    drop(store);
    let cycles: usize = std::env::var("KEYWARD_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ std::process::id() as u64;
    let mut created: HashMap<String, String> = HashMap::new();
    let mut revoked: Vec<String> = Vec::new();
    let mut rotated: Vec<(String, String)> = Vec::new();
    let mut flushed_total: u64 = 0;
    for cycle in 0..cycles {
        let mut worker = Worker::spawn(&["workload", path_arg(&path), counted.key()]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lines_before_kill = 5 + (seed % 40) as usize;
        let mut flushed_this_run = 0;
        let mut record = |line: &str| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[0] {
                "created" => {
                    created.insert(words[1].into(), words[2].into());
                }
                "revoked" => revoked.push(words[1].into()),
                "rotated" => {
                    rotated.push((words[1].into(), words[2].into()));
                    created.insert(words[2].into(), words[3].into());
                }
                "flushed" => flushed_this_run = words[1].parse().unwrap(),
                other => panic!("unexpected line {other}"),
            }
        };
        for _ in 0..lines_before_kill {
            record(&worker.read());
        }
        // SIGKILL at a random moment after that (the workload keeps running meanwhile).
        std::thread::sleep(Duration::from_micros(seed % 3000));
        worker.child.kill().unwrap();
        worker.child.wait().unwrap();
        // Acknowledgements the worker printed before it died are still in the pipe: every one
        // of them is an acknowledged change (missing them made release builds, which run
        // further between the last read and the kill, report changes "nobody acknowledged").
        let mut unread = String::new();
        std::io::Read::read_to_string(&mut worker.output, &mut unread).unwrap();
        // Whole lines only: the kill may have cut the last one.
        let whole_lines = unread.rsplit_once('\n').map_or("", |(whole, _)| whole);
        for line in whole_lines.lines() {
            record(line);
        }

        let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        // The operation in flight at the kill may have landed without being acknowledged:
        // at most one key per cycle may be found revoked or rotated unannounced.
        let mut unannounced = 0;
        for (id, key) in &created {
            let info = store
                .get(id)
                .unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged key {id} lost: {e}"));
            let verdict = store.verify(key, &["read"]).unwrap().reason;
            if revoked.contains(id) {
                assert_eq!(
                    verdict,
                    Reason::Revoked,
                    "cycle {cycle}: revoked key {id} accepted"
                );
            } else if rotated.iter().any(|(old, _)| old == id) {
                assert!(info.rotated_to.is_some());
                assert_ne!(
                    verdict,
                    Reason::Valid,
                    "cycle {cycle}: rotated key {id} still valid"
                );
            } else if verdict != Reason::Valid {
                unannounced += 1;
                assert!(
                    (verdict == Reason::Revoked && info.revoked_at.is_some())
                        || (verdict == Reason::Expired && info.rotated_to.is_some()),
                    "cycle {cycle}: key {id} is {verdict:?} without a whole revoke or rotation"
                );
                if verdict == Reason::Revoked {
                    revoked.push(id.clone());
                } else {
                    rotated.push((id.clone(), info.rotated_to.clone().unwrap()));
                }
            }
        }
        assert!(
            unannounced <= 1,
            "cycle {cycle}: {unannounced} changes nobody acknowledged"
        );
        for (old, new) in &rotated {
            assert_eq!(
                store.get(old).unwrap().rotated_to.as_deref(),
                Some(new.as_str())
            );
        }
        // Uses: at least everything acknowledged as flushed, at most one unflushed interval more.
        flushed_total += flushed_this_run;
        let uses = store.usage(counted.id()).unwrap().uses;
        let interval = 2 * 250; // verifies between two flushes of the workload
        assert!(
            uses >= flushed_total,
            "cycle {cycle}: {uses} < {flushed_total} acknowledged"
        );
        assert!(
            uses <= flushed_total + interval,
            "cycle {cycle}: {uses} uses, more than one interval past {flushed_total}"
        );
        flushed_total = uses; // the next run's acknowledgements count from what landed
        drop(store);
    }
    assert!(keyward::Store::check_integrity(&path).unwrap());
    println!(
        "  crash: {cycles} SIGKILL cycles, {} keys, {} revokes, {} rotations intact",
        created.len(),
        revoked.len(),
        rotated.len()
    );
}

fn fork() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path, options(Duration::ZERO)).unwrap();
    let before = store.create(new_key("forked")).unwrap();
    assert!(store.verify(before.key(), &["read"]).unwrap().is_valid());
    let handoff = path.with_extension("child");
    // SAFETY: this process has no other threads doing work at this point (the deadline
    // thread only sleeps), and the child runs only keyward calls before `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = catch_unwind(AssertUnwindSafe(|| {
            // The inherited store reopens itself transparently in the child.
            assert!(store.verify(before.key(), &["read"]).unwrap().is_valid());
            let mine = store.create(new_key("child")).unwrap();
            std::fs::write(&handoff, mine.key()).unwrap();
            store
                .revoke(before.id(), Some("revoked by the child"))
                .unwrap();
            assert_eq!(
                store.verify(before.key(), &["read"]).unwrap().reason,
                Reason::Revoked
            );
            store.flush().unwrap();
        }))
        .map_or(1, |()| 0);
        // SAFETY: ends the child without running the parent's exit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the fork child failed"
    );
    // The parent's store still works and sees the child's changes.
    let child_key = std::fs::read_to_string(&handoff).unwrap();
    assert!(store.verify(&child_key, &["read"]).unwrap().is_valid());
    assert_eq!(
        store.verify(before.key(), &["read"]).unwrap().reason,
        Reason::Revoked
    );
    println!(
        "  fork: parent and child both verify; the child's create and revoke reach the parent"
    );
}

fn fork_stress() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let cycles: u64 = std::env::var("KEYWARD_FORK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (_dir, path) = temp_db();
    let flushing = options(Duration::from_millis(5));
    let store = Store::open(&path, flushing.clone()).unwrap();
    let key = store.create(new_key("forks")).unwrap();
    let verifies = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (store, key, verifies, stop) = (
            store.clone(),
            key.key().to_owned(),
            verifies.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                assert!(store.verify(&key, &["read"]).unwrap().is_valid());
                verifies.fetch_add(1, Ordering::AcqRel);
            }
        })
    };
    while verifies.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let (mut hangs, mut failures, mut overlapped) = (0, 0, 0);
    for _ in 0..cycles {
        let before = verifies.load(Ordering::Acquire);
        // SAFETY: the child makes only keyward calls (which is what this test is about) and
        // ends with `_exit`; the parent waits for it.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: plain system call; a deadlock never ends, 20 s is far beyond a slow run.
            unsafe { libc::alarm(20) };
            let ok = catch_unwind(AssertUnwindSafe(|| {
                // Through the registry: the parent's store, reopened in the child.
                let inherited = Store::open(&path, flushing.clone()).unwrap();
                assert!(inherited.verify(key.key(), &["read"]).unwrap().is_valid());
                inherited.flush().unwrap();
                // A store of the child's own, closed here (its flusher stopped and joined).
                let own = Store::open_unshared(&path, flushing.clone()).unwrap();
                assert!(own.verify(key.key(), &["read"]).unwrap().is_valid());
                own.close().unwrap();
            }))
            .is_ok();
            // SAFETY: ends the child without the parent's exit handlers or destructors.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
            hangs += 1;
            if hangs >= 3 {
                break;
            }
        } else if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failures += 1;
        }
        if verifies.load(Ordering::Acquire) != before {
            overlapped += 1;
        }
    }
    stop.store(true, Ordering::Release);
    busy.join().unwrap();
    assert_eq!((hangs, failures), (0, 0), "hung or failed children");
    assert!(
        overlapped * 2 >= cycles,
        "the busy thread verified across only {overlapped} of {cycles} forks"
    );
    store.flush().unwrap();
    let uses = store.usage(key.id()).unwrap().uses;
    assert_eq!(uses, verifies.load(Ordering::Acquire) + 2 * cycles);
    println!(
        "  fork_stress: {cycles} forks, 0 hangs, the busy thread verified across {overlapped}; \
         {uses} uses counted"
    );
}

// ------------------------------------------------------------------ soak

/// Reads whole new lines appended to a shared log since `offset`.
fn read_new_lines(path: &Path, offset: &mut u64) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    file.seek(SeekFrom::Start(*offset)).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    text[..complete].lines().map(str::to_owned).collect()
}

/// Appends one line with a single write (atomic for short lines with O_APPEND).
fn append_line(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

fn soak_worker(path: &Path, args: &[String]) {
    let keys_log = PathBuf::from(&args[2]);
    let dead_log = PathBuf::from(&args[3]);
    let secs: f64 = args[4].parse().unwrap();
    let mut seed: u64 = args[5].parse().unwrap();
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let store = Store::open(path, options(Duration::from_millis(200))).unwrap();
    let (mut keys_offset, mut dead_offset) = (0u64, 0u64);
    let mut live: Vec<(String, String)> = Vec::new();
    let mut dead: HashMap<String, String> = HashMap::new();
    let mut valid_counts: HashMap<String, u64> = HashMap::new();
    let (mut ops, mut violations) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        if ops.is_multiple_of(64) {
            for line in read_new_lines(&keys_log, &mut keys_offset) {
                let (id, key) = line.split_once(' ').unwrap();
                live.push((id.into(), key.into()));
            }
            // Keys revoked or rotated away by any process, after the call returned.
            for line in read_new_lines(&dead_log, &mut dead_offset) {
                let (id, key) = line.split_once(' ').unwrap();
                dead.insert(id.into(), key.into());
                live.retain(|(live_id, _)| live_id != id);
            }
        }
        ops += 1;
        let dice = rand() % 100;
        if dice < 4 || live.is_empty() {
            let created = store.create(new_key("soak")).unwrap();
            append_line(&keys_log, &format!("{} {}", created.id(), created.key()));
        } else if dice < 6 {
            // Another process may have revoked or rotated it already: revoke is idempotent.
            let (id, key) = live.swap_remove((rand() % live.len() as u64) as usize);
            store.revoke(&id, None).unwrap();
            append_line(&dead_log, &format!("{id} {key}"));
        } else if dice < 7 {
            let (id, key) = live.swap_remove((rand() % live.len() as u64) as usize);
            match store.rotate(&id, Duration::ZERO) {
                Ok(rotated) => {
                    append_line(&dead_log, &format!("{id} {key}"));
                    append_line(&keys_log, &format!("{} {}", rotated.id(), rotated.key()));
                }
                // Revoked meanwhile by another process (which logs it itself).
                Err(e) => assert_eq!(e.code(), keyward::ErrorCode::InvalidArgument, "{e}"),
            }
        } else if dice < 8 {
            store.flush().unwrap();
        } else if dice < 28 && !dead.is_empty() {
            let pick = (rand() % dead.len() as u64) as usize;
            let key = dead.values().nth(pick).unwrap();
            if store.verify(key, &["read"]).unwrap().is_valid() {
                violations += 1;
            }
        } else {
            let (id, key) = &live[(rand() % live.len() as u64) as usize];
            let verdict = store.verify(key, &["read"]).unwrap();
            if verdict.is_valid() {
                *valid_counts.entry(id.clone()).or_default() += 1;
            } else if !dead.contains_key(id) {
                // Revoked by another process since our last look at the log: fine, but
                // it must say so.
                assert!(
                    matches!(verdict.reason, Reason::Revoked | Reason::Expired),
                    "{:?}",
                    verdict.reason
                );
            }
        }
    }
    store.close().unwrap();
    let counts: Vec<String> = valid_counts
        .iter()
        .map(|(id, n)| format!("{id}={n}"))
        .collect();
    println!(
        "ops {ops} violations {violations} counts {}",
        counts.join(",")
    );
}

fn soak() {
    let processes: usize = std::env::var("KEYWARD_SOAK_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let secs: f64 = std::env::var("KEYWARD_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let (dir, path) = temp_db();
    let keys_log = dir.path().join("keys.log");
    let dead_log = dir.path().join("dead.log");
    let workers: Vec<Worker> = (0..processes)
        .map(|i| {
            let seed = (0x9E37_79B9u64 + i as u64) * 2_654_435_761;
            Worker::spawn(&[
                "soak",
                path_arg(&path),
                path_arg(&keys_log),
                path_arg(&dead_log),
                &secs.to_string(),
                &seed.to_string(),
            ])
        })
        .collect();
    let mut total_ops = 0;
    let mut expected: HashMap<String, u64> = HashMap::new();
    for mut w in workers {
        let report = w.read();
        let words: Vec<&str> = report.split_whitespace().collect();
        total_ops += words[1].parse::<u64>().unwrap();
        assert_eq!(
            words[3], "0",
            "a revoked or rotated key was accepted after the call returned"
        );
        for pair in words.get(5).map(|s| s.split(',')).into_iter().flatten() {
            if let Some((id, n)) = pair.split_once('=') {
                *expected.entry(id.into()).or_default() += n.parse::<u64>().unwrap();
            }
        }
        w.finish();
    }
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    for (id, n) in &expected {
        assert_eq!(store.usage(id).unwrap().uses, *n, "uses of {id}");
    }
    let keys = store.all_keys().unwrap().len();
    drop(store);
    assert!(
        Store::check_integrity(&path).unwrap(),
        "integrity check failed"
    );
    println!(
        "  soak: {processes} processes x {secs} s, {total_ops} operations, {keys} keys, 0 accepts after revoke, counts exact for {} keys, integrity ok",
        expected.len()
    );
}
