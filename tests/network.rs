//! Through a TURN relay, and over a bad network.
//!
//! - A real coturn (`turnserver`, Debian's `coturn`) on 127.0.0.1: two transports with
//!   `ice_policy: "relay"` connect through it (the selected candidate pairs are relay ones, and
//!   killing coturn takes the connection down) and exchange data and audio; wrong credentials
//!   fail within the configured ICE timeouts; a lost Allocate answer costs one retransmission.
//!   Skipped (with a message) when coturn is not installed, unless `RMW_REQUIRE_COTURN=1`.
//! - webrtc-rs's own TURN server whose listening socket drops, delays, jitters and reorders
//!   (common/impair.rs): both transports relay through it, so every packet between them, both
//!   ways, crosses the impairment: reliable data arrives whole, once and in order; audio stays
//!   continuous at its frequency; video keeps coming and recovers from losses within 1 s.
//! - A known webrtc-rs bug, ignored until fixed: a lost final DTLS flight deadlocks the
//!   handshake (`a_lost_final_dtls_flight_is_sent_again`, run with `--ignored`).
//!
//! Run in a network namespace of its own, so nothing leaves loopback:
//!   cargo test --release --no-run --test network
//!   unshare -n sh -c 'ip link set lo up; cargo test --release --offline --test network -- --nocapture'
//! The measured figures are printed (`--nocapture` shows them). The tests take turns (a lock):
//! on a small machine, parallel media tests would measure the CPU, not the network.
//! `RMW_IMPAIR_SEED` replays an impairment's random choices (the seed is printed);
//! `RMW_IMPAIR_TRACE=1` prints every datagram it drops.

mod common;
use common::audio::{channel, frequency, max_step, rms, send_sine};
use common::impair::{ImpairReport, Impairment};
use common::turn::{Coturn, ImpairedProxy, PASSWORD, TestTurn, USER, tail, turn_entry};
use common::video::{frame_number, psnr_of, send_pattern};
use common::*;
use remotemedia_webrtc::events::PeerState;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::{AudioFrame, AudioSendConfig};
use remotemedia_webrtc::media::video::{VideoFrame, VideoSendConfig};
use remotemedia_webrtc::{Config, Event, IcePolicy, Transport, TurnServer};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One test at a time (see the module comment).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bad network of these tests, applied to every packet between the peers as the TURN
/// server sends it on (so once per packet, each way): 5 % loss, 50 ms ± 15 ms one way (jitter
/// that reorders), and 3 % of the packets held back 40 ms more (explicit reordering).
///
/// Two exemptions, each for a known fault outside this library, so that these tests measure
/// what they are about rather than fail by chance:
/// - TURN's own exchanges with each client are not impaired: webrtc-rs's TURN server answers a
///   retransmitted Allocate with 437 (Allocation Mismatch) instead of the lost success, and the
///   client then gives up its relay candidate (coturn answers it again: see
///   `coturn_connects_when_its_allocate_response_is_lost`).
/// - DTLS handshake packets are delayed and reordered but never dropped: webrtc-rs's DTLS
///   server never re-sends its final flight (`a_lost_final_dtls_flight_is_sent_again`).
fn bad_network() -> Impairment {
    Impairment {
        loss_percent: 5.0,
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(15),
        reorder_percent: 3.0,
        reorder_hold: Duration::from_millis(40),
        relayed_only: true,
        spare_dtls_handshake: true,
        ..Impairment::none()
    }
}

