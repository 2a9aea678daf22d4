//! The header-only C++17 wrapper include/remotemedia_webrtc.hpp, exercised from C++ programs
//! linked against the real shared library (built by cargo for this test run:
//! target/<profile>/deps/, else target/<profile>/; run with `cargo test --release`).
//!
//! - `wrapper_test_passes`: tests/cpp/wrapper_test.cpp (two peers over loopback, polling and
//!   callback, errors as rmw::Error, move semantics, destroying a transport in its callback;
//!   audio, and video both ways with frame numbers and PSNR checked).
//! - `cpp_chat_example_exchanges_messages`: examples_c/chat.cpp.
//! - `wrapper_header_is_self_contained`: the .hpp alone, twice, compiles cleanly.
//! - `wrapper_audio_templates_compile_strictly`: the audio calls (AudioTrack::send of vectors,
//!   std::array and C arrays, poll_audio, set_audio_callback) instantiate cleanly under the
//!   strictest warnings.
//! - `wrapper_video_compiles_strictly`: the video calls (RawVideoFrame factories, VideoTrack::send
//!   and send_i420 / send_rgba / send_bgra of pointers, vectors, std::array and C arrays,
//!   poll_video, set_video_callback, VideoFrame) instantiate cleanly under the same warnings.
//!
//! Needs `c++` on PATH. Programs are built under target/tmp/cpp_wrapper-<pid>/ with
//! -std=c++17 -Wall -Wextra -Werror -pedantic, and run with a timeout.

#[path = "c/native.rs"]
mod native;

use native::{Env, LIB};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::new("cpp_wrapper-", "c++"))
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
    let mut cmd = cxx(&["-g", "-O1"]);
    cmd.arg(source);
    env().link(name, cmd)
}

fn run(exe: &Path, timeout: Duration) -> native::Run {
    env().run(exe, timeout)
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

#[test]
fn wrapper_audio_templates_compile_strictly() {
    let dir = env().work.join("audio_templates");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("audio.cpp");
    std::fs::write(
        &src,
        r#"#include <remotemedia_webrtc.hpp>
#include <array>
void use(rmw::Transport &t) {
    rmw::AudioTrackConfig cfg;
    cfg.channels = 2;
    rmw::AudioTrack track = t.add_audio_track(rmw::Target::peer("bob"), cfg);
    std::vector<float> v(960);
    std::array<int16_t, 960> a{};
    int16_t c[960] = {};
    track.send(v);
    track.send(a);
    track.send(c);
    track.send(v.data(), 480);
    (void)track.try_send(a);
    (void)track.try_send(c, 480);
    track.set_target(rmw::Target::session("room"));
    (void)track.stats_json();
    t.set_audio_callback([](const rmw_audio_frame_t &f) { (void)rmw::AudioFrame::from_c(f).channel(0); });
    if (std::optional<rmw::AudioFrame> f = t.poll_audio(std::chrono::milliseconds(10)))
        (void)f->channel(1);
    rmw::AudioTrack moved = std::move(track);
    moved.close();
}
"#,
    )
    .unwrap();
    let out = cxx(&["-fsyntax-only", "-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast"])
        .arg(&src)
        .output()
        .expect("run c++");
    assert!(
        out.status.success(),
        "the audio part of include/{LIB}.hpp does not compile cleanly with -Wshadow -Wconversion \
         -Wsign-conversion -Wold-style-cast:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wrapper_video_compiles_strictly() {
    let dir = env().work.join("video_templates");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("video.cpp");
    std::fs::write(
        &src,
        r#"#include <remotemedia_webrtc.hpp>
#include <array>
void use(rmw::Transport &t) {
    rmw::VideoTrackConfig cfg;
    cfg.bitrate_kbps = 800;
    rmw::VideoTrack track = t.add_video_track(rmw::Target::peer("bob"), cfg);
    std::vector<uint8_t> i420(rmw::RawVideoFrame::i420_size(64, 48));
    std::vector<uint32_t> rgba(64 * 48);
    std::array<uint8_t, 4 * 64 * 48> arr{};
    uint8_t c[4 * 8 * 8] = {};
    track.send(rmw::RawVideoFrame::i420(i420.data(), 64, 48));
    track.send(rmw::RawVideoFrame::nv12(i420.data(), i420.data() + 64 * 48, 64, 48));
    track.send(rmw::RawVideoFrame::bgra(rgba.data(), 64, 48));
    rmw_raw_video_frame_t raw = rmw::RawVideoFrame::rgba(c, 8, 8);
    track.send(raw);
    track.send_i420(i420, 64, 48);
    track.send_i420(i420.data(), 64, 48);
    track.send_i420(i420.data(), i420.data() + 64 * 48, i420.data() + 64 * 48 + 32 * 24, 64, 48, 64, 32, 32);
    track.send_rgba(rgba, 64, 48);
    track.send_rgba(arr, 64, 48, 256);
    track.send_rgba(c, 8, 8);
    track.send_rgba(rgba.data(), 64, 48, 256);
    track.send_bgra(c, 8, 8, 32);
    track.set_bitrate(500);
    track.request_keyframe();
    track.set_target(rmw::Target::all());
    (void)track.stats_json();
    t.set_video_callback([](const rmw_video_frame_t &f) { (void)rmw::VideoFrame::from_c(f).row(0, 0); });
    if (std::optional<rmw::VideoFrame> f = t.poll_video(std::chrono::milliseconds(10)))
        (void)f->row(1, 2);
    rmw::VideoTrack moved = std::move(track);
    moved.close();
}
"#,
    )
    .unwrap();
    let out = cxx(&["-fsyntax-only", "-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast"])
        .arg(&src)
        .output()
        .expect("run c++");
    assert!(
        out.status.success(),
        "the video part of include/{LIB}.hpp does not compile cleanly with -Wshadow -Wconversion \
         -Wsign-conversion -Wold-style-cast:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
