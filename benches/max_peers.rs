//! How many audio peers one process holds (not a test; never asserted):
//! `cargo bench --bench max_peers [-- quick]` (or `RMW_BENCH_SHORT=1`: one step of 8 peers).
//!
//! A "hub" transport (this process; `max_peers` at the config maximum, 1024; 2 worker threads,
//! the default; video off; mono output) connects to N "leaf" transports that run in a child
//! process (this program re-executed with `--leaves N --url URL --prefix P`), so that the
//! hub's CPU is measured alone (getrusage of this process, minus the bundled signaling
//! server's threads, which also live here but are idle while we measure).
//!
//! Media: the hub sends one Opus track (`TrackTarget::All`, default settings: 48 kHz mono,
//! 20 ms, 32 kbit/s, complexity 9, FEC) of a 440 Hz sine, paced in real time; every leaf
//! (or the first `RMW_MAXPEERS_SENDERS` of them) sends one Opus track to the hub, complexity
//! `RMW_MAXPEERS_LEAF_COMPLEXITY` (default 0: the leaves' encoders share the 2 cores with the
//! hub, and the hub's decoding cost does not depend on the sender's complexity). Both sides
//! drain decoded audio with `poll_audio` and count frames per peer, real and concealed.
//!
//! Per step of N: connect time for all (first `connect_peer` → last `PeerStateChanged
//! Connected`), then the leaves start sending; after 2 s of settling, a window of W seconds
//! (10, short mode 5): hub CPU (% of one core), hub RSS, real (not concealed) frames received
//! per peer at the hub and at the leaves against the 50 per second expected, the receive
//! stats' loss and concealment, frames dropped from full queues, how much of real time the
//! hub's encoder and the leaves' senders kept up with, and the child's CPU and RSS. The hub's
//! CPU is split (schedstat) into its encoder thread (`rmw-audio-enc`: encodes each frame once
//! and writes it to every peer) and its runtime workers (`rmw-transport`: receive, decode),
//! with the time they spent runnable but waiting for a CPU (how saturated the machine was).
//! After each step: the hub process's RSS (after `malloc_trim`), descriptors and threads, to
//! see what a closed transport leaves behind.
//! Delay jitter: per peer, each real frame's (receipt − first receipt) − (its RTP time − the
//! first's), minus the peer's smallest such value; p50/p99/max over all frames. Receipt is the
//! `poll_audio` return at the hub (polled continuously), the packet's arrival time
//! (`AudioFrame::arrival_us`) at the leaves (their thread polls only every 20 ms).
//!
//! "Holds" = all N connected and at least 99% of the expected frames delivered as real
//! (not concealed) audio in both directions (summed over peers, each capped at 100% so a
//! backlog from before the window cannot make up for a starved peer; the worst peer is shown).
//! "On time" additionally asks the delay jitter's p99 to be at most 60 ms both ways (later
//! frames are useless to a real-time playout). Steps go up until one does not hold
//! (`RMW_MAXPEERS_STEPS=8,16,...` to choose them).
//!
//! `RMW_BENCH_LOG=2` prints the library's warnings (both processes) to stderr.
//!
//! Loopback only: the server binds 127.0.0.1, every transport uses `ice_policy: loopback`.

use remotemedia_webrtc::events::PeerState;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::{AudioFrame, AudioSendConfig, Pcm};
use remotemedia_webrtc::media::monotonic_us;
use remotemedia_webrtc::{Config, Error, Event, IcePolicy, ServerConfig, SignalingServer, Transport};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FRAME: usize = 960;
const FPS: f64 = 50.0;
const MAX_PEERS: u32 = 1024;
/// A frame later than this (delay jitter) is useless to a real-time playout with the default
/// 50 ms jitter buffer; "holds on time" asks p99 at most this, both ways.
const ON_TIME_MS: f64 = 60.0;

fn config(url: &str, id: &str) -> Config {
    Config {
        signaling_url: url.into(),
        peer_id: id.into(),
        ice_policy: IcePolicy::Loopback,
        enable_video: false,
        audio_output_channels: 1,
        capabilities: json!({"audio": true, "video": false, "data": true}),
        ..Default::default()
    }
}

