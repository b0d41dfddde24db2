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
//! - `revoke_storm`: 8 processes verify all of 1,000 keys in a loop while another revokes them
//!   one by one, announcing each revoke before the call and after it returned: 0 accepts of a
//!   key after a verifier learned its revoke returned, and verifies overlapping the revoke
//!   calls (> 0) prove the race ran (`KEYWARD_STORM_KEYS`, `KEYWARD_STORM_VERIFIERS`).
//! - `table_crash`: a child mixing create / revoke / update scopes / verify / flush is killed by
//!   a failpoint at each step of the shared table's writer and of the flusher in turn (200
//!   cycles; `KEYWARD_TABLE_CRASH_CYCLES=10000` for the long run): never a wrong verdict (no
//!   VALID for an acknowledged revoke or rescope), slots left in doubt repaired by the next
//!   write, use counts ≥ the flushed acknowledgements and ≤ one interval more (exact when the
//!   child was killed outside a flush).
//! - `owner_storm`: 4 processes verify keys of two owners in a loop while another process
//!   suspends, resumes, restricts and unrestricts one owner 60 times, announcing each change
//!   before the call and after it returned: every verifier's first verify after it read that a
//!   change returned gives the new answer (`OWNER_SUSPENDED`, `VALID`, `INSUFFICIENT_SCOPE`,
//!   `VALID`), the other owner's key is never refused, and verifies overlapping the calls
//!   (> 0) prove the race ran.
//! - `owner_crash`: a writer killed by a failpoint before or after its owner change commits
//!   leaves the owner epoch in doubt; other processes answer from the committed state
//!   meanwhile, and the next change repairs it.
//! - `killed_verifier_keeps_counts`: two children verify without flushing and are SIGKILLed;
//!   the counts they made in the shared table are all there, before and after a flush.
//! - `close_then_exit_keeps_counts`: children (20; `KEYWARD_CLOSE_EXIT_CYCLES`) whose 1 ms
//!   flusher holds a batch close their store and exit at once while the parent verifies
//!   without pause: the use counts are exact (RELIABILITY.md, defect 17).
//!
//! - `legacy_upgrade_race`: 50 Sanctum tokens (Sanctum's algorithm) imported with
//!   `Store::import_legacy`; 4 processes verify all of them 20 times, starting together: every
//!   verify is VALID (found through the shared table before and after the upgrade), each key
//!   is upgraded exactly once (one `update` audit event naming `upgraded_at`, however many
//!   processes met its legacy digest first), and every use is counted.
//! - `rate_limit_key`, `rate_limit_owner` (issue 19): 8 processes hammer one key limited to
//!   1,000/s with burst 100 (or 10 keys of an owner with that limit) for 1 s
//!   (`KEYWARD_RATE_SECS=5` for the acceptance run) on the real clock: the accepted count is
//!   at most the algorithm's bound burst + ⌊(last request − first accepted request) /
//!   interval⌋ (exact: the times are those the engine judged at); the shared word, read back,
//!   moved one interval per accepted request (no lost update, whatever the scheduling); with
//!   `KEYWARD_RATE_SECS` (the acceptance run) also within 1 % of the bound (budget lapses while
//!   every process waits for a CPU, so that part needs a machine that runs them);
//!   every process got some, and all were accepted over a common stretch of time (they
//!   contended for the same word; compare-and-swap retries are reported).
//! - `rate_limit_crash`: a process killed by a failpoint between taking the key's unit and the
//!   owner's (k = 0..5 earlier requests): afterwards the key's burst is never exceeded (the
//!   unit the dead process took stays taken), and the owner's is not touched by it.
//!
//! `KEYWARD_MULTIPROCESS_DEADLINE_SECS` (default 600) bounds the whole run; raise it for the
//! long runs.
//!
//! Ends with `N passed, M failed` and a non-zero exit status on failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use keyward::{Clock, NewCredits, NewKey, RateLimit, Reason, Store, StoreOptions};

const WORKERS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child_main(&args[2..]);
        return;
    }
    // A hung child must not hang CI: give the whole run a deadline.
    let deadline: u64 = std::env::var("KEYWARD_MULTIPROCESS_DEADLINE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(deadline));
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
        ("revoke_storm", revoke_storm),
        ("table_crash", table_crash),
        ("killed_verifier_keeps_counts", killed_verifier_keeps_counts),
        ("owner_storm", owner_storm),
        ("owner_crash", owner_crash),
        ("close_then_exit_keeps_counts", close_then_exit_keeps_counts),
        (
            "in_doubt_slot_repaired_and_counted",
            in_doubt_slot_repaired_and_counted,
        ),
        ("legacy_upgrade_race", legacy_upgrade_race),
        ("rate_limit_key", rate_limit_key),
        ("rate_limit_owner", rate_limit_owner),
        ("rate_limit_crash", rate_limit_crash),
    ];
    let (mut passed, mut failed) = (0, 0);
    // Known bugs: run only when named exactly (none open now).
    let known_bugs: Vec<(&str, fn())> = vec![];
    let tests = tests
        .into_iter()
        .filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f)));
    let known_bugs = known_bugs
        .into_iter()
        .filter(|(name, _)| filter.as_deref() == Some(*name));
    for (name, test) in tests.chain(known_bugs) {
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
        Worker::spawn_with_env(args, &[])
    }

    fn spawn_with_env(args: &[&str], env: &[(&str, String)]) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("child")
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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
        "storm_verify" => storm_verifier(&path, args),
        "storm_revoke" => storm_revoker(&path, args),
        "table_workload" => table_worker(&path, args),
        "owner_verify" => owner_verifier(&path, args),
        // Suspends an owner (run with a failpoint that kills it on the way).
        "suspend" => {
            let store = Store::open(&path, options(Duration::ZERO)).unwrap();
            store.suspend_owner(&args[2], Some("crash test")).unwrap();
            say("suspended".into());
        }
        // Renames one key (run with a failpoint that kills it on the way).
        "rename" => {
            let store = Store::open(&path, options(Duration::ZERO)).unwrap();
            store
                .update(
                    &args[2],
                    keyward::KeyUpdate {
                        name: Some("renamed".into()),
                        ..keyward::KeyUpdate::default()
                    },
                )
                .unwrap();
            say("renamed".into());
        }
        // Verifies one key once with a 1 ms background flusher whose flushes each pause
        // `pause_ms` between taking their batch and writing it, waits until that flusher has
        // taken a batch, closes the store and exits at once (as a worker that closes its
        // store on the way out).
        "close_and_exit" => {
            let key = &args[2];
            let pause = Duration::from_millis(args[3].parse().unwrap());
            let store = Store::open(&path, options(Duration::from_millis(1))).unwrap();
            store.pause_flushes_for_test(pause).unwrap();
            assert!(store.verify(key, &["read"]).unwrap().is_valid());
            // The flusher holds the host's flush lease (the parent runs none) and takes the
            // shared counts each pass: wait for its first batch.
            let deadline = Instant::now() + Duration::from_secs(20);
            while store.paused_flushes_for_test().unwrap() == 0 {
                assert!(Instant::now() < deadline, "the flusher never took a batch");
                std::thread::yield_now();
            }
            say("closing".into());
            store.close().unwrap();
            say("closed".into());
            std::process::exit(0);
        }
        // Verifies every key in a file `rounds` times without flushing, reports, then waits
        // to be killed.
        "verify_and_wait" => {
            let keys: Vec<String> = std::fs::read_to_string(&args[2])
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let rounds: usize = args[3].parse().unwrap();
            // No background flusher: the counts stay in the shared table's cells.
            let store = Store::open(&path, options(Duration::ZERO)).unwrap();
            let mut valid = 0;
            for _ in 0..rounds {
                for key in &keys {
                    if store.verify(key, &["read"]).unwrap().is_valid() {
                        valid += 1;
                    }
                }
            }
            say(format!("valid {valid}"));
            let mut wait = String::new();
            stdin.lock().read_line(&mut wait).unwrap();
            // Not reached in the test (SIGKILL comes first); never flush here.
            std::mem::forget(store);
            std::process::exit(0);
        }
        // Hammers the keys of a file for `secs` seconds on the real clock, then reports.
        "rate" => {
            let keys: Vec<String> = std::fs::read_to_string(&args[2])
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let secs: f64 = args[3].parse().unwrap();
            let clock = Arc::new(RecordingClock::default());
            let store = Store::open(
                &path,
                StoreOptions {
                    clock: clock.clone(),
                    ..options(Duration::from_secs(1))
                },
            )
            .unwrap();
            say("ready".into());
            wait_for_go();
            let started = Instant::now();
            let (mut accepted, mut refused, mut i) = (0u64, 0u64, 0usize);
            // The time the engine judged this process's first accepted request at (the
            // clock is this process's and it verifies on one thread: the last time read).
            let (mut first_accepted, mut last_accepted) = (i64::MAX, 0);
            while started.elapsed().as_secs_f64() < secs {
                match store.verify(&keys[i % keys.len()], &[]).unwrap().reason {
                    Reason::Valid => {
                        accepted += 1;
                        let at = clock.last.load(Ordering::SeqCst);
                        first_accepted = first_accepted.min(at);
                        last_accepted = at;
                    }
                    Reason::RateLimited => refused += 1,
                    other => panic!("unexpected {other:?}"),
                }
                i += 1;
            }
            let retries = store.stats().unwrap().rate_cas_retries;
            say(format!(
                "accepted {accepted} refused {refused} first {first_accepted} last_accepted \
                 {last_accepted} last {} retries {retries}",
                clock.last.load(Ordering::SeqCst)
            ));
            store.close().unwrap();
        }
        // Verifies a key at a fixed time, saying "ok" after each accepted verify (killed by
        // the failpoint between the key's and the owner's rate word).
        "rate_crash" => {
            let key = &args[2];
            let at: i64 = args[3].parse().unwrap();
            let store = Store::open(&path, options(Duration::ZERO)).unwrap();
            for _ in 0..20 {
                let verdict = store
                    .verify_request(&keyward::VerifyRequest {
                        at: Some(keyward::Timestamp::from_millis(at)),
                        ..keyward::VerifyRequest::key(key, &[])
                    })
                    .unwrap();
                say(verdict.reason.code().into());
            }
            say("done".into());
        }
        other => panic!("unknown role {other}"),
    }
}

