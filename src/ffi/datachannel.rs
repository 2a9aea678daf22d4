//! Data channel exports.

use super::args::*;
use super::guard::{call, fail};
use super::handles;
use super::types::rmw_status_t::{self, *};
use super::types::*;
use crate::datachannel::{ChannelOptions, Reliability};
use std::os::raw::c_char;

/// Ordered and reliable: the defaults of `RTCDataChannelInit`.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_data_channel_options_default() -> rmw_data_channel_options_t {
    rmw_data_channel_options_t { ordered: true, max_retransmits: -1, max_packet_lifetime_ms: -1 }
}

fn options(o: &rmw_data_channel_options_t) -> super::guard::FfiResult<ChannelOptions> {
    let limit = |v: i32, name: &str| -> super::guard::FfiResult<Option<u16>> {
        match v {
            -1 => Ok(None),
            0..=65535 => Ok(Some(v as u16)),
            _ => fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} must be -1 or 0..=65535, got {v}")),
        }
    };
    let reliability = match (limit(o.max_retransmits, "max_retransmits")?, limit(o.max_packet_lifetime_ms, "max_packet_lifetime_ms")?) {
        (None, None) => Reliability::Reliable,
        (Some(n), None) => Reliability::MaxRetransmits(n),
        (None, Some(ms)) => Reliability::MaxPacketLifetimeMs(ms),
        (Some(_), Some(_)) => return fail(RMW_ERR_INVALID_ARGUMENT, "set max_retransmits or max_packet_lifetime_ms, not both"),
    };
    Ok(ChannelOptions { ordered: o.ordered, reliability })
}

/// Creates a data channel labelled `label` to `peer_id` (`options` NULL: ordered, reliable).
/// It is usable after `RMW_EVENT_DATA_CHANNEL_OPEN` for it. `*out` receives its handle,
/// owned by the transport (closed and invalidated when the transport is freed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_data_channel_create(
    transport: rmw_transport_t,
    peer_id: *const c_char,
    label: *const c_char,
    options_ptr: *const rmw_data_channel_options_t,
    out: *mut rmw_data_channel_t,
) -> rmw_status_t {
    call("rmw_data_channel_create", || {
        let out = unsafe { out_arg(out, "out") }?;
        let peer = unsafe { str_arg(peer_id, "peer_id") }?;
        let label = unsafe { str_arg(label, "label") }?;
        let opts = if options_ptr.is_null() {
            ChannelOptions::default()
        } else {
            // Field by field through raw reads: a `bool` byte other than 0/1 from C must not
            // become an invalid Rust bool.
            let o = unsafe {
                rmw_data_channel_options_t {
                    ordered: std::ptr::addr_of!((*options_ptr).ordered).cast::<u8>().read() != 0,
                    max_retransmits: std::ptr::addr_of!((*options_ptr).max_retransmits).read(),
                    max_packet_lifetime_ms: std::ptr::addr_of!((*options_ptr).max_packet_lifetime_ms).read(),
                }
            };
            options(&o)?
        };
        let id = handles::transport(transport)?.create_data_channel(peer, label, &opts)?;
        *out = handles::channel_handle(id);
        Ok(())
    })
}

/// Sends one message (at most `RMW_MAX_MESSAGE_SIZE` bytes; the data is copied). `binary` false sends text.
/// `RMW_ERR_NOT_CONNECTED` before the channel is open.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_data_channel_send(channel: rmw_data_channel_t, data: *const u8, len: usize, binary: bool) -> rmw_status_t {
    call("rmw_data_channel_send", || {
        let data = unsafe { bytes_arg(data, len, "data") }?;
        let (t, id) = handles::channel(channel)?;
        Ok(t.send_on_channel(id, data, binary)?)
    })
}

/// Bytes queued for sending and not yet acknowledged by the peer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_data_channel_buffered_amount(channel: rmw_data_channel_t, out: *mut u64) -> rmw_status_t {
    call("rmw_data_channel_buffered_amount", || {
        let out = unsafe { out_arg(out, "out") }?;
        let (t, id) = handles::channel(channel)?;
        *out = t.channel_buffered_amount(id)? as u64;
        Ok(())
    })
}

/// `RMW_EVENT_DATA_CHANNEL_BUFFERED_AMOUNT_LOW` fires when the buffered amount falls to
/// `threshold` bytes or below (use it to pace large transfers).
#[unsafe(no_mangle)]
pub extern "C" fn rmw_data_channel_set_buffered_amount_low_threshold(channel: rmw_data_channel_t, threshold: u64) -> rmw_status_t {
    call("rmw_data_channel_set_buffered_amount_low_threshold", || {
        let (t, id) = handles::channel(channel)?;
        Ok(t.set_channel_low_threshold(id, usize::try_from(threshold).unwrap_or(usize::MAX))?)
    })
}

/// Label of the channel (size-query pattern).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_data_channel_label(channel: rmw_data_channel_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_data_channel_label", || {
        let (t, id) = handles::channel(channel)?;
        unsafe { write_string(&t.channel_info(id)?.label, buf, len) }
    })
}

/// Closes the channel on both sides; `RMW_EVENT_DATA_CHANNEL_CLOSE` follows, after which the
/// handle is invalid.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_data_channel_close(channel: rmw_data_channel_t) -> rmw_status_t {
    call("rmw_data_channel_close", || {
        let (t, id) = handles::channel(channel)?;
        Ok(t.close_channel(id)?)
    })
}
