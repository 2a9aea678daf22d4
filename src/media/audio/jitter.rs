//! Jitter buffer for one audio stream: puts packets back in sequence order, drops late and
//! duplicate ones, and decides when a missing packet is lost.
//!
//! Delivery is push-based: a packet that is next in sequence leaves at once (no added delay
//! when the network behaves). When one is missing and later ones are here, they wait up to
//! `max_wait` (the configured `jitter_buffer_size_ms`) for it; then it is declared lost, and
//! the decoder conceals it, from the next packet's FEC when that one is at hand. Playout
//! timing is the application's: each frame carries its RTP timestamp and arrival time.

use crate::media::rtp::extend_seq;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A forward jump this large (in packets) is a new stream, not a loss burst: restart there.
const RESET_JUMP: u64 = 1_000;
/// Most packets held; beyond that the gap is given up at once.
const MAX_HELD: usize = 500;
/// Longest gap concealed frame by frame (0.5 s of 20 ms frames). Beyond it the gap is skipped:
/// concealing it would synthesize seconds of audio in one go, and a sender (hostile, or
/// restarted) could make every packet cost that (found by the `audio_rtp` fuzz target).
const MAX_CONCEALED: u64 = 25;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub timestamp: u32,
    pub payload: Bytes,
    pub arrival_us: u64,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Out {
    /// The next packet, in order.
    Packet(Held),
    /// The next packet never came. `following` is the packet right after it, if already
    /// here: its in-band FEC can rebuild the lost one.
    Lost { following: Option<Held> },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub received: u64,
    pub late: u64,
    pub lost: u64,
}

pub(crate) struct JitterBuffer {
    max_wait: Duration,
    held: BTreeMap<u64, Held>,
    /// Extended sequence number of the next packet to hand out.
    next: Option<u64>,
    /// Highest extended sequence number seen (to extend 16-bit numbers across wraps).
    highest: Option<u64>,
    /// Since when the head of the line has been missing.
    gap_since: Option<Instant>,
    pub counts: Counts,
}

impl JitterBuffer {
    pub fn new(max_wait: Duration) -> Self {
        JitterBuffer { max_wait, held: BTreeMap::new(), next: None, highest: None, gap_since: None, counts: Counts::default() }
    }

    pub fn push(&mut self, seq: u16, held: Held) {
        self.counts.received += 1;
        let ext = extend_seq(self.highest, seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next || self.held.contains_key(&ext) {
            self.counts.late += 1;
            return;
        }
        if ext - next > RESET_JUMP {
            // The sender restarted (or jumped): what we hold belongs to the old stream.
            self.held.clear();
            self.next = Some(ext);
            self.gap_since = None;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.held.insert(ext, held);
    }

    /// The next thing to decode, if it is due at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Out> {
        let next = self.next?;
        if let Some(h) = self.held.remove(&next) {
            self.next = Some(next + 1);
            self.gap_since = None;
            return Some(Out::Packet(h));
        }
        if self.held.is_empty() {
            return None;
        }
        // A gap: wait for the missing packet, unless we have waited long enough or hold too much.
        let since = *self.gap_since.get_or_insert(now);
        if now.duration_since(since) < self.max_wait && self.held.len() < MAX_HELD {
            return None;
        }
        let first_held = self.held.keys().next().copied().unwrap_or(next + 1);
        if first_held - next > MAX_CONCEALED {
            self.counts.lost += first_held - next;
            (self.next, self.gap_since) = (Some(first_held), None);
            return self.pop(now);
        }
        self.counts.lost += 1;
        self.next = Some(next + 1);
        // The following packets were already waited for: the rest of this gap goes at once.
        Some(Out::Lost { following: self.held.get(&(next + 1)).cloned() })
    }

    /// When `pop` may next have something even if no packet arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|s| s + self.max_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ts: u32) -> Held {
        Held { timestamp: ts, payload: Bytes::from(vec![ts as u8]), arrival_us: 0 }
    }