/// A transport that may only use relay candidates of `turn`.
fn relay_transport(url: &str, id: &str, turn: TurnServer, tweak: impl FnOnce(&mut Config)) -> Transport {
    let mut c = config(url, id);
    c.ice_policy = IcePolicy::Relay;
    c.turn_servers = vec![turn];
    tweak(&mut c);
    let t = Transport::new(c).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

/// Connects `a` to `b`; returns the default channel ids and the time until both were open.
fn timed_connect(a: &Transport, b: &Transport, timeout: Duration) -> (u64, u64, Duration) {
    let started = Instant::now();
    a.connect_peer(b.local_peer_id()).unwrap();
    let open = |t: &Transport, other: &Transport| {
        let left = timeout.saturating_sub(started.elapsed());
        poll_until(t, left, is_open(other.local_peer_id(), "data"), || None)
            .map(|e| channel_of(&e))
            .unwrap_or_else(|(seen, _)| panic!("{}: no open channel within {timeout:?}; saw {seen:#?}", t.local_peer_id()))
    };
    let ca = open(a, b);
    let cb = open(b, a);
    (ca, cb, started.elapsed())
}

/// Collects webrtc-ice's "selected candidate pair" log lines (trace level, through the
/// library's log sink) while it lives. The library's stats do not expose the selected pair;
/// this is the direct evidence of which candidates carry the connection.
struct SelectedPairs(Arc<Mutex<Vec<String>>>);

impl SelectedPairs {
    fn capture() -> SelectedPairs {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        remotemedia_webrtc::logging::set_sink(
            Some(Arc::new(move |_level: u8, _target: &str, msg: &str| {
                if msg.contains("Set selected candidate pair: Some") {
                    l.lock().unwrap().push(msg.to_string());
                }
            })),
            5,
        );
        SelectedPairs(lines)
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Drop for SelectedPairs {
    fn drop(&mut self) {
        remotemedia_webrtc::logging::set_sink(None, 0);
    }
}

/// Message `i` of a numbered series: the 4-byte number, then a filler derived from it; 16 to
/// 515 bytes, and every 50th 3000 bytes (three SCTP chunks, reassembled).
fn message(tag: u8, i: u32) -> Vec<u8> {
    let len = if i % 50 == 49 { 3000 } else { 16 + (i as usize * 97) % 500 };
    let mut m = i.to_be_bytes().to_vec();
    m.extend((4..len).map(|k| tag ^ (k as u8).wrapping_mul(31) ^ i as u8));
    m
}

/// What `receive_in_order` measured.
struct Delivery {
    /// Until the last message arrived.
    took: Duration,
    /// Longest wait for the next message, and the message it ended with.
    stall: Duration,
    stall_before: u32,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "in {:.2?} (longest wait {:.2?}, for #{})", self.took, self.stall, self.stall_before)
    }
}

/// Receives `n` messages on `t` from `from` and checks they are `message(tag, 0..n)`, in
/// order, each once; then that nothing more comes for `quiet`.
fn receive_in_order(t: &Transport, from: &str, tag: u8, n: u32, timeout: Duration, quiet: Duration) -> Delivery {
    let started = Instant::now();
    let mut last = started;
    let (mut stall, mut stall_before) = (Duration::ZERO, 0);
    let mut next = 0u32;
    while next < n {
        let left = timeout.checked_sub(started.elapsed()).unwrap_or_else(|| panic!("{}: {next} of {n} messages within {timeout:?}", t.local_peer_id()));
        let e = poll_until(t, left, |e| matches!(e, Event::DataChannelMessage { peer_id, .. } if peer_id == from), || None)
            .unwrap_or_else(|(seen, _)| panic!("{}: {next} of {n} messages within {timeout:?}; saw {seen:?}", t.local_peer_id()));
        let Event::DataChannelMessage { data, .. } = e else { unreachable!() };
        let got = u32::from_be_bytes(data[..4].try_into().unwrap());
        assert_eq!(got, next, "{}: message {got} where {next} was due (lost, repeated or out of order)", t.local_peer_id());
        assert!(data[..] == message(tag, next)[..], "message {next} corrupted");
        if last.elapsed() > stall {
            (stall, stall_before) = (last.elapsed(), next);
        }
        last = Instant::now();
        next += 1;
    }
    let took = started.elapsed();
    let extra: Vec<Event> = drain(t, quiet).into_iter().filter(|e| matches!(e, Event::DataChannelMessage { .. })).collect();
    assert!(extra.is_empty(), "{}: messages after the last one: {extra:?}", t.local_peer_id());
    Delivery { took, stall, stall_before }
}

// ---------------------------------------------------------------------------------------------
// coturn
// ---------------------------------------------------------------------------------------------

#[test]
fn coturn_relays_data_and_audio_and_the_connection_depends_on_it() {
    let _serial = serial();
    let Some(mut turn) = Coturn::start() else { return };
    let s = server();
    let entry = turn_entry(&turn.url(), USER, PASSWORD);
    // Small ICE timeouts (keepalives well inside them) so the relay's death shows quickly.
    let quick = |c: &mut Config| {
        c.ice_keepalive_interval_ms = 300;
        c.ice_disconnected_timeout_ms = 1500;
        c.ice_failed_timeout_ms = 3000;
    };
    let a = relay_transport(&s.url(), "alice", entry.clone(), quick);
    let b = relay_transport(&s.url(), "bob", entry, quick);

    let pairs = SelectedPairs::capture();
    let (ca, cb, took) = timed_connect(&a, &b, Duration::from_secs(20));
    let selected = pairs.lines();
    drop(pairs);
    eprintln!("coturn: connected through the relay in {took:?}");
    for l in &selected {
        eprintln!("coturn: {l}");
    }
    // Both ICE agents (both transports are in this process) chose a pair whose local
    // candidate is a relay candidate: every packet goes through coturn.
    assert!(selected.len() >= 2, "expected the selected pair of both agents, got {selected:?}");
    for l in &selected {
        let (local, remote) = l.split_once(" <-> ").unwrap_or_else(|| panic!("unexpected format: {l}"));
        assert!(local.contains(" relay 127.0.0.1:"), "local candidate is not a relay one: {l}");
        assert!(!remote.contains(" host "), "remote candidate is a host one: {l}");
    }

    // Reliable data both ways, numbered, in order.
    for i in 0..200 {
        a.send_on_channel(ca, &message(1, i), true).unwrap();
        b.send_on_channel(cb, &message(2, i), true).unwrap();
    }
    let ta = receive_in_order(&b, "alice", 1, 200, Duration::from_secs(10), Duration::from_millis(100));
    let tb = receive_in_order(&a, "bob", 2, 200, Duration::from_secs(10), Duration::ZERO);
    eprintln!("coturn: 200 messages each way delivered in order: to bob {ta}, to alice {tb}");

    // A second of tone, through the relay: all of it, at its frequency, nothing concealed.
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig::default()).unwrap();
    let frames = std::thread::scope(|sc| {
        sc.spawn(|| send_sine(&a, track, &[440.0], 48_000, 1.0, &[960], false));
        common::audio::collect(&b, "alice", Duration::from_millis(1_400))
    });
    let rx = b.stats().remote_audio_tracks[0].clone();
    eprintln!("coturn: audio {} frames; {rx:?}", frames.len());
    assert!(frames.len() >= 48, "{} frames of 50", frames.len());
    assert!(frames.iter().all(|f| !f.concealed), "concealment on a clean relay: {rx:?}");
    let hz = frequency(&channel(&frames, 0)[4_800..], 48_000);
    assert!((hz - 440.0).abs() < 2.0, "{hz:.1} Hz through the relay");

    // coturn's own account: our user's allocations, with permissions and channels to peers.
    let log = turn.log();
    let ours = log.lines().filter(|l| l.contains(&format!("user <{USER}>"))).count();
    let binds = log.lines().filter(|l| l.contains("CHANNEL_BIND processed, success")).count();
    let perms = log.lines().filter(|l| l.contains("CREATE_PERMISSION processed, success")).count();
    eprintln!("coturn: log has {ours} lines for user {USER}, {perms} permissions, {binds} channel binds");
    assert!(ours > 0 && (binds > 0 || perms > 0), "coturn's log shows no relaying for {USER}:\n{}", tail(&log, 40));

    // The connection lives on the relay: kill coturn and it goes down.
    turn.kill();
    let killed = Instant::now();
    let down = |e: &Event| matches!(e, Event::PeerStateChanged { state: PeerState::Disconnected | PeerState::Failed, .. });
    let _ = a.send_on_channel(ca, b"after the relay died", true);
    let seen = poll_until(&a, Duration::from_secs(6), down, || None);
    eprintln!("coturn: killed; alice's peer state went down after {:?}", killed.elapsed());
    assert!(seen.is_ok(), "the connection outlived its only relay: {:?}", seen.err());
    let arrived = drain(&b, Duration::from_millis(200));
    assert!(!arrived.iter().any(|e| matches!(e, Event::DataChannelMessage { .. })), "a message crossed without the relay: {arrived:?}");
}

