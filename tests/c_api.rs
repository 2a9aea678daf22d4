//! The C API, exercised from C programs linked against the real shared library
//! (built by cargo for this test run: target/<profile>/deps/, else target/<profile>/;
//! run with `cargo test --release`).
//!
//! - `every_export_rejects_bad_input`: a C program GENERATED from the prototypes of
//!   include/remotemedia_webrtc.h calls every function with NULL / 0 arguments and with
//!   never-created, wrong-kind and freed handles. A new export is covered without editing this
//!   file; one whose prototype the parser does not understand fails the test.
//! - `argument_checks`: tests/c/api_checks.c (invalid UTF-8, size-query pattern, configuration
//!   errors, status names, thread-local errors).
//! - `chat_example_exchanges_messages`: examples_c/chat.c, two peers over loopback.
//! - `call_example_exchanges_tones`: examples_c/call.c, the same two peers calling each other
//!   (Opus both ways, each checking the frequency it hears).
//! - `callback_frees_its_own_transport`, `free_while_poll_is_blocked`: tests/c/*.c.
//! - `audio_tone_by_callback_and_poll`: tests/c/audio_api.c (audio argument checks; a 440 Hz
//!   tone between two peers, received by callback then by polling, in f32 and in s16; freeing
//!   transports with live tracks and audio callbacks).
//! - `video_pattern_by_callback_and_poll`: tests/c/video_api.c (video argument checks; a moving
//!   320x240 pattern carrying its frame number between two peers, received by callback then by
//!   polling: VP8 I420 -> I420, then VP9 RGBA with a padded stride -> RGBA; freeing transports
//!   with live tracks and video callbacks).
//! - `video_call_example_exchanges_pictures`: examples_c/video_call.c, alice and bob sending each
//!   other a moving pattern (I420 one way, RGBA the other), each checking what it sees.
//!
//! Needs `cc` on PATH. Programs are built under target/tmp/c_api-<pid>/ with
//! -Wall -Wextra -Werror, and run with a timeout.

#[path = "c/header_parser.rs"]
mod header_parser;
#[path = "c/native.rs"]
mod native;

use header_parser::{Function, Header, TypeDef};
use native::{Env, LIB};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Handle typedefs and their kind (the top byte of a handle). A new handle type must be
/// added here; the generator refuses to guess.
const HANDLE_KINDS: &[(&str, u8)] =
    &[("rmw_transport_t", 1), ("rmw_signaling_server_t", 2), ("rmw_data_channel_t", 3), ("rmw_audio_track_t", 4), ("rmw_video_track_t", 5)];

/// Non-pointer C types passed as plain values (0 in every generated call).
const SCALARS: &[&str] = &[
    "bool",
    "char",
    "signed char",
    "unsigned char",
    "short",
    "unsigned short",
    "int",
    "unsigned int",
    "unsigned",
    "long",
    "unsigned long",
    "long long",
    "unsigned long long",
    "int8_t",
    "uint8_t",
    "int16_t",
    "uint16_t",
    "int32_t",
    "uint32_t",
    "int64_t",
    "uint64_t",
    "size_t",
    "ptrdiff_t",
    "intptr_t",
    "uintptr_t",
    "float",
    "double",
];

// ---- building and running C programs ---------------------------------------------------------

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::new("c_api-", "cc"))
}

/// Compiles `sources` into work/<name> against the shared library.
fn build(name: &str, sources: &[PathBuf], std: &str, extra: &[&str]) -> PathBuf {
    let e = env();
    let mut cmd = Command::new("cc");
    cmd.arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1"])
        .args(extra)
        .arg("-I")
        .arg(&e.include)
        .args(sources);
    e.link(name, cmd)
}

fn run(exe: &Path, timeout: Duration) -> native::Run {
    env().run(exe, timeout)
}

fn c_source(name: &str) -> PathBuf {
    env().manifest.join("tests/c").join(name)
}

