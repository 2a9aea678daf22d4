//! The C header: committed copy up to date, exports of the shared library equal to its
//! declarations, and clean compilation as C99 and C++17.
//!
//! Needs `nm`, `cc` and `c++` on PATH. The shared library is the one cargo built with this
//! test (target/<profile>/deps/, else target/<profile>/): run with `cargo test --release`.

#[path = "c/header_parser.rs"]
mod header_parser;
#[path = "c/native.rs"]
mod native;

use native::{shared_library, which};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const HEADER_NAME: &str = "remotemedia_webrtc.h";

fn committed_header_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include").join(HEADER_NAME)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A scratch directory of this test process under target/tmp.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("header-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tool(name: &str) -> Command {
    let c = Command::new(name);
    // Surface "not found" clearly instead of as an io::Error deep in a test.
    if which(name).is_none() {
        panic!("`{name}` is not on PATH; this test needs it");
    }
    c
}


#[test]
fn committed_header_matches_cbindgen_output() {
    let generated_path = Path::new(concat!(env!("OUT_DIR"), "/remotemedia_webrtc.h"));
    let generated = read(generated_path);
    let committed = read(&committed_header_path());
    if generated == committed {
        return;
    }
    // Point at the first difference.
    let (g, c): (Vec<&str>, Vec<&str>) = (generated.lines().collect(), committed.lines().collect());
    let Some(first) = (0..g.len().max(c.len())).find(|&i| g.get(i) != c.get(i)) else {
        panic!(
            "include/{HEADER_NAME} differs from the generated {} only in line endings or the final newline \
             (run cargo build outside CI to regenerate and commit the header)",
            generated_path.display()
        );
    };
    let show = |v: &[&str]| -> String {
        (first.saturating_sub(2)..(first + 3).min(v.len())).map(|i| format!("  {:5}: {}\n", i + 1, v[i])).collect()
    };
    panic!(
        "include/{HEADER_NAME} is not what cbindgen generates from src/ffi/ \
         (run cargo build outside CI to regenerate and commit the header).\n\
         First difference at line {}:\n--- committed include/{HEADER_NAME}\n{}+++ generated {}\n{}\
         ({} lines committed, {} generated; diff -u include/{HEADER_NAME} {} shows all)",
        first + 1,
        show(&c),
        generated_path.display(),
        show(&g),
        c.len(),
        g.len(),
        generated_path.display(),
    );
}

#[test]
fn exported_symbols_equal_header_declarations() {
    let header = header_parser::parse(&read(&committed_header_path()))
        .unwrap_or_else(|e| panic!("cannot parse the header: {e}"));
    let declared: BTreeSet<String> = header.functions.iter().map(|f| f.name.clone()).collect();

    let so = shared_library();
    let out = tool("nm").args(["-D", "--defined-only"]).arg(&so).output().expect("run nm");
    assert!(out.status.success(), "nm failed: {}", String::from_utf8_lossy(&out.stderr));
    let nm = String::from_utf8(out.stdout).unwrap();
    // Lines are "ADDRESS TYPE NAME[@VERSION]".
    let mut exported = BTreeSet::new();
    let mut other = BTreeSet::new();
    for line in nm.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (ty, name) = match f.as_slice() {
            [_, ty, name] => (*ty, name.split('@').next().unwrap()),
            _ => continue,
        };
        if name.starts_with("rmw_") {
            assert!(matches!(ty, "T" | "t" | "W" | "i"), "{name} is exported as a non-function symbol (nm type {ty})");
            exported.insert(name.to_string());
        } else if matches!(ty, "T" | "W" | "i" | "D" | "B" | "R" | "V") {
            other.insert(format!("{name} ({ty})"));
        }
    }
    let not_declared: Vec<_> = exported.difference(&declared).collect();
    let not_exported: Vec<_> = declared.difference(&exported).collect();
    assert!(
        not_declared.is_empty() && not_exported.is_empty(),
        "{} and include/{HEADER_NAME} disagree.\n  exported but not declared: {not_declared:?}\n  declared but not exported: {not_exported:?}",
        so.display()
    );
    assert!(other.is_empty(), "{} exports symbols outside the rmw_ namespace: {other:?}", so.display());
    assert!(declared.len() >= 30, "only {} functions parsed from the header", declared.len());
}

/// Includes the header and touches a few declarations; the strictest warnings are errors.
const TU: &str = r#"#include "remotemedia_webrtc.h"
#include "remotemedia_webrtc.h" /* the include guard works */
#include <string.h>

static int use_declarations(void) {
    rmw_event_t ev;
    rmw_data_channel_options_t opt = rmw_data_channel_options_default();
    rmw_status_t (*poll)(rmw_transport_t, rmw_event_t *, int32_t) = rmw_transport_poll_event;
    rmw_event_callback_t cb = 0;
    rmw_log_callback_t lcb = 0;
    rmw_transport_t t = 0;
    rmw_data_channel_t c = 0;
    rmw_signaling_server_t s = 0;
    rmw_peer_state_t ps = RMW_PEER_CONNECTED;
    rmw_event_kind_t k = RMW_EVENT_DATA_CHANNEL_MESSAGE;
    const char *(*version)(void) = rmw_version;
    memset(&ev, 0, sizeof ev);
    (void)ev; (void)opt; (void)poll; (void)cb; (void)lcb; (void)t; (void)c; (void)s; (void)ps; (void)k;
    (void)version;
    return (int)RMW_OK + (int)RMW_ERR_INVALID_HANDLE + RMW_ABI_VERSION + RMW_LOG_TRACE + (int)sizeof(size_t);
}

int main(void) { return use_declarations() > 0 ? 0 : 1; }
"#;

fn compile(compiler: &str, std: &str, ext: &str) {
    let dir = scratch(&format!("{compiler}-{std}").replace('+', "x"));
    let src = dir.join(format!("tu.{ext}"));
    std::fs::write(&src, TU).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let out = tool(compiler)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "include/{HEADER_NAME} does not compile cleanly with {compiler} -std={std} -Wall -Wextra -Werror -pedantic:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn header_compiles_as_c99() {
    compile("cc", "c99", "c");
}

#[test]
fn header_compiles_as_cxx17() {
    compile("c++", "c++17", "cpp");
}

/// Every macro, type and function of the header is in the library's namespace (RMW_/rmw_),
/// so including it cannot clash with the application's names.
#[test]
fn header_names_are_namespaced() {
    let text = read(&committed_header_path());
    let header = header_parser::parse(&text).unwrap_or_else(|e| panic!("cannot parse the header: {e}"));
    let mut bad: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define "))
        .filter_map(|d| d.split(|c: char| c.is_whitespace() || c == '(').next())
        .filter(|name| !name.starts_with("RMW_") && *name != "REMOTEMEDIA_WEBRTC_H")
        .map(|name| format!("#define {name}"))
        .collect();
    bad.extend(header.typedefs.keys().filter(|n| !n.starts_with("rmw_")).map(|n| format!("type {n}")));
    bad.extend(header.functions.iter().filter(|f| !f.name.starts_with("rmw_")).map(|f| format!("function {}", f.name)));
    assert!(bad.is_empty(), "include/{HEADER_NAME} declares names outside RMW_/rmw_: {bad:?}");
}