/// The system clock, remembering the last nanosecond time it gave the engine.
#[derive(Default)]
struct RecordingClock {
    last: std::sync::atomic::AtomicI64,
}

impl Clock for RecordingClock {
    fn now(&self) -> keyward::Timestamp {
        keyward::Timestamp::now()
    }

    fn now_nanos(&self) -> i64 {
        let now = keyward::SystemClock.now_nanos();
        self.last.store(now, Ordering::SeqCst);
        now
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

// ------------------------------------------------------------------ revoke storm

/// Follows a file another process appends lines to, through one descriptor kept open (a poll
/// at the end of the file is one `read` call).
struct LogTail {
    path: PathBuf,
    file: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_owned(),
            file: None,
            partial: Vec::new(),
        }
    }

    /// Whole lines appended since the last poll.
    fn poll(&mut self) -> Vec<String> {
        use std::io::Read;
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = &mut self.file else {
            return Vec::new();
        };
        let mut chunk = [0u8; 4096];
        loop {
            let n = file.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            self.partial.extend_from_slice(&chunk[..n]);
        }
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8(complete)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// `id key` lines.
fn read_id_keys(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (id, key) = line.split_once(' ').unwrap();
            (id.to_owned(), key.to_owned())
        })
        .collect()
}

fn wait_for_go() {
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
}

fn say_line(line: &str) {
    let mut out = std::io::stdout();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// A storm verifier: loops over every key (starting at its own offset) and, while a revoke is
/// in progress, also verifies the key being revoked; the moment it reads that a revoke
/// returned, it verifies that key. Stops when the log says `stop`.
fn storm_verifier(path: &Path, args: &[String]) {
    let keys = read_id_keys(&args[2]);
    let mut tail = LogTail::new(Path::new(&args[3]));
    let mut cursor: usize = args[4].parse::<usize>().unwrap() % keys.len();
    let store = Store::open(path, options(Duration::from_secs(1))).unwrap();
    say_line("ready");
    wait_for_go();
    // Per key, what this process knows: 0 = nothing, 1 = revoke in progress (the revoker's
    // `begin` read, its `end` not yet), 2 = the revoke returned.
    let mut known = vec![0u8; keys.len()];
    let mut in_progress: Option<usize> = None;
    let (mut verifies, mut overlapped, mut overlapped_valid) = (0u64, 0u64, 0u64);
    let (mut first_checks, mut violations) = (0u64, 0u64);
    let verify = |key: &str| store.verify(key, &["read"]).unwrap().reason;
    let (mut stopped, mut steps) = (false, 0u64);
    while !stopped {
        for line in tail.poll() {
            match line.split_once(' ') {
                Some(("begin", i)) => {
                    let i: usize = i.parse().unwrap();
                    known[i] = 1;
                    in_progress = Some(i);
                }
                Some(("end", i)) => {
                    let i: usize = i.parse().unwrap();
                    known[i] = 2;
                    // The first verify of the key after learning its revoke returned.
                    let reason = verify(&keys[i].1);
                    verifies += 1;
                    first_checks += 1;
                    if reason != Reason::Revoked {
                        violations += 1;
                        eprintln!("key {i} answered {reason:?} after its revoke returned");
                    }
                }
                None if line == "stop" => stopped = true,
                _ => panic!("unexpected log line {line:?}"),
            }
        }
        // One step round the key list, and every 8th step one verify of the key being
        // revoked, if any. (Racing it on every step sends all 8 processes to redb for its
        // in-doubt slot without pause, which made each revoke 3x slower on 2 cores.)
        steps += 1;
        let racing = in_progress.filter(|&i| known[i] == 1 && steps % 8 == 0);
        let next = cursor;
        cursor = (cursor + 1) % keys.len();
        for i in std::iter::once(next).chain(racing) {
            let before = known[i];
            let reason = verify(&keys[i].1);
            verifies += 1;
            match before {
                2 if reason == Reason::Valid => {
                    violations += 1;
                    eprintln!("key {i} accepted after its revoke returned");
                }
                2 => assert_eq!(reason, Reason::Revoked, "key {i}"),
                1 => {
                    // Started after the revoke call began, before it was seen to return.
                    overlapped += 1;
                    if reason == Reason::Valid {
                        overlapped_valid += 1;
                    } else {
                        assert_eq!(reason, Reason::Revoked, "key {i}");
                    }
                }
                _ => assert!(
                    matches!(reason, Reason::Valid | Reason::Revoked),
                    "key {i}: {reason:?}"
                ),
            }
        }
        // A cheap loop: 8 verifiers flat out on 2 cores would leave the revoker a ninth of
        // the CPU (and lowering their priority instead starves their flusher while it holds
        // the write lock the revoker waits for).
        std::thread::sleep(Duration::from_micros(500));
    }
    // After the storm, every key once more.
    for (i, (_, key)) in keys.iter().enumerate() {
        if verify(key) != Reason::Revoked {
            violations += 1;
            eprintln!("key {i} not refused after the storm");
        }
    }
    store.close().unwrap();
    say_line(&format!(
        "verifies {verifies} overlapped {overlapped} overlapped_valid {overlapped_valid} \
         first_checks {first_checks} violations {violations}"
    ));
}

/// Revokes every key in order, writing `begin i` to the log before each call and `end i`
/// after it returned, then `stop`.
fn storm_revoker(path: &Path, args: &[String]) {
    let keys = read_id_keys(&args[2]);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&args[3])
        .unwrap();
    let store = Store::open(path, options(Duration::from_millis(200))).unwrap();
    say_line("ready");
    wait_for_go();
    let started = Instant::now();
    for (i, (id, _)) in keys.iter().enumerate() {
        log.write_all(format!("begin {i}\n").as_bytes()).unwrap();
        store.revoke(id, Some("storm")).unwrap();
        log.write_all(format!("end {i}\n").as_bytes()).unwrap();
    }
    let elapsed = started.elapsed();
    log.write_all(b"stop\n").unwrap();
    store.close().unwrap();
    say_line(&format!(
        "revoked {} ms {}",
        keys.len(),
        elapsed.as_millis()
    ));
}

