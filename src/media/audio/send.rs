//! One outgoing audio track: a bounded PCM queue filled by `send` on the application's
//! thread, and an encoder thread that resamples, frames, encodes once and writes the RTP
//! packet to every peer the target resolves to.

use super::resample::Resampler;
use super::{AudioSendConfig, AudioSendStats, OPUS_RATE, OpusApplication, Pcm};
use crate::error::{Error, Result};
use crate::media::TrackTarget;
use audiopus::coder::Encoder;
use audiopus::{Application, Bitrate, Channels, SampleRate};
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use crate::media::rtp::{Frame, Marker, Resolver};

const TARGET: &str = "rmw::audio";
/// Largest Opus packet we produce (one frame of at most 60 ms at 510 kbit/s fits).
const MAX_PACKET: usize = 4000;

#[derive(Default)]
struct Counters {
    samples_in: AtomicU64,
    queue_full: AtomicU64,
    frames_encoded: AtomicU64,
    frames_dtx: AtomicU64,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    peers: AtomicUsize,
    peers_busy: AtomicUsize,
}

pub(crate) struct AudioTrack {
    pub id: u64,
    pub cfg: AudioSendConfig,
    tx: Mutex<Option<Sender<Vec<f32>>>>,
    /// Interleaved samples waiting in the queue, and the most it may hold.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    target: Arc<Mutex<TrackTarget>>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AudioTrack {
    /// Validates `cfg`, builds the encoder and starts the encoder thread.
    pub fn start(id: u64, cfg: AudioSendConfig, target: TrackTarget, resolve: Resolver, rt: tokio::runtime::Handle) -> Result<Arc<AudioTrack>> {
        cfg.validate()?;
        let encoder = new_encoder(&cfg)?;
        let resampler = Resampler::new(cfg.sample_rate, OPUS_RATE, cfg.channels as usize)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let track = Arc::new(AudioTrack {
            id,
            max_queued: (cfg.sample_rate as usize * cfg.max_queue_ms as usize / 1000) * cfg.channels as usize,
            cfg: cfg.clone(),
            tx: Mutex::new(Some(tx)),
            queued: Arc::new(AtomicUsize::new(0)),
            target: Arc::new(Mutex::new(target)),
            counters: Arc::new(Counters::default()),
            thread: Mutex::new(None),
        });
        let mut enc = EncoderLoop {
            id,
            frame_len: (OPUS_RATE * cfg.frame_ms / 1000) as usize,
            cfg,
            encoder,
            resampler,
            queued: track.queued.clone(),
            target: track.target.clone(),
            counters: track.counters.clone(),
            resolve,
            rt,
        };
        let thread = std::thread::Builder::new()
            .name("rmw-audio-enc".into())
            .spawn(move || enc.run(rx))
            .map_err(|e| Error::Io(format!("spawn audio encoder thread: {e}")))?;
        *track.thread.lock().unwrap() = Some(thread);
        Ok(track)
    }

    /// Copies interleaved PCM (`sample_rate`, `channels` of the config) into the queue.
    /// Never waits: a full queue refuses the whole chunk with `QueueFull`.
    pub fn send(&self, pcm: Pcm<'_>) -> Result<()> {
        let channels = self.cfg.channels as usize;
        if pcm.is_empty() || pcm.len() % channels != 0 {
            return Err(Error::InvalidArgument(format!("{} samples is not a whole number of {channels}-channel frames", pcm.len())));
        }
        if pcm.len() > self.max_queued {
            // Could never fit: retrying would loop for ever.
            return Err(Error::InvalidArgument(format!("{} samples is more than the track's whole queue (max_queue_ms {})", pcm.len(), self.cfg.max_queue_ms)));
        }
        if self.queued.load(Ordering::Relaxed) + pcm.len() > self.max_queued {
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
            return Err(Error::QueueFull(format!("audio track {}: more than {} ms of PCM waiting for the encoder", self.id, self.cfg.max_queue_ms)));
        }
        let samples: Vec<f32> = match pcm {
            Pcm::F32(s) => s.to_vec(),
            Pcm::I16(s) => s.iter().map(|&v| v as f32 / 32768.0).collect(),
        };
        let tx = self.tx.lock().unwrap();
        let tx = tx.as_ref().ok_or_else(|| Error::Closed(format!("audio track {} is removed", self.id)))?;
        self.queued.fetch_add(samples.len(), Ordering::Relaxed);
        self.counters.samples_in.fetch_add((samples.len() / channels) as u64, Ordering::Relaxed);
        tx.send(samples).map_err(|_| Error::Closed(format!("audio track {} is removed", self.id)))
    }

    pub fn set_target(&self, target: TrackTarget) {
        *self.target.lock().unwrap() = target;
    }

