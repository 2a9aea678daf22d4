//! Fixed-ratio sample-rate conversion of interleaved f32 streams, fed in chunks of any size
//! (game engines hand 256, 441 or 1024 frames at a time). rubato's FFT resampler does the
//! work; this keeps the leftover input between calls.

use crate::error::{Error, Result};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

pub(crate) struct Resampler {
    fft: Fft<f32>,
    channels: usize,
    /// Input not yet consumed (less than one chunk after each `process`).
    pending: Vec<f32>,
    scratch: Vec<f32>,
}

impl Resampler {
    /// `None` when no conversion is needed.
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Option<Resampler>> {
        if from == to {
            return Ok(None);
        }
        // 10 ms input chunks: small enough for low delay, a whole number of frames at every
        // supported rate (441 at 44.1 kHz).
        let chunk = (from / 100) as usize;
        let fft = Fft::<f32>::new(from as usize, to as usize, chunk, channels, FixedSync::Input)
            .map_err(|e| Error::Codec(format!("resampler {from}->{to} Hz: {e}")))?;
        let scratch = vec![0.0; fft.output_frames_max() * channels];
        Ok(Some(Resampler { fft, channels, pending: Vec::with_capacity(chunk * channels * 2), scratch }))
    }

    /// Appends the conversion of `input` (interleaved) to `out`; keeps what does not fill a
    /// whole chunk for the next call.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.pending.extend_from_slice(input);
        let mut offset = 0;
        loop {
            let need = self.fft.input_frames_next() * self.channels;
            if self.pending.len() - offset < need {
                break;
            }
            let frames_in = need / self.channels;
            let frames_out = self.scratch.len() / self.channels;
            let result = match (
                InterleavedSlice::new(&self.pending[offset..offset + need], self.channels, frames_in),
                InterleavedSlice::new_mut(&mut self.scratch[..], self.channels, frames_out),
            ) {
                (Ok(i), Ok(mut o)) => self.fft.process_into_buffer(&i, &mut o, None),
                _ => break, // sizes are ours: cannot happen
            };
            match result {
                Ok((used, produced)) => {
                    offset += used * self.channels;
                    out.extend_from_slice(&self.scratch[..produced * self.channels]);
                }
                Err(e) => {
                    tracing::warn!(target: "rmw::audio", error = %e, "resampler failed; chunk dropped");
                    offset += need;
                }
            }
        }
        self.pending.drain(..offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_chunks_give_the_right_length_and_frequency() {
        let mut r = Resampler::new(44_100, 48_000, 1).unwrap().unwrap();
        let input: Vec<f32> = (0..44_100).map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin()).collect();
        let mut out = Vec::new();
        for chunk in input.chunks(333) {
            r.process(chunk, &mut out);
        }
        // One second in, one second (minus at most a chunk kept back) out.
        assert!((47_000..=48_000).contains(&out.len()), "{}", out.len());
        // Count rising zero crossings over the steady part: 440 per second.
        let steady = &out[4_800..out.len() - 4_800];
        let crossings = steady.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let hz = crossings as f64 * 48_000.0 / steady.len() as f64;
        assert!((hz - 440.0).abs() < 3.0, "{hz} Hz");
    }

    #[test]
    fn same_rate_needs_none() {
        assert!(Resampler::new(48_000, 48_000, 2).unwrap().is_none());
    }
}
