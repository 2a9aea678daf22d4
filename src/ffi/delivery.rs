//! Handing queued items (events, audio frames, video frames) to C, the same way for all three:
//! by poll into a caller-provided struct whose pointers own their storage until released, or
//! by callback on the transport's dispatcher thread with storage valid during the call.

use super::guard::{FfiResult, fail};
use super::handles;
use super::types::rmw_status_t::*;
use crate::transport::Transport;
use std::os::raw::c_void;
use std::time::Duration;

/// A C view of a queued item, with the Rust storage its pointers point into.
pub(super) trait CView: Sized {
    type Item: Send + 'static;
    type Owned: 'static;
    /// For messages: "event", "audio frame", "video frame".
    const WHAT: &'static str;
    /// The view and the storage that must outlive it.
    fn to_c(transport: u64, item: Self::Item) -> (Self, Box<Self::Owned>);
    /// What a released (or never filled) view holds.
    fn zeroed() -> Self;
    fn set_internal(&mut self, owned: *mut c_void);
    /// Reads the `internal` field without forming a reference: the caller's struct may hold
    /// any bit pattern.
    unsafe fn internal_of(view: *const Self) -> *mut c_void;
}

/// Implements `CView` for a C struct whose storage pointer is its `internal` field:
/// `c_view!(c type, item type, owned type, "what", to_c fn, zeroed fn)`.
macro_rules! c_view {
    ($view:ty, $item:ty, $owned:ty, $what:literal, $to_c:path, $zeroed:path) => {
        impl $crate::ffi::delivery::CView for $view {
            type Item = $item;
            type Owned = $owned;
            const WHAT: &'static str = $what;

            fn to_c(transport: u64, item: $item) -> (Self, Box<$owned>) {
                $to_c(transport, item)
            }

            fn zeroed() -> Self {
                $zeroed()
            }

            fn set_internal(&mut self, owned: *mut std::os::raw::c_void) {
                self.internal = owned;
            }

            unsafe fn internal_of(view: *const Self) -> *mut std::os::raw::c_void {
                unsafe { std::ptr::addr_of!((*view).internal).read() }
            }
        }
    };
}
pub(super) use c_view;

/// Waits up to `timeout_ms` (negative: without limit) with `take` and writes the item to `*out`,
/// its storage kept alive (in `internal`) until `release`.
pub(super) unsafe fn poll<V: CView>(
    transport: u64,
    out: *mut V,
    timeout_ms: i32,
    take: impl FnOnce(&Transport, Option<Duration>) -> crate::Result<Option<V::Item>>,
) -> FfiResult {
    if out.is_null() {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("{} is NULL", V::WHAT));
    }
    let t = handles::transport(transport)?;
    let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
    match take(&t, timeout)? {
        None => fail(RMW_ERR_TIMEOUT, format!("no {} within {timeout_ms} ms", V::WHAT)),
        Some(item) => {
            let (mut view, owned) = V::to_c(transport, item);
            view.set_internal(Box::into_raw(owned).cast());
            // write, not assignment: the caller's struct may be uninitialised.
            unsafe { out.write(view) };
            Ok(())
        }
    }
}

/// Frees what a polled view points to and zeroes it; NULL, zeroed and released views are
/// no-ops.
pub(super) unsafe fn release<V: CView>(view: *mut V) {
    if view.is_null() {
        return;
    }
    let internal = unsafe { V::internal_of(view) };
    if !internal.is_null() {
        drop(unsafe { Box::from_raw(internal.cast::<V::Owned>()) });
    }
    unsafe { view.write(V::zeroed()) };
}

struct UserData(*mut c_void);
// SAFETY: the pointer is the application's; we only hand it back to its own callback, on the
// transport's dispatcher thread, as the header documents.
unsafe impl Send for UserData {}

/// A handler calling the application's callback with a view valid during the call.
pub(super) fn handler<V: CView + 'static>(transport: u64, cb: unsafe extern "C" fn(*const V, *mut c_void), user_data: *mut c_void) -> Box<dyn FnMut(V::Item) + Send> {
    let ud = UserData(user_data);
    Box::new(move |item: V::Item| {
        let ud = &ud;
        let (view, _owned) = V::to_c(transport, item);
        // SAFETY: the callback is the application's; `view` and `_owned` live until it returns.
        unsafe { cb(&view, ud.0) };
    })
}
