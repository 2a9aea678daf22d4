//! Video: VP8/VP9 from application frames to the peers, and decoded frames back.
//!
//! Send: `send` (any thread) copies the frame into the track's one-frame mailbox (the newest
//! frame wins when the encoder falls behind) → the encoder thread converts it to I420
//! (libyuv), encodes it once per codec in use among the target's peers (libvpx, real time),
//! packetises it (RFC 7741 / VP9 payload format, picture ids) and writes it to each peer.
//! A peer's PLI/FIR, or a peer newly reached, forces a keyframe.
//! Receive: one task per remote track reads RTP → frame assembler (reorder, wait for NACK
//! retransmissions, drop what cannot be completed) → libvpx decode → I420 or RGBA → the
//! transport's bounded video queue (oldest dropped). Undecodable input sends a PLI.

mod assemble;
pub mod convert;
pub(crate) mod receive;
pub(crate) mod send;
pub mod vpx;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub use convert::{PixelFormat, RawFrame, psnr};
pub use vpx::{Codec as VideoCodec, I420, I420Buf};

/// RTP clock of video.
pub const VIDEO_CLOCK: u32 = 90_000;

impl VideoCodec {
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
        }
    }

    pub(crate) fn from_mime(mime: &str) -> Option<VideoCodec> {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Some(VideoCodec::Vp8),
            "video/vp9" => Some(VideoCodec::Vp9),
            _ => None,
        }
    }
}

/// How one outgoing video track encodes. The codec of each peer is the one negotiated with it
/// (the transport's `video_codec` when the peer accepts it).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSendConfig {
    /// Target bitrate (kbit/s), changeable while running (`set_bitrate`): the ceiling. When
    /// the peers estimate less bandwidth (REMB), the encoder follows the lowest estimate of a
    /// codec's peers down to `min_bitrate_kbps` (or the ceiling, if lower).
    pub bitrate_kbps: u32,
    pub min_bitrate_kbps: u32,
    /// Nominal frame rate, for rate control (frames may come at any pace).
    pub fps: u32,
    /// Longest run of frames between keyframes (0: libvpx decides).
    pub keyframe_interval: u32,
    /// libvpx cpu-used (-16..=16; higher is faster). None: a real-time default per codec.
    pub speed: Option<i32>,
    /// Encoder threads.
    pub threads: u32,
}

impl Default for VideoSendConfig {
    fn default() -> Self {
        VideoSendConfig { bitrate_kbps: 1_500, min_bitrate_kbps: 150, fps: 30, keyframe_interval: 3_000, speed: None, threads: 1 }
    }
}

impl VideoSendConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        check_bitrate(self.bitrate_kbps)?;
        // A floor above the ceiling is not an error: the ceiling wins.
        check_bitrate(self.min_bitrate_kbps)?;
        if !(1..=120).contains(&self.fps) {
            return bad(format!("fps must be 1..=120, got {}", self.fps));
        }
        if let Some(s) = self.speed.filter(|s| !(-16..=16).contains(s)) {
            return bad(format!("speed must be -16..=16 (or the codec default), got {s}"));
        }
        if !(1..=16).contains(&self.threads) {
            return bad(format!("threads must be 1..=16, got {}", self.threads));
        }
        Ok(())
    }
}

pub(crate) fn check_bitrate(kbps: u32) -> Result<()> {
    if (30..=50_000).contains(&kbps) { Ok(()) } else { Err(Error::InvalidArgument(format!("bitrate_kbps must be 30..=50000, got {kbps}"))) }
}

pub use vpx::MAX_DIMENSION;

/// Pixel layout of received frames (`video_output_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoOutputFormat {
    #[default]
    I420,
    Rgba,
}

/// A decoded frame from one remote track. `data` holds the planes back to back: I420 as Y,
/// U, V with `strides`; RGBA as one plane.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    pub peer_id: String,
    pub track_id: String,
    pub codec: VideoCodec,
    pub width: u32,
    pub height: u32,
    pub format: VideoOutputFormat,
    pub data: Vec<u8>,
    pub strides: [u32; 3],
    pub offsets: [usize; 3],
    /// RTP timestamp (90 kHz) of the frame.
    pub rtp_timestamp: u32,
    /// Arrival of its last packet, `media::monotonic_us()` microseconds.
    pub arrival_us: u64,
    pub keyframe: bool,
}

impl VideoFrame {
    pub fn plane(&self, i: usize) -> &[u8] {
        let end = if i + 1 < 3 && self.offsets[i + 1] > self.offsets[i] { self.offsets[i + 1] } else { self.data.len() };
        &self.data[self.offsets[i]..end]
    }
}

/// Counters of one outgoing video track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VideoSendStats {
    pub track: u64,
    pub frames_in: u64,
    /// Frames replaced in the mailbox by a newer one before the encoder took them.
    pub frames_dropped: u64,
    pub frames_encoded: u64,
    pub keyframes_encoded: u64,
    /// Keyframes asked for by peers (PLI/FIR) or by a peer joining.
    pub keyframes_requested: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// What the encoder aims at now: `max_bitrate_kbps`, or less after a peer's REMB.
    pub target_bitrate_kbps: u32,
    /// The track's bitrate (the ceiling).
    pub max_bitrate_kbps: u32,
    pub width: u32,
    pub height: u32,
    pub peers: usize,
    pub peers_busy: usize,
    pub encode_errors: u64,
}

/// Counters of one remote video track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VideoReceiveStats {
    pub peer_id: String,
    pub track_id: String,
    pub codec: String,
    pub packets_received: u64,
    /// Packets that came after a later one: reordered, or retransmitted after our NACK.
    pub packets_out_of_order: u64,
    pub packets_late: u64,
    /// Packets thrown away with frames that could not be completed.
    pub packets_dropped: u64,
    pub frames_assembled: u64,
    pub frames_lost: u64,
    pub frames_decoded: u64,
    pub keyframes_decoded: u64,
    /// Frames skipped while waiting for a keyframe after a loss.
    pub frames_skipped: u64,
    pub decode_errors: u64,
    /// Picture loss indications sent to the peer.
    pub plis_sent: u64,
    pub width: u32,
    pub height: u32,
}
