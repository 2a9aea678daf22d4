//! Freeing leaves nothing behind, and the log callback sees our records and webrtc-rs's.
//! One test function: thread counts must not be disturbed by tests running in parallel.

mod common;
use common::*;
use remotemedia_webrtc::ffi::*;
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::sync::Mutex;

static RECORDS: Mutex<Vec<(i32, String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(level: i32, target: *const c_char, message: *const c_char, _: *mut c_void) {
    let t = unsafe { CStr::from_ptr(target) }.to_string_lossy().into_owned();
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    RECORDS.lock().unwrap().push((level, t, m));
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn free_joins_everything_and_logs_reach_the_callback() {
    let s = server();
    let (baseline, fds) = (threads(), open_fds());
    for i in 0..10 {
        let (a, b) = (transport(&s.url(), &format!("la{i}")), transport(&s.url(), &format!("lb{i}")));
        let (ca, _) = connect(&a, &b);
        a.send_on_channel(ca, b"bye", false).unwrap();
        next_message(&b);
        drop(a);
        drop(b);
    }
    assert_eq!(threads(), baseline, "threads left behind after freeing transports");
    assert_eq!(open_fds(), fds, "file descriptors (sockets) left behind after freeing transports");

    assert_eq!(rmw_set_log_callback(Some(on_log), std::ptr::null_mut(), RMW_LOG_DEBUG), rmw_status_t::RMW_OK);
    assert_eq!(rmw_set_log_callback(Some(on_log), std::ptr::null_mut(), 9), rmw_status_t::RMW_ERR_INVALID_ARGUMENT);
    let msg = unsafe { CStr::from_ptr(rmw_last_error_message()) }.to_string_lossy().into_owned();
    assert!(msg.contains("max_level"), "{msg}");
    {
        let (a, b) = (transport(&s.url(), "log-a"), transport(&s.url(), "log-b"));
        connect(&a, &b);
    }
    assert_eq!(rmw_set_log_callback(None, std::ptr::null_mut(), RMW_LOG_ERROR), rmw_status_t::RMW_OK);
    let records = std::mem::take(&mut *RECORDS.lock().unwrap());
    assert!(
        records.iter().any(|(l, t, m)| *l == RMW_LOG_INFO && t == "rmw::transport" && m.contains("transport created")),
        "no info record from rmw::transport"
    );
    assert!(records.iter().any(|(_, t, _)| t.starts_with("webrtc")), "no record bridged from webrtc-rs's log crate");
    assert!(records.iter().all(|(l, _, _)| (RMW_LOG_ERROR..=RMW_LOG_DEBUG).contains(l)), "a record above the chosen level");
    // Off: nothing more arrives.
    drop(transport(&s.url(), "log-c"));
    assert!(RECORDS.lock().unwrap().is_empty());
}
