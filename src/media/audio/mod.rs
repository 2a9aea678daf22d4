//! Audio: Opus from application PCM to the peers, and decoded PCM back.
//!
//! Send: `send` (any thread) copies PCM into a bounded queue → the track's encoder thread
//! resamples to 48 kHz, cuts Opus frames, encodes once and writes the RTP packet to every peer
//! its target names. Receive: one task per remote track reads RTP → jitter buffer (reorder,
//! loss detection) → Opus decode with FEC/PLC → PCM in the app's rate, channels and format →
//! the transport's bounded audio queue (oldest dropped when the app falls behind).

mod decode;
mod jitter;
pub(crate) mod receive;
mod resample;
pub(crate) mod send;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// RTP clock and Opus's internal rate.
pub const OPUS_RATE: u32 = 48_000;
/// Input rates `send` accepts (anything but 48 kHz is resampled).
pub const INPUT_RATES: [u32; 8] = [8_000, 12_000, 16_000, 24_000, 32_000, 44_100, 48_000, 96_000];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpusApplication {
    /// Speech: best intelligibility at low bitrates.
    Voip,
    /// Music and everything else: closest to the input.
    Audio,
    /// Lowest algorithmic delay (no speech mode).
    LowDelay,
}

/// How one outgoing audio track encodes. The defaults suit a voice call.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSendConfig {
    /// Rate of the PCM handed to `send` (one of `INPUT_RATES`).
    pub sample_rate: u32,
    /// 1 or 2 (interleaved).
    pub channels: u16,
    /// Opus frame duration: 10, 20, 40 or 60 ms.
    pub frame_ms: u32,
    /// Target bitrate in bits per second (6 000..=510 000).
    pub bitrate: u32,
    /// 0 (fastest) ..= 10 (best).
    pub complexity: u8,
    /// In-band forward error correction: the receiver can rebuild a lost frame from the next.
    pub fec: bool,
    /// Loss rate the encoder plans FEC for (0..=100); only matters with `fec`.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission: silence is not sent (the RTP timestamp still advances).
    pub dtx: bool,
    pub application: OpusApplication,
    /// Most PCM (in milliseconds) `send` may queue ahead of the encoder; more is refused.
    pub max_queue_ms: u32,
}

impl Default for AudioSendConfig {
    fn default() -> Self {
        AudioSendConfig {
            sample_rate: OPUS_RATE,
            channels: 1,
            frame_ms: 20,
            bitrate: 32_000,
            complexity: 9,
            fec: true,
            expected_loss_percent: 10,
            dtx: false,
            application: OpusApplication::Voip,
            max_queue_ms: 200,
        }
    }
}

impl AudioSendConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !INPUT_RATES.contains(&self.sample_rate) {
            return bad(format!("sample_rate must be one of {INPUT_RATES:?}, got {}", self.sample_rate));
        }
        if !matches!(self.channels, 1 | 2) {
            return bad(format!("channels must be 1 or 2, got {}", self.channels));
        }
        if !matches!(self.frame_ms, 10 | 20 | 40 | 60) {
            return bad(format!("frame_ms must be 10, 20, 40 or 60, got {}", self.frame_ms));
        }
        if !(6_000..=510_000).contains(&self.bitrate) {
            return bad(format!("bitrate must be 6000..=510000 bit/s, got {}", self.bitrate));
        }
        if self.complexity > 10 {
            return bad(format!("complexity must be 0..=10, got {}", self.complexity));
        }
        if self.expected_loss_percent > 100 {
            return bad(format!("expected_loss_percent must be 0..=100, got {}", self.expected_loss_percent));
        }
        if !(self.frame_ms..=10_000).contains(&self.max_queue_ms) {
            return bad(format!("max_queue_ms must be frame_ms..=10000, got {}", self.max_queue_ms));
        }
        Ok(())
    }
}

/// Interleaved PCM handed to `send`. Copying it (as f32) into the track's queue is the only
/// work done on the caller's thread.
#[derive(Debug, Clone, Copy)]
pub enum Pcm<'a> {
    I16(&'a [i16]),
    F32(&'a [f32]),
}

impl Pcm<'_> {
    pub fn len(&self) -> usize {
        match self {
            Pcm::I16(s) => s.len(),
            Pcm::F32(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sample format of received PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    #[default]
    F32,
    S16,
}

/// Decoded samples, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    F32(Vec<f32>),
    S16(Vec<i16>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(s) => s.len(),
            Samples::S16(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples as f32 (copied when they are s16).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Samples::F32(s) => s.clone(),
            Samples::S16(s) => s.iter().map(|&v| v as f32 / 32768.0).collect(),
        }
    }
}

/// A block of decoded audio from one remote track.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    pub peer_id: String,
    pub track_id: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Samples,
    /// RTP timestamp (48 kHz clock) of the first sample.
    pub rtp_timestamp: u32,
    /// When the packet arrived (for concealed audio: when it was declared lost), in
    /// `media::monotonic_us()` microseconds.
    pub arrival_us: u64,
    /// Level of this block as in RFC 6464: 0 is full scale, 127 is silence (-dBov).
    pub level: u8,
    /// True when this block was not received but concealed (PLC) or rebuilt from FEC.
    pub concealed: bool,
}

impl AudioFrame {
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }
}

/// RFC 6464 level (-dBov, 0..=127, 127 = silence) of interleaved samples in [-1, 1].
pub fn level_dbov(samples: &[f32]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let mean_square = samples.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / samples.len() as f64;
    if mean_square <= 0.0 {
        return 127;
    }
    // Full-scale sine has RMS 1/sqrt(2) = -3 dBov; RFC 6464 measures against full-scale square.
    let db = 10.0 * mean_square.log10();
    (-db).round().clamp(0.0, 127.0) as u8
}

/// Counters of one outgoing audio track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AudioSendStats {
    pub track: u64,
    /// Samples per channel taken by `send`.
    pub samples_in: u64,
    /// `send` calls refused because the queue was full.
    pub queue_full: u64,
    pub frames_encoded: u64,
    /// Frames not sent because DTX found them silent.
    pub frames_dtx: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Peers the last frame went to.
    pub peers: usize,
    /// Peers named by the target that already carry another track of this transport.
    pub peers_busy: usize,
}

/// Counters of one remote audio track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AudioReceiveStats {
    pub peer_id: String,
    pub track_id: String,
    pub codec: String,
    pub packets_received: u64,
    /// Packets never received (after the jitter buffer's wait).
    pub packets_lost: u64,
    /// Packets that came after their turn had passed, and duplicates.
    pub packets_late: u64,
    pub frames_decoded: u64,
    /// Lost frames rebuilt from the next packet's in-band FEC.
    pub frames_fec: u64,
    /// Lost frames replaced by packet-loss concealment.
    pub frames_concealed: u64,
    pub decode_errors: u64,
    /// Level of the last block (RFC 6464, 127 = silence).
    pub level: u8,
}
