//! Interop with a real browser: headless Chromium loads the page our signaling server serves
//! (src/signaling/web/peer.html), joins through that server and exchanges data-channel
//! messages both ways with a native Transport. Loopback only, no STUN.
//!
//! Without /usr/bin/chromium the tests print a skip note and pass, unless
//! RMW_REQUIRE_CHROMIUM=1 (CI), where they fail.

mod common;
use common::audio::*;
use common::video::{self as vid, send_pattern};
use common::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::AudioSendConfig;
use remotemedia_webrtc::transport::Target;
use remotemedia_webrtc::{Event, Transport};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest wait for any one step (Chromium's start-up included in the first).
const STEP: Duration = Duration::from_secs(20);
/// One browser at a time: two Chromiums starting at once on a small CI machine are slow.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// A running headless Chromium, killed (with its whole process group) on drop, also when the
/// test panics.
struct Browser {
    child: Child,
    dir: PathBuf,
    stderr: PathBuf,
}

impl Browser {
    fn launch(url: &str) -> Browser {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rmw-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stderr = dir.join("stderr.log");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--allow-loopback-in-peer-connection",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                // The page plays received audio in an <audio> element (Chromium measures its
                // level only then) and starts an AudioContext: no user gesture here.
                "--autoplay-policy=no-user-gesture-required",
                // The page's console.log lines land in stderr: shown when a test fails.
                "--enable-logging=stderr",
                "--log-level=0",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            // Its own process group, so drop can end the renderer and helpers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        Browser { child, dir, stderr }
    }

    /// The last lines Chromium wrote to stderr (the page's console included), without the
    /// D-Bus complaints of a machine that has no session bus.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits for the first event of `t` matching `pred`; panics with `what`, the events seen
    /// and Chromium's stderr tail.
    fn expect(&mut self, t: &Transport, what: &str, pred: impl FnMut(&Event) -> bool) -> Event {
        let child = &mut self.child;
        match poll_until(t, STEP, pred, || child.try_wait().ok().flatten().map(|s| format!("chromium exited ({s})"))) {
            Ok(e) => e,
            Err((seen, Some(why))) => panic!("{why} while waiting for {what}; events seen: {seen:#?}\n--- chromium stderr ---\n{}", self.stderr_tail()),
            Err((seen, None)) => panic!("{what}: not seen within {STEP:?}; events seen: {seen:#?}\n--- chromium stderr (tail) ---\n{}", self.stderr_tail()),
        }
    }

    /// The next data-channel message from the browser, as text.
    fn expect_text(&mut self, t: &Transport, what: &str) -> String {
        match self.expect(t, what, |e| matches!(e, Event::DataChannelMessage { .. })) {
            Event::DataChannelMessage { peer_id, label, data, binary, .. } => {
                assert_eq!((peer_id.as_str(), label.as_str(), binary), ("browser", "data", false), "{what}");
                String::from_utf8(data.to_vec()).expect("browser sent invalid UTF-8")
            }
            _ => unreachable!(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on the process group we created for this child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// False (after a skip note) when the browser at `path` is missing and not required.
fn chromium_available(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("RMW_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("RMW_REQUIRE_CHROMIUM=1 but {path} does not exist: install it (Debian: apt-get install chromium)");
    }
    eprintln!("SKIPPED: {path} not found (set RMW_REQUIRE_CHROMIUM=1 to make this a failure)");
    false
}

fn page_url(server_url: &str, query: &str) -> String {
    format!("{}/?id=browser&echo=1{query}", server_url.replacen("ws://", "http://", 1))
}

/// Hello from the browser on the just-opened channel, then a ping echoed back.
fn exchange(b: &mut Browser, native: &Transport, send: impl FnOnce(&Transport)) {
    assert_eq!(b.expect_text(native, "the browser's hello"), "hello from browser");
    send(native);
    assert_eq!(b.expect_text(native, "the browser's echo of ping-native"), "echo:ping-native");
}

#[test]
fn native_calls_the_browser() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-caller");
    let mut b = Browser::launch(&page_url(&s.url(), ""));
    b.expect(&native, "the browser announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == "browser"));
    native.connect_peer("browser").unwrap();
    let ch = channel_of(&b.expect(&native, "the default channel to the browser opening", is_open("browser", "data")));
    exchange(&mut b, &native, |n| n.send_on_channel(ch, b"ping-native", false).unwrap());
    assert_eq!(native.connected_peers(), vec!["browser".to_string()]);
}

#[test]
fn browser_calls_native() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut b = Browser::launch(&page_url(&s.url(), "&call=native-callee"));
    let ch = channel_of(&b.expect(&native, "the browser's \"data\" channel opening", is_open("browser", "data")));
    let info = native.channel_info(ch).unwrap();
    assert!(!info.locally_created, "{info:?}");
    // The browser's "data" channel is our default channel: send_data reaches it.
    exchange(&mut b, &native, |n| assert_eq!(n.send_data(Target::Peer("browser"), b"ping-native", false).unwrap(), 1));
    assert_eq!(native.connected_peers(), vec!["browser".to_string()]);
}

/// The browser's `stats:` reports (every 500 ms) until one satisfies `ok`; returns it.
fn browser_stats(b: &mut Browser, native: &Transport, what: &str, mut ok: impl FnMut(&serde_json::Value) -> bool) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let found = b.expect(native, what, |e| match e {
        Event::DataChannelMessage { data, .. } if data.starts_with(b"stats:") => {
            last = serde_json::from_slice(&data[6..]).unwrap_or_default();
            ok(&last)
        }
        _ => false,
    });
    let Event::DataChannelMessage { data, .. } = found else { unreachable!() };
    serde_json::from_slice(&data[6..]).unwrap()
}

/// We send 440 Hz, the page sends 660 Hz (WebAudio oscillator): the browser's getStats must
/// show our Opus packets with energy and its analyser our frequency; our decoder must give
/// its frequency back as PCM.
fn audio_both_ways(b: &mut Browser, native: &Transport) {
    let track = native.add_audio_track(TrackTarget::Peer("browser".into()), AudioSendConfig::default()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| send_sine(native, track, &[440.0], 48_000, 4.0, &[960], false));
        let st = browser_stats(b, native, "browser stats showing our 440 Hz", |v| {
            v["in"]["packetsReceived"].as_u64().unwrap_or(0) > 50
                && v["in"]["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0
                && v["freq"].as_f64().is_some_and(|f| (f - 440.0).abs() < 5.0)
        });
        assert_eq!(st["in"]["mimeType"], "audio/opus", "{st}");
        let frames = collect(native, "browser", Duration::from_secs(1));
        assert!(frames.len() > 25, "only {} frames from the browser", frames.len());
        let x = channel(&frames, 0);
        let hz = frequency(&x[x.len() / 4..], 48_000);
        assert!((hz - 660.0).abs() < 3.0, "we heard {hz:.1} Hz from the browser");
    });
    let rx = native.stats().remote_audio_tracks;
    assert!(rx.iter().any(|r| r.peer_id == "browser" && r.frames_decoded > 25 && r.decode_errors == 0), "{rx:?}");
}

#[test]
fn native_calls_the_browser_with_audio() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-caller");
    let mut b = Browser::launch(&page_url(&s.url(), "&audio=1&tone=660"));
    b.expect(&native, "the browser announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == "browser"));
    native.connect_peer("browser").unwrap();
    b.expect(&native, "the default channel to the browser opening", is_open("browser", "data"));
    audio_both_ways(&mut b, &native);
}

#[test]
fn browser_calls_native_with_audio() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut b = Browser::launch(&page_url(&s.url(), "&audio=1&tone=660&call=native-callee"));
    b.expect(&native, "the browser's \"data\" channel opening", is_open("browser", "data"));
    audio_both_ways(&mut b, &native);
}

#[test]
fn the_fake_microphone_arrives_as_pcm() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-callee");
    // No tone: the page sends getUserMedia's fake-device microphone (short beeps).
    let mut b = Browser::launch(&page_url(&s.url(), "&audio=1&call=native-callee"));
    b.expect(&native, "the browser's audio track", |e| matches!(e, Event::TrackAdded { peer_id, codec, .. } if peer_id == "browser" && codec == "opus"));
    let frames = collect(&native, "browser", Duration::from_secs(2));
    assert!(frames.len() > 50, "only {} frames of the fake microphone in 2 s", frames.len());
    assert!(frames.iter().all(|f| f.sample_rate == 48_000 && f.channels == 2 && f.samples_per_channel() == 960));
}

