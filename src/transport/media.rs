//! The transport's media: outgoing audio and video tracks aimed at peers, sessions or
//! everyone; remote tracks and their receive pipelines; the per-peer senders they share.
//!
//! Each peer connection carries one sender per kind from the start (see docs/ARCHITECTURE.md,
//! "Why every peer connection carries media m-lines"). A sender is held by one track at a
//! time, claimed by the first frame that reaches it and released when the track goes or
//! is re-aimed.

use super::{Inner, NEXT_TRACK_ID, State, Transport};
use crate::dispatch::Handler;
use crate::error::{Error, Result};
use crate::events::{Event, MediaKind};
use crate::media::audio::receive::{ReceiveSettings as AudioSettings, RemoteAudio};
use crate::media::audio::send::AudioTrack;
use crate::media::audio::{AudioFrame, AudioReceiveStats, AudioSendConfig, AudioSendStats, Pcm};
use crate::media::rtp::PeerSender;
use crate::media::video::receive::{ReceiveSettings as VideoSettings, RemoteVideo};
use crate::media::video::send::VideoTrack;
use crate::media::video::{RawFrame, VideoCodec, VideoFrame, VideoReceiveStats, VideoSendConfig, VideoSendStats};
use crate::media::TrackTarget;
use crate::peer;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_remote::TrackRemote;

const TARGET: &str = "rmw::transport";

pub type AudioHandler = Handler<AudioFrame>;
pub type VideoHandler = Handler<VideoFrame>;

/// Our sender of one kind to one peer, as the peer reports on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeerMediaStats {
    pub peer_id: String,
    pub kind: &'static str,
    /// The codec negotiated with this peer ("opus", "vp8", "vp9").
    pub codec: String,
    /// The track sending to this peer now, if any (core id).
    pub track: Option<u64>,
    #[serde(flatten)]
    pub feedback: crate::media::Feedback,
}

/// One kind's sender to a peer and the track holding it.
#[derive(Default)]
pub(super) struct Slot {
    out: Option<Arc<PeerSender>>,
    owner: Option<u64>,
}

/// A peer's media state.
#[derive(Default)]
pub(super) struct PeerMedia {
    audio: Slot,
    video: Slot,
    /// The video transceiver's sender, to read what codec was negotiated.
    video_rtp_sender: Option<Arc<RTCRtpSender>>,
    remote_audio: Vec<Arc<RemoteAudio>>,
    remote_video: Vec<Arc<RemoteVideo>>,
}

impl PeerMedia {
    fn slot(&mut self, kind: MediaKind) -> &mut Slot {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }
}

/// The outgoing tracks of a transport.
#[derive(Default)]
pub(super) struct Tracks {
    audio: std::collections::HashMap<u64, Arc<AudioTrack>>,
    video: std::collections::HashMap<u64, Arc<VideoTrack>>,
}

impl Tracks {
    /// Stops every track (their threads write through the runtime: call while it runs).
    pub(super) fn stop_all(&mut self) {
        self.audio.drain().for_each(|(_, t)| t.stop());
        self.video.drain().for_each(|(_, t)| t.stop());
    }
}

/// A named peer or session must exist when a track is aimed at it (later departures are fine).
fn check_target(st: &State, target: &TrackTarget) -> Result<()> {
    match target {
        TrackTarget::Peer(p) if !st.peers.contains_key(p) => Err(Error::NotFound(format!("peer {p}"))),
        TrackTarget::Session(s) => st.sessions.get(s).map(|_| ()),
        _ => Ok(()),
    }
}

impl Transport {
    fn check_kind_enabled(&self, kind: MediaKind) -> Result<()> {
        self.check_open()?;
        let on = match kind {
            MediaKind::Audio => self.inner.cfg.enable_audio,
            MediaKind::Video => self.inner.cfg.enable_video,
        };
        if on { Ok(()) } else { Err(Error::InvalidArgument(format!("{} is disabled in this transport's config (enable_{0})", kind.as_str()))) }
    }

    fn resolver(&self, kind: MediaKind) -> crate::media::rtp::Resolver {
        let w = Arc::downgrade(&self.inner);
        Arc::new(move |t: &TrackTarget, id| w.upgrade().map(|i| i.resolve(kind, t, id)).unwrap_or_default())
    }

    // --- audio ---------------------------------------------------------------------------

