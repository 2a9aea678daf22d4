//! Faults a long-running application meets: the signaling server restarts during a call, and a
//! peer process dies (SIGKILL) mid-call. Figures are printed (`--nocapture`) for
//! docs/RELIABILITY.md.

mod common;

use common::audio::{collect, send_sine};
use common::*;
use remotemedia_webrtc::events::PeerState;
use remotemedia_webrtc::media::audio::AudioSendConfig;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::transport::Target;
use remotemedia_webrtc::{Config, Event, ServerConfig, SignalingServer, Transport};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests count this process's file descriptors and time failures: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Transports with the library's own reconnect settings (the common helper shortens them).
fn default_reconnect(url: &str, id: &str) -> Transport {
    let d = Config::default();
    let t = Transport::new(Config { reconnect_initial_ms: d.reconnect_initial_ms, reconnect_max_ms: d.reconnect_max_ms, ..config(url, id) }).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

#[test]
fn a_call_survives_a_signaling_restart_and_clients_return_within_2_s() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let addr = s.local_addr();
    let (a, b) = (default_reconnect(&s.url(), "alice"), default_reconnect(&s.url(), "bob"));
    let (ca, cb) = connect(&a, &b);
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig::default()).unwrap();

    s.stop();
    wait_for(&a, |e| matches!(e, Event::SignalingDisconnected { .. }));
    wait_for(&b, |e| matches!(e, Event::SignalingDisconnected { .. }));
    // Six seconds without a server: the reconnect backoff reaches its ceiling. Audio and data
    // go on peer to peer meanwhile.
    let down = Instant::now();
    let sender = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send_sine(&a, track, &[440.0], 48_000, 6.0, &[960], false));
        let heard = collect(&b, "alice", Duration::from_millis(5500));
        for i in 0..20 {
            a.send_on_channel(ca, format!("outage {i}").as_bytes(), false).unwrap();
        }
        (sender.join().unwrap(), heard)
    });
    let (sent, heard) = sender;
    let got: Vec<String> = (0..20).map(|_| String::from_utf8(next_message(&b).1).unwrap()).collect();
    assert_eq!(got, (0..20).map(|i| format!("outage {i}")).collect::<Vec<_>>(), "data during the outage");
    let heard_ms: u64 = heard.iter().map(|f| f.samples.len() as u64 * 1000 / (f.sample_rate as u64 * f.channels as u64)).sum();
    println!("outage: {:.1} s, audio sent {} ms, heard {heard_ms} ms", down.elapsed().as_secs_f64(), sent * 1000 / 48_000);
    assert!(heard_ms >= 5000, "audio stopped during the signaling outage: heard {heard_ms} ms of ~5500");

    let s2 = SignalingServer::start(ServerConfig { bind_addr: addr.to_string(), ..Default::default() }).unwrap();
    let back = Instant::now();
    wait_for(&a, |e| matches!(e, Event::SignalingConnected));
    let a_back = back.elapsed();
    wait_for(&b, |e| matches!(e, Event::SignalingConnected));
    let b_back = back.elapsed();
    println!("re-announced after the server's return: alice {a_back:?}, bob {b_back:?}");
    assert!(a_back < Duration::from_secs(2) && b_back < Duration::from_secs(2), "alice {a_back:?}, bob {b_back:?}");
    b.send_on_channel(cb, b"after the restart", false).unwrap();
    assert_eq!(next_message(&a).1, b"after the restart");
    assert_eq!(a.list_signaling_peers().unwrap()["count"], 2);
    drop(s2);
}

/// What the descriptors are (for failure messages).
fn fd_targets() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| format!("{}→{}", e.file_name().to_string_lossy(), std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default()))
        .collect();
    v.sort();
    v
}

fn echo_round_trip(t: &Transport, peer: &str) {
    t.connect_peer(peer).unwrap();
    let ch = channel_of(&wait_for(t, is_open(peer, "data")));
    t.send_on_channel(ch, b"ping", false).unwrap();
    assert_eq!(next_message(t).1, b"ping");
}

