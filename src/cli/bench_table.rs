//! `keyward bench --table`: the shared verify table's figures (issue 14's acceptance), on a
//! temporary store of `--keys` keys.
//!
//! Phases, in order (the parent process holds no store open while child processes measure):
//! 1. create the keys (`Store::create_many` in batches);
//! 2. **cold build**: delete `<db>.kwtable`, open the store, time the open (it rebuilds the
//!    table from redb), `--builds` times; the table's geometry (bytes per key) is read from
//!    the last build;
//! 3. **verify ns** of `Store::verify` beside the in-memory floor ([`super::baselines::Floor`])
//!    in interleaved rounds, in two access patterns: uniform over every key in a scattered
//!    order, and a hot set (`--hot-percent` of the keys, scattered through the table); one
//!    untimed pass over the keys first, so both are measured warm;
//! 4. **open in a fresh process**: `--opens` child processes started one after the other;
//!    each times its `Store::open` of the existing table, then its first verify;
//! 5. **processes on one host**: `--processes` child processes. Each reads its PSS
//!    (`/proc/self/smaps_rollup`) once all of them are started, opens the store, verifies the
//!    spread keys (`--spread`, default the hot set) once, and reads its PSS again once all
//!    of them have verified (so every shared page is divided by the same number of mappers
//!    at both reads); then they all verify the spread keys for `--commit-secs` with the
//!    default flush interval and report their commit counts (`stats().commits`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::{Concurrency, DEFAULT_FLUSH_INTERVAL, Store, TableStats};
use serde_json::json;

use super::baselines::Floor;
use super::{
    BenchArgs, BenchResult, SCOPES, TempDir, create_keys, measure, median, progress,
    scattered_order, store_options, trace,
};

/// Sizes and durations of one `--table` run.
struct Plan {
    keys: usize,
    hot: usize,
    spread: usize,
    processes: usize,
    opens: usize,
    builds: usize,
    window: Duration,
    rounds: usize,
    commit_window: Duration,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> Plan {
        let keys = if args.quick {
            args.keys.clamp(1, 2_000)
        } else {
            args.keys.max(1)
        };
        let hot = (keys * args.hot_percent.clamp(1, 100) / 100).max(1);
        let spread = args.spread.unwrap_or(hot).clamp(1, keys);
        Plan {
            keys,
            hot,
            spread,
            processes: args.processes.max(1),
            opens: args.opens.max(1),
            builds: args.builds.max(1),
            window: Duration::from_millis(if args.quick { 40 } else { 300 }),
            rounds: if args.quick { 2 } else { 3 },
            commit_window: Duration::from_millis(args.commit_millis.max(100)),
        }
    }
}

/// The table file of the store at `db`.
fn table_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".kwtable");
    PathBuf::from(name)
}