    /// Starts an outgoing Opus track fed by `send_audio`, sending to `target` (peers that
    /// connect or join the session later included). Each peer carries at most one outgoing
    /// audio track: a peer that already carries another one is skipped (counted as busy).
    pub fn add_audio_track(&self, target: TrackTarget, cfg: AudioSendConfig) -> Result<u64> {
        self.check_kind_enabled(MediaKind::Audio)?;
        check_target(&self.inner.state.lock().unwrap(), &target)?;
        let id = NEXT_TRACK_ID.fetch_add(1, Ordering::Relaxed);
        let track = AudioTrack::start(id, cfg, target, self.resolver(MediaKind::Audio), self.handle.clone())?;
        self.inner.state.lock().unwrap().tracks.audio.insert(id, track);
        Ok(id)
    }

    fn audio_track(&self, id: u64) -> Result<Arc<AudioTrack>> {
        self.inner.state.lock().unwrap().tracks.audio.get(&id).cloned().ok_or_else(|| Error::NotFound(format!("audio track {id}")))
    }

    pub fn has_audio_track(&self, id: u64) -> bool {
        self.inner.state.lock().unwrap().tracks.audio.contains_key(&id)
    }

    /// Queues interleaved PCM for track `id` and returns at once (`QueueFull` when the
    /// encoder is more than the track's `max_queue_ms` behind).
    pub fn send_audio(&self, id: u64, pcm: Pcm<'_>) -> Result<()> {
        self.audio_track(id)?.send(pcm)
    }

    pub fn set_audio_track_target(&self, id: u64, target: TrackTarget) -> Result<()> {
        let track = self.audio_track(id)?;
        check_target(&self.inner.state.lock().unwrap(), &target)?;
        track.set_target(target);
        self.inner.release(MediaKind::Audio, id);
        Ok(())
    }

    /// Stops the track (PCM already queued is still sent) and frees the peers it held.
    pub fn remove_audio_track(&self, id: u64) -> Result<()> {
        let track = self.inner.state.lock().unwrap().tracks.audio.remove(&id).ok_or_else(|| Error::NotFound(format!("audio track {id}")))?;
        track.stop();
        self.inner.release(MediaKind::Audio, id);
        Ok(())
    }

    pub fn audio_track_config(&self, id: u64) -> Result<AudioSendConfig> {
        Ok(self.audio_track(id)?.cfg.clone())
    }

    pub fn audio_track_stats(&self, id: u64) -> Result<AudioSendStats> {
        Ok(self.audio_track(id)?.stats())
    }

    /// Next decoded audio frame from any remote track, waiting up to `timeout`.
    pub fn poll_audio(&self, timeout: Option<Duration>) -> Result<Option<AudioFrame>> {
        self.inner.audio_frames.pop(timeout).into_result()
    }

    /// Runs `handler` for every decoded audio frame on this transport's audio thread, with the
    /// same rules as `set_event_handler`.
    pub fn set_audio_handler(&self, handler: Option<AudioHandler>) -> Result<()> {
        self.check_open()?;
        self.audio_dispatch.set(&self.inner.audio_frames, handler)
    }

    // --- video ---------------------------------------------------------------------------

    /// Starts an outgoing video track fed by `send_video`, sending to `target`; each peer gets
    /// the codec negotiated with it (VP8 or VP9), encoded once per codec. One outgoing video
    /// track per peer, as for audio.
    pub fn add_video_track(&self, target: TrackTarget, cfg: VideoSendConfig) -> Result<u64> {
        self.check_kind_enabled(MediaKind::Video)?;
        check_target(&self.inner.state.lock().unwrap(), &target)?;
        let id = NEXT_TRACK_ID.fetch_add(1, Ordering::Relaxed);
        let track = VideoTrack::start(id, cfg, target, self.resolver(MediaKind::Video), self.handle.clone())?;
        self.inner.state.lock().unwrap().tracks.video.insert(id, track);
        Ok(id)
    }

    fn video_track(&self, id: u64) -> Result<Arc<VideoTrack>> {
        self.inner.state.lock().unwrap().tracks.video.get(&id).cloned().ok_or_else(|| Error::NotFound(format!("video track {id}")))
    }

    pub fn has_video_track(&self, id: u64) -> bool {
        self.inner.state.lock().unwrap().tracks.video.contains_key(&id)
    }

