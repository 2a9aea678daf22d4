//! Interop with another WebRTC stack: aiortc (Python), run as tests/aiortc/peer.py, joins our
//! signaling server and exchanges data-channel messages both ways with a native Transport,
//! once as the callee and once as the caller. Loopback only, no STUN. aiortc does not trickle
//! (its descriptions carry its candidates) but takes our trickled ones.
//!
//! Without a `python3` that can import aiortc and websockets the tests print a skip note and
//! pass, unless RMW_REQUIRE_AIORTC=1 (CI), where they fail.
//! Install: `python3 -m pip install aiortc websockets`. RMW_AIORTC_DEBUG=1 prints the peer's
//! whole log (with aiortc's and aioice's debug lines) at the end of each test.

mod common;
use common::audio::*;
use common::video::{self as vid, send_pattern};
use common::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::AudioSendConfig;
use remotemedia_webrtc::transport::Target;
use remotemedia_webrtc::{Event, Transport};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PYTHON: &str = "python3";
const PEER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aiortc/peer.py");
/// Longest wait for any one step (Python's start-up and aiortc's import included in the first).
const STEP: Duration = Duration::from_secs(20);
/// The id aiortc announces.
const AIORTC_ID: &str = "aiortc";

/// A running tests/aiortc/peer.py, killed (with its process group) on drop, also when the test
/// panics.
struct Aiortc {
    child: Child,
    dir: PathBuf,
    stderr: PathBuf,
    /// Set once a panic message carried the stderr tail, so drop does not print it again.
    tail_shown: bool,
}

impl Aiortc {
    /// Starts the peer, echoing, announcing `AIORTC_ID`; it calls `call` when given.
    fn launch(url: &str, call: Option<&str>) -> Aiortc {
        Self::launch_with(url, call, &[])
    }

    fn launch_with(url: &str, call: Option<&str>, extra: &[&str]) -> Aiortc {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rmw-aiortc-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stderr = dir.join("stderr.log");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(PEER_PY).args(["--signal", url, "--id", AIORTC_ID, "--echo", "--timeout", "60"]);
        if let Some(peer) = call {
            cmd.args(["--call", peer]);
        }
        cmd.args(extra);
        if debug() {
            cmd.arg("--debug");
        }
        let child = cmd
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} {PEER_PY}: {e}"));
        Aiortc { child, dir, stderr, tail_shown: false }
    }

    /// The last lines the peer wrote to stderr (its log and any traceback).
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits for the first event of `t` matching `pred`; panics with `what`, the events seen
    /// and the peer's stderr tail.
    fn expect(&mut self, t: &Transport, what: &str, pred: impl FnMut(&Event) -> bool) -> Event {
        let child = &mut self.child;
        let result = poll_until(t, STEP, pred, || child.try_wait().ok().flatten().map(|s| format!("aiortc peer exited ({s})")));
        match result {
            Ok(e) => e,
            Err((seen, why)) => {
                self.tail_shown = true;
                match why {
                    Some(why) => panic!("{why} while waiting for {what}; events seen: {seen:#?}\n--- aiortc stderr ---\n{}", self.stderr_tail()),
                    None => panic!("{what}: not seen within {STEP:?}; events seen: {seen:#?}\n--- aiortc stderr (tail) ---\n{}", self.stderr_tail()),
                }
            }
        }
    }

    /// The next data-channel message from aiortc: (data, binary).
    fn expect_message(&mut self, t: &Transport, what: &str) -> (Vec<u8>, bool) {
        match self.expect(t, what, |e| matches!(e, Event::DataChannelMessage { .. })) {
            Event::DataChannelMessage { peer_id, label, data, binary, .. } => {
                assert_eq!((peer_id.as_str(), label.as_str()), (AIORTC_ID, "data"), "{what}");
                (data.to_vec(), binary)
            }
            _ => unreachable!(),
        }
    }

    /// The next data-channel message from aiortc, as text.
    fn expect_text(&mut self, t: &Transport, what: &str) -> String {
        let (data, binary) = self.expect_message(t, what);
        assert!(!binary, "{what}: a binary message");
        String::from_utf8(data).expect("aiortc sent invalid UTF-8")
    }
}

