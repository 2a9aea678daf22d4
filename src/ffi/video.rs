//! Video exports: outgoing tracks fed with raw frames, and decoded frames of remote tracks by
//! poll or callback.

use super::args::*;
use super::audio::read_target;
use super::delivery;
use super::event::cstring;
use super::guard::{FfiResult, call, fail};
use super::handles;
use super::types::rmw_status_t::{self, *};
use super::types::*;
use crate::media::video::{PixelFormat, RawFrame, VideoFrame, VideoOutputFormat, VideoSendConfig};
use std::ffi::CString;
use std::os::raw::{c_char, c_void};

/// The defaults: 1500 kbit/s, 30 fps, a keyframe at least every 3000 frames, the codec's
/// real-time speed, one encoder thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_video_track_config_default() -> rmw_video_track_config_t {
    let d = VideoSendConfig::default();
    rmw_video_track_config_t {
        bitrate_kbps: d.bitrate_kbps,
        min_bitrate_kbps: d.min_bitrate_kbps,
        fps: d.fps,
        keyframe_interval: d.keyframe_interval,
        speed: d.speed.unwrap_or(RMW_VIDEO_SPEED_DEFAULT),
        threads: d.threads,
    }
}

unsafe fn read_config(p: *const rmw_video_track_config_t) -> FfiResult<VideoSendConfig> {
    if p.is_null() {
        return Ok(VideoSendConfig::default());
    }
    // Plain integers only: a by-value copy is defined for any bit pattern.
    let c = unsafe { p.read() };
    let cfg = VideoSendConfig {
        bitrate_kbps: c.bitrate_kbps,
        min_bitrate_kbps: c.min_bitrate_kbps,
        fps: c.fps,
        keyframe_interval: c.keyframe_interval,
        speed: (c.speed != RMW_VIDEO_SPEED_DEFAULT).then_some(c.speed),
        threads: c.threads,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Creates an outgoing video track (`config` NULL: the defaults) sending to `target_kind` /
/// `target_id` as in `rmw_audio_track_new`. Each peer gets the codec negotiated with it (VP8
/// or VP9; the transport's `video_codec` when the peer accepts it); a broadcast is encoded once
/// per codec. Needs `enable_video` (default on). `*out` receives the track.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_video_track_new(
    transport: rmw_transport_t,
    config: *const rmw_video_track_config_t,
    target_kind: i32,
    target_id: *const c_char,
    out: *mut rmw_video_track_t,
) -> rmw_status_t {
    call("rmw_video_track_new", || {
        let out = unsafe { out_arg(out, "out") }?;
        let cfg = unsafe { read_config(config) }?;
        let target = unsafe { read_target(target_kind, target_id) }?;
        let id = handles::transport(transport)?.add_video_track(target, cfg)?;
        *out = handles::video_track_handle(id);
        Ok(())
    })
}

/// Copies the frame and returns without waiting for the encoder (which converts it to I420,
/// encodes and sends it on its own thread). If the encoder has not taken the previous frame
/// yet, that one is dropped: the newest frame wins (counted as `frames_dropped`). The size
/// may change from one frame to the next (the encoder restarts with a keyframe).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_video_track_send(track: rmw_video_track_t, frame: *const rmw_raw_video_frame_t) -> rmw_status_t {
    call("rmw_video_track_send", || {
        if frame.is_null() {
            return fail(RMW_ERR_INVALID_ARGUMENT, "frame is NULL");
        }
        let (t, id) = handles::video_track(track)?;
        let f = unsafe { frame.read() };
        let format = match f.format {
            RMW_PIXEL_I420 => PixelFormat::I420,
            RMW_PIXEL_NV12 => PixelFormat::Nv12,
            RMW_PIXEL_RGBA => PixelFormat::Rgba,
            RMW_PIXEL_BGRA => PixelFormat::Bgra,
            v => return fail(RMW_ERR_INVALID_ARGUMENT, format!("format must be one of RMW_PIXEL_I420/NV12/RGBA/BGRA, got {v}")),
        };
        let used = match format {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            PixelFormat::Rgba | PixelFormat::Bgra => 1,
        };
        let mut planes: [&[u8]; 3] = [&[]; 3];
        for i in 0..used {
            planes[i] = unsafe { bytes_arg(f.planes[i], f.sizes[i], "frame plane") }?;
            if planes[i].is_empty() {
                return fail(RMW_ERR_INVALID_ARGUMENT, format!("plane {i} is empty"));
            }
        }
        let raw = RawFrame { format, width: f.width, height: f.height, planes, strides: f.strides };
        Ok(t.send_video(id, &raw)?)
    })
}

/// Re-aims the track (same arguments as in `rmw_video_track_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_video_track_set_target(track: rmw_video_track_t, target_kind: i32, target_id: *const c_char) -> rmw_status_t {
    call("rmw_video_track_set_target", || {
        let target = unsafe { read_target(target_kind, target_id) }?;
        let (t, id) = handles::video_track(track)?;
        Ok(t.set_video_track_target(id, target)?)
    })
}