/// Runs `keyward bench --table`.
pub(super) fn run(args: &BenchArgs) -> BenchResult<()> {
    let plan = Plan::from_args(args);
    let dir = TempDir::new()?;
    let bar = progress();
    let started = Instant::now();
    if cfg!(debug_assertions) && !args.quick {
        eprintln!(
            "keyward bench: this is a debug build; run `cargo run --release -- bench --table` for real figures"
        );
    }
    let db = dir.0.join("keys.redb");
    let quiet = || store_options(Concurrency::MultiProcess, Duration::ZERO);

    // 1. The keys.
    let keys = {
        let store = Store::open_unshared(&db, quiet())?;
        let keys = create_keys(&store, plan.keys, &bar)?;
        store.close()?;
        keys
    };
    trace(started, "keys created");

    // 2. Cold builds.
    let mut build_ms = Vec::with_capacity(plan.builds);
    let mut table = TableStats::default();
    for run in 0..plan.builds {
        bar.set_message(format!("cold build {}/{}", run + 1, plan.builds));
        fs::remove_file(table_path(&db))?;
        let begin = Instant::now();
        let store = Store::open_unshared(&db, quiet())?;
        let elapsed = begin.elapsed();
        let stats = store.stats()?;
        if stats.table.rebuilds == 0 || stats.table.keys != plan.keys as u64 {
            return Err(format!(
                "the open after deleting the table did not rebuild it ({:?})",
                stats.table
            )
            .into());
        }
        table = stats.table;
        build_ms.push(elapsed.as_secs_f64() * 1e3);
        drop(store);
    }
    let db_bytes = fs::metadata(&db)?.len();
    trace(started, "cold builds measured");

    // 3. Verify ns against the floor.
    let order = scattered_order(keys.len(), 0x9e37_79b9_7f4a_7c15);
    // The hot set: the first `hot` keys of another scattered permutation (spread through
    // the table), visited in a scattered order.
    let pick = scattered_order(keys.len(), 0x2545_f491_4f6c_dd1d);
    let hot_order: Vec<u32> = scattered_order(plan.hot, 0x5851_f42d_4c95_7f2d)
        .into_iter()
        .map(|i| pick[i as usize])
        .collect();
    let verify = measure_verify(&db, &keys, &order, &hot_order, &plan, &bar)?;
    trace(started, "verify measured");

    // The keys the child processes verify (the first of them is the fresh-open probe).
    let spread: Vec<&str> = pick[..plan.spread]
        .iter()
        .map(|&i| keys[i as usize].as_str())
        .collect();
    let keys_file = dir.0.join("spread.txt");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&keys_file)?;
        for key in &spread {
            writeln!(file, "{key}")?;
        }
    }
    drop(keys);

    // 4. Fresh-process opens.
    let mut opens = Vec::with_capacity(plan.opens);
    for run in 0..plan.opens {
        bar.set_message(format!("fresh-process open {}/{}", run + 1, plan.opens));
        opens.push(fresh_open(&db, &keys_file)?);
    }
    trace(started, "fresh opens measured");

    // 5. Processes on one host.
    bar.set_message(format!("{} processes on one store", plan.processes));
    let host = run_host(&db, &keys_file, &plan)?;
    trace(started, "host processes measured");
    bar.finish_and_clear();

    let report = Report {
        keys: plan.keys,
        table,
        db_bytes,
        build_ms,
        verify,
        opens,
        host,
        plan,
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

/// Median ns per verify of keyward and the floor in one access pattern.
struct Pattern {
    keys: usize,
    keyward: f64,
    floor: f64,
    keyward_wall: f64,
    floor_wall: f64,
}

struct VerifyFigures {
    on_cpu: bool,
    uniform: Pattern,
    hot: Pattern,
    cached_records: usize,
}

fn measure_verify(
    db: &Path,
    keys: &[String],
    order: &[u32],
    hot_order: &[u32],
    plan: &Plan,
    bar: &indicatif::ProgressBar,
) -> BenchResult<VerifyFigures> {
    bar.set_message("building the floor");
    let floor = Floor::new(keys);
    let store = Store::open_unshared(db, store_options(Concurrency::MultiProcess, Duration::ZERO))?;
    let accept = |key: &str| store.verify(key, SCOPES).is_ok_and(|v| v.is_valid());
    // One untimed pass over every key: both are measured warm (records decoded, pages in).
    bar.set_message("warming up");
    for &i in order {
        if !accept(&keys[i as usize]) || !floor.verify(&keys[i as usize]) {
            return Err("a valid key was refused during the warm-up".into());
        }
    }
    // keyward uniform, floor uniform, keyward hot, floor hot.
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut cursors = [0usize; 4];
    for round in 0..=plan.rounds {
        let window = if round == 0 {
            plan.window / 5
        } else {
            plan.window
        };
        for i in 0..4 {
            bar.set_message(format!("verify round {round}/{}", plan.rounds));
            let pattern = if i < 2 { order } else { hot_order };
            let name = [
                "keyward_uniform",
                "floor_uniform",
                "keyward_hot",
                "floor_hot",
            ][i];
            let cursor = &mut cursors[i];
            let sample = if i % 2 == 0 {
                measure(name, keys, pattern, cursor, window, accept)?
            } else {
                measure(name, keys, pattern, cursor, window, |k| floor.verify(k))?
            };
            if round > 0 {
                wall[i].push(sample.wall_ns);
                cpu[i].extend(sample.cpu_ns);
            }
        }
    }
    let on_cpu = cpu.iter().all(|s| s.len() == plan.rounds);
    let wall: Vec<f64> = wall.iter_mut().map(|s| median(s)).collect();
    let ns: Vec<f64> = if on_cpu {
        cpu.iter_mut().map(|s| median(s)).collect()
    } else {
        wall.clone()
    };
    let cached_records = store.stats()?.table.cached_records;
    bar.set_message("flushing the measured usage");
    store.close()?;
    Ok(VerifyFigures {
        on_cpu,
        uniform: Pattern {
            keys: order.len(),
            keyward: ns[0],
            floor: ns[1],
            keyward_wall: wall[0],
            floor_wall: wall[1],
        },
        hot: Pattern {
            keys: hot_order.len(),
            keyward: ns[2],
            floor: ns[3],
            keyward_wall: wall[2],
            floor_wall: wall[3],
        },
        cached_records,
    })
}

/// What one fresh process reported.
struct FreshOpen {
    open_us: f64,
    /// On-CPU time of the opening thread, when the kernel exposes it.
    open_cpu_us: Option<f64>,
    first_verify_us: f64,
    second_verify_us: f64,
    rebuilt: bool,
}

/// Starts one child that opens the store, and reads its figures.
fn fresh_open(db: &Path, keys_file: &Path) -> BenchResult<FreshOpen> {
    let output = Command::new(std::env::current_exe()?)
        .args(["bench", "--table-worker", "open", "--store"])
        .arg(db)
        .arg("--keys-file")
        .arg(keys_file)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("a fresh-open process failed ({})", output.status).into());
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let field = |name: &str| {
        value[name]
            .as_f64()
            .ok_or_else(|| format!("fresh-open result without {name}"))
    };
    Ok(FreshOpen {
        open_us: field("open_ns")? / 1e3,
        open_cpu_us: value["open_cpu_ns"].as_f64().map(|ns| ns / 1e3),
        first_verify_us: field("first_verify_ns")? / 1e3,
        second_verify_us: field("second_verify_ns")? / 1e3,
        rebuilt: value["rebuilds"].as_u64() != Some(0) || value["mapped"] != true,
    })
}

