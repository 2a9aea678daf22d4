//! Signaling server under load (not a test; never asserted):
//! `cargo bench --bench signaling_load [-- quick]` (or `RMW_BENCH_SHORT=1`).
//!
//! One `SignalingServer` on 127.0.0.1 (in this process, on its own runtime, as shipped: one
//! worker thread) and N WebSocket clients (tokio-tungstenite, one client runtime of one worker
//! thread, so server and clients get one core each of the 2-core machine). Every client:
//!
//! 1. connects and announces (all N at once); we measure until every `announce` is answered
//!    and until every client has heard of all N − 1 others (`other_peers` + `peer_joined`);
//! 2. for a fixed time, sends `R` requests per second (with ids, as our client does) to random
//!    other clients: one `offer` carrying a realistic ~4 KB SDP in every five, `ice_candidate`
//!    otherwise (the usual mix: a description, then its candidates). The sender's clock
//!    (µs since a process-wide epoch) is embedded in the SDP (`a=x-bench-ts:`) or at the end of
//!    the candidate line; the target stamps the frame when it arrives, before parsing it.
//!
//! Reported per run: announce times, requests sent, notifications relayed per second (over the
//! sending time plus the drain: how long after the end of sending the last message arrived),
//! relay latency p50/p99/max (sender's clock → target's receipt), error responses by kind,
//! messages lost (sent, not refused, not received within 30 s of the end), and the server
//! threads' CPU and run-queue wait while sending (per-thread schedstat, so the clients' CPU is
//! not counted; the wait shows how much the rest of the machine starved the server) and CPU
//! per relayed message.
//!
//! Baselines in the same process: the same clients and load against a bare tokio-tungstenite
//! echo server on one worker thread (same WebSocket stack, no JSON, no routing: every frame
//! comes back to its sender), and the relay with 10 clients (latency without load).
//!
//! Full run: 500 clients, 10 s at 10 and at 50 requests/s per client (~1.5 min). Short run
//! (`quick` / `RMW_BENCH_SHORT=1`): 100 clients, 3 s at 20/s. To explore:
//! `RMW_SIGLOAD_CLIENTS`, `RMW_SIGLOAD_SECONDS`, `RMW_SIGLOAD_RATES=10,50`. Each run also prints
//! a per-second profile (messages sent in that second that arrived: p50/max latency).
//!
//! Loopback only: every socket is on 127.0.0.1.

use futures_util::{SinkExt, StreamExt};
use remotemedia_webrtc::{ServerConfig, SignalingServer};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// How long after the end of sending we wait for messages still in flight; later ones count
/// as lost.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// xorshift64*: enough randomness for picking targets, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A browser-like offer (audio + video + data, as Chrome writes them), ~4 KB; the bench's
/// timestamp goes in its own attribute line.
fn sdp_template(i: usize) -> String {
    let mut s = format!(
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream{i}\r\n",
        4_611_686_018_427_387_903u64 - i as u64
    );
    let ice = format!("a=ice-ufrag:uf{i:06}\r\na=ice-pwd:pwdpwdpwdpwdpwdpwd{i:06}\r\na=ice-options:trickle\r\na=fingerprint:sha-256 4B:9F:1C:22:7A:05:E1:BB:0C:9D:12:44:6E:71:A8:3F:55:90:D2:0E:7C:31:AA:68:19:E4:B0:07:C5:5D:2F:83\r\n");
    s += "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n";
    s += &ice;
    s += "a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
    s += &format!("a=sendrecv\r\na=msid:stream{i} audio{i}\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\na=ssrc:{0} cname:cname{i}\r\na=ssrc:{0} msid:stream{i} audio{i}\r\n", 1_000_000 + i);
    s += "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 45 46 102 103 104 105\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n";
    s += &ice;
    s += "a=setup:actpass\r\na=mid:1\r\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=extmap:13 urn:3gpp:video-orientation\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
    s += &format!("a=sendrecv\r\na=msid:stream{i} video{i}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n");
    for (pt, codec, rtx) in [(96, "VP8/90000", 97), (98, "VP9/90000", 99), (100, "VP9/90000", 101), (45, "AV1/90000", 46), (102, "H264/90000", 103), (104, "H264/90000", 105)] {
        s += &format!("a=rtpmap:{pt} {codec}\r\na=rtcp-fb:{pt} goog-remb\r\na=rtcp-fb:{pt} transport-cc\r\na=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n");
        if codec.starts_with("H264") {
            s += &format!("a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n");
        } else if codec.starts_with("VP9") {
            s += &format!("a=fmtp:{pt} profile-id={}\r\n", if pt == 98 { 0 } else { 2 });
        }
        s += &format!("a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n");
    }
    s += &format!("a=ssrc-group:FID {0} {1}\r\na=ssrc:{0} cname:cname{i}\r\na=ssrc:{0} msid:stream{i} video{i}\r\na=ssrc:{1} cname:cname{i}\r\na=ssrc:{1} msid:stream{i} video{i}\r\n", 2_000_000 + i, 3_000_000 + i);
    s += "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n";
    s += &ice;
    s += "a=setup:actpass\r\na=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";
    s
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Relay,
    Echo,
}

