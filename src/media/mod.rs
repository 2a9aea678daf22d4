//! Media: audio (Opus) and video (VP8, VP9). Each kind has a send pipeline (app thread → bounded
//! queue → encoder thread → RTP to the peers' tracks) and a receive pipeline (RTP → jitter
//! buffer → decoder → bounded frame queue → poll or handler). See docs/ARCHITECTURE.md.

pub mod audio;
pub(crate) mod loss;
pub(crate) mod rtp;
pub mod video;

/// Microseconds on CLOCK_MONOTONIC: the clock of every arrival time we report, so that an
/// application can compare them with its own `clock_gettime(CLOCK_MONOTONIC)` readings.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Whom an outgoing track sends to. Resolved again for every frame, so peers that connect
/// or join the session later receive it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackTarget {
    /// Sends to nobody (the track exists, its input is encoded and dropped).
    None,
    Peer(String),
    Session(String),
    All,
}

/// The peer's view of our stream, from its RTCP.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Feedback {
    /// Round-trip time from its last receiver report (None until one refers to our SR).
    pub rtt_ms: Option<f64>,
    /// Share of our packets lost since its previous report (0..=1), and in total.
    pub fraction_lost: f64,
    pub packets_lost: u32,
    /// Interarrival jitter it measured, in milliseconds.
    pub jitter_ms: f64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    /// The bandwidth the peer estimates for our stream (REMB), bits per second.
    pub remb_bps: Option<u64>,
}
