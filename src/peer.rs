//! Building webrtc-rs peer connections from our `Config`: the ICE policy (loopback, all,
//! relay), timeouts, ICE servers and codecs, and small helpers the transport needs.

use crate::config::{Config, IcePolicy};
use crate::error::Result;
use crate::events::PeerState;
use std::sync::Arc;
use std::time::Duration;
use crate::media::rtp::PeerSender;
use crate::media::video::VideoCodec;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9};
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpHeaderExtensionCapability;
use webrtc::sdp::extmap::ABS_SEND_TIME_URI;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecParameters, RTPCodecType};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::api::API;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::{SctpMaxMessageSize, SettingEngine};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::generator::Generator as NackGenerator;
use webrtc::interceptor::nack::responder::Responder as NackResponder;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;

/// Largest data-channel message we accept from a peer (we advertise it; Chromium's too).
pub const MAX_RECV_MESSAGE_SIZE: usize = 256 * 1024;
/// Largest message we send: the RFC 8841 default every peer accepts. Larger ones can stall
/// webrtc-rs 0.17's SCTP writer for good: a message of 2/3 of its 128 KiB pending queue or more
/// is appended chunk by chunk, and its write loop is only woken once the append has finished
/// (reproduced: a 256 KiB send hung in about one run in three).
pub const MAX_SEND_MESSAGE_SIZE: usize = 64 * 1024;

/// Packets of history each video sender keeps to answer NACKs: 1024, over 4 s of 720p at
/// 2 Mbit/s (libwebrtc keeps 600). webrtc-rs's default of 8192 costs 0.9 MB per stream, in one
/// block above glibc's mmap threshold: freeing it raised the threshold for the whole process,
/// and every thread's arena then kept up to 1.8 MB of freed memory (the soak's RSS plateau).
const NACK_HISTORY_LOG2: u8 = 10;

/// The webrtc-rs API object shared by every peer connection of one transport.
pub(crate) fn build_api(cfg: &Config) -> Result<API> {
    let mut media = MediaEngine::default();
    register_codecs(&mut media, cfg.preferred_video_codec())?;
    let mut registry = Registry::new();
    if cfg.simulate_loss_percent > 0 {
        // First, so that it is innermost: the interceptors after it see the loss.
        registry.add(Box::new(crate::media::loss::LossBuilder { percent: cfg.simulate_loss_percent }));
    }
    // webrtc-rs's default set (NACK, RTCP reports, TWCC feedback), but with a smaller
    // retransmission history; our video codecs declare their NACK feedback themselves.
    registry.add(Box::new(NackResponder::builder().with_log2_size(NACK_HISTORY_LOG2)));
    registry.add(Box::new(NackGenerator::builder()));
    let registry = configure_rtcp_reports(registry);
    let registry = configure_twcc_receiver_only(registry, &mut media)?;

    let mut s = SettingEngine::default();
    // We run our own read loop per channel (bigger messages than webrtc-rs's 64 KiB buffer,
    // one task less per channel).
    s.detach_data_channels();
    s.set_sctp_max_message_size_can_send(SctpMaxMessageSize::Bounded(MAX_SEND_MESSAGE_SIZE as u32));
    // mDNS would bind 0.0.0.0:5353 and multicast; host candidates carry plain IPs instead.
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    // Both of our timeouts count from the last packet heard; webrtc-rs counts its failed timeout
    // from the end of the disconnected one (and 0 would mean "never fail").
    let failed_after_disconnected = cfg.ice_failed_timeout_ms.saturating_sub(cfg.ice_disconnected_timeout_ms).max(1);
    s.set_ice_timeouts(
        Some(Duration::from_millis(cfg.ice_disconnected_timeout_ms.into())),
        Some(Duration::from_millis(failed_after_disconnected.into())),
        Some(Duration::from_millis(cfg.ice_keepalive_interval_ms.into())),
    );
    // A connectivity check that arrives before the trickled candidate makes a peer-reflexive
    // pair; webrtc-rs would wait 1 s before using it (measured: the ~1 s setup outliers, and
    // Chromium as callee). Use the first working pair at once.
    s.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    s.set_host_acceptance_min_wait(Some(Duration::ZERO));
    if cfg.ice_policy == IcePolicy::Relay {
        // Only relay candidates exist, so no better pair can turn up: nominate the first that
        // works instead of webrtc-ice's default 2 s wait for relay pairs (measured through
        // coturn: 2.02 s -> 12 ms to connect).
        s.set_relay_acceptance_min_wait(Some(Duration::ZERO));
    }
    if cfg.simulate_loss_percent > 0 {
        // Simulated loss happens after decryption, so SRTP has seen the dropped packet: its
        // replay check would then refuse the NACK retransmission (same sequence number) that
        // real loss would let through.
        s.disable_srtp_replay_protection(true);
    }
    if cfg.ice_policy == IcePolicy::Loopback {
        s.set_include_loopback_candidate(true);
        s.set_interface_filter(Box::new(|name: &str| name == "lo"));
        s.set_ip_filter(Box::new(|ip: std::net::IpAddr| ip.is_loopback()));
        s.set_network_types(vec![NetworkType::Udp4]);
    }
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(s)
        .build())
}