struct Phase {
    label: String,
    kind: Kind,
    url: String,
    clients: usize,
    rate: f64,
    start: watch::Receiver<Option<(tokio::time::Instant, tokio::time::Instant)>>,
    /// Set by the coordinator once every sent message was received or refused (or the drain
    /// limit passed): the clients close.
    stop: watch::Receiver<bool>,
    /// Requests sent, and requests done (received by their target, or refused), over all clients.
    sent: AtomicU64,
    done: AtomicU64,
}

#[derive(Default)]
struct ClientStats {
    sent: [u64; 2],
    received: [u64; 2],
    latency_us: [Vec<u32>; 2],
    /// (send time in ms since the epoch, latency in µs) of every relayed message.
    timeline: Vec<(u32, u32)>,
    ok: u64,
    errors: HashMap<String, u64>,
    ws_errors: u64,
    late_joins: u64,
}

enum Note {
    Announced(u64),
    AllKnown(u64),
    Failed(String),
}

fn normalize_error(msg: &str) -> String {
    // Peer ids out, so refusals of one kind count together.
    msg.split_whitespace()
        .map(|w| if w.trim_end_matches(':').starts_with('c') && w.trim_end_matches(':')[1..].chars().all(|c| c.is_ascii_digit()) && w.len() > 1 { "<id>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn timestamp_of(method: &str, params: &Value) -> Option<u64> {
    match method {
        "offer" => {
            let sdp = params.get("sdp")?.as_str()?;
            let at = sdp.find("a=x-bench-ts:")? + "a=x-bench-ts:".len();
            sdp[at..].split("\r\n").next()?.parse().ok()
        }
        "ice_candidate" => params.get("candidate")?.as_str()?.rsplit(' ').next()?.parse().ok(),
        _ => None,
    }
}

async fn client(i: usize, phase: std::sync::Arc<Phase>, notes: mpsc::UnboundedSender<Note>) -> ClientStats {
    let mut st = ClientStats::default();
    let ws = match tokio_tungstenite::connect_async(phase.url.as_str()).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            let _ = notes.send(Note::Failed(format!("connect: {e}")));
            st.ws_errors += 1;
            return st;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let me = format!("c{i}");
    let announce = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"announce","params":{{"peer_id":"{me}","capabilities":{{"audio":true,"video":true,"data":true}}}}}}"#);
    if sink.send(Message::text(announce)).await.is_err() {
        st.ws_errors += 1;
        let _ = notes.send(Note::Failed("send announce".into()));
        return st;
    }
    let n = phase.clients;
    let mut known: Option<usize> = None;
    let mut start = phase.start.clone();
    // Announce, then count peers until the load starts.
    let (t_start, t_end) = loop {
        tokio::select! {
            changed = start.changed() => {
                if changed.is_err() { return st; }
                if let Some(w) = *start.borrow() { break w; }
            }
            m = stream.next() => {
                let Some(Ok(Message::Text(t))) = m else {
                    if matches!(m, None | Some(Err(_))) { st.ws_errors += 1; let _ = notes.send(Note::Failed("closed before the load".into())); return st; }
                    continue;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                let before = known;
                if phase.kind == Kind::Echo {
                    if v["method"] == "announce" { known = Some(n - 1); }
                } else if v["id"] == 1 {
                    match v["result"]["other_peers"].as_array() {
                        Some(others) => known = Some(others.len() + known.unwrap_or(0)),
                        None => { let _ = notes.send(Note::Failed(format!("announce refused: {t}"))); return st; }
                    }
                } else if v["method"] == "peer_joined" {
                    // peer_joined can only come after our own announce succeeded.
                    known = Some(known.unwrap_or(0) + 1);
                }
                if before.is_none() && known.is_some() { let _ = notes.send(Note::Announced(now_us())); }
                if known == Some(n - 1) && before != known { let _ = notes.send(Note::AllKnown(now_us())); }
            }
        }
    };
    drop(notes);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED69));
    let period = Duration::from_secs_f64(1.0 / phase.rate);
    let offset = period.mul_f64(rng.below(1000) as f64 / 1000.0);
    let mut tick = tokio::time::interval_at(t_start + offset, period);
    let sdp = sdp_template(i);
    let cut = sdp.find("m=audio").unwrap();
    let (head, tail) = sdp.split_at(cut);
    let mut id = 1u64;
    let mut sending = true;
    let mut stop = phase.stop.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick(), if sending => {
                if tokio::time::Instant::now() >= t_end { sending = false; continue; }
                let to = loop { let t = rng.below(n as u64) as usize; if t != i || n == 1 { break t; } };
                id += 1;
                let kind = usize::from(id % 5 != 0);
                let ts = now_us();
                let params = if kind == 0 {
                    let sdp = format!("{head}a=x-bench-ts:{ts}\r\n{tail}");
                    serde_json::json!({"to_peer_id": format!("c{to}"), "sdp": sdp, "type": "offer"})
                } else {
                    let cand = format!("candidate:{} 1 udp 2122260223 127.0.0.1 {} typ host generation 0 ufrag uf{i:06} network-id 1 {ts}", 842_163_049 + id, 40_000 + (id % 20_000));
                    serde_json::json!({"to_peer_id": format!("c{to}"), "candidate": cand, "sdp_mid": "0", "sdp_mline_index": 0})
                };
                let method = if kind == 0 { "offer" } else { "ice_candidate" };
                let msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
                if sink.send(Message::text(msg)).await.is_err() { st.ws_errors += 1; break; }
                st.sent[kind] += 1;
                phase.sent.fetch_add(1, Ordering::Relaxed);
            }
            m = stream.next() => {
                let arrived = now_us();
                let t = match m {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => { st.ws_errors += 1; break; }
                };
                let v: Value = match serde_json::from_str(t.as_str()) { Ok(v) => v, Err(_) => { *st.errors.entry("unparsable frame".into()).or_default() += 1; continue; } };
                if let Some(method) = v["method"].as_str() {
                    if method == "peer_joined" || method == "peer_left" { st.late_joins += 1; continue; }
                    match timestamp_of(method, &v["params"]) {
                        Some(ts) => {
                            let kind = usize::from(method != "offer");
                            st.received[kind] += 1;
                            phase.done.fetch_add(1, Ordering::Relaxed);
                            let lat = arrived.saturating_sub(ts).min(u32::MAX as u64) as u32;
                            st.latency_us[kind].push(lat);
                            st.timeline.push(((ts / 1000) as u32, lat));
                        }
                        None => *st.errors.entry(format!("unexpected {method}")).or_default() += 1,
                    }
                } else if v.get("result").is_some() {
                    st.ok += 1;
                } else if let Some(e) = v.get("error") {
                    phase.done.fetch_add(1, Ordering::Relaxed);
                    *st.errors.entry(normalize_error(e["message"].as_str().unwrap_or("?"))).or_default() += 1;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    st
}

/// CPU seconds and run-queue wait seconds of this process's threads whose name starts with
/// `prefix` (schedstat, ns). The wait shows how much the rest of the machine starved them.
fn thread_cpu(prefix: &str) -> (f64, f64) {
    let (mut run, mut wait) = (0.0, 0.0);
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else { continue };
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(sched) = std::fs::read_to_string(e.path().join("schedstat")) else { continue };
        let mut f = sched.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0) / 1e9);
        run += f.next().unwrap_or(0.0);
        wait += f.next().unwrap_or(0.0);
    }
    (run, wait)
}

fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e3
}

struct Outcome {
    label: String,
    clients: usize,
    rate: f64,
    seconds: f64,
    announce_all_ms: f64,
    announce_p50_ms: f64,
    known_all_ms: f64,
    /// Server threads' CPU from the first connect until every client knew all others.
    announce_cpu_ms: f64,
    sent: u64,
    sent_offers: u64,
    relayed: u64,
    lat: [f64; 3],
    lat_offer: [f64; 2],
    lat_cand: [f64; 2],
    refused: u64,
    errors: HashMap<String, u64>,
    lost: i64,
    ws_errors: u64,
    failed: Vec<String>,
    /// From the end of sending until the last message was received (or the limit).
    drain_ms: f64,
    server_cpu: f64,
    server_wait: f64,
    client_cpu: f64,
    client_wait: f64,
    /// Per second of the run: (messages sent in it, p50, max latency in ms).
    profile: Vec<(usize, f64, f64)>,
}

/// A bare tokio-tungstenite echo server on one worker thread: the baseline.
fn echo_server() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("echo-server").enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(s).await else { return };
                let (mut sink, mut src) = ws.split();
                while let Some(Ok(m)) = src.next().await {
                    if m.is_text() {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    } else if m.is_close() {
                        break;
                    }
                }
            });
        }
    });
    (rt, url)
}

