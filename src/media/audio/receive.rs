//! The receive pipeline of one remote audio track: RTP → jitter buffer → Opus decode (FEC,
//! PLC) → PCM frames in the application's rate/channels/format → the transport's bounded
//! audio queue.

use super::decode::OpusDecoder;
use super::jitter::{Held, JitterBuffer, Out};
use super::{AudioFrame, AudioReceiveStats, SampleFormat, Samples, level_dbov};
use crate::events::BoundedQueue;
use crate::media::{DecodeFailures, ReportFailure, monotonic_us};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use crate::media::rtp::RtpReader;
use webrtc::track::track_remote::TrackRemote;

const TARGET: &str = "rmw::audio";
/// Packets between the RTP reader and the jitter buffer (a second of 20 ms frames and more).
const READ_QUEUE: usize = 128;

/// What the application asked received audio to look like.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiveSettings {
    pub rate: u32,
    pub channels: u16,
    pub format: SampleFormat,
    /// How long a missing packet is waited for (`jitter_buffer_size_ms`).
    pub max_wait: Duration,
}

/// One remote audio track as the transport lists it.
pub(crate) struct RemoteAudio {
    pub stats: Mutex<AudioReceiveStats>,
}

/// Runs until the track ends (remote removed it, connection closed).
pub(crate) async fn run(
    track: Arc<TrackRemote>,
    remote: Arc<RemoteAudio>,
    settings: ReceiveSettings,
    sink: Arc<BoundedQueue<AudioFrame>>,
    report: ReportFailure,
) {
    let (peer_id, track_id) = {
        let s = remote.stats.lock().unwrap();
        (s.peer_id.clone(), s.track_id.clone())
    };
    let mut failures = DecodeFailures::new(format!("audio track {track_id} from {peer_id}"), report);
    let mut pipeline = match Pipeline::new(peer_id.clone(), track_id, settings) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(target: TARGET, peer = %peer_id, error = %e, "cannot create the Opus decoder");
            return;
        }
    };
    let mut reader = RtpReader::spawn(track, READ_QUEUE);
    while let Some(got) = reader.next(pipeline.deadline()).await {
        if let Some((p, arrival_us)) = got {
            pipeline.push(p.header.sequence_number, p.header.timestamp, p.payload, arrival_us);
        }
        let now = Instant::now();
        for f in pipeline.drain(now) {
            sink.push(f);
        }
        failures.observe(pipeline.counts.errors, &pipeline.last_error, now);
        pipeline.update(&mut remote.stats.lock().unwrap());
    }
}

/// Jitter buffer + decoder of one stream, without I/O: packets in, PCM frames out.
pub(crate) struct Pipeline {
    peer_id: String,
    track_id: String,
    settings: ReceiveSettings,
    jb: JitterBuffer,
    decoder: OpusDecoder,
    /// RTP timestamp the next frame should have (for concealed frames).
    next_ts: Option<u32>,
    counts: Counts,
    last_error: String,
}

#[derive(Default)]
struct Counts {
    decoded: u64,
    fec: u64,
    concealed: u64,
    errors: u64,
    level: u8,
}

impl Pipeline {
    pub fn new(peer_id: String, track_id: String, settings: ReceiveSettings) -> crate::error::Result<Pipeline> {
        Ok(Pipeline {
            peer_id,
            track_id,
            jb: JitterBuffer::new(settings.max_wait),
            decoder: OpusDecoder::new(settings.rate, settings.channels)?,
            settings,
            next_ts: None,
            counts: Counts { level: 127, ..Default::default() },
            last_error: String::new(),
        })
    }

    pub fn push(&mut self, seq: u16, timestamp: u32, payload: bytes::Bytes, arrival_us: u64) {
        if !payload.is_empty() {
            // (an empty payload is padding only)
            self.jb.push(seq, Held { timestamp, payload, arrival_us });
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.jb.deadline()
    }

    /// Frames due at `now`. Decoder errors are counted, never fatal: one bad packet must not
    /// silence a stream.
    pub fn drain(&mut self, now: Instant) -> Vec<AudioFrame> {
        let mut frames = Vec::new();
        while let Some(out) = self.jb.pop(now) {
            let (result, ts, arrival_us) = match &out {
                Out::Packet(h) => (self.decoder.decode(&h.payload).map(|(pcm, d)| (pcm, d, None)), h.timestamp, h.arrival_us),
                Out::Lost { following } => {
                    let ts = self.next_ts.unwrap_or_else(|| following.as_ref().map_or(0, |f| f.timestamp));
                    let r = self.decoder.conceal(following.as_ref().map(|f| &f.payload[..]));
                    (r.map(|(pcm, d, fec)| (pcm, d, Some(fec))), ts, monotonic_us())
                }
            };
            match result {
                Ok((pcm, duration, concealed)) => {
                    self.next_ts = Some(ts.wrapping_add(duration));
                    match concealed {
                        None => self.counts.decoded += 1,
                        Some(true) => self.counts.fec += 1,
                        Some(false) => self.counts.concealed += 1,
                    }
                    let f = self.frame(pcm, ts, arrival_us, concealed.is_some());
                    self.counts.level = f.level;
                    frames.push(f);
                }
                Err(e) => {
                    self.counts.errors += 1;
                    self.last_error = format!("opus: {e}");
                    tracing::debug!(target: TARGET, peer = %self.peer_id, error = %e, "opus decode failed");
                }
            }
        }
        frames
    }

    fn frame(&self, samples: Vec<f32>, rtp_timestamp: u32, arrival_us: u64, concealed: bool) -> AudioFrame {
        let level = level_dbov(&samples);
        let samples = match self.settings.format {
            SampleFormat::F32 => Samples::F32(samples),
            SampleFormat::S16 => Samples::S16(samples.iter().map(|&v| (v.clamp(-1.0, 1.0) * 32767.0).round() as i16).collect()),
        };
        AudioFrame {
            peer_id: self.peer_id.clone(),
            track_id: self.track_id.clone(),
            sample_rate: self.settings.rate,
            channels: self.settings.channels,
            samples,
            rtp_timestamp,
            arrival_us,
            level,
            concealed,
        }
    }

    /// Copies the counters into the track's stats.
    pub fn update(&self, s: &mut AudioReceiveStats) {
        s.packets_received = self.jb.counts.received;
        s.packets_lost = self.jb.counts.lost;
        s.packets_late = self.jb.counts.late;
        s.frames_decoded = self.counts.decoded;
        s.frames_fec = self.counts.fec;
        s.frames_concealed = self.counts.concealed;
        s.decode_errors = self.counts.errors;
        s.level = self.counts.level;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::AudioSendConfig;
    use crate::media::audio::send::new_encoder;

    /// `n` packets of 20 ms of a 440 Hz mono sine at 0.3, from real libopus.
    fn opus_packets(n: usize, fec: bool) -> Vec<bytes::Bytes> {
        let enc = new_encoder(&AudioSendConfig { fec, expected_loss_percent: 20, ..Default::default() }).unwrap();
        let mut out = vec![0u8; 4000];
        (0..n)
            .map(|k| {
                let pcm: Vec<f32> = (0..960).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * (k * 960 + i) as f32 / 48_000.0).sin()).collect();
                let len = enc.encode_float(&pcm, &mut out).unwrap();
                bytes::Bytes::copy_from_slice(&out[..len])
            })
            .collect()
    }

