//! A transport: one signaling identity, a mesh of peer connections (at most `max_peers`),
//! sessions over them, data channels on them, and the event queue toward the application.
//!
//! Threads: a Tokio runtime of its own (`worker_threads`) runs webrtc-rs and the signaling
//! client; a dispatcher thread (only when an event handler is set) runs the application's
//! handler, so a slow handler never stalls a runtime worker. Public methods block on the
//! runtime and must not be called from its workers (they return `WouldBlock` there).

use crate::config::Config;
use crate::datachannel::{Channel, ChannelInfo, ChannelOptions, DEFAULT_LABEL};
use crate::dispatch::{Dispatch, Handler};
use crate::error::{Error, Result};
use crate::events::{BoundedQueue, Event, EventQueue, PeerState};
use crate::media::audio::{AudioFrame, AudioReceiveStats, AudioSendStats};
use crate::media::video::{VideoFrame, VideoReceiveStats, VideoSendStats};
use crate::peer;
use crate::session::{Session, Sessions};
use crate::signaling::client::{ClientEvent, ClientSettings, SignalingClient};
use crate::signaling::protocol::ServerEvent;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::api::API;
use webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState;
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

const TARGET: &str = "rmw::transport";
/// Remote candidates kept for a peer whose offer has not arrived yet.
const MAX_EARLY_CANDIDATES: usize = 64;
/// webrtc-rs starts DTLS right after ICE connects (same task, no I/O in between). A DTLS
/// transport still `new` this long after ICE connected was refused its start: see
/// `watch_dtls_start`.
const DTLS_START_GRACE: Duration = Duration::from_millis(1000);
/// Times a connection stuck that way is re-offered before the set-up deadline has to fail it.
const MAX_DTLS_RESTARTS: u32 = 3;

/// Process-wide, never reused: a stale channel or track id can never name a newer one.
static NEXT_CHANNEL_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_TRACK_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_PC_GENERATION: AtomicU64 = AtomicU64::new(1);

mod media;

pub use media::{AudioHandler, PeerMediaStats, VideoHandler};
pub type EventHandler = Handler<Event>;

