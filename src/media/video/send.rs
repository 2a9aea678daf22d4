//! One outgoing video track: a one-frame mailbox filled by `send` on the application's
//! thread (the newest frame wins), and an encoder thread that converts, encodes once per codec
//! in use, packetises and writes to every peer the target resolves to.

use super::convert::{self, PixelFormat, RawFrame};
use super::vpx::{EncodedFrame, Encoder, EncoderConfig, I420Buf};
use super::{MAX_DIMENSION, VIDEO_CLOCK, VideoCodec, VideoSendConfig, VideoSendStats, check_bitrate};
use crate::error::{Error, Result};
use crate::media::TrackTarget;
use crate::media::rtp::{Frame, Marker, PeerSender, Resolver};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use webrtc::rtp::codecs::vp8::Vp8Payloader;
use webrtc::rtp::codecs::vp9::Vp9Payloader;
use webrtc::rtp::packetizer::Payloader;

const TARGET: &str = "rmw::video";
/// RTP payload size: leaves room for the RTP header, SRTP tag and TURN/IPv6 overheads in a
/// 1280-byte IPv6 minimum MTU.
const RTP_PAYLOAD_MTU: usize = 1_100;

/// A frame waiting for the encoder: the caller's planes copied as they were (with strides).
struct Pending {
    format: PixelFormat,
    width: u32,
    height: u32,
    strides: [u32; 3],
    /// Byte ranges of the planes in `data`.
    planes: [(usize, usize); 3],
    data: Vec<u8>,
    capture_us: u64,
}

#[derive(Default)]
struct Mailbox {
    frame: Option<Pending>,
    /// Buffers the encoder is done with: reused so that a send does not allocate (and fault
    /// in) megabytes per frame.
    free: Vec<Vec<u8>>,
    closed: bool,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_dropped: AtomicU64,
    frames_encoded: AtomicU64,
    keyframes_encoded: AtomicU64,
    keyframes_requested: AtomicU64,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    encode_errors: AtomicU64,
    width: AtomicU32,
    height: AtomicU32,
    /// The bitrate the encoder used last (the ceiling, or lower after a REMB).
    current_kbps: AtomicU32,
    peers: AtomicUsize,
    peers_busy: AtomicUsize,
}

