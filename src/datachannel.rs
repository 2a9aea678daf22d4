//! Data channels: options, the channel object the application addresses by id, and the read
//! loop that turns SCTP messages into events. Channels are detached from webrtc-rs's own
//! reader so messages up to 256 KiB arrive whole (webrtc-rs's own reader stops at 64 KiB).

use crate::error::{Error, Result};
use crate::events::{Event, EventQueue};
use crate::peer::{MAX_RECV_MESSAGE_SIZE, MAX_SEND_MESSAGE_SIZE};
use bytes::Bytes;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use webrtc::data::data_channel::DataChannel as RawChannel;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;

/// Label of the channel every peer connection gets when `enable_data_channel` is on.
pub const DEFAULT_LABEL: &str = "data";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reliability {
    /// Every message is delivered (retransmitted until acknowledged).
    Reliable,
    /// Each message is retransmitted at most this many times.
    MaxRetransmits(u16),
    /// Each message is retransmitted for at most this many milliseconds.
    MaxPacketLifetimeMs(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelOptions {
    pub ordered: bool,
    pub reliability: Reliability,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions { ordered: true, reliability: Reliability::Reliable }
    }
}

impl ChannelOptions {
    pub(crate) fn to_init(&self) -> RTCDataChannelInit {
        let (max_retransmits, max_packet_life_time) = match self.reliability {
            Reliability::Reliable => (None, None),
            Reliability::MaxRetransmits(n) => (Some(n), None),
            Reliability::MaxPacketLifetimeMs(ms) => (None, Some(ms)),
        };
        RTCDataChannelInit { ordered: Some(self.ordered), max_retransmits, max_packet_life_time, ..Default::default() }
    }

    pub(crate) fn of(dc: &RTCDataChannel) -> ChannelOptions {
        let reliability = match (dc.max_retransmits(), dc.max_packet_lifetime()) {
            (Some(n), _) => Reliability::MaxRetransmits(n),
            (None, Some(ms)) => Reliability::MaxPacketLifetimeMs(ms),
            _ => Reliability::Reliable,
        };
        ChannelOptions { ordered: dc.ordered(), reliability }
    }
}

/// Refuses a message larger than we send (see `peer::MAX_SEND_MESSAGE_SIZE`).
pub(crate) fn check_message_size(len: usize) -> Result<()> {
    if len > MAX_SEND_MESSAGE_SIZE {
        return Err(Error::InvalidArgument(format!("message of {len} bytes exceeds the maximum of {MAX_SEND_MESSAGE_SIZE}")));
    }
    Ok(())
}

/// What the application can see of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    pub channel: u64,
    pub peer_id: String,
    pub label: String,
    pub options: ChannelOptions,
    pub open: bool,
    pub locally_created: bool,
}

pub(crate) struct Channel {
    pub id: u64,
    pub peer_id: String,
    pub label: String,
    pub options: ChannelOptions,
    /// True when this side created it (it is re-created if glare replaces the connection).
    pub locally_created: bool,
    pub is_default: bool,
    rtc: Mutex<Arc<RTCDataChannel>>,
    raw: Mutex<Option<Arc<RawChannel>>>,
    low_threshold: AtomicUsize,
    /// The low-water event is sent only once the application set a threshold: at the default
    /// of 0 webrtc-rs would report every drained send, one extra event per message.
    low_event_enabled: AtomicBool,
    closing: AtomicBool,
}

impl Channel {
    pub fn new(id: u64, peer_id: &str, dc: Arc<RTCDataChannel>, locally_created: bool, is_default: bool) -> Arc<Channel> {
        Arc::new(Channel {
            id,
            peer_id: peer_id.into(),
            label: dc.label().into(),
            options: ChannelOptions::of(&dc),
            locally_created,
            is_default,
            rtc: Mutex::new(dc),
            raw: Mutex::new(None),
            low_threshold: AtomicUsize::new(0),
            low_event_enabled: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        })
    }

    pub fn info(&self) -> ChannelInfo {
        ChannelInfo {
            channel: self.id,
            peer_id: self.peer_id.clone(),
            label: self.label.clone(),
            options: self.options.clone(),
            open: self.raw.lock().unwrap().is_some(),
            locally_created: self.locally_created,
        }
    }

    /// Points this channel at a new webrtc-rs channel (the connection it lived on was replaced).
    pub fn rebind(&self, dc: Arc<RTCDataChannel>) {
        *self.rtc.lock().unwrap() = dc;
    }

