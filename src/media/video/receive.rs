//! The receive pipeline of one remote video track: RTP → frame assembler → libvpx decode →
//! I420 or RGBA → the transport's bounded video queue. After a loss that could not be
//! repaired, or a frame the decoder refuses, it asks the sender for a keyframe (PLI) and skips
//! frames until one comes: they would only decode to garbage.

use super::assemble::{Assembler, Out};
use super::convert;
use super::vpx::{Decoder, I420Buf};
use super::{VideoCodec, VideoFrame, VideoOutputFormat, VideoReceiveStats};
use crate::events::BoundedQueue;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use crate::media::rtp::RtpReader;
use crate::media::{DecodeFailures, ReportFailure};
use webrtc::track::track_remote::TrackRemote;

const TARGET: &str = "rmw::video";
/// Packets between the RTP reader and the assembler.
const READ_QUEUE: usize = 1024;
/// PLIs are repeated at most this often while waiting for a keyframe.
const PLI_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiveSettings {
    pub format: VideoOutputFormat,
    /// How long a hole is waited for (NACK retransmission) before its frames are dropped.
    pub max_wait: Duration,
}

pub(crate) struct RemoteVideo {
    pub stats: Mutex<VideoReceiveStats>,
}

/// Asks the sender for a keyframe (sends a PLI for the track's SSRC).
pub(crate) type KeyframeRequest = Box<dyn Fn() + Send + Sync>;

/// Runs until the track ends.
pub(crate) async fn run(
    track: Arc<TrackRemote>,
    codec: VideoCodec,
    remote: Arc<RemoteVideo>,
    settings: ReceiveSettings,
    sink: Arc<BoundedQueue<VideoFrame>>,
    request_keyframe: KeyframeRequest,
    report: ReportFailure,
) {
    let (peer_id, track_id) = {
        let s = remote.stats.lock().unwrap();
        (s.peer_id.clone(), s.track_id.clone())
    };
    let mut failures = DecodeFailures::new(format!("video track {track_id} from {peer_id}"), report);
    let mut pipeline = match Pipeline::new(peer_id.clone(), track_id, codec, settings) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(target: TARGET, peer = %peer_id, error = %e, "cannot create the video decoder");
            return;
        }
    };
    let mut reader = RtpReader::spawn(track, READ_QUEUE);
    while let Some(got) = reader.next(pipeline.deadline()).await {
        if let Some((p, arrival_us)) = got {
            pipeline.push(p.header.sequence_number, p.header.timestamp, p.header.marker, p.payload, arrival_us);
        }
        let now = Instant::now();
        // Decoding runs here, on a runtime worker (a few ms per 720p frame): with two workers
        // the network tasks go on on the other one.
        for f in pipeline.drain(now) {
            sink.push(f);
        }
        if pipeline.take_keyframe_request(now) {
            request_keyframe();
        }
        failures.observe(pipeline.counts.errors, &pipeline.last_error, now);
        pipeline.update(&mut remote.stats.lock().unwrap());
    }
}

/// Assembler + decoder of one stream, without I/O.
pub(crate) struct Pipeline {
    peer_id: String,
    track_id: String,
    codec: VideoCodec,
    settings: ReceiveSettings,
    assembler: Assembler,
    decoder: Decoder,
    /// Skip until a keyframe decodes (at the start, and after a loss or decode error).
    need_keyframe: bool,
    /// Something was actually lost, refused or skipped: ask the sender. (Not merely "nothing
    /// decoded yet": the stream starts with a keyframe, and a needless one costs bits.)
    ask: bool,
    last_pli: Option<Instant>,
    counts: Counts,
    last_error: String,
}

#[derive(Default)]
struct Counts {
    decoded: u64,
    keyframes: u64,
    skipped: u64,
    errors: u64,
    plis: u64,
    width: u32,
    height: u32,
}