/// Only what we can encode and decode: Opus; VP8 and VP9 (profile 0), the preferred one
/// first (the order of our offer, which Chromium follows). Feedback: NACK, PLI, FIR, REMB.
fn register_codecs(media: &mut MediaEngine, preferred: VideoCodec) -> Result<()> {
    media.register_codec(RTCRtpCodecParameters { capability: opus_capability(), payload_type: 111, ..Default::default() }, RTPCodecType::Audio)?;
    let mut video = [(VideoCodec::Vp8, 96), (VideoCodec::Vp9, 98)];
    if preferred == VideoCodec::Vp9 {
        video.reverse();
    }
    for (codec, payload_type) in video {
        media.register_codec(RTCRtpCodecParameters { capability: video_capability(codec), payload_type, ..Default::default() }, RTPCodecType::Video)?;
    }
    // abs-send-time on our video: receivers that estimate bandwidth from it (aiortc, and
    // Chromium without transport-cc) send REMB, which our encoder follows.
    media.register_header_extension(RTCRtpHeaderExtensionCapability { uri: ABS_SEND_TIME_URI.into() }, RTPCodecType::Video, None)?;
    Ok(())
}

fn opus_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: Vec::new(),
    }
}

fn video_capability(codec: VideoCodec) -> RTCRtpCodecCapability {
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.into(), parameter: parameter.into() };
    let (mime_type, fmtp) = match codec {
        VideoCodec::Vp8 => (MIME_TYPE_VP8, ""),
        VideoCodec::Vp9 => (MIME_TYPE_VP9, "profile-id=0"),
    };
    RTCRtpCodecCapability {
        mime_type: mime_type.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback: vec![fb("goog-remb", ""), fb("ccm", "fir"), fb("nack", ""), fb("nack", "pli")],
    }
}

/// An RTP track for video in `codec`, to be bound to a video sender.
pub(crate) fn video_rtp_track(codec: RTCRtpCodecCapability, local_id: &str) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(codec, "video".into(), format!("rmw-{local_id}")))
}

/// Adds our one outgoing video track (made with the preferred codec; re-made after
/// negotiation if the peer chose the other) and reads its RTCP: a PLI or FIR from the peer
/// asks the encoder for a keyframe; reports feed the sender's feedback stats.
pub(crate) async fn add_video_sender(pc: &Arc<RTCPeerConnection>, local_id: &str, preferred: VideoCodec) -> Result<(Arc<PeerSender>, Arc<RTCRtpSender>)> {
    let track = video_rtp_track(video_capability(preferred), local_id);
    let rtp_sender = pc.add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>).await?;
    let sender = Arc::new(PeerSender::new(track));
    crate::media::rtp::spawn_feedback_reader(rtp_sender.clone(), Arc::downgrade(&sender), 90_000);
    Ok((sender, rtp_sender))
}