/// One started host process and its pipes.
struct HostChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl HostChild {
    fn read_json(&mut self) -> BenchResult<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(format!("a host process exited early ({status})").into());
        }
        Ok(serde_json::from_str(line.trim())?)
    }

    fn say(&mut self, word: &str) -> BenchResult<()> {
        writeln!(self.stdin, "{word}")?;
        self.stdin.flush()?;
        Ok(())
    }
}

/// Figures of the processes-on-one-host phase.
struct HostFigures {
    /// Per process: PSS added between before open and after its verifies (bytes), in total,
    /// anonymous (private heap: decoded records, redb's cache) and file-backed or shmem (the
    /// mapped table and sync file, shared by every process).
    pss_added: Vec<u64>,
    pss_anon_added: Vec<u64>,
    pss_shared_added: Vec<u64>,
    /// Whether smaps_rollup was readable.
    pss_available: bool,
    cached_records: Vec<u64>,
    commits: u64,
    seconds: f64,
    verifies: u64,
    flush_interval: Duration,
}

fn expect_state(value: &serde_json::Value, state: &str) -> BenchResult<()> {
    if value["state"] != state {
        return Err(format!("host process: expected {state}, got {value}").into());
    }
    Ok(())
}

fn run_host(db: &Path, keys_file: &Path, plan: &Plan) -> BenchResult<HostFigures> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::with_capacity(plan.processes);
    for _ in 0..plan.processes {
        let mut child = Command::new(&exe)
            .args(["bench", "--table-worker", "host", "--store"])
            .arg(db)
            .arg("--keys-file")
            .arg(keys_file)
            .arg("--millis")
            .arg(plan.commit_window.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("host stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("host stdout")?);
        children.push(HostChild {
            child,
            stdin,
            stdout,
        });
    }
    // Every step is a barrier: all processes exist at both PSS reads.
    for child in &mut children {
        expect_state(&child.read_json()?, "started")?;
    }
    for child in &mut children {
        child.say("before")?;
    }
    for child in &mut children {
        expect_state(&child.read_json()?, "verified")?;
    }
    for child in &mut children {
        child.say("after")?;
    }
    let mut figures = HostFigures {
        pss_added: Vec::new(),
        pss_anon_added: Vec::new(),
        pss_shared_added: Vec::new(),
        pss_available: true,
        cached_records: Vec::new(),
        commits: 0,
        seconds: 0.0,
        verifies: 0,
        flush_interval: DEFAULT_FLUSH_INTERVAL,
    };
    for child in &mut children {
        let value = child.read_json()?;
        expect_state(&value, "measured")?;
        match (&value["pss_before"], &value["pss_after"]) {
            (before @ serde_json::Value::Object(_), after @ serde_json::Value::Object(_)) => {
                let added = |field: &str| {
                    let a = after[field].as_u64().unwrap_or(0);
                    let b = before[field].as_u64().unwrap_or(0);
                    a.saturating_sub(b)
                };
                figures.pss_added.push(added("pss"));
                figures.pss_anon_added.push(added("anon"));
                figures.pss_shared_added.push(added("shared"));
            }
            _ => figures.pss_available = false,
        }
        figures
            .cached_records
            .push(value["cached_records"].as_u64().unwrap_or(0));
    }
    for child in &mut children {
        child.say("go")?;
    }
    let mut seconds = Vec::with_capacity(children.len());
    for child in &mut children {
        let value = child.read_json()?;
        expect_state(&value, "done")?;
        if value["refused"].as_u64() != Some(0) {
            return Err(format!("a host process saw valid keys refused: {value}").into());
        }
        figures.commits += value["commits"].as_u64().ok_or("result without commits")?;
        figures.verifies += value["verifies"].as_u64().unwrap_or(0);
        seconds.push(value["seconds"].as_f64().ok_or("result without seconds")?);
    }
    for mut child in children {
        let status = child.child.wait()?;
        if !status.success() {
            return Err(format!("a host process failed ({status})").into());
        }
    }
    figures.seconds = median(&mut seconds);
    Ok(figures)
}

/// PSS of this process from `/proc/self/smaps_rollup`, in bytes: total, anonymous, and
/// file-backed plus shmem (the table lives in a file that may be on a tmpfs).
fn read_pss() -> Option<serde_json::Value> {
    let text = fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    let pss = field("Pss:")?;
    Some(json!({
        "pss": pss,
        "anon": field("Pss_Anon:").unwrap_or(0),
        "shared": field("Pss_File:").unwrap_or(0) + field("Pss_Shmem:").unwrap_or(0),
    }))
}

/// This thread's CPU time in ns, exact (`CLOCK_THREAD_CPUTIME_ID`; `/proc/thread-self/schedstat`
/// lags by up to a scheduler tick, too coarse for a millisecond open).
fn thread_cpu_time_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

fn read_command(input: &mut impl BufRead, want: &str) -> BenchResult<()> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    if line.trim() != want {
        return Err(format!("expected {want:?} from the parent, got {line:?}").into());
    }
    Ok(())
}

