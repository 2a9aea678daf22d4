//! Transport exports: create/free, peers, broadcast, stats.

use super::args::*;
use super::guard::call;
use super::handles;
use super::types::rmw_status_t::{self};
use super::types::*;
use crate::config::Config;
use crate::transport::{Target, Transport};
use std::os::raw::c_char;

/// Creates a transport from a JSON configuration (NULL or "" for the defaults; fields are
/// listed in docs/ARCHITECTURE.md, e.g. `{"signaling_url":"ws://127.0.0.1:8080",
/// "peer_id":"alice","ice_policy":"loopback"}`) and starts connecting to the signaling
/// server; `RMW_EVENT_SIGNALING_CONNECTED` follows. On success `*out` receives the handle,
/// owned by the caller: free it with `rmw_transport_free`. On error `*out` is untouched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_new(config_json: *const c_char, out: *mut rmw_transport_t) -> rmw_status_t {
    call("rmw_transport_new", || {
        let out = unsafe { out_arg(out, "out") }?;
        let json = unsafe { opt_str_arg(config_json, "config_json") }?.unwrap_or("");
        let t = Transport::new(Config::from_json(json)?)?;
        *out = handles::add_transport(t);
        Ok(())
    })
}

/// Closes every peer connection and data channel of the transport, leaves the signaling
/// server, joins the transport's threads, and invalidates the handle and its channels' handles.
/// Returns after the last event callback for this transport has returned (when called from
/// inside that callback, the callback in progress is the last). Safe from any thread;
/// 0 is a no-op; a handle already freed gives `RMW_ERR_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_transport_free(transport: rmw_transport_t) -> rmw_status_t {
    call("rmw_transport_free", || {
        if transport == 0 {
            return Ok(());
        }
        handles::remove_transport(transport)?.close();
        Ok(())
    })
}

/// Writes this transport's peer id (the one announced) to `buf` (size-query pattern: `*len`
/// is the capacity on entry and the size needed, NUL included, on return; `buf` NULL only
/// asks for the size).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_peer_id(transport: rmw_transport_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_transport_peer_id", || {
        let t = handles::transport(transport)?;
        unsafe { write_string(t.local_peer_id(), buf, len) }
    })
}

/// Offers a connection to `peer_id` (as listed by `RMW_EVENT_PEER_DISCOVERED`); returns once
/// the offer is sent. Progress comes as `RMW_EVENT_PEER_STATE_CHANGED`, then
/// `RMW_EVENT_DATA_CHANNEL_OPEN` for the default channel. If both sides connect at the same
/// time, exactly one connection results. If a connection to `peer_id` exists or is being set
/// up, returns `RMW_OK` and does nothing. Errors: `RMW_ERR_NOT_FOUND` (the signaling server
/// does not know `peer_id`), `RMW_ERR_MAX_PEERS`, `RMW_ERR_NOT_CONNECTED` (signaling not up yet).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_connect_peer(transport: rmw_transport_t, peer_id: *const c_char) -> rmw_status_t {
    call("rmw_transport_connect_peer", || {
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        Ok(handles::transport(transport)?.connect_peer(peer)?)
    })
}

/// Answers the offer announced by `RMW_EVENT_PEER_OFFER` (only when `auto_answer` is false).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_accept_peer(transport: rmw_transport_t, peer_id: *const c_char) -> rmw_status_t {
    call("rmw_transport_accept_peer", || {
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        Ok(handles::transport(transport)?.accept_peer(peer)?)
    })
}

/// Closes the connection to `peer_id` (or refuses its pending offer) and tells the peer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_disconnect_peer(transport: rmw_transport_t, peer_id: *const c_char) -> rmw_status_t {
    call("rmw_transport_disconnect_peer", || {
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        Ok(handles::transport(transport)?.disconnect_peer(peer)?)
    })
}

/// The state of the connection to `peer_id`; `RMW_ERR_NOT_FOUND` if there is none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_peer_state(transport: rmw_transport_t, peer_id: *const c_char, out: *mut rmw_peer_state_t) -> rmw_status_t {
    call("rmw_transport_peer_state", || {
        let out = unsafe { out_arg(out, "out") }?;
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        *out = handles::transport(transport)?.peer_state(peer)?.into();
        Ok(())
    })
}

/// Number of peer connections: all of them, or (with `connected_only`) those connected.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_peer_count(transport: rmw_transport_t, connected_only: bool, out: *mut usize) -> rmw_status_t {
    call("rmw_transport_peer_count", || {
        let out = unsafe { out_arg(out, "out") }?;
        let t = handles::transport(transport)?;
        *out = if connected_only { t.connected_peers().len() } else { t.peers().len() };
        Ok(())
    })
}

/// The peer connections as a JSON array (size-query pattern), e.g.
/// `[{"peer_id":"bob","state":"connected","initiator":true,"channels":[1]}]`.
/// With `connected_only`, only connected peers are listed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_list_peers(transport: rmw_transport_t, connected_only: bool, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_transport_list_peers", || {
        let t = handles::transport(transport)?;
        let peers: Vec<_> = t.peers().into_iter().filter(|p| !connected_only || p.state == "connected").collect();
        unsafe { write_string(&serde_json::to_string(&peers).unwrap_or_default(), buf, len) }
    })
}

/// Sends `data` on the default data channel ("data") of `peer_id`, or of every connected
/// peer when `peer_id` is NULL. `binary` false sends text (`data` must then be UTF-8).
/// `*sent_to` (may be NULL) receives the number of peers it went to. The data is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_send_data(
    transport: rmw_transport_t,
    peer_id: *const c_char,
    data: *const u8,
    len: usize,
    binary: bool,
    sent_to: *mut usize,
) -> rmw_status_t {
    call("rmw_transport_send_data", || {
        let peer = unsafe { opt_str_arg(peer_id, "peer_id") }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        let target = peer.map_or(Target::All, Target::Peer);
        let n = handles::transport(transport)?.send_data(target, data, binary)?;
        unsafe { write_opt(sent_to, n) };
        Ok(())
    })
}

/// Counters as JSON (size-query pattern): peers, connected peers, channels, events pending
/// and events dropped because the application did not drain them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_stats_json(transport: rmw_transport_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_transport_stats_json", || {
        let t = handles::transport(transport)?;
        let mut v = serde_json::to_value(t.stats()).unwrap_or_default();
        // Tracks are named by their C handles, as everywhere in the C API.
        let handle_of = |kind: &str| if kind == "audio" { handles::audio_track_handle } else { handles::video_track_handle };
        for (list, kind) in [("audio_tracks", Some("audio")), ("video_tracks", Some("video")), ("peer_media", None)] {
            for item in v.get_mut(list).and_then(|a| a.as_array_mut()).into_iter().flatten() {
                // peer_media entries say their kind.
                let kind = kind.map(String::from).unwrap_or_else(|| item["kind"].as_str().unwrap_or_default().to_string());
                handles::name_track(item, handle_of(&kind));
            }
        }
        unsafe { write_string(&v.to_string(), buf, len) }
    })
}
