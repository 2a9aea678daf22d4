//! Reassembles video frames from RTP packets (RFC 7741 VP8, RFC 9628 VP9 payloads): packets
//! are put in sequence order, a frame is handed out once every packet from its first
//! (frame-start bit) to its last (marker bit) is here. A hole is waited for up to `max_wait`
//! (time for a NACK retransmission to arrive); then the incomplete frames are dropped and
//! `Lost` tells the caller to ask for a keyframe, since what follows cannot be decoded.

use super::VideoCodec;
use crate::media::rtp::extend_seq;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp::codecs::vp9::Vp9Packet;
use webrtc::rtp::packetizer::Depacketizer;

/// Most packets held (a 1080p keyframe at a high bitrate is a few hundred).
const MAX_HELD: usize = 2048;
/// A forward jump this large is a new stream, not loss.
const RESET_JUMP: u64 = 10_000;

struct Held {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrival_us: u64,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Out {
    Frame { data: Vec<u8>, timestamp: u32, keyframe: bool, arrival_us: u64 },
    /// One or more frames could not be completed and were dropped.
    Lost,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub packets: u64,
    /// Packets that came after a later one: reordered, or retransmitted after a NACK.
    pub out_of_order: u64,
    pub late: u64,
    /// Packets dropped with frames that could not be completed.
    pub dropped: u64,
    pub frames: u64,
    pub frames_lost: u64,
}

pub(crate) struct Assembler {
    codec: VideoCodec,
    max_wait: Duration,
    held: BTreeMap<u64, Held>,
    /// Extended sequence number where the next frame starts; None: wait for a frame start.
    next: Option<u64>,
    highest: Option<u64>,
    gap_since: Option<Instant>,
    pub counts: Counts,
}

impl Assembler {
    pub fn new(codec: VideoCodec, max_wait: Duration) -> Self {
        Assembler { codec, max_wait, held: BTreeMap::new(), next: None, highest: None, gap_since: None, counts: Counts::default() }
    }

    /// Is this payload the first packet of a frame?
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        match (self.codec, payload.first()) {
            // S (start of partition) with partition index 0.
            (VideoCodec::Vp8, Some(b)) => b & 0x10 != 0 && b & 0x07 == 0,
            // B (beginning of a frame).
            (VideoCodec::Vp9, Some(b)) => b & 0x08 != 0,
            (_, None) => false,
        }
    }

