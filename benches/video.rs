//! Video benchmarks (not tests; never asserted): `cargo bench --bench video [-- quick]`.
//!
//! 1. One-way latency at 1280x720, 30 fps, VP8 and VP9: from the `send_video` call of a frame
//!    to that frame (identified by the number it carries) handed to the receiving application
//!    by `poll_video`. Two transports in one process over loopback.
//! 2. Caller-thread cost of `rmw_video_track_send` (C API) for a 720p I420 frame. Baseline:
//!    copying the same 1.38 MB.
//! 3. Total CPU of one 720p30 stream (both transports) against bare libvpx encoding and
//!    decoding the same frames with the same settings, in the same run.
//!
//! Loopback only: `ice_policy: loopback`; the server binds 127.0.0.1.

#[path = "../tests/common/video.rs"]
#[allow(dead_code)]
mod video;

use remotemedia_webrtc::ffi::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::video::vpx::{Decoder, Encoder, EncoderConfig};
use remotemedia_webrtc::media::video::{PixelFormat, RawFrame, VideoCodec, VideoSendConfig};
use remotemedia_webrtc::{Config, Event, IcePolicy, ServerConfig, SignalingServer, Transport};
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 720;

fn transport(url: &str, id: &str, codec: VideoCodec) -> Transport {
    let c = Config { signaling_url: url.into(), peer_id: id.into(), ice_policy: IcePolicy::Loopback, video_codec: codec.name().into(), ..Default::default() };
    let t = Transport::new(c).unwrap();
    wait(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

fn wait(t: &Transport, mut pred: impl FnMut(&Event) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(e) = t.poll_event(Some(Duration::from_millis(50))).unwrap() {
            if pred(&e) {
                return;
            }
        }
    }
    panic!("event not seen");
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn raw(f: &remotemedia_webrtc::media::video::I420Buf) -> RawFrame<'_> {
    let i = f.as_i420();
    RawFrame { format: PixelFormat::I420, width: f.width, height: f.height, planes: [i.y, i.u, i.v], strides: [i.stride_y, i.stride_u, i.stride_v] }
}

/// Streams `frames` pattern frames at 30 fps from a to b; returns (latencies ms, frames shown,
/// CPU seconds of the process while streaming, wall seconds).
fn stream(url: &str, codec: VideoCodec, frames: u32, tag: &str) -> (Vec<f64>, usize, f64, f64) {
    let a = transport(url, &format!("{tag}-a"), codec);
    let b = Arc::new(transport(url, &format!("{tag}-b"), codec));
    a.connect_peer(b.local_peer_id()).unwrap();
    let peer = b.local_peer_id().to_string();
    wait(&a, |e| matches!(e, Event::DataChannelOpen { peer_id, .. } if *peer_id == peer));
    let track = a.add_video_track(TrackTarget::Peer(peer), VideoSendConfig::default()).unwrap();
    // Frames are made before the clock starts: generating the pattern is not the library's cost.
    let pattern: Vec<_> = (0..frames).map(|n| video::pattern(W, H, n)).collect();
    let sent: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let got: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let rx = {
        let (b, got, stop) = (b.clone(), got.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(f) = b.poll_video(Some(Duration::from_millis(50))).unwrap() {
                    let now = Instant::now();
                    if let Some(n) = video::frame_number(&f) {
                        got.lock().unwrap().push((n, now));
                    }
                }
            }
        })
    };
    let (c0, w0) = (cpu_seconds(), Instant::now());
    for (n, f) in pattern.iter().enumerate() {
        sent.lock().unwrap().insert(n as u32, Instant::now());
        a.send_video(track, &raw(f)).unwrap();
        if let Some(d) = (w0 + Duration::from_secs_f64((n + 1) as f64 / 30.0)).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let (cpu, wall) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    let sent = sent.lock().unwrap();
    let got = got.lock().unwrap();
    let lat: Vec<f64> = got.iter().filter_map(|(n, t)| sent.get(n).map(|s| t.duration_since(*s).as_secs_f64() * 1e3)).collect();
    (lat, got.len(), cpu, wall)
}

