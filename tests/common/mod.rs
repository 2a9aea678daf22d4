//! Shared helpers for the integration tests: a real signaling server on 127.0.0.1 and real
//! transports restricted to loopback ICE candidates.
#![allow(dead_code)]

pub mod audio;
pub mod impair;
pub mod turn;
pub mod video;

use remotemedia_webrtc::events::PeerState;
use remotemedia_webrtc::{Config, Event, IcePolicy, ServerConfig, SignalingServer, Transport};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The `webrtc_server` binary in echo mode, announced as `id` on `url` when `spawn` returns;
/// SIGKILLed on `kill` or drop.
pub struct EchoPeer(std::process::Child);

impl EchoPeer {
    pub fn spawn(url: &str, id: &str) -> EchoPeer {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webrtc_server"))
            .env("WEBRTC_SIGNALING_URL", url)
            .env("WEBRTC_PEER_ID", id)
            .env("WEBRTC_ICE_POLICY", "loopback")
            .env("WEBRTC_DEMO", "echo")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It prints its events; read them all (a closed pipe would kill it) and wait for the
        // announce.
        let (tx, rx) = std::sync::mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.contains("SignalingConnected") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(TIMEOUT).expect("the echo peer did not get onto the signaling server");
        EchoPeer(child)
    }

    pub fn kill(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn server() -> SignalingServer {
    SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), ..Default::default() }).unwrap()
}

pub fn config(url: &str, id: &str) -> Config {
    Config {
        signaling_url: url.into(),
        peer_id: id.into(),
        ice_policy: IcePolicy::Loopback,
        reconnect_initial_ms: 20,
        reconnect_max_ms: 200,
        ..Default::default()
    }
}

pub fn transport(url: &str, id: &str) -> Transport {
    let t = Transport::new(config(url, id)).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

/// Polls until `pred` matches, returning the matching event; panics with the events seen.
pub fn wait_for(t: &Transport, pred: impl FnMut(&Event) -> bool) -> Event {
    poll_until(t, TIMEOUT, pred, || None).unwrap_or_else(|(seen, _)| panic!("{}: event not seen within {TIMEOUT:?}; saw {seen:#?}", t.local_peer_id()))
}

/// Polls until `pred` matches (the event), `timeout` passes or `stop` gives a reason to give up
/// (e.g. a peer process exited): then the events seen and that reason.
pub fn poll_until(
    t: &Transport,
    timeout: Duration,
    mut pred: impl FnMut(&Event) -> bool,
    mut stop: impl FnMut() -> Option<String>,
) -> Result<Event, (Vec<Event>, Option<String>)> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = t.poll_event(Some(Duration::from_millis(50))).unwrap() {
            if pred(&e) {
                return Ok(e);
            }
            seen.push(e);
        }
        if let Some(reason) = stop() {
            return Err((seen, Some(reason)));
        }
    }
    Err((seen, None))
}

/// Collects every event for `d`.
pub fn drain(t: &Transport, d: Duration) -> Vec<Event> {
    let deadline = Instant::now() + d;
    let mut v = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = t.poll_event(Some(Duration::from_millis(10))).unwrap() {
            v.push(e);
        }
    }
    v
}

pub fn is_open(peer: &str, label: &str) -> impl Fn(&Event) -> bool {
    let (p, l) = (peer.to_string(), label.to_string());
    move |e| matches!(e, Event::DataChannelOpen { peer_id, label, .. } if *peer_id == p && *label == l)
}

pub fn is_state(peer: &str, st: PeerState) -> impl Fn(&Event) -> bool {
    let p = peer.to_string();
    move |e| matches!(e, Event::PeerStateChanged { peer_id, state } if *peer_id == p && *state == st)
}

/// Connects `a` to `b` and waits for the default channel to open on both; returns the
/// channel ids (a's, b's).
pub fn connect(a: &Transport, b: &Transport) -> (u64, u64) {
    a.connect_peer(b.local_peer_id()).unwrap();
    let ca = channel_of(&wait_for(a, is_open(b.local_peer_id(), "data")));
    let cb = channel_of(&wait_for(b, is_open(a.local_peer_id(), "data")));
    (ca, cb)
}

pub fn channel_of(e: &Event) -> u64 {
    match e {
        Event::DataChannelOpen { channel, .. } => *channel,
        Event::DataChannelMessage { channel, .. } => *channel,
        _ => panic!("no channel in {e:?}"),
    }
}

/// Waits for the next message on any channel; returns (label, data, binary).
pub fn next_message(t: &Transport) -> (String, Vec<u8>, bool) {
    match wait_for(t, |e| matches!(e, Event::DataChannelMessage { .. })) {
        Event::DataChannelMessage { label, data, binary, .. } => (label, data.to_vec(), binary),
        _ => unreachable!(),
    }
}