    /// Copies the frame for track `id` and returns at once; if the encoder has not taken the
    /// previous frame yet, that one is dropped (the newest frame wins).
    pub fn send_video(&self, id: u64, frame: &RawFrame<'_>) -> Result<()> {
        self.video_track(id)?.send(frame)
    }

    pub fn set_video_track_target(&self, id: u64, target: TrackTarget) -> Result<()> {
        let track = self.video_track(id)?;
        check_target(&self.inner.state.lock().unwrap(), &target)?;
        track.set_target(target);
        self.inner.release(MediaKind::Video, id);
        Ok(())
    }

    pub fn set_video_bitrate(&self, id: u64, kbps: u32) -> Result<()> {
        self.video_track(id)?.set_bitrate(kbps)
    }

    /// The next frame of the track is encoded as a keyframe.
    pub fn request_video_keyframe(&self, id: u64) -> Result<()> {
        self.video_track(id)?.request_keyframe();
        Ok(())
    }

    pub fn remove_video_track(&self, id: u64) -> Result<()> {
        let track = self.inner.state.lock().unwrap().tracks.video.remove(&id).ok_or_else(|| Error::NotFound(format!("video track {id}")))?;
        track.stop();
        self.inner.release(MediaKind::Video, id);
        Ok(())
    }

    pub fn video_track_config(&self, id: u64) -> Result<VideoSendConfig> {
        Ok(self.video_track(id)?.cfg.clone())
    }

    pub fn video_track_stats(&self, id: u64) -> Result<VideoSendStats> {
        Ok(self.video_track(id)?.stats())
    }

    /// Next decoded video frame from any remote track, waiting up to `timeout`.
    pub fn poll_video(&self, timeout: Option<Duration>) -> Result<Option<VideoFrame>> {
        self.inner.video_frames.pop(timeout).into_result()
    }

    /// Runs `handler` for every decoded video frame on this transport's video thread.
    pub fn set_video_handler(&self, handler: Option<VideoHandler>) -> Result<()> {
        self.check_open()?;
        self.video_dispatch.set(&self.inner.video_frames, handler)
    }

    // --- stats ---------------------------------------------------------------------------

    /// What each peer's RTCP says about our audio and video to it.
    pub(super) fn peer_media_stats(st: &State) -> Vec<PeerMediaStats> {
        let mut v = Vec::new();
        for (id, p) in &st.peers {
            for (kind, slot) in [(MediaKind::Audio, &p.media.audio), (MediaKind::Video, &p.media.video)] {
                if let Some(s) = &slot.out {
                    let codec = s.mime_type().to_ascii_lowercase();
                    let codec = codec.rsplit('/').next().unwrap_or_default().to_string();
                    v.push(PeerMediaStats { peer_id: id.clone(), kind: kind.as_str(), codec, track: slot.owner, feedback: s.feedback.lock().unwrap().clone() });
                }
            }
        }
        v.sort_by(|a, b| (&a.peer_id, a.kind).cmp(&(&b.peer_id, b.kind)));
        v
    }

    pub(super) fn media_stats(st: &State) -> (Vec<AudioSendStats>, Vec<AudioReceiveStats>, Vec<VideoSendStats>, Vec<VideoReceiveStats>) {
        let mut a: Vec<AudioSendStats> = st.tracks.audio.values().map(|t| t.stats()).collect();
        a.sort_by_key(|s| s.track);
        let mut v: Vec<VideoSendStats> = st.tracks.video.values().map(|t| t.stats()).collect();
        v.sort_by_key(|s| s.track);
        let mut ra: Vec<AudioReceiveStats> = st.peers.values().flat_map(|p| p.media.remote_audio.iter()).map(|r| r.stats.lock().unwrap().clone()).collect();
        ra.sort_by(|a, b| (&a.peer_id, &a.track_id).cmp(&(&b.peer_id, &b.track_id)));
        let mut rv: Vec<VideoReceiveStats> = st.peers.values().flat_map(|p| p.media.remote_video.iter()).map(|r| r.stats.lock().unwrap().clone()).collect();
        rv.sort_by(|a, b| (&a.peer_id, &a.track_id).cmp(&(&b.peer_id, &b.track_id)));
        (a, ra, v, rv)
    }
}

