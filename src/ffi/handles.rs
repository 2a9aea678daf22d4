//! The handle registry: ids never reused, kind in the top byte, every lookup type-checked.
//! Objects are `Arc`s so a call in flight on one thread keeps its object alive while another
//! thread frees the handle; the free itself closes the object.

use super::guard::{FfiResult, fail};
use super::types::rmw_status_t::*;
use crate::signaling::server::SignalingServer;
use crate::transport::Transport;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const KIND_SHIFT: u32 = 56;
const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Transport = 1,
    Server = 2,
    Channel = 3,
    AudioTrack = 4,
    VideoTrack = 5,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Transport => "transport",
            Kind::Server => "signaling server",
            Kind::Channel => "data channel",
            Kind::AudioTrack => "audio track",
            Kind::VideoTrack => "video track",
        }
    }
    fn of(handle: u64) -> Option<Kind> {
        match handle >> KIND_SHIFT {
            1 => Some(Kind::Transport),
            2 => Some(Kind::Server),
            3 => Some(Kind::Channel),
            4 => Some(Kind::AudioTrack),
            5 => Some(Kind::VideoTrack),
            _ => None,
        }
    }
}

pub(crate) type ServerSlot = Mutex<Option<SignalingServer>>;

static NEXT: AtomicU64 = AtomicU64::new(1);
static TRANSPORTS: Mutex<Option<HashMap<u64, Arc<Transport>>>> = Mutex::new(None);
static SERVERS: Mutex<Option<HashMap<u64, Arc<ServerSlot>>>> = Mutex::new(None);

fn check_kind(handle: u64, want: Kind) -> FfiResult {
    if handle == 0 {
        return fail(RMW_ERR_INVALID_HANDLE, format!("{} handle is 0", want.name()));
    }
    match Kind::of(handle) {
        Some(k) if k == want => Ok(()),
        Some(k) => fail(RMW_ERR_INVALID_HANDLE, format!("handle {handle:#x} is a {}, not a {}", k.name(), want.name())),
        None => fail(RMW_ERR_INVALID_HANDLE, format!("{handle:#x} is not a {} handle", want.name())),
    }
}

fn new_handle(kind: Kind) -> u64 {
    ((kind as u64) << KIND_SHIFT) | (NEXT.fetch_add(1, Ordering::Relaxed) & ID_MASK)
}

fn stale(handle: u64, kind: Kind) -> FfiError {
    FfiError { status: RMW_ERR_INVALID_HANDLE, message: format!("{} handle {handle:#x} is not live (never created or already freed)", kind.name()) }
}
use super::guard::FfiError;

pub(crate) fn add_transport(t: Transport) -> u64 {
    let h = new_handle(Kind::Transport);
    TRANSPORTS.lock().unwrap().get_or_insert_with(HashMap::new).insert(h, Arc::new(t));
    h
}

pub(crate) fn transport(handle: u64) -> FfiResult<Arc<Transport>> {
    check_kind(handle, Kind::Transport)?;
    TRANSPORTS.lock().unwrap().as_ref().and_then(|m| m.get(&handle).cloned()).ok_or_else(|| stale(handle, Kind::Transport))
}

pub(crate) fn remove_transport(handle: u64) -> FfiResult<Arc<Transport>> {
    check_kind(handle, Kind::Transport)?;
    TRANSPORTS.lock().unwrap().as_mut().and_then(|m| m.remove(&handle)).ok_or_else(|| stale(handle, Kind::Transport))
}

pub(crate) fn add_server(s: SignalingServer) -> u64 {
    let h = new_handle(Kind::Server);
    SERVERS.lock().unwrap().get_or_insert_with(HashMap::new).insert(h, Arc::new(Mutex::new(Some(s))));
    h
}

pub(crate) fn server(handle: u64) -> FfiResult<Arc<ServerSlot>> {
    check_kind(handle, Kind::Server)?;
    SERVERS.lock().unwrap().as_ref().and_then(|m| m.get(&handle).cloned()).ok_or_else(|| stale(handle, Kind::Server))
}

pub(crate) fn remove_server(handle: u64) -> FfiResult<Arc<ServerSlot>> {
    check_kind(handle, Kind::Server)?;
    SERVERS.lock().unwrap().as_mut().and_then(|m| m.remove(&handle)).ok_or_else(|| stale(handle, Kind::Server))
}

/// The C handle of a core channel id.
pub(crate) fn channel_handle(core_id: u64) -> u64 {
    child_handle(Kind::Channel, core_id)
}

/// The transport owning a channel handle, and the core channel id.
pub(crate) fn channel(handle: u64) -> FfiResult<(Arc<Transport>, u64)> {
    child(handle, Kind::Channel, Transport::has_channel)
}

pub(crate) fn audio_track_handle(core_id: u64) -> u64 {
    child_handle(Kind::AudioTrack, core_id)
}

/// The transport owning an audio track handle, and the core track id.
pub(crate) fn audio_track(handle: u64) -> FfiResult<(Arc<Transport>, u64)> {
    child(handle, Kind::AudioTrack, Transport::has_audio_track)
}

pub(crate) fn video_track_handle(core_id: u64) -> u64 {
    child_handle(Kind::VideoTrack, core_id)
}

/// The transport owning a video track handle, and the core track id.
pub(crate) fn video_track(handle: u64) -> FfiResult<(Arc<Transport>, u64)> {
    child(handle, Kind::VideoTrack, Transport::has_video_track)
}

/// Replaces the core's track id in a stats object (`"track"`) by the track's C handle.
pub(crate) fn name_track(v: &mut serde_json::Value, handle: fn(u64) -> u64) {
    if let Some(id) = v.get("track").and_then(|t| t.as_u64()) {
        v["track"] = handle(id).into();
    }
}

/// Objects owned by a transport (channels, tracks) carry the core's own never-reused id.
fn child_handle(kind: Kind, core_id: u64) -> u64 {
    if core_id == 0 { 0 } else { ((kind as u64) << KIND_SHIFT) | (core_id & ID_MASK) }
}

fn child(handle: u64, kind: Kind, owns: fn(&Transport, u64) -> bool) -> FfiResult<(Arc<Transport>, u64)> {
    check_kind(handle, kind)?;
    let id = handle & ID_MASK;
    let transports: Vec<Arc<Transport>> = TRANSPORTS.lock().unwrap().as_ref().map(|m| m.values().cloned().collect()).unwrap_or_default();
    transports.into_iter().find(|t| owns(t, id)).map(|t| (t, id)).ok_or_else(|| stale(handle, kind))
}