impl Pipeline {
    pub fn new(peer_id: String, track_id: String, codec: VideoCodec, settings: ReceiveSettings) -> Result<Pipeline, String> {
        Ok(Pipeline {
            peer_id,
            track_id,
            codec,
            assembler: Assembler::new(codec, settings.max_wait),
            decoder: Decoder::new(codec).map_err(|e| e.to_string())?,
            settings,
            // Until the first keyframe nothing can be decoded.
            need_keyframe: true,
            ask: false,
            last_pli: None,
            counts: Counts::default(),
            last_error: String::new(),
        })
    }

    pub fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: bytes::Bytes, arrival_us: u64) {
        self.assembler.push(seq, timestamp, marker, payload, arrival_us);
    }

    pub fn deadline(&self) -> Option<Instant> {
        let pli = if self.ask { self.last_pli.map(|t| t + PLI_INTERVAL) } else { None };
        match (self.assembler.deadline(), pli) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn drain(&mut self, now: Instant) -> Vec<VideoFrame> {
        let mut frames = Vec::new();
        while let Some(out) = self.assembler.pop(now) {
            match out {
                Out::Lost => (self.need_keyframe, self.ask) = (true, true),
                Out::Frame { data, timestamp, keyframe, arrival_us } => {
                    if self.need_keyframe && !keyframe {
                        self.counts.skipped += 1;
                        self.ask = true;
                        continue;
                    }
                    match self.decoder.decode(&data) {
                        Ok(Some(img)) => {
                            (self.need_keyframe, self.ask) = (false, false);
                            self.counts.decoded += 1;
                            self.counts.keyframes += keyframe as u64;
                            (self.counts.width, self.counts.height) = (img.width, img.height);
                            match self.frame(img, timestamp, arrival_us, keyframe) {
                                Some(f) => frames.push(f),
                                None => {
                                    self.counts.errors += 1;
                                    self.last_error = format!("{}: cannot convert a {}x{} picture", self.codec.name(), self.counts.width, self.counts.height);
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::debug!(target: TARGET, peer = %self.peer_id, error = %e, "decode failed; asking for a keyframe");
                            self.counts.errors += 1;
                            self.last_error = format!("{}: {e}", self.codec.name());
                            (self.need_keyframe, self.ask) = (true, true);
                        }
                    }
                }
            }
        }
        frames
    }

    /// True when a PLI should go out now (rate-limited while waiting for a keyframe).
    pub fn take_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.ask || self.last_pli.is_some_and(|t| now.duration_since(t) < PLI_INTERVAL) {
            return false;
        }
        self.last_pli = Some(now);
        self.counts.plis += 1;
        true
    }

    fn frame(&self, img: I420Buf, rtp_timestamp: u32, arrival_us: u64, keyframe: bool) -> Option<VideoFrame> {
        let (w, h) = (img.width, img.height);
        let (data, strides, offsets) = match self.settings.format {
            VideoOutputFormat::I420 => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                let y = (w * h) as usize;
                let c = (cw * ch) as usize;
                (img.data, [w, cw, cw], [0, y, y + c])
            }
            VideoOutputFormat::Rgba => {
                let mut rgba = vec![0u8; (w * h * 4) as usize];
                convert::i420_to_rgba(&img.as_i420(), &mut rgba, w * 4).ok()?;
                (rgba, [w * 4, 0, 0], [0, 0, 0])
            }
        };
        Some(VideoFrame {
            peer_id: self.peer_id.clone(),
            track_id: self.track_id.clone(),
            codec: self.codec,
            width: w,
            height: h,
            format: self.settings.format,
            data,
            strides,
            offsets,
            rtp_timestamp,
            arrival_us,
            keyframe,
        })
    }

    pub fn update(&self, s: &mut VideoReceiveStats) {
        let a = &self.assembler.counts;
        s.packets_received = a.packets;
        s.packets_out_of_order = a.out_of_order;
        s.packets_late = a.late;
        s.packets_dropped = a.dropped;
        s.frames_assembled = a.frames;
        s.frames_lost = a.frames_lost;
        s.frames_decoded = self.counts.decoded;
        s.keyframes_decoded = self.counts.keyframes;
        s.frames_skipped = self.counts.skipped;
        s.decode_errors = self.counts.errors;
        s.plis_sent = self.counts.plis;
        s.width = self.counts.width;
        s.height = self.counts.height;
    }
}
