//! Our RTP sender to one peer for one media kind. Tracks of the transport may take turns on it
//! (one at a time), so it numbers the RTP itself: sequence numbers and timestamps stay
//! continuous for the peer across a change of track, as receivers (and SRTP replay checks)
//! expect of one SSRC. Frames are encoded once per track and numbered once per peer.

use bytes::Bytes;
use super::Feedback;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::reception_report::ReceptionReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use webrtc::track::track_remote::TrackRemote;
use std::sync::{Arc, Mutex};
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp::extension::HeaderExtension;
use webrtc::rtp::extension::abs_send_time_extension::AbsSendTimeExtension;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;

/// Resolves a track's target to the peers' senders for one frame (claiming free ones), and
/// how many peers were busy with another track.
pub(crate) type Resolver = Arc<dyn Fn(&crate::media::TrackTarget, u64) -> (Vec<Arc<PeerSender>>, usize) + Send + Sync>;

/// One encoded frame of a track, split into RTP payloads, before a peer's numbering.
pub(crate) struct Frame<'a> {
    pub track: u64,
    pub payloads: &'a [Bytes],
    /// Timestamp on the track's own RTP clock, and the frame's length on it.
    pub timestamp: u32,
    pub duration: u32,
    pub marker: Marker,
}

/// What the marker bit means for the media kind.
#[derive(Clone, Copy)]
pub(crate) enum Marker {
    /// Audio (RFC 3551): first packet of a talkspurt (after silence or a change of track).
    TalkspurtStart,
    /// Video: last packet of a frame.
    FrameEnd,
}

pub(crate) struct PeerSender {
    /// Replaced when negotiation settles on another codec than the track was made with.
    rtp: Mutex<Arc<TrackLocalStaticRTP>>,
    numbering: Mutex<Numbering>,
    /// Set by the peer's PLI/FIR (video): the next frame to it must be a keyframe.
    pub keyframe_wanted: AtomicBool,
    /// What the peer's RTCP says about our stream.
    pub feedback: Mutex<Feedback>,
}


struct Numbering {
    seq: u16,
    /// The peer's timestamp for the instant after the last frame sent.
    next_ts: u32,
    /// Track whose frames came last, and its clock's offset to the peer's.
    track: Option<u64>,
    offset: u32,
    /// The track clock's timestamp expected next (a jump means frames were left out).
    expected: u32,
}

impl PeerSender {
    pub fn new(rtp: Arc<TrackLocalStaticRTP>) -> PeerSender {
        // Random starting points (RFC 3550 §5.1).
        let numbering = Numbering { seq: random_u32() as u16, next_ts: random_u32(), track: None, offset: 0, expected: 0 };
        PeerSender { rtp: Mutex::new(rtp), numbering: Mutex::new(numbering), keyframe_wanted: AtomicBool::new(false), feedback: Mutex::default() }
    }

    /// The codec (mime type) this sender's RTP track is bound with.
    pub fn mime_type(&self) -> String {
        self.rtp.lock().unwrap().codec().mime_type
    }

    pub fn replace_rtp(&self, rtp: Arc<TrackLocalStaticRTP>) {
        *self.rtp.lock().unwrap() = rtp;
    }

    /// The track whose frames were sent here last.
    pub fn last_track(&self) -> Option<u64> {
        self.numbering.lock().unwrap().track
    }

    /// The frame's packets on this peer's timeline.
    pub fn packets(&self, f: &Frame<'_>) -> Vec<Packet> {
        let mut n = self.numbering.lock().unwrap();
        // A new track (or the first) continues the peer's timeline.
        let switched = n.track != Some(f.track);
        if switched {
            n.track = Some(f.track);
            n.offset = n.next_ts.wrapping_sub(f.timestamp);
        }
        let restart = switched || f.timestamp != n.expected;
        let timestamp = f.timestamp.wrapping_add(n.offset);
        n.next_ts = timestamp.wrapping_add(f.duration);
        n.expected = f.timestamp.wrapping_add(f.duration);
        let last = f.payloads.len().saturating_sub(1);
        f.payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let marker = match f.marker {
                    Marker::TalkspurtStart => restart && i == 0,
                    Marker::FrameEnd => i == last,
                };
                let seq = n.seq;
                n.seq = n.seq.wrapping_add(1);
                // SSRC and payload type are filled in by the RTP track's binding.
                Packet { header: Header { version: 2, marker, sequence_number: seq, timestamp, ..Default::default() }, payload: payload.clone() }
            })
            .collect()
    }

    /// Numbers and writes the frame; returns the packets written.
    pub async fn send(&self, f: &Frame<'_>) -> u64 {
        let mut sent = 0;
        let rtp = self.rtp.lock().unwrap().clone();
        // Set only where negotiated (video): see peer::register_codecs.
        let ext = [HeaderExtension::AbsSendTime(AbsSendTimeExtension::new(std::time::SystemTime::now()))];
        for p in self.packets(f) {
            match rtp.write_rtp_with_extensions(&p, &ext).await {
                Ok(_) => sent += 1,
                Err(e) => tracing::debug!(target: "rmw::rtp", track = f.track, error = %e, "rtp write failed"),
            }
        }
        sent
    }
}