fn wait_signaling(t: &Transport) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(Event::SignalingConnected) = t.poll_event(Some(Duration::from_millis(50))).unwrap() {
            return;
        }
    }
    panic!("{}: not connected to signaling within 60 s", t.local_peer_id());
}

/// Five 20 ms frames of a 440 Hz sine: 100 ms, a whole number of periods, sent in a loop.
fn sine_frames() -> Vec<Vec<f32>> {
    (0..5).map(|k| (0..FRAME).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * (k * FRAME + i) as f32 / 48_000.0).sin()).collect()).collect()
}

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU seconds of this process's threads whose name starts with `prefix` (schedstat, ns).
fn thread_cpu(prefix: &str) -> f64 {
    thread_sched(prefix).0
}

/// (CPU seconds, seconds spent runnable but waiting for a CPU) of this process's threads
/// whose name starts with `prefix` (schedstat, ns).
fn thread_sched(prefix: &str) -> (f64, f64) {
    let (mut run, mut wait) = (0.0, 0.0);
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else { continue };
        if comm.starts_with(prefix) {
            let sched = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            let mut f = sched.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0) / 1e9);
            run += f.next().unwrap_or(0.0);
            wait += f.next().unwrap_or(0.0);
        }
    }
    (run, wait)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().trim_end_matches(" kB").parse().unwrap_or(0)))
        .unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// `RMW_BENCH_LOG=2` (1 = errors … 5 = trace): the library's diagnostics to stderr.
fn log_to_stderr(who: &'static str) {
    if let Some(level) = std::env::var("RMW_BENCH_LOG").ok().and_then(|v| v.parse::<u8>().ok()) {
        let sink: remotemedia_webrtc::logging::Sink = Arc::new(move |l, target, msg| eprintln!("[{who} {l} {target}] {msg}"));
        remotemedia_webrtc::logging::set_sink(Some(sink), level);
    }
}

fn raise_nofile() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer; raising the soft limit to the hard one is always allowed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

/// What one receiver got from one remote peer.
#[derive(Default, Clone)]
struct PeerRx {
    real: u64,
    concealed: u64,
    /// While recording: the first real frame's RTP timestamp and poll time (ms) ...
    first: Option<(u32, f64)>,
    /// ... and, per real frame, (poll time − first) − (media time − first's), in ms: how much
    /// later than the first one it came, relative to when it should have.
    delays_ms: Vec<f32>,
}

impl PeerRx {
    /// `now_ms`: when the frame counts as received (poll time, or the packet's arrival).
    fn add(&mut self, f: &AudioFrame, recording: bool, now_ms: f64) {
        if f.concealed {
            self.concealed += 1;
            return;
        }
        self.real += 1;
        if recording {
            let now = now_ms;
            let (ts0, t0) = *self.first.get_or_insert((f.rtp_timestamp, now));
            let media_ms = f.rtp_timestamp.wrapping_sub(ts0) as i32 as f64 / 48.0;
            self.delays_ms.push((now - t0 - media_ms) as f32);
        }
    }

    fn start_recording(&mut self) {
        self.first = None;
        self.delays_ms.clear();
    }
}

/// Delay jitter over all peers: each frame's delay minus its peer's smallest, p50/p99/max (ms).
fn jitter<'a>(peers: impl Iterator<Item = &'a PeerRx>) -> [f64; 3] {
    let mut all: Vec<f32> = Vec::new();
    for p in peers {
        let min = p.delays_ms.iter().copied().fold(f32::INFINITY, f32::min);
        all.extend(p.delays_ms.iter().map(|d| d - min));
    }
    if all.is_empty() {
        return [f64::NAN; 3];
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] as f64;
    [at(0.5), at(0.99), at(1.0)]
}

type Counts = Arc<Mutex<HashMap<String, PeerRx>>>;

