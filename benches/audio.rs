//! Audio benchmarks (not tests; never asserted): `cargo bench --bench audio [-- quick]`.
//!
//! 1. One-way latency: from the `send_audio` call that carries a click to the decoded frame
//!    holding it being handed to the receiving application by `poll_audio`, two transports in
//!    one process over loopback, default jitter buffer. Baseline in the same run: bare
//!    libopus encode + decode of one frame (the codec's share).
//! 2. Caller-thread cost of `rmw_audio_track_send_f32` for one 20 ms frame (48 kHz mono), through
//!    the C API. Baseline: allocating and copying the same 960 floats.
//! 3. Total CPU of one sent + received stream (both transports, 48 kHz mono, 20 ms frames)
//!    against bare libopus encode + decode of the same audio, measured in the same run.
//! 4. Broadcast: one transport sends one Opus stream to N peers (target all); the peers live in
//!    a child process; we report the sending process's CPU use.
//!
//! Loopback only: every transport uses `ice_policy: loopback`; the server binds 127.0.0.1.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};
use remotemedia_webrtc::ffi::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::{AudioSendConfig, Pcm};
use remotemedia_webrtc::{Config, Event, IcePolicy, ServerConfig, SignalingServer, Transport};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FRAME: usize = 960;

fn config(url: &str, id: &str) -> Config {
    Config { signaling_url: url.into(), peer_id: id.into(), ice_policy: IcePolicy::Loopback, ..Default::default() }
}

fn wait_for(t: &Transport, mut pred: impl FnMut(&Event) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(e) = t.poll_event(Some(Duration::from_millis(50))).unwrap() {
            if pred(&e) {
                return;
            }
        }
    }
    panic!("{}: event not seen", t.local_peer_id());
}

