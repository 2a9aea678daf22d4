//! Events to C: the owned storage behind `rmw_event_t`'s pointers, polling, release, and
//! the callback.

use super::delivery;
use super::guard::call;
use super::handles::{self, channel_handle};
use super::types::rmw_status_t;
use super::types::*;
use crate::events::{Event, PeerState};
use bytes::Bytes;
use std::ffi::CString;
use std::os::raw::c_void;

/// What an `rmw_event_t` points into.
pub(super) struct Owned {
    peer_id: Option<CString>,
    label: Option<CString>,
    message: Option<CString>,
    data: Option<Bytes>,
    track_id: Option<CString>,
    codec: Option<CString>,
}

pub(super) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// Builds the C view of an event; the returned box must outlive the view.
fn event_to_c(transport: u64, ev: Event) -> (rmw_event_t, Box<Owned>) {
    use rmw_event_kind_t::*;
    let mut o = Box::new(Owned { peer_id: None, label: None, message: None, data: None, track_id: None, codec: None });
    let (mut channel, mut state, mut binary) = (0u64, PeerState::New, false);
    let (mut media_kind, mut clock_rate, mut channels) = (rmw_media_kind_t::RMW_MEDIA_NONE, 0u32, 0u32);
    let kind = match ev {
        Event::SignalingConnected => RMW_EVENT_SIGNALING_CONNECTED,
        Event::SignalingDisconnected { reason } => {
            o.message = Some(cstring(&reason));
            RMW_EVENT_SIGNALING_DISCONNECTED
        }
        Event::PeerDiscovered { peer_id } => {
            o.peer_id = Some(cstring(&peer_id));
            RMW_EVENT_PEER_DISCOVERED
        }
        Event::PeerLeft { peer_id } => {
            o.peer_id = Some(cstring(&peer_id));
            RMW_EVENT_PEER_LEFT
        }
        Event::PeerOffer { peer_id } => {
            o.peer_id = Some(cstring(&peer_id));
            RMW_EVENT_PEER_OFFER
        }
        Event::PeerStateChanged { peer_id, state: s } => {
            o.peer_id = Some(cstring(&peer_id));
            state = s;
            RMW_EVENT_PEER_STATE_CHANGED
        }
        Event::DataChannelOpen { peer_id, channel: c, label } => {
            (o.peer_id, o.label, channel) = (Some(cstring(&peer_id)), Some(cstring(&label)), c);
            RMW_EVENT_DATA_CHANNEL_OPEN
        }
        Event::DataChannelClose { peer_id, channel: c, label } => {
            (o.peer_id, o.label, channel) = (Some(cstring(&peer_id)), Some(cstring(&label)), c);
            RMW_EVENT_DATA_CHANNEL_CLOSE
        }
        Event::DataChannelBufferedAmountLow { peer_id, channel: c, label } => {
            (o.peer_id, o.label, channel) = (Some(cstring(&peer_id)), Some(cstring(&label)), c);
            RMW_EVENT_DATA_CHANNEL_BUFFERED_AMOUNT_LOW
        }
        Event::DataChannelMessage { peer_id, channel: c, label, data, binary: b } => {
            (o.peer_id, o.label, channel, binary) = (Some(cstring(&peer_id)), Some(cstring(&label)), c, b);
            o.data = Some(data);
            RMW_EVENT_DATA_CHANNEL_MESSAGE
        }
        Event::TrackAdded { peer_id, track_id, kind: k, codec, clock_rate: r, channels: c } => {
            (o.peer_id, o.track_id, o.codec) = (Some(cstring(&peer_id)), Some(cstring(&track_id)), Some(cstring(&codec)));
            (media_kind, clock_rate, channels) = (k.into(), r, c.into());
            RMW_EVENT_TRACK_ADDED
        }
        Event::TrackRemoved { peer_id, track_id, kind: k } => {
            (o.peer_id, o.track_id, media_kind) = (Some(cstring(&peer_id)), Some(cstring(&track_id)), k.into());
            RMW_EVENT_TRACK_REMOVED
        }
        Event::Error { peer_id, message } => {
            o.peer_id = peer_id.as_deref().map(cstring);
            o.message = Some(cstring(&message));
            RMW_EVENT_ERROR
        }
    };
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    let view = rmw_event_t {
        kind,
        transport,
        peer_id: ptr(&o.peer_id),
        peer_state: state.into(),
        channel: channel_handle(channel),
        label: ptr(&o.label),
        data: o.data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
        len: o.data.as_ref().map_or(0, |d| d.len()),
        binary,
        message: ptr(&o.message),
        track_id: ptr(&o.track_id),
        media_kind,
        codec: ptr(&o.codec),
        clock_rate,
        channels,
        internal: std::ptr::null_mut(),
    };
    (view, o)
}

fn zeroed_event() -> rmw_event_t {
    rmw_event_t {
        kind: rmw_event_kind_t::RMW_EVENT_NONE,
        transport: 0,
        peer_id: std::ptr::null(),
        peer_state: rmw_peer_state_t::RMW_PEER_NEW,
        channel: 0,
        label: std::ptr::null(),
        data: std::ptr::null(),
        len: 0,
        binary: false,
        message: std::ptr::null(),
        track_id: std::ptr::null(),
        media_kind: rmw_media_kind_t::RMW_MEDIA_NONE,
        codec: std::ptr::null(),
        clock_rate: 0,
        channels: 0,
        internal: std::ptr::null_mut(),
    }
}

/// Waits up to `timeout_ms` (0: do not wait; negative: wait until an event comes or the
/// transport is freed) for the next event and writes it to `*event`. Events that happened
/// before the first poll are kept (the queue starts when the transport is created).
/// Returns `RMW_ERR_TIMEOUT` when none came, `RMW_ERR_CLOSED` when the transport was freed
/// meanwhile. Each event obtained must be given back with `rmw_event_release`.
/// Do not poll a transport that has an event callback: the two would share its events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_poll_event(transport: rmw_transport_t, event: *mut rmw_event_t, timeout_ms: i32) -> rmw_status_t {
    call("rmw_transport_poll_event", || unsafe { delivery::poll(transport, event, timeout_ms, |t, d| t.poll_event(d)) })
}

/// Frees what a polled event points to and zeroes it. NULL, a zeroed event, or an event
/// released before are no-ops. Never call it on the event passed to a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_event_release(event: *mut rmw_event_t) {
    let _ = call("rmw_event_release", || {
        unsafe { delivery::release(event) };
        Ok(())
    });
}

/// Sets the callback that receives every event of this transport on its event thread
/// (started on first use), or with `callback` NULL goes back to polling (events not yet
/// delivered stay queued for `rmw_transport_poll_event`). Events queued before the callback
/// was set are delivered to it first. Unless called from inside a callback, returns after a
/// callback in progress has returned: the previous callback and its `user_data` are not used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_set_event_callback(
    transport: rmw_transport_t,
    callback: rmw_event_callback_t,
    user_data: *mut c_void,
) -> rmw_status_t {
    call("rmw_transport_set_event_callback", || {
        let t = handles::transport(transport)?;
        let handler = callback.map(|cb| delivery::handler::<rmw_event_t>(transport, cb, user_data));
        t.set_event_handler(handler)?;
        Ok(())
    })
}


delivery::c_view!(rmw_event_t, Event, Owned, "event", event_to_c, zeroed_event);