/// `keyward bench --table-worker open|host` (see the module documentation).
pub(super) fn worker(args: &BenchArgs, mode: &str) -> BenchResult<()> {
    let store_path = args.store.as_ref().ok_or("--table-worker needs --store")?;
    let keys_path = args
        .keys_file
        .as_ref()
        .ok_or("--table-worker needs --keys-file")?;
    let keys: Vec<String> = fs::read_to_string(keys_path)?
        .lines()
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err("no keys to verify".into());
    }
    let options = || store_options(Concurrency::MultiProcess, DEFAULT_FLUSH_INTERVAL);
    let mut out = std::io::stdout().lock();
    match mode {
        "open" => {
            let cpu_begin = thread_cpu_time_ns();
            let begin = Instant::now();
            let store = Store::open(store_path, options())?;
            let open_ns = begin.elapsed().as_nanos() as u64;
            // This thread's on-CPU time in the open (not the flusher thread it starts):
            // tells a slow open from one that waited for a CPU on a loaded machine.
            let open_cpu_ns = match (cpu_begin, thread_cpu_time_ns()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            let begin = Instant::now();
            let first = store.verify(&keys[0], SCOPES)?.is_valid();
            let first_verify_ns = begin.elapsed().as_nanos() as u64;
            let key = keys.get(1).unwrap_or(&keys[0]);
            let begin = Instant::now();
            let second = store.verify(key, SCOPES)?.is_valid();
            let second_verify_ns = begin.elapsed().as_nanos() as u64;
            if !(first && second) {
                return Err("a fresh process refused a valid key".into());
            }
            let stats = store.stats()?;
            let result = json!({
                "open_ns": open_ns,
                "open_cpu_ns": open_cpu_ns,
                "first_verify_ns": first_verify_ns,
                "second_verify_ns": second_verify_ns,
                "mapped": stats.table.mapped,
                "rebuilds": stats.table.rebuilds,
            });
            writeln!(out, "{result}")?;
            out.flush()?;
        }
        "host" => {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            writeln!(out, "{}", json!({"state": "started"}))?;
            out.flush()?;
            read_command(&mut input, "before")?;
            let pss_before = read_pss();
            let store = Store::open(store_path, options())?;
            let mut refused = 0u64;
            for key in &keys {
                if !store.verify(key, SCOPES)?.is_valid() {
                    refused += 1;
                }
            }
            if refused > 0 {
                return Err(format!("{refused} valid keys refused after open").into());
            }
            writeln!(out, "{}", json!({"state": "verified"}))?;
            out.flush()?;
            read_command(&mut input, "after")?;
            let pss_after = read_pss();
            let stats = store.stats()?;
            let measured = json!({
                "state": "measured",
                "pss_before": pss_before,
                "pss_after": pss_after,
                "cached_records": stats.table.cached_records,
            });
            writeln!(out, "{measured}")?;
            out.flush()?;
            read_command(&mut input, "go")?;
            let order = scattered_order(
                keys.len(),
                u64::from(std::process::id()).wrapping_mul(0x9e37_79b9),
            );
            let window = Duration::from_millis(args.millis);
            let commits_before = store.stats()?.commits;
            let (mut cursor, mut verifies) = (0usize, 0u64);
            let begin = Instant::now();
            let elapsed = loop {
                for _ in 0..super::BATCH {
                    let key = &keys[order[cursor] as usize];
                    cursor = (cursor + 1) % order.len();
                    if !std::hint::black_box(store.verify(key, SCOPES)?.is_valid()) {
                        refused += 1;
                    }
                }
                verifies += super::BATCH as u64;
                let elapsed = begin.elapsed();
                if elapsed >= window {
                    break elapsed;
                }
            };
            let commits = store.stats()?.commits - commits_before;
            let done = json!({
                "state": "done",
                "commits": commits,
                "verifies": verifies,
                "seconds": elapsed.as_secs_f64(),
                "refused": refused,
            });
            writeln!(out, "{done}")?;
            out.flush()?;
        }
        other => return Err(format!("unknown --table-worker mode {other:?}").into()),
    }
    // Counts left in the shared table are flushed by whichever process holds the lease next;
    // skip this process's final flush so its exit costs nothing measurable.
    std::process::exit(0)
}

