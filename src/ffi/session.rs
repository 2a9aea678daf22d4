//! Session exports: named groups of peers inside a transport, used as broadcast targets.

use super::args::*;
use super::guard::call;
use super::handles;
use super::types::rmw_status_t;
use super::types::*;
use crate::transport::Target;
use std::os::raw::c_char;

/// Creates an empty session; `RMW_ERR_ALREADY_EXISTS` if the id is taken.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_create(transport: rmw_transport_t, session_id: *const c_char) -> rmw_status_t {
    call("rmw_session_create", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        Ok(handles::transport(transport)?.create_session(id)?)
    })
}

/// Removes a session (its peers stay connected).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_remove(transport: rmw_transport_t, session_id: *const c_char) -> rmw_status_t {
    call("rmw_session_remove", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        Ok(handles::transport(transport)?.remove_session(id)?)
    })
}

/// Adds a peer of this transport (connected or connecting) to a session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_add_peer(transport: rmw_transport_t, session_id: *const c_char, peer_id: *const c_char) -> rmw_status_t {
    call("rmw_session_add_peer", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        Ok(handles::transport(transport)?.add_session_peer(id, peer)?)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_remove_peer(transport: rmw_transport_t, session_id: *const c_char, peer_id: *const c_char) -> rmw_status_t {
    call("rmw_session_remove_peer", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        Ok(handles::transport(transport)?.remove_session_peer(id, peer)?)
    })
}

/// One session as JSON (size-query pattern): `{"session_id":"room","peers":["bob"],"created_at_ms":...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_get(transport: rmw_transport_t, session_id: *const c_char, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_session_get", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        let s = handles::transport(transport)?.session(id)?;
        unsafe { write_string(&serde_json::to_string(&s).unwrap_or_default(), buf, len) }
    })
}

/// Every session as a JSON array (size-query pattern).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_list(transport: rmw_transport_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_session_list", || {
        let s = handles::transport(transport)?.sessions();
        unsafe { write_string(&serde_json::to_string(&s).unwrap_or_default(), buf, len) }
    })
}

/// Sends `data` on the default channel of every connected peer of the session; `*sent_to`
/// (may be NULL) receives how many peers it went to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_session_send_data(
    transport: rmw_transport_t,
    session_id: *const c_char,
    data: *const u8,
    len: usize,
    binary: bool,
    sent_to: *mut usize,
) -> rmw_status_t {
    call("rmw_session_send_data", || {
        let id = unsafe { str_arg(session_id, "session_id") }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        let n = handles::transport(transport)?.send_data(Target::Session(id), data, binary)?;
        unsafe { write_opt(sent_to, n) };
        Ok(())
    })
}