fn revoke_storm() {
    let key_count: usize = std::env::var("KEYWARD_STORM_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let verifier_count: usize = std::env::var("KEYWARD_STORM_VERIFIERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let created = store
        .create_many(
            (0..key_count)
                .map(|i| new_key(&format!("storm_{i}")))
                .collect(),
        )
        .unwrap();
    drop(store);
    let key_file = dir.path().join("storm_keys.txt");
    let listing: Vec<String> = created
        .iter()
        .map(|c| format!("{} {}", c.id(), c.key()))
        .collect();
    std::fs::write(&key_file, listing.join("\n")).unwrap();
    let log = dir.path().join("storm.log");
    std::fs::write(&log, "").unwrap();
    let mut verifiers: Vec<Worker> = (0..verifier_count)
        .map(|v| {
            let start = v * key_count / verifier_count;
            Worker::spawn(&[
                "storm_verify",
                path_arg(&path),
                path_arg(&key_file),
                path_arg(&log),
                &start.to_string(),
            ])
        })
        .collect();
    for w in &mut verifiers {
        assert_eq!(w.read(), "ready");
    }
    for w in &mut verifiers {
        w.send("go");
    }
    let mut revoker = Worker::spawn(&[
        "storm_revoke",
        path_arg(&path),
        path_arg(&key_file),
        path_arg(&log),
    ]);
    assert_eq!(revoker.read(), "ready");
    revoker.send("go");
    let revoked = revoker.read();
    revoker.finish();
    let revoke_ms: u64 = revoked.rsplit(' ').next().unwrap().parse().unwrap();
    let (mut verifies, mut overlapped, mut overlapped_valid, mut first_checks) = (0, 0, 0, 0);
    for mut w in verifiers {
        let report = w.read();
        let words: Vec<&str> = report.split_whitespace().collect();
        let number = |i: usize| words[i].parse::<u64>().unwrap();
        assert_eq!(
            number(9),
            0,
            "a key was accepted after its revoke returned: {report}"
        );
        assert_eq!(number(7), key_count as u64, "{report}");
        verifies += number(1);
        overlapped += number(3);
        overlapped_valid += number(5);
        first_checks += number(7);
        w.finish();
    }
    // The race really ran: verifies landed inside revoke calls.
    assert!(
        overlapped > 0,
        "no verify overlapped a revoke: the test proved nothing"
    );
    println!(
        "  revoke_storm: {verifier_count} verifiers x {key_count} keys, {key_count} revokes in \
         {revoke_ms} ms; {verifies} verifies, {overlapped} inside a revoke call \
         ({overlapped_valid} VALID, {} REVOKED), {first_checks} first verifies after a revoke \
         returned: 0 accepts",
        overlapped - overlapped_valid
    );
}

// ------------------------------------------------------------------ table crash

/// The failpoints of the shared table's writer and of the flusher (see `src/failpoint.rs`).
const FAILPOINTS: [&str; 4] = [
    "table-after-mark",
    "table-after-commit",
    "flush-before-commit",
    "flush-after-commit",
];
/// Verifies of the counted key per round of the table workload.
const COUNTED_PER_ROUND: u64 = 20;
/// Rounds between two flushes of the table workload.
const ROUNDS_PER_FLUSH: u64 = 3;

/// Mixes create / revoke / update scopes / verify / flush until its failpoint kills it.
/// Before each operation it prints `doing <op> <counted verifies so far> [id] [scope]`, after
/// it returned an acknowledgement (`created id key`, `revoked id`, `scoped id scope`,
/// `flushed <counted verifies>`).
fn table_worker(path: &Path, args: &[String]) {
    let counted = &args[2];
    // Live keys it may change: `id key scope`.
    let mut live: Vec<(String, String, String)> = std::fs::read_to_string(&args[3])
        .unwrap()
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            (words[0].into(), words[1].into(), words[2].into())
        })
        .collect();
    let mut seed: u64 = args[4].parse().unwrap();
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let store = Store::open(path, options(Duration::ZERO)).unwrap();
    let mut revoked: Vec<String> = Vec::new();
    let mut verified: u64 = 0;
    for round in 1u64.. {
        for _ in 0..COUNTED_PER_ROUND {
            assert!(store.verify(counted, &["read"]).unwrap().is_valid());
            verified += 1;
        }
        if round % ROUNDS_PER_FLUSH == 0 {
            say_line(&format!("doing flush {verified}"));
            store.flush().unwrap();
            say_line(&format!("flushed {verified}"));
            continue;
        }
        let dice = rand() % 8;
        if dice < 3 || live.len() < 2 {
            say_line(&format!("doing create {verified}"));
            let created = store.create(new_key("table_crash")).unwrap();
            say_line(&format!("created {} {}", created.id(), created.key()));
            live.push((created.id().into(), created.key().into(), "read".into()));
        } else if dice < 5 {
            let (id, key, _) = live.swap_remove((rand() % live.len() as u64) as usize);
            say_line(&format!("doing revoke {verified} {id}"));
            store.revoke(&id, None).unwrap();
            say_line(&format!("revoked {id}"));
            revoked.push(key);
        } else if dice < 7 {
            let pick = (rand() % live.len() as u64) as usize;
            let (id, _, scope) = &mut live[pick];
            let new_scope = if scope == "read" { "write" } else { "read" };
            say_line(&format!("doing scopes {verified} {id} {new_scope}"));
            store
                .update(
                    id,
                    keyward::KeyUpdate {
                        scopes: Some(vec![new_scope.into()]),
                        ..keyward::KeyUpdate::default()
                    },
                )
                .unwrap();
            say_line(&format!("scoped {id} {new_scope}"));
            *scope = new_scope.into();
        } else {
            // This process's own changes are seen at once by its verifies.
            for (id, key, scope) in &live {
                let expected = if scope == "read" {
                    Reason::Valid
                } else {
                    Reason::InsufficientScope
                };
                assert_eq!(
                    store.verify(key, &["read"]).unwrap().reason,
                    expected,
                    "{id}"
                );
            }
            for key in &revoked {
                assert_eq!(
                    store.verify(key, &["read"]).unwrap().reason,
                    Reason::Revoked
                );
            }
        }
    }
}

