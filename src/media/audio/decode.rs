//! Opus decoding to the application's rate and channel count, with loss concealment: a lost
//! frame is rebuilt from the next packet's in-band FEC when that packet is at hand, else
//! synthesised by Opus's packet-loss concealment.

use super::OPUS_RATE;
use super::resample::Resampler;
use crate::error::Result;
use audiopus::coder::Decoder;
use audiopus::{Channels, SampleRate};

/// Longest Opus packet: 120 ms.
const MAX_FRAME_MS: usize = 120;

pub(crate) struct OpusDecoder {
    decoder: Decoder,
    /// Rate the decoder runs at: the output rate when Opus supports it, else 48 kHz.
    rate: u32,
    channels: usize,
    resampler: Option<Resampler>,
    /// Samples per channel of the last frame decoded: the size of a concealed frame.
    last_frame: usize,
    buf: Vec<f32>,
}

impl OpusDecoder {
    pub fn new(out_rate: u32, out_channels: u16) -> Result<OpusDecoder> {
        let native = matches!(out_rate, 8_000 | 12_000 | 16_000 | 24_000 | 48_000);
        let rate = if native { out_rate } else { OPUS_RATE };
        let sample_rate = match rate {
            8_000 => SampleRate::Hz8000,
            12_000 => SampleRate::Hz12000,
            16_000 => SampleRate::Hz16000,
            24_000 => SampleRate::Hz24000,
            _ => SampleRate::Hz48000,
        };
        let channels = if out_channels == 2 { Channels::Stereo } else { Channels::Mono };
        Ok(OpusDecoder {
            decoder: Decoder::new(sample_rate, channels)?,
            rate,
            channels: out_channels as usize,
            resampler: Resampler::new(rate, out_rate, out_channels as usize)?,
            last_frame: rate as usize / 50, // 20 ms until a packet tells otherwise
            buf: vec![0.0; rate as usize * MAX_FRAME_MS / 1000 * out_channels as usize],
        })
    }

    /// Decodes one received packet: interleaved PCM at the output rate, and the frame's
    /// duration on the 48 kHz RTP clock.
    pub fn decode(&mut self, payload: &[u8]) -> Result<(Vec<f32>, u32)> {
        let n = self.run(Some(payload), self.buf.len(), false)?;
        self.last_frame = n;
        Ok((self.output(n), self.rtp_duration(n)))
    }

    /// One lost frame, as long as the last one: rebuilt from `following`'s FEC when given
    /// (true in the result), else concealed.
    pub fn conceal(&mut self, following: Option<&[u8]>) -> Result<(Vec<f32>, u32, bool)> {
        let want = self.last_frame * self.channels;
        let (n, fec) = match following.map(|p| self.run(Some(p), want, true)) {
            Some(Ok(n)) => (n, true),
            _ => (self.run(None, want, false)?, false),
        };
        Ok((self.output(n), self.rtp_duration(n), fec))
    }

    fn rtp_duration(&self, frames: usize) -> u32 {
        (frames as u64 * OPUS_RATE as u64 / self.rate as u64) as u32
    }

    fn run(&mut self, payload: Option<&[u8]>, len: usize, fec: bool) -> Result<usize> {
        Ok(self.decoder.decode_float(payload, &mut self.buf[..len], fec)?)
    }

    fn output(&mut self, frames: usize) -> Vec<f32> {
        let pcm = &self.buf[..frames * self.channels];
        match &mut self.resampler {
            None => pcm.to_vec(),
            Some(r) => {
                let mut out = Vec::with_capacity(pcm.len() * 2);
                r.process(pcm, &mut out);
                out
            }
        }
    }
}