impl Inner {
    /// Adds our senders to a new connection, before any description (webrtc-rs 0.17 answers
    /// recvonly for a kind whose track is added after the offer was applied).
    pub(super) async fn add_senders(&self, pc: &Arc<webrtc::peer_connection::RTCPeerConnection>) -> Result<PeerMedia> {
        let mut m = PeerMedia::default();
        if self.cfg.enable_audio {
            m.audio.out = Some(peer::add_audio_sender(pc, &self.local_id).await?);
        }
        if self.cfg.enable_video {
            let (sender, rtp_sender) = peer::add_video_sender(pc, &self.local_id, self.cfg.preferred_video_codec()).await?;
            m.video.out = Some(sender);
            m.video_rtp_sender = Some(rtp_sender);
        }
        Ok(m)
    }

    /// After the remote description: if the peer did not accept the codec our video sender was
    /// made with, rebind it with the best one it did accept (ours first, then its order).
    pub(super) async fn settle_video_codec(&self, remote: &str, generation: u64) {
        let (out, rtp_sender) = {
            let st = self.state.lock().unwrap();
            let Some(p) = st.peers.get(remote).filter(|p| p.generation == generation) else { return };
            match (&p.media.video.out, &p.media.video_rtp_sender) {
                (Some(o), Some(s)) => (o.clone(), s.clone()),
                _ => return,
            }
        };
        let negotiated: Vec<_> = rtp_sender.get_parameters().await.rtp_parameters.codecs.into_iter().filter(|c| VideoCodec::from_mime(&c.capability.mime_type).is_some()).collect();
        let preferred = self.cfg.preferred_video_codec();
        let Some(chosen) = negotiated.iter().find(|c| VideoCodec::from_mime(&c.capability.mime_type) == Some(preferred)).or(negotiated.first()) else {
            return; // no video with this peer
        };
        if chosen.capability.mime_type.eq_ignore_ascii_case(&out.mime_type()) {
            return;
        }
        let track = peer::video_rtp_track(chosen.capability.clone(), &self.local_id);
        match rtp_sender.replace_track(Some(track.clone() as Arc<dyn webrtc::track::track_local::TrackLocal + Send + Sync>)).await {
            Ok(()) => {
                out.replace_rtp(track);
                tracing::debug!(target: TARGET, peer = %remote, codec = %chosen.capability.mime_type, "video codec settled");
            }
            Err(e) => tracing::warn!(target: TARGET, peer = %remote, error = %e, "cannot switch the video codec"),
        }
    }

    /// Frees the peers' senders of `kind` held by track `id`; the next frame claims anew.
    pub(super) fn release(&self, kind: MediaKind, id: u64) {
        for p in self.state.lock().unwrap().peers.values_mut() {
            let slot = p.media.slot(kind);
            if slot.owner == Some(id) {
                slot.owner = None;
            }
        }
    }

    /// For one frame of track `track`: the senders of `kind` of the peers `target` names that
    /// are free or already held by this track (claimed on first use), and how many were busy.
    fn resolve(&self, kind: MediaKind, target: &TrackTarget, track: u64) -> (Vec<Arc<PeerSender>>, usize) {
        let mut st = self.state.lock().unwrap();
        let ids: Vec<String> = match target {
            TrackTarget::None => return (Vec::new(), 0),
            TrackTarget::Peer(p) => vec![p.clone()],
            TrackTarget::Session(s) => st.sessions.get(s).map(|s| s.peers.iter().cloned().collect()).unwrap_or_default(),
            TrackTarget::All => st.peers.keys().cloned().collect(),
        };
        let (mut out, mut busy) = (Vec::with_capacity(ids.len()), 0);
        for id in ids {
            let Some(p) = st.peers.get_mut(&id) else { continue };
            let slot = p.media.slot(kind);
            let Some(sender) = &slot.out else { continue };
            match slot.owner {
                Some(owner) if owner != track => busy += 1,
                _ => {
                    slot.owner = Some(track);
                    out.push(sender.clone());
                }
            }
        }
        (out, busy)
    }