/// Where a broadcast goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Peer(&'a str),
    Session(&'a str),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub state: &'static str,
    /// True when this side sent the offer.
    pub initiator: bool,
    pub channels: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransportStats {
    pub peer_id: String,
    pub signaling_connected: bool,
    pub peers: usize,
    pub connected_peers: usize,
    pub channels: usize,
    pub events_pending: usize,
    pub events_dropped: u64,
    pub audio_frames_pending: usize,
    /// Received audio frames dropped because the application did not take them in time.
    pub audio_frames_dropped: u64,
    pub audio_tracks: Vec<AudioSendStats>,
    pub remote_audio_tracks: Vec<AudioReceiveStats>,
    pub video_frames_pending: usize,
    /// Received video frames dropped because the application did not take them in time.
    pub video_frames_dropped: u64,
    pub video_tracks: Vec<VideoSendStats>,
    pub remote_video_tracks: Vec<VideoReceiveStats>,
    /// Per peer and kind: RTT, loss and jitter the peer reports, NACK/PLI/FIR it sent.
    pub peer_media: Vec<PeerMediaStats>,
}

pub struct Transport {
    inner: Arc<Inner>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    event_dispatch: Arc<Dispatch<Event>>,
    audio_dispatch: Arc<Dispatch<AudioFrame>>,
    video_dispatch: Arc<Dispatch<VideoFrame>>,
}

struct Inner {
    cfg: Config,
    local_id: String,
    api: API,
    rtc_config: RTCConfiguration,
    events: Arc<EventQueue>,
    audio_frames: Arc<BoundedQueue<AudioFrame>>,
    video_frames: Arc<BoundedQueue<VideoFrame>>,
    signaling: SignalingClient,
    state: Mutex<State>,
    /// Held while an offer or answer is being made or applied. Without it, our own
    /// `connect_peer` and the remote's offer could interleave during glare so that each side
    /// refuses the other's connection and nobody answers.
    negotiation: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

#[derive(Default)]
struct State {
    peers: HashMap<String, Peer>,
    /// Ids the signaling server told us about and that have not left.
    discovered: BTreeSet<String>,
    sessions: Sessions,
    channels: HashMap<u64, Arc<Channel>>,
    early_candidates: HashMap<String, Vec<RTCIceCandidateInit>>,
    /// Offers held while `auto_answer` is off.
    pending_offers: HashMap<String, String>,
    tracks: media::Tracks,
    /// Peers taken out of `peers` whose connection is still being closed (see `Closing`).
    closing: Arc<AtomicUsize>,
}

/// Held by a peer taken out of `peers` until it is dropped, i.e. until the handler that took it
/// has closed its connection. Counted under the state lock at the moment of the take, so
/// `Transport::close` never misses a close in progress.
struct Closing(Arc<AtomicUsize>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Peer {
    pc: Arc<RTCPeerConnection>,
    generation: u64,
    initiator: bool,
    awaiting_answer: bool,
    remote_described: bool,
    state: PeerState,
    /// mid of the first m-line of our description: the mid of every candidate we send.
    mid: String,
    local_description_sent: bool,
    queued_local_candidates: Vec<RTCIceCandidateInit>,
    channels: Vec<u64>,
    media: media::PeerMedia,
    closing: Option<Closing>,
    /// How many connections to this peer `restart_peer` replaced before this one.
    restarts: u32,
}

impl Peer {
    fn new(pc: Arc<RTCPeerConnection>, media: media::PeerMedia, generation: u64, initiator: bool) -> Peer {
        Peer {
            media,
            pc,
            generation,
            initiator,
            awaiting_answer: initiator,
            remote_described: false,
            state: PeerState::New,
            mid: "0".into(),
            local_description_sent: false,
            queued_local_candidates: Vec::new(),
            channels: Vec::new(),
            closing: None,
            restarts: 0,
        }
    }

    /// Closes a peer `State::take_peer` handed out; its `Closing` count ends when this returns.
    async fn close(self) {
        let _ = self.pc.close().await;
    }
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:08x}", h.finish() as u32)
}

impl Transport {
    /// Validates `cfg`, starts the runtime and begins connecting to the signaling server.
    /// `Event::SignalingConnected` tells when peers can be reached.
    pub fn new(mut cfg: Config) -> Result<Transport> {
        cfg.validate()?;
        if cfg.peer_id.is_empty() {
            cfg.peer_id = format!("peer-{}", random_suffix());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.worker_threads as usize)
            .thread_name("rmw-transport")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let events = Arc::new(EventQueue::new(cfg.event_queue_capacity as usize));
        let audio_frames = Arc::new(BoundedQueue::new(cfg.audio_queue_capacity as usize));
        let video_frames = Arc::new(BoundedQueue::new(cfg.video_queue_capacity as usize));
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        // Built here so a missing or unreadable CA file fails the create, not each connect.
        let tls_config = match cfg.signaling_url.starts_with("wss://") {
            true => Some(crate::signaling::tls::client_config(&cfg.signaling_ca_file)?),
            false => None,
        };
        let inner = {
            let _guard = runtime.enter();
            let signaling = SignalingClient::spawn(
                ClientSettings {
                    url: cfg.signaling_url.clone(),
                    peer_id: cfg.peer_id.clone(),
                    capabilities: cfg.capabilities.clone(),
                    reconnect_initial: Duration::from_millis(cfg.reconnect_initial_ms.into()),
                    reconnect_max: Duration::from_millis(cfg.reconnect_max_ms.into()),
                    token: cfg.signaling_token.clone(),
                    tls: tls_config,
                },
                sig_tx,
            );
            Arc::new(Inner {
                api: peer::build_api(&cfg)?,
                rtc_config: peer::rtc_configuration(&cfg),
                local_id: cfg.peer_id.clone(),
                cfg,
                events,
                audio_frames,
                video_frames,
                signaling,
                state: Mutex::new(State::default()),
                negotiation: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
            })
        };
        runtime.spawn(signal_loop(Arc::downgrade(&inner), sig_rx));
        tracing::info!(target: TARGET, peer_id = %inner.local_id, url = %inner.cfg.signaling_url, "transport created");
        Ok(Transport {
            inner,
            runtime: Mutex::new(Some(runtime)),
            handle,
            event_dispatch: Arc::new(Dispatch::new("rmw-events")),
            audio_dispatch: Arc::new(Dispatch::new("rmw-audio-out")),
            video_dispatch: Arc::new(Dispatch::new("rmw-video-out")),
        })
    }

    pub fn local_peer_id(&self) -> &str {
        &self.inner.local_id
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("transport is closed".into()));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::WouldBlock("blocking call from an async runtime thread (e.g. inside a log callback)".into()));
        }
        Ok(self.handle.block_on(f))
    }

    /// Next event, waiting up to `timeout` (None: until one comes or the transport closes).
    /// `Ok(None)` on timeout.
    pub fn poll_event(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.inner.events.pop(timeout).into_result()
    }

    /// Runs `handler` for every event on this transport's event thread (started on first
    /// use). `None` goes back to polling: events not yet handed to the handler stay queued.
    /// Unless called from inside the handler, returns after a handler call in progress has
    /// finished, so the old handler is not called afterwards. The handler may call any
    /// method, `close` included.
    pub fn set_event_handler(&self, handler: Option<EventHandler>) -> Result<()> {
        self.check_open()?;
        self.event_dispatch.set(&self.inner.events, handler)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("transport is closed".into()));
        }
        Ok(())
    }

    pub fn is_signaling_connected(&self) -> bool {
        self.inner.signaling.is_connected()
    }

    pub fn connect_peer(&self, remote: &str) -> Result<()> {
        let inner = self.inner.clone();
        self.block_on(async move { inner.connect_peer(remote).await })?
    }

    /// Answers the held offer of `remote` (when `auto_answer` is off).
    pub fn accept_peer(&self, remote: &str) -> Result<()> {
        let sdp = self.inner.state.lock().unwrap().pending_offers.remove(remote);
        let sdp = sdp.ok_or_else(|| Error::NotFound(format!("no pending offer from {remote}")))?;
        let inner = self.inner.clone();
        self.block_on(async move {
            let _negotiating = inner.negotiation.lock().await;
            inner.answer(remote, sdp, Vec::new()).await
        })?
    }

    /// Closes the connection to `remote` (or refuses its held offer) and tells it through
    /// signaling.
    pub fn disconnect_peer(&self, remote: &str) -> Result<()> {
        let inner = self.inner.clone();
        self.block_on(async move {
            let (peer, offer) = {
                let mut st = inner.state.lock().unwrap();
                (st.take_peer(remote), st.pending_offers.remove(remote))
            };
            if peer.is_none() && offer.is_none() {
                return Err(Error::NotFound(format!("peer {remote}")));
            }
            let _ = inner.signaling.send("disconnect", json!({"peer_id": remote}));
            if let Some(p) = peer {
                inner.close_and_report(remote.into(), p).await;
            }
            Ok(())
        })?
    }

    /// Every peer connection with its state.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let st = self.inner.state.lock().unwrap();
        let mut v: Vec<PeerInfo> = st
            .peers
            .iter()
            .map(|(id, p)| PeerInfo { peer_id: id.clone(), state: p.state.as_str(), initiator: p.initiator, channels: p.channels.clone() })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        v
    }

    pub fn connected_peers(&self) -> Vec<String> {
        self.peers().into_iter().filter(|p| p.state == PeerState::Connected.as_str()).map(|p| p.peer_id).collect()
    }

    pub fn peer_state(&self, remote: &str) -> Result<PeerState> {
        let st = self.inner.state.lock().unwrap();
        st.peers.get(remote).map(|p| p.state).ok_or_else(|| Error::NotFound(format!("peer {remote}")))
    }

    /// Peers present on the signaling server, as far as this transport has been told.
    pub fn discovered_peers(&self) -> Vec<String> {
        self.inner.state.lock().unwrap().discovered.iter().cloned().collect()
    }

    /// Asks the signaling server for its peer list (`list_peers`).
    pub fn list_signaling_peers(&self) -> Result<Value> {
        let inner = self.inner.clone();
        self.block_on(async move { inner.signaling.call("list_peers", json!({})).await })?
    }

    pub fn create_session(&self, id: &str) -> Result<()> {
        self.inner.state.lock().unwrap().sessions.create(id)
    }

    pub fn remove_session(&self, id: &str) -> Result<()> {
        self.inner.state.lock().unwrap().sessions.remove(id)
    }

    pub fn session(&self, id: &str) -> Result<Session> {
        self.inner.state.lock().unwrap().sessions.get(id).cloned()
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.inner.state.lock().unwrap().sessions.list()
    }

    /// Adds a peer of this transport's mesh to a session.
    pub fn add_session_peer(&self, id: &str, peer_id: &str) -> Result<()> {
        let mut st = self.inner.state.lock().unwrap();
        if !st.peers.contains_key(peer_id) {
            return Err(Error::NotFound(format!("peer {peer_id}")));
        }
        st.sessions.add_peer(id, peer_id)
    }

    pub fn remove_session_peer(&self, id: &str, peer_id: &str) -> Result<()> {
        self.inner.state.lock().unwrap().sessions.remove_peer(id, peer_id)
    }

    /// Creates a channel to `peer_id`; it opens (event `DataChannelOpen`) once the connection is up.
    pub fn create_data_channel(&self, peer_id: &str, label: &str, opts: &ChannelOptions) -> Result<u64> {
        if label.len() > 1024 {
            return Err(Error::InvalidArgument(format!("label is {} bytes, at most 1024", label.len())));
        }
        let inner = self.inner.clone();
        self.block_on(async move {
            let (pc, generation) = {
                let st = inner.state.lock().unwrap();
                let p = st.peers.get(peer_id).ok_or_else(|| Error::NotFound(format!("peer {peer_id}")))?;
                (p.pc.clone(), p.generation)
            };
            let dc = pc.create_data_channel(label, Some(opts.to_init())).await?;
            let ch = Channel::new(NEXT_CHANNEL_ID.fetch_add(1, Ordering::Relaxed), peer_id, dc, true, false);
            inner.register_channel(peer_id, generation, ch.clone());
            Ok(ch.id)
        })?
    }

    fn channel(&self, id: u64) -> Result<Arc<Channel>> {
        self.inner.state.lock().unwrap().channels.get(&id).cloned().ok_or_else(|| Error::NotFound(format!("data channel {id}")))
    }

    pub fn has_channel(&self, id: u64) -> bool {
        self.inner.state.lock().unwrap().channels.contains_key(&id)
    }

    pub fn channel_info(&self, id: u64) -> Result<ChannelInfo> {
        Ok(self.channel(id)?.info())
    }

    pub fn channels(&self) -> Vec<ChannelInfo> {
        let st = self.inner.state.lock().unwrap();
        let mut v: Vec<ChannelInfo> = st.channels.values().map(|c| c.info()).collect();
        v.sort_by_key(|c| c.channel);
        v
    }

    pub fn send_on_channel(&self, id: u64, data: &[u8], binary: bool) -> Result<()> {
        let ch = self.channel(id)?;
        self.block_on(async move { ch.send(data, binary).await })?
    }

    pub fn channel_buffered_amount(&self, id: u64) -> Result<usize> {
        Ok(self.channel(id)?.buffered_amount())
    }

    pub fn set_channel_low_threshold(&self, id: u64, bytes: usize) -> Result<()> {
        self.channel(id)?.set_low_threshold(bytes);
        Ok(())
    }

    pub fn close_channel(&self, id: u64) -> Result<()> {
        let ch = self.channel(id)?;
        self.block_on(async move { ch.close().await })
    }

    /// Sends on the default channel of each connected peer of `target`; returns how many peers
    /// it went to. A peer whose default channel is not open yet is skipped.
    pub fn send_data(&self, target: Target<'_>, data: &[u8], binary: bool) -> Result<usize> {
        crate::datachannel::check_message_size(data.len())?;
        let channels: Vec<Arc<Channel>> = {
            let st = self.inner.state.lock().unwrap();
            let ids: Vec<String> = match target {
                Target::Peer(p) => {
                    if !st.peers.contains_key(p) {
                        return Err(Error::NotFound(format!("peer {p}")));
                    }
                    vec![p.to_string()]
                }
                Target::Session(s) => st.sessions.get(s)?.peers.iter().cloned().collect(),
                Target::All => st.peers.keys().cloned().collect(),
            };
            ids.iter()
                .filter_map(|p| st.peers.get(p))
                .flat_map(|p| p.channels.iter())
                .filter_map(|c| st.channels.get(c))
                .filter(|c| c.is_default && c.info().open)
                .cloned()
                .collect()
        };
        if let Target::Peer(p) = target {
            if channels.is_empty() {
                return Err(Error::NotConnected(format!("the default data channel to {p} is not open")));
            }
        }
        self.block_on(async move {
            let mut sent = 0;
            for ch in channels {
                match ch.send(data, binary).await {
                    Ok(()) => sent += 1,
                    // One named peer: its failure is the caller's answer.
                    Err(e) if matches!(target, Target::Peer(_)) => return Err(e),
                    // A broadcast goes on to the others; the count tells who got it.
                    Err(e) => tracing::warn!(target: TARGET, peer = %ch.peer_id, error = %e, "broadcast send failed"),
                }
            }
            Ok(sent)
        })?
    }

    pub fn stats(&self) -> TransportStats {
        let st = self.inner.state.lock().unwrap();
        let (audio_tracks, remote_audio_tracks, video_tracks, remote_video_tracks) = Transport::media_stats(&st);
        TransportStats {
            peer_id: self.inner.local_id.clone(),
            signaling_connected: self.inner.signaling.is_connected(),
            peers: st.peers.len(),
            connected_peers: st.peers.values().filter(|p| p.state == PeerState::Connected).count(),
            channels: st.channels.len(),
            events_pending: self.inner.events.len(),
            events_dropped: self.inner.events.dropped(),
            audio_frames_pending: self.inner.audio_frames.len(),
            audio_frames_dropped: self.inner.audio_frames.dropped(),
            audio_tracks,
            remote_audio_tracks,
            video_frames_pending: self.inner.video_frames.len(),
            video_frames_dropped: self.inner.video_frames.dropped(),
            video_tracks,
            remote_video_tracks,
            peer_media: Transport::peer_media_stats(&st),
        }
    }

    /// Closes every peer connection and channel, leaves the signaling server, stops the
    /// runtime and the dispatcher thread. Idempotent. Returns after the last handler call
    /// (unless called from inside the handler, which then is the last one).
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Encoder threads write through the runtime: stop them while it still runs.
        let mut tracks = std::mem::take(&mut self.inner.state.lock().unwrap().tracks);
        tracks.stop_all();
        let inner = self.inner.clone();
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let shutdown = async move {
            // A hang-up each peer hears at once (queued ahead of the close frame); without it
            // an established connection waits for ICE to time out (the server's `peer_left`
            // alone does not end one: it is also what a signaling restart looks like).
            let peers: Vec<String> = inner.state.lock().unwrap().peers.keys().cloned().collect();
            for peer_id in peers {
                let _ = inner.signaling.send("disconnect", json!({ "peer_id": peer_id }));
            }
            inner.signaling.close().await;
            let pcs: Vec<Arc<RTCPeerConnection>> = {
                let mut st = inner.state.lock().unwrap();
                st.channels.clear();
                st.peers.drain().map(|(_, p)| p.pc).collect()
            };
            let closes = pcs.iter().map(|pc| tokio::time::timeout(Duration::from_secs(2), pc.close()));
            futures_util::future::join_all(closes).await;
            // Closes a handler started (a peer that hung up or failed just now) must finish
            // before the runtime goes: dropped half-way they leave the peer's socket and
            // I/O driver open.
            let closing = inner.state.lock().unwrap().closing.clone();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while closing.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if !in_runtime {
            self.handle.block_on(shutdown);
        }
        self.inner.events.close();
        self.inner.audio_frames.close();
        self.inner.video_frames.close();
        self.event_dispatch.stop();
        self.audio_dispatch.stop();
        self.video_dispatch.stop();
        if let Some(rt) = self.runtime.lock().unwrap().take() {
            if in_runtime {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(5));
            }
        }
        tracing::info!(target: TARGET, peer_id = %self.inner.local_id, "transport closed");
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
}

