//! Embedded signaling server exports.

use super::args::*;
use super::guard::{FfiResult, call, fail};
use super::handles;
use super::types::rmw_status_t::{self, *};
use super::types::*;
use crate::signaling::auth::Auth;
use crate::signaling::server::{ServerConfig, SignalingServer};
use std::os::raw::c_char;

/// Starts the signaling server on `bind_addr` ("127.0.0.1:0" picks a free port; NULL means
/// "127.0.0.1:8080") on threads of its own. `max_message_bytes` 0 takes the default
/// (262144). Returns once the socket is bound; `*out` receives the handle, owned by the
/// caller: stop it with `rmw_signaling_server_stop`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_signaling_server_start(
    bind_addr: *const c_char,
    max_message_bytes: usize,
    out: *mut rmw_signaling_server_t,
) -> rmw_status_t {
    call("rmw_signaling_server_start", || unsafe { start(bind_addr, max_message_bytes, None, out) })
}

/// `auth_kind` of `rmw_signaling_server_start_authenticated`: clients send `secret` itself as
/// their token.
pub const RMW_AUTH_SHARED_SECRET: i32 = 1;
/// Clients send an HS256 JWT signed with `secret`, whose `sub` is the peer id they announce and
/// whose `exp` has not passed.
pub const RMW_AUTH_JWT: i32 = 2;

/// As `rmw_signaling_server_start`, but `announce` needs a valid `token` param (a transport
/// sends its `signaling_token` config field); unauthenticated clients are refused and can do
/// nothing else. `secret` is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_signaling_server_start_authenticated(
    bind_addr: *const c_char,
    max_message_bytes: usize,
    auth_kind: i32,
    secret: *const c_char,
    out: *mut rmw_signaling_server_t,
) -> rmw_status_t {
    call("rmw_signaling_server_start_authenticated", || {
        let secret = unsafe { str_arg(secret, "secret") }?;
        if secret.is_empty() {
            return fail(RMW_ERR_INVALID_ARGUMENT, "secret is empty");
        }
        let auth = match auth_kind {
            RMW_AUTH_SHARED_SECRET => Auth::SharedSecret(secret.into()),
            RMW_AUTH_JWT => Auth::Jwt { secret: secret.into() },
            v => return fail(RMW_ERR_INVALID_ARGUMENT, format!("auth_kind must be RMW_AUTH_SHARED_SECRET or RMW_AUTH_JWT, got {v}")),
        };
        unsafe { start(bind_addr, max_message_bytes, Some(auth), out) }
    })
}

/// Starts the signaling server from a JSON object (NULL or "" = all defaults). Fields, all
/// optional: `bind_addr` ("127.0.0.1:8080"), `max_message_bytes` (262144, >= 1024),
/// `outbound_queue` (1024 messages per client), `rate_limit` (`{"per_second":100,"burst":200}`
/// messages a connection may send, `null` = unlimited), `auth` (`{"kind":"shared_secret" or
/// "jwt","secret":"…"}`), `tls` (`{"cert_file":"…pem","key_file":"…pem"}`: serve `wss://` only).
/// Unknown fields and bad values fail with RMW_ERR_INVALID_CONFIG naming the field.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_signaling_server_start_with_config(config_json: *const c_char, out: *mut rmw_signaling_server_t) -> rmw_status_t {
    call("rmw_signaling_server_start_with_config", || {
        let out = unsafe { out_arg(out, "out") }?;
        let json = unsafe { opt_str_arg(config_json, "config_json") }?.unwrap_or("");
        *out = handles::add_server(SignalingServer::start(ServerConfig::from_json(json)?)?);
        Ok(())
    })
}

unsafe fn start(bind_addr: *const c_char, max_message_bytes: usize, auth: Option<Auth>, out: *mut rmw_signaling_server_t) -> FfiResult {
    let out = unsafe { out_arg(out, "out") }?;
    let mut cfg = ServerConfig { auth, ..ServerConfig::default() };
    if let Some(addr) = unsafe { opt_str_arg(bind_addr, "bind_addr") }? {
        cfg.bind_addr = addr.into();
    }
    if max_message_bytes != 0 {
        cfg.max_message_bytes = max_message_bytes;
    }
    *out = handles::add_server(SignalingServer::start(cfg)?);
    Ok(())
}

/// The TCP port the server listens on (useful after binding port 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_signaling_server_port(server: rmw_signaling_server_t, out: *mut u16) -> rmw_status_t {
    call("rmw_signaling_server_port", || {
        let out = unsafe { out_arg(out, "out") }?;
        let slot = handles::server(server)?;
        let guard = slot.lock().unwrap();
        let Some(s) = guard.as_ref() else { return fail(RMW_ERR_INVALID_HANDLE, "signaling server is stopping") };
        *out = s.local_addr().port();
        Ok(())
    })
}

/// The `ws://host:port` URL clients use (size-query pattern).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_signaling_server_url(server: rmw_signaling_server_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_signaling_server_url", || {
        let slot = handles::server(server)?;
        let url = match slot.lock().unwrap().as_ref() {
            Some(s) => s.url(),
            None => return fail(RMW_ERR_INVALID_HANDLE, "signaling server is stopping"),
        };
        unsafe { write_string(&url, buf, len) }
    })
}

/// Stops the server: closes every client connection, joins its threads, invalidates the
/// handle. Peer connections already set up through it are not affected. 0 is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_signaling_server_stop(server: rmw_signaling_server_t) -> rmw_status_t {
    call("rmw_signaling_server_stop", || {
        if server == 0 {
            return Ok(());
        }
        let slot = handles::remove_server(server)?;
        let s = slot.lock().unwrap().take();
        if let Some(s) = s {
            s.stop();
        }
        Ok(())
    })
}