#[test]
fn coturn_wrong_credentials_fail_within_the_ice_timeouts() {
    let _serial = serial();
    let Some(turn) = Coturn::start() else { return };
    let s = server();
    let (disconnected, failed) = (1000u32, 2000u32);
    let timeouts = |c: &mut Config| {
        c.ice_keepalive_interval_ms = 300;
        c.ice_disconnected_timeout_ms = disconnected;
        c.ice_failed_timeout_ms = failed;
    };
    let a = relay_transport(&s.url(), "alice", turn_entry(&turn.url(), USER, "not-the-password"), timeouts);
    let b = relay_transport(&s.url(), "bob", turn_entry(&turn.url(), USER, PASSWORD), timeouts);
    let started = Instant::now();
    a.connect_peer("bob").unwrap();
    // A connection checking for longer than ice_failed_timeout_ms fails (the config's timeouts
    // both count from the start / last packet heard); allow 3 s for the check tick and a
    // loaded machine.
    let bound = Duration::from_millis(failed as u64) + Duration::from_secs(3);
    // ICE's failure and the transport's own set-up deadline (also ice_failed_timeout_ms) race:
    // either ends the attempt (failed, or an error event and closed).
    let failed_state = |e: &Event| matches!(e, Event::PeerStateChanged { state: PeerState::Failed | PeerState::Closed, .. });
    for t in [&a, &b] {
        let left = bound.saturating_sub(started.elapsed());
        match poll_until(t, left, failed_state, || None) {
            Ok(_) => eprintln!("wrong credentials: {} reports failed after {:?}", t.local_peer_id(), started.elapsed()),
            Err((seen, _)) => panic!("{}: no failed state within {bound:?}; saw {seen:#?}", t.local_peer_id()),
        }
    }
    let after = drain(&a, Duration::from_millis(100));
    assert!(!after.iter().any(|e| matches!(e, Event::DataChannelOpen { .. })), "{after:?}");
    assert!(a.peers().is_empty() && a.connected_peers().is_empty(), "{:?}", a.peers());
    assert!(b.connected_peers().is_empty());
    // coturn refused a request that carried credentials (every client's first request, without
    // them, gets a 401 too: those show `user <>`); bob's allocation succeeded.
    let log = turn.log();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains(&format!("user <{USER}>")) && l.contains("error 401")).collect();
    let allocated = log.lines().filter(|l| l.contains("ALLOCATE processed, success")).count();
    eprintln!("wrong credentials: coturn refused {} authenticated requests, allocated {allocated}", refused.len());
    for l in refused.iter().take(2) {
        eprintln!("wrong credentials: coturn: {l}");
    }
    assert!(!refused.is_empty(), "coturn's log shows no refused credentials:\n{}", tail(&log, 40));
    assert_eq!(allocated, 1, "only bob's allocation succeeds:\n{}", tail(&log, 40));
}