pub(crate) struct VideoTrack {
    pub id: u64,
    pub cfg: VideoSendConfig,
    mailbox: Arc<(Mutex<Mailbox>, Condvar)>,
    target: Arc<Mutex<TrackTarget>>,
    bitrate_kbps: Arc<AtomicU32>,
    keyframe: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl VideoTrack {
    pub fn start(id: u64, cfg: VideoSendConfig, target: TrackTarget, resolve: Resolver, rt: tokio::runtime::Handle) -> Result<Arc<VideoTrack>> {
        cfg.validate()?;
        let track = Arc::new(VideoTrack {
            id,
            bitrate_kbps: Arc::new(AtomicU32::new(cfg.bitrate_kbps)),
            cfg: cfg.clone(),
            mailbox: Arc::default(),
            target: Arc::new(Mutex::new(target)),
            keyframe: Arc::new(AtomicBool::new(false)),
            counters: Arc::default(),
            thread: Mutex::new(None),
        });
        let mut enc = EncoderLoop {
            id,
            cfg,
            mailbox: track.mailbox.clone(),
            target: track.target.clone(),
            bitrate_kbps: track.bitrate_kbps.clone(),
            keyframe: track.keyframe.clone(),
            counters: track.counters.clone(),
            resolve,
            rt,
            encoders: Vec::new(),
            epoch_us: None,
        };
        let thread = std::thread::Builder::new()
            .name("rmw-video-enc".into())
            .spawn(move || enc.run())
            .map_err(|e| Error::Io(format!("spawn video encoder thread: {e}")))?;
        *track.thread.lock().unwrap() = Some(thread);
        Ok(track)
    }

    /// Copies the frame into the mailbox and returns; a frame the encoder has not taken yet is
    /// replaced (counted as dropped). Sizes and strides are checked here, on the caller's
    /// thread, so a bad frame is the caller's error.
    pub fn send(&self, f: &RawFrame<'_>) -> Result<()> {
        let layout = convert::check(f).map_err(|e| Error::InvalidArgument(e.0))?;
        if f.width > MAX_DIMENSION || f.height > MAX_DIMENSION {
            return Err(Error::InvalidArgument(format!("{}x{} is larger than {MAX_DIMENSION}x{MAX_DIMENSION}", f.width, f.height)));
        }
        let capture_us = crate::media::monotonic_us();
        let (lock, ready) = &*self.mailbox;
        let mut data = {
            let mut mb = lock.lock().unwrap();
            if mb.closed {
                return Err(Error::Closed(format!("video track {} is removed", self.id)));
            }
            mb.free.pop().unwrap_or_default()
        };
        // The copy: one memcpy per plane (rows with their strides, as given).
        data.clear();
        let mut planes = [(0, 0); 3];
        for (i, len) in layout.iter().enumerate() {
            let start = data.len();
            data.extend_from_slice(&f.planes[i][..*len]);
            planes[i] = (start, data.len());
        }
        let pending = Pending { format: f.format, width: f.width, height: f.height, strides: f.strides, planes, data, capture_us };
        self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        let mut mb = lock.lock().unwrap();
        if let Some(old) = mb.frame.replace(pending) {
            self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            mb.free.push(old.data);
        }
        drop(mb);
        ready.notify_one();
        Ok(())
    }

    pub fn set_target(&self, target: TrackTarget) {
        *self.target.lock().unwrap() = target;
    }

    pub fn set_bitrate(&self, kbps: u32) -> Result<()> {
        check_bitrate(kbps)?;
        self.bitrate_kbps.store(kbps, Ordering::Relaxed);
        Ok(())
    }

    /// The next frame encoded is a keyframe for every peer.
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Relaxed);
    }

    pub fn stats(&self) -> VideoSendStats {
        let c = &self.counters;
        VideoSendStats {
            track: self.id,
            frames_in: c.frames_in.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            frames_encoded: c.frames_encoded.load(Ordering::Relaxed),
            keyframes_encoded: c.keyframes_encoded.load(Ordering::Relaxed),
            keyframes_requested: c.keyframes_requested.load(Ordering::Relaxed),
            packets_sent: c.packets_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            target_bitrate_kbps: match c.current_kbps.load(Ordering::Relaxed) {
                0 => self.bitrate_kbps.load(Ordering::Relaxed),
                k => k.min(self.bitrate_kbps.load(Ordering::Relaxed)),
            },
            max_bitrate_kbps: self.bitrate_kbps.load(Ordering::Relaxed),
            width: c.width.load(Ordering::Relaxed),
            height: c.height.load(Ordering::Relaxed),
            peers: c.peers.load(Ordering::Relaxed),
            peers_busy: c.peers_busy.load(Ordering::Relaxed),
            encode_errors: c.encode_errors.load(Ordering::Relaxed),
        }
    }

    /// Stops the track: a frame still in the mailbox is encoded and sent, then the thread
    /// exits and is joined.
    pub fn stop(&self) {
        let (lock, ready) = &*self.mailbox;
        lock.lock().unwrap().closed = true;
        ready.notify_all();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

impl Drop for VideoTrack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One encoder and its packetiser per codec in use.
struct CodecEncoder {
    codec: VideoCodec,
    encoder: Encoder,
    payloader: Box<dyn Payloader + Send + Sync>,
}

struct EncoderLoop {
    id: u64,
    cfg: VideoSendConfig,
    mailbox: Arc<(Mutex<Mailbox>, Condvar)>,
    target: Arc<Mutex<TrackTarget>>,
    bitrate_kbps: Arc<AtomicU32>,
    keyframe: Arc<AtomicBool>,
    counters: Arc<Counters>,
    resolve: Resolver,
    rt: tokio::runtime::Handle,
    encoders: Vec<CodecEncoder>,
    /// Capture time of the first frame: RTP time 0 of this track's clock.
    epoch_us: Option<u64>,
}

impl EncoderLoop {
    fn run(&mut self) {
        loop {
            let pending = {
                let (lock, ready) = &*self.mailbox;
                let mut mb = lock.lock().unwrap();
                loop {
                    if let Some(p) = mb.frame.take() {
                        break p;
                    }
                    if mb.closed {
                        return;
                    }
                    mb = ready.wait(mb).unwrap();
                }
            };
            let i420 = self.convert(&pending);
            self.mailbox.0.lock().unwrap().free.push(pending.data);
            if let Some(i420) = i420 {
                self.encode_and_send(&i420, pending.capture_us);
            }
        }
    }

    fn convert(&self, p: &Pending) -> Option<I420Buf> {
        let planes = p.planes.map(|(a, b)| &p.data[a..b]);
        let raw = RawFrame { format: p.format, width: p.width, height: p.height, planes, strides: p.strides };
        match convert::to_i420(&raw) {
            Ok(f) => Some(f),
            Err(e) => {
                // Checked in `send`: cannot happen unless libyuv refuses.
                tracing::warn!(target: TARGET, track = self.id, error = %e.0, "conversion failed; frame dropped");
                self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn encode_and_send(&mut self, frame: &I420Buf, capture_us: u64) {
        let epoch = *self.epoch_us.get_or_insert(capture_us);
        let rtp_ts = ((capture_us.saturating_sub(epoch)) * VIDEO_CLOCK as u64 / 1_000_000) as u32;
        let target = self.target.lock().unwrap().clone();
        let (senders, busy) = (self.resolve)(&target, self.id);
        let c = self.counters.clone();
        c.peers.store(senders.len(), Ordering::Relaxed);
        c.peers_busy.store(busy, Ordering::Relaxed);
        c.width.store(frame.width, Ordering::Relaxed);
        c.height.store(frame.height, Ordering::Relaxed);
        let force_all = self.keyframe.swap(false, Ordering::Relaxed);
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9] {
            let peers: Vec<&Arc<PeerSender>> = senders.iter().filter(|s| VideoCodec::from_mime(&s.mime_type()) == Some(codec)).collect();
            if peers.is_empty() {
                continue;
            }
            // A keyframe when asked (PLI/FIR, the application) or when a peer gets this track
            // for the first time: it cannot decode anything else.
            let asked = peers.iter().filter(|s| s.keyframe_wanted.swap(false, Ordering::Relaxed) || s.last_track() != Some(self.id)).count();
            if asked > 0 {
                c.keyframes_requested.fetch_add(asked as u64, Ordering::Relaxed);
            }
            // The ceiling is the track's bitrate; the lowest REMB of this codec's peers (if any
            // sent one) lowers it, not below the floor.
            let ceiling = self.bitrate_kbps.load(Ordering::Relaxed);
            let remb = peers.iter().filter_map(|s| s.feedback.lock().unwrap().remb_bps).min().map(|b| (b / 1000) as u32);
            let kbps = remb.map_or(ceiling, |r| r.clamp(self.cfg.min_bitrate_kbps.min(ceiling), ceiling));
            c.current_kbps.store(kbps, Ordering::Relaxed);
            let encoded = match self.encode(codec, frame, rtp_ts as i64, force_all || asked > 0, kbps) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(target: TARGET, track = self.id, codec = codec.name(), error = %e, "encode failed; frame dropped");
                    c.encode_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            for ef in encoded {
                self.deliver(codec, &ef, rtp_ts, &peers);
            }
        }
    }

    /// Encodes with the codec's encoder, (re)created for the frame's size and the current
    /// bitrate.
    fn encode(&mut self, codec: VideoCodec, frame: &I420Buf, pts: i64, keyframe: bool, kbps: u32) -> std::result::Result<Vec<EncodedFrame>, String> {
        let pos = self.encoders.iter().position(|e| e.codec == codec);
        let fits = pos.is_some_and(|i| {
            let c = self.encoders[i].encoder.config();
            c.width == frame.width && c.height == frame.height
        });
        let i = match (pos, fits) {
            (Some(i), true) => i,
            _ => {
                // New codec or new resolution: a new encoder (its first frame is a keyframe).
                let mut ec = EncoderConfig {
                    width: frame.width,
                    height: frame.height,
                    bitrate_kbps: kbps,
                    fps: self.cfg.fps,
                    keyframe_interval: self.cfg.keyframe_interval,
                    threads: self.cfg.threads,
                    ..EncoderConfig::new(codec)
                };
                if let Some(speed) = self.cfg.speed {
                    ec.speed = speed;
                }
                let encoder = Encoder::new(&ec).map_err(|e| e.to_string())?;
                let payloader: Box<dyn Payloader + Send + Sync> = match codec {
                    VideoCodec::Vp8 => {
                        let mut p = Vp8Payloader::default();
                        p.enable_picture_id = true;
                        Box::new(p)
                    }
                    VideoCodec::Vp9 => Box::new(Vp9Payloader::default()),
                };
                // Keep the packetiser (its picture id runs on) when only the size changed.
                let payloader = match pos {
                    Some(i) => std::mem::replace(&mut self.encoders[i].payloader, payloader),
                    None => payloader,
                };
                let ce = CodecEncoder { codec, encoder, payloader };
                match pos {
                    Some(i) => {
                        self.encoders[i] = ce;
                        i
                    }
                    None => {
                        self.encoders.push(ce);
                        self.encoders.len() - 1
                    }
                }
            }
        };
        let e = &mut self.encoders[i];
        if e.encoder.config().bitrate_kbps != kbps {
            e.encoder.set_bitrate(kbps).map_err(|e| e.to_string())?;
        }
        e.encoder.encode(&frame.as_i420(), pts, keyframe).map_err(|e| e.to_string())
    }

    fn deliver(&mut self, codec: VideoCodec, ef: &EncodedFrame, rtp_ts: u32, peers: &[&Arc<PeerSender>]) {
        let c = &self.counters;
        c.frames_encoded.fetch_add(1, Ordering::Relaxed);
        if ef.keyframe {
            c.keyframes_encoded.fetch_add(1, Ordering::Relaxed);
        }
        let Some(e) = self.encoders.iter_mut().find(|e| e.codec == codec) else { return };
        let payloads = match e.payloader.payload(RTP_PAYLOAD_MTU, &Bytes::copy_from_slice(&ef.data)) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(target: TARGET, track = self.id, error = %err, "packetisation failed");
                return;
            }
        };
        let duration = VIDEO_CLOCK / self.cfg.fps.max(1);
        let frame = Frame { track: self.id, payloads: &payloads, timestamp: rtp_ts, duration, marker: Marker::FrameEnd };
        let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let sent = self.rt.block_on(async {
            let mut sent = 0;
            for p in peers {
                sent += p.send(&frame).await;
            }
            sent
        });
        c.packets_sent.fetch_add(sent, Ordering::Relaxed);
        c.bytes_sent.fetch_add(bytes * peers.len() as u64, Ordering::Relaxed);
    }
}