    /// Feeds the packets in real-time order (20 ms apart) except those `lost`, and returns
    /// every frame the pipeline produces.
    fn run(packets: &[bytes::Bytes], lost: impl Fn(usize) -> bool) -> (Vec<AudioFrame>, AudioReceiveStats) {
        let settings = ReceiveSettings { rate: 48_000, channels: 1, format: SampleFormat::F32, max_wait: Duration::from_millis(50) };
        let mut p = Pipeline::new("a".into(), "t".into(), settings).unwrap();
        let t0 = Instant::now();
        let mut frames = Vec::new();
        for (i, pkt) in packets.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            if !lost(i) {
                p.push(1000u16.wrapping_add(i as u16), 7 + 960 * i as u32, pkt.clone(), 0);
            }
            frames.extend(p.drain(now));
        }
        frames.extend(p.drain(t0 + Duration::from_secs(60)));
        let mut stats = AudioReceiveStats::default();
        p.update(&mut stats);
        (frames, stats)
    }

    fn pcm(frames: &[AudioFrame]) -> Vec<f32> {
        frames.iter().flat_map(|f| f.samples.to_f32()).collect()
    }

    fn hz(x: &[f32]) -> f64 {
        let crossings = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        crossings as f64 * 48_000.0 / x.len() as f64
    }

    #[test]
    fn lost_packets_are_rebuilt_from_fec_and_the_stream_stays_continuous() {
        let packets = opus_packets(100, true);
        let lost = |i: usize| i % 10 == 5;
        let (frames, stats) = run(&packets, lost);
        assert_eq!(frames.len(), 100, "every 20 ms is there, received or rebuilt");
        assert_eq!((stats.packets_lost, stats.frames_fec, stats.frames_decoded), (10, 10, 90));
        for (i, w) in frames.windows(2).enumerate() {
            assert_eq!(w[1].rtp_timestamp, w[0].rtp_timestamp + 960, "frame {i}");
        }
        assert!(frames.iter().enumerate().all(|(i, f)| f.concealed == lost(i)));
        let x = pcm(&frames);
        assert_eq!(x.len(), 100 * 960);
        let steady = &x[4_800..];
        assert!((hz(steady) - 440.0).abs() < 5.0, "{} Hz", hz(steady));
        // FEC rebuilds the waveform closely enough that no splice shows: the largest step
        // stays near what a 0.3 sine at 440 Hz can do (0.017 per sample).
        let step = steady.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(step < 0.06, "largest step {step}");
    }

    #[test]
    fn a_lost_last_packet_is_concealed_after_the_wait() {
        let packets = opus_packets(20, false);
        // 18 is lost and 19 arrives: 18 waits 50 ms, then comes from 19 (no FEC in it: PLC
        // inside libopus). 19 itself comes right after.
        let (frames, stats) = run(&packets, |i| i == 18);
        assert_eq!(frames.len(), 20);
        assert_eq!(stats.packets_lost, 1);
        assert!(frames[18].concealed && !frames[19].concealed);
        assert!(frames[18].level < 40, "concealment continues the tone, level {}", frames[18].level);
    }

    #[test]
    fn reordered_packets_come_out_in_order_without_loss() {
        let packets = opus_packets(10, true);
        let settings = ReceiveSettings { rate: 16_000, channels: 2, format: SampleFormat::S16, max_wait: Duration::from_millis(50) };
        let mut p = Pipeline::new("a".into(), "t".into(), settings).unwrap();
        let now = Instant::now();
        let mut frames = Vec::new();
        for i in [0usize, 2, 1, 3, 5, 4, 6, 7, 9, 8] {
            p.push(i as u16, 960 * i as u32, packets[i].clone(), 0);
            frames.extend(p.drain(now));
        }
        assert_eq!(frames.iter().map(|f| f.rtp_timestamp / 960).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(frames.iter().all(|f| !f.concealed && f.sample_rate == 16_000 && f.samples.len() == 320 * 2));
        assert!(matches!(frames[0].samples, Samples::S16(_)));
    }
}