/// One goal of issue 14.
struct Goal {
    what: String,
    value: f64,
    bound: f64,
    met: bool,
}

/// The figures of one `--table` run.
struct Report {
    keys: usize,
    table: TableStats,
    db_bytes: u64,
    build_ms: Vec<f64>,
    verify: VerifyFigures,
    opens: Vec<FreshOpen>,
    host: HostFigures,
    plan: Plan,
    seconds: f64,
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    median(&mut values)
}

impl Report {
    fn per_key(&self, bytes: u64) -> f64 {
        bytes as f64 / self.table.keys.max(1) as f64
    }

    fn open_us(&self) -> f64 {
        median_of(self.opens.iter().map(|o| o.open_us))
    }

    /// Median on-CPU time of the opens (`None` when a child could not read it).
    fn open_cpu_us(&self) -> Option<f64> {
        let cpu: Option<Vec<f64>> = self.opens.iter().map(|o| o.open_cpu_us).collect();
        cpu.map(|c| median_of(c.into_iter()))
    }

    fn first_verify_us(&self) -> f64 {
        median_of(self.opens.iter().map(|o| o.first_verify_us))
    }

    fn second_verify_us(&self) -> f64 {
        median_of(self.opens.iter().map(|o| o.second_verify_us))
    }

    fn build_ms(&self) -> f64 {
        median_of(self.build_ms.iter().copied())
    }

