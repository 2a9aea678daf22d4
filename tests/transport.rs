//! Two (or more) real transports through the real signaling server over loopback.

mod common;
use common::*;
use remotemedia_webrtc::datachannel::{ChannelOptions, Reliability};
use remotemedia_webrtc::events::PeerState;
use remotemedia_webrtc::transport::Target;
use remotemedia_webrtc::{Error, Event, ServerConfig, SignalingServer, Transport};
use std::time::Duration;

#[test]
fn messages_flow_both_ways_text_binary_and_large() {
    let s = server();
    let (a, b) = (transport(&s.url(), "alice"), transport(&s.url(), "bob"));
    let (ca, cb) = connect(&a, &b);
    assert_eq!(a.connected_peers(), vec!["bob".to_string()]);

    a.send_on_channel(ca, b"hello bob", false).unwrap();
    assert_eq!(next_message(&b), ("data".into(), b"hello bob".to_vec(), false));
    b.send_on_channel(cb, &[0, 1, 2, 255], true).unwrap();
    assert_eq!(next_message(&a), ("data".into(), vec![0, 1, 2, 255], true));

    // Messages up to the 64 KiB send limit arrive whole.
    for size in [40_000usize, 64 * 1024] {
        let big: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        a.send_on_channel(ca, &big, true).unwrap();
        let (_, got, binary) = next_message(&b);
        assert!(binary);
        assert_eq!(got.len(), size);
        assert!(got == big, "payload of {size} bytes corrupted");
    }
    let too_big = vec![0u8; 64 * 1024 + 1];
    assert!(matches!(a.send_on_channel(ca, &too_big, true), Err(Error::InvalidArgument(_))));

    // Many messages arrive once and in order on the reliable channel.
    for i in 0..500u32 {
        a.send_on_channel(ca, &i.to_be_bytes(), true).unwrap();
    }
    for i in 0..500u32 {
        assert_eq!(next_message(&b).1, i.to_be_bytes().to_vec());
    }
}

#[test]
fn unreliable_and_remote_opened_channels() {
    let s = server();
    let (a, b) = (transport(&s.url(), "a1"), transport(&s.url(), "b1"));
    connect(&a, &b);
    let opts = ChannelOptions { ordered: false, reliability: Reliability::MaxRetransmits(0) };
    let ch = a.create_data_channel("b1", "telemetry", &opts).unwrap();
    wait_for(&a, is_open("b1", "telemetry"));
    // b learns of the channel the remote opened, with its reliability.
    let cb = channel_of(&wait_for(&b, is_open("a1", "telemetry")));
    let info = b.channel_info(cb).unwrap();
    assert_eq!(info.options, opts);
    assert!(!info.locally_created);
    let lifetime = ChannelOptions { ordered: false, reliability: Reliability::MaxPacketLifetimeMs(100) };
    a.create_data_channel("b1", "lifetime", &lifetime).unwrap();
    let cl = channel_of(&wait_for(&b, is_open("a1", "lifetime")));
    assert_eq!(b.channel_info(cl).unwrap().options, lifetime);

    a.send_on_channel(ch, b"tick", false).unwrap();
    // Loopback does not lose packets: the unreliable message arrives.
    let (label, data, _) = next_message(&b);
    assert_eq!((label.as_str(), data.as_slice()), ("telemetry", &b"tick"[..]));
    b.send_on_channel(cb, b"tock", false).unwrap();
    assert_eq!(next_message(&a).1, b"tock");

    // Buffered amount and the low-water event.
    a.set_channel_low_threshold(ch, 1).unwrap();
    for _ in 0..4 {
        a.send_on_channel(ch, &vec![1u8; 60_000], true).unwrap();
    }
    wait_for(&a, |e| matches!(e, Event::DataChannelBufferedAmountLow { channel, .. } if *channel == ch));

    // Closing is seen on both sides and invalidates the id.
    a.close_channel(ch).unwrap();
    wait_for(&b, |e| matches!(e, Event::DataChannelClose { channel, .. } if *channel == cb));
    wait_for(&a, |e| matches!(e, Event::DataChannelClose { channel, .. } if *channel == ch));
    assert!(matches!(a.send_on_channel(ch, b"x", false), Err(Error::NotFound(_))));
}