fn header() -> Header {
    let path = env().include.join(format!("{LIB}.h"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    header_parser::parse(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

// ---- the generated bad-input program ---------------------------------------------------------

#[derive(Debug, Clone)]
enum Arg {
    /// A handle of this kind.
    Handle(u8),
    /// A value type: 0.
    Scalar(String),
    /// A function pointer typedef: NULL.
    FnPtr,
    /// A struct passed by value: zeroed.
    StructValue(String),
    /// `const char *`: a NUL-terminated string.
    InString,
    /// `char *`: an output buffer (the size-query pattern).
    OutChars,
    /// `const uint8_t *` / `const void *`: input bytes.
    InBytes(String),
    /// `void *`: user data.
    UserData,
    /// `const T *`: one input value.
    InValue(String),
    /// `T *`: output storage.
    OutValue(String),
}

fn resolve_alias<'a>(h: &'a Header, mut ty: &'a str) -> &'a str {
    for _ in 0..16 {
        match h.typedefs.get(ty) {
            Some(TypeDef::Alias(target)) if !HANDLE_KINDS.iter().any(|(n, _)| *n == ty) => ty = target,
            _ => break,
        }
    }
    ty
}

/// Is `ty` a type we can declare a variable of?
fn known_value_type(h: &Header, ty: &str) -> bool {
    SCALARS.contains(&ty) || h.typedefs.contains_key(ty)
}

fn classify(h: &Header, ty: &str, f: &Function) -> Result<Arg, String> {
    let stars = ty.matches('*').count();
    if stars == 0 {
        if let Some((_, k)) = HANDLE_KINDS.iter().find(|(n, _)| *n == ty) {
            return Ok(Arg::Handle(*k));
        }
        let base = resolve_alias(h, ty);
        return match h.typedefs.get(base) {
            Some(TypeDef::FnPtr) => Ok(Arg::FnPtr),
            Some(TypeDef::Enum) => Ok(Arg::Scalar(ty.into())),
            Some(TypeDef::Struct) => Ok(Arg::StructValue(ty.into())),
            Some(TypeDef::Alias(_)) => {
                Err(format!("{}: parameter type {ty} aliases a handle type: add it to HANDLE_KINDS in tests/c_api.rs", f.name))
            }
            None if base == "uint64_t" && ty != base => Err(format!(
                "{}: parameter type {ty} is a 64-bit typedef: if it is a handle, add it to HANDLE_KINDS in tests/c_api.rs",
                f.name
            )),
            None if SCALARS.contains(&base) => Ok(Arg::Scalar(ty.into())),
            None => Err(format!("{}: unknown parameter type `{ty}`", f.name)),
        };
    }
    if stars > 1 {
        return Err(format!(
            "{}: parameter type `{ty}` (pointer to pointer) is not supported by the generator",
            f.name
        ));
    }
    let pointee = ty.trim_end_matches('*').trim();
    let (is_const, base) = match pointee.strip_prefix("const ") {
        Some(b) => (true, b.trim()),
        None => (false, pointee),
    };
    if base.contains("const") || base.contains("volatile") {
        return Err(format!("{}: parameter type `{ty}` is not supported by the generator", f.name));
    }
    Ok(match (is_const, base) {
        (true, "char") => Arg::InString,
        (false, "char") => Arg::OutChars,
        (true, "uint8_t" | "void" | "unsigned char") => Arg::InBytes(pointee.into()),
        (false, "void") => Arg::UserData,
        (true, b) if known_value_type(h, b) => Arg::InValue(b.into()),
        (false, b) if known_value_type(h, b) => Arg::OutValue(b.into()),
        _ => return Err(format!("{}: unknown pointee type in `{ty}`", f.name)),
    })
}

/// `T name_default(void)` functions of the header, used to initialise `const T *` inputs.
fn default_of(h: &Header, ty: &str) -> Option<String> {
    h.functions
        .iter()
        .find(|f| f.ret == ty && f.params.is_empty() && f.name.ends_with("_default"))
        .map(|f| f.name.clone())
}

/// The argument list for a call where every handle is 0 and every pointer NULL.
fn null_args(args: &[Arg], decls: &mut String) -> Vec<String> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match a {
            Arg::Handle(_) => "0".into(),
            Arg::Scalar(t) => format!("({t})0"),
            Arg::StructValue(t) => {
                let _ = writeln!(decls, "        {t} sv{i}; memset(&sv{i}, 0, sizeof sv{i});");
                format!("sv{i}")
            }
            _ => "NULL".into(),
        })
        .collect()
}

/// The argument list for a call where every pointer is usable and handles are `handle(kind)`.
fn valid_args(h: &Header, args: &[Arg], decls: &mut String, handle: &dyn Fn(u8) -> String) -> Vec<String> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match a {
            Arg::Handle(k) => handle(*k),
            Arg::Scalar(t) => format!("({t})0"),
            Arg::FnPtr => "NULL".into(),
            Arg::StructValue(t) => {
                let _ = writeln!(decls, "        {t} sv{i}; memset(&sv{i}, 0, sizeof sv{i});");
                format!("sv{i}")
            }
            Arg::InString => "\"x\"".into(),
            Arg::OutChars => {
                let _ = writeln!(decls, "        char buf{i}[256]; memset(buf{i}, 0, sizeof buf{i});");
                format!("buf{i}")
            }
            Arg::InBytes(t) => {
                let _ = writeln!(decls, "        uint8_t bytes{i}[256]; memset(bytes{i}, 0, sizeof bytes{i});");
                format!("({t} *)bytes{i}")
            }
            Arg::UserData => {
                let _ = writeln!(decls, "        int user{i} = 0;");
                format!("&user{i}")
            }
            Arg::InValue(t) => {
                let _ = writeln!(decls, "        {t} in{i}[16]; memset(in{i}, 0, sizeof in{i});");
                if let Some(d) = default_of(h, t) {
                    let _ = writeln!(decls, "        in{i}[0] = {d}();");
                }
                format!("in{i}")
            }
            Arg::OutValue(t) => {
                let _ = writeln!(decls, "        {t} out{i}[16]; memset(out{i}, 0, sizeof out{i});");
                if resolve_alias(h, t) == "size_t" {
                    // A capacity (size-query pattern) matching the char buffers.
                    let _ = writeln!(decls, "        out{i}[0] = 256;");
                }
                format!("out{i}")
            }
        })
        .collect()
}

