//! Events toward the application: one bounded queue per transport, drained either by `poll`
//! or by a dispatcher thread that runs the application's handler. Producers (webrtc-rs
//! callbacks, the signaling task) never wait: when the application does not keep up, the
//! oldest event is dropped and counted.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// State of one peer connection, mirroring `RTCPeerConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::New => "new",
            PeerState::Connecting => "connecting",
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Failed => "failed",
            PeerState::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub(crate) fn of(kind: webrtc::rtp_transceiver::rtp_codec::RTPCodecType) -> MediaKind {
        if kind == webrtc::rtp_transceiver::rtp_codec::RTPCodecType::Video { MediaKind::Video } else { MediaKind::Audio }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Announced on the signaling server (also after each reconnect).
    SignalingConnected,
    SignalingDisconnected { reason: String },
    /// Another peer is present on the signaling server (listed at announce, or joined later).
    PeerDiscovered { peer_id: String },
    /// A peer's signaling connection closed. An established peer connection may live on.
    PeerLeft { peer_id: String },
    /// An offer arrived while `auto_answer` is off: accept it or disconnect the peer.
    PeerOffer { peer_id: String },
    PeerStateChanged { peer_id: String, state: PeerState },
    DataChannelOpen { peer_id: String, channel: u64, label: String },
    DataChannelClose { peer_id: String, channel: u64, label: String },
    DataChannelMessage { peer_id: String, channel: u64, label: String, data: Bytes, binary: bool },
    DataChannelBufferedAmountLow { peer_id: String, channel: u64, label: String },
    /// The peer started sending a track. `codec` is lower case ("opus"); audio frames of it
    /// follow through `poll_audio` / the audio handler.
    TrackAdded { peer_id: String, track_id: String, kind: MediaKind, codec: String, clock_rate: u32, channels: u16 },
    /// The track ended (removed by the peer or its connection closed).
    TrackRemoved { peer_id: String, track_id: String, kind: MediaKind },
    Error { peer_id: Option<String>, message: String },
}

/// The transport's event queue.
pub(crate) type EventQueue = BoundedQueue<Event>;

/// A bounded multi-producer queue toward the application: producers never wait; when it is
/// full the oldest item is dropped and counted. Used for events and for media frames.
pub(crate) struct BoundedQueue<T> {
    inner: Mutex<QueueState<T>>,
    ready: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

struct QueueState<T> {
    events: VecDeque<T>,
    closed: bool,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Pop<T = Event> {
    Event(T),
    Timeout,
    Closed,
}

impl<T> Pop<T> {
    /// For a transport's poll methods: the item, `None` on timeout, `Closed` once closed.
    pub fn into_result(self) -> crate::error::Result<Option<T>> {
        match self {
            Pop::Event(item) => Ok(Some(item)),
            Pop::Timeout => Ok(None),
            Pop::Closed => Err(crate::error::Error::Closed("transport is closed".into())),
        }
    }
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedQueue {
            inner: Mutex::new(QueueState { events: VecDeque::with_capacity(capacity.min(1024)), closed: false }),
            ready: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn push(&self, ev: T) {
        let mut q = self.inner.lock().unwrap();
        if q.closed {
            return;
        }
        if q.events.len() >= self.capacity {
            q.events.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.events.push_back(ev);
        drop(q);
        self.ready.notify_one();
    }

    /// Waits up to `timeout` (None: forever) for an event. Events queued before `close` are
    /// still handed out; `Closed` comes once the queue is closed and empty.
    pub fn pop(&self, timeout: Option<Duration>) -> Pop<T> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut q = self.inner.lock().unwrap();
        loop {
            if let Some(ev) = q.events.pop_front() {
                return Pop::Event(ev);
            }
            if q.closed {
                return Pop::Closed;
            }
            q = match deadline {
                None => self.ready.wait(q).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Pop::Timeout;
                    }
                    self.ready.wait_timeout(q, d - now).unwrap().0
                }
            };
        }
    }

    /// Stops accepting events, discards the pending ones and wakes every waiter.
    pub fn close(&self) {
        let mut q = self.inner.lock().unwrap();
        q.closed = true;
        q.events.clear();
        drop(q);
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.lock().unwrap().closed
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> Event {
        Event::PeerDiscovered { peer_id: i.to_string() }
    }

    #[test]
    fn drops_oldest_when_full_and_counts() {
        let q = EventQueue::new(2);
        (0..5).for_each(|i| q.push(ev(i)));
        assert_eq!(q.dropped(), 3);
        assert_eq!(q.pop(Some(Duration::ZERO)), Pop::Event(ev(3)));
        assert_eq!(q.pop(Some(Duration::ZERO)), Pop::Event(ev(4)));
        assert_eq!(q.pop(Some(Duration::from_millis(5))), Pop::Timeout);
    }

    #[test]
    fn close_wakes_a_blocked_poller() {
        let q = std::sync::Arc::new(EventQueue::new(4));
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.pop(None));
        std::thread::sleep(Duration::from_millis(20));
        q.close();
        assert_eq!(t.join().unwrap(), Pop::Closed);
        q.push(ev(1));
        assert_eq!(q.pop(Some(Duration::ZERO)), Pop::Closed);
    }
}
