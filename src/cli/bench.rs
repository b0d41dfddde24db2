//! `keyward bench`: the headline comparison, on a temporary store, in well under 30 s.
//!
//! It creates a store of `--keys` keys (100 000 by default), then verifies those same keys with
//! keyward (multi-process and single-process mode) and with each baseline of
//! [`baselines`] — the in-memory floor, SQLite + SHA-256 as Sanctum and DRF do it, and a redb
//! read transaction per verify in both redb modes — in interleaved rounds, and reports the
//! median ns per verify and each one's ratio to `keyward_multi`. Then it starts 1, 2 and 4
//! copies of this executable (`--worker`) verifying against one store file and reports their
//! aggregate verifies per second.
//!
//! `keyward bench --table` measures the shared verify table instead (issue 14's acceptance:
//! bytes per key, cold build, open in a fresh process, verify against the floor, PSS and
//! usage commits of many processes on one store): see `bench_table.rs`.
//!
//! Progress goes to stderr, only when stderr is a terminal; the table goes to stdout; `--json`
//! writes the machine-readable results to a file.

#[path = "bench_baselines.rs"]
mod baselines;
#[path = "bench_table.rs"]
mod table;

use std::fs;
use std::hint::black_box;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use keyward::{Concurrency, DEFAULT_FLUSH_INTERVAL, NewKey, Store, StoreOptions};
use serde_json::json;

use self::baselines::{Floor, RedbTxn, SqliteSha256};

/// Options of `keyward bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Write the results as JSON to this path.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Number of keys in the temporary store (and in every baseline).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub keys: usize,
    /// A fast smoke run (2 000 keys, short windows): checks the machinery, not the figures.
    #[arg(long)]
    pub quick: bool,
    /// Measure the shared verify table instead (issue 14): bytes per key, cold build, open
    /// in a fresh process, verify against the floor (uniform and hot set), PSS and usage
    /// commits of many processes on one store.
    #[arg(long)]
    pub table: bool,
    /// (--table) Processes that open the store together (PSS, commits per second).
    #[arg(long, default_value_t = 16, value_name = "N", requires = "table")]
    pub processes: usize,
    /// (--table) Fresh processes started one after another to time the open of the
    /// existing table (the median is reported).
    #[arg(long, default_value_t = 9, value_name = "N", requires = "table")]
    pub opens: usize,
    /// (--table) Cold builds (table file deleted, store opened); the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N", requires = "table")]
    pub builds: usize,
    /// (--table) The hot set, in percent of the keys.
    #[arg(long, default_value_t = 10, value_name = "PERCENT", requires = "table")]
    pub hot_percent: usize,
    /// (--table) Keys each of the --processes verifies before its PSS is read (default:
    /// as many as the hot set), spread through the table.
    #[arg(long, value_name = "N", requires = "table")]
    pub spread: Option<usize>,
    /// (--table) How long the --processes verify while their usage commits are counted, in
    /// milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS", requires = "table")]
    pub commit_millis: u64,
    /// Internal: run as one child process of `--table` (`open` or `host`).
    #[arg(long, hide = true, value_name = "MODE")]
    pub table_worker: Option<String>,
    /// Internal: run as one verifying worker process of the process-scaling measurement.
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Internal (worker): the store to open.
    #[arg(long, hide = true, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// Internal (worker): file with one key per line.
    #[arg(long, hide = true, value_name = "PATH")]
    pub keys_file: Option<PathBuf>,
    /// Internal (worker): how long to verify, in milliseconds.
    #[arg(long, hide = true, default_value_t = 2000)]
    pub millis: u64,
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The scopes every benchmark key holds and every verify asks for.
const SCOPES: &[&str] = &["read"];

/// Contenders of the per-verify comparison, in table order. `keyward_multi` comes first:
/// every ratio is against it.
const CONTENDERS: [&str; 6] = [
    "keyward_multi",
    "keyward_exclusive",
    "floor",
    "sqlite_sha256",
    "redb_txn_multiwriter",
    "redb_txn_exclusive",
];

/// Process counts of the scaling measurement.
const PROCESS_COUNTS: [usize; 3] = [1, 2, 4];

/// What a full run aims to stay within (the limit is 30 s).
const TIME_BUDGET: Duration = Duration::from_secs(27);

/// Allowance for starting workers and opening their stores, per process count.
const WORKER_OVERHEAD: Duration = Duration::from_millis(1500);

