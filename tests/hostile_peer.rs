//! A remote peer that sends what it should not: malformed SDP, bogus ICE candidates, garbage on
//! a data channel, RTP that does not decode. Mallory is a plain webrtc-rs peer driven by hand,
//! with a raw signaling client; alice (ours) must report each problem as an error event for
//! mallory and go on, and her call with bob (ours) must not notice.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use remotemedia_webrtc::Event;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocalWriter;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;

/// Mallory's signaling: a raw JSON-RPC WebSocket.
struct Signal(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Signal {
    async fn announce(url: &str, id: &str) -> Signal {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut s = Signal(ws);
        s.send("announce", json!({"peer_id": id})).await;
        s
    }

    async fn send(&mut self, method: &str, params: Value) {
        self.0.send(Message::text(json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string())).await.unwrap();
    }

    /// The params of the next notification `method`.
    async fn notification(&mut self, method: &str) -> Value {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, self.0.next()).await.expect("signaling message").unwrap().unwrap();
            if let Message::Text(t) = frame {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["method"] == method {
                    return v["params"].clone();
                }
            }
        }
    }
}

/// A webrtc-rs peer restricted to loopback host candidates.
async fn peer() -> Arc<RTCPeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut s = SettingEngine::default();
    s.set_network_types(vec![NetworkType::Udp4]);
    s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    s.set_include_loopback_candidate(true);
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = APIBuilder::new().with_media_engine(media).with_interceptor_registry(registry).with_setting_engine(s).build();
    Arc::new(api.new_peer_connection(RTCConfiguration::default()).await.unwrap())
}

fn track(mime: &str, clock_rate: u32, channels: u16, id: &str) -> Arc<TrackLocalStaticRTP> {
    let cap = RTCRtpCodecCapability { mime_type: mime.into(), clock_rate, channels, ..Default::default() };
    Arc::new(TrackLocalStaticRTP::new(cap, id.into(), "mallory".into()))
}

fn rtp(seq: u16, timestamp: u32, payload: &[u8]) -> Packet {
    Packet { header: Header { version: 2, sequence_number: seq, timestamp, marker: true, ..Default::default() }, payload: payload.to_vec().into() }
}

/// Alice's events, kept: a wait for one must not lose the others that came first.
struct Log(Vec<Event>);

impl Log {
    /// The first event so far or within the timeout that `pred` accepts (taken out of the log).
    fn wait(&mut self, t: &remotemedia_webrtc::Transport, pred: impl Fn(&Event) -> bool) -> Event {
        if let Some(i) = self.0.iter().position(&pred) {
            return self.0.remove(i);
        }
        let keep = |e: &Event| pred(e) || {
            self.0.push(e.clone());
            false
        };
        poll_until(t, TIMEOUT, keep, || None).unwrap_or_else(|_| panic!("alice: event not seen within {TIMEOUT:?}; saw {:#?}", self.0))
    }
}

fn is_error_about(needle: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Error { peer_id: Some(p), message } if p == "mallory" && message.contains(needle))
}