/// Drains `t`'s decoded audio on a thread of its own until `stop`.
fn drain_audio(t: Arc<Transport>, counts: Counts, recording: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match t.poll_audio(Some(Duration::from_millis(50))) {
                Ok(Some(f)) => {
                    let rec = recording.load(Ordering::Relaxed);
                    counts.lock().unwrap().entry(f.peer_id.clone()).or_default().add(&f, rec, monotonic_us() as f64 / 1e3);
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    })
}

/// Sums over the remote audio tracks: (packets received, lost, concealed frames, FEC frames).
fn receive_totals(t: &Transport) -> [u64; 4] {
    t.stats().remote_audio_tracks.iter().fold([0; 4], |a, s| [a[0] + s.packets_received, a[1] + s.packets_lost, a[2] + s.frames_concealed, a[3] + s.frames_fec])
}

// ---------------------------------------------------------------------------------------------
// Child: the leaves.

fn leaves_main(n: usize, url: &str, prefix: &str) {
    raise_nofile();
    log_to_stderr("leaves");
    let senders: usize = std::env::var("RMW_MAXPEERS_SENDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(n).min(n);
    let complexity: u8 = std::env::var("RMW_MAXPEERS_LEAF_COMPLEXITY").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let leaves: Vec<Arc<Transport>> = (0..n)
        .map(|i| {
            let mut c = config(url, &format!("{prefix}{i}"));
            c.worker_threads = 1;
            Arc::new(Transport::new(c).unwrap())
        })
        .collect();
    for t in &leaves {
        wait_signaling(t);
    }
    let tracks: Vec<u64> = leaves[..senders]
        .iter()
        .map(|t| t.add_audio_track(TrackTarget::All, AudioSendConfig { complexity, ..Default::default() }).unwrap())
        .collect();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();

    // Leaf i: what it received from the hub; its sends taken and refused.
    let rx: Arc<Vec<Mutex<PeerRx>>> = Arc::new((0..n).map(|_| Mutex::default()).collect());
    let sent: Arc<Vec<[AtomicU64; 2]>> = Arc::new((0..n).map(|_| Default::default()).collect());
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sending = Arc::new(AtomicBool::new(false));
    let media = {
        let (leaves, rx, sent, recording, stop, sending) = (leaves.clone(), rx.clone(), sent.clone(), recording.clone(), stop.clone(), sending.clone());
        std::thread::spawn(move || {
            let pcm = sine_frames();
            let start = Instant::now();
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if sending.load(Ordering::Relaxed) {
                    for (i, track) in tracks.iter().enumerate() {
                        let refused = leaves[i].send_audio(*track, Pcm::F32(&pcm[k as usize % 5])).is_err();
                        sent[i][usize::from(refused)].fetch_add(1, Ordering::Relaxed);
                    }
                }
                let rec = recording.load(Ordering::Relaxed);
                for (i, t) in leaves.iter().enumerate() {
                    let mut r = rx[i].lock().unwrap();
                    while let Ok(Some(f)) = t.poll_audio(Some(Duration::ZERO)) {
                        // Polled every 20 ms: the packet's arrival time says more than ours.
                        let arrival = f.arrival_us as f64 / 1e3;
                        r.add(&f, rec, arrival);
                    }
                }
                k += 1;
                // Paced like a sound card: frame k is due at k × 20 ms (late frames go at once).
                if let Some(wait) = (start + Duration::from_millis(20 * k)).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    let snapshot = |leaves: &[Arc<Transport>]| -> (Vec<[u64; 4]>, [u64; 4], u64, f64, Instant) {
        let c = (0..n)
            .map(|i| {
                let r = rx[i].lock().unwrap();
                [r.real, r.concealed, sent[i][0].load(Ordering::Relaxed), sent[i][1].load(Ordering::Relaxed)]
            })
            .collect();
        let totals = leaves.iter().map(|t| receive_totals(t)).fold([0; 4], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]);
        let dropped = leaves.iter().map(|t| t.stats().audio_frames_dropped).sum();
        (c, totals, dropped, cpu_seconds(), Instant::now())
    };
    let mut mark = None;
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "send" => sending.store(true, Ordering::Relaxed),
            "mark" => {
                rx.iter().for_each(|r| r.lock().unwrap().start_recording());
                recording.store(true, Ordering::Relaxed);
                mark = Some(snapshot(&leaves));
                writeln!(out, "marked").unwrap();
            }
            "report" => {
                let (c0, rx0, d0, cpu0, t0) = mark.take().expect("report before mark");
                let (c1, rx1, d1, cpu1, t1) = snapshot(&leaves);
                recording.store(false, Ordering::Relaxed);
                let guards: Vec<_> = rx.iter().map(|r| r.lock().unwrap()).collect();
                let jit = jitter(guards.iter().map(|g| &**g));
                drop(guards);
                let secs = (t1 - t0).as_secs_f64();
                let real: Vec<u64> = (0..n).map(|i| c1[i][0] - c0[i][0]).collect();
                let concealed: u64 = (0..n).map(|i| c1[i][1] - c0[i][1]).sum();
                let sent_ok: u64 = (0..n).map(|i| c1[i][2] - c0[i][2]).sum();
                let refused: u64 = (0..n).map(|i| c1[i][3] - c0[i][3]).sum();
                let connected = leaves.iter().filter(|t| t.stats().connected_peers > 0).count();
                let unconnected: Vec<String> = leaves
                    .iter()
                    .filter(|t| t.stats().connected_peers == 0)
                    .map(|t| format!("{}: peers {:?}", t.local_peer_id(), t.peers().iter().map(|p| (p.peer_id.clone(), p.state)).collect::<Vec<_>>()))
                    .collect();
                let report = json!({
                    "seconds": secs, "real": real, "concealed": concealed, "sent": sent_ok, "send_refused": refused, "jitter": jit,
                    "rx_packets": rx1[0] - rx0[0], "rx_lost": rx1[1] - rx0[1], "rx_concealed": rx1[2] - rx0[2], "rx_fec": rx1[3] - rx0[3],
                    "queue_dropped": d1 - d0, "cpu": (cpu1 - cpu0) / secs, "rss_kb": status_kb("VmRSS:"), "threads": threads(),
                    "connected": connected, "unconnected": unconnected,
                });
                writeln!(out, "{report}").unwrap();
            }
            _ => {}
        }
        out.flush().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    media.join().unwrap();
    // Closing 1000 transports one by one takes a while; the parent waits for us.
    for t in &leaves {
        t.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Parent: the hub.

struct Leaves {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Leaves {
    fn spawn(n: usize, url: &str, prefix: &str) -> Leaves {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--leaves", &n.to_string(), "--url", url, "--prefix", prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Leaves { child, stdin, stdout }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the leaves' process ended early");
        line.trim().to_string()
    }
}

impl Drop for Leaves {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the hub's event thread saw, per peer.
#[derive(Default)]
struct Seen {
    connected: HashSet<String>,
    /// Peers that went Disconnected/Failed/Closed after having been connected, or failed.
    trouble: HashMap<String, PeerState>,
    tracks: HashSet<String>,
    errors: Vec<String>,
}

struct Step {
    n: usize,
    senders: usize,
    connected: usize,
    connect_ms: f64,
    tracks: usize,
    trouble: usize,
    hub_cpu: f64,
    /// The hub's encoder thread (encodes once, writes the packet to every peer) and its
    /// runtime's workers (receive, decode), each in % of one core.
    hub_enc_cpu: f64,
    hub_rt_cpu: f64,
    /// The same threads' time runnable but waiting for a CPU (the machine's contention).
    hub_enc_wait: f64,
    hub_rt_wait: f64,
    hub_rss_mb: f64,
    hub_threads: usize,
    hub_rx: f64,
    hub_rx_worst: f64,
    hub_concealed: u64,
    hub_lost: u64,
    hub_dropped: u64,
    hub_jitter: [f64; 3],
    hub_sent: f64,
    reach: f64,
    leaf_rx: f64,
    leaf_rx_worst: f64,
    leaf_concealed: u64,
    leaf_lost: u64,
    leaf_cpu: f64,
    leaf_rss_mb: f64,
    leaf_refused: u64,
    leaf_sent: f64,
    leaf_jitter: [f64; 3],
    holds: bool,
    on_time: bool,
    note: String,
    /// After the step's hub closed and its leaves exited: RSS (MB, after malloc_trim), open
    /// descriptors, threads of this process.
    after: (f64, usize, usize),
}

fn step(url: &str, n: usize, window: f64) -> Step {
    let senders: usize = std::env::var("RMW_MAXPEERS_SENDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(n).min(n);
    let prefix = format!("leaf{n}-");
    let mut leaves = Leaves::spawn(n, url, &prefix);
    assert_eq!(leaves.read(), "ready");

    let mut c = config(url, &format!("hub{n}"));
    c.max_peers = MAX_PEERS;
    c.audio_queue_capacity = 1 << 16;
    let hub = Arc::new(Transport::new(c).unwrap());
    wait_signaling(&hub);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let events = {
        let (hub, seen, stop) = (hub.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(e)) = hub.poll_event(Some(Duration::from_millis(50))) else { continue };
                let mut s = seen.lock().unwrap();
                match e {
                    Event::PeerStateChanged { peer_id, state: PeerState::Connected } => {
                        s.connected.insert(peer_id);
                    }
                    Event::PeerStateChanged { peer_id, state: st @ (PeerState::Disconnected | PeerState::Failed | PeerState::Closed) } => {
                        s.trouble.insert(peer_id, st);
                    }
                    Event::TrackAdded { peer_id, .. } => {
                        s.tracks.insert(peer_id);
                    }
                    Event::Error { peer_id, message } => s.errors.push(format!("{peer_id:?}: {message}")),
                    _ => {}
                }
            }
        })
    };
    let counts: Counts = Arc::default();
    let recording = Arc::new(AtomicBool::new(false));
    let drain = drain_audio(hub.clone(), counts.clone(), recording.clone(), stop.clone());
    // The hub's stream runs from the start, as in a call peers join.
    let track = hub.add_audio_track(TrackTarget::All, AudioSendConfig::default()).unwrap();
    let sender = {
        let (hub, stop) = (hub.clone(), stop.clone());
        std::thread::spawn(move || {
            let pcm = sine_frames();
            let start = Instant::now();
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = hub.send_audio(track, Pcm::F32(&pcm[k as usize % 5]));
                k += 1;
                if let Some(wait) = (start + Duration::from_millis(20 * k)).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };

    // Connect to every leaf.
    let t0 = Instant::now();
    let mut note = String::new();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match hub.connect_peer(&id) {
                Ok(()) => break,
                Err(Error::NotFound(_)) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    note = format!("connect_peer({id}): {e}");
                    break;
                }
            }
        }
    }
    let connect_deadline = t0 + Duration::from_secs_f64(30.0 + 0.25 * n as f64);
    let mut connect_ms = f64::NAN;
    while Instant::now() < connect_deadline {
        if seen.lock().unwrap().connected.len() >= n {
            connect_ms = t0.elapsed().as_secs_f64() * 1e3;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let connected = seen.lock().unwrap().connected.len();
    if connected < n {
        let s = seen.lock().unwrap();
        let missing: Vec<String> = (0..n)
            .map(|i| format!("{prefix}{i}"))
            .filter(|id| !s.connected.contains(id))
            .map(|id| {
                let st = hub.peers().into_iter().find(|p| p.peer_id == id).map_or("no peer entry".to_string(), |p| format!("{} initiator={} channels={}", p.state, p.initiator, p.channels.len()));
                format!("{id} (hub: {st})")
            })
            .collect();
        println!("    not connected after {:.0} s: {}", connect_deadline.duration_since(t0).as_secs_f64(), missing.join(", "));
    }

    // Leaves start sending; settle until every sender's track is in (at most 10 s), then 2 s.
    leaves.say("send");
    let settle = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().tracks.len() < senders && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));

    let server_cpu0 = thread_cpu("rmw-signaling");
    let (enc0, rt0) = (thread_sched("rmw-audio-enc"), thread_sched("rmw-transport"));
    let (cpu0, w0) = (cpu_seconds(), Instant::now());
    let hub0: HashMap<String, [u64; 2]> = {
        let mut c = counts.lock().unwrap();
        c.values_mut().for_each(PeerRx::start_recording);
        recording.store(true, Ordering::Relaxed);
        c.iter().map(|(k, v)| (k.clone(), [v.real, v.concealed])).collect()
    };
    let rx0 = receive_totals(&hub);
    let drop0 = hub.stats().audio_frames_dropped;
    let send0 = hub.audio_track_stats(track).unwrap();
    leaves.say("mark");
    assert_eq!(leaves.read(), "marked");
    std::thread::sleep(Duration::from_secs_f64(window));
    leaves.say("report");
    recording.store(false, Ordering::Relaxed);
    let (hub1, hub_jitter): (HashMap<String, [u64; 2]>, [f64; 3]) = {
        let c = counts.lock().unwrap();
        (c.iter().map(|(k, v)| (k.clone(), [v.real, v.concealed])).collect(), jitter(c.values()))
    };
    let (cpu1, secs) = (cpu_seconds(), w0.elapsed().as_secs_f64());
    let server_cpu = thread_cpu("rmw-signaling") - server_cpu0;
    let (enc1, rt1) = (thread_sched("rmw-audio-enc"), thread_sched("rmw-transport"));
    let (enc_cpu, enc_wait, rt_cpu, rt_wait) = (enc1.0 - enc0.0, enc1.1 - enc0.1, rt1.0 - rt0.0, rt1.1 - rt0.1);
    let rx1 = receive_totals(&hub);
    let drop1 = hub.stats().audio_frames_dropped;
    let send1 = hub.audio_track_stats(track).unwrap();
    let hub_rss_mb = status_kb("VmRSS:") as f64 / 1024.0;
    let hub_threads = threads();
    let report: Value = serde_json::from_str(&leaves.read()).unwrap();
    if let Some(u) = report["unconnected"].as_array().filter(|u| !u.is_empty()) {
        println!("    leaves without a connected peer: {}", u.iter().map(|v| v.as_str().unwrap_or("?")).collect::<Vec<_>>().join("; "));
    }

    // Hub side: real frames per sending leaf against 50 per second of window.
    let expected = secs * FPS;
    let per_peer: Vec<f64> = (0..senders)
        .map(|i| {
            let id = format!("{prefix}{i}");
            let got = hub1.get(&id).map_or(0, |c| c[0]) - hub0.get(&id).map_or(0, |c| c[0]);
            got as f64 / expected
        })
        .collect();
    let hub_concealed: u64 = hub1.values().map(|c| c[1]).sum::<u64>() - hub0.values().map(|c| c[1]).sum::<u64>();
    // Capped at 100% per peer: a backlog from before the window must not make up for a peer
    // that got too little.
    let hub_rx = per_peer.iter().map(|r| r.min(1.0)).sum::<f64>() / senders.max(1) as f64;
    let hub_rx_worst = per_peer.iter().copied().fold(f64::INFINITY, f64::min);
    // Leaf side.
    let leaf_secs = report["seconds"].as_f64().unwrap();
    let real: Vec<f64> = report["real"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as f64 / (leaf_secs * FPS)).collect();
    let leaf_rx = real.iter().map(|r| r.min(1.0)).sum::<f64>() / n as f64;
    let leaf_sent = report["sent"].as_u64().unwrap() as f64 / (leaf_secs * FPS * senders.max(1) as f64);
    let leaf_jitter: Vec<f64> = report["jitter"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
    let leaf_rx_worst = real.iter().copied().fold(f64::INFINITY, f64::min);
    let frames = (send1.frames_encoded - send0.frames_encoded) as f64;
    let hub_sent = frames / (secs * FPS);
    let reach = (send1.packets_sent - send0.packets_sent) as f64 / (frames * n as f64).max(1.0);
    let s = seen.lock().unwrap();
    let trouble = s.trouble.len();
    if note.is_empty() && !s.errors.is_empty() {
        note = format!("{} error events, first: {}", s.errors.len(), s.errors[0]);
    }
    let tracks = s.tracks.len();
    drop(s);
    let holds = connected == n && hub_rx >= 0.99 && leaf_rx >= 0.99;

    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    drain.join().unwrap();
    events.join().unwrap();
    hub.close();
    drop(hub);
    drop(leaves);
    // What the step left behind in this process (the signaling server stays): RSS once glibc
    // has returned what it can, open descriptors, threads.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain libc call.
    unsafe { libc::malloc_trim(0) };
    let after = (status_kb("VmRSS:") as f64 / 1024.0, std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0), threads());
    Step {
        after,
        n,
        senders,
        connected,
        connect_ms,
        tracks,
        trouble,
        hub_cpu: (cpu1 - cpu0 - server_cpu) / secs,
        hub_enc_cpu: enc_cpu / secs,
        hub_rt_cpu: rt_cpu / secs,
        hub_enc_wait: enc_wait / secs,
        hub_rt_wait: rt_wait / secs,
        hub_rss_mb,
        hub_threads,
        hub_rx,
        hub_rx_worst,
        hub_concealed,
        hub_lost: rx1[1] - rx0[1],
        hub_dropped: drop1 - drop0,
        hub_jitter,
        hub_sent,
        reach,
        leaf_rx,
        leaf_rx_worst,
        leaf_concealed: report["concealed"].as_u64().unwrap(),
        leaf_lost: report["rx_lost"].as_u64().unwrap(),
        leaf_cpu: report["cpu"].as_f64().unwrap(),
        leaf_rss_mb: report["rss_kb"].as_u64().unwrap() as f64 / 1024.0,
        leaf_refused: report["send_refused"].as_u64().unwrap(),
        leaf_sent,
        leaf_jitter: [leaf_jitter[0], leaf_jitter[1], leaf_jitter[2]],
        holds,
        on_time: holds && hub_jitter[1] <= ON_TIME_MS && leaf_jitter[1] <= ON_TIME_MS,
        note,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--leaves") {
        let arg = |name: &str| args.iter().position(|a| a == name).map(|j| args[j + 1].clone()).unwrap();
        return leaves_main(args[i + 1].parse().unwrap(), &arg("--url"), &arg("--prefix"));
    }
    raise_nofile();
    log_to_stderr("hub");
    let short = args.iter().any(|a| a == "quick") || std::env::var("RMW_BENCH_SHORT").is_ok_and(|v| v == "1");
    let mut steps: Vec<usize> = if short { vec![8] } else { vec![8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024] };
    if let Ok(v) = std::env::var("RMW_MAXPEERS_STEPS") {
        steps = v.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    }
    let window = if short { 5.0 } else { 10.0 };
    let server = SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), max_message_bytes: 256 * 1024, ..Default::default() }).unwrap();
    let url = server.url();
    println!("hub process before the first step: RSS {:.1} MB, {} fds, {} threads", status_kb("VmRSS:") as f64 / 1024.0, std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0), threads());
    let complexity = std::env::var("RMW_MAXPEERS_LEAF_COMPLEXITY").unwrap_or_else(|_| "0".into());
    println!(
        "max peers with audio ({}), {} cores; hub max_peers {MAX_PEERS}, {window} s windows; leaves in a child process, encoder complexity {complexity}",
        if short { "short" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("load average at start: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    let mut rows = Vec::new();
    for &n in &steps {
        if n as u32 > MAX_PEERS {
            break;
        }
        let s = step(&url, n, window);
        println!(
            "  N={:<4} connected {}/{} in {:.0} ms, tracks {}/{}, trouble {}; hub: cpu {:.1}% (encoder thread {:.1}% + {:.1}% waiting for a cpu, runtime workers {:.1}% + {:.1}% waiting), rss {:.1} MB, {} threads, encoded {:.1}% of real time, sent to {:.1}% of peers, rx {:.2}% (worst peer {:.2}%), concealed {}, lost {}, queue drops {}, delay jitter p50/p99/max {:.1}/{:.1}/{:.1} ms; leaves: sent {:.1}% of real time ({} refused), rx {:.2}% (worst {:.2}%), concealed {}, lost {}, jitter {:.1}/{:.1}/{:.1} ms, cpu {:.0}%, rss {:.0} MB{}",
            s.n, s.connected, s.n, s.connect_ms, s.tracks, s.senders, s.trouble, s.hub_cpu * 100.0, s.hub_enc_cpu * 100.0, s.hub_enc_wait * 100.0, s.hub_rt_cpu * 100.0, s.hub_rt_wait * 100.0, s.hub_rss_mb, s.hub_threads,
            s.hub_sent * 100.0, s.reach * 100.0, s.hub_rx * 100.0, s.hub_rx_worst * 100.0, s.hub_concealed, s.hub_lost, s.hub_dropped,
            s.hub_jitter[0], s.hub_jitter[1], s.hub_jitter[2],
            s.leaf_sent * 100.0, s.leaf_refused, s.leaf_rx * 100.0, s.leaf_rx_worst * 100.0, s.leaf_concealed, s.leaf_lost,
            s.leaf_jitter[0], s.leaf_jitter[1], s.leaf_jitter[2], s.leaf_cpu * 100.0, s.leaf_rss_mb,
            if s.note.is_empty() { String::new() } else { format!("; {}", s.note) }
        );
        println!("         after close: hub process RSS {:.1} MB (after malloc_trim), {} fds, {} threads", s.after.0, s.after.1, s.after.2);
        let holds = s.holds;
        rows.push(s);
        if !holds {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(server);

    println!();
    println!("| N | connected | connect all | hub CPU (% of one core) | of which encoder thread / runtime | hub threads waiting for a CPU | per peer | hub RSS | hub rx: real frames (worst peer) | hub rx: concealed / lost pkts / queue drops | hub rx delay jitter p99 / max | leaves sent (% of real time) | leaves rx: real frames (worst) | leaves rx: concealed / lost pkts | leaves rx jitter p99 | leaves' CPU | holds | on time |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &rows {
        println!(
            "| {} | {}/{} | {:.0} ms | {:.1}% | {:.1}% / {:.1}% | {:.0}% | {:.2}% | {:.0} MB | {:.2}% ({:.2}%) | {} / {} / {} | {:.1} / {:.1} ms | {:.1}% | {:.2}% ({:.2}%) | {} / {} | {:.1} ms | {:.0}% | {} | {} |",
            s.n, s.connected, s.n, s.connect_ms, s.hub_cpu * 100.0, s.hub_enc_cpu * 100.0, s.hub_rt_cpu * 100.0, (s.hub_enc_wait + s.hub_rt_wait) * 100.0, s.hub_cpu * 100.0 / s.n as f64, s.hub_rss_mb,
            s.hub_rx * 100.0, s.hub_rx_worst * 100.0, s.hub_concealed, s.hub_lost, s.hub_dropped, s.hub_jitter[1], s.hub_jitter[2],
            s.leaf_sent * 100.0, s.leaf_rx * 100.0, s.leaf_rx_worst * 100.0, s.leaf_concealed, s.leaf_lost, s.leaf_jitter[1], s.leaf_cpu * 100.0,
            if s.holds { "yes" } else { "**no**" },
            if s.on_time { "yes" } else { "**no**" }
        );
    }
    let best = |f: fn(&Step) -> bool| rows.iter().filter(|s| f(s)).map(|s| s.n).max().map_or("none".to_string(), |n| n.to_string());
    println!();
    println!("largest N that holds (all connected, >= 99% of frames both ways): {}", best(|s| s.holds));
    println!("largest N that also holds on time (delay jitter p99 <= {ON_TIME_MS} ms both ways): {}", best(|s| s.on_time));
    println!("load average at end: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
}