/// Verifies between two clock reads while measuring.
const BATCH: usize = 256;

/// Runs `keyward bench` (or one worker of it).
pub fn run(args: BenchArgs) -> ExitCode {
    let result = if let Some(mode) = &args.table_worker {
        table::worker(&args, mode)
    } else if args.worker {
        worker(&args)
    } else if args.table {
        table::run(&args)
    } else {
        headline(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sizes and durations of one run.
struct Plan {
    keys: usize,
    warmup: Duration,
    window: Duration,
    rounds: usize,
    process_millis: u64,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> Plan {
        if args.quick {
            Plan {
                keys: args.keys.min(2_000),
                warmup: Duration::from_millis(10),
                window: Duration::from_millis(40),
                rounds: 2,
                process_millis: 150,
            }
        } else {
            Plan {
                keys: args.keys.max(1),
                warmup: Duration::from_millis(60),
                window: Duration::from_millis(300),
                rounds: 3,
                process_millis: 1200,
            }
        }
    }
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> BenchResult<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let base = std::env::temp_dir();
        for attempt in 0..100 {
            let dir = base.join(format!(
                "keyward-bench-{}-{nanos}-{attempt}",
                std::process::id()
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(
                        format!("cannot create a directory in {}: {e}", base.display()).into(),
                    );
                }
            }
        }
        Err("cannot create a unique temporary directory".into())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Progress on stderr, drawn only when stderr is a terminal.
fn progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A deterministic permutation of `0..n` (xorshift Fisher-Yates): every contender visits the
/// keys in the same scattered order, so none of them profits from locality.
pub fn scattered_order(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut state = seed | 1;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// Options of the benchmark stores: the given mode and usage-flush interval.
fn store_options(concurrency: Concurrency, flush_interval: Duration) -> StoreOptions {
    StoreOptions {
        concurrency,
        flush_interval,
        ..StoreOptions::default()
    }
}

/// Creates `n` keys in `store` (bulk transactions) and returns their texts.
fn create_keys(store: &Store, n: usize, bar: &ProgressBar) -> BenchResult<Vec<String>> {
    const CHUNK: usize = 20_000;
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let batch: Vec<NewKey> = (keys.len()..n.min(keys.len() + CHUNK))
            .map(|i| NewKey {
                owner: format!("acct_{}", i % 1000),
                name: format!("bench key {i}"),
                scopes: vec!["read".into()],
                env: None,
                ..NewKey::default()
            })
            .collect();
        for created in store.create_many(batch)? {
            keys.push(created.key().to_owned());
        }
        bar.set_message(format!("creating keys: {}/{n}", keys.len()));
    }
    Ok(keys)
}

/// One measured window.
struct Sample {
    /// Wall-clock ns per verify.
    wall_ns: f64,
    /// On-CPU ns per verify (this thread's run time), when the kernel exposes it.
    cpu_ns: Option<f64>,
    /// Verifies done.
    ops: u64,
}

/// This thread's time on a CPU so far, in ns (`/proc/thread-self/schedstat`, first field). On
/// a loaded machine it excludes the time the thread waited to be scheduled, which wall-clock
/// figures silently include. Updated by the kernel at least every scheduler tick.
fn thread_cpu_ns() -> Option<u64> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Verifies keys in `order` (continuing at `*cursor`) for `window`.
/// Fails if any valid key is refused (the contender would be measuring the wrong thing).
fn measure(
    name: &str,
    keys: &[String],
    order: &[u32],
    cursor: &mut usize,
    window: Duration,
    mut verify: impl FnMut(&str) -> bool,
) -> BenchResult<Sample> {
    let mut ops = 0u64;
    let mut refused = 0u64;
    let cpu_begin = thread_cpu_ns();
    let begin = Instant::now();
    loop {
        for _ in 0..BATCH {
            let key = &keys[order[*cursor] as usize];
            *cursor += 1;
            if *cursor == order.len() {
                *cursor = 0;
            }
            if !black_box(verify(black_box(key))) {
                refused += 1;
            }
        }
        ops += BATCH as u64;
        let elapsed = begin.elapsed();
        if elapsed >= window {
            if refused > 0 {
                return Err(format!("{name} refused {refused} of {ops} valid keys").into());
            }
            let cpu_ns = match (cpu_begin, thread_cpu_ns()) {
                (Some(a), Some(b)) if b > a => Some((b - a) as f64 / ops as f64),
                _ => None,
            };
            return Ok(Sample {
                wall_ns: elapsed.as_nanos() as f64 / ops as f64,
                cpu_ns,
                ops,
            });
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Writes a store's pending usage and returns how long it took.
fn timed_flush(store: &Store) -> BenchResult<Duration> {
    let begin = Instant::now();
    store.flush()?;
    Ok(begin.elapsed())
}

/// Copies a closed store (database and pepper file) to `to`.
fn copy_store(from: &Path, to: &Path) -> BenchResult<()> {
    fs::copy(from, to)?;
    fs::copy(
        keyward::default_pepper_path(from),
        keyward::default_pepper_path(to),
    )?;
    Ok(())
}

/// Prints how long each phase took when `KEYWARD_BENCH_TRACE` is set (tuning the time budget).
fn trace(started: Instant, what: &str) {
    if std::env::var_os("KEYWARD_BENCH_TRACE").is_some() {
        eprintln!("[{:6.2} s] {what}", started.elapsed().as_secs_f64());
    }
}

fn headline(args: &BenchArgs) -> BenchResult<()> {
    let plan = Plan::from_args(args);
    let dir = TempDir::new()?;
    let bar = progress();
    let started = Instant::now();
    if cfg!(debug_assertions) && !args.quick {
        eprintln!(
            "keyward bench: this is a debug build; run `cargo run --release -- bench` for real figures"
        );
    }

    // One store of `keys` keys; the exclusive-mode store is a byte copy of it.
    let multi_path = dir.0.join("keys.redb");
    let exclusive_path = dir.0.join("keys-exclusive.redb");
    let keys = {
        let store = Store::open_unshared(
            &multi_path,
            store_options(Concurrency::MultiProcess, Duration::ZERO),
        )?;
        let keys = create_keys(&store, plan.keys, &bar)?;
        store.close()?;
        keys
    };
    copy_store(&multi_path, &exclusive_path)?;
    trace(started, "keys created");

    bar.set_message("building the baselines (SQLite, redb)");
    let floor = Floor::new(&keys);
    let sqlite = SqliteSha256::create(&dir.0.join("sanctum.sqlite"), &keys)?;
    let redb_multi_path = dir.0.join("baseline.redb");
    let redb_exclusive_path = dir.0.join("baseline-exclusive.redb");
    RedbTxn::create(&redb_multi_path, &keys)?;
    fs::copy(&redb_multi_path, &redb_exclusive_path)?;
    let redb_multi = RedbTxn::open(&redb_multi_path, false)?;
    let redb_exclusive = RedbTxn::open(&redb_exclusive_path, true)?;

    // No background flush while measuring: the usage all windows left pending is written by
    // one explicit flush at the end, timed separately, so the flusher's work on the other
    // core neither slows the
    // baselines' windows nor hides inside keyward's.
    trace(started, "baselines built");
    let keyward_multi = Store::open_unshared(
        &multi_path,
        store_options(Concurrency::MultiProcess, Duration::ZERO),
    )?;
    let keyward_exclusive = Store::open_unshared(
        &exclusive_path,
        store_options(Concurrency::SingleProcess, Duration::ZERO),
    )?;
    let accept = |store: &Store, key: &str| store.verify(key, SCOPES).is_ok_and(|v| v.is_valid());

    trace(started, "keyward stores opened");
    let order = scattered_order(keys.len(), 0x9e37_79b9_7f4a_7c15);
    let mut wall_samples: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    let mut cpu_samples: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    let mut verifies = [0u64; 2];
    let mut cursors = vec![0usize; CONTENDERS.len()];
    for round in 0..=plan.rounds {
        // Round 0 is the warm-up; its figures are dropped.
        let window = if round == 0 { plan.warmup } else { plan.window };
        for (i, name) in CONTENDERS.iter().enumerate() {
            bar.set_message(format!("round {round}/{}: {name}", plan.rounds));
            let cursor = &mut cursors[i];
            let sample = match i {
                0 => measure(name, &keys, &order, cursor, window, |k| {
                    accept(&keyward_multi, k)
                })?,
                1 => measure(name, &keys, &order, cursor, window, |k| {
                    accept(&keyward_exclusive, k)
                })?,
                2 => measure(name, &keys, &order, cursor, window, |k| floor.verify(k))?,
                3 => measure(name, &keys, &order, cursor, window, |k| sqlite.verify(k))?,
                4 => measure(name, &keys, &order, cursor, window, |k| {
                    redb_multi.verify(k)
                })?,
                _ => measure(name, &keys, &order, cursor, window, |k| {
                    redb_exclusive.verify(k)
                })?,
            };
            if i < 2 {
                verifies[i] += sample.ops;
            }
            if round > 0 {
                wall_samples[i].push(sample.wall_ns);
                cpu_samples[i].extend(sample.cpu_ns);
            }
        }
    }
    let wall_per_verify: Vec<f64> = wall_samples.iter_mut().map(|s| median(s)).collect();
    let on_cpu = cpu_samples.iter().all(|s| s.len() == plan.rounds);
    let per_verify: Vec<f64> = if on_cpu {
        cpu_samples.iter_mut().map(|s| median(s)).collect()
    } else {
        wall_per_verify.clone()
    };
    // The pending usage of every key verified above, written as the background flush would.
    bar.set_message("flushing usage counts");
    let flush_per_verify = vec![
        timed_flush(&keyward_multi)?.as_nanos() as f64 / verifies[0] as f64,
        timed_flush(&keyward_exclusive)?.as_nanos() as f64 / verifies[1] as f64,
    ];
    drop((
        keyward_multi,
        keyward_exclusive,
        redb_multi,
        redb_exclusive,
        sqlite,
        floor,
    ));
    trace(started, "per-verify rounds measured");

    bar.set_message("rate-limited vs unlimited keys");
    let rate_cost = rate_cost(&plan, &dir.0.join("rate.redb"), &bar)?;
    trace(started, "rate-limit cost measured");

    // Process scaling: N copies of this executable verifying against one store file.
    let keys_file = dir.0.join("keys.txt");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&keys_file)?;
        for key in &keys {
            writeln!(file, "{key}")?;
        }
    }
    let mut scaling = Vec::new();
    for processes in PROCESS_COUNTS {
        bar.set_message(format!("{processes} verifying processes on one store"));
        // On a loaded machine everything takes longer: shorten the windows (never below
        // 0.4 s) so the whole run stays within its 30 s budget.
        let left = TIME_BUDGET.saturating_sub(started.elapsed());
        let share = left / (PROCESS_COUNTS.len() - scaling.len()) as u32;
        let millis = (share.saturating_sub(WORKER_OVERHEAD).as_millis() as u64)
            .clamp(plan.process_millis.min(400), plan.process_millis);
        scaling.push(run_workers(processes, &multi_path, &keys_file, millis)?);
        trace(started, &format!("{processes} processes measured"));
    }
    bar.finish_and_clear();

    let report = Report {
        keys: keys.len(),
        per_verify,
        wall_per_verify,
        on_cpu,
        flush_per_verify,
        rate_cost,
        scaling,
        seconds: started.elapsed().as_secs_f64(),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json())?;
        fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Keys per kind in the rate-limit cost measurement.
const RATE_COST_KEYS: usize = 1000;

/// What a rate limit adds to a verify (issue 19): median ns per verify of unlimited keys, of
/// keys with their own limit, and of keys whose owner has a limit (limits so high they never
/// refuse), in interleaved rounds on one store of 3 × [`RATE_COST_KEYS`] keys.
#[derive(Debug, Clone, Copy)]
struct RateCost {
    unlimited: f64,
    key_limited: f64,
    owner_limited: f64,
}

fn rate_cost(plan: &Plan, path: &Path, bar: &ProgressBar) -> BenchResult<RateCost> {
    let store = Store::open_unshared(
        path,
        store_options(Concurrency::MultiProcess, Duration::ZERO),
    )?;
    let never_refuses = keyward::RateLimit::new(1_000_000_000, 1000, 1_000_000_000)?;
    store.set_owner_rate_limit("owner_limited", Some(never_refuses))?;
    let mut kinds: Vec<Vec<String>> = Vec::new();
    for (owner, limit) in [
        ("unlimited", None),
        ("key_limited", Some(never_refuses)),
        ("owner_limited", None),
    ] {
        let batch = (0..RATE_COST_KEYS)
            .map(|i| NewKey {
                owner: owner.into(),
                name: format!("rate bench {i}"),
                scopes: vec!["read".into()],
                rate_limit: limit,
                ..NewKey::default()
            })
            .collect();
        kinds.push(
            store
                .create_many(batch)?
                .iter()
                .map(|c| c.key().to_owned())
                .collect(),
        );
    }
    let order = scattered_order(RATE_COST_KEYS, 0x51_7cc1_b727_220a);
    let mut samples = vec![Vec::new(); kinds.len()];
    let mut cursors = vec![0usize; kinds.len()];
    for round in 0..=plan.rounds {
        let window = if round == 0 { plan.warmup } else { plan.window };
        for (i, keys) in kinds.iter().enumerate() {
            bar.set_message(format!(
                "round {round}/{}: rate-limit cost {i}",
                plan.rounds
            ));
            let sample = measure("rate cost", keys, &order, &mut cursors[i], window, |k| {
                store.verify(k, SCOPES).is_ok_and(|v| v.is_valid())
            })?;
            if round > 0 {
                samples[i].push(sample.cpu_ns.unwrap_or(sample.wall_ns));
            }
        }
    }
    store.close()?;
    Ok(RateCost {
        unlimited: median(&mut samples[0]),
        key_limited: median(&mut samples[1]),
        owner_limited: median(&mut samples[2]),
    })
}

/// One started worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn read_line(&mut self) -> BenchResult<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(format!("a worker process exited early ({status})").into());
        }
        Ok(line)
    }
}

/// Starts `processes` workers, waits until each has opened the store (filling its index),
/// lets them all go at once, and returns their aggregate verifies per second, the CPU cores
/// they got between them, and the share of their CPU time spent in the background usage flush.
fn run_workers(
    processes: usize,
    store: &Path,
    keys_file: &Path,
    millis: u64,
) -> BenchResult<Scaling> {
    let exe = std::env::current_exe()?;
    let mut workers = Vec::with_capacity(processes);
    for _ in 0..processes {
        let mut child = Command::new(&exe)
            .arg("bench")
            .arg("--worker")
            .arg("--store")
            .arg(store)
            .arg("--keys-file")
            .arg(keys_file)
            .arg("--millis")
            .arg(millis.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("worker stdout")?);
        workers.push(Worker {
            child,
            stdin,
            stdout,
        });
    }
    for worker in &mut workers {
        let line = worker.read_line()?;
        if line.trim() != "ready" {
            return Err(format!("unexpected worker message: {line:?}").into());
        }
    }
    for worker in &mut workers {
        worker.stdin.write_all(b"go\n")?;
        worker.stdin.flush()?;
    }
    let mut total = 0.0;
    let (mut cores, mut cpu, mut flusher_cpu) = (0.0, 0.0, 0.0);
    for worker in &mut workers {
        let line = worker.read_line()?;
        let value: serde_json::Value = serde_json::from_str(line.trim())?;
        let verifies = value["verifies"]
            .as_f64()
            .ok_or("worker result without verifies")?;
        let seconds = value["seconds"]
            .as_f64()
            .ok_or("worker result without seconds")?;
        if value["refused"].as_u64() != Some(0) {
            return Err(format!("a worker process saw valid keys refused: {line}").into());
        }
        total += verifies / seconds;
        let worker_cpu = value["cpu_ns"].as_f64().unwrap_or(0.0);
        cores += worker_cpu / 1e9 / seconds;
        cpu += worker_cpu;
        flusher_cpu += value["flusher_cpu_ns"].as_f64().unwrap_or(0.0);
    }
    for mut worker in workers {
        let status = worker.child.wait()?;
        if !status.success() {
            return Err(format!("a worker process failed ({status})").into());
        }
    }
    Ok(Scaling {
        processes,
        verifies_per_sec: total,
        cores,
        flush_share: if cpu > 0.0 { flusher_cpu / cpu } else { 0.0 },
    })
}

/// `keyward bench --worker`: open the store, say `ready`, wait for `go`,
/// verify for `--millis`, print `{"verifies", "seconds", "refused"}`.
fn worker(args: &BenchArgs) -> BenchResult<()> {
    let store_path = args.store.as_ref().ok_or("--worker needs --store")?;
    let keys_path = args
        .keys_file
        .as_ref()
        .ok_or("--worker needs --keys-file")?;
    let store = Store::open(
        store_path,
        store_options(Concurrency::MultiProcess, DEFAULT_FLUSH_INTERVAL),
    )?;
    let keys: Vec<String> = fs::read_to_string(keys_path)?
        .lines()
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err("no keys to verify".into());
    }
    // Opening filled the verify index; one verify checks the worker sees the parent's keys.
    if !store.verify(&keys[0], SCOPES)?.is_valid() {
        return Err("the worker's store refuses a valid key".into());
    }
    let mut refused = 0u64;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;

    let order = scattered_order(
        keys.len(),
        u64::from(std::process::id()).wrapping_mul(0x9e37_79b9),
    );
    let window = Duration::from_millis(args.millis);
    let mut cursor = 0usize;
    let mut verifies = 0u64;
    let (cpu_begin, flusher_begin) = process_cpu_ns();
    let begin = Instant::now();
    let elapsed = loop {
        for _ in 0..BATCH {
            let key = &keys[order[cursor] as usize];
            cursor = (cursor + 1) % order.len();
            if !black_box(store.verify(black_box(key), SCOPES)?.is_valid()) {
                refused += 1;
            }
        }
        verifies += BATCH as u64;
        let elapsed = begin.elapsed();
        if elapsed >= window {
            break elapsed;
        }
    };
    let (cpu_end, flusher_end) = process_cpu_ns();
    let result = json!({
        "verifies": verifies,
        "seconds": elapsed.as_secs_f64(),
        "refused": refused,
        "cpu_ns": cpu_end.saturating_sub(cpu_begin),
        "flusher_cpu_ns": flusher_end.saturating_sub(flusher_begin),
    });
    writeln!(out, "{result}")?;
    out.flush()?;
    // The temporary store is thrown away: skip the final usage flush (up to every key's
    // counts) so the next measurement does not wait for it.
    std::process::exit(0)
}

/// On-CPU time of this process so far, in ns, in all its threads and in its usage-flush
/// thread alone (`/proc/self/task/*/schedstat`; zeros where unavailable).
fn process_cpu_ns() -> (u64, u64) {
    let mut total = 0;
    let mut flusher = 0;
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for task in tasks.flatten() {
        let ns = fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        total += ns;
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "keyward-flush" {
            flusher += ns;
        }
    }
    (total, flusher)
}

/// The figures of one run.
struct Report {
    keys: usize,
    /// Median ns per verify, in [`CONTENDERS`] order: on-CPU time when available (see
    /// [`thread_cpu_ns`]), else wall-clock time.
    per_verify: Vec<f64>,
    /// Usage-flush cost per verify (ns, amortized) of keyward_multi and keyward_exclusive.
    flush_per_verify: Vec<f64>,
    /// Median wall-clock ns per verify, in [`CONTENDERS`] order.
    wall_per_verify: Vec<f64>,
    /// Whether `per_verify` is on-CPU time (else wall-clock time).
    on_cpu: bool,
    /// What a rate limit adds to a verify.
    rate_cost: RateCost,
    /// The process-scaling measurements.
    scaling: Vec<Scaling>,
    seconds: f64,
}

/// One process-scaling measurement.
struct Scaling {
    processes: usize,
    /// Aggregate verifies per second (wall clock).
    verifies_per_sec: f64,
    /// CPU cores the workers got between them during the window (on a loaded machine, fewer
    /// than the machine has).
    cores: f64,
    /// Share of the workers' CPU time spent in their background usage flush.
    flush_share: f64,
}

/// One target of issue 8: a name, the measured ratio, the bound and its direction.
struct Target {
    what: &'static str,
    ratio: f64,
    bound: f64,
    at_most: bool,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.ratio <= self.bound
        } else {
            self.ratio >= self.bound
        }
    }
}