    fn drain(jb: &mut JitterBuffer, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| jb.pop(now))
            .map(|o| match o {
                Out::Packet(h) => format!("p{}", h.timestamp),
                Out::Lost { following } => format!("lost(next={:?})", following.map(|h| h.timestamp)),
            })
            .collect()
    }

    #[test]
    fn in_order_goes_out_at_once() {
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        let now = Instant::now();
        for s in 0..3u16 {
            jb.push(s, held(s as u32));
        }
        assert_eq!(drain(&mut jb, now), ["p0", "p1", "p2"]);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        let now = Instant::now();
        jb.push(10, held(10));
        assert_eq!(drain(&mut jb, now), ["p10"]);
        jb.push(12, held(12));
        assert_eq!(drain(&mut jb, now), Vec::<String>::new(), "11 is awaited");
        jb.push(11, held(11));
        assert_eq!(drain(&mut jb, now), ["p11", "p12"]);
        assert_eq!(jb.counts.lost, 0);
    }

    #[test]
    fn a_missing_packet_is_lost_after_the_wait_with_fec_from_the_next() {
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        let t0 = Instant::now();
        jb.push(1, held(1));
        jb.push(3, held(3));
        jb.push(4, held(4));
        assert_eq!(drain(&mut jb, t0), ["p1"]);
        assert_eq!(jb.deadline(), Some(t0 + Duration::from_millis(50)));
        assert_eq!(drain(&mut jb, t0 + Duration::from_millis(49)), Vec::<String>::new());
        assert_eq!(drain(&mut jb, t0 + Duration::from_millis(50)), ["lost(next=Some(3))", "p3", "p4"]);
        assert_eq!(jb.counts.lost, 1);
        // Too late now: dropped and counted.
        jb.push(2, held(2));
        assert_eq!(jb.counts.late, 1);
        assert_eq!(drain(&mut jb, t0 + Duration::from_secs(1)), Vec::<String>::new());
    }

    #[test]
    fn a_burst_is_concealed_packet_by_packet() {
        let mut jb = JitterBuffer::new(Duration::from_millis(20));
        let t0 = Instant::now();
        jb.push(1, held(1));
        jb.push(5, held(5));
        let later = t0 + Duration::from_millis(30);
        assert_eq!(drain(&mut jb, t0), ["p1"]);
        assert_eq!(drain(&mut jb, later), ["lost(next=None)", "lost(next=None)", "lost(next=Some(5))", "p5"]);
        assert_eq!(jb.counts.lost, 3);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        let now = Instant::now();
        jb.push(65534, held(1));
        jb.push(0, held(3));
        jb.push(65535, held(2));
        assert_eq!(drain(&mut jb, now), ["p1", "p2", "p3"]);
    }

    #[test]
    fn duplicates_are_dropped_and_a_big_jump_restarts() {
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        let now = Instant::now();
        jb.push(7, held(7));
        jb.push(7, held(7));
        assert_eq!(drain(&mut jb, now), ["p7"]);
        assert_eq!(jb.counts.late, 1);
        jb.push(30_000, held(30));
        assert_eq!(drain(&mut jb, now), ["p30"]);
        assert_eq!(jb.counts.lost, 0);
    }

    #[test]
    fn a_long_gap_is_skipped_not_concealed_frame_by_frame() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(Duration::from_millis(50));
        jb.push(0, held(0));
        assert_eq!(drain(&mut jb, t0), vec!["p0"]);
        jb.push(999, held(9));
        assert!(drain(&mut jb, t0).is_empty(), "waits for the gap first");
        assert_eq!(drain(&mut jb, t0 + Duration::from_millis(60)), vec!["p9"]);
        assert_eq!(jb.counts.lost, 998);
        // A short gap is still concealed frame by frame.
        jb.push(1002, held(12));
        assert!(drain(&mut jb, t0 + Duration::from_millis(200)).is_empty());
        assert_eq!(drain(&mut jb, t0 + Duration::from_millis(260)), vec!["lost(next=None)", "lost(next=Some(12))", "p12"]);
    }
}