#[test]
fn glare_ends_in_one_connection() {
    for round in 0..3 {
        let s = server();
        let (a, b) = (transport(&s.url(), &format!("ga{round}")), transport(&s.url(), &format!("gb{round}")));
        std::thread::scope(|sc| {
            sc.spawn(|| a.connect_peer(b.local_peer_id()));
            sc.spawn(|| b.connect_peer(a.local_peer_id()));
        });
        let ca = channel_of(&wait_for(&a, is_open(b.local_peer_id(), "data")));
        let cb = channel_of(&wait_for(&b, is_open(a.local_peer_id(), "data")));
        let extra_a = drain(&a, Duration::from_millis(300));
        assert!(!extra_a.iter().any(is_open(b.local_peer_id(), "data")), "a second default channel opened: {extra_a:?}");
        assert_eq!(a.peers().len(), 1);
        assert_eq!(b.peers().len(), 1);
        assert_eq!(a.peer_state(b.local_peer_id()).unwrap(), PeerState::Connected);
        a.send_on_channel(ca, b"after glare", false).unwrap();
        assert_eq!(next_message(&b).1, b"after glare");
        b.send_on_channel(cb, b"ok", false).unwrap();
        assert_eq!(next_message(&a).1, b"ok");
    }
}

#[test]
fn glare_keeps_channels_the_polite_side_created() {
    let s = server();
    // "zed" > "amy": zed is polite and must drop its own offer, keeping its extra channel.
    let (amy, zed) = (transport(&s.url(), "amy"), transport(&s.url(), "zed"));
    std::thread::scope(|sc| {
        sc.spawn(|| amy.connect_peer("zed"));
        sc.spawn(|| {
            zed.connect_peer("amy").unwrap();
            zed.create_data_channel("amy", "extra", &ChannelOptions::default())
        });
    });
    wait_for(&amy, is_open("zed", "extra"));
}

#[test]
fn max_peers_is_enforced_both_ways() {
    let s = server();
    let mut cfg = config(&s.url(), "hub");
    cfg.max_peers = 1;
    let hub = Transport::new(cfg).unwrap();
    wait_for(&hub, |e| matches!(e, Event::SignalingConnected));
    let (p1, p2) = (transport(&s.url(), "p1"), transport(&s.url(), "p2"));
    connect(&hub, &p1);
    match hub.connect_peer("p2") {
        Err(Error::MaxPeers(m)) => assert!(m.contains("max_peers 1"), "{m}"),
        other => panic!("expected MaxPeers, got {other:?}"),
    }
    // An incoming offer over the limit is refused with an error event; p1 is untouched.
    p2.connect_peer("hub").unwrap();
    wait_for(&hub, |e| matches!(e, Event::Error { peer_id: Some(p), message } if p == "p2" && message.contains("max_peers")));
    assert_eq!(hub.peers().len(), 1);
    assert_eq!(hub.connected_peers(), vec!["p1".to_string()]);
}

#[test]
fn handler_then_polling_loses_no_event() {
    let s = server();
    let (a, b) = (transport(&s.url(), "ha"), transport(&s.url(), "hb"));
    let (ca, _) = connect(&a, &b);
    let (tx, rx) = std::sync::mpsc::channel();
    b.set_event_handler(Some(Box::new(move |e| {
        if let Event::DataChannelMessage { data, .. } = e {
            let _ = tx.send(data.to_vec());
        }
    })))
    .unwrap();
    a.send_on_channel(ca, b"to the handler", false).unwrap();
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), b"to the handler");
    b.set_event_handler(None).unwrap();
    for i in 0..20u8 {
        a.send_on_channel(ca, &[i], true).unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(next_message(&b).1, vec![i], "an event went to the cleared handler");
    }
    assert!(rx.try_recv().is_err());
}

#[test]
fn offering_to_an_unknown_peer_fails_at_once() {
    let s = server();
    let a = transport(&s.url(), "lonely");
    assert!(matches!(a.connect_peer("nobody"), Err(Error::NotFound(m)) if m.contains("nobody")));
    assert!(a.peers().is_empty());
}

#[test]
fn disconnect_then_reconnect() {
    let s = server();
    let (a, b) = (transport(&s.url(), "da"), transport(&s.url(), "db"));
    connect(&a, &b);
    a.disconnect_peer("db").unwrap();
    wait_for(&b, is_state("da", PeerState::Closed));
    assert!(b.peers().is_empty());
    assert!(a.peers().is_empty());
    assert!(matches!(a.disconnect_peer("db"), Err(Error::NotFound(_))));
    let (ca, _) = connect(&a, &b);
    a.send_on_channel(ca, b"again", false).unwrap();
    assert_eq!(next_message(&b).1, b"again");
}