impl Drop for Aiortc {
    fn drop(&mut self) {
        if debug() {
            eprintln!("--- aiortc stderr ---\n{}", std::fs::read_to_string(&self.stderr).unwrap_or_default());
        } else if std::thread::panicking() && !self.tail_shown {
            eprintln!("--- aiortc stderr (tail) ---\n{}", self.stderr_tail());
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on the process group we created for this child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// RMW_AIORTC_DEBUG=1: aiortc's and aioice's debug logs on, and the peer's whole stderr
/// printed when the test ends.
fn debug() -> bool {
    std::env::var("RMW_AIORTC_DEBUG").as_deref() == Ok("1")
}

/// False (after a skip note) when python3 cannot import aiortc and websockets and they are
/// not required.
fn aiortc_available() -> bool {
    let probe = Command::new(PYTHON).args(["-c", "import aiortc, websockets"]).stdin(Stdio::null()).output();
    let why = match probe {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string(),
        Err(e) => format!("cannot run {PYTHON}: {e}"),
    };
    if std::env::var("RMW_REQUIRE_AIORTC").as_deref() == Ok("1") {
        panic!("RMW_REQUIRE_AIORTC=1 but `{PYTHON} -c \"import aiortc, websockets\"` failed ({why}): install them with `{PYTHON} -m pip install aiortc websockets`");
    }
    eprintln!("SKIPPED: {PYTHON} cannot import aiortc and websockets ({why}); set RMW_REQUIRE_AIORTC=1 to make this a failure");
    false
}

/// Hello from aiortc on the just-opened channel, then a text ping and a binary message of
/// many SCTP chunks, each sent with `send` and echoed back as it went.
fn exchange(p: &mut Aiortc, native: &Transport, send: impl Fn(&Transport, &[u8], bool)) {
    assert_eq!(p.expect_text(native, "aiortc's hello"), "hello from aiortc");
    send(native, b"ping", false);
    assert_eq!(p.expect_text(native, "aiortc's echo of ping"), "echo:ping");
    // Just under our 64 KiB send limit; the echo (5 bytes more) is under our 256 KiB receive limit.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    send(native, &big, true);
    let (echo, binary) = p.expect_message(native, "aiortc's echo of 60000 binary bytes");
    assert!(binary, "the echo of a binary message came back as text");
    assert_eq!(echo.len(), 5 + big.len());
    assert!(echo.starts_with(b"echo:") && echo[5..] == big[..], "the echo of the binary message differs");
}

#[test]
fn native_calls_aiortc() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-caller");
    let mut p = Aiortc::launch(&s.url(), None);
    p.expect(&native, "aiortc announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == AIORTC_ID));
    native.connect_peer(AIORTC_ID).unwrap();
    let ch = channel_of(&p.expect(&native, "the default channel to aiortc opening", is_open(AIORTC_ID, "data")));
    assert!(native.channel_info(ch).unwrap().locally_created);
    exchange(&mut p, &native, |n, data, binary| n.send_on_channel(ch, data, binary).unwrap());
    assert_eq!(native.connected_peers(), vec![AIORTC_ID.to_string()]);
}

#[test]
fn aiortc_calls_native() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut p = Aiortc::launch(&s.url(), Some("native-callee"));
    let ch = channel_of(&p.expect(&native, "aiortc's \"data\" channel opening", is_open(AIORTC_ID, "data")));
    let info = native.channel_info(ch).unwrap();
    assert!(!info.locally_created, "{info:?}");
    // aiortc's "data" channel is our default channel: send_data reaches it.
    exchange(&mut p, &native, |n, data, binary| assert_eq!(n.send_data(Target::Peer(AIORTC_ID), data, binary).unwrap(), 1));
    assert_eq!(native.connected_peers(), vec![AIORTC_ID.to_string()]);
}

/// Audio both ways with aiortc: we send a 440 Hz sine as Opus and check what aiortc says it
/// heard (its `audio-result:` report on the data channel); aiortc sends 660 Hz and we check
/// the PCM we decode.
fn audio_both_ways(native: &Transport, p: &mut Aiortc) {
    let track = native.add_audio_track(TrackTarget::Peer(AIORTC_ID.into()), AudioSendConfig::default()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| send_sine(native, track, &[440.0], 48_000, 3.0, &[960], false));
        let report = p.expect(native, "aiortc's audio-result report", |e| {
            matches!(e, Event::DataChannelMessage { data, .. } if data.starts_with(b"audio-result:"))
        });
        let Event::DataChannelMessage { data, .. } = report else { unreachable!() };
        let v: serde_json::Value = serde_json::from_slice(&data["audio-result:".len()..]).unwrap();
        let hz = v["freq"].as_f64().unwrap();
        let dbfs = v["rms_dbfs"].as_f64().unwrap();
        assert!((hz - 440.0).abs() < 3.0, "aiortc heard {hz} Hz: {v}");
        // A 0.3 sine is -13.5 dBFS; Opus at 32 kbit/s keeps it within a few dB.
        assert!((-18.0..-10.0).contains(&dbfs), "aiortc heard {dbfs} dBFS: {v}");
    });
    // (Its TrackAdded event went by while we waited for the report: the stats list it.)
    let frames = collect(native, AIORTC_ID, Duration::from_secs(2));
    let rx = native.stats().remote_audio_tracks;
    assert!(rx.iter().any(|r| r.peer_id == AIORTC_ID && r.codec == "opus" && r.decode_errors == 0), "{rx:?}");
    assert!(frames.len() > 50, "only {} frames from aiortc", frames.len());
    let x = channel(&frames, 0);
    let x = &x[x.len() / 4..];
    let hz = frequency(x, 48_000);
    assert!((hz - 660.0).abs() < 3.0, "we heard {hz:.1} Hz from aiortc");
    // aiortc upmixes its 0.3 mono tone to stereo at -3 dB: RMS 0.15.
    assert!((0.08..0.25).contains(&rms(x)), "RMS {:.3} from aiortc", rms(x));
}