    fn pss_sum(&self) -> u64 {
        self.host.pss_added.iter().sum()
    }

    fn commits_per_sec(&self) -> f64 {
        self.host.commits as f64 / self.host.seconds.max(f64::MIN_POSITIVE)
    }

    /// Host-wide commits per flush interval.
    fn commits_per_interval(&self) -> f64 {
        self.commits_per_sec() * self.host.flush_interval.as_secs_f64()
    }

    fn goals(&self) -> Vec<Goal> {
        let lookup = self.per_key(self.table.lookup_bytes);
        let file = self.per_key(self.table.file_bytes);
        let pss_ratio = self.pss_sum() as f64 / self.table.file_bytes.max(1) as f64;
        let uniform = self.verify.uniform.keyward / self.verify.uniform.floor;
        let hot = self.verify.hot.keyward / self.verify.hot.floor;
        // A window edge can hold one more flush than whole intervals fit in it.
        let edge =
            1.0 + self.host.flush_interval.as_secs_f64() / self.host.seconds.max(f64::MIN_POSITIVE);
        let per_interval = self.commits_per_interval();
        let processes = self.plan.processes;
        let mut goals = vec![
            Goal {
                what: "table lookup bytes/key <= 128".into(),
                value: lookup,
                bound: 128.0,
                met: lookup <= 128.0,
            },
            Goal {
                what: "table file bytes/key <= 128".into(),
                value: file,
                bound: 128.0,
                met: file <= 128.0,
            },
            Goal {
                what: "open of an existing table <= 1 ms (ms)".into(),
                value: self.open_us() / 1e3,
                bound: 1.0,
                met: self.open_us() <= 1e3,
            },
            Goal {
                what: "cold build <= 3 s (s)".into(),
                value: self.build_ms() / 1e3,
                bound: 3.0,
                met: self.build_ms() <= 3e3,
            },
        ];
        if self.host.pss_available {
            goals.push(Goal {
                what: format!("PSS added by {processes} processes <= 1.5 x table"),
                value: pss_ratio,
                bound: 1.5,
                met: pss_ratio <= 1.5,
            });
        }
        goals.extend([
            Goal {
                what: "verify uniform <= 1.2 x floor".into(),
                value: uniform,
                bound: 1.2,
                met: uniform <= 1.2,
            },
            Goal {
                what: "verify hot set <= 1.2 x floor".into(),
                value: hot,
                bound: 1.2,
                met: hot <= 1.2,
            },
            Goal {
                // One flusher for the host, not one per process; fewer than one commit per
                // interval while long flushes are paced (none in a short window is possible).
                what: format!("host commits per flush interval <= 1 ({processes} processes)"),
                value: per_interval,
                bound: edge,
                met: per_interval <= edge,
            },
        ]);
        goals
    }

