//! Entry points of the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer), one per target, each
//! `pub fn name(data: &[u8])`. They drive the real code with arbitrary bytes and check what must
//! hold whatever the input (an `assert!` failing is a bug, as is a panic). tests/fuzz_corpus.rs
//! runs them over the seed corpus and the crash reproducers on stable, in the normal test run.
//! Input formats are described per target; fuzz/README.md has the overview.
#![allow(clippy::missing_panics_doc)]

use crate::config::Config;
use crate::media::audio::receive::{Pipeline as AudioPipeline, ReceiveSettings as AudioSettings};
use crate::media::audio::{AudioReceiveStats, INPUT_RATES, SampleFormat, Samples};
use crate::media::video::receive::{Pipeline as VideoPipeline, ReceiveSettings as VideoSettings};
use crate::media::video::{MAX_DIMENSION, VideoCodec, VideoFrame, VideoOutputFormat, VideoReceiveStats};
use crate::signaling::auth::Auth;
use crate::signaling::protocol::{self as rpc, Message, ServerEvent};
use crate::signaling::rate::RateLimit;
use crate::signaling::server::{ServerConfig, handle_frames_offline};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Little reader of fuzz input: reads past the end give zeros / empty slices, never panic.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// JSON equality where numbers may differ by float rounding: serde_json (without its
/// float_roundtrip feature) may read back a printed f64 one ULP off.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if (p - q).abs() <= 4.0 * f64::EPSILON * p.abs().max(q.abs()))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w))),
        _ => a == b,
    }
}

const KNOWN_NOTIFICATIONS: [&str; 6] = ["offer", "answer", "ice_candidate", "peer_joined", "peer_left", "peer_disconnected"];

/// `signaling_message`: one frame (UTF-8, lossy) as both ends parse it: `protocol::parse`,
/// then `ServerEvent::from_call` (what our client does with a server's notification).
pub fn signaling_message(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match rpc::parse(&text) {
        Err((id, e)) => {
            // Only the five JSON-RPC codes, and the error answer we would send is itself parsable.
            assert!([rpc::PARSE_ERROR, rpc::INVALID_REQUEST, rpc::INVALID_PARAMS].contains(&e.code), "{e}");
            let answer = rpc::response(&id.clone().unwrap_or(Value::Null), Err(e.clone()));
            assert!(matches!(rpc::parse(&answer), Ok(Message::Response { result: Err(back), .. }) if back == e), "{answer}");
        }
        Ok(Message::Call { id, method, params }) => {
            // params is always an object (absent/null → {}), and the call survives re-encoding.
            assert!(params.is_object());
            let again = match &id {
                None => rpc::notification(&method, params.clone()),
                Some(id) => json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
            };
            match rpc::parse(&again) {
                Ok(Message::Call { id: id2, method: m2, params: p2 }) => {
                    assert_eq!(m2, method);
                    assert!(json_eq(&p2, &params) && id.is_some() == id2.is_some(), "{again}");
                }
                other => panic!("re-encoded call {again} parsed as {other:?}"),
            }
            // Every known notification either yields the event with the param values as given,
            // or an invalid-params error; unknown methods are ignored (Ok(None)).
            for m in KNOWN_NOTIFICATIONS.iter().copied().chain([method.as_str()]) {
                check_server_event(m, &params);
            }
        }
        Ok(Message::Response { id, result }) => {
            // What we parsed is what we would send back.
            let again = rpc::response(&id, result.clone());
            match rpc::parse(&again) {
                Ok(Message::Response { id: id2, result: r2 }) => {
                    assert!(json_eq(&id2, &id), "{again}");
                    match (&r2, &result) {
                        (Ok(a), Ok(b)) => assert!(json_eq(a, b), "{again}"),
                        (Err(a), Err(b)) => assert_eq!(a, b),
                        _ => panic!("result kind changed: {again}"),
                    }
                }
                other => panic!("re-encoded response {again} parsed as {other:?}"),
            }
        }
    }
}