#[test]
fn coturn_connects_when_its_allocate_response_is_lost() {
    let _serial = serial();
    let Some(turn) = Coturn::start() else { return };
    // Between the transports and coturn, a proxy that loses coturn's first Allocate success:
    // the client's TURN transaction retransmits the request, coturn answers it again.
    let proxy = ImpairedProxy::start(turn.addr(), Impairment { drop_first: vec![(0x0103, 1)], ..Impairment::none() });
    let s = server();
    let entry = turn_entry(&proxy.turn_url(), USER, PASSWORD);
    let a = relay_transport(&s.url(), "alice", entry.clone(), |_| {});
    let b = relay_transport(&s.url(), "bob", entry, |_| {});
    let (ca, _, took) = timed_connect(&a, &b, Duration::from_secs(15));
    let r = proxy.report();
    eprintln!("coturn, first Allocate success lost: connected in {took:.2?}; proxy: {r}");
    assert_eq!(r.dropped, 1, "{r}");
    assert!(r.allocations >= 3, "the lost allocation was not answered again: {r}");
    a.send_on_channel(ca, b"through", false).unwrap();
    assert_eq!(next_message(&b).1, b"through");
}

// ---------------------------------------------------------------------------------------------
// The impairment itself
// ---------------------------------------------------------------------------------------------