    fn table(&self) -> String {
        use std::fmt::Write as _;
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "keyward bench --table: {} keys, {cpus} CPUs, {} build, {:.1} s\n",
            self.keys,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            self.seconds
        );
        let t = &self.table;
        let _ = writeln!(
            out,
            "shared table: {} keys, {} slots; lookup part {:.1} MB = {:.1} B/key; file {:.1} MB = {:.1} B/key (database {:.1} MB)",
            t.keys,
            t.slots,
            mb(t.lookup_bytes),
            self.per_key(t.lookup_bytes),
            mb(t.file_bytes),
            self.per_key(t.file_bytes),
            mb(self.db_bytes),
        );
        let builds: Vec<String> = self.build_ms.iter().map(|ms| format!("{ms:.0}")).collect();
        let _ = writeln!(
            out,
            "cold build (table file deleted, open): median {:.0} ms  [{} ms]",
            self.build_ms(),
            builds.join(", ")
        );
        let rebuilt = self.opens.iter().filter(|o| o.rebuilt).count();
        let _ = writeln!(
            out,
            "fresh process, existing table ({} spawns): Store::open median {:.0} us ({} us on-CPU), first verify {:.1} us, second verify {:.1} us{}",
            self.opens.len(),
            self.open_us(),
            self.open_cpu_us()
                .map_or("?".to_string(), |us| format!("{us:.0}")),
            self.first_verify_us(),
            self.second_verify_us(),
            if rebuilt > 0 {
                format!(" ({rebuilt} of them REBUILT the table: not an open of an existing table)")
            } else {
                String::new()
            }
        );

        let v = &self.verify;
        let clock = if v.on_cpu { "on-CPU" } else { "wall" };
        let _ = writeln!(
            out,
            "\n{:<28} {:>8} {:>14} {:>12} {:>10} {:>12} {:>12}",
            "verify (warm)",
            "keys",
            format!("keyward ns ({clock})"),
            "floor ns",
            "x floor",
            "keyward wall",
            "floor wall"
        );
        for (name, p) in [
            ("uniform, scattered order", &v.uniform),
            (
                &*format!("hot set ({} %)", self.plan.hot * 100 / self.keys.max(1)),
                &v.hot,
            ),
        ] {
            let _ = writeln!(
                out,
                "{name:<28} {:>8} {:>14.0} {:>12.0} {:>10.2} {:>12.0} {:>12.0}",
                p.keys,
                p.keyward,
                p.floor,
                p.keyward / p.floor,
                p.keyward_wall,
                p.floor_wall
            );
        }
        let _ = writeln!(
            out,
            "(records decoded in the measuring process: {})",
            v.cached_records
        );

        let h = &self.host;
        let _ = writeln!(
            out,
            "\n{} processes, each opens the store and verifies {} keys once:",
            self.plan.processes, self.plan.spread
        );
        if h.pss_available {
            let n = h.pss_added.len().max(1) as u64;
            let _ = writeln!(
                out,
                "  PSS added, sum {:.1} MB = {:.2} x table file ({:.1} MB); per process mean {:.2} MB (anon {:.2} MB, file/shmem {:.2} MB)",
                mb(self.pss_sum()),
                self.pss_sum() as f64 / t.file_bytes.max(1) as f64,
                mb(t.file_bytes),
                mb(self.pss_sum() / n),
                mb(h.pss_anon_added.iter().sum::<u64>() / n),
                mb(h.pss_shared_added.iter().sum::<u64>() / n),
            );
        } else {
            let _ = writeln!(out, "  PSS: /proc/self/smaps_rollup is not readable here");
        }
        let _ = writeln!(
            out,
            "  records decoded per process: median {:.0}",
            median_of(h.cached_records.iter().map(|&c| c as f64))
        );
        let _ = writeln!(
            out,
            "  then all verify for {:.1} s (flush interval {:.1} s): {} commits host-wide = {:.2}/s = {:.2} per interval; {:.0} verifies/s",
            h.seconds,
            h.flush_interval.as_secs_f64(),
            h.commits,
            self.commits_per_sec(),
            self.commits_per_interval(),
            h.verifies as f64 / h.seconds.max(f64::MIN_POSITIVE)
        );

