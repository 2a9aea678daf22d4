//! Audio helpers for the tests: a sine source paced in real time, received-frame collection
//! and the checks a user would make (frequency, continuity).

use remotemedia_webrtc::Transport;
use remotemedia_webrtc::media::audio::{AudioFrame, Pcm};
use std::time::{Duration, Instant};

/// Interleaved sine: `freqs[c]` Hz on channel c, amplitude 0.3, starting at sample `start`.
pub fn sine(freqs: &[f64], rate: u32, start: u64, frames: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames * freqs.len());
    for i in 0..frames as u64 {
        for f in freqs {
            let t = (start + i) as f64 / rate as f64;
            out.push((0.3 * (2.0 * std::f64::consts::PI * f * t).sin()) as f32);
        }
    }
    out
}

/// Sends `seconds` of the sine on `track` in chunks whose sizes cycle through `chunks`
/// (frames per channel), paced like a sound card. Returns the frames per channel sent.
pub fn send_sine(t: &Transport, track: u64, freqs: &[f64], rate: u32, seconds: f64, chunks: &[usize], as_i16: bool) -> u64 {
    let total = (seconds * rate as f64) as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut k = 0;
    while sent < total {
        let n = chunks[k % chunks.len()].min((total - sent) as usize);
        k += 1;
        let pcm = sine(freqs, rate, sent, n);
        if as_i16 {
            let s16: Vec<i16> = pcm.iter().map(|v| (v * 32767.0) as i16).collect();
            t.send_audio(track, Pcm::I16(&s16)).unwrap();
        } else {
            t.send_audio(track, Pcm::F32(&pcm)).unwrap();
        }
        sent += n as u64;
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    sent
}

/// Decoded frames from `peer` arriving within `d`.
pub fn collect(t: &Transport, peer: &str, d: Duration) -> Vec<AudioFrame> {
    let deadline = Instant::now() + d;
    let mut frames = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(f) = t.poll_audio(Some(left.min(Duration::from_millis(50)))).unwrap() {
            if f.peer_id == peer {
                frames.push(f);
            }
        }
    }
    frames
}

/// Channel `c` of the frames, concatenated.
pub fn channel(frames: &[AudioFrame], c: usize) -> Vec<f32> {
    frames
        .iter()
        .flat_map(|f| {
            let ch = f.channels as usize;
            f.samples.to_f32().into_iter().skip(c).step_by(ch).collect::<Vec<_>>()
        })
        .collect()
}

/// Dominant frequency by rising zero crossings (interpolated) over the part of `x` louder
/// than silence.
pub fn frequency(x: &[f32], rate: u32) -> f64 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0;
    for i in 1..x.len() {
        if x[i - 1] < 0.0 && x[i] >= 0.0 {
            let frac = x[i - 1] as f64 / (x[i - 1] as f64 - x[i] as f64);
            let at = (i - 1) as f64 + frac;
            if first.is_none() {
                first = Some(at);
            } else {
                count += 1;
            }
            last = at;
        }
    }
    match first {
        Some(f) if count > 0 => count as f64 * rate as f64 / (last - f),
        _ => 0.0,
    }
}

/// RMS of `x`.
pub fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Largest jump between consecutive samples: a sine of amplitude a at f Hz moves at most
/// 2*pi*f*a/rate per sample; a gap or splice shows as a much larger step.
pub fn max_step(x: &[f32]) -> f32 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}