fn call_stmt(f: &Function, args: &[String], expect_status: &str) -> String {
    let call = format!("{}({})", f.name, args.join(", "));
    match f.ret.as_str() {
        "rmw_status_t" => format!("        {{ rmw_status_t st = {call}; {expect_status}; }}\n"),
        "void" => format!("        {call};\n"),
        "const char *" | "char *" => format!("        {{ const char *r = {call}; expect_nonnull_string(r); }}\n"),
        ret => format!("        {{ {ret} r = {call}; (void)r; }}\n"),
    }
}

/// Generates the C source of the bad-input program, or says which prototypes it cannot handle.
fn generate(h: &Header) -> Result<String, String> {
    let mut c = String::new();
    c.push_str("/* Generated by tests/c_api.rs from include/remotemedia_webrtc.h: do not edit. */\n");
    c.push_str("#include \"bad_input_harness.h\"\n\n");
    let mut calls = String::new();
    let mut errors = Vec::new();
    for f in &h.functions {
        let args: Vec<Arg> = match f.params.iter().map(|p| classify(h, &p.ty, f)).collect::<Result<_, _>>() {
            Ok(a) => a,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let returns_status = f.ret == "rmw_status_t";
        let has_handle = args.iter().any(|a| matches!(a, Arg::Handle(_)));
        let has_pointer = args.iter().any(|a| !matches!(a, Arg::Handle(_) | Arg::Scalar(_) | Arg::StructValue(_)));
        let only_handles = !args.is_empty() && args.iter().all(|a| matches!(a, Arg::Handle(_)));
        // `_free(0)` and `_stop(0)` are no-ops by design.
        let noop_on_zero = only_handles && (f.name.ends_with("_free") || f.name.ends_with("_stop"));

        let _ = writeln!(c, "static void check_{}(void) {{", f.name);
        let _ = writeln!(c, "    /* {} */", f.decl);
        // (i) every handle 0, every pointer NULL.
        let expect = if !returns_status {
            String::new()
        } else if noop_on_zero {
            "expect_status(st, RMW_OK)".into()
        } else if has_handle || has_pointer {
            "expect_error(st)".into()
        } else {
            // Nothing that could be wrong: it only must not crash.
            "(void)st".into()
        };
        let mut decls = String::new();
        let a = null_args(&args, &mut decls);
        let _ = writeln!(
            c,
            "    begin(\"{}\", \"{}\");",
            f.name,
            if noop_on_zero { "zero-handle-noop" } else { "null-and-zero" }
        );
        let _ = write!(c, "    {{\n{decls}{}    }}\n", call_stmt(f, &a, &expect));

        if has_handle {
            // (ii) never-created / wrong-kind and (iii) freed handles, other arguments usable.
            let mut decls = String::new();
            let a = valid_args(h, &args, &mut decls, &|k| format!("bad_handle({k}u, v)"));
            let expect = if returns_status { "expect_status(st, RMW_ERR_INVALID_HANDLE)" } else { "" };
            let _ = writeln!(c, "    {{\n        int v;\n        for (v = 0; v < N_BAD; v++) {{");
            let _ = writeln!(c, "            begin(\"{}\", BAD_NAMES[v]);", f.name);
            let _ = write!(c, "{}", decls.replace("        ", "            "));
            let _ = write!(c, "    {}", call_stmt(f, &a, expect));
            let _ = writeln!(c, "        }}\n    }}");
        } else if has_pointer && !returns_status {
            // Functions such as rmw_event_release: usable (zeroed) pointers too.
            let mut decls = String::new();
            let a = valid_args(h, &args, &mut decls, &|_| unreachable!());
            let _ = writeln!(c, "    begin(\"{}\", \"zeroed-storage\");", f.name);
            let _ = write!(c, "    {{\n{decls}{}{}    }}\n", call_stmt(f, &a, ""), call_stmt(f, &a, ""));
        }
        let _ = writeln!(c, "}}\n");
        let _ = writeln!(calls, "    check_{}();", f.name);
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let _ = write!(
        c,
        "int main(void) {{\n    harness_setup();\n{calls}    return harness_teardown({});\n}}\n",
        h.functions.len()
    );
    Ok(c)
}

#[test]
fn every_export_rejects_bad_input() {
    let h = header();
    let program = generate(&h).unwrap_or_else(|e| panic!("the bad-input generator cannot handle the header:\n{e}"));
    let dir = env().work.join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("bad_input.c");
    std::fs::write(&src, &program).unwrap();
    let harness_dir = env().manifest.join("tests/c");
    let exe = build("bad_input", std::slice::from_ref(&src), "c99", &["-I", harness_dir.to_str().unwrap()]);
    let r = run(&exe, Duration::from_secs(90));
    let failures: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL") || l.starts_with("FATAL")).collect();
    assert!(
        r.code == Some(0) && failures.is_empty(),
        "bad input was not rejected as documented (generated program: {}):\n{}\n\n{}",
        src.display(),
        failures.join("\n"),
        r.describe()
    );
    // Every declared function was called.
    for f in &h.functions {
        let prefix = format!("CALL {} ", f.name);
        assert!(
            r.stdout.lines().any(|l| l.starts_with(&prefix)),
            "{} was never called by the generated program",
            f.name
        );
    }
    let summary = r.stdout.lines().find(|l| l.starts_with("SUMMARY")).expect("no SUMMARY line");
    assert!(summary.contains(&format!("functions={}", h.functions.len())), "{summary}");
    eprintln!("{summary}");
}

#[test]
fn generator_covers_a_new_export_and_rejects_what_it_cannot_parse() {
    // A new export of a known shape is covered without editing this file.
    let h = header_parser::parse(
        "typedef uint64_t rmw_transport_t;\ntypedef enum { RMW_OK = 0 } rmw_status_t;\n\
         rmw_status_t rmw_transport_frobnicate(rmw_transport_t t, const char *what, size_t *out);\n",
    )
    .unwrap();
    let c = generate(&h).unwrap();
    assert!(c.contains("rmw_transport_frobnicate(0, NULL, NULL)") && c.contains("bad_handle(1u, v)"), "{c}");
    // An unknown handle-like type fails instead of being skipped.
    let h = header_parser::parse(
        "typedef uint64_t rmw_track_t;\ntypedef enum { RMW_OK = 0 } rmw_status_t;\nrmw_status_t rmw_track_free(rmw_track_t t);\n",
    )
    .unwrap();
    assert!(generate(&h).unwrap_err().contains("HANDLE_KINDS"));
    // A prototype the parser does not understand fails.
    assert!(header_parser::parse("int rmw_x(int (*cb)(int));").is_err());
}

// ---- hand-written programs -------------------------------------------------------------------

#[test]
fn argument_checks() {
    let version = format!("-DEXPECTED_VERSION=\"{}\"", env!("CARGO_PKG_VERSION"));
    let exe = build("api_checks", &[c_source("api_checks.c")], "c11", &[&version]);
    let r = run(&exe, Duration::from_secs(60));
    assert!(r.code == Some(0) && r.stdout.contains("api_checks: OK"), "api_checks failed:\n{}", r.describe());
}

#[test]
fn chat_example_exchanges_messages() {
    let exe = build("chat", &[env().manifest.join("examples_c/chat.c")], "c99", &[]);
    let r = run(&exe, Duration::from_secs(40));
    assert_eq!(r.code, Some(0), "examples_c/chat.c failed:\n{}", r.describe());
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
        assert!(
            r.stdout.lines().any(|l| l == expected || (expected == "chat: OK" && l.starts_with("chat: OK "))),
            "chat output lacks {expected:?}:\n{}",
            r.describe()
        );
    }
}

#[test]
fn callback_frees_its_own_transport() {
    let exe = build("callback_free_self", &[c_source("callback_free_self.c")], "c11", &[]);
    let r = run(&exe, Duration::from_secs(60));
    assert!(
        r.code == Some(0) && r.stdout.contains("callback_free_self: OK"),
        "callback_free_self failed:\n{}",
        r.describe()
    );
}

#[test]
fn free_while_poll_is_blocked() {
    let exe = build("free_during_poll", &[c_source("free_during_poll.c")], "c11", &[]);
    let r = run(&exe, Duration::from_secs(60));
    assert!(
        r.code == Some(0) && r.stdout.contains("free_during_poll: OK"),
        "free_during_poll failed:\n{}",
        r.describe()
    );
}

#[test]
fn audio_tone_by_callback_and_poll() {
    let exe = build("audio_api", &[c_source("audio_api.c")], "c11", &[]);
    let r = run(&exe, Duration::from_secs(90));
    assert!(
        r.code == Some(0) && r.stdout.lines().any(|l| l.starts_with("audio_api: OK")),
        "audio_api failed:\n{}",
        r.describe()
    );
    for expected in ["A: argument checks done (0 failures)", "D1: freed bob", "D2: bob's audio callback freed bob"] {
        assert!(r.stdout.contains(expected), "audio_api output lacks {expected:?}:\n{}", r.describe());
    }
}

#[test]
fn call_example_exchanges_tones() {
    // As build(), with -lm after the source (the example uses sin()).
    let e = env();
    let mut cmd = Command::new("cc");
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1", "-I"])
        .arg(&e.include)
        .arg(e.manifest.join("examples_c/call.c"))
        .arg("-lm");
    let exe = e.link("call", cmd);
    let r = run(&exe, Duration::from_secs(40));
    assert_eq!(r.code, Some(0), "examples_c/call.c failed:\n{}", r.describe());
    for expected in [
        "alice: heard bob at 660.0 Hz",
        "bob: heard alice at 440.0 Hz",
        "alice: bob's audio arrived (opus",
        "bob: alice's audio arrived (opus",
        "call: OK",
    ] {
        assert!(r.stdout.lines().any(|l| l.starts_with(expected)), "call output lacks {expected:?}:\n{}", r.describe());
    }
    // 2 s of 20 ms frames, none concealed on loopback.
    for who in ["alice: heard", "bob: heard"] {
        let line = r.stdout.lines().find(|l| l.starts_with(who)).unwrap();
        assert!(line.contains(", 100 frames, 0 concealed"), "{line}");
    }
}

#[test]
fn video_pattern_by_callback_and_poll() {
    let exe = build("video_api", &[c_source("video_api.c")], "c11", &[]);
    let r = run(&exe, Duration::from_secs(120));
    assert!(
        r.code == Some(0) && r.stdout.lines().any(|l| l.starts_with("video_api: OK")),
        "video_api failed:\n{}",
        r.describe()
    );
    for expected in [
        "A: argument checks done (0 failures)",
        "D1: freed bob",
        "D2: bob's video callback freed bob",
        "TRACK_ADDED: peer alice, track video, media_kind 2, vp8/90000",
        "TRACK_ADDED: peer alice, track video, media_kind 2, vp9/90000",
    ] {
        assert!(r.stdout.contains(expected), "video_api output lacks {expected:?}:\n{}", r.describe());
    }
    // Both runs: what bob received, in order, first a keyframe.
    for run in ["   B: VP8", "   C: VP9"] {
        let line = r.stdout.lines().find(|l| l.starts_with(run) && l.contains(" frames (")).unwrap_or_else(|| {
            panic!("video_api output has no summary of run {run:?}:\n{}", r.describe())
        });
        assert!(line.contains("in order") && line.contains("(first frame one)"), "{line}");
        eprintln!("{}", line.trim());
    }
}

#[test]
fn video_call_example_exchanges_pictures() {
    // As build(), with -lm after the source (the example uses log10()).
    let e = env();
    let mut cmd = Command::new("cc");
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1", "-I"])
        .arg(&e.include)
        .arg(e.manifest.join("examples_c/video_call.c"))
        .arg("-lm");
    let exe = e.link("video_call", cmd);
    let r = run(&exe, Duration::from_secs(40));
    assert_eq!(r.code, Some(0), "examples_c/video_call.c failed:\n{}", r.describe());
    for expected in [
        "alice: bob's video arrived (vp8, 90000 Hz",
        "bob: alice's video arrived (vp8, 90000 Hz",
        "video_call: OK",
    ] {
        assert!(r.stdout.lines().any(|l| l.starts_with(expected)), "video_call output lacks {expected:?}:\n{}", r.describe());
    }
    // 60 frames sent each way at 30 fps: most arrive, in order, first a keyframe, close to what was sent.
    for (who, shape) in [("alice: ", " video frames from bob (vp8, 320x240 rgba), "), ("bob: ", " video frames from alice (vp8, 320x240), ")] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(who) && l.contains(shape))
            .unwrap_or_else(|| panic!("video_call output lacks \"{who}N{shape}...\":\n{}", r.describe()));
        let frames: u32 = line[who.len()..].split(' ').next().unwrap().parse().unwrap();
        assert!((48..=60).contains(&frames), "{line}");
        assert!(line.contains("first a keyframe, frame numbers in order, PSNR "), "{line}");
    }
}