    /// A remote track arrived (its first packet did): announce it and start its receive
    /// pipeline.
    pub(super) fn on_remote_track(self: &Arc<Self>, remote: &str, generation: u64, track: Arc<TrackRemote>, pc: std::sync::Weak<webrtc::peer_connection::RTCPeerConnection>) {
        let codec = track.codec();
        let mime = codec.capability.mime_type.to_ascii_lowercase();
        let track_id = match track.id() {
            id if id.is_empty() => format!("{}-{}", track.kind(), track.ssrc()),
            id => id,
        };
        let kind = MediaKind::of(track.kind());
        let added = Event::TrackAdded {
            peer_id: remote.into(),
            track_id: track_id.clone(),
            kind,
            codec: mime.trim_start_matches("audio/").trim_start_matches("video/").to_string(),
            clock_rate: codec.capability.clock_rate,
            channels: codec.capability.channels,
        };
        let (w, r) = (Arc::downgrade(self), remote.to_string());
        let report: crate::media::ReportFailure = {
            let (w, peer_id) = (w.clone(), r.clone());
            Box::new(move |message| {
                if let Some(inner) = w.upgrade() {
                    inner.events.push(Event::Error { peer_id: Some(peer_id.clone()), message });
                }
            })
        };
        match (kind, VideoCodec::from_mime(&mime)) {
            (MediaKind::Audio, _) if mime == "audio/opus" => {
                let ra = Arc::new(RemoteAudio {
                    stats: Mutex::new(AudioReceiveStats { peer_id: remote.into(), track_id: track_id.clone(), codec: "opus".into(), ..Default::default() }),
                });
                if !self.with_peer(remote, generation, |m| m.remote_audio.push(ra.clone())) {
                    return;
                }
                self.events.push(added);
                let settings = AudioSettings {
                    rate: self.cfg.audio_output_sample_rate,
                    channels: self.cfg.audio_output_channels as u16,
                    format: self.cfg.audio_output_format,
                    max_wait: Duration::from_millis(self.cfg.jitter_buffer_size_ms.into()),
                };
                let sink = self.audio_frames.clone();
                tokio::spawn(async move {
                    crate::media::audio::receive::run(track, ra.clone(), settings, sink, report).await;
                    if let Some(inner) = w.upgrade() {
                        inner.with_peer_any(&r, |m| m.remote_audio.retain(|a| !Arc::ptr_eq(a, &ra)));
                        inner.events.push(Event::TrackRemoved { peer_id: r, track_id, kind: MediaKind::Audio });
                    }
                });
            }
            (MediaKind::Video, Some(vc)) => {
                let rv = Arc::new(RemoteVideo {
                    stats: Mutex::new(VideoReceiveStats { peer_id: remote.into(), track_id: track_id.clone(), codec: vc.name().into(), ..Default::default() }),
                });
                if !self.with_peer(remote, generation, |m| m.remote_video.push(rv.clone())) {
                    return;
                }
                self.events.push(added);
                let settings = VideoSettings { format: self.cfg.video_output_format, max_wait: Duration::from_millis(self.cfg.video_max_delay_ms.into()) };
                let media_ssrc = track.ssrc();
                let request_keyframe = Box::new(move || {
                    if let Some(pc) = pc.upgrade() {
                        tokio::spawn(async move {
                            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
                            let _ = pc.write_rtcp(&[Box::new(pli)]).await;
                        });
                    }
                });
                let sink = self.video_frames.clone();
                tokio::spawn(async move {
                    crate::media::video::receive::run(track, vc, rv.clone(), settings, sink, request_keyframe, report).await;
                    if let Some(inner) = w.upgrade() {
                        inner.with_peer_any(&r, |m| m.remote_video.retain(|v| !Arc::ptr_eq(v, &rv)));
                        inner.events.push(Event::TrackRemoved { peer_id: r, track_id, kind: MediaKind::Video });
                    }
                });
            }
            _ => {
                // A codec we cannot decode (should not be negotiated): announced, not decoded.
                self.events.push(added);
            }
        }
    }

    /// Runs `f` on the media of the peer's current connection; false if it is gone.
    fn with_peer(&self, remote: &str, generation: u64, f: impl FnOnce(&mut PeerMedia)) -> bool {
        let mut st = self.state.lock().unwrap();
        match st.peers.get_mut(remote).filter(|p| p.generation == generation) {
            Some(p) => {
                f(&mut p.media);
                true
            }
            None => false,
        }
    }

    fn with_peer_any(&self, remote: &str, f: impl FnOnce(&mut PeerMedia)) {
        if let Some(p) = self.state.lock().unwrap().peers.get_mut(remote) {
            f(&mut p.media);
        }
    }
}