        let _ = writeln!(out, "\ngoals (issue 14):");
        for goal in self.goals() {
            let verdict = if goal.met { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "  {:<52} {:>9.2} (bound {:.2})  {verdict}",
                goal.what, goal.value, goal.bound
            );
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let t = &self.table;
        let pattern = |p: &Pattern| {
            json!({
                "keys": p.keys,
                "keyward_ns": p.keyward,
                "floor_ns": p.floor,
                "ratio": p.keyward / p.floor,
                "keyward_wall_ns": p.keyward_wall,
                "floor_wall_ns": p.floor_wall,
            })
        };
        let h = &self.host;
        let goals: Vec<_> = self
            .goals()
            .iter()
            .map(|g| json!({"goal": g.what, "value": g.value, "bound": g.bound, "met": g.met}))
            .collect();
        json!({
            "mode": "table",
            "keys": self.keys,
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "release_build": !cfg!(debug_assertions),
            "seconds": self.seconds,
            "table": {
                "generation": t.generation,
                "slots": t.slots,
                "keys": t.keys,
                "lookup_bytes": t.lookup_bytes,
                "file_bytes": t.file_bytes,
                "lookup_bytes_per_key": self.per_key(t.lookup_bytes),
                "file_bytes_per_key": self.per_key(t.file_bytes),
                "db_bytes": self.db_bytes,
            },
            "cold_build": {
                "runs_ms": self.build_ms,
                "median_ms": self.build_ms(),
            },
            "fresh_open": {
                "spawns": self.opens.len(),
                "open_us": self.opens.iter().map(|o| o.open_us).collect::<Vec<_>>(),
                "first_verify_us": self.opens.iter().map(|o| o.first_verify_us).collect::<Vec<_>>(),
                "open_cpu_us": self.opens.iter().map(|o| o.open_cpu_us).collect::<Vec<_>>(),
                "median_open_us": self.open_us(),
                "median_open_cpu_us": self.open_cpu_us(),
                "median_first_verify_us": self.first_verify_us(),
                "median_second_verify_us": self.second_verify_us(),
                "rebuilt": self.opens.iter().filter(|o| o.rebuilt).count(),
            },
            "verify": {
                "ns_clock": if self.verify.on_cpu { "thread_cpu" } else { "wall" },
                "uniform": pattern(&self.verify.uniform),
                "hot": pattern(&self.verify.hot),
                "cached_records": self.verify.cached_records,
            },
            "processes": {
                "count": self.plan.processes,
                "spread_keys": self.plan.spread,
                "pss_available": h.pss_available,
                "pss_added_bytes": h.pss_added,
                "pss_anon_added_bytes": h.pss_anon_added,
                "pss_shared_added_bytes": h.pss_shared_added,
                "pss_added_sum_bytes": self.pss_sum(),
                "pss_sum_to_table_file": self.pss_sum() as f64 / t.file_bytes.max(1) as f64,
                "cached_records": h.cached_records,
                "window_seconds": h.seconds,
                "flush_interval_seconds": h.flush_interval.as_secs_f64(),
                "commits": h.commits,
                "commits_per_sec": self.commits_per_sec(),
                "commits_per_interval": self.commits_per_interval(),
                "verifies_per_sec": h.verifies as f64 / h.seconds.max(f64::MIN_POSITIVE),
            },
            "goals": goals,
        })
    }
}