async fn signal_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<ClientEvent>) {
    while let Some(ev) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        inner.on_signal(ev).await;
    }
}

impl State {
    /// Removes a peer with its channels (handles become invalid) and held candidates.
    fn take_peer(&mut self, id: &str) -> Option<Peer> {
        let mut p = self.peers.remove(id)?;
        self.closing.fetch_add(1, Ordering::AcqRel);
        p.closing = Some(Closing(self.closing.clone()));
        for c in &p.channels {
            self.channels.remove(c);
        }
        self.early_candidates.remove(id);
        Some(p)
    }
}

impl Inner {
    async fn on_signal(self: &Arc<Self>, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected { other_peers } => {
                self.events.push(Event::SignalingConnected);
                let new: Vec<String> = {
                    let mut st = self.state.lock().unwrap();
                    other_peers.into_iter().filter(|p| *p != self.local_id && st.discovered.insert(p.clone())).collect()
                };
                for p in new {
                    self.events.push(Event::PeerDiscovered { peer_id: p });
                }
            }
            ClientEvent::Disconnected { reason } => self.events.push(Event::SignalingDisconnected { reason }),
            ClientEvent::Error { message } => self.events.push(Event::Error { peer_id: None, message }),
            ClientEvent::Server(ServerEvent::PeerJoined { peer_id, .. }) => {
                if self.state.lock().unwrap().discovered.insert(peer_id.clone()) {
                    self.events.push(Event::PeerDiscovered { peer_id });
                }
            }
            ClientEvent::Server(ServerEvent::PeerLeft { peer_id }) => {
                // Its signaling socket closed. A live peer connection does not depend on it;
                // one still being set up cannot finish without signaling.
                let stale = {
                    let mut st = self.state.lock().unwrap();
                    st.discovered.remove(&peer_id);
                    st.pending_offers.remove(&peer_id);
                    st.early_candidates.remove(&peer_id);
                    let unfinished = st.peers.get(&peer_id).is_some_and(|p| p.state != PeerState::Connected);
                    if unfinished { st.take_peer(&peer_id) } else { None }
                };
                self.events.push(Event::PeerLeft { peer_id: peer_id.clone() });
                if let Some(p) = stale {
                    self.close_and_report(peer_id, p).await;
                }
            }
            ClientEvent::Server(ServerEvent::PeerDisconnected { peer_id }) => {
                let p = {
                    let mut st = self.state.lock().unwrap();
                    st.pending_offers.remove(&peer_id);
                    st.take_peer(&peer_id)
                };
                if let Some(p) = p {
                    self.close_and_report(peer_id, p).await;
                }
            }
            ClientEvent::Server(ServerEvent::Offer { from, sdp }) => {
                let _negotiating = self.negotiation.lock().await;
                self.on_offer(from, sdp).await
            }
            ClientEvent::Server(ServerEvent::Answer { from, sdp }) => {
                let result = {
                    let _negotiating = self.negotiation.lock().await;
                    self.on_answer(&from, sdp).await
                };
                if let Err(e) = result {
                    self.fail_peer(&from, format!("answer from {from}: {e}")).await;
                }
            }
            ClientEvent::Server(ServerEvent::IceCandidate { from, candidate, sdp_mid, sdp_mline_index }) => {
                self.on_remote_candidate(&from, candidate, sdp_mid, sdp_mline_index).await;
            }
        }
    }

    /// Closes a peer `State::take_peer` handed out and reports it closed.
    async fn close_and_report(&self, peer_id: String, p: Peer) {
        p.close().await;
        self.events.push(Event::PeerStateChanged { peer_id, state: PeerState::Closed });
    }

    /// Reports an error for one peer and drops its connection; other peers are untouched.
    async fn fail_peer(&self, remote: &str, message: String) {
        tracing::warn!(target: TARGET, peer = %remote, %message);
        self.events.push(Event::Error { peer_id: Some(remote.into()), message });
        let p = self.state.lock().unwrap().take_peer(remote);
        if let Some(p) = p {
            self.close_and_report(remote.into(), p).await;
        }
    }

    fn check_capacity(&self, st: &State, remote: &str) -> Result<()> {
        if remote == self.local_id {
            return Err(Error::InvalidArgument("cannot connect to ourselves".into()));
        }
        if st.peers.contains_key(remote) {
            return Err(Error::AlreadyExists(format!("peer {remote} is already connected or connecting")));
        }
        if st.peers.len() >= self.cfg.max_peers as usize {
            return Err(Error::MaxPeers(format!("{} peers of max_peers {} are in use", st.peers.len(), self.cfg.max_peers)));
        }
        Ok(())
    }

    async fn new_peer_connection(self: &Arc<Self>, remote: &str, generation: u64) -> Result<(Arc<RTCPeerConnection>, media::PeerMedia)> {
        let pc = Arc::new(self.api.new_peer_connection(self.rtc_config.clone()).await?);
        let media = self.add_senders(&pc).await?;
        // Handlers capture a Weak transport and plain values, never the connection itself:
        // a closure holding its own connection is a cycle that never frees (webrtc-rs #772).
        let (w, r) = (Arc::downgrade(self), remote.to_string());
        pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
            let (w, r) = (w.clone(), r.clone());
            Box::pin(async move {
                if let (Some(inner), Some(c)) = (w.upgrade(), c) {
                    match c.to_json() {
                        Ok(init) => inner.send_local_candidate(&r, generation, init),
                        Err(e) => tracing::warn!(target: TARGET, error = %e, "unserializable local candidate"),
                    }
                }
            })
        }));
        let (w, r) = (Arc::downgrade(self), remote.to_string());
        pc.on_peer_connection_state_change(Box::new(move |s| {
            let (w, r) = (w.clone(), r.clone());
            Box::pin(async move {
                if let Some(inner) = w.upgrade() {
                    inner.on_pc_state(&r, generation, peer::peer_state(s)).await;
                }
            })
        }));
        let (w, r, weak_pc) = (Arc::downgrade(self), remote.to_string(), Arc::downgrade(&pc));
        pc.on_ice_connection_state_change(Box::new(move |s: RTCIceConnectionState| {
            if s == RTCIceConnectionState::Connected {
                if let Some(inner) = w.upgrade() {
                    inner.watch_dtls_start(&r, generation, weak_pc.clone());
                }
            }
            Box::pin(async {})
        }));
        let (w, r) = (Arc::downgrade(self), remote.to_string());
        pc.on_data_channel(Box::new(move |dc| {
            let (w, r) = (w.clone(), r.clone());
            Box::pin(async move {
                if let Some(inner) = w.upgrade() {
                    let is_default = inner.cfg.enable_data_channel && dc.label() == DEFAULT_LABEL;
                    let ch = Channel::new(NEXT_CHANNEL_ID.fetch_add(1, Ordering::Relaxed), &r, dc, false, is_default);
                    inner.register_channel(&r, generation, ch);
                }
            })
        }));
        let (w, r, weak_pc) = (Arc::downgrade(self), remote.to_string(), Arc::downgrade(&pc));
        pc.on_track(Box::new(move |track, _receiver, _transceiver| {
            if let Some(inner) = w.upgrade() {
                inner.on_remote_track(&r, generation, track, weak_pc.clone());
            }
            Box::pin(async {})
        }));
        Ok((pc, media))
    }

    /// Adds a channel to the peer (if that connection is still current) and wires its events.
    fn register_channel(self: &Arc<Self>, remote: &str, generation: u64, ch: Arc<Channel>) {
        {
            let mut st = self.state.lock().unwrap();
            let Some(p) = st.peers.get_mut(remote).filter(|p| p.generation == generation) else { return };
            p.channels.push(ch.id);
            st.channels.insert(ch.id, ch.clone());
        }
        let w = Arc::downgrade(self);
        let (r, id) = (remote.to_string(), ch.id);
        ch.attach(&self.events, move |_| {
            if let Some(inner) = w.upgrade() {
                let mut st = inner.state.lock().unwrap();
                st.channels.remove(&id);
                if let Some(p) = st.peers.get_mut(&r) {
                    p.channels.retain(|c| *c != id);
                }
            }
        });
    }

    fn send_local_candidate(&self, remote: &str, generation: u64, mut init: RTCIceCandidateInit) {
        let mut st = self.state.lock().unwrap();
        let Some(p) = st.peers.get_mut(remote).filter(|p| p.generation == generation) else { return };
        init.sdp_mid = Some(p.mid.clone());
        init.sdp_mline_index = Some(0);
        if !p.local_description_sent {
            // Never let a candidate overtake the offer/answer it belongs to.
            p.queued_local_candidates.push(init);
            return;
        }
        drop(st);
        self.send_candidate(remote, init);
    }

    fn send_candidate(&self, remote: &str, c: RTCIceCandidateInit) {
        let params = json!({"to_peer_id": remote, "candidate": c.candidate, "sdp_mid": c.sdp_mid, "sdp_mline_index": c.sdp_mline_index});
        if let Err(e) = self.signaling.send("ice_candidate", params) {
            tracing::debug!(target: TARGET, peer = %remote, error = %e, "candidate not sent");
        }
    }

    /// Sends our description, then the candidates gathered meanwhile. An offer waits for the
    /// server's verdict, so offering to an id the server does not know fails at once
    /// (`NotFound`) instead of leaving a connection that can never complete.
    async fn send_description(&self, remote: &str, generation: u64, method: &str, sdp: &str) -> Result<()> {
        if !self.state.lock().unwrap().peers.get(remote).is_some_and(|p| p.generation == generation) {
            return Ok(()); // replaced meanwhile: this description belongs to nobody
        }
        let sdp = peer::advertise_max_message_size(sdp);
        let params = json!({"to_peer_id": remote, "sdp": sdp, "type": method});
        if method == "offer" {
            self.signaling.call(method, params).await?;
        } else {
            self.signaling.send(method, params)?;
        }
        let queued = {
            let mut st = self.state.lock().unwrap();
            let Some(p) = st.peers.get_mut(remote).filter(|p| p.generation == generation) else { return Ok(()) };
            p.local_description_sent = true;
            std::mem::take(&mut p.queued_local_candidates)
        };
        for c in queued {
            self.send_candidate(remote, c);
        }
        Ok(())
    }

    async fn on_pc_state(&self, remote: &str, generation: u64, state: PeerState) {
        let finished = {
            let mut st = self.state.lock().unwrap();
            let Some(p) = st.peers.get_mut(remote).filter(|p| p.generation == generation) else { return };
            if p.state == state {
                return;
            }
            p.state = state;
            if matches!(state, PeerState::Failed | PeerState::Closed) { st.take_peer(remote) } else { None }
        };
        tracing::debug!(target: TARGET, peer = %remote, state = state.as_str(), "peer state");
        self.events.push(Event::PeerStateChanged { peer_id: remote.into(), state });
        if let Some(p) = finished {
            // Not from inside this handler: webrtc-rs calls it from the ICE agent's
            // state-change task, and a close awaited there leaves the agent, and with it the
            // peer's UDP socket, alive until the transport is freed (webrtc-rs#174/#739;
            // tests/faults.rs counts the descriptors). The `Closing` guard it holds makes
            // freeing the transport wait for it.
            tokio::spawn(p.close());
        }
    }

    async fn connect_peer(self: &Arc<Self>, remote: &str) -> Result<()> {
        if remote.is_empty() || remote.len() > 256 {
            return Err(Error::InvalidArgument(format!("peer id must be 1..=256 bytes, got {}", remote.len())));
        }
        if !self.signaling.is_connected() {
            return Err(Error::NotConnected("signaling server not connected yet (wait for the signaling-connected event)".into()));
        }
        let _negotiating = self.negotiation.lock().await;
        if self.state.lock().unwrap().peers.contains_key(remote) {
            // Already connected or being connected (perhaps by the remote's own offer, in
            // glare): the caller's wish is fulfilled.
            return Ok(());
        }
        self.offer(remote, Vec::new(), 0).await
    }

    /// Opens a connection to `remote` and sends it our offer, with the channels of a replaced
    /// connection (`carried`, ids kept) and the default channel. The caller holds `negotiation`.
    async fn offer(self: &Arc<Self>, remote: &str, carried: Vec<Arc<Channel>>, restarts: u32) -> Result<()> {
        let (pc, generation) = self.open_peer(remote, true).await?;
        if let Some(p) = self.state.lock().unwrap().peers.get_mut(remote).filter(|p| p.generation == generation) {
            p.restarts = restarts;
        }
        let result = async {
            let mut has_default = false;
            for ch in carried {
                let dc = pc.create_data_channel(&ch.label, Some(ch.options.to_init())).await?;
                ch.rebind(dc);
                has_default |= ch.is_default;
                self.register_channel(remote, generation, ch);
            }
            if self.cfg.enable_data_channel && !has_default {
                let dc = pc.create_data_channel(DEFAULT_LABEL, Some(ChannelOptions::default().to_init())).await?;
                let ch = Channel::new(NEXT_CHANNEL_ID.fetch_add(1, Ordering::Relaxed), remote, dc, true, true);
                self.register_channel(remote, generation, ch);
            }
            let offer = pc.create_offer(None).await?;
            self.set_mid(remote, generation, &offer.sdp);
            let sdp = offer.sdp.clone();
            pc.set_local_description(offer).await?;
            self.send_description(remote, generation, "offer", &sdp).await
        }
        .await;
        if let Err(e) = &result {
            self.abandon_peer(remote, generation, "connect", e).await;
        }
        result
    }

    /// Creates the peer connection for `remote` and takes its slot. Capacity is checked before
    /// (cheap refusal) and again when taking the slot (another call may have raced us).
    async fn open_peer(self: &Arc<Self>, remote: &str, initiator: bool) -> Result<(Arc<RTCPeerConnection>, u64)> {
        self.check_capacity(&self.state.lock().unwrap(), remote)?;
        let generation = NEXT_PC_GENERATION.fetch_add(1, Ordering::Relaxed);
        let (pc, media) = self.new_peer_connection(remote, generation).await?;
        let taken = {
            let mut st = self.state.lock().unwrap();
            self.check_capacity(&st, remote).map(|()| st.peers.insert(remote.into(), Peer::new(pc.clone(), media, generation, initiator)))
        };
        if let Err(e) = taken {
            let _ = pc.close().await;
            return Err(e);
        }
        self.spawn_setup_deadline(remote, generation);
        Ok((pc, generation))
    }

    /// A connection that is still new or connecting after `ice_failed_timeout_ms` is failed
    /// with an error event: a peer whose offer or answer never arrives would otherwise wait
    /// forever, and so would a connection whose DTLS webrtc-rs refused to start more than
    /// `MAX_DTLS_RESTARTS` times in a row (see `watch_dtls_start`).
    fn spawn_setup_deadline(self: &Arc<Self>, remote: &str, generation: u64) {
        let limit = Duration::from_millis(self.cfg.ice_failed_timeout_ms.into());
        let (w, remote) = (Arc::downgrade(self), remote.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            let Some(inner) = w.upgrade() else { return };
            let stuck = inner.state.lock().unwrap().peers.get(&remote).is_some_and(|p| {
                p.generation == generation && matches!(p.state, PeerState::New | PeerState::Connecting)
            });
            if stuck {
                inner.fail_peer(&remote, format!("connection to {remote} not established within {} ms", limit.as_millis())).await;
            }
        });
    }

    /// webrtc-rs 0.17.2 starts DTLS once ICE connects and refuses to (ErrICEConnectionNotStarted,
    /// logged as "Failed to start manager dtls") if its ICE transport still reads `new`: that
    /// state is stored by a separate task that can lag behind the connection (webrtc-rs's
    /// version of pion/webrtc#1891, fixed there by pion/webrtc#2114). Nothing starts it later,
    /// so SCTP and every channel never open and both sides stay "connecting" for good. The side
    /// it happened to is the only one whose DTLS transport is still `new` after ICE connected:
    /// that side replaces the connection with a fresh offer (the remote answers it as a
    /// restart, see `on_offer`).
    fn watch_dtls_start(self: &Arc<Self>, remote: &str, generation: u64, pc: Weak<RTCPeerConnection>) {
        let (w, remote) = (Arc::downgrade(self), remote.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(DTLS_START_GRACE).await;
            let (Some(inner), Some(pc)) = (w.upgrade(), pc.upgrade()) else { return };
            let ice = pc.ice_connection_state();
            let refused = pc.dtls_transport().state() == RTCDtlsTransportState::New
                && matches!(ice, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed);
            drop(pc);
            if refused {
                inner.restart_peer(&remote, generation).await;
            }
        });
    }

    /// Replaces a connection that cannot complete by a new one we offer, keeping the channels
    /// this side made (their ids stay valid).
    async fn restart_peer(self: &Arc<Self>, remote: &str, generation: u64) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let _negotiating = self.negotiation.lock().await;
        let (old, carried, restarts) = {
            let mut st = self.state.lock().unwrap();
            let Some(p) = st.peers.get(remote).filter(|p| p.generation == generation && matches!(p.state, PeerState::New | PeerState::Connecting)) else { return };
            if p.restarts >= MAX_DTLS_RESTARTS {
                return; // the set-up deadline fails it
            }
            let restarts = p.restarts + 1;
            let carried: Vec<Arc<Channel>> = p.channels.iter().filter_map(|c| st.channels.get(c)).filter(|c| c.locally_created).cloned().collect();
            (st.take_peer(remote), carried, restarts)
        };
        let Some(old) = old else { return };
        tracing::warn!(target: TARGET, peer = %remote, restarts, "DTLS never started after ICE connected (webrtc-rs race); offering a new connection");
        old.close().await;
        if let Err(e) = self.offer(remote, carried, restarts).await {
            self.events.push(Event::Error { peer_id: Some(remote.into()), message: format!("restarting the connection to {remote}: {e}") });
        }
    }

    /// Undoes `open_peer` after a failed negotiation step, if the slot still holds that
    /// connection (a newer one for the same peer is left alone).
    async fn abandon_peer(&self, remote: &str, generation: u64, what: &str, e: &Error) {
        let p = {
            let mut st = self.state.lock().unwrap();
            if st.peers.get(remote).is_some_and(|p| p.generation == generation) { st.take_peer(remote) } else { None }
        };
        if let Some(p) = p {
            p.close().await;
        }
        tracing::warn!(target: TARGET, peer = %remote, error = %e, "{what} failed");
    }

    fn set_mid(&self, remote: &str, generation: u64, sdp: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(p) = st.peers.get_mut(remote).filter(|p| p.generation == generation) {
            p.mid = peer::first_mid(sdp).unwrap_or_else(|| "0".into());
        }
    }

    async fn on_offer(self: &Arc<Self>, from: String, sdp: String) {
        // Glare: both sides sent an offer. The side with the smaller id is "impolite" and keeps
        // its offer; the other drops its own connection and answers. Exactly one connection
        // results, whoever called first.
        let polite = self.local_id.as_str() > from.as_str();
        let (replaced, carried) = {
            let mut st = self.state.lock().unwrap();
            match st.peers.get(&from) {
                Some(p) if p.awaiting_answer && !polite => {
                    tracing::debug!(target: TARGET, peer = %from, "glare: ignoring the remote offer (we are impolite)");
                    return;
                }
                Some(_) => {
                    // Glare (we are polite) or a new offer on an existing connection (the remote
                    // restarted): replace the connection, keeping the channels this side made.
                    let carried: Vec<Arc<Channel>> = st.peers[&from]
                        .channels
                        .iter()
                        .filter_map(|c| st.channels.get(c))
                        .filter(|c| c.locally_created && !c.is_default)
                        .cloned()
                        .collect();
                    let early = st.early_candidates.remove(&from);
                    let old = st.take_peer(&from);
                    if let Some(e) = early {
                        st.early_candidates.insert(from.clone(), e);
                    }
                    (old, carried)
                }
                None => (None, Vec::new()),
            }
        };
        if let Some(old) = replaced {
            tracing::debug!(target: TARGET, peer = %from, "replacing the connection with the remote's offer");
            old.close().await;
        } else if !self.cfg.auto_answer {
            self.state.lock().unwrap().pending_offers.insert(from.clone(), sdp);
            self.events.push(Event::PeerOffer { peer_id: from });
            return;
        }
        if let Err(e) = self.answer(&from, sdp, carried).await {
            self.events.push(Event::Error { peer_id: Some(from.clone()), message: format!("answering {from}: {e}") });
        }
    }

    async fn answer(self: &Arc<Self>, remote: &str, sdp: String, carried: Vec<Arc<Channel>>) -> Result<()> {
        let (pc, generation) = self.open_peer(remote, false).await?;
        let result = async {
            let offer = RTCSessionDescription::offer(sdp).map_err(|e| Error::WebRtc(format!("malformed offer: {e}")))?;
            pc.set_remote_description(offer).await?;
            self.settle_video_codec(remote, generation).await;
            self.flush_early_candidates(remote, generation, &pc).await;
            for ch in carried {
                let dc = pc.create_data_channel(&ch.label, Some(ch.options.to_init())).await?;
                ch.rebind(dc);
                self.register_channel(remote, generation, ch);
            }
            let answer = pc.create_answer(None).await?;
            self.set_mid(remote, generation, &answer.sdp);
            // Send the answer before applying it: applying starts our ICE agent, whose first
            // checks would otherwise reach the offerer before it knows our credentials.
            self.send_description(remote, generation, "answer", &answer.sdp).await?;
            Ok(pc.set_local_description(answer).await?)
        }
        .await;
        if let Err(e) = &result {
            self.abandon_peer(remote, generation, "answer", e).await;
        }
        result
    }

    async fn on_answer(&self, from: &str, sdp: String) -> Result<()> {
        let (pc, generation) = {
            let st = self.state.lock().unwrap();
            match st.peers.get(from) {
                Some(p) if p.awaiting_answer => (p.pc.clone(), p.generation),
                _ => {
                    // E.g. the impolite side's answer to an offer it already replaced: harmless.
                    tracing::debug!(target: TARGET, peer = %from, "ignoring an answer we did not ask for");
                    return Ok(());
                }
            }
        };
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| Error::WebRtc(format!("malformed answer: {e}")))?;
        pc.set_remote_description(answer).await?;
        self.settle_video_codec(from, generation).await;
        if let Some(p) = self.state.lock().unwrap().peers.get_mut(from).filter(|p| p.generation == generation) {
            p.awaiting_answer = false;
        }
        self.flush_early_candidates(from, generation, &pc).await;
        Ok(())
    }

    /// Marks the remote description as set and applies the candidates that came before it.
    async fn flush_early_candidates(&self, remote: &str, generation: u64, pc: &RTCPeerConnection) {
        let early = {
            let mut st = self.state.lock().unwrap();
            match st.peers.get_mut(remote).filter(|p| p.generation == generation) {
                Some(p) => p.remote_described = true,
                None => return,
            }
            st.early_candidates.remove(remote).unwrap_or_default()
        };
        for c in early {
            if let Err(e) = pc.add_ice_candidate(c).await {
                self.events.push(Event::Error { peer_id: Some(remote.into()), message: format!("bad ICE candidate from {remote}: {e}") });
            }
        }
    }

    async fn on_remote_candidate(&self, from: &str, candidate: String, sdp_mid: Option<String>, sdp_mline_index: Option<u16>) {
        if candidate.trim().is_empty() {
            return; // end-of-candidates marker
        }
        let init = RTCIceCandidateInit { candidate, sdp_mid, sdp_mline_index, username_fragment: None };
        let pc = {
            let mut st = self.state.lock().unwrap();
            match st.peers.get(from) {
                Some(p) if p.remote_described => p.pc.clone(),
                _ => {
                    let q = st.early_candidates.entry(from.to_string()).or_default();
                    if q.len() < MAX_EARLY_CANDIDATES {
                        q.push(init);
                    }
                    return;
                }
            }
        };
        if let Err(e) = pc.add_ice_candidate(init).await {
            self.events.push(Event::Error { peer_id: Some(from.into()), message: format!("bad ICE candidate from {from}: {e}") });
        }
    }
}