#[test]
fn native_calls_aiortc_with_audio() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-caller");
    let mut p = Aiortc::launch_with(&s.url(), None, &["--audio", "--tone", "660"]);
    p.expect(&native, "aiortc announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == AIORTC_ID));
    native.connect_peer(AIORTC_ID).unwrap();
    p.expect(&native, "the default channel to aiortc opening", is_open(AIORTC_ID, "data"));
    audio_both_ways(&native, &mut p);
}

#[test]
fn aiortc_calls_native_with_audio() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut p = Aiortc::launch_with(&s.url(), Some("native-callee"), &["--audio", "--tone", "660"]);
    p.expect(&native, "aiortc's \"data\" channel opening", is_open(AIORTC_ID, "data"));
    audio_both_ways(&native, &mut p);
}

/// Video both ways with aiortc (VP8 only): it reports what it decoded of our moving pattern
/// (`video-result:`), we decode its pattern.
fn video_both_ways(native: &Transport, p: &mut Aiortc) {
    let track = native.add_video_track(TrackTarget::Peer(AIORTC_ID.into()), Default::default()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| send_pattern(native, track, 0, 150, 30, |_| (640, 480)));
        let report = p.expect(native, "aiortc's video-result report", |e| {
            matches!(e, Event::DataChannelMessage { data, .. } if data.starts_with(b"video-result:"))
        });
        let Event::DataChannelMessage { data, .. } = report else { unreachable!() };
        let v: serde_json::Value = serde_json::from_slice(&data["video-result:".len()..]).unwrap();
        assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(480)), "{v}");
        assert!(v["frames"].as_u64().unwrap() >= 30, "{v}");
        assert!(v["motion"].as_f64().unwrap() > 0.5, "aiortc saw no motion: {v}");
        assert!(v["codec"].as_str().unwrap_or("").eq_ignore_ascii_case("video/vp8"), "{v}");
        let frames = vid::collect(native, AIORTC_ID, Duration::from_secs(2));
        assert!(frames.len() > 20, "only {} frames from aiortc in 2 s", frames.len());
        assert!(frames.iter().all(|f| (f.width, f.height) == (640, 480)));
    });
    let rx = native.stats().remote_video_tracks;
    assert!(rx.iter().any(|r| r.peer_id == AIORTC_ID && r.codec == "vp8" && r.frames_decoded > 20 && r.decode_errors == 0), "{rx:?}");
    // aiortc estimates the bandwidth of our stream (REMB, no transport-cc): the encoder follows
    // it, between the floor and the track's bitrate.
    let pm = native.stats().peer_media;
    let v = pm.iter().find(|m| m.peer_id == AIORTC_ID && m.kind == "video").expect("no video sender to aiortc");
    let st = native.video_track_stats(track).unwrap();
    eprintln!("aiortc's REMB: {:?}; our target {} of {} kbit/s", v.feedback.remb_bps, st.target_bitrate_kbps, st.max_bitrate_kbps);
    let remb = v.feedback.remb_bps.expect("aiortc sent no REMB");
    let expected = ((remb / 1000) as u32).clamp(150, st.max_bitrate_kbps);
    assert!(st.target_bitrate_kbps.abs_diff(expected) <= st.max_bitrate_kbps / 4, "target {} kbit/s, REMB {remb} bit/s", st.target_bitrate_kbps);
}

#[test]
fn native_calls_aiortc_with_video() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-caller");
    let mut p = Aiortc::launch_with(&s.url(), None, &["--video", "--video-report-after", "45"]);
    p.expect(&native, "aiortc announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == AIORTC_ID));
    native.connect_peer(AIORTC_ID).unwrap();
    p.expect(&native, "the default channel to aiortc opening", is_open(AIORTC_ID, "data"));
    video_both_ways(&native, &mut p);
}

#[test]
fn aiortc_calls_native_with_video() {
    if !aiortc_available() {
        return;
    }
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut p = Aiortc::launch_with(&s.url(), Some("native-callee"), &["--video", "--video-report-after", "45"]);
    p.expect(&native, "aiortc's \"data\" channel opening", is_open(AIORTC_ID, "data"));
    video_both_ways(&native, &mut p);
}