impl Report {
    fn ns(&self, name: &str) -> f64 {
        let i = CONTENDERS
            .iter()
            .position(|c| *c == name)
            .expect("known contender");
        self.per_verify[i]
    }

    fn rate(&self, processes: usize) -> f64 {
        self.scaling
            .iter()
            .find(|s| s.processes == processes)
            .map_or(0.0, |s| s.verifies_per_sec)
    }

    fn targets(&self) -> Vec<Target> {
        let multi = self.ns("keyward_multi");
        vec![
            Target {
                what: "keyward_multi <= 2.0 x floor",
                ratio: multi / self.ns("floor"),
                bound: 2.0,
                at_most: true,
            },
            Target {
                what: "sqlite_sha256 >= 25 x keyward_multi",
                ratio: self.ns("sqlite_sha256") / multi,
                bound: 25.0,
                at_most: false,
            },
            Target {
                what: "redb_txn_multiwriter >= 30 x keyward_multi",
                ratio: self.ns("redb_txn_multiwriter") / multi,
                bound: 30.0,
                at_most: false,
            },
            Target {
                what: "key rate limit adds <= 50 ns (issue 19)",
                ratio: self.rate_cost.key_limited - self.rate_cost.unlimited,
                bound: 50.0,
                at_most: true,
            },
            Target {
                what: "4 processes >= 1.6 x 1 process (verifies/s)",
                ratio: self.rate(4) / self.rate(1).max(f64::MIN_POSITIVE),
                bound: 1.6,
                at_most: false,
            },
        ]
    }

