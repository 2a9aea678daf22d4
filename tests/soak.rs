//! Reliability: lifecycles that leave nothing behind, frees racing with streaming and
//! callbacks, and the same under valgrind. The C programs use only the public header and are
//! linked against the shared library cargo built for this test run (see tests/c/native.rs);
//! run with `cargo test --release --test soak`, in a network namespace that has only loopback
//! (e.g. `unshare -n sh -c 'ip link set lo up; cargo test --release --offline --test soak'`).
//!
//! - `soak_cycles_leave_nothing_behind`: tests/c/soak.c, 50 cycles (after a warm-up cycle) of
//!   server start, two transports connecting, data on two channels, Opus audio one way and VP8
//!   video the other (callbacks and polling in turn), three teardown orders, server stop. The
//!   thread and fd counts after the last cycle must equal those after the warm-up, the C heap in
//!   use (glibc's mallinfo2, which Rust allocates through) may not grow by more than
//!   `SOAK_HEAP_BOUND_KB`, and VmRSS not by more than `SOAK_RSS_BOUND_KB`.
//! - `stress_free_from_many_threads`: tests/c/stress_free.c, 4 rounds of 4 streaming pairs torn
//!   down at once from many threads and from inside callbacks; no callback may run after the
//!   free (or unset) that ends it returned, exactly one of concurrent frees of a handle wins,
//!   sends after a free give RMW_ERR_INVALID_HANDLE, nothing deadlocks.
//! - `valgrind_short_soak_and_stress`: both programs (3 soak cycles after the warm-up, two rounds
//!   of the four stress_free teardowns) under valgrind memcheck, in parallel: no memory error
//!   and no definitely lost block. Skipped (with a message) when valgrind is not on PATH, unless
//!   RMW_REQUIRE_VALGRIND=1, which makes its absence a failure. Reachable and "possibly lost"
//!   blocks at exit are one-time statics (lazily built tables of the TLS / X.509 crates, Rust
//!   std thread-locals): they are not reported as errors. tests/c/valgrind.supp holds the one
//!   suppression needed (a false positive in the http crate, explained there).
//! - `disconnect_then_free_leaves_nothing_behind`: soak.c --disconnect-race, 600 cycles of connect, rmw_transport_disconnect_peer and
//!   both transports freed at once.
//!
//! Needs `cc` on PATH. Programs are built under target/tmp/soak-<pid>/.

#[path = "c/native.rs"]
mod native;

use native::{which, Env, Run};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Cycles of the native soak.
const SOAK_CYCLES: u32 = 50;
/// Growth of the C heap in use allowed over those cycles: the 1 MB. This is the leak
/// detector (20 kB per cycle breaks it); measured: +121 and +134 kB after 50 cycles, as caches
/// settle, then flat (301 to 358 kB in use from cycle 50 to 600).
const SOAK_HEAP_BOUND_KB: u64 = 1024;
/// VmRSS growth allowed over those cycles. VmRSS also counts freed memory that glibc keeps in
/// each thread's arena (up to 16 arenas on 2 cores), which fills within the first few dozen
/// cycles: measured +6 MB after 50 cycles, flat at +7 to +8 MB up to 400.
const SOAK_RSS_BOUND_KB: u64 = 32 * 1024;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::new("soak-", "cc"))
}

/// Compiles tests/c/<name>.c into work/<name>.
fn build(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let exe = e.work.join(name);
    if exe.is_file() {
        return exe; // built by another test of this run
    }
    let mut cmd = Command::new("cc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1", "-I"])
        .arg(&e.include)
        .arg(e.manifest.join("tests/c").join(format!("{name}.c")));
    e.link(name, cmd)
}

/// As `Env::run`, for a command with arguments (a program, or valgrind running one): killed
/// when `timeout` expires; panics on a timeout or a crash (signal).
fn run_cmd(mut cmd: Command, timeout: Duration) -> Run {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .current_dir(&env().work)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = Run { code: status.and_then(|s| s.code()), stdout: out.join().unwrap(), stderr: err.join().unwrap(), elapsed: start.elapsed() };
    match status {
        None => panic!("{what} did not finish within {timeout:?} and was killed\n{}", r.describe()),
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = st.signal() {
                panic!("{what} was killed by signal {sig} (crash)\n{}", r.describe());
            }
        }
    }
    r
}