/// Changes the target bitrate (30..=50000 kbit/s) from the next frame on.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_video_track_set_bitrate(track: rmw_video_track_t, kbps: u32) -> rmw_status_t {
    call("rmw_video_track_set_bitrate", || {
        let (t, id) = handles::video_track(track)?;
        Ok(t.set_video_bitrate(id, kbps)?)
    })
}

/// The next frame sent is encoded as a keyframe (peers' PLI/FIR do this by themselves).
#[unsafe(no_mangle)]
pub extern "C" fn rmw_video_track_request_keyframe(track: rmw_video_track_t) -> rmw_status_t {
    call("rmw_video_track_request_keyframe", || {
        let (t, id) = handles::video_track(track)?;
        Ok(t.request_video_keyframe(id)?)
    })
}

/// Counters as JSON (size-query pattern): frames in, dropped (newest won), encoded,
/// keyframes encoded and requested, packets and bytes sent, target bitrate, size, peers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_video_track_stats_json(track: rmw_video_track_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_video_track_stats_json", || {
        let (t, id) = handles::video_track(track)?;
        let mut v = serde_json::to_value(t.video_track_stats(id)?).unwrap_or_default();
        handles::name_track(&mut v, handles::video_track_handle);
        unsafe { write_string(&v.to_string(), buf, len) }
    })
}

/// Stops the track (a frame not yet encoded is still sent); the handle becomes invalid. 0 is
/// a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_video_track_free(track: rmw_video_track_t) -> rmw_status_t {
    call("rmw_video_track_free", || {
        if track == 0 {
            return Ok(());
        }
        let (t, id) = handles::video_track(track)?;
        Ok(t.remove_video_track(id)?)
    })
}

pub(super) struct Owned {
    peer_id: CString,
    track_id: CString,
    codec: CString,
    data: Vec<u8>,
}

fn frame_to_c(transport: u64, f: VideoFrame) -> (rmw_video_frame_t, Box<Owned>) {
    let o = Box::new(Owned { peer_id: cstring(&f.peer_id), track_id: cstring(&f.track_id), codec: cstring(f.codec.name()), data: f.data });
    let (format, planes) = match f.format {
        VideoOutputFormat::I420 => (rmw_video_format_t::RMW_VIDEO_I420, f.offsets.map(|off| o.data[off..].as_ptr())),
        VideoOutputFormat::Rgba => (rmw_video_format_t::RMW_VIDEO_RGBA, [o.data.as_ptr(), std::ptr::null(), std::ptr::null()]),
    };
    let view = rmw_video_frame_t {
        transport,
        peer_id: o.peer_id.as_ptr(),
        track_id: o.track_id.as_ptr(),
        codec: o.codec.as_ptr(),
        width: f.width,
        height: f.height,
        format,
        planes,
        strides: f.strides,
        rtp_timestamp: f.rtp_timestamp,
        arrival_us: f.arrival_us,
        keyframe: f.keyframe,
        internal: std::ptr::null_mut(),
    };
    (view, o)
}

fn zeroed_frame() -> rmw_video_frame_t {
    rmw_video_frame_t {
        transport: 0,
        peer_id: std::ptr::null(),
        track_id: std::ptr::null(),
        codec: std::ptr::null(),
        width: 0,
        height: 0,
        format: rmw_video_format_t::RMW_VIDEO_I420,
        planes: [std::ptr::null(); 3],
        strides: [0; 3],
        rtp_timestamp: 0,
        arrival_us: 0,
        keyframe: false,
        internal: std::ptr::null_mut(),
    }
}

/// Waits up to `timeout_ms` (0: do not wait; negative: until a frame comes or the transport
/// is freed) for the next decoded video frame of any remote track. `RMW_ERR_TIMEOUT` when none
/// came. Give each frame back with `rmw_video_frame_release`. When the application falls
/// behind, the oldest frames are dropped (`video_frames_dropped` in the transport's stats).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_poll_video(transport: rmw_transport_t, frame: *mut rmw_video_frame_t, timeout_ms: i32) -> rmw_status_t {
    call("rmw_transport_poll_video", || unsafe { delivery::poll(transport, frame, timeout_ms, |t, d| t.poll_video(d)) })
}

/// Frees what a polled frame points to and zeroes it. NULL, a zeroed frame, or one released
/// before are no-ops. Never call it on the frame passed to the callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_video_frame_release(frame: *mut rmw_video_frame_t) {
    let _ = call("rmw_video_frame_release", || {
        unsafe { delivery::release(frame) };
        Ok(())
    });
}

/// Sets the callback that receives every decoded video frame on the transport's video thread
/// (started on first use), or with `callback` NULL goes back to polling. Same rules as
/// `rmw_transport_set_event_callback`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_set_video_callback(transport: rmw_transport_t, callback: rmw_video_callback_t, user_data: *mut c_void) -> rmw_status_t {
    call("rmw_transport_set_video_callback", || {
        let t = handles::transport(transport)?;
        let handler = callback.map(|cb| delivery::handler::<rmw_video_frame_t>(transport, cb, user_data));
        Ok(t.set_video_handler(handler)?)
    })
}

delivery::c_view!(rmw_video_frame_t, VideoFrame, Owned, "video frame", frame_to_c, zeroed_frame);
