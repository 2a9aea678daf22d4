//! The panic boundary and error reporting every export goes through.

use super::types::rmw_status_t::{self, *};
use crate::error::Error;
use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An error on its way to C: the status and the text for `rmw_last_error_message`.
pub(crate) struct FfiError {
    pub status: rmw_status_t,
    pub message: String,
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

pub(crate) fn fail<T>(status: rmw_status_t, message: impl Into<String>) -> FfiResult<T> {
    Err(FfiError { status, message: message.into() })
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::InvalidArgument(_) => RMW_ERR_INVALID_ARGUMENT,
            Error::Config(_) => RMW_ERR_CONFIG,
            Error::NotFound(_) => RMW_ERR_NOT_FOUND,
            Error::AlreadyExists(_) => RMW_ERR_ALREADY_EXISTS,
            Error::MaxPeers(_) => RMW_ERR_MAX_PEERS,
            Error::NotConnected(_) => RMW_ERR_NOT_CONNECTED,
            Error::Signaling(_) => RMW_ERR_SIGNALING,
            Error::WebRtc(_) => RMW_ERR_WEBRTC,
            Error::Io(_) => RMW_ERR_IO,
            Error::Timeout(_) => RMW_ERR_TIMEOUT,
            Error::Closed(_) => RMW_ERR_CLOSED,
            Error::WouldBlock(_) => RMW_ERR_WOULD_BLOCK,
            Error::QueueFull(_) => RMW_ERR_QUEUE_FULL,
            Error::Codec(_) => RMW_ERR_CODEC,
        };
        FfiError { status, message: e.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs one export: catches panics, stores the error text, returns the status.
pub(crate) fn call(name: &str, f: impl FnOnce() -> FfiResult) -> rmw_status_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => RMW_OK,
        Ok(Err(e)) => {
            set_last_error(&format!("{name}: {}", e.message));
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(target: "rmw::ffi", function = name, panic = %what, "internal error caught at the API boundary");
            set_last_error(&format!("{name}: internal error: {what}"));
            RMW_ERR_INTERNAL
        }
    }
}

/// Text of the last error on the calling thread ("" if none). Owned by the library; valid
/// until the next failing call on the same thread. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Name of a status code ("RMW_OK", "RMW_ERR_TIMEOUT", ...). Static string, never NULL;
/// "RMW_ERR_UNKNOWN" for a value that is no status.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_status_string(status: i32) -> *const c_char {
    let s: &'static str = match status {
        0 => "RMW_OK\0",
        -1 => "RMW_ERR_INVALID_ARGUMENT\0",
        -2 => "RMW_ERR_INVALID_HANDLE\0",
        -3 => "RMW_ERR_BUFFER_TOO_SMALL\0",
        -4 => "RMW_ERR_TIMEOUT\0",
        -5 => "RMW_ERR_NOT_FOUND\0",
        -6 => "RMW_ERR_ALREADY_EXISTS\0",
        -7 => "RMW_ERR_MAX_PEERS\0",
        -8 => "RMW_ERR_NOT_CONNECTED\0",
        -9 => "RMW_ERR_SIGNALING\0",
        -10 => "RMW_ERR_WEBRTC\0",
        -11 => "RMW_ERR_CONFIG\0",
        -12 => "RMW_ERR_IO\0",
        -13 => "RMW_ERR_CLOSED\0",
        -14 => "RMW_ERR_WOULD_BLOCK\0",
        -15 => "RMW_ERR_INTERNAL\0",
        -16 => "RMW_ERR_QUEUE_FULL\0",
        -17 => "RMW_ERR_CODEC\0",
        _ => "RMW_ERR_UNKNOWN\0",
    };
    s.as_ptr().cast()
}