fn program(exe: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    cmd
}

/// `key=a->b` of a soak/stress_free result line.
fn arrow(line: &str, key: &str) -> (u64, u64) {
    let field = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    let (a, b) = field.split_once("->").unwrap_or_else(|| panic!("{key}={field} is not a->b"));
    (a.parse().unwrap(), b.parse().unwrap())
}

fn number(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {key}= in {line:?}"))
}

/// The final `soak: cycles=...` line, checked: the cycles asked for, threads and fds back to
/// the baseline.
fn check_soak_result(r: &Run, cycles: u32) -> String {
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("soak: cycles="))
        .unwrap_or_else(|| panic!("soak printed no result line:\n{}", r.describe()))
        .to_string();
    assert_eq!(number(&line, "cycles") as u32, cycles, "{line}");
    let (t0, t1) = arrow(&line, "threads");
    let (f0, f1) = arrow(&line, "fds");
    assert!(t0 >= 1 && t0 == t1, "threads left behind: {line}\n{}", r.describe());
    assert!(f0 >= 3 && f0 == f1, "file descriptors left behind: {line}\n{}", r.describe());
    line
}

#[test]
fn soak_cycles_leave_nothing_behind() {
    let exe = build("soak");
    let cycles = SOAK_CYCLES.to_string();
    let rss_bound = SOAK_RSS_BOUND_KB.to_string();
    let heap_bound = SOAK_HEAP_BOUND_KB.to_string();
    let args = [&cycles, "--every", "10", "--max-rss-growth-kb", &rss_bound, "--max-heap-growth-kb", &heap_bound];
    let r = run_cmd(program(&exe, &args), Duration::from_secs(180));
    let line = check_soak_result(&r, SOAK_CYCLES);
    assert!(r.code == Some(0) && r.stdout.lines().any(|l| l == "soak: OK"), "soak failed:\n{}", r.describe());
    assert!(number(&line, "growth_kb") <= SOAK_RSS_BOUND_KB as f64, "{line}");
    assert!(number(&line, "heap_growth_kb") <= SOAK_HEAP_BOUND_KB as f64, "{line}");
    eprintln!("{line}");
}

/// The last line of a stress_free run, checked: OK, no failure, every teardown mode run
/// `rounds` times, both orders of mode 1 exercised, threads and fds back where they were.
fn check_stress_result(r: &Run, rounds: usize) -> String {
    let last = r.stdout.lines().last().unwrap_or("").to_string();
    assert!(r.code == Some(0) && last.starts_with("stress_free: OK "), "stress_free failed:\n{}", r.describe());
    assert!(last.contains(" failures=0 "), "{last}");
    for mode in 0..4 {
        let n = r.stdout.lines().filter(|l| l.trim_start().starts_with("pair ") && l.contains(&format!(" mode {mode}"))).count();
        assert_eq!(n, rounds, "mode {mode} ran {n} times, expected {rounds}:\n{}", r.describe());
    }
    // Mode 1 alternates 1a (the outside free starts while the callback's free is in progress)
    // and 1b (the callback's free starts while the outside free waits for that callback).
    if rounds >= 2 {
        assert!(number(&last, "mode1a") >= 1.0 && number(&last, "mode1b") >= 1.0, "both mode 1 orders must run: {last}\n{}", r.describe());
    }
    let (t0, t1) = arrow(&last, "threads");
    let (f0, f1) = arrow(&last, "fds");
    assert!(t0 == t1 && f0 == f1, "{last}");
    last
}

#[test]
fn stress_free_from_many_threads() {
    let exe = build("stress_free");
    let r = run_cmd(program(&exe, &["--rounds", "4", "--pairs", "4", "--timeout", "60"]), Duration::from_secs(200));
    let last = check_stress_result(&r, 4);
    eprintln!("{last}");
}

/// rmw_transport_free of a transport while the "disconnect" its peer just sent
/// (rmw_transport_disconnect_peer) is being handled used to leave that peer connection open: its
/// ICE UDP socket and the transport's tokio I/O driver stayed open for ever (about 1 % of such
/// teardowns), because the runtime shut down in the middle of the handler's close. Fixed by the
/// counted `Closing` guard in src/transport/mod.rs. 600 cycles caught it with a probability
/// above 99 %.
#[test]
fn disconnect_then_free_leaves_nothing_behind() {
    let exe = build("soak");
    let r = run_cmd(program(&exe, &["600", "--disconnect-race", "--every", "100"]), Duration::from_secs(180));
    let line = check_soak_result(&r, 600);
    assert!(r.code == Some(0) && r.stdout.lines().any(|l| l == "soak: OK"), "soak --disconnect-race failed:\n{}", r.describe());
    eprintln!("{line}");
}