/// We send the moving pattern in `codec`; the browser (fake camera) sends its camera. The
/// browser's getStats must show our frames decoded in that codec; we must decode its frames.
fn video_both_ways(b: &mut Browser, native: &Transport, codec: &str) {
    let track = native.add_video_track(TrackTarget::Peer("browser".into()), Default::default()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| send_pattern(native, track, 0, 150, 30, |_| (640, 480)));
        let mime = format!("video/{}", codec.to_uppercase());
        let st = browser_stats(b, native, "browser stats showing our video decoded", |v| {
            v["vin"]["framesDecoded"].as_u64().unwrap_or(0) > 20 && v["vin"]["mimeType"].as_str() == Some(&mime)
        });
        assert_eq!((st["vin"]["frameWidth"].as_u64(), st["vin"]["frameHeight"].as_u64()), (Some(640), Some(480)), "{st}");
        let frames = vid::collect(native, "browser", Duration::from_secs(2));
        assert!(frames.len() > 20, "only {} frames from the browser's camera in 2 s: {:?}", frames.len(), native.stats().remote_video_tracks);
        assert!(frames.iter().all(|f| f.width > 0 && f.height > 0));
    });
    let rx = native.stats().remote_video_tracks;
    assert!(rx.iter().any(|r| r.peer_id == "browser" && r.frames_decoded > 20 && r.decode_errors == 0), "{rx:?}");
}

#[test]
fn native_calls_the_browser_with_vp9_video() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let mut c = config(&s.url(), "native-caller");
    c.video_codec = "vp9".into();
    let native = remotemedia_webrtc::Transport::new(c).unwrap();
    wait_for(&native, |e| matches!(e, Event::SignalingConnected));
    let mut b = Browser::launch(&page_url(&s.url(), "&video=1"));
    b.expect(&native, "the browser announcing itself", |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == "browser"));
    native.connect_peer("browser").unwrap();
    b.expect(&native, "the default channel to the browser opening", is_open("browser", "data"));
    video_both_ways(&mut b, &native, "vp9");
}

#[test]
fn browser_calls_native_with_vp8_video() {
    if !chromium_available(CHROMIUM) {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let native = transport(&s.url(), "native-callee");
    let mut b = Browser::launch(&page_url(&s.url(), "&video=1&call=native-callee"));
    b.expect(&native, "the browser's \"data\" channel opening", is_open("browser", "data"));
    video_both_ways(&mut b, &native, "vp8");
}