    pub fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: Bytes, arrival_us: u64) {
        self.counts.packets += 1;
        if payload.is_empty() {
            return; // padding (bandwidth probing)
        }
        let ext = extend_seq(self.highest, seq);
        if let Some(h) = self.highest {
            if ext > h + RESET_JUMP {
                self.counts.dropped += self.held.len() as u64;
                self.held.clear();
                self.next = None;
                self.gap_since = None;
            }
        }
        if self.next.is_some_and(|n| ext < n) || self.held.contains_key(&ext) {
            self.counts.late += 1;
            return;
        }
        if self.next.is_none() && self.is_frame_start(&payload) {
            // (Re)synchronise on the first frame start; older held packets are of no use.
            let stale: Vec<u64> = self.held.range(..ext).map(|(k, _)| *k).collect();
            self.counts.dropped += stale.len() as u64;
            stale.iter().for_each(|k| drop(self.held.remove(k)));
            self.next = Some(ext);
        }
        if self.highest.is_some_and(|h| ext < h) {
            self.counts.out_of_order += 1;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.held.insert(ext, Held { timestamp, marker, payload, arrival_us });
        while self.held.len() > MAX_HELD {
            self.held.pop_first();
            self.counts.dropped += 1;
        }
    }

    /// The next complete frame, or `Lost` once a hole has been waited for long enough.
    pub fn pop(&mut self, now: Instant) -> Option<Out> {
        let next = self.next?;
        if let Some(end) = self.complete_frame_end(next) {
            return Some(self.take_frame(next, end));
        }
        // Every packet so far is here and no frame has ended: still arriving, not a hole.
        let highest = self.highest.unwrap_or(next);
        if (next..=highest).all(|s| self.held.contains_key(&s)) && !self.held.range(next..).any(|(_, p)| p.marker) {
            return None;
        }
        let since = *self.gap_since.get_or_insert(now);
        if now.duration_since(since) < self.max_wait {
            return None;
        }
        // Give up: drop up to the next frame start after the hole.
        let resume = self.held.range(next + 1..).find(|(_, p)| self.is_frame_start(&p.payload)).map(|(k, _)| *k);
        let drop_to = resume.unwrap_or(u64::MAX);
        let gone: Vec<u64> = self.held.range(..drop_to).map(|(k, _)| *k).collect();
        self.counts.dropped += gone.len() as u64;
        gone.iter().for_each(|k| drop(self.held.remove(k)));
        self.next = resume;
        self.gap_since = None;
        self.counts.frames_lost += 1;
        Some(Out::Lost)
    }

    /// When `pop` may have something even if no packet arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|s| s + self.max_wait)
    }

    /// The last sequence number of the frame starting at `start`, if all its packets are here.
    fn complete_frame_end(&self, start: u64) -> Option<u64> {
        let first = self.held.get(&start)?;
        if !self.is_frame_start(&first.payload) {
            return None;
        }
        let mut seq = start;
        loop {
            let p = self.held.get(&seq)?;
            if p.timestamp != first.timestamp {
                return None; // a new frame began before this one's marker: corrupt
            }
            if p.marker {
                return Some(seq);
            }
            seq += 1;
        }
    }

    fn take_frame(&mut self, start: u64, end: u64) -> Out {
        let mut data = Vec::new();
        let (mut timestamp, mut arrival_us, mut ok) = (0, 0, true);
        for seq in start..=end {
            let p = self.held.remove(&seq).expect("checked by complete_frame_end");
            (timestamp, arrival_us) = (p.timestamp, arrival_us.max(p.arrival_us));
            // A fresh depacketiser per packet: webrtc-rs's VP9 one keeps the reference
            // indices (P_DIFF) of earlier packets and fails on the third packet of a
            // flexible-mode frame from Chromium ("too many PDiff").
            let part = match self.codec {
                VideoCodec::Vp8 => Vp8Packet::default().depacketize(&p.payload),
                VideoCodec::Vp9 => Vp9Packet::default().depacketize(&p.payload),
            };
            match part {
                Ok(b) => data.extend_from_slice(&b),
                Err(_) => ok = false,
            }
        }
        self.next = Some(end + 1);
        self.gap_since = None;
        if !ok || data.is_empty() {
            self.counts.frames_lost += 1;
            return Out::Lost;
        }
        self.counts.frames += 1;
        let keyframe = is_keyframe(self.codec, &data);
        Out::Frame { data, timestamp, keyframe, arrival_us }
    }
}