/// Adds our one outgoing audio track (Opus) to a new connection; RTP written to it reaches
/// the peer once connected. Its RTCP feeds the sender's feedback stats.
pub(crate) async fn add_audio_sender(pc: &Arc<RTCPeerConnection>, local_id: &str) -> Result<Arc<PeerSender>> {
    let track = Arc::new(TrackLocalStaticRTP::new(opus_capability(), "audio".into(), format!("rmw-{local_id}")));
    let rtp_sender = pc.add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>).await?;
    let sender = Arc::new(PeerSender::new(track));
    crate::media::rtp::spawn_feedback_reader(rtp_sender, Arc::downgrade(&sender), 48_000);
    Ok(sender)
}

pub(crate) fn rtc_configuration(cfg: &Config) -> RTCConfiguration {
    let mut ice_servers = Vec::new();
    if !cfg.stun_servers.is_empty() {
        ice_servers.push(RTCIceServer { urls: cfg.stun_servers.clone(), ..Default::default() });
    }
    for t in &cfg.turn_servers {
        ice_servers.push(RTCIceServer { urls: vec![t.url.clone()], username: t.username.clone(), credential: t.credential.clone() });
    }
    RTCConfiguration {
        ice_servers,
        ice_transport_policy: if cfg.ice_policy == IcePolicy::Relay { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All },
        ..Default::default()
    }
}

pub(crate) fn peer_state(s: RTCPeerConnectionState) -> PeerState {
    match s {
        RTCPeerConnectionState::Connecting => PeerState::Connecting,
        RTCPeerConnectionState::Connected => PeerState::Connected,
        RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
        RTCPeerConnectionState::Failed => PeerState::Failed,
        RTCPeerConnectionState::Closed => PeerState::Closed,
        _ => PeerState::New,
    }
}

/// The first `a=mid:` of an SDP: with BUNDLE every candidate belongs to it. webrtc-rs leaves
/// `sdp_mid` empty in its candidates, and browsers reject a candidate whose mid matches nothing.
pub(crate) fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=mid:").map(String::from))
}

/// webrtc-rs does not advertise `a=max-message-size`, so remote peers assume the RFC 8841
/// default of 64 KiB. We read with a 256 KiB buffer: say so in the description we send.
pub(crate) fn advertise_max_message_size(sdp: &str) -> String {
    if sdp.contains("a=max-message-size:") {
        return sdp.to_string();
    }
    let mut out = String::with_capacity(sdp.len() + 32);
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("a=sctp-port:") {
            out.push_str(&format!("a=max-message-size:{MAX_RECV_MESSAGE_SIZE}\r\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_message_size_goes_after_the_sctp_port() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\na=mid:0\r\n";
        let out = advertise_max_message_size(sdp);
        assert!(out.contains("a=sctp-port:5000\r\na=max-message-size:262144\r\na=mid:0"), "{out}");
        assert_eq!(advertise_max_message_size(&out), out);
    }

    use super::*;

    #[test]
    fn first_mid_of_bundle() {
        assert_eq!(first_mid("v=0\r\nm=application 9 x\r\na=mid:0\r\nm=audio\r\na=mid:1\r\n").as_deref(), Some("0"));
        assert_eq!(first_mid("v=0\r\n"), None);
    }

    #[test]
    fn relay_policy_and_servers() {
        let mut c = Config::default();
        c.stun_servers = vec!["stun:127.0.0.1:3478".into()];
        let r = rtc_configuration(&c);
        assert_eq!(r.ice_servers.len(), 1);
        assert_eq!(r.ice_transport_policy, RTCIceTransportPolicy::All);
        assert!(rtc_configuration(&Config::default()).ice_servers.is_empty());
    }
}