/// `from_call` takes its fields from params, never invents one, and only fails with -32602.
fn check_server_event(method: &str, params: &Value) {
    let s = |k: &str| params.get(k).and_then(Value::as_str);
    match ServerEvent::from_call(method, params) {
        Err(e) => assert_eq!(e.code, rpc::INVALID_PARAMS, "{method}: {e}"),
        Ok(None) => assert!(!KNOWN_NOTIFICATIONS.contains(&method), "{method} ignored"),
        Ok(Some(ev)) => match ev {
            ServerEvent::Offer { from, sdp } | ServerEvent::Answer { from, sdp } => {
                assert_eq!((Some(from.as_str()), Some(sdp.as_str())), (s("from_peer_id"), s("sdp")));
            }
            ServerEvent::IceCandidate { from, candidate, sdp_mid, sdp_mline_index } => {
                assert_eq!((Some(from.as_str()), Some(candidate.as_str())), (s("from_peer_id"), s("candidate")));
                assert_eq!(sdp_mid.as_deref(), s("sdp_mid"));
                assert_eq!(sdp_mline_index.map(u64::from), params.get("sdp_mline_index").and_then(Value::as_u64));
            }
            ServerEvent::PeerJoined { peer_id, .. } | ServerEvent::PeerLeft { peer_id } | ServerEvent::PeerDisconnected { peer_id } => {
                assert_eq!(Some(peer_id.as_str()), s("peer_id"));
            }
        },
    }
}

/// Shared secret of the servers in the `signaling_server` and `auth_token` targets (the seeds
/// use it, so the fuzzer gets past authentication).
const FUZZ_SECRET: &str = "fuzz-secret";

