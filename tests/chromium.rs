//! Interop with a real browser: headless Chromium loads the page our signaling server serves
//! (src/signaling/web/peer.html), joins through that server and exchanges data-channel
//! messages both ways with a native Transport. Loopback only, no STUN.
//!
//! Without /usr/bin/chromium the tests print a skip note and pass, unless
//! RMW_REQUIRE_CHROMIUM=1 (CI), where they fail.

mod common;
use common::*;
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