fn transport(url: &str, id: &str, tweak: impl FnOnce(&mut Config)) -> Transport {
    let mut c = config(url, id);
    tweak(&mut c);
    let t = Transport::new(c).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

fn connect(a: &Transport, b: &Transport) {
    a.connect_peer(b.local_peer_id()).unwrap();
    let peer = b.local_peer_id().to_string();
    wait_for(a, |e| matches!(e, Event::DataChannelOpen { peer_id, .. } if *peer_id == peer));
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn sine(k: usize, amplitude: f32) -> Vec<f32> {
    (0..FRAME).map(|i| amplitude * (2.0 * std::f32::consts::PI * 440.0 * (k * FRAME + i) as f32 / 48_000.0).sin()).collect()
}

/// Sends one 20 ms frame every 20 ms for `frames` frames, calling `each(k)` for its PCM.
fn paced(frames: usize, mut each: impl FnMut(usize)) {
    let start = Instant::now();
    for k in 0..frames {
        each(k);
        if let Some(wait) = (start + Duration::from_millis(20 * (k as u64 + 1))).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn bare_codec() -> (Encoder, Decoder) {
    let mut e = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).unwrap();
    e.set_bitrate(Bitrate::BitsPerSecond(32_000)).unwrap();
    e.set_complexity(9).unwrap();
    e.set_inband_fec(true).unwrap();
    e.set_packet_loss_perc(10).unwrap();
    (e, Decoder::new(SampleRate::Hz48000, Channels::Stereo).unwrap())
}

fn bench_latency(url: &str, seconds: usize) {
    let a = transport(url, "lat-a", |_| {});
    let b = Arc::new(transport(url, "lat-b", |_| {}));
    connect(&a, &b);
    let track = a.add_audio_track(TrackTarget::Peer("lat-b".into()), AudioSendConfig::default()).unwrap();
    // A click (a 2.5 ms burst at 0.9) starts every 10th frame; silence otherwise.
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let got: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rx = {
        let (b, got, stop) = (b.clone(), got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut quiet = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(f) = b.poll_audio(Some(Duration::from_millis(50))).unwrap() else { continue };
                let now = Instant::now();
                let peak = f.samples.to_f32().iter().fold(0.0f32, |m, v| m.max(v.abs()));
                if peak > 0.3 && quiet >= 3 {
                    got.lock().unwrap().push(now);
                }
                quiet = if peak > 0.05 { 0 } else { quiet + 1 };
            }
        })
    };
    paced(seconds * 50, |k| {
        let mut pcm = vec![0.0f32; FRAME];
        if k % 10 == 5 {
            pcm[..120].copy_from_slice(&sine(0, 0.9)[..120]);
            sent.lock().unwrap().push(Instant::now());
        }
        a.send_audio(track, Pcm::F32(&pcm)).unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rx.join().unwrap();
    let (sent, got) = (sent.lock().unwrap().clone(), got.lock().unwrap().clone());
    let mut ms: Vec<f64> = sent.iter().zip(&got).map(|(s, g)| g.duration_since(*s).as_secs_f64() * 1e3).collect();
    // Baseline: bare libopus, one frame encoded and decoded.
    let (enc, mut dec) = bare_codec();
    let (mut packet, mut out) = (vec![0u8; 4000], vec![0f32; FRAME * 2]);
    let mut codec_ms: Vec<f64> = (0..200)
        .map(|k| {
            let t = Instant::now();
            let n = enc.encode_float(&sine(k, 0.3), &mut packet).unwrap();
            dec.decode_float(Some(&packet[..n]), &mut out[..], false).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        "latency send_audio -> poll_audio: {} clicks sent, {} detected; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (bare libopus encode+decode p50 {:.3} ms)",
        sent.len(),
        got.len(),
        percentile(&mut ms, 0.5),
        percentile(&mut ms, 0.99),
        percentile(&mut ms, 1.0),
        percentile(&mut codec_ms, 0.5)
    );
}

fn bench_send_cost(url: &str, batches: usize) {
    let cfg = CString::new(format!(r#"{{"signaling_url":"{url}","peer_id":"cost","ice_policy":"loopback"}}"#)).unwrap();
    let mut t = 0;
    assert_eq!(unsafe { rmw_transport_new(cfg.as_ptr(), &mut t) }, rmw_status_t::RMW_OK);
    let mut c = rmw_audio_track_config_default();
    c.max_queue_ms = 10_000;
    let mut track = 0;
    assert_eq!(unsafe { rmw_audio_track_new(t, &c, RMW_TARGET_NONE, std::ptr::null(), &mut track) }, rmw_status_t::RMW_OK);
    let pcm = sine(0, 0.3);
    let (mut ours, mut copy) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        for _ in 0..100 {
            let s = Instant::now();
            let st = unsafe { rmw_audio_track_send_f32(track, pcm.as_ptr(), FRAME) };
            ours.push(s.elapsed().as_secs_f64() * 1e9);
            assert_eq!(st, rmw_status_t::RMW_OK);
            let s = Instant::now();
            let v = std::hint::black_box(pcm.to_vec());
            copy.push(s.elapsed().as_secs_f64() * 1e9);
            drop(v);
        }
        // Let the encoder drain 2 s of audio (well under 100 ms of work).
        std::thread::sleep(Duration::from_millis(150));
    }
    rmw_transport_free(t);
    let (p50, p99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let base = percentile(&mut copy, 0.5);
    println!("send_audio caller cost (20 ms, 48 kHz mono f32, C API): {} calls, p50 {:.0} ns, p99 {:.0} ns; copy baseline p50 {:.0} ns (ratio {:.1})", ours.len(), p50, p99, base, p50 / base);
}

fn bench_cpu(url: &str, seconds: usize) {
    let a = transport(url, "cpu-a", |_| {});
    let b = Arc::new(transport(url, "cpu-b", |c| c.audio_output_channels = 1));
    connect(&a, &b);
    // Idle CPU of the two connected transports (keepalives, timers), to subtract.
    let (c0, w0) = (cpu_seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds as u64 / 2));
    let idle_rate = (cpu_seconds() - c0) / w0.elapsed().as_secs_f64();
    let track = a.add_audio_track(TrackTarget::Peer("cpu-b".into()), AudioSendConfig::default()).unwrap();
    let frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let (b, frames, stop) = (b.clone(), frames.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if b.poll_audio(Some(Duration::from_millis(50))).unwrap().is_some() {
                    frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let (c1, w1) = (cpu_seconds(), Instant::now());
    paced(seconds * 50, |k| a.send_audio(track, Pcm::F32(&sine(k, 0.3))).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let stream_cpu = cpu_seconds() - c1 - idle_rate * w1.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drain.join().unwrap();
    // Bare libopus: the same frames encoded and decoded (mono out, as the receiver was set).
    let (enc, _) = bare_codec();
    let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
    let (mut packet, mut out) = (vec![0u8; 4000], vec![0f32; FRAME]);
    let pcm: Vec<Vec<f32>> = (0..seconds * 50).map(|k| sine(k, 0.3)).collect();
    let c2 = cpu_seconds();
    for f in &pcm {
        let n = enc.encode_float(f, &mut packet).unwrap();
        dec.decode_float(Some(&packet[..n]), &mut out[..], false).unwrap();
    }
    let bare = cpu_seconds() - c2;
    println!(
        "cpu per stream ({seconds} s, {} frames received): {:.1} ms CPU per second of audio vs bare libopus {:.1} ms (ratio {:.2}); idle transports {:.1} ms/s subtracted",
        frames.load(std::sync::atomic::Ordering::Relaxed),
        stream_cpu * 1e3 / seconds as f64,
        bare * 1e3 / seconds as f64,
        stream_cpu / bare,
        idle_rate * 1e3
    );
}

/// Child-process role: `n` receiving transports that stay until stdin closes.
fn receivers(url: &str, n: usize) {
    let ts: Vec<Transport> = (0..n)
        .map(|i| transport(url, &format!("rx-{i}"), |c| {
            c.worker_threads = 1;
            c.audio_output_channels = 1;
            c.audio_queue_capacity = 4;
        }))
        .collect();
    println!("ready");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().lines().count();
    drop(ts);
}

fn bench_broadcast(url: &str, n: usize, seconds: usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("RMW_BENCH_RECEIVERS", format!("{url} {n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let a = transport(url, "caster", |c| c.max_peers = n as u32 + 1);
    for i in 0..n {
        a.connect_peer(&format!("rx-{i}")).unwrap();
    }
    let mut open = 0;
    while open < n {
        wait_for(&a, |e| matches!(e, Event::DataChannelOpen { .. }));
        open += 1;
    }
    let track = a.add_audio_track(TrackTarget::All, AudioSendConfig::default()).unwrap();
    let (c0, w0) = (cpu_seconds(), Instant::now());
    paced(seconds * 50, |k| a.send_audio(track, Pcm::F32(&sine(k, 0.3))).unwrap());
    let cpu = (cpu_seconds() - c0) / w0.elapsed().as_secs_f64();
    let st = a.audio_track_stats(track).unwrap();
    println!(
        "broadcast to {n} peers: sending process {:.1}% of one core ({:.1}% of the 2-core machine); {} frames encoded, {} packets sent",
        cpu * 100.0,
        cpu * 50.0,
        st.frames_encoded,
        st.packets_sent
    );
    drop(a);
    drop(child.stdin.take());
    let _ = child.wait();
}

fn main() {
    if let Ok(spec) = std::env::var("RMW_BENCH_RECEIVERS") {
        let (url, n) = spec.split_once(' ').unwrap();
        return receivers(url, n.parse().unwrap());
    }
    let quick = std::env::args().any(|a| a == "quick");
    let server = SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), ..Default::default() }).unwrap();
    let url = server.url();
    println!("audio benchmarks ({}), {}", if quick { "quick" } else { "full" }, std::env::consts::ARCH);
    let (lat_s, batches, cpu_s, cast_s, sizes): (usize, usize, usize, usize, &[usize]) =
        if quick { (4, 5, 4, 3, &[8, 32]) } else { (30, 50, 20, 10, &[8, 32, 64]) };
    bench_latency(&url, lat_s);
    bench_send_cost(&url, batches);
    bench_cpu(&url, cpu_s);
    for &n in sizes {
        bench_broadcast(&url, n, cast_s);
    }
}