/// What the checker knows of a key from acknowledgements (and from the database, for the
/// operation in flight at the kill).
struct ModelKey {
    key: String,
    revoked: bool,
    scope: String,
}

impl ModelKey {
    fn expected(&self) -> Reason {
        if self.revoked {
            Reason::Revoked
        } else if self.scope != "read" {
            Reason::InsufficientScope
        } else {
            Reason::Valid
        }
    }
}

/// The shared table as its file holds it, read without mapping it (layout in
/// `src/table/mod.rs`: a header of 512 words — generation at word 2, slot count at word 4,
/// intent-list length at word 14 — then 4 words per slot, its `seq` first, odd = in doubt).
struct TableFile {
    generation: u64,
    in_doubt: usize,
    intents: u64,
}

fn read_table_file(db: &Path) -> TableFile {
    use std::os::unix::fs::FileExt;
    let mut name = db.as_os_str().to_owned();
    name.push(".kwtable");
    let file = std::fs::File::open(PathBuf::from(name)).unwrap();
    let word = |i: u64| {
        let mut bytes = [0u8; 8];
        file.read_exact_at(&mut bytes, i * 8).unwrap();
        u64::from_le_bytes(bytes)
    };
    let slots = word(4);
    let mut bytes = vec![0u8; slots as usize * 32];
    file.read_exact_at(&mut bytes, 512 * 8).unwrap();
    let in_doubt = bytes
        .chunks_exact(32)
        .filter(|slot| u64::from_le_bytes(slot[..8].try_into().unwrap()) & 1 == 1)
        .count();
    TableFile {
        generation: word(2),
        in_doubt,
        intents: word(14),
    }
}

/// What the cycles of one failpoint reached.
#[derive(Default)]
struct PointTally {
    cycles: u64,
    /// The killed worker left slots in doubt in the table file.
    left_in_doubt: u64,
    /// The checker repaired slots or applied changes the worker committed but never applied.
    repaired: u64,
    slots_repaired: u64,
    /// The operation in flight at the kill was found done in the database.
    landed: u64,
    /// Operations in flight at the kill: create, revoke, update scopes.
    in_flight: [u64; 3],
    /// Flush points: the counts of the killed flush landed / were lost.
    counts_landed: u64,
    counts_lost: u64,
}

fn table_crash() {
    use std::os::unix::process::ExitStatusExt;

    let cycles: usize = std::env::var("KEYWARD_TABLE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let counted = store.create(new_key("counted")).unwrap();
    // The checker's own write after each kill (the write that repairs what the worker left).
    let probe = store.create(new_key("probe")).unwrap();
    drop(store);
    let candidates = dir.path().join("candidates.txt");
    let mut model: HashMap<String, ModelKey> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut unacknowledged_keys = 0u64; // creates that landed without an acknowledgement
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut tallies: [PointTally; 4] = Default::default();
    let mut stored_uses = 0u64;
    let mut window = 0usize;
    for cycle in 0..cycles {
        let p = cycle % FAILPOINTS.len();
        let point = FAILPOINTS[p];
        // Writes (table points) or flushes (flush points) to let pass before the kill.
        let skip = rand() % if p < 2 { 8 } else { 4 };
        let mut live: Vec<&String> = order.iter().filter(|id| !model[*id].revoked).collect();
        let mut offered = Vec::new();
        while offered.len() < 16 && !live.is_empty() {
            let id = live.swap_remove((rand() % live.len() as u64) as usize);
            let k = &model[id];
            offered.push(format!("{id} {} {}", k.key, k.scope));
        }
        std::fs::write(&candidates, offered.join("\n")).unwrap();
        let mut worker = Worker::spawn_with_env(
            &[
                "table_workload",
                path_arg(&path),
                counted.key(),
                path_arg(&candidates),
                &rand().to_string(),
            ],
            &[
                ("KEYWARD_FAILPOINT", point.to_owned()),
                ("KEYWARD_FAILPOINT_SKIP", skip.to_string()),
            ],
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut worker.output, &mut text).unwrap();
        let status = worker.child.wait().unwrap();
        let context = format!("cycle {cycle} ({point}, skip {skip})");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{context}: the worker was not killed by its failpoint: {status}"
        );
        // Acknowledgements, and the operation in flight at the kill.
        let mut touched: Vec<String> = Vec::new();
        let mut in_flight: Option<Vec<String>> = None;
        let (mut acked_flush, mut verified_at_kill) = (0u64, 0u64);
        let whole_lines = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
        for line in whole_lines.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[0] {
                "doing" => {
                    assert!(in_flight.is_none(), "{context}: {line}");
                    verified_at_kill = words[2].parse().unwrap();
                    if let Some(id) = words.get(3) {
                        touched.push((*id).to_owned());
                    }
                    in_flight = Some(words.iter().map(|w| (*w).to_owned()).collect());
                    continue;
                }
                "created" => {
                    model.insert(
                        words[1].into(),
                        ModelKey {
                            key: words[2].into(),
                            revoked: false,
                            scope: "read".into(),
                        },
                    );
                    order.push(words[1].into());
                    touched.push(words[1].into());
                }
                "revoked" => model.get_mut(words[1]).unwrap().revoked = true,
                "scoped" => model.get_mut(words[1]).unwrap().scope = words[2].into(),
                "flushed" => acked_flush = words[1].parse().unwrap(),
                other => panic!("{context}: unexpected line {other}"),
            }
            in_flight = None;
        }
        let in_flight = in_flight.unwrap_or_else(|| panic!("{context}: killed between operations"));
        let op = in_flight[1].as_str();
        // The failpoint fired in the step it names.
        if p < 2 {
            assert!(
                matches!(op, "create" | "revoke" | "scopes"),
                "{context}: {op}"
            );
        } else {
            assert_eq!(op, "flush", "{context}");
        }
        let tally = &mut tallies[p];
        tally.cycles += 1;
        if let Some(i) = ["create", "revoke", "scopes"].iter().position(|o| *o == op) {
            tally.in_flight[i] += 1;
        }
        // The table as the killed worker left it, before any process touches it.
        let left = read_table_file(&path);
        if left.in_doubt > 0 {
            tally.left_in_doubt += 1;
        }

        let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        // The operation in flight: whole or absent in the database; the model follows it.
        match op {
            "create" => {
                let known = model.len() as u64 + 2 + unacknowledged_keys;
                let stored = store.all_keys().unwrap().len() as u64;
                assert!(
                    stored == known || stored == known + 1,
                    "{context}: {stored} keys stored, {known} known"
                );
                if stored == known + 1 {
                    unacknowledged_keys += 1;
                    tally.landed += 1;
                }
            }
            "revoke" => {
                let id = &in_flight[3];
                if store.get(id).unwrap().revoked_at.is_some() {
                    model.get_mut(id).unwrap().revoked = true;
                    tally.landed += 1;
                }
            }
            "scopes" => {
                let (id, new_scope) = (&in_flight[3], &in_flight[4]);
                let scopes = store.get(id).unwrap().scopes;
                let entry = model.get_mut(id).unwrap();
                if scopes == std::slice::from_ref(new_scope) {
                    entry.scope = new_scope.clone();
                    tally.landed += 1;
                } else {
                    assert_eq!(
                        scopes,
                        std::slice::from_ref(&entry.scope),
                        "{context}: {id} half-updated"
                    );
                }
            }
            _ => {}
        }
        // Every acknowledged change, and the one in flight as the database holds it: first
        // while the slots the worker left in doubt are answered from redb, then after the
        // repair from the table. Every key while there are few; then this cycle's keys and a
        // window of 500 that moves on each cycle.
        let check_ids: Vec<&String> = if order.len() <= 1500 {
            order.iter().collect()
        } else {
            window = (window + 500) % order.len();
            let mut ids: Vec<&String> = order.iter().cycle().skip(window).take(500).collect();
            ids.extend(touched.iter().filter(|id| model.contains_key(*id)));
            ids
        };
        let check = |store: &Store, when: &str| {
            for id in &check_ids {
                let k = &model[*id];
                let reason = store.verify(&k.key, &["read"]).unwrap().reason;
                assert_eq!(reason, k.expected(), "{context}, {when}: key {id}");
            }
        };
        check(&store, "before the checker's write");
        // Use counts: the worker's acknowledged flushes at least, at most every verify it
        // made (one interval past the last acknowledged flush).
        let uses = store.usage(counted.id()).unwrap().uses;
        assert!(
            verified_at_kill - acked_flush <= COUNTED_PER_ROUND * ROUNDS_PER_FLUSH,
            "{context}"
        );
        assert!(
            uses >= stored_uses + acked_flush,
            "{context}: {uses} uses, {} acknowledged as flushed",
            stored_uses + acked_flush
        );
        assert!(
            uses <= stored_uses + verified_at_kill,
            "{context}: {uses} uses, only {} verifies made",
            stored_uses + verified_at_kill
        );
        if p < 2 {
            // Killed outside a flush: a verifier's counts are in the shared table, all of them.
            assert_eq!(
                uses,
                stored_uses + verified_at_kill,
                "{context}: counts of a killed verifier lost"
            );
        } else if uses == stored_uses + verified_at_kill {
            tally.counts_landed += 1;
        } else {
            tally.counts_lost += 1;
        }
        // The checker's next write repairs what the worker left.
        store
            .update(
                probe.id(),
                keyward::KeyUpdate {
                    name: Some(format!("probe {cycle}")),
                    ..keyward::KeyUpdate::default()
                },
            )
            .unwrap();
        let stats = store.stats().unwrap();
        let after = read_table_file(&path);
        assert_eq!(
            (after.in_doubt, after.intents),
            (0, 0),
            "{context}: slots still in doubt after the checker's write"
        );
        assert!(stats.table.mapped, "{context}");
        assert_eq!(stats.table.generation, after.generation, "{context}");
        assert_eq!(
            stats.table.keys,
            model.len() as u64 + 2 + unacknowledged_keys,
            "{context}: the table's key count"
        );
        // `refreshes` counts this process's first mapping; more means a catch-up or a remap.
        if stats.table.slots_repaired > 0 || stats.refreshes > 1 {
            tally.repaired += 1;
        }
        tally.slots_repaired += stats.table.slots_repaired;
        check(&store, "after the checker's write");
        store.flush().unwrap();
        let stored = store.usage(counted.id()).unwrap().uses;
        assert_eq!(stored, uses, "{context}: the flush changed the count");
        stored_uses = stored;
        drop(store);
    }
    // At the end, every key.
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    for (id, k) in &model {
        let reason = store.verify(&k.key, &["read"]).unwrap().reason;
        assert_eq!(reason, k.expected(), "at the end: key {id}");
    }
    let revoked = model.values().filter(|k| k.revoked).count();
    let keys = model.len();
    drop(store);
    assert!(Store::check_integrity(&path).unwrap());
    // Slots in doubt were really left and repaired in the writer's cycles.
    for (p, tally) in tallies.iter().enumerate().take(2) {
        assert!(
            tally.repaired * 4 >= tally.cycles * 3,
            "{}: repair reached in only {} of {} cycles",
            FAILPOINTS[p],
            tally.repaired,
            tally.cycles
        );
    }
    println!(
        "  table_crash: {cycles} SIGKILL cycles, {keys} keys ({revoked} revoked), {stored_uses} \
         uses of the counted key, 0 wrong verdicts"
    );
    for (point, t) in FAILPOINTS.iter().zip(&tallies) {
        println!(
            "    {point}: {} cycles (in flight: {} creates, {} revokes, {} rescopes), slots left \
             in doubt in {}, repair needed in {} ({} slots), operation in flight landed in {}, \
             killed flush's counts landed {} / lost {}",
            t.cycles,
            t.in_flight[0],
            t.in_flight[1],
            t.in_flight[2],
            t.left_in_doubt,
            t.repaired,
            t.slots_repaired,
            t.landed,
            t.counts_landed,
            t.counts_lost
        );
    }
}

