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

/// Where a remote track's decode failures go: the transport turns them into error events for
/// the peer.
pub(crate) type ReportFailure = Box<dyn Fn(String) + Send + Sync>;

/// Tells the application that a remote track's packets do not decode: at once on the first
/// failure, then at most every `REPORT_EVERY` with the count since, so a peer sending garbage
/// is visible without an event per packet (the full count is in the track's stats).
pub(crate) struct DecodeFailures {
    what: String,
    report: ReportFailure,
    seen: u64,
    unreported: u64,
    last_report: Option<std::time::Instant>,
}

impl DecodeFailures {
    const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    /// `what` names the track in messages, e.g. "audio track a1 from alice".
    pub fn new(what: String, report: ReportFailure) -> DecodeFailures {
        DecodeFailures { what, report, seen: 0, unreported: 0, last_report: None }
    }

    /// Called after each batch with the pipeline's running error count and its last error.
    pub fn observe(&mut self, total: u64, last_error: &str, now: std::time::Instant) {
        self.unreported += total.saturating_sub(self.seen);
        self.seen = total;
        if self.unreported == 0 || self.last_report.is_some_and(|t| now < t + Self::REPORT_EVERY) {
            return;
        }
        (self.report)(format!("{} does not decode: {} packet(s) failed ({last_error})", self.what, self.unreported));
        (self.unreported, self.last_report) = (0, Some(now));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    #[test]
    fn decode_failures_are_reported_at_once_then_summed_every_few_seconds() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let mut f = DecodeFailures::new("audio track a from m".into(), Box::new(move |m| sink.lock().unwrap().push(m)));
        let t0 = Instant::now();
        f.observe(0, "", t0);
        assert!(got.lock().unwrap().is_empty(), "no failure, no report");
        f.observe(1, "corrupted stream", t0);
        f.observe(40, "corrupted stream", t0 + Duration::from_secs(1));
        f.observe(41, "invalid packet", t0 + Duration::from_secs(5));
        f.observe(41, "invalid packet", t0 + Duration::from_secs(20));
        assert_eq!(
            *got.lock().unwrap(),
            vec![
                "audio track a from m does not decode: 1 packet(s) failed (corrupted stream)".to_string(),
                "audio track a from m does not decode: 40 packet(s) failed (invalid packet)".to_string(),
            ]
        );
    }
}