/// Sends `n` datagrams `spacing` apart through an `ImpairedConn` to a plain socket; returns
/// what arrived (number, delay in µs), in arrival order, and the conn's counters.
fn through(imp: Impairment, n: u32, spacing: Duration) -> (Vec<(u32, u64)>, ImpairReport) {
    use webrtc::util::Conn;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let conn = common::impair::ImpairedConn::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(), imp);
        eprintln!("impairment: {}", conn.describe());
        let epoch = Instant::now();
        let recv = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(500), rx.recv_from(&mut buf)).await {
                assert_eq!(len, 12);
                let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                let sent_us = u64::from_be_bytes(buf[4..12].try_into().unwrap());
                got.push((seq, epoch.elapsed().as_micros() as u64 - sent_us));
            }
            got
        });
        let mut tick = tokio::time::interval(spacing);
        for seq in 0..n {
            tick.tick().await;
            let mut d = seq.to_be_bytes().to_vec();
            d.extend((epoch.elapsed().as_micros() as u64).to_be_bytes());
            conn.send_to(&d, to).await.unwrap();
        }
        (recv.await.unwrap(), conn.stats().report())
    })
}

#[test]
fn the_impairment_does_what_it_says() {
    let _serial = serial();
    // Plain datagrams are neither TURN peer data nor DTLS: no exemption applies.
    let imp = Impairment { relayed_only: false, spare_dtls_handshake: false, ..bad_network() };
    let sent = 2000u32;
    let (received, report) = through(imp, sent, Duration::from_micros(500));
    let lost = sent as usize - received.len();
    let loss = 100.0 * lost as f64 / sent as f64;
    let delays: Vec<f64> = received.iter().map(|r| r.1 as f64 / 1000.0).collect();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    let (min, max) = delays.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    let inversions = received.windows(2).filter(|w| w[1].0 < w[0].0).count();
    let mut seqs: Vec<u32> = received.iter().map(|r| r.0).collect();
    seqs.sort();
    seqs.dedup();
    eprintln!("impairment: {lost} of {sent} lost ({loss:.2} %), delay mean {mean:.1} ms min {min:.1} max {max:.1}, {inversions} arrivals after a later datagram; {report}");
    assert_eq!(seqs.len(), received.len(), "a datagram was duplicated");
    assert_eq!(report.dropped as usize, lost, "the counters disagree with what arrived");
    // 5 % of 2000: 100 ± 10 (one standard deviation); ± 3.5 sd.
    assert!((2.8..7.2).contains(&loss), "{loss:.2} % lost, 5 % asked");
    // The delays drawn: 50 ± 15 uniform, plus 40 for 3 %: mean 51.2 (± 0.2 over ~1900), at
    // most 105. What arrives also waited for this process's scheduling (more on a loaded
    // machine): only a floor and loose bounds there.
    assert!((49.5..53.0).contains(&report.mean_delay_ms), "mean delay drawn {:.1} ms, 51.2 expected", report.mean_delay_ms);
    assert!((75.0..=105.5).contains(&report.max_delay_ms), "max delay drawn {:.1} ms: 50 + 15 + 40 at most", report.max_delay_ms);
    assert!(min >= 34.5, "a datagram arrived after {min:.1} ms: 50 - 15 is the least asked");
    assert!((report.mean_delay_ms..report.mean_delay_ms + 40.0).contains(&mean), "mean delay on arrival {mean:.1} ms");
    assert!(inversions > 50 && report.out_of_order > 50, "jitter and holds reorder: {inversions} inversions");

    // A constant delay alone keeps the order (a FIFO link), even for datagrams sent together.
    let fifo = Impairment { delay: Duration::from_millis(50), ..Impairment::none() };
    let (received, report) = through(fifo, 300, Duration::from_micros(100));
    let inversions = received.windows(2).filter(|w| w[1].0 < w[0].0).count();
    let min = received.iter().map(|r| r.1).min().unwrap_or(0) as f64 / 1000.0;
    eprintln!("impairment, 50 ms constant: {} of 300 arrived, {inversions} out of order, min delay {min:.1} ms; {report}", received.len());
    assert_eq!(received.len(), 300, "{report}");
    assert_eq!((inversions, report.out_of_order), (0, 0), "a constant delay reordered");
    assert!(min >= 49.5, "{min:.1} ms");
}

// ---------------------------------------------------------------------------------------------
// Through an impaired relay
// ---------------------------------------------------------------------------------------------