/// A process that closes its store and exits at once keeps every count: its own, and those
/// of other processes its flusher had taken out of the shared cells. Each of `cycles` children
/// (`KEYWARD_CLOSE_EXIT_CYCLES`, default 20) opens the store with a 1 ms background flusher
/// (holding the host's flush lease: the parent runs none) whose flushes each pause 30 ms
/// between taking their batch and committing it, verifies once, waits for its flusher's first
/// batch, closes and exits; meanwhile a parent thread verifies without pause, so the shared
/// cell always holds counts for the child's flusher to take. The flusher holds the engine for
/// a whole pass and waits on the flush lock during the close's own flush: the close used to
/// return with the engine still alive on the flusher thread, whose next pass (or the engine's
/// final flush) took the parent's counts and was cut short by the exit.
fn close_then_exit_keeps_counts() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let cycles: u64 = std::env::var("KEYWARD_CLOSE_EXIT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (_dir, path) = temp_db();
    let store = Store::open(&path, options(Duration::ZERO)).unwrap();
    let key = store.create(new_key("exits")).unwrap();
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
    let mut overlapped = 0;
    for _ in 0..cycles {
        let mut child = Worker::spawn(&["close_and_exit", path_arg(&path), key.key(), "30"]);
        assert_eq!(child.read(), "closing");
        let before = verifies.load(Ordering::Acquire);
        assert_eq!(child.read(), "closed");
        // The parent counted while the child closed: there were counts for its flusher.
        if verifies.load(Ordering::Acquire) != before {
            overlapped += 1;
        }
        child.finish();
    }
    stop.store(true, Ordering::Release);
    busy.join().unwrap();
    assert!(
        overlapped * 2 >= cycles,
        "the parent verified during only {overlapped} of {cycles} closes"
    );
    store.flush().unwrap();
    let uses = store.usage(key.id()).unwrap().uses;
    let expected = verifies.load(Ordering::Acquire) + cycles;
    assert_eq!(uses, expected, "uses counted, uses made");
    println!(
        "  close_then_exit_keeps_counts: {cycles} children closed and exited while their \
         flusher held a batch, the parent verified during {overlapped} closes; {uses} uses, exact"
    );
}