    fn raw(&self) -> Result<Arc<RawChannel>> {
        self.raw.lock().unwrap().clone().ok_or_else(|| Error::NotConnected(format!("data channel {} ({}) is not open yet", self.id, self.label)))
    }

    pub async fn send(&self, data: &[u8], binary: bool) -> Result<()> {
        check_message_size(data.len())?;
        let raw = self.raw()?;
        raw.write_data_channel(&Bytes::copy_from_slice(data), !binary)
            .await
            .map(|_| ())
            .map_err(|e| Error::WebRtc(format!("send on data channel {}: {e}", self.label)))
    }

    pub fn buffered_amount(&self) -> usize {
        self.raw.lock().unwrap().as_ref().map_or(0, |r| r.buffered_amount())
    }

    /// Takes effect now if open, else when the channel opens.
    pub fn set_low_threshold(&self, bytes: usize) {
        self.low_threshold.store(bytes, Ordering::Relaxed);
        self.low_event_enabled.store(true, Ordering::Relaxed);
        if let Some(r) = self.raw.lock().unwrap().as_ref() {
            r.set_buffered_amount_low_threshold(bytes);
        }
    }

    pub async fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let dc = self.rtc.lock().unwrap().clone();
        let _ = dc.close().await;
    }

    /// Wires the webrtc-rs channel's open event: detach, announce, start reading. The handler
    /// holds only weak references, so an unopened channel cannot keep itself alive.
    pub fn attach(self: &Arc<Self>, events: &Arc<EventQueue>, on_closed: impl FnOnce(u64) + Send + Sync + 'static) {
        let dc = self.rtc.lock().unwrap().clone();
        let weak_dc = Arc::downgrade(&dc);
        let weak_ch = Arc::downgrade(self);
        let events = Arc::downgrade(events);
        dc.on_open(Box::new(move || {
            Box::pin(async move {
                let (Some(dc), Some(ch), Some(events)) = (weak_dc.upgrade(), weak_ch.upgrade(), events.upgrade()) else { return };
                let raw = match dc.detach().await {
                    Ok(raw) => raw,
                    Err(e) => {
                        events.push(Event::Error { peer_id: Some(ch.peer_id.clone()), message: format!("data channel {}: {e}", ch.label) });
                        return;
                    }
                };
                raw.set_buffered_amount_low_threshold(ch.low_threshold.load(Ordering::Relaxed));
                let (ev, c) = (Arc::downgrade(&events), Arc::downgrade(&ch));
                raw.on_buffered_amount_low(Box::new(move || {
                    if let (Some(events), Some(ch)) = (ev.upgrade(), c.upgrade())
                        && ch.low_event_enabled.load(Ordering::Relaxed)
                    {
                        events.push(Event::DataChannelBufferedAmountLow { peer_id: ch.peer_id.clone(), channel: ch.id, label: ch.label.clone() });
                    }
                    Box::pin(async {})
                }));
                *ch.raw.lock().unwrap() = Some(raw.clone());
                events.push(Event::DataChannelOpen { peer_id: ch.peer_id.clone(), channel: ch.id, label: ch.label.clone() });
                tokio::spawn(read_loop(ch, raw, events, on_closed));
            })
        }));
    }
}

async fn read_loop(ch: Arc<Channel>, raw: Arc<RawChannel>, events: Arc<EventQueue>, on_closed: impl FnOnce(u64)) {
    let mut buf = vec![0u8; MAX_RECV_MESSAGE_SIZE];
    loop {
        match raw.read_data_channel(&mut buf).await {
            Ok((0, _)) => break,
            Ok((n, is_string)) => events.push(Event::DataChannelMessage {
                peer_id: ch.peer_id.clone(),
                channel: ch.id,
                label: ch.label.clone(),
                data: Bytes::copy_from_slice(&buf[..n]),
                binary: !is_string,
            }),
            Err(e) => {
                if !ch.closing.load(Ordering::Relaxed) {
                    tracing::debug!(target: "rmw::datachannel", label = %ch.label, error = %e, "read ended");
                }
                break;
            }
        }
    }
    *ch.raw.lock().unwrap() = None;
    events.push(Event::DataChannelClose { peer_id: ch.peer_id.clone(), channel: ch.id, label: ch.label.clone() });
    on_closed(ch.id);
}
