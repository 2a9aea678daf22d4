//! The log callback export.

use super::guard::{call, fail};
use super::types::rmw_status_t::{self, *};
use super::types::*;
use std::ffi::CString;
use std::os::raw::c_void;
use std::sync::Arc;

struct UserData(*mut c_void);
// SAFETY: handed back only to the application's own callback, which the header says may run
// on any thread.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// Routes the library's log records (level, target such as "rmw::transport" or
/// "webrtc_ice::agent", message) to `callback`, for levels up to `max_level`
/// (`RMW_LOG_ERROR` … `RMW_LOG_TRACE`). `callback` NULL turns logging off (the default).
/// Process-wide.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_set_log_callback(callback: rmw_log_callback_t, user_data: *mut c_void, max_level: i32) -> rmw_status_t {
    call("rmw_set_log_callback", || {
        if !(RMW_LOG_ERROR..=RMW_LOG_TRACE).contains(&max_level) {
            return fail(RMW_ERR_INVALID_ARGUMENT, format!("max_level must be 1..=5, got {max_level}"));
        }
        let sink = callback.map(|cb| {
            let ud = UserData(user_data);
            Arc::new(move |level: u8, target: &str, message: &str| {
                let ud = &ud;
                let t = CString::new(target.replace('\0', "")).unwrap_or_default();
                let m = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
                // SAFETY: the application's callback; both strings live until it returns.
                unsafe { cb(level as i32, t.as_ptr(), m.as_ptr(), ud.0) };
            }) as crate::logging::Sink
        });
        if !crate::logging::set_sink(sink, max_level as u8) {
            return fail(RMW_ERR_INTERNAL, "another tracing subscriber is installed in this process; log records go to it");
        }
        Ok(())
    })
}