/// `signaling_server`: several clients talking to the real message handling of the server
/// (`handle_frames_offline`). Input: text lines. The first line is the setup: the first digit
/// is the number of clients (1..=4, default 2); `r` = a tiny rate limit (1/s, burst 3), `q` =
/// outbound queues of 1, `m` = max_message_bytes 1024, `a` = shared-secret auth (FUZZ_SECRET).
/// Each further line is one text frame: its first character picks the client (digit mod the
/// number of clients), the rest is the frame.
pub fn signaling_server(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let setup = lines.next().unwrap_or("");
    let clients = setup.bytes().find(u8::is_ascii_digit).map_or(2, |d| usize::from(d - b'0').clamp(1, 4));
    let (rate, small_queue, auth) = (setup.contains('r'), setup.contains('q'), setup.contains('a'));
    let cfg = ServerConfig {
        rate_limit: rate.then_some(RateLimit { per_second: 1, burst: 3 }),
        outbound_queue: if small_queue { 1 } else { 64 },
        max_message_bytes: if setup.contains('m') { 1024 } else { 64 * 1024 },
        auth: auth.then(|| Auth::SharedSecret(FUZZ_SECRET.into())),
        ..ServerConfig::default()
    };
    let frames: Vec<(usize, &str)> = lines
        .filter_map(|l| {
            let c = l.chars().next()?;
            Some(((c as usize).wrapping_sub('0' as usize) % clients, &l[c.len_utf8()..]))
        })
        .take(256)
        .collect();
    let max = cfg.max_message_bytes;
    let received = handle_frames_offline(cfg, clients, &frames);
    assert_eq!(received.len(), clients);

    // What each client sent, as the server must have understood it.
    let mut announce_tries: Vec<Vec<(String, Option<String>)>> = vec![Vec::new(); clients];
    // Ids announced by notification (no id: no answer tells whether it worked).
    let mut quiet_tries: Vec<HashSet<String>> = vec![HashSet::new(); clients];
    let mut relays: Vec<Vec<(String, String, String)>> = vec![Vec::new(); clients]; // (method, to, sdp/candidate)
    let mut expected_ids: Vec<Vec<Value>> = vec![Vec::new(); clients];
    for &(c, text) in &frames {
        let parsed = rpc::parse(text);
        // The id each frame must be answered with (None: no answer), per docs/PROTOCOL.md.
        let answer_id = match &parsed {
            _ if text.len() > max => Some(Value::Null),
            Err((None, e)) if e.code == rpc::INVALID_PARAMS => None,
            Err((id, _)) => Some(id.clone().unwrap_or(Value::Null)),
            Ok(Message::Response { .. }) => None,
            Ok(Message::Call { id, .. }) => id.clone(),
        };
        expected_ids[c].extend(answer_id);
        if let (Ok(Message::Call { method, params, id }), true) = (parsed, text.len() <= max) {
            let s = |k: &str| params.get(k).and_then(Value::as_str).map(String::from);
            match method.as_str() {
                "announce" if id.is_none() => quiet_tries[c].extend(s("peer_id")),
                "announce" => announce_tries[c].extend(s("peer_id").map(|id| (id, s("token")))),
                "disconnect" => relays[c].extend(s("peer_id").map(|to| (method.clone(), to, String::new()))),
                "offer" | "answer" | "ice_candidate" => {
                    let key = if method == "ice_candidate" { s("candidate") } else { s("sdp") };
                    relays[c].extend(s("to_peer_id").zip(key).map(|(to, k)| (method.clone(), to, k)));
                }
                _ => {}
            }
        }
    }

    // 1. Everything sent is JSON-RPC our own client accepts: responses, or notifications of a
    //    known method whose params ServerEvent::from_call reads.
    let mut announced: Vec<HashSet<String>> = vec![HashSet::new(); clients];
    let mut closed = vec![false; clients];
    let mut answers: Vec<Vec<Value>> = vec![Vec::new(); clients];
    let mut notes: Vec<Vec<(String, Value)>> = vec![Vec::new(); clients];
    for (c, msgs) in received.iter().enumerate() {
        for m in msgs {
            match rpc::parse(m) {
                Ok(Message::Response { id, result }) => {
                    match &result {
                        Ok(r) if r.get("peers_count").is_some() => {
                            let id = r["peer_id"].as_str().expect("announce result names the id");
                            assert!(!r["other_peers"].as_array().expect("other_peers").iter().any(|o| o == id), "{m}");
                            announced[c].insert(id.to_string());
                        }
                        Err(e) if e.message.starts_with("rate limit exceeded") && e.message.ends_with(": closing the connection") => {
                            closed[c] = true
                        }
                        _ => {}
                    }
                    answers[c].push(id);
                }
                Ok(Message::Call { id, method, params }) => {
                    assert!(id.is_none(), "the server sends no requests: {m}");
                    assert!(matches!(ServerEvent::from_call(&method, &params), Ok(Some(_))), "client cannot use {m}");
                    notes[c].push((method, params));
                }
                Err(e) => panic!("server sent unparsable {m}: {e:?}"),
            }
        }
    }
    for c in 0..clients {
        // 2. One id per connection, obtained by a matching announce (with the secret if asked).
        assert!(announced[c].len() <= 1, "client {c} announced twice: {:?}", announced[c]);
        for id in &announced[c] {
            assert!(announce_tries[c].iter().any(|(p, t)| p == id && (!auth || t.as_deref() == Some(FUZZ_SECRET))), "client {c} got {id}");
        }
        // 3. Every request is answered once, in order, its id echoed. Rate limiting (answered
        //    with id null instead) and queues of 1 (a client relaying to itself can lose its
        //    answer in this offline driver) only allow a subsequence of the non-null ids.
        if !rate && !small_queue {
            let ok = answers[c].len() == expected_ids[c].len() && answers[c].iter().zip(&expected_ids[c]).all(|(a, e)| json_eq(a, e));
            assert!(ok, "client {c}: answers {:?}, expected {:?}", answers[c], expected_ids[c]);
        } else {
            let mut want = expected_ids[c].iter().filter(|v| !v.is_null());
            for a in answers[c].iter().filter(|v| !v.is_null()) {
                assert!(want.any(|e| json_eq(a, e)), "client {c}: answer id {a} out of order or unasked");
            }
        }
    }
    // 4. No id is held by two connections at once (one of them must have been closed first).
    for a in 0..clients {
        for b in a + 1..clients {
            assert!(announced[a].is_disjoint(&announced[b]) || closed[a] || closed[b], "{:?} announced twice", announced[a]);
        }
    }
    // 5. Sender stamping: a relayed notification names as sender an id that a connection
    //    announced, and that same connection asked for exactly this relay to this receiver.
    //    (A connection may also hold an id it announced by notification.)
    let held: Vec<HashSet<String>> = announced.iter().zip(&quiet_tries).map(|(a, q)| a.union(q).cloned().collect()).collect();
    let all: HashSet<&String> = held.iter().flatten().collect();
    for (j, ns) in notes.iter().enumerate() {
        for (method, p) in ns {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            let (from, req, key) = match method.as_str() {
                "peer_joined" | "peer_left" => {
                    assert!(all.contains(&s("peer_id")), "{method} for an id nobody announced: {p}");
                    continue;
                }
                "peer_disconnected" => (s("peer_id"), "disconnect", String::new()),
                "ice_candidate" => (s("from_peer_id"), "ice_candidate", s("candidate")),
                _ => (s("from_peer_id"), method.as_str(), s("sdp")),
            };
            let sent = (0..clients).any(|c| {
                held[c].contains(&from) && relays[c].iter().any(|(m, to, k)| m == req && *k == key && held[j].contains(to))
            });
            assert!(sent, "client {j} got {method} {p} that no connection announced as {from} sent");
        }
    }
}