// ---- valgrind ----------------------------------------------------------------------------------

/// Runs `exe args` under valgrind memcheck; returns the program's run and valgrind's log.
fn valgrind(exe: &Path, args: &[&str], timeout: Duration) -> (Run, String) {
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let log = env().work.join(format!("valgrind-{name}.log"));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=memcheck",
        "--error-exitcode=99",
        "--leak-check=full",
        // Only definitely lost blocks are errors: reachable and possibly lost blocks at exit are
        // one-time statics (std thread-locals, lazily built tables of dependencies).
        "--errors-for-leak-kinds=definite",
        "--show-leak-kinds=definite",
        // The programs count their own fds; valgrind's are not ours.
        "--track-fds=no",
        "--num-callers=40",
        // Threads spin on atomics (feeders, waits): fair scheduling keeps them all moving.
        "--fair-sched=yes",
    ])
    .arg(format!("--suppressions={}", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/valgrind.supp").display()))
    .arg(format!("--log-file={}", log.display()))
    .arg(exe)
    .args(args);
    let r = run_cmd(cmd, timeout);
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("valgrind wrote no log {}: {e}\n{}", log.display(), r.describe()));
    (r, text)
}

/// No memory error, no definitely lost byte, valgrind's exit status the program's own (0).
fn check_valgrind(what: &str, r: &Run, log: &str) {
    let excerpt = || {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(150)..].join("\n")
    };
    assert!(
        log.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{what}: valgrind found errors (exit {:?}):\n{}\n--- program ---\n{}",
        r.code,
        excerpt(),
        r.describe()
    );
    let no_leaks = log.contains("All heap blocks were freed -- no leaks are possible");
    assert!(
        no_leaks || log.contains("definitely lost: 0 bytes in 0 blocks"),
        "{what}: definitely lost blocks:\n{}",
        excerpt()
    );
    assert!(no_leaks || log.contains("LEAK SUMMARY"), "{what}: valgrind did not check for leaks:\n{}", excerpt());
    assert_eq!(r.code, Some(0), "{what} under valgrind failed (99: valgrind errors):\n{}\n{}", r.describe(), excerpt());
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost:") || l.contains("possibly lost:") || l.contains("in use at exit"))
        .collect();
    eprintln!("{what} under valgrind ({:.0?}): {}", r.elapsed, summary.join(" |"));
}

#[test]
fn valgrind_short_soak_and_stress() {
    let required = std::env::var("RMW_REQUIRE_VALGRIND").is_ok_and(|v| v == "1");
    if which("valgrind").is_none() {
        assert!(!required, "RMW_REQUIRE_VALGRIND=1 but valgrind is not on PATH");
        eprintln!("SKIPPED valgrind_short_soak_and_stress: valgrind is not on PATH (set RMW_REQUIRE_VALGRIND=1 to make this a failure)");
        return;
    }
    let soak = build("soak");
    let stress = build("stress_free");
    // Valgrind runs a program's threads one at a time: the two programs run side by side (one
    // core each), with their waits stretched.
    let soak_run = std::thread::spawn(move || {
        valgrind(&soak, &["3", "--every", "1", "--timeout-scale", "10", "--cycle-timeout", "60"], Duration::from_secs(170))
    });
    let stress_run = std::thread::spawn(move || {
        valgrind(&stress, &["--rounds", "2", "--pairs", "4", "--scale", "10", "--timeout", "100"], Duration::from_secs(170))
    });
    let (sr, slog) = soak_run.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    let (tr, tlog) = stress_run.join().unwrap_or_else(|e| std::panic::resume_unwind(e));

    check_valgrind("soak", &sr, &slog);
    let line = check_soak_result(&sr, 3);
    assert!(sr.stdout.lines().any(|l| l == "soak: OK"), "{}", sr.describe());
    eprintln!("{line}");

    check_valgrind("stress_free", &tr, &tlog);
    let last = check_stress_result(&tr, 2);
    eprintln!("{last}");
}