fn run(rt: &tokio::runtime::Runtime, label: &str, kind: Kind, clients: usize, rate: f64, seconds: f64) -> Outcome {
    let (server, echo, url) = match kind {
        Kind::Relay => {
            let s = SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), ..Default::default() }).unwrap();
            let url = s.url();
            (Some(s), None, url)
        }
        Kind::Echo => {
            let (rt, url) = echo_server();
            (None, Some(rt), url)
        }
    };
    let server_threads = if kind == Kind::Relay { "rmw-signaling" } else { "echo-server" };
    let (start_tx, start_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let phase = std::sync::Arc::new(Phase {
        label: label.into(),
        kind,
        url,
        clients,
        rate,
        start: start_rx,
        stop: stop_rx,
        sent: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    let out = rt.block_on(async {
        let (ntx, mut nrx) = mpsc::unbounded_channel();
        let announce_cpu0 = thread_cpu(server_threads).0;
        let t0 = now_us();
        let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(client(i, phase.clone(), ntx.clone()))).collect();
        drop(ntx);
        let (mut announced, mut known, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while known.len() + failed.len() < clients {
            match tokio::time::timeout_at(deadline, nrx.recv()).await {
                Ok(Some(Note::Announced(t))) => announced.push(t - t0),
                Ok(Some(Note::AllKnown(t))) => known.push(t - t0),
                Ok(Some(Note::Failed(e))) => failed.push(e),
                Ok(None) => break,
                Err(_) => {
                    failed.push(format!("{} of {clients} clients did not learn of all others within 60 s", clients - known.len()));
                    break;
                }
            }
        }
        let announce_cpu = thread_cpu(server_threads).0 - announce_cpu0;
        let start = tokio::time::Instant::now() + Duration::from_millis(300);
        let start_us = now_us() + 300_000;
        let end = start + Duration::from_secs_f64(seconds);
        start_tx.send(Some((start, end))).unwrap();
        tokio::time::sleep_until(start).await;
        let (s0, c0) = (thread_cpu(server_threads), thread_cpu("load-clients"));
        tokio::time::sleep_until(end).await;
        let (s1, c1) = (thread_cpu(server_threads), thread_cpu("load-clients"));
        // Drain: until every sent message was received or refused, at most DRAIN_LIMIT.
        let drain_deadline = end + DRAIN_LIMIT;
        while phase.done.load(Ordering::Relaxed) < phase.sent.load(Ordering::Relaxed) && tokio::time::Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain_ms = (tokio::time::Instant::now() - end).as_secs_f64() * 1e3;
        stop_tx.send(true).unwrap();
        let mut all = ClientStats::default();
        for t in tasks {
            let st = t.await.unwrap();
            for k in 0..2 {
                all.sent[k] += st.sent[k];
                all.received[k] += st.received[k];
                all.latency_us[k].extend_from_slice(&st.latency_us[k]);
            }
            all.timeline.extend_from_slice(&st.timeline);
            all.ok += st.ok;
            all.ws_errors += st.ws_errors;
            all.late_joins += st.late_joins;
            for (k, v) in st.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
        let sent = all.sent[0] + all.sent[1];
        let relayed = all.received[0] + all.received[1];
        let refused: u64 = all.errors.values().sum();
        let mut both: Vec<u32> = all.latency_us.iter().flatten().copied().collect();
        announced.sort_unstable();
        known.sort_unstable();
        let ms = |v: &[u64], p: f64| if v.is_empty() { f64::NAN } else { v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e3 };
        let [offers, cands] = &mut all.latency_us;
        Outcome {
            label: phase.label.clone(),
            clients,
            rate,
            seconds,
            announce_all_ms: ms(&announced, 1.0),
            announce_p50_ms: ms(&announced, 0.5),
            known_all_ms: ms(&known, 1.0),
            announce_cpu_ms: announce_cpu * 1e3,
            sent,
            sent_offers: all.sent[0],
            relayed,
            lat: [percentile(&mut both, 0.5), percentile(&mut both, 0.99), percentile(&mut both, 1.0)],
            lat_offer: [percentile(offers, 0.5), percentile(offers, 0.99)],
            lat_cand: [percentile(cands, 0.5), percentile(cands, 0.99)],
            refused,
            errors: all.errors,
            lost: sent as i64 - refused as i64 - relayed as i64,
            ws_errors: all.ws_errors,
            failed,
            drain_ms,
            server_cpu: (s1.0 - s0.0) / seconds,
            server_wait: (s1.1 - s0.1) / seconds,
            client_cpu: (c1.0 - c0.0) / seconds,
            client_wait: (c1.1 - c0.1) / seconds,
            profile: {
                let first = (start_us / 1000) as u32;
                let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); seconds.ceil() as usize];
                for &(at, lat) in &all.timeline {
                    if let Some(b) = buckets.get_mut((at.saturating_sub(first) / 1000) as usize) {
                        b.push(lat);
                    }
                }
                buckets.iter_mut().map(|b| (b.len(), percentile(b, 0.5), percentile(b, 1.0))).collect()
            },
        }
    });
    drop(server);
    if let Some(e) = echo {
        e.shutdown_timeout(Duration::from_secs(1));
    }
    let o = out;
    println!(
        "  {:<34} {:>4} clients x {:>4.0}/s, {:.0} s: announce all {:.0} ms (p50 {:.0}), all known {:.0} ms, server cpu {:.0} ms; sent {} ({} offers), relayed {} ({:.0}/s); latency p50 {:.2} p99 {:.2} max {:.2} ms; refused {}, lost {}, ws errors {}, drained {:.0} ms after the end; server {:.0}% cpu (+{:.0}% waiting for one), clients {:.0}% (+{:.0}%)",
        o.label, o.clients, o.rate, o.seconds, o.announce_all_ms, o.announce_p50_ms, o.known_all_ms, o.announce_cpu_ms, o.sent, o.sent_offers, o.relayed, o.relayed as f64 / (o.seconds + o.drain_ms / 1e3), o.lat[0], o.lat[1], o.lat[2], o.refused, o.lost, o.ws_errors, o.drain_ms, o.server_cpu * 100.0, o.server_wait * 100.0, o.client_cpu * 100.0, o.client_wait * 100.0
    );
    let prof: Vec<String> = o.profile.iter().map(|(n, p50, max)| format!("{n}:{p50:.1}/{max:.0}")).collect();
    println!("    per second of sending (messages: p50/max latency ms): {}", prof.join(" "));
    for (e, n) in &o.errors {
        println!("    error x{n}: {e}");
    }
    for f in o.failed.iter().take(5) {
        println!("    failure: {f}");
    }
    if o.failed.len() > 5 {
        println!("    ... {} failures in all", o.failed.len());
    }
    o
}

fn raise_nofile() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer; raising the soft limit to the hard one is always allowed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    r.rlim_cur as u64
}