#[test]
fn a_hostile_peer_gets_error_events_and_the_other_calls_go_on() {
    let s = server();
    let alice = transport(&s.url(), "alice");
    let bob = transport(&s.url(), "bob");
    let (ab, _) = connect(&alice, &bob);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut sig = rt.block_on(Signal::announce(&s.url(), "mallory"));
    let mut log = Log(Vec::new());

    // 1. An offer that is not SDP.
    rt.block_on(sig.send("offer", json!({"to_peer_id": "alice", "sdp": "v=0\r\nthis is not SDP\r\n", "type": "offer"})));
    let e = log.wait(&alice, |e| matches!(e, Event::Error { peer_id: Some(p), .. } if p == "mallory"));
    println!("malformed SDP -> {e:?}");

    // 2. Then a real connection: alice offers, mallory (data channel, Opus and VP8 tracks)
    // answers with every candidate in its answer.
    let pc = rt.block_on(peer());
    let (audio, video) = (track("audio/opus", 48_000, 2, "garbage-audio"), track("video/VP8", 90_000, 0, "garbage-video"));
    alice.connect_peer("mallory").unwrap();
    let dc = rt.block_on(async {
        pc.add_track(audio.clone()).await.unwrap();
        pc.add_track(video.clone()).await.unwrap();
        let offer = sig.notification("offer").await;
        pc.set_remote_description(RTCSessionDescription::offer(offer["sdp"].as_str().unwrap().into()).unwrap()).await.unwrap();
        let dc = pc.create_data_channel("junk", Some(webrtc::data_channel::data_channel_init::RTCDataChannelInit { negotiated: None, ..Default::default() })).await.unwrap();
        let answer = pc.create_answer(None).await.unwrap();
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer).await.unwrap();
        let _ = gathered.recv().await;
        let sdp = pc.local_description().await.unwrap().sdp;
        sig.send("answer", json!({"to_peer_id": "alice", "sdp": sdp, "type": "answer"})).await;
        dc
    });

    // 3. Bogus candidates. Then alice's real ones are taken, so the connection completes.
    rt.block_on(sig.send("ice_candidate", json!({"to_peer_id": "alice", "candidate": "candidate:garbage 1 udp x y z", "sdp_mid": "0", "sdp_mline_index": 0})));
    let e = log.wait(&alice, is_error_about("bad ICE candidate"));
    println!("bogus candidate -> {e:?}");
    let pc2 = pc.clone();
    rt.spawn(async move {
        loop {
            let c = sig.notification("ice_candidate").await;
            let init = webrtc::ice_transport::ice_candidate::RTCIceCandidateInit {
                candidate: c["candidate"].as_str().unwrap_or_default().into(),
                sdp_mid: c["sdp_mid"].as_str().map(String::from),
                sdp_mline_index: c["sdp_mline_index"].as_u64().map(|i| i as u16),
                username_fragment: None,
            };
            let _ = pc2.add_ice_candidate(init).await;
        }
    });

    // 4. Garbage on a data channel is just data: delivered as sent, nothing else happens.
    log.wait(&alice, |e| matches!(e, Event::DataChannelOpen { peer_id, label, .. } if peer_id == "mallory" && label == "junk"));
    let junk: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    rt.block_on(dc.send(&junk.clone().into())).unwrap();
    match log.wait(&alice, |e| matches!(e, Event::DataChannelMessage { peer_id, .. } if peer_id == "mallory")) {
        Event::DataChannelMessage { data, binary, .. } => assert!(binary && data[..] == junk[..]),
        _ => unreachable!(),
    }

    // 5. RTP that does not decode: an Opus packet whose frame count is 0 (RFC 6716 §3.2.5), and
    // a VP8 "keyframe" whose first partition is longer than the packet.
    let bad_opus = [0x03u8, 0x00];
    let mut bad_vp8 = vec![0x10u8, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
    bad_vp8.extend([0xab; 20]);
    rt.block_on(async {
        for i in 0..50u16 {
            audio.write_rtp(&rtp(i, u32::from(i) * 960, &bad_opus)).await.unwrap();
            video.write_rtp(&rtp(i, u32::from(i) * 3000, &bad_vp8)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        match log.wait(&alice, is_error_about("does not decode")) {
            Event::Error { message, .. } => {
                println!("undecodable RTP -> {message}");
                seen.0 |= message.starts_with("audio track");
                seen.1 |= message.starts_with("video track");
            }
            _ => unreachable!(),
        }
    }

    // 6. Alice and bob noticed nothing: their channel works, bob saw no error, alice still
    // holds both connections.
    alice.send_on_channel(ab, b"still here", false).unwrap();
    assert_eq!(next_message(&bob).1, b"still here");
    let bob_saw = drain(&bob, Duration::from_millis(200));
    assert!(!bob_saw.iter().any(|e| matches!(e, Event::Error { .. })), "{bob_saw:?}");
    let peers: Vec<_> = alice.peers().into_iter().map(|p| (p.peer_id, p.state)).collect();
    assert!(peers.contains(&("bob".to_string(), "connected")) && peers.contains(&("mallory".to_string(), "connected")), "{peers:?}");
    rt.block_on(pc.close()).unwrap();
}

#[test]
fn a_peer_that_never_answers_is_given_up_after_the_failed_timeout() {
    let s = server();
    let cfg = remotemedia_webrtc::Config { ice_disconnected_timeout_ms: 500, ice_failed_timeout_ms: 1500, ..config(&s.url(), "alice") };
    let alice = remotemedia_webrtc::Transport::new(cfg).unwrap();
    wait_for(&alice, |e| matches!(e, Event::SignalingConnected));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut sig = rt.block_on(Signal::announce(&s.url(), "silent"));
    alice.connect_peer("silent").unwrap();
    rt.block_on(sig.notification("offer")); // and never answers
    let asked = std::time::Instant::now();
    let e = wait_for(&alice, |e| matches!(e, Event::Error { peer_id: Some(p), .. } if p == "silent"));
    let waited = asked.elapsed();
    println!("gave up after {waited:?}: {e:?}");
    assert!(matches!(&e, Event::Error { message, .. } if message.contains("not established within 1500 ms")), "{e:?}");
    assert!(waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4), "{waited:?}");
    wait_for(&alice, |e| matches!(e, Event::PeerStateChanged { peer_id, state: remotemedia_webrtc::events::PeerState::Closed } if peer_id == "silent"));
    assert!(alice.peers().is_empty());
}