/// `configs`: the JSON the C API parses: the transport config (`rmw_transport_new`) and the
/// signaling server config (`rmw_signaling_server_start_with_config`), same bytes to both.
pub fn configs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::from_json(&text) {
        Err(e) => assert!(matches!(e, crate::Error::Config(ref m) if !m.is_empty()), "{e:?}"),
        Ok(cfg) => {
            // A parsed config is valid, survives a round trip through its JSON form, and the
            // things Transport::new and the media pipelines build from it can be built.
            cfg.validate().expect("from_json validates");
            let back = Config::from_json(&serde_json::to_string(&cfg).unwrap()).expect("re-parse of our own JSON");
            assert!(json_eq(&back.capabilities, &cfg.capabilities));
            assert_eq!(Config { capabilities: cfg.capabilities.clone(), ..back }, cfg);
            crate::peer::build_api(&cfg).expect("webrtc API from a valid config");
            let audio = AudioSettings {
                rate: cfg.audio_output_sample_rate,
                channels: cfg.audio_output_channels as u16,
                format: cfg.audio_output_format,
                max_wait: Duration::from_millis(cfg.jitter_buffer_size_ms.into()),
            };
            AudioPipeline::new(String::new(), String::new(), audio).expect("audio receive pipeline from a valid config");
        }
    }
    match ServerConfig::from_json(&text) {
        Err(e) => assert!(matches!(e, crate::Error::Config(ref m) if !m.is_empty()), "{e:?}"),
        Ok(cfg) => {
            cfg.validate().expect("from_json validates");
            // server.rs sizes the WebSocket layer's limit as 4 × max_message_bytes.
            assert!(cfg.max_message_bytes.checked_mul(4).is_some(), "max_message_bytes {} overflows 4×", cfg.max_message_bytes);
            // A valid config runs the real connection handling (queues, rate limit, auth).
            let frames = [(0, r#"{"jsonrpc":"2.0","id":1,"method":"announce","params":{"peer_id":"a"}}"#), (1, r#"{"jsonrpc":"2.0","id":1,"method":"list_peers"}"#)];
            let got = handle_frames_offline(cfg, 2, &frames);
            assert!(got.iter().all(|m| !m.is_empty()), "{got:?}");
        }
    }
}

/// `sdp`: the SDP and candidate handling we do ourselves (`peer::first_mid`,
/// `peer::advertise_max_message_size`), plus the webrtc-rs parsers a remote offer, answer or
/// candidate goes through in the transport (`RTCSessionDescription::offer/answer`, then
/// `add_ice_candidate`'s `unmarshal_candidate`). Input: SDP text; each line is also tried as
/// a candidate.
pub fn sdp(data: &[u8]) {
    use crate::peer::{advertise_max_message_size, first_mid};
    let sdp = String::from_utf8_lossy(data);

    // first_mid: what follows `a=mid:` on the first line that has it (line end trimmed).
    let first = sdp.lines().find(|l| l.trim_end().starts_with("a=mid:"));
    assert_eq!(first_mid(&sdp).as_deref(), first.map(|l| &l.trim_end()["a=mid:".len()..]));

    // advertise_max_message_size: unchanged when the attribute is there; otherwise exactly one
    // `a=max-message-size:` line after each `a=sctp-port:` line, and nothing else changed.
    // Idempotent, so a description can go through it twice. It only sees webrtc-rs's own
    // descriptions, whose every line ends with CRLF (RFC 8866 §5): a last line without one
    // would have the attribute glued onto it.
    if sdp.is_empty() || sdp.ends_with('\n') {
        let out = advertise_max_message_size(&sdp);
        assert_eq!(advertise_max_message_size(&out), out, "not idempotent");
        if sdp.contains("a=max-message-size:") {
            assert_eq!(out, sdp);
        } else {
            let ports = sdp.split_inclusive('\n').filter(|l| l.starts_with("a=sctp-port:")).count();
            let added: Vec<&str> = out.split_inclusive('\n').filter(|l| l.starts_with("a=max-message-size:")).collect();
            assert_eq!(added.len(), ports, "one line per a=sctp-port line: {out:?}");
            assert!(added.iter().all(|l| *l == format!("a=max-message-size:{}\r\n", crate::peer::MAX_RECV_MESSAGE_SIZE)));
            let rest: String = out.split_inclusive('\n').filter(|l| !l.starts_with("a=max-message-size:")).collect();
            assert_eq!(rest, sdp, "lines of the description changed");
        }
    }

    // Remote descriptions and candidates as the transport hands them to webrtc-rs: must not
    // panic (errors are reported to the application as Event::Error).
    use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
    if let Ok(d) = RTCSessionDescription::offer(sdp.to_string()) {
        let _ = first_mid(&d.sdp);
    }
    let _ = RTCSessionDescription::answer(sdp.to_string());
    for line in sdp.lines().take(64) {
        let raw = line.trim_start_matches("a=");
        let value = raw.strip_prefix("candidate:").unwrap_or(raw);
        if let Ok(c) = webrtc::ice::candidate::candidate_base::unmarshal_candidate(value) {
            use webrtc::ice::candidate::Candidate;
            let c: std::sync::Arc<dyn Candidate + Send + Sync> = std::sync::Arc::new(c);
            let _ = webrtc::ice_transport::ice_candidate::RTCIceCandidate::from(&c).to_json();
        }
    }
}

/// `auth_token`: `Auth::check` with an attacker's peer id and token. Input: byte 0 picks the
/// scheme and mode, then lines: peer id, token (or JWT claims JSON that the harness signs).
/// Byte 0: bit 0 = JWT (else shared secret); bit 1 = sign line 2 as claims with the server's
/// secret (HS256, or HS384 if bit 2: must be refused); bit 3 = sign with another secret.
pub fn auth_token(data: &[u8]) {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (peer_id, token) = text.split_once('\n').unwrap_or((&text, ""));
    assert!(Auth::SharedSecret(FUZZ_SECRET.into()).check(peer_id, None).is_err(), "no token must never pass");
    assert!(Auth::Jwt { secret: FUZZ_SECRET.into() }.check(peer_id, None).is_err(), "no token must never pass");
    if mode & 1 == 0 {
        // Shared secret: accepted exactly when the token is the secret.
        assert_eq!(Auth::SharedSecret(FUZZ_SECRET.into()).check(peer_id, Some(token)).is_ok(), token == FUZZ_SECRET);
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut token = token.to_string();
    let mut canonical = false;
    if mode & 2 != 0 {
        // The harness signs the claims, so that the fuzzer reaches the claim checks. Empty
        // claims: a well-formed token for this peer, valid for an hour, which must pass.
        let claims: Value = match token.trim() {
            "" => {
                canonical = mode & 0b1100 == 0;
                json!({"sub": peer_id, "exp": now + 3600})
            }
            t => match serde_json::from_str(t) {
                Ok(v) => v,
                Err(_) => return,
            },
        };
        let alg = if mode & 4 != 0 { Algorithm::HS384 } else { Algorithm::HS256 };
        let key = if mode & 8 != 0 { "another-secret" } else { FUZZ_SECRET };
        let Ok(t) = encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key.as_bytes())) else { return };
        token = t;
    }
    let verdict = Auth::Jwt { secret: FUZZ_SECRET.into() }.check(peer_id, Some(&token));
    if canonical {
        assert!(verdict.is_ok(), "a valid token was refused: {verdict:?}");
    }
    if verdict.is_ok() {
        // Accepted only if HS256-signed with the server's secret, issued for this very peer
        // id, and not expired (5 s leeway).
        let header = jsonwebtoken::decode_header(&token).expect("accepted token has a header");
        assert_eq!(header.alg, Algorithm::HS256);
        assert!(mode & 0b1100 == 0 || mode & 2 == 0, "token signed with HS384 or another key accepted");
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).expect("accepted token has claims");
        assert_eq!(claims["sub"].as_str(), Some(peer_id), "token for another peer accepted");
        assert!(claims["exp"].as_f64().is_some_and(|e| e >= (now - 10) as f64), "expired token accepted: {claims}");
    }
}