    pub fn stats(&self) -> AudioSendStats {
        let c = &self.counters;
        AudioSendStats {
            track: self.id,
            samples_in: c.samples_in.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            frames_encoded: c.frames_encoded.load(Ordering::Relaxed),
            frames_dtx: c.frames_dtx.load(Ordering::Relaxed),
            packets_sent: c.packets_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            peers: c.peers.load(Ordering::Relaxed),
            peers_busy: c.peers_busy.load(Ordering::Relaxed),
        }
    }

    /// Stops taking PCM, lets the encoder finish what is queued and joins its thread.
    pub fn stop(&self) {
        drop(self.tx.lock().unwrap().take());
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

impl Drop for AudioTrack {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn new_encoder(cfg: &AudioSendConfig) -> Result<Encoder> {
    let channels = if cfg.channels == 2 { Channels::Stereo } else { Channels::Mono };
    let application = match cfg.application {
        OpusApplication::Voip => Application::Voip,
        OpusApplication::Audio => Application::Audio,
        OpusApplication::LowDelay => Application::LowDelay,
    };
    let mut e = Encoder::new(SampleRate::Hz48000, channels, application)?;
    e.set_bitrate(Bitrate::BitsPerSecond(cfg.bitrate as i32))?;
    e.set_complexity(cfg.complexity)?;
    e.set_inband_fec(cfg.fec)?;
    e.set_packet_loss_perc(cfg.expected_loss_percent)?;
    e.set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, cfg.dtx as i32)?;
    Ok(e)
}

struct EncoderLoop {
    id: u64,
    cfg: AudioSendConfig,
    /// Samples per channel in one Opus frame (at 48 kHz).
    frame_len: usize,
    encoder: Encoder,
    resampler: Option<Resampler>,
    queued: Arc<AtomicUsize>,
    target: Arc<Mutex<TrackTarget>>,
    counters: Arc<Counters>,
    resolve: Resolver,
    rt: tokio::runtime::Handle,
}

impl EncoderLoop {
    fn run(&mut self, rx: Receiver<Vec<f32>>) {
        let channels = self.cfg.channels as usize;
        let n = self.frame_len * channels;
        let mut fifo: Vec<f32> = Vec::with_capacity(n * 4);
        let mut out = vec![0u8; MAX_PACKET];
        // The track's clock counts samples, sent or not, so silence left out by DTX still
        // moves it forward. Each peer's sender maps it onto that peer's RTP timeline.
        let mut ts = 0u32;
        while let Ok(chunk) = rx.recv() {
            self.queued.fetch_sub(chunk.len(), Ordering::Relaxed);
            match &mut self.resampler {
                Some(r) => r.process(&chunk, &mut fifo),
                None => fifo.extend_from_slice(&chunk),
            }
            let mut offset = 0;
            while fifo.len() - offset >= n {
                let frame = &fifo[offset..offset + n];
                offset += n;
                let len = match self.encoder.encode_float(frame, &mut out[..]) {
                    Ok(len) => len,
                    Err(e) => {
                        tracing::warn!(target: TARGET, track = self.id, error = %e, "opus encode failed; frame dropped");
                        ts = ts.wrapping_add(self.frame_len as u32);
                        continue;
                    }
                };
                self.counters.frames_encoded.fetch_add(1, Ordering::Relaxed);
                let this_ts = ts;
                ts = ts.wrapping_add(self.frame_len as u32);
                // With DTX, 1-2 byte packets mean "still silent": not sent (as libwebrtc does).
                if self.cfg.dtx && len <= 2 {
                    self.counters.frames_dtx.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let payload = [Bytes::copy_from_slice(&out[..len])];
                let frame = Frame { track: self.id, payloads: &payload, timestamp: this_ts, duration: self.frame_len as u32, marker: Marker::TalkspurtStart };
                self.deliver(&frame);
            }
            fifo.drain(..offset);
        }
    }

    /// Sends one encoded frame to every peer of the target: encoded once, written N times.
    fn deliver(&self, frame: &Frame<'_>) {
        let target = self.target.lock().unwrap().clone();
        let (senders, busy) = (self.resolve)(&target, self.id);
        let sent = self.rt.block_on(async {
            let mut sent = 0;
            for s in &senders {
                sent += s.send(frame).await;
            }
            sent
        });
        let c = &self.counters;
        c.peers.store(senders.len(), Ordering::Relaxed);
        c.peers_busy.store(busy, Ordering::Relaxed);
        c.packets_sent.fetch_add(sent, Ordering::Relaxed);
        c.bytes_sent.fetch_add(sent * frame.payloads[0].len() as u64, Ordering::Relaxed);
    }
}
