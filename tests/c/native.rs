//! Building and running native (C and C++) test programs against the shared library cargo
//! built for this test run. Shared by tests/c_api.rs, tests/cpp_wrapper.rs and tests/header.rs
//! through `#[path]`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const LIB: &str = "remotemedia_webrtc";

/// The shared library cargo built for this test run. The test binary is
/// target/<profile>/deps/<test>-<hash>; `cargo test` leaves the freshly built cdylib next to it
/// in deps/ (it copies it up to target/<profile>/ only on `cargo build`), so deps/ comes first.
pub fn shared_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    let profile = deps.parent().expect("target/<profile>");
    let candidates = [deps.join(format!("lib{LIB}.so")), profile.join(format!("lib{LIB}.so"))];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!("lib{LIB}.so not found in {} or {}: build with cargo build --release", deps.display(), profile.display())
    })
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

pub struct Env {
    pub manifest: PathBuf,
    pub include: PathBuf,
    /// The shared library under test.
    pub so: PathBuf,
    /// libremotemedia_webrtc.so and .so.<major> (the soname the programs load), both
    /// symlinks to `so`: linked with -L and found at run time through the programs' rpath.
    pub libdir: PathBuf,
    /// target/tmp/<prefix><pid>: this run's programs.
    pub work: PathBuf,
}

impl Env {
    /// Prepares target/tmp/<prefix><pid> (removing such directories of runs older than an hour)
    /// for programs compiled with `compiler`.
    pub fn new(prefix: &str, compiler: &str) -> Env {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let so = shared_library();
        assert!(which(compiler).is_some(), "`{compiler}` is not on PATH; these tests compile programs with it");
        eprintln!("testing {}", so.display());

        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_work_dirs(tmp, prefix);
        let work = tmp.join(format!("{prefix}{}", std::process::id()));
        let libdir = work.join("lib");
        std::fs::create_dir_all(&libdir).unwrap();
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        for name in [format!("lib{LIB}.so"), format!("lib{LIB}.so.{major}")] {
            let link = libdir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&so, &link).unwrap();
        }
        Env { include: manifest.join("include"), manifest, so, libdir, work }
    }

    /// Links the program `cmd` compiles into work/<name> against the library under test and
    /// returns its path; panics with the compiler's output on failure.
    pub fn link(&self, name: &str, mut cmd: Command) -> PathBuf {
        let exe = self.work.join(name);
        cmd.arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(&self.libdir)
            .arg(format!("-l{LIB}"))
            .arg("-pthread")
            // DT_RPATH (not RUNPATH): searched before LD_LIBRARY_PATH, so the .so under test is loaded.
            .arg(format!("-Wl,--disable-new-dtags,-rpath,{}", self.libdir.display()));
        let out = cmd.output().expect("run the compiler");
        assert!(
            out.status.success(),
            "compiling {name} against {} failed:\n{:?}\n{}{}",
            self.so.display(),
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    }

    /// Runs a program in the work directory with a timeout (it is killed when it expires);
    /// panics on timeout or on a crash (a signal).
    pub fn run(&self, exe: &Path, timeout: Duration) -> Run {
        let start = Instant::now();
        let mut child = Command::new(exe)
            .current_dir(&self.work)
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
}

/// Work directories of earlier runs (older than an hour: not those of a run in progress).
fn remove_stale_work_dirs(tmp: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn describe(&self) -> String {
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