fn main() {
    let short = std::env::args().any(|a| a == "quick") || std::env::var("RMW_BENCH_SHORT").is_ok_and(|v| v == "1");
    EPOCH.get_or_init(Instant::now);
    let nofile = raise_nofile();
    let (mut n, mut secs, mut rates): (usize, f64, Vec<f64>) = if short { (100, 3.0, vec![20.0]) } else { (500, 10.0, vec![10.0, 50.0]) };
    // Overrides, for exploring: RMW_SIGLOAD_CLIENTS=500 RMW_SIGLOAD_SECONDS=10 RMW_SIGLOAD_RATES=10,50
    if let Some(v) = std::env::var("RMW_SIGLOAD_CLIENTS").ok().and_then(|v| v.parse().ok()) {
        n = v;
    }
    if let Some(v) = std::env::var("RMW_SIGLOAD_SECONDS").ok().and_then(|v| v.parse().ok()) {
        secs = v;
    }
    if let Ok(v) = std::env::var("RMW_SIGLOAD_RATES") {
        rates = v.split(',').filter_map(|r| r.trim().parse().ok()).collect();
    }
    assert!(nofile as usize > 2 * n + 100, "RLIMIT_NOFILE {nofile} is too low for {n} clients");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("load-clients").enable_all().build().unwrap();
    let sdp_len = sdp_template(0).len() + "a=x-bench-ts:0000000000\r\n".len();
    println!(
        "signaling load ({}), {} cores; offers carry a {sdp_len}-byte SDP, one offer per 4 ice_candidates; server and clients on one worker thread each",
        if short { "short" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("load average at start: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    let mut rows = Vec::new();
    for &rate in &rates {
        rows.push(run(&rt, "relay, low load (baseline)", Kind::Relay, 10, rate, secs));
        rows.push(run(&rt, "echo server (baseline)", Kind::Echo, n, rate, secs));
        rows.push(run(&rt, "relay", Kind::Relay, n, rate, secs));
    }
    rt.shutdown_timeout(Duration::from_secs(2));

    println!();
    println!("| run | clients | offered msg/s | announce all / p50 | all know all (server CPU) | relayed msg/s | latency p50 | p99 | max | offer p50 / p99 | candidate p50 / p99 | refused | lost | drained after | server CPU (+ run-queue wait) | server CPU per msg |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &rows {
        let offered = o.clients as f64 * o.rate;
        let (ann, known) = if o.label.starts_with("echo") {
            (format!("{:.0} / {:.0} ms (connect + echo)", o.announce_all_ms, o.announce_p50_ms), "—".to_string())
        } else {
            (format!("{:.0} / {:.0} ms", o.announce_all_ms, o.announce_p50_ms), format!("{:.0} ms ({:.0} ms)", o.known_all_ms, o.announce_cpu_ms))
        };
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {} | {} | {:.0} ms | {:.0}% (+{:.0}%) | {:.1} µs |",
            o.label,
            o.clients,
            offered,
            ann,
            known,
            o.relayed as f64 / (o.seconds + o.drain_ms / 1e3),
            o.lat[0],
            o.lat[1],
            o.lat[2],
            o.lat_offer[0],
            o.lat_offer[1],
            o.lat_cand[0],
            o.lat_cand[1],
            o.refused,
            o.lost + o.ws_errors as i64,
            o.drain_ms,
            o.server_cpu * 100.0,
            o.server_wait * 100.0,
            o.server_cpu * 1e6 / (o.relayed as f64 / (o.seconds + o.drain_ms / 1e3))
        );
    }
    println!();
    for chunk in rows.chunks(3) {
        let (low, echo, relay) = (&chunk[0], &chunk[1], &chunk[2]);
        println!(
            "- at {:.0} msg/s per client: relay/echo throughput {:.2}, latency p50 {:.2}x / p99 {:.2}x the echo server's, p50 {:.2}x / p99 {:.2}x the relay's at 10 clients; server CPU per relayed message {:.2}x the echo server's",
            relay.rate,
            (relay.relayed as f64 / (relay.seconds + relay.drain_ms / 1e3)) / (echo.relayed as f64 / (echo.seconds + echo.drain_ms / 1e3)),
            relay.lat[0] / echo.lat[0],
            relay.lat[1] / echo.lat[1],
            relay.lat[0] / low.lat[0],
            relay.lat[1] / low.lat[1],
            (relay.server_cpu / relay.relayed.max(1) as f64) / (echo.server_cpu / echo.relayed.max(1) as f64)
        );
    }
    println!("load average at end: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
}