/// Two relay-only transports through an impaired test TURN server.
fn impaired_pair(tweak: impl Fn(&mut Config) + Copy) -> (TestTurn, SignalingServerHolder, Transport, Transport, u64, u64) {
    let turn = TestTurn::start(bad_network());
    eprintln!("impaired relay at {}: {}", turn.url(), turn.describe());
    let s = server();
    let a = relay_transport(&s.url(), "alice", turn.entry(), tweak);
    let b = relay_transport(&s.url(), "bob", turn.entry(), tweak);
    let (ca, cb, took) = timed_connect(&a, &b, Duration::from_secs(25));
    let r = turn.report();
    eprintln!("impaired relay: connected in {took:?}; so far {r}");
    // Evidence of the path: the relay carried peer data to both peers' sockets.
    assert!(r.relayed_to.len() >= 2 && r.relayed_to.iter().all(|(_, n)| *n > 0), "the relay carried no peer data both ways: {r}");
    (turn, SignalingServerHolder(s), a, b, ca, cb)
}

/// Keeps the signaling server alive as long as the transports.
struct SignalingServerHolder(#[allow(dead_code)] remotemedia_webrtc::SignalingServer);

/// Checks that the impairment really hit this stretch of traffic.
fn assert_impaired(r: &ImpairReport) {
    assert!(r.relayed_dropped > 0, "no peer data was dropped: {r}");
    assert!(r.out_of_order > 0, "nothing was reordered: {r}");
    assert!(r.mean_delay_ms > 40.0, "mean delay {:.1} ms: {r}", r.mean_delay_ms);
}

#[test]
fn impaired_relay_delivers_every_reliable_message_once_and_in_order() {
    let _serial = serial();
    let (turn, _s, a, b, ca, cb) = impaired_pair(|_| {});
    let before = turn.report();
    // 500 messages alice -> bob while bob sends 200 back; both receive while they send (a
    // send waits while SCTP's send queue is full). SCTP is slow here: the jitter's reordering
    // costs it retransmissions and halved windows (measured: about twice the datagrams and the
    // time of the same loss without jitter), and a chunk lost again when retransmitted waits
    // for the retransmission timer (1 s at least, doubling each time).
    let limit = Duration::from_secs(25);
    let started = Instant::now();
    let (to_bob, to_alice) = std::thread::scope(|sc| {
        let bob_rx = sc.spawn(|| receive_in_order(&b, "alice", 1, 500, limit, Duration::from_millis(300)));
        let alice_rx = sc.spawn(|| receive_in_order(&a, "bob", 2, 200, limit, Duration::from_millis(300)));
        sc.spawn(|| {
            for i in 0..200 {
                b.send_on_channel(cb, &message(2, i), true).unwrap();
            }
        });
        for i in 0..500 {
            a.send_on_channel(ca, &message(1, i), true).unwrap();
        }
        (bob_rx.join().unwrap(), alice_rx.join().unwrap())
    });
    let r = turn.report().since(&before);
    eprintln!("impaired data: 500 messages to bob {to_bob}, 200 to alice {to_alice}, all in order, once; total {:.2?}; impairment during the transfer: {r}", started.elapsed());
    assert_impaired(&r);
    assert_eq!(a.peer_state("bob").unwrap(), PeerState::Connected);
}

#[test]
fn impaired_relay_keeps_audio_continuous() {
    let _serial = serial();
    let (turn, _s, a, b, _, _) = impaired_pair(|_| {});
    let before = turn.report();
    let seconds = 4.0;
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig::default()).unwrap();
    let frames: Vec<AudioFrame> = std::thread::scope(|sc| {
        sc.spawn(|| send_sine(&a, track, &[440.0], 48_000, seconds, &[960], false));
        common::audio::collect(&b, "alice", Duration::from_secs_f64(seconds + 0.6))
    });
    let r = turn.report().since(&before);
    let rx = b.stats().remote_audio_tracks[0].clone();
    let concealed = frames.iter().filter(|f| f.concealed).count();
    // Loudness of each 20 ms frame after the codec's fade-in. A gap (silence, or a
    // concealment faded out) shows as a silent frame. Losing a packet of a pure tone does dent
    // the level: Opus's concealment, and its in-band FEC (libopus codes FEC only for frames its
    // VAD rates as speech, which a steady sine soon is not), give that frame and the next one
    // at -8 to -22 dB (measured with libopus alone, outside this library).
    let frame_rms: Vec<f64> = frames.iter().skip(5).map(|f| rms(&f.samples.to_f32())).collect();
    let min_rms = frame_rms.iter().cloned().fold(f64::MAX, f64::min);
    let full = frame_rms.iter().filter(|&&r| (0.15..0.3).contains(&r)).count();
    let x = channel(&frames, 0);
    let hz = frequency(&x[4_800..], 48_000);
    let expected = (seconds * 50.0) as usize;
    eprintln!(
        "impaired audio: {} frames of {expected} ({concealed} concealed or rebuilt), {hz:.2} Hz; {full} of {} frames at full level, quietest RMS {min_rms:.3} (tone 0.212); largest step {:.3}; receiver {rx:?}; impairment {r}",
        frames.len(),
        frame_rms.len(),
        max_step(&x[4_800..])
    );
    assert_impaired(&r);
    assert!(rx.packets_lost > 0, "the loss did not reach the audio: {rx:?}");
    assert!(rx.frames_fec + rx.frames_concealed >= rx.packets_lost, "a lost packet was neither rebuilt nor concealed: {rx:?}");
    assert_eq!(concealed as u64, rx.frames_fec + rx.frames_concealed, "{rx:?}");
    // No gaps: every 20 ms from the first frame on is there (received, rebuilt or concealed).
    for w in frames.windows(2) {
        assert_eq!(w[1].rtp_timestamp, w[0].rtp_timestamp.wrapping_add(960), "gap in RTP time");
    }
    // A lost first or last packet may leave nothing to conceal between: allow 3.
    assert!(frames.len() + 3 >= expected, "{} frames of {expected}", frames.len());
    // Never silence (-46 dB under the tone): concealing two losses in a row can dent a frame
    // to -34 dB (seen), but a hole filled with zeros would be far below.
    assert!(min_rms > 0.001, "a silent frame (RMS {min_rms:.4}; the tone has 0.212): a gap");
    // Only around lost packets (the frame itself and the next, seldom one more) is it dented.
    let dented = frame_rms.len() - full;
    assert!(dented as u64 <= 3 * (rx.frames_fec + rx.frames_concealed) + 2, "{dented} frames below full level for {} lost", rx.packets_lost);
    // Continuous waveform: no sample jumps further than the sine can move (2.5x slack).
    let limit = (2.0 * std::f64::consts::PI * 440.0 * 0.3 / 48_000.0 * 2.5) as f32;
    assert!(max_step(&x[4_800..]) < limit, "a step of {} > {limit}: a discontinuity", max_step(&x[4_800..]));
    assert!((hz - 440.0).abs() < 6.0, "{hz:.1} Hz under impairment");
}