#[test]
fn a_killed_peer_is_reported_disconnected_then_failed_and_can_be_replaced() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let cfg = Config {
        ice_keepalive_interval_ms: 300,
        ice_disconnected_timeout_ms: 1000,
        ice_failed_timeout_ms: 3000,
        ..config(&s.url(), "survivor")
    };
    let targets_before = fd_targets();
    let me = Transport::new(cfg).unwrap();
    wait_for(&me, |e| matches!(e, Event::SignalingConnected));

    let mut victim = EchoPeer::spawn(&s.url(), "victim");
    echo_round_trip(&me, "victim");

    victim.kill();
    let killed = Instant::now();
    let mut left = None;
    let mut disconnected = None;
    let failed = poll_until(
        &me,
        Duration::from_secs(15),
        |e| {
            match e {
                Event::PeerLeft { peer_id } if peer_id == "victim" => left = Some(killed.elapsed()),
                Event::PeerStateChanged { peer_id, state: PeerState::Disconnected } if peer_id == "victim" => disconnected = Some(killed.elapsed()),
                _ => {}
            }
            matches!(e, Event::PeerStateChanged { peer_id, state: PeerState::Failed } if peer_id == "victim")
        },
        || None,
    );
    let failed_at = killed.elapsed();
    println!("after SIGKILL: peer_left {left:?}, disconnected {disconnected:?}, failed {failed_at:?}");
    failed.unwrap_or_else(|(seen, _)| panic!("no failed state within 15 s; saw {seen:?}"));
    assert!(left.is_some(), "the signaling server did not report the dead peer leaving");
    let disconnected = disconnected.expect("no disconnected state before failed");
    // ICE declares disconnected after 1 s of silence and failed after 3 s, checked every
    // keepalive (300 ms); a second of slack for a loaded machine.
    assert!(disconnected < Duration::from_millis(2300), "disconnected after {disconnected:?}");
    assert!(failed_at < Duration::from_millis(4300), "failed after {failed_at:?}");

    // Its entry is gone and sending to it fails (that its socket is closed too is
    // peers_that_come_and_go_leave_nothing_open_in_a_long_lived_transport's business).
    assert!(me.peers().iter().all(|p| p.peer_id != "victim"), "{:?}", me.peers());
    assert!(me.send_data(Target::Peer("victim"), b"x", false).is_err());
    // And a new peer is reachable as if nothing happened (also one reusing the dead one's id).
    let next = EchoPeer::spawn(&s.url(), "next");
    echo_round_trip(&me, "next");
    let again = EchoPeer::spawn(&s.url(), "victim");
    wait_for(&me, |e| matches!(e, Event::PeerDiscovered { peer_id } if peer_id == "victim"));
    echo_round_trip(&me, "victim");

    // Freeing the transport closes every socket it ever opened, the dead peer's included. (The
    // in-process server's sockets to the echo peers and their stdout pipes go when they exit.)
    drop((next, again));
    drop(me);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fd_targets() != targets_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fd_targets(), targets_before, "descriptors left behind by the freed transport");
}


/// Waits up to 5 s for this process's descriptors to be `want` again; the difference if not.
fn settle_fds(want: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = fd_targets();
        if now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            let extra: Vec<_> = now.iter().filter(|t| !want.contains(t)).collect();
            let gone: Vec<_> = want.iter().filter(|t| !now.contains(t)).collect();
            return Err(format!("{} descriptors now, {} before; new {extra:?}, gone {gone:?}", now.len(), want.len()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn peers_that_come_and_go_leave_nothing_open_in_a_long_lived_transport() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server();
    let cfg = Config { ice_keepalive_interval_ms: 300, ice_disconnected_timeout_ms: 1000, ice_failed_timeout_ms: 2000, ..config(&s.url(), "host") };
    let host = Transport::new(cfg).unwrap();
    wait_for(&host, |e| matches!(e, Event::SignalingConnected));
    let baseline = fd_targets();
    let mut hang_up = Vec::new();
    for round in 0..4 {
        // 1. The remote application frees its transport: its hang-up arrives at once.
        let guest = transport(&s.url(), &format!("guest{round}"));
        let (ch, _) = connect(&host, &guest);
        host.send_on_channel(ch, b"hello", false).unwrap();
        next_message(&guest);
        let t = Instant::now();
        drop(guest);
        wait_for(&host, is_state(&format!("guest{round}"), PeerState::Closed));
        hang_up.push(t.elapsed());
        // 2. We hang up.
        let guest = transport(&s.url(), &format!("other{round}"));
        connect(&host, &guest);
        host.disconnect_peer(&format!("other{round}")).unwrap();
        wait_for(&guest, is_state("host", PeerState::Closed));
        drop(guest);
        // 3. The remote process dies: ICE fails.
        let mut victim = EchoPeer::spawn(&s.url(), &format!("victim{round}"));
        echo_round_trip(&host, &format!("victim{round}"));
        victim.kill();
        wait_for(&host, is_state(&format!("victim{round}"), PeerState::Failed));
        drop(victim);
        // Closes run on tasks of their own: give them a moment.
        settle_fds(&baseline).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    println!("remote frees its transport -> closed here after {hang_up:?}");
    assert!(hang_up.iter().all(|d| *d < Duration::from_secs(1)), "{hang_up:?}");
}