fn killed_verifier_keeps_counts() {
    use std::os::unix::process::ExitStatusExt;

    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let created = store
        .create_many((0..10).map(|i| new_key(&format!("counts_{i}"))).collect())
        .unwrap();
    drop(store);
    let key_file = dir.path().join("keys.txt");
    let listing: Vec<&str> = created.iter().map(|c| c.key()).collect();
    std::fs::write(&key_file, listing.join("\n")).unwrap();
    let rounds = 100; // 10 keys x 100 = 1,000 verifies per child
    let children = 2;
    let mut workers: Vec<Worker> = (0..children)
        .map(|_| {
            Worker::spawn(&[
                "verify_and_wait",
                path_arg(&path),
                path_arg(&key_file),
                &rounds.to_string(),
            ])
        })
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), format!("valid {}", 10 * rounds));
    }
    for w in &mut workers {
        w.child.kill().unwrap(); // SIGKILL
        let status = w.child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
    drop(workers);
    let expected = (children * rounds) as u64;
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    // Nothing was flushed: every count is pending in the shared table.
    assert_eq!(store.stats().unwrap().dirty_keys, created.len());
    for key in &created {
        assert_eq!(
            store.usage(key.id()).unwrap().uses,
            expected,
            "{}",
            key.id()
        );
    }
    store.flush().unwrap();
    assert_eq!(store.stats().unwrap().dirty_keys, 0);
    drop(store);
    // Stored now: a fresh handle reads them from the database.
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    for key in &created {
        let usage = store.usage(key.id()).unwrap();
        assert_eq!(usage.uses, expected, "{}", key.id());
        assert!(usage.last_used.is_some());
    }
    println!(
        "  killed_verifier_keeps_counts: {children} verifiers x {} verifies, SIGKILLed unflushed; \
         {} keys each exactly {expected} pending, then stored",
        10 * rounds,
        created.len()
    );
}

/// Defect 16 (RELIABILITY.md), fixed: a writer SIGKILLed at `table-after-mark` leaves a key's
/// slot in doubt. (1) A process with a background flusher repairs it (it did not while the
/// dead writer's lease word was set). (2) Verifies of the key meanwhile are answered from redb
/// and counted in the key's shared cell (they were counted in the verifier's process memory,
/// and a verifier SIGKILLed before its own flush lost them all).
fn in_doubt_slot_repaired_and_counted() {
    use std::os::unix::process::ExitStatusExt;
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let key = store.create(new_key("doubt")).unwrap();
    drop(store);
    let mut writer = Worker::spawn_with_env(
        &["rename", path_arg(&path), key.id()],
        &[("KEYWARD_FAILPOINT", "table-after-mark".to_owned())],
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut writer.output, &mut text).unwrap();
    assert_eq!(writer.child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(read_table_file(&path).in_doubt, 1);
    let key_file = dir.path().join("keys.txt");
    std::fs::write(&key_file, key.key()).unwrap();
    let mut verifier = Worker::spawn(&[
        "verify_and_wait",
        path_arg(&path),
        path_arg(&key_file),
        "1000",
    ]);
    assert_eq!(verifier.read(), "valid 1000");
    verifier.child.kill().unwrap();
    verifier.child.wait().unwrap();
    let flushing = Store::open_unshared(&path, options(Duration::from_millis(50))).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let left = read_table_file(&path).in_doubt;
    drop(flushing);
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    store
        .update(
            key.id(),
            keyward::KeyUpdate {
                name: Some("repaired".into()),
                ..keyward::KeyUpdate::default()
            },
        )
        .unwrap();
    store.flush().unwrap();
    let uses = store.usage(key.id()).unwrap().uses;
    println!(
        "  in_doubt_slot_repaired_and_counted: slots in doubt after 1 s of a 50 ms flusher: {left}; \
         uses of 1,000 verifies made while in doubt by a SIGKILLed verifier: {uses}"
    );
    assert_eq!(
        left, 0,
        "the background flusher did not repair the dead writer's slot"
    );
    assert_eq!(
        uses, 1000,
        "a SIGKILLed verifier lost the counts it made while in doubt"
    );
}

/// Sanctum tokens made as Sanctum makes them (`Str::random(40)` + `hash('crc32b', …)`): the
/// `personal_access_tokens` export and the `<id>|<token>` texts the clients hold.
fn sanctum_export(n: usize) -> (String, Vec<String>) {
    use sha2::Digest as _;
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut csv = String::from("id,tokenable_id,token,abilities,created_at\n");
    let mut keys = Vec::with_capacity(n);
    for i in 1..=n {
        let entropy: String = (0..40)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ALNUM[(state % 62) as usize] as char
            })
            .collect();
        let token = format!("{entropy}{:08x}", crc32fast::hash(entropy.as_bytes()));
        let hash: String = sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        csv.push_str(&format!(
            "{i},7,{hash},\"[\"\"read\"\"]\",2025-01-01 00:00:00\n"
        ));
        keys.push(format!("{i}|{token}"));
    }
    (csv, keys)
}

fn legacy_upgrade_race() {
    const KEYS: usize = 50;
    const ROUNDS: usize = 20;
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let (csv, keys) = sanctum_export(KEYS);
    let report = store
        .import_legacy(
            keyward::LegacyScheme::Sanctum,
            csv.as_bytes(),
            &keyward::LegacyImportOptions::default(),
        )
        .unwrap();
    assert_eq!(report.imported, KEYS);
    drop(store);
    let list = dir.path().join("legacy-keys.txt");
    std::fs::write(&list, keys.join("\n")).unwrap();
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            Worker::spawn(&[
                "count",
                path_arg(&path),
                list.to_str().unwrap(),
                &ROUNDS.to_string(),
            ])
        })
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), "ready");
    }
    for w in &mut workers {
        w.send("go");
    }
    let mut valid = 0;
    for w in &mut workers {
        let reply = w.read();
        valid += reply
            .strip_prefix("valid ")
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    for w in workers {
        w.finish();
    }
    assert_eq!(valid, WORKERS * ROUNDS * KEYS, "every verify VALID");
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let events = store
        .audit(&keyward::AuditQuery {
            limit: 1000,
            ..keyward::AuditQuery::default()
        })
        .unwrap()
        .events;
    let upgrades = events
        .iter()
        .filter(|e| e.action == keyward::AuditAction::Update && e.changed == ["upgraded_at"])
        .count();
    assert_eq!(upgrades, KEYS, "each key upgraded exactly once");
    let mut uses = 0;
    for i in 1..=KEYS {
        let id = keyward::legacy_key_id(keyward::LegacyScheme::Sanctum, &i.to_string());
        let info = store.get(id.as_str()).unwrap();
        assert!(info.legacy.unwrap().upgraded_at.is_some());
        uses += store.usage(id.as_str()).unwrap().uses;
    }
    assert_eq!(uses as usize, WORKERS * ROUNDS * KEYS, "every use counted");
    println!(
        "  legacy_upgrade_race: {valid} VALID over {WORKERS} processes, {upgrades} upgrades for {KEYS} keys, {uses} uses counted"
    );
}

// ------------------------------------------------------------------ owner controls

/// The owner changes of `owner_storm`, in turn, with the answer a key of the changed owner
/// (scope `read`, verified for `read`) must give once the change returned.
const OWNER_STEPS: [(&str, Reason); 4] = [
    ("suspend", Reason::OwnerSuspended),
    ("resume", Reason::Valid),
    ("restrict", Reason::InsufficientScope),
    ("unrestrict", Reason::Valid),
];