fn bench_latency_and_cpu(url: &str, codec: VideoCodec, frames: u32) {
    let (mut lat, shown, cpu, wall) = stream(url, codec, frames, codec.name());
    // Bare libvpx: the same frames, same settings (our defaults), encoded and decoded.
    let pattern: Vec<_> = (0..frames).map(|n| video::pattern(W, H, n)).collect();
    let cfg = EncoderConfig { width: W, height: H, bitrate_kbps: VideoSendConfig::default().bitrate_kbps, ..EncoderConfig::new(codec) };
    let mut enc = Encoder::new(&cfg).unwrap();
    let mut dec = Decoder::new(codec).unwrap();
    let c0 = cpu_seconds();
    for (n, f) in pattern.iter().enumerate() {
        for ef in enc.encode(&f.as_i420(), n as i64 * 3000, n == 0).unwrap() {
            dec.decode(&ef.data).unwrap();
        }
    }
    let bare = cpu_seconds() - c0;
    println!(
        "{} 720p30: {frames} frames sent, {shown} shown; latency send_video -> poll_video p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         CPU {:.1}% of one core for the stream (both ends, {wall:.1} s) vs bare libvpx encode+decode {:.1}%: ratio {:.2}",
        codec.name(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        percentile(&mut lat, 1.0),
        cpu / wall * 100.0,
        bare / wall * 100.0,
        cpu / bare
    );
}

fn bench_send_cost(url: &str, calls: usize) {
    let cfg = CString::new(format!(r#"{{"signaling_url":"{url}","peer_id":"vcost","ice_policy":"loopback"}}"#)).unwrap();
    let mut t = 0;
    assert_eq!(unsafe { rmw_transport_new(cfg.as_ptr(), &mut t) }, rmw_status_t::RMW_OK);
    let mut track = 0;
    assert_eq!(unsafe { rmw_video_track_new(t, std::ptr::null(), RMW_TARGET_NONE, std::ptr::null(), &mut track) }, rmw_status_t::RMW_OK);
    let f = video::pattern(W, H, 1);
    let i = f.as_i420();
    let frame = rmw_raw_video_frame_t {
        format: RMW_PIXEL_I420,
        width: W,
        height: H,
        planes: [i.y.as_ptr(), i.u.as_ptr(), i.v.as_ptr()],
        strides: [i.stride_y, i.stride_u, i.stride_v],
        sizes: [i.y.len(), i.u.len(), i.v.len()],
    };
    let (mut ours, mut copy, mut reuse) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept: Vec<u8> = Vec::with_capacity(f.data.len());
    for _ in 0..calls {
        let s = Instant::now();
        let st = unsafe { rmw_video_track_send(track, &frame) };
        ours.push(s.elapsed().as_secs_f64() * 1e6);
        assert_eq!(st, rmw_status_t::RMW_OK);
        let mut buf = Vec::with_capacity(f.data.len());
        let s = Instant::now();
        buf.extend_from_slice(std::hint::black_box(&f.data));
        copy.push(s.elapsed().as_secs_f64() * 1e6);
        drop(std::hint::black_box(buf));
        kept.clear();
        let s = Instant::now();
        kept.extend_from_slice(std::hint::black_box(&f.data));
        reuse.push(s.elapsed().as_secs_f64() * 1e6);
        // At 30 fps, as an application would.
        std::thread::sleep(Duration::from_millis(33));
    }
    rmw_transport_free(t);
    println!(
        "send_video caller cost (720p I420, C API): {calls} calls, p50 {:.1} us, p99 {:.1} us; copy baselines (1.38 MB): into a fresh buffer p50 {:.1} us, into a reused one p50 {:.1} us",
        percentile(&mut ours, 0.5),
        percentile(&mut ours, 0.99),
        percentile(&mut copy, 0.5),
        percentile(&mut reuse, 0.5)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let server = SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), ..Default::default() }).unwrap();
    let url = server.url();
    let (frames, calls) = if quick { (90, 60) } else { (600, 300) };
    println!("video benchmarks ({}), 1280x720 moving pattern, 1500 kbit/s", if quick { "quick" } else { "full" });
    bench_send_cost(&url, calls);
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9] {
        bench_latency_and_cpu(&url, codec, frames);
    }
}
