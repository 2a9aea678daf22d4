//! The header-only C++17 wrapper include/remotemedia_webrtc.hpp, exercised from C++ programs
//! linked against the real shared library (built by cargo for this test run:
//! target/<profile>/deps/, else target/<profile>/; run with `cargo test --release`).
//!
//! - `wrapper_test_passes`: tests/cpp/wrapper_test.cpp (two peers over loopback, polling and
//!   callback, errors as rmw::Error, move semantics, destroying a transport in its callback).
//! - `cpp_chat_example_exchanges_messages`: examples_c/chat.cpp.
//! - `wrapper_header_is_self_contained`: the .hpp alone, twice, compiles cleanly.
//!
//! Needs `c++` on PATH. Programs are built under target/tmp/cpp_wrapper-<pid>/ with
//! -std=c++17 -Wall -Wextra -Werror -pedantic, and run with a timeout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const LIB: &str = "remotemedia_webrtc";
const WORK_PREFIX: &str = "cpp_wrapper-";

struct Env {
    manifest: PathBuf,
    include: PathBuf,
    /// The shared library under test.
    so: PathBuf,
    /// libremotemedia_webrtc.so and .so.<major> (the soname the programs load), both
    /// symlinks to `so`: linked with -L and found at run time through the programs' rpath.
    libdir: PathBuf,
    work: PathBuf,
}

/// The shared library cargo built for this test run. The test binary is
/// target/<profile>/deps/<test>-<hash>; `cargo test` leaves the freshly built cdylib next to it
/// in deps/ (it copies it up to target/<profile>/ only on `cargo build`), so deps/ comes first.
fn shared_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    let profile = deps.parent().expect("target/<profile>");
    let candidates = [deps.join(format!("lib{LIB}.so")), profile.join(format!("lib{LIB}.so"))];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!("lib{LIB}.so not found in {} or {}: build with cargo build --release", deps.display(), profile.display())
    })
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let so = shared_library();
        assert!(which("c++").is_some(), "`c++` is not on PATH; these tests compile C++ programs");
        eprintln!("testing {}", so.display());

        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_work_dirs(tmp);
        let work = tmp.join(format!("{WORK_PREFIX}{}", std::process::id()));
        let libdir = work.join("lib");
        std::fs::create_dir_all(&libdir).unwrap();
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        for name in [format!("lib{LIB}.so"), format!("lib{LIB}.so.{major}")] {
            let link = libdir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&so, &link).unwrap();
        }
        Env { include: manifest.join("include"), manifest, so, libdir, work }
    })
}

/// Work directories of earlier runs (older than an hour: not those of a run in progress).
fn remove_stale_work_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with(WORK_PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// The flags every C++ program of this test is compiled with.
fn cxx(extra: &[&str]) -> Command {
    let e = env();
    let mut cmd = Command::new("c++");
    cmd.args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"]).args(extra).arg("-I").arg(&e.include);
    cmd
}

/// Compiles `source` into work/<name> against the shared library.
fn build(name: &str, source: &Path) -> PathBuf {
    let e = env();
    let exe = e.work.join(name);
    let mut cmd = cxx(&["-g", "-O1"]);
    cmd.arg(source)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&e.libdir)
        .arg(format!("-l{LIB}"))
        .arg("-pthread")
        // DT_RPATH (not RUNPATH): searched before LD_LIBRARY_PATH, so the .so under test is loaded.
        .arg(format!("-Wl,--disable-new-dtags,-rpath,{}", e.libdir.display()));
    let out = cmd.output().expect("run c++");
    assert!(
        out.status.success(),
        "compiling {name} against {} failed:\n{:?}\n{}{}",
        e.so.display(),
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed,
            tail(&self.stdout, 80),
            tail(&self.stderr, 40)
        )
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut t = if skip > 0 { format!("[... {skip} lines ...]\n") } else { String::new() };
    t.push_str(&lines[skip..].join("\n"));
    t
}

/// Runs a program with a timeout (the process is killed when it expires).
fn run(exe: &Path, timeout: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(exe)
        .current_dir(&env().work)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
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
    let r = Run {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
    };
    match status {
        None => panic!("{} did not finish within {timeout:?} and was killed\n{}", exe.display(), r.describe()),
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = st.signal() {
                panic!("{} was killed by signal {sig} (crash)\n{}", exe.display(), r.describe());
            }
        }
    }
    r
}

/// The "N passed, M failed" summary line of wrapper_test.
fn summary(stdout: &str) -> Option<(u32, u32)> {
    stdout.lines().rev().find_map(|l| {
        let (p, f) = l.strip_suffix(" failed")?.split_once(" passed, ")?;
        Some((p.parse().ok()?, f.parse().ok()?))
    })
}

#[test]
fn wrapper_test_passes() {
    let exe = build("wrapper_test", &env().manifest.join("tests/cpp/wrapper_test.cpp"));
    let r = run(&exe, Duration::from_secs(150));
    let failures: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    let counts = summary(&r.stdout);
    assert!(
        r.code == Some(0) && failures.is_empty() && matches!(counts, Some((p, 0)) if p >= 50),
        "tests/cpp/wrapper_test.cpp failed ({counts:?} passed/failed):\n{}\n\n{}",
        failures.join("\n"),
        r.describe()
    );
    let (passed, _) = counts.unwrap();
    eprintln!("wrapper_test: {passed} passed, 0 failed");
}

#[test]
fn cpp_chat_example_exchanges_messages() {
    let exe = build("chat_cpp", &env().manifest.join("examples_c/chat.cpp"));
    let r = run(&exe, Duration::from_secs(40));
    assert_eq!(r.code, Some(0), "examples_c/chat.cpp failed:\n{}", r.describe());
    for expected in [
        "bob got: hello bob",
        "bob got: how are you, bob?",
        "bob got: bye bob",
        "alice got: hello alice",
        "alice got: fine, thanks alice",
        "alice got: bye alice",
        "bob got binary (8 bytes): 00 01 02 ff fe 00 7f 80",
        "chat: OK",
    ] {
        assert!(r.stdout.lines().any(|l| l == expected), "chat.cpp output lacks {expected:?}:\n{}", r.describe());
    }
    let lines = std::fs::read_to_string(env().manifest.join("examples_c/chat.cpp")).unwrap().lines().count();
    assert!(lines < 60, "examples_c/chat.cpp has {lines} lines: keep the example under 60");
}

#[test]
fn wrapper_header_is_self_contained() {
    let dir = env().work.join("self_contained");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("tu.cpp");
    std::fs::write(
        &src,
        "#include <remotemedia_webrtc.hpp>\n#include <remotemedia_webrtc.hpp> // the include guard works\n\
         int main() { return rmw::Config{}.to_json() == \"{}\" ? 0 : 1; }\n",
    )
    .unwrap();
    let out = cxx(&["-fsyntax-only", "-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast"])
        .arg(&src)
        .output()
        .expect("run c++");
    assert!(
        out.status.success(),
        "include/{LIB}.hpp does not compile on its own with c++ -std=c++17 -Wall -Wextra -Werror -pedantic \
         -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