/// Checks of one decoded video frame, whatever the input.
fn check_video_frame(f: &VideoFrame, codec: VideoCodec, format: VideoOutputFormat) {
    let (w, h) = (f.width, f.height);
    assert!((1..=MAX_DIMENSION).contains(&w) && (1..=MAX_DIMENSION).contains(&h), "{w}x{h}");
    assert_eq!((f.codec, f.format), (codec, format));
    let (w, h, cw, ch) = (w as usize, h as usize, w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    match format {
        VideoOutputFormat::I420 => {
            assert_eq!(f.data.len(), w * h + 2 * cw * ch);
            assert_eq!((f.plane(0).len(), f.plane(1).len(), f.plane(2).len()), (w * h, cw * ch, cw * ch));
        }
        VideoOutputFormat::Rgba => assert_eq!(f.data.len(), w * h * 4),
    }
}

/// `video_rtp`: remote VP8/VP9 RTP through the receive pipeline (frame assembler, keyframe
/// detection, libvpx decode, I420/RGBA) with a virtual clock. Byte 0: bit 0 = VP9, bit 1 =
/// RGBA, bit 2 = "sender" mode. Raw mode: packets of [seq u16][timestamp u32][flags u8: bit 0
/// marker, bits 1-2 clock step][len u16][payload], headers as an attacker likes. Sender mode:
/// frames of [op u8][len u16][encoded frame], packetised as our sender does (payloader, MTU
/// from op), then delivered in order, reversed, with one packet lost, or duplicated (op bits
/// 0-1), the clock stepping by op bits 2-3: a well-behaved sender over a bad network.
pub fn video_rtp(data: &[u8]) {
    use webrtc::rtp::codecs::{vp8::Vp8Payloader, vp9::Vp9Payloader};
    use webrtc::rtp::packetizer::Payloader;
    let mut input = Input(data);
    let flags = input.u8();
    let codec = if flags & 1 != 0 { VideoCodec::Vp9 } else { VideoCodec::Vp8 };
    let format = if flags & 2 != 0 { VideoOutputFormat::Rgba } else { VideoOutputFormat::I420 };
    let sender = flags & 4 != 0;
    let settings = VideoSettings { format, max_wait: Duration::from_millis(100) };
    let mut p = VideoPipeline::new("fuzz".into(), "video".into(), codec, settings).expect("decoder");
    let steps = [0, 5, 150, 2000].map(Duration::from_millis);
    let t0 = Instant::now();
    let mut now = t0;
    let (mut pushed, mut timestamps, mut delivered) = (0u64, HashSet::new(), Vec::new());
    let mut push = |p: &mut VideoPipeline, seq: u16, ts: u32, marker: bool, payload: Bytes| {
        pushed += 1;
        timestamps.insert(ts);
        p.push(seq, ts, marker, payload, pushed);
    };
    let (mut seq, mut frame_ts) = (65_500u16, 0u32);
    // Configured as media/video/send.rs does, with a fixed first picture id (reproducible).
    let mut payloader: Box<dyn Payloader> = match codec {
        VideoCodec::Vp8 => {
            let mut p = Vp8Payloader::default();
            p.enable_picture_id = true;
            Box::new(p)
        }
        VideoCodec::Vp9 => {
            let mut p = Vp9Payloader::default();
            p.initial_picture_id_fn = Some(std::sync::Arc::new(|| 0x1234));
            Box::new(p)
        }
    };
    let mut records = 0;
    while !input.is_empty() && records < 64 {
        records += 1;
        if sender {
            let op = input.u8();
            let len = input.u16() as usize;
            let frame = Bytes::copy_from_slice(input.bytes(len));
            let mtu = 24 + 64 * usize::from(op >> 4);
            let mut packets: Vec<(u16, bool, Bytes)> = match payloader.payload(mtu, &frame) {
                Ok(ps) => {
                    let n = ps.len();
                    ps.into_iter().enumerate().map(|(i, b)| (seq.wrapping_add(i as u16), i + 1 == n, b)).collect()
                }
                Err(_) => Vec::new(),
            };
            seq = seq.wrapping_add(packets.len() as u16);
            match op & 3 {
                1 => packets.reverse(),
                2 if !packets.is_empty() => drop(packets.remove(usize::from(op >> 4) % packets.len())),
                3 => packets.extend(packets.clone()),
                _ => {}
            }
            for (s, marker, b) in packets {
                push(&mut p, s, frame_ts, marker, b);
            }
            frame_ts = frame_ts.wrapping_add(3000);
            now += steps[usize::from(op >> 2) & 3];
        } else {
            let (s, ts, f) = (input.u16(), input.u32(), input.u8());
            let len = input.u16() as usize;
            push(&mut p, s, ts, f & 1 != 0, Bytes::copy_from_slice(input.bytes(len)));
            now += steps[usize::from(f >> 1) & 3];
        }
        delivered.extend(p.drain(now));
    }
    delivered.extend(p.drain(now + Duration::from_secs(10)));

    // Nothing comes out before a keyframe; what comes out is a well-formed picture of a
    // timestamp that was sent; a well-behaved sender's frames come out in order, each once.
    assert!(delivered.first().is_none_or(|f| f.keyframe), "first frame out is not a keyframe");
    for f in &delivered {
        check_video_frame(f, codec, format);
        assert!(timestamps.contains(&f.rtp_timestamp), "frame with a timestamp never sent");
    }
    if sender {
        assert!(delivered.windows(2).all(|w| w[0].rtp_timestamp < w[1].rtp_timestamp), "frames out of order or repeated");
    }
    let mut s = VideoReceiveStats::default();
    p.update(&mut s);
    assert_eq!(s.packets_received, pushed);
    assert!(s.frames_decoded + s.frames_skipped <= s.frames_assembled, "{s:?}");
    assert!(s.keyframes_decoded <= s.frames_decoded && delivered.len() as u64 <= s.frames_decoded, "{s:?}");
}

/// `audio_rtp`: remote Opus RTP through the receive pipeline (jitter buffer, Opus decode with
/// FEC and concealment, resampling, S16/F32) with a virtual clock. Byte 0: bits 0-2 = output
/// rate (INPUT_RATES index), bit 3 = stereo, bit 4 = S16; byte 1: max wait 10 + n ms. Then
/// packets of [seq u16][timestamp u32][clock step ms u8][len u8][payload].
pub fn audio_rtp(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.u8();
    let settings = AudioSettings {
        rate: INPUT_RATES[usize::from(flags & 7)],
        channels: 1 + u16::from(flags >> 3 & 1),
        format: if flags & 16 != 0 { SampleFormat::S16 } else { SampleFormat::F32 },
        max_wait: Duration::from_millis(10 + u64::from(input.u8())),
    };
    let mut p = AudioPipeline::new("fuzz".into(), "audio".into(), settings).expect("opus decoder");
    let mut now = Instant::now();
    // The arrival time handed in is the packet's index: it tags each frame with its packet.
    let (mut sent, mut frames): (HashMap<u64, u32>, Vec<_>) = (HashMap::new(), Vec::new());
    let mut packets = 0u64;
    while !input.is_empty() && packets < 256 {
        let (seq, ts, step) = (input.u16(), input.u32(), input.u8());
        let len = usize::from(input.u8());
        let payload = Bytes::copy_from_slice(input.bytes(len));
        packets += 1;
        if !payload.is_empty() {
            sent.insert(packets, ts);
        }
        p.push(seq, ts, payload, packets);
        now += Duration::from_millis(step.into());
        frames.extend(p.drain(now));
    }
    frames.extend(p.drain(now + Duration::from_secs(10)));

    let max_per_channel = settings.rate as usize * 130 / 1000 + 1024; // 120 ms + resampler slack
    let mut seen = HashSet::new();
    for f in &frames {
        assert_eq!((f.sample_rate, f.channels), (settings.rate, settings.channels));
        assert!(f.samples.len() % usize::from(f.channels) == 0 && f.samples_per_channel() <= max_per_channel, "{} samples", f.samples.len());
        assert!(f.level <= 127);
        if let Samples::F32(s) = &f.samples {
            assert!(s.iter().all(|v| v.is_finite()), "non-finite sample");
        }
        if !f.concealed {
            // A decoded frame is one packet that was sent, with its timestamp, handed out once.
            assert_eq!(sent.get(&f.arrival_us), Some(&f.rtp_timestamp), "frame from no packet");
            assert!(seen.insert(f.arrival_us), "packet {} played twice", f.arrival_us);
        }
    }
    let mut s = AudioReceiveStats::default();
    p.update(&mut s);
    assert_eq!(s.packets_received, sent.len() as u64);
    assert_eq!(s.frames_decoded + s.frames_fec + s.frames_concealed, frames.len() as u64, "{s:?}");
    assert!(s.packets_late <= s.packets_received && s.frames_decoded <= s.packets_received, "{s:?}");
}

/// Every entry point by target name (the fuzz/ targets and tests/fuzz_corpus.rs use these
/// names). A static, not a const: cbindgen exports constants to the C header.
pub static TARGETS: [(&str, fn(&[u8])); 7] = [
    ("signaling_message", signaling_message),
    ("signaling_server", signaling_server),
    ("configs", configs),
    ("sdp", sdp),
    ("auth_token", auth_token),
    ("video_rtp", video_rtp),
    ("audio_rtp", audio_rtp),
];