/// Reads the keyframe flag from the start of a VP8 or VP9 frame.
pub(crate) fn is_keyframe(codec: VideoCodec, frame: &[u8]) -> bool {
    let Some(&b) = frame.first() else { return false };
    match codec {
        // VP8 frame tag: bit 0 is 0 for a key frame (RFC 6386 §9.1).
        VideoCodec::Vp8 => b & 0x01 == 0,
        // VP9 uncompressed header: frame_marker(2) profile_low(1) profile_high(1)
        // [reserved(1) if profile 3] show_existing_frame(1) frame_type(1, 0 = key).
        VideoCodec::Vp9 => {
            if b >> 6 != 0b10 {
                return false;
            }
            let profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
            let shift = if profile == 3 { 2 } else { 3 };
            let show_existing = (b >> shift) & 1 == 1;
            !show_existing && (b >> (shift - 1)) & 1 == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp::codecs::vp8::Vp8Payloader;
    use webrtc::rtp::packetizer::Payloader;

    /// A fake VP8 frame of `len` bytes (keyframe tag when `key`), cut into 100-byte payloads.
    fn packets(key: bool, len: usize, fill: u8) -> Vec<Bytes> {
        let mut frame = vec![fill; len];
        frame[0] = if key { 0x10 } else { 0x11 };
        let mut p = Vp8Payloader::default();
        p.enable_picture_id = true;
        p.payload(100, &Bytes::from(frame)).unwrap()
    }

    /// Pushes frames (seq from 100, timestamp 3000 apart) except the (frame, packet) pairs
    /// in `lose`.
    fn feed(a: &mut Assembler, frames: &[Vec<Bytes>], lose: &[(usize, usize)], seq0: u16) {
        let mut seq = seq0;
        for (f, ps) in frames.iter().enumerate() {
            for (i, p) in ps.iter().enumerate() {
                if !lose.contains(&(f, i)) {
                    a.push(seq, 3000 * f as u32, i == ps.len() - 1, p.clone(), 0);
                }
                seq = seq.wrapping_add(1);
            }
        }
    }

    fn drain(a: &mut Assembler, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| a.pop(now))
            .map(|o| match o {
                Out::Frame { data, timestamp, keyframe, .. } => format!("{}{}:{}", if keyframe { "K" } else { "f" }, timestamp / 3000, data.len()),
                Out::Lost => "lost".into(),
            })
            .collect()
    }

    #[test]
    fn frames_come_out_whole_and_in_order_across_a_wrap() {
        let mut a = Assembler::new(VideoCodec::Vp8, Duration::from_millis(100));
        let frames = vec![packets(true, 450, 1), packets(false, 120, 2), packets(false, 90, 3)];
        feed(&mut a, &frames, &[], 65533);
        assert_eq!(drain(&mut a, Instant::now()), ["K0:450", "f1:120", "f2:90"]);
    }

    #[test]
    fn a_reordered_packet_completes_its_frame() {
        let mut a = Assembler::new(VideoCodec::Vp8, Duration::from_millis(100));
        let frames = vec![packets(true, 450, 1), packets(false, 250, 2)];
        feed(&mut a, &frames, &[(0, 2)], 10);
        let now = Instant::now();
        assert_eq!(drain(&mut a, now), Vec::<String>::new(), "frame 0 waits for its third packet");
        // The late packet (a NACK retransmission) arrives: both frames go.
        a.push(12, 0, false, frames[0][2].clone(), 0);
        assert_eq!(drain(&mut a, now), ["K0:450", "f1:250"]);
        assert_eq!(a.counts.frames_lost, 0);
    }

    #[test]
    fn a_hole_not_filled_in_time_drops_to_the_next_frame_and_says_lost() {
        let mut a = Assembler::new(VideoCodec::Vp8, Duration::from_millis(100));
        let frames = vec![packets(true, 450, 1), packets(false, 250, 2), packets(false, 150, 3)];
        feed(&mut a, &frames, &[(1, 1)], 10);
        let t0 = Instant::now();
        assert_eq!(drain(&mut a, t0), ["K0:450"]);
        assert_eq!(drain(&mut a, t0 + Duration::from_millis(99)), Vec::<String>::new());
        assert_eq!(drain(&mut a, t0 + Duration::from_millis(100)), ["lost", "f2:150"]);
        assert_eq!(a.counts.frames_lost, 1);
    }

    #[test]
    fn a_stream_joined_mid_frame_starts_at_the_next_frame() {
        let mut a = Assembler::new(VideoCodec::Vp8, Duration::from_millis(100));
        let frames = vec![packets(true, 450, 1), packets(false, 250, 2)];
        feed(&mut a, &frames, &[(0, 0)], 10);
        assert_eq!(drain(&mut a, Instant::now()), ["f1:250"]);
    }

    #[test]
    fn chromium_style_vp9_flexible_mode_frames_of_many_packets() {
        // As Chromium sends VP9: I, P, F set, 15-bit picture id, one P_DIFF byte; B on the
        // first packet, E on the last. (webrtc-rs's depacketiser, reused across packets,
        // failed on the third.)
        let mut a = Assembler::new(VideoCodec::Vp9, Duration::from_millis(100));
        let frame = [0x86u8; 3]; // an inter frame's first byte (frame_type 1), then data
        for (i, (b, e)) in [(true, false), (false, false), (false, false), (false, true)].into_iter().enumerate() {
            let desc = 0xd1 | if b { 0x08 } else { 0 } | if e { 0x04 } else { 0 };
            let payload = Bytes::from([&[desc, 0xcb, 0x82, 0x02][..], &frame].concat());
            a.push(500 + i as u16, 9000, e, payload, 0);
        }
        assert_eq!(drain(&mut a, Instant::now()), ["f3:12"]);
    }

    #[test]
    fn keyframe_flags() {
        assert!(is_keyframe(VideoCodec::Vp8, &[0x10, 0, 0]));
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x11, 0, 0]));
        // VP9 profile 0: 10 0 0 show_existing=0 frame_type=0 → key; frame_type=1 → inter.
        assert!(is_keyframe(VideoCodec::Vp9, &[0b1000_0000]));
        assert!(!is_keyframe(VideoCodec::Vp9, &[0b1000_0100]));
        assert!(!is_keyframe(VideoCodec::Vp9, &[0b1000_1000]), "show_existing_frame");
        assert!(!is_keyframe(VideoCodec::Vp9, &[]));
    }
}