/// Reads the RTCP the peer sends about this sender until the connection ends: PLI/FIR ask
/// for a keyframe; receiver reports give RTT, loss and jitter; NACKs are counted (webrtc-rs's
/// responder resends the packets). Someone must read it anyway: interceptors see only RTCP
/// that is read.
pub(crate) fn spawn_feedback_reader(rtp_sender: Arc<RTCRtpSender>, sender: std::sync::Weak<PeerSender>, clock_rate: u32) {
    tokio::spawn(async move {
        while let Ok((packets, _)) = rtp_sender.read_rtcp().await {
            let Some(s) = sender.upgrade() else { return };
            let mut fb = s.feedback.lock().unwrap();
            for p in &packets {
                let any = p.as_any();
                if any.downcast_ref::<PictureLossIndication>().is_some() {
                    fb.plis_received += 1;
                    s.keyframe_wanted.store(true, std::sync::atomic::Ordering::Relaxed);
                } else if any.downcast_ref::<FullIntraRequest>().is_some() {
                    fb.firs_received += 1;
                    s.keyframe_wanted.store(true, std::sync::atomic::Ordering::Relaxed);
                } else if let Some(r) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                    fb.remb_bps = Some(r.bitrate.max(0.0) as u64);
                } else if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
                    fb.nacks_received += n.nacks.len() as u64;
                } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    rr.reports.iter().for_each(|r| apply_report(&mut fb, r, clock_rate));
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    sr.reports.iter().for_each(|r| apply_report(&mut fb, r, clock_rate));
                }
            }
        }
    });
}

fn apply_report(fb: &mut Feedback, r: &ReceptionReport, clock_rate: u32) {
    fb.fraction_lost = r.fraction_lost as f64 / 256.0;
    fb.packets_lost = r.total_lost;
    fb.jitter_ms = r.jitter as f64 * 1000.0 / clock_rate.max(1) as f64;
    if r.last_sender_report != 0 {
        // RFC 3550 §6.4.1: RTT = now - LSR - DLSR, all in 1/65536 s (middle 32 bits of NTP).
        let rtt = ntp_middle_32().wrapping_sub(r.last_sender_report).wrapping_sub(r.delay);
        if rtt < 65_536 * 10 {
            fb.rtt_ms = Some(rtt as f64 * 1000.0 / 65_536.0);
        }
    }
}

/// The middle 32 bits of the current NTP time (16.16 fixed point seconds).
fn ntp_middle_32() -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() + 2_208_988_800;
    let frac = ((now.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (((secs & 0xffff) << 16) | (frac >> 16)) as u32
}

/// `seq` as a 64-bit number: the one nearest to `highest` (the highest extended number seen
/// so far), so sequence numbers keep counting across 16-bit wraps. The first lands at
/// 2^32 + seq, leaving room below for packets that arrive before it.
pub(crate) fn extend_seq(highest: Option<u64>, seq: u16) -> u64 {
    let Some(highest) = highest else { return (1 << 32) + seq as u64 };
    let base = highest & !0xffff;
    [base.wrapping_sub(0x10000), base, base + 0x10000]
        .into_iter()
        .map(|b| b.wrapping_add(seq as u64))
        .min_by_key(|&c| c.abs_diff(highest))
        .unwrap()
}

/// Reads a remote track's RTP on a task of its own, so that a receive pipeline waiting for a
/// deadline (jitter buffer, frame assembler) never cancels a read half-way: webrtc-rs's read
/// is not cancel-safe (its interceptors await after taking the packet). Stops with the track
/// or when dropped.
pub(crate) struct RtpReader {
    rx: tokio::sync::mpsc::Receiver<(Packet, u64)>,
    task: tokio::task::JoinHandle<()>,
}

impl RtpReader {
    pub fn spawn(track: Arc<TrackRemote>, queue: usize) -> RtpReader {
        let (tx, rx) = tokio::sync::mpsc::channel(queue);
        let task = tokio::spawn(async move {
            while let Ok((packet, _)) = track.read_rtp().await {
                if tx.send((packet, crate::media::monotonic_us())).await.is_err() {
                    break;
                }
            }
        });
        RtpReader { rx, task }
    }

    /// The next packet with its arrival time (`media::monotonic_us`), or `Some(None)` when
    /// `deadline` passes first; `None` once the track has ended.
    pub async fn next(&mut self, deadline: Option<Instant>) -> Option<Option<(Packet, u64)>> {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = self.rx.recv() => got.map(Some),
            _ = sleep => Some(None),
        }
    }
}

impl Drop for RtpReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::media::monotonic_us());
    h.finish() as u32
}
