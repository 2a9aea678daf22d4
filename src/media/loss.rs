//! Simulated packet loss (`simulate_loss_percent`): an interceptor that drops a share of the
//! incoming RTP packets before anything else sees them, so NACK, the jitter buffers, FEC and
//! PLI all react as to real loss. For tests, and for trying an application under loss; never
//! on by default. Innermost in the chain: registered before webrtc-rs's own interceptors.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter};

pub(crate) struct LossBuilder {
    pub percent: u32,
}

impl InterceptorBuilder for LossBuilder {
    fn build(&self, _id: &str) -> std::result::Result<Arc<dyn Interceptor + Send + Sync>, webrtc::interceptor::Error> {
        Ok(Arc::new(Loss { percent: self.percent, state: Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15 ^ crate::media::monotonic_us())) }))
    }
}

struct Loss {
    percent: u32,
    state: Arc<AtomicU64>,
}

/// xorshift64: a cheap, lock-free coin; reproducibility is not needed.
fn roll(state: &AtomicU64) -> u32 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    (x % 100) as u32
}

#[async_trait]
impl Interceptor for Loss {
    async fn bind_rtcp_reader(&self, reader: Arc<dyn RTCPReader + Send + Sync>) -> Arc<dyn RTCPReader + Send + Sync> {
        reader
    }

    async fn bind_rtcp_writer(&self, writer: Arc<dyn RTCPWriter + Send + Sync>) -> Arc<dyn RTCPWriter + Send + Sync> {
        writer
    }

    async fn bind_local_stream(&self, _info: &StreamInfo, writer: Arc<dyn RTPWriter + Send + Sync>) -> Arc<dyn RTPWriter + Send + Sync> {
        writer
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(&self, _info: &StreamInfo, reader: Arc<dyn RTPReader + Send + Sync>) -> Arc<dyn RTPReader + Send + Sync> {
        Arc::new(LossyReader { inner: reader, percent: self.percent, state: self.state.clone() })
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> std::result::Result<(), webrtc::interceptor::Error> {
        Ok(())
    }
}

struct LossyReader {
    inner: Arc<dyn RTPReader + Send + Sync>,
    percent: u32,
    state: Arc<AtomicU64>,
}

#[async_trait]
impl RTPReader for LossyReader {
    async fn read(&self, buf: &mut [u8], a: &Attributes) -> std::result::Result<(webrtc::rtp::packet::Packet, Attributes), webrtc::interceptor::Error> {
        loop {
            let got = self.inner.read(buf, a).await?;
            if roll(&self.state) >= self.percent {
                return Ok(got);
            }
        }
    }
}