/// Verifies the changed owner's key and the other owner's key in a loop. On reading that a
/// change returned, its first verify of the changed owner's key must give the change's answer;
/// it reports `checked <step> <violations so far>` on stdout, and the next change starts only
/// after every verifier reported (so a later change cannot be what it sees). Stops on `stop`.
fn owner_verifier(path: &Path, args: &[String]) {
    let (target, bystander) = (&args[2], &args[3]);
    let mut tail = LogTail::new(Path::new(&args[4]));
    let store = Store::open(path, options(Duration::from_secs(1))).unwrap();
    say_line("ready");
    let verify = |key: &str| store.verify(key, &["read"]).unwrap().reason;
    // What the target key must answer now: `None` while a change is in progress.
    let mut expected = Some(Reason::Valid);
    // While a change is in progress: the answers before and after it.
    let mut either = (Reason::Valid, Reason::Valid);
    let (mut verifies, mut overlapped, mut first_checks, mut violations) = (0u64, 0u64, 0u64, 0u64);
    let mut stopped = false;
    while !stopped {
        // A verify, then the log: a change that began meanwhile may be what it saw.
        let got = verify(target);
        verifies += 1;
        let lines = tail.poll();
        let racing = lines.first().is_some_and(|l| l.starts_with("begin"));
        match expected {
            Some(want) if !racing && got != want => {
                violations += 1;
                eprintln!("answered {got:?} while {want:?} was settled");
            }
            Some(_) if !racing => {}
            _ => overlapped += 1,
        }
        for line in lines {
            match line.split_once(' ') {
                Some(("begin", step)) => {
                    let step: usize = step.parse().unwrap();
                    either = (OWNER_STEPS[(step + 3) % 4].1, OWNER_STEPS[step % 4].1);
                    // The verify before this poll: the answer before or after the change.
                    if got != either.0 && got != either.1 {
                        violations += 1;
                        eprintln!("answered {got:?} before reading {line:?}");
                    }
                    expected = None;
                }
                Some(("end", step)) => {
                    let want = OWNER_STEPS[step.parse::<usize>().unwrap() % 4].1;
                    expected = Some(want);
                    let got = verify(target);
                    verifies += 1;
                    first_checks += 1;
                    if got != want {
                        violations += 1;
                        eprintln!("first verify after {line:?} answered {got:?}, not {want:?}");
                    }
                    say_line(&format!("checked {step} {violations}"));
                }
                None if line == "stop" => stopped = true,
                _ => panic!("unexpected log line {line:?}"),
            }
        }
        if expected.is_none() {
            // Inside a change call: either answer.
            let got = verify(target);
            verifies += 1;
            overlapped += 1;
            if got != either.0 && got != either.1 {
                violations += 1;
                eprintln!("answered {got:?} during a change from {either:?}");
            }
        }
        // The other owner is never touched.
        if verify(bystander) != Reason::Valid {
            violations += 1;
            eprintln!("the other owner's key was refused");
        }
        verifies += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
    store.close().unwrap();
    say_line(&format!(
        "verifies {verifies} overlapped {overlapped} first_checks {first_checks} violations {violations}"
    ));
}

fn owner_storm() {
    let rounds = 60;
    let (dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let target = store.create(new_key("acct_target")).unwrap();
    let bystander = store.create(new_key("acct_other")).unwrap();
    drop(store);
    let log_path = dir.path().join("owners.log");
    std::fs::write(&log_path, "").unwrap();
    let mut verifiers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            Worker::spawn(&[
                "owner_verify",
                path_arg(&path),
                target.key(),
                bystander.key(),
                path_arg(&log_path),
            ])
        })
        .collect();
    for w in &mut verifiers {
        assert_eq!(w.read(), "ready");
    }
    // This process makes the changes (another process than every verifier).
    let changer = Store::open_unshared(&path, options(Duration::from_millis(200)))
        .unwrap()
        .with_actor("owner-storm")
        .unwrap();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    for step in 0..rounds {
        log.write_all(format!("begin {step}\n").as_bytes()).unwrap();
        let owner = "acct_target";
        match OWNER_STEPS[step % 4].0 {
            "suspend" => changer.suspend_owner(owner, Some("storm")).map(|_| ()),
            "resume" => changer.resume_owner(owner).map(|_| ()),
            "restrict" => changer
                .set_owner_scopes(owner, Some(&["write"]))
                .map(|_| ()),
            _ => changer.set_owner_scopes::<&str>(owner, None).map(|_| ()),
        }
        .unwrap();
        log.write_all(format!("end {step}\n").as_bytes()).unwrap();
        for w in &mut verifiers {
            let ack = w.read();
            assert!(ack.starts_with(&format!("checked {step} ")), "{ack}");
        }
    }
    log.write_all(b"stop\n").unwrap();
    let (mut verifies, mut overlapped, mut first_checks) = (0, 0, 0);
    for mut w in verifiers {
        let report = w.read();
        let words: Vec<&str> = report.split_whitespace().collect();
        let number = |i: usize| words[i].parse::<u64>().unwrap();
        assert_eq!(number(7), 0, "a stale owner answer: {report}");
        assert_eq!(number(5), rounds as u64, "{report}");
        verifies += number(1);
        overlapped += number(3);
        first_checks += number(5);
        w.finish();
    }
    assert!(
        overlapped > 0,
        "no verify overlapped an owner change: the test proved nothing"
    );
    // Every change is in the audit log, with the changer's actor.
    let events = changer
        .audit(&keyward::AuditQuery {
            owner: Some("acct_target".into()),
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .events;
    let events: Vec<_> = events.into_iter().filter(|e| e.key_id.is_none()).collect();
    assert_eq!(events.len(), rounds);
    assert!(
        events
            .iter()
            .all(|e| e.actor.as_deref() == Some("owner-storm"))
    );
    println!(
        "  owner_storm: {WORKERS} verifiers, {rounds} owner changes; {verifies} verifies, \
         {overlapped} inside a change call, {first_checks} first verifies after a change \
         returned: 0 stale answers"
    );
}

fn owner_crash() {
    for (failpoint, committed) in [("owner-after-mark", false), ("owner-after-commit", true)] {
        let (_dir, path) = temp_db();
        let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        let key = store.create(new_key("acct_crash")).unwrap();
        assert_eq!(
            store.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Valid
        );
        let mut child = Worker::spawn_with_env(
            &["suspend", path_arg(&path), "acct_crash"],
            &[("KEYWARD_FAILPOINT", failpoint.to_owned())],
        );
        let status = child.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "{failpoint}: the child was not killed"
        );
        // The epoch is left in doubt: this process answers from the committed state.
        let want = if committed {
            Reason::OwnerSuspended
        } else {
            Reason::Valid
        };
        for _ in 0..3 {
            assert_eq!(
                store.verify(key.key(), &["read"]).unwrap().reason,
                want,
                "{failpoint}"
            );
        }
        // The next change repairs the epoch, and is seen.
        store.resume_owner("acct_crash").unwrap();
        assert_eq!(
            store.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Valid
        );
        store.suspend_owner("acct_crash", None).unwrap();
        assert_eq!(
            store.verify(key.key(), &["read"]).unwrap().reason,
            Reason::OwnerSuspended
        );
        // The killed change left an audit event exactly when it committed.
        let events = store.audit(&keyward::AuditQuery::default()).unwrap().events;
        let suspends = events
            .iter()
            .filter(|e| e.action == keyward::AuditAction::OwnerSuspend)
            .count();
        assert_eq!(suspends, if committed { 2 } else { 1 }, "{failpoint}");
    }
    println!(
        "  owner_crash: owner-after-mark and owner-after-commit: committed state answered, repaired"
    );
}

// ------------------------------------------------------------------ rate limits (issue 19)

const RATE_PROCESSES: usize = 8;

/// 8 processes hammer `keys` for `KEYWARD_RATE_SECS` (default 1) seconds; the limit is
/// 1,000/s with burst 100 (on the key or on the owner).
fn rate_hammer(label: &str, path: &Path, keys: &[(String, String)]) {
    let long_run = std::env::var("KEYWARD_RATE_SECS").ok();
    let secs: f64 = long_run
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let keys_file = path.with_extension("keys");
    let texts: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
    std::fs::write(&keys_file, texts.join("\n")).unwrap();
    let secs_arg = secs.to_string();
    let mut workers: Vec<Worker> = (0..RATE_PROCESSES)
        .map(|_| Worker::spawn(&["rate", path_arg(path), path_arg(&keys_file), &secs_arg]))
        .collect();
    for w in &mut workers {
        assert_eq!(w.read(), "ready");
    }
    for w in &mut workers {
        w.send("go");
    }
    let (mut accepted, mut refused, mut retries) = (0u64, 0u64, 0u64);
    let (mut first, mut last) = (i64::MAX, 0i64);
    // The latest first acceptance and the earliest last one of any process.
    let (mut latest_start, mut earliest_end) = (0i64, i64::MAX);
    let mut per_process = Vec::new();
    for w in &mut workers {
        let reply = w.read();
        let words: Vec<&str> = reply.split_whitespace().collect();
        let field = |name: &str| -> i64 {
            let at = words.iter().position(|w| *w == name).unwrap();
            words[at + 1].parse().unwrap()
        };
        per_process.push(field("accepted"));
        accepted += field("accepted") as u64;
        refused += field("refused") as u64;
        retries += field("retries") as u64;
        first = first.min(field("first"));
        last = last.max(field("last"));
        latest_start = latest_start.max(field("first"));
        earliest_end = earliest_end.min(field("last_accepted"));
    }
    for w in workers {
        w.finish();
    }
    // The shared word's final value (theoretical arrival time), read back through the engine:
    // every accepted request moved it one interval (1 ms) further from the first accepted
    // request's time, plus whatever budget lapsed while no process asked. If two processes
    // had ever accepted on the same value of the word (a lost update), it would be short.
    // Read as of the last request's millisecond (a dry run: it takes nothing), so the word is
    // still ahead of the time it is judged at.
    let store = Store::open_unshared(path, options(Duration::ZERO)).unwrap();
    let at_ms = last / 1_000_000;
    let verdict = store
        .verify_request(&keyward::VerifyRequest {
            at: Some(keyward::Timestamp::from_millis(at_ms)),
            dry_run: true,
            ..keyward::VerifyRequest::key(&keys[0].0, &[])
        })
        .unwrap();
    drop(store);
    let status = verdict.rate.expect("a rate-limited key");
    let interval_ns = 1_000_000i64;
    // TAT in (at + (reset - 1) ms, at + reset ms]: whole intervals past `first`.
    let tat_low = (at_ms + status.reset_ms as i64 - 1) * interval_ns;
    let steps = (tat_low - first) / interval_ns;
    let lapsed = steps - accepted as i64;
    let bound = 100 + ((last - first) / interval_ns) as u64;
    println!(
        "  {label}: {accepted} accepted, {refused} refused by {RATE_PROCESSES} processes over \
         {:.3} s; GCRA bound {bound} (burst 100 + 1 per ms), {:.2} % of it; the word moved \
         {steps} intervals ({lapsed} lapsed while no process asked, {} of the burst unused when \
         the processes stopped); {retries} CAS retries; per process {per_process:?}; load {}",
        (last - first) as f64 / 1e9,
        accepted as f64 * 100.0 / bound as f64,
        bound as i64 - steps,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // Exact, whatever the scheduling: never more than the algorithm allows in that time...
    assert!(accepted <= bound, "{accepted} accepted > bound {bound}");
    // ...and every accepted request was one step of the word's single sequence (-1: the
    // millisecond the reset is rounded to).
    assert!(
        steps >= accepted as i64 - 1,
        "the word moved {steps} intervals for {accepted} accepted requests: a lost update"
    );
    assert!(per_process.iter().all(|&a| a > 0), "every process got some");
    // Contention: every process was still being accepted after the last of them started
    // (CAS retries, reported above, need two processes on two cores in the same few ns).
    assert!(
        latest_start < earliest_end,
        "the processes' accepted intervals overlap"
    );
    assert!(refused > accepted, "the limit was saturated");
    if long_run.is_some() {
        // The acceptance run (issue 19): within 1 % of the bound. Budget that lapses while
        // every process waits for a CPU is lost by the algorithm's definition: run it on a
        // machine that runs them.
        assert!(
            accepted as f64 >= bound as f64 * 0.99,
            "{accepted} accepted < 99 % of {bound}"
        );
    }
}

fn rate_limit_key() {
    let (_dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    let mut new = new_key("acct");
    new.scopes.clear();
    new.rate_limit = Some(RateLimit::new(1000, 1000, 100).unwrap());
    let created = store.create(new).unwrap();
    drop(store);
    rate_hammer(
        "key limit",
        &path,
        &[(created.key().to_owned(), created.id().to_owned())],
    );
}

fn rate_limit_owner() {
    let (_dir, path) = temp_db();
    let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
    store
        .set_owner_rate_limit("acct", Some(RateLimit::new(1000, 1000, 100).unwrap()))
        .unwrap();
    let keys: Vec<(String, String)> = (0..10)
        .map(|_| {
            let mut new = new_key("acct");
            new.scopes.clear();
            let created = store.create(new).unwrap();
            (created.key().to_owned(), created.id().to_owned())
        })
        .collect();
    drop(store);
    rate_hammer("owner limit over 10 keys", &path, &keys);
}

fn rate_limit_crash() {
    let at = 1_900_000_000_000i64;
    for k in 0..5usize {
        let (_dir, path) = temp_db();
        let store = Store::open_unshared(&path, options(Duration::ZERO)).unwrap();
        let mut new = new_key("acct");
        new.scopes.clear();
        // Key: 10 at once; owner: 100 at once. Nothing refills: every verify is at `at`.
        new.rate_limit = Some(RateLimit::new(10, 60_000, 10).unwrap());
        let key = store.create(new).unwrap().key().to_owned();
        store
            .set_owner_rate_limit("acct", Some(RateLimit::new(100, 60_000, 100).unwrap()))
            .unwrap();
        let mut sibling = new_key("acct");
        sibling.scopes.clear();
        let sibling = store.create(sibling).unwrap().key().to_owned();
        let mut child = Worker::spawn_with_env(
            &["rate_crash", path_arg(&path), &key, &at.to_string()],
            &[
                ("KEYWARD_FAILPOINT", "rate-between-key-and-owner".to_owned()),
                ("KEYWARD_FAILPOINT_SKIP", k.to_string()),
            ],
        );
        let mut acknowledged = 0;
        loop {
            let mut line = String::new();
            if child.output.read_line(&mut line).unwrap() == 0 {
                break;
            }
            match line.trim() {
                "VALID" => acknowledged += 1,
                "done" => panic!("the failpoint never fired"),
                other => panic!("unexpected {other}"),
            }
        }
        let status = child.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed at the failpoint");
        assert_eq!(acknowledged, k);
        fn request(key: &str, at: i64) -> keyward::VerifyRequest<'_> {
            keyward::VerifyRequest {
                at: Some(keyward::Timestamp::from_millis(at)),
                ..keyward::VerifyRequest::key(key, &[])
            }
        }
        let after = (0..20)
            .filter(|_| store.verify_request(&request(&key, at)).unwrap().is_valid())
            .count();
        // The dead process's unit stays taken: never more than the burst in all.
        assert_eq!(acknowledged + after, 10 - 1, "k = {k}");
        // The owner gave exactly the accepted requests of the key: the sibling gets the rest.
        let sibling_passed = (0..200)
            .filter(|_| {
                store
                    .verify_request(&request(&sibling, at))
                    .unwrap()
                    .is_valid()
            })
            .count();
        assert_eq!(acknowledged + after + sibling_passed, 100, "k = {k}");
    }
    println!("  rate_limit_crash: 5 kills between the key's and the owner's word, never over");
}