    fn table(&self) -> String {
        use std::fmt::Write as _;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let multi = self.ns("keyward_multi");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "keyward bench: {} keys, {cpus} CPUs, {} build, {:.1} s\n",
            self.keys,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            self.seconds
        );
        let clock = if self.on_cpu { "on-CPU" } else { "wall" };
        let _ = writeln!(
            out,
            "{:<22} {:>12} {:>16} {:>12}",
            "verify",
            format!("ns ({clock})"),
            "x keyward_multi",
            "ns (wall)"
        );
        for ((name, ns), wall) in CONTENDERS
            .iter()
            .zip(&self.per_verify)
            .zip(&self.wall_per_verify)
        {
            let _ = writeln!(
                out,
                "{name:<22} {ns:>12.0} {:>16.2} {wall:>12.0}",
                ns / multi
            );
        }
        let _ = writeln!(
            out,
            "\nusage flush of every verified key, amortized: {:.0} ns/verify (multi), {:.0} ns/verify (exclusive)",
            self.flush_per_verify[0], self.flush_per_verify[1]
        );
        let rc = &self.rate_cost;
        let _ = writeln!(
            out,
            "\nrate limits ({RATE_COST_KEYS} keys each): unlimited {:.0} ns, own limit {:.0} ns \
             ({:+.0}), owner's limit {:.0} ns ({:+.0})",
            rc.unlimited,
            rc.key_limited,
            rc.key_limited - rc.unlimited,
            rc.owner_limited,
            rc.owner_limited - rc.unlimited
        );
        let _ = writeln!(
            out,
            "\n{:<22} {:>12} {:>16} {:>10} {:>13}",
            "processes, one store", "verifies/s", "x 1 process", "cores got", "CPU in flush"
        );
        let one = self.rate(1);
        for s in &self.scaling {
            let _ = writeln!(
                out,
                "{:<22} {:>12.0} {:>16.2} {:>10.2} {:>12.0}%",
                s.processes,
                s.verifies_per_sec,
                s.verifies_per_sec / one,
                s.cores,
                s.flush_share * 100.0
            );
        }
        let _ = writeln!(out, "\ntargets (issues 8 and 19):");
        for target in self.targets() {
            let verdict = if target.met() { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "  {:<46} {:>7.2}  {verdict}",
                target.what, target.ratio
            );
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let results: Vec<_> = CONTENDERS
            .iter()
            .zip(&self.per_verify)
            .zip(&self.wall_per_verify)
            .map(|((name, ns), wall)| json!({"name": name, "keys": self.keys, "ns_per_op": ns, "wall_ns_per_op": wall}))
            .collect();
        let processes: Vec<_> = self
            .scaling
            .iter()
            .map(|s| {
                json!({
                    "processes": s.processes,
                    "verifies_per_sec": s.verifies_per_sec,
                    "cores": s.cores,
                    "flush_cpu_share": s.flush_share,
                })
            })
            .collect();
        let targets: Vec<_> = self
            .targets()
            .iter()
            .map(|t| json!({"target": t.what, "ratio": t.ratio, "bound": t.bound, "met": t.met()}))
            .collect();
        json!({
            "keys": self.keys,
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "release_build": !cfg!(debug_assertions),
            "seconds": self.seconds,
            "ns_per_op_clock": if self.on_cpu { "thread_cpu" } else { "wall" },
            "results": results,
            "flush_ns_per_verify": {"keyward_multi": self.flush_per_verify[0], "keyward_exclusive": self.flush_per_verify[1]},
            "rate_limit_ns_per_verify": {
                "unlimited": self.rate_cost.unlimited,
                "key_limited": self.rate_cost.key_limited,
                "owner_limited": self.rate_cost.owner_limited,
            },
            "processes": processes,
            "targets": targets,
        })
    }
}