#[test]
fn closing_a_transport_is_seen_by_the_peer() {
    let s = server();
    let (a, b) = (transport(&s.url(), "ca"), transport(&s.url(), "cb"));
    connect(&a, &b);
    a.close();
    a.close(); // idempotent
    wait_for(&b, |e| matches!(e, Event::PeerLeft { peer_id } if peer_id == "ca"));
    assert!(matches!(a.connect_peer("cb"), Err(Error::Closed(_))));
    assert!(matches!(a.poll_event(Some(Duration::ZERO)), Err(Error::Closed(_))));
}

#[test]
fn peers_survive_a_signaling_restart_and_reannounce() {
    let s = server();
    let addr = s.local_addr();
    let (a, b) = (transport(&s.url(), "ra"), transport(&s.url(), "rb"));
    let (ca, cb) = connect(&a, &b);
    s.stop();
    wait_for(&a, |e| matches!(e, Event::SignalingDisconnected { .. }));
    assert!(!a.is_signaling_connected());
    a.send_on_channel(ca, b"while the server is down", false).unwrap();
    assert_eq!(next_message(&b).1, b"while the server is down");
    let s2 = SignalingServer::start(ServerConfig { bind_addr: addr.to_string(), ..Default::default() }).unwrap();
    wait_for(&a, |e| matches!(e, Event::SignalingConnected));
    wait_for(&b, |e| matches!(e, Event::SignalingConnected));
    b.send_on_channel(cb, b"after restart", false).unwrap();
    assert_eq!(next_message(&a).1, b"after restart");
    let listed = a.list_signaling_peers().unwrap();
    assert_eq!(listed["count"], 2, "{listed}");
    drop(s2);
}

#[test]
fn sessions_target_broadcasts() {
    let s = server();
    let hub = transport(&s.url(), "shub");
    let (x, y) = (transport(&s.url(), "sx"), transport(&s.url(), "sy"));
    connect(&hub, &x);
    connect(&hub, &y);
    hub.create_session("room").unwrap();
    hub.add_session_peer("room", "sx").unwrap();
    assert!(matches!(hub.add_session_peer("room", "nobody"), Err(Error::NotFound(_))));
    assert_eq!(hub.session("room").unwrap().peers.len(), 1);
    assert_eq!(hub.sessions().len(), 1);
    assert_eq!(hub.send_data(Target::Session("room"), b"to room", false).unwrap(), 1);
    assert_eq!(next_message(&x).1, b"to room");
    assert_eq!(hub.send_data(Target::All, b"to all", false).unwrap(), 2);
    assert_eq!(next_message(&y).1, b"to all");
    assert_eq!(next_message(&x).1, b"to all");
    assert_eq!(hub.send_data(Target::Peer("sy"), b"just y", true).unwrap(), 1);
    let too_big = vec![0u8; 64 * 1024 + 1];
    assert!(matches!(hub.send_data(Target::All, &too_big, true), Err(Error::InvalidArgument(_))));
    assert!(matches!(hub.send_data(Target::Peer("sy"), &too_big, true), Err(Error::InvalidArgument(_))));
    assert_eq!(next_message(&y).1, b"just y");
    hub.remove_session_peer("room", "sx").unwrap();
    assert_eq!(hub.send_data(Target::Session("room"), b"nobody", false).unwrap(), 0);
    hub.remove_session("room").unwrap();
    assert!(matches!(hub.send_data(Target::Session("room"), b"", false), Err(Error::NotFound(_))));
}

#[test]
fn manual_answer_when_auto_answer_is_off() {
    let s = server();
    let mut cfg = config(&s.url(), "manual");
    cfg.auto_answer = false;
    let m = Transport::new(cfg).unwrap();
    wait_for(&m, |e| matches!(e, Event::SignalingConnected));
    let c = transport(&s.url(), "caller");
    c.connect_peer("manual").unwrap();
    wait_for(&m, |e| matches!(e, Event::PeerOffer { peer_id } if peer_id == "caller"));
    assert!(m.peers().is_empty());
    m.accept_peer("caller").unwrap();
    wait_for(&m, is_open("caller", "data"));
    wait_for(&c, is_open("manual", "data"));
}