#[test]
fn impaired_relay_video_keeps_coming_and_recovers_within_a_second() {
    let _serial = serial();
    let (turn, _s, a, b, _, _) = impaired_pair(|_| {});
    let before = turn.report();
    // 10 s of 640x480 at 30 fps; a keyframe asked for every 2 s, so that large multi-packet
    // frames cross the loss too (a lost keyframe packet must be repaired or re-requested).
    let (total, fps, key_every) = (300u32, 30u32, 60u32);
    let track = a.add_video_track(TrackTarget::Peer("bob".into()), VideoSendConfig::default()).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let frames: Vec<VideoFrame> = std::thread::scope(|sc| {
        sc.spawn(|| {
            for from in (0..total).step_by(key_every as usize) {
                if from > 0 {
                    a.request_video_keyframe(track).unwrap();
                }
                send_pattern(&a, track, from, (from + key_every).min(total), fps, |_| (640, 480));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut frames = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            frames.extend(common::video::collect(&b, "alice", Duration::from_millis(100)));
        }
        frames.extend(common::video::collect(&b, "alice", Duration::from_millis(700)));
        frames
    });
    let r = turn.report().since(&before);
    let rx = b.stats().remote_video_tracks[0].clone();
    let tx = a.video_track_stats(track).unwrap();
    let fb = a.stats().peer_media.into_iter().find(|m| m.peer_id == "bob" && m.kind == "video").expect("no video sender to bob").feedback;
    let numbers: Vec<u32> = frames.iter().map(|f| frame_number(f).expect("unreadable frame number: a damaged frame was shown")).collect();
    // Longest time without a new correct picture, after the first one.
    let (mut gap_us, mut gap_at) = (0u64, 0u32);
    for (w, n) in frames.windows(2).zip(&numbers[1..]) {
        let g = w[1].arrival_us.saturating_sub(w[0].arrival_us);
        if g > gap_us {
            (gap_us, gap_at) = (g, *n);
        }
    }
    let keys: Vec<u32> = frames.iter().zip(&numbers).filter(|(f, _)| f.keyframe).map(|(_, n)| *n).collect();
    eprintln!(
        "impaired video: {} of {total} frames shown ({} not), first #{}, last #{}, keyframes shown at {keys:?}, longest gap {:.0} ms (before #{gap_at}); \
         sender saw {} NACKs, {} PLIs, RTT {:?} ms; receiver {rx:?}; sender {tx:?}; impairment {r}",
        frames.len(),
        total as usize - frames.len(),
        numbers.first().copied().unwrap_or(0),
        numbers.last().copied().unwrap_or(0),
        gap_us as f64 / 1000.0,
        fb.nacks_received,
        fb.plis_received,
        fb.rtt_ms,
    );
    assert_impaired(&r);
    assert!(!frames.is_empty() && frames[0].keyframe, "no picture, or it started without a keyframe");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order or repeated: {numbers:?}");
    for f in &frames {
        let p = psnr_of(f).unwrap();
        assert!(p >= 30.0, "frame {:?} shown damaged: PSNR {p:.1}", frame_number(f));
    }
    assert!(gap_us < 1_000_000, "the picture stopped for {:.0} ms (before frame {gap_at}): {numbers:?}", gap_us as f64 / 1000.0);
    // It keeps coming to the end: a frame of the last second was shown.
    assert!(numbers.last().is_some_and(|&n| n >= total - fps), "nothing in the last second: {numbers:?}");
    // Repair happened: the receiver asked for the lost packets and the sender heard it (most
    // losses end there); a frame given up on made the receiver skip to the next keyframe,
    // asking for one (PLI) unless a keyframe was already waiting behind the hole (then no PLI
    // is needed: seen with the keyframes asked for every 2 s here).
    assert!(fb.nacks_received > 0, "no NACK reached the sender: {fb:?}");
    assert!(rx.packets_out_of_order > 0, "{rx:?}");
    if rx.frames_lost > 0 {
        assert!(rx.keyframes_decoded >= 2, "decoding did not resume on a keyframe after a loss: {rx:?}");
    }
    assert!(frames.len() as u32 >= total * 2 / 3, "only {} of {total} frames shown: {numbers:?}", frames.len());
}


// ---------------------------------------------------------------------------------------------
// Known bug: a lost final DTLS flight
// ---------------------------------------------------------------------------------------------

/// RFC 6347 4.2.4: the side that sends the last handshake flight (the DTLS server: here the
/// offerer) must send it again when the peer repeats its own last flight, since it cannot know
/// whether it arrived. webrtc-rs's dtls 0.17.2 stops its handshake state machine once it has
/// sent that flight (`DTLSConn::handshake` returns on the first `Finished`), so if the flight
/// is lost the client repeats its flight 5 every second for ever, the server side reports the
/// peer connected, and no data channel ever opens. With 5 % loss that is about one
/// connection in twenty. Ignored until fixed (see the report for the proposed patch).
#[test]
#[ignore = "webrtc-rs dtls 0.17.2 never re-sends the server's final flight: the handshake deadlocks"]
fn a_lost_final_dtls_flight_is_sent_again() {
    let _serial = serial();
    let turn = TestTurn::start(Impairment { lose_dtls_final_flight: true, relayed_only: true, ..Impairment::none() });
    let s = server();
    let a = relay_transport(&s.url(), "alice", turn.entry(), |_| {});
    let b = relay_transport(&s.url(), "bob", turn.entry(), |_| {});
    let started = Instant::now();
    a.connect_peer("bob").unwrap();
    let ra = poll_until(&a, Duration::from_secs(10), is_open("bob", "data"), || None);
    let rb = poll_until(&b, Duration::from_secs(10).saturating_sub(started.elapsed()).max(Duration::from_secs(1)), is_open("alice", "data"), || None);
    let r = turn.report();
    eprintln!("lost final DTLS flight: channels open alice {} bob {} after {:.2?}; {r}", ra.is_ok(), rb.is_ok(), started.elapsed());
    assert!(r.dtls_final_flight_dropped > 0, "the final flight was not found and dropped: {r}");
    assert!(ra.is_ok() && rb.is_ok(), "no data channel 10 s after losing the server's final DTLS flight once: alice saw {:?}; bob saw {:?}", ra.err().map(|e| e.0), rb.err().map(|e| e.0));
}
