//! Audio exports: outgoing tracks fed with PCM, and decoded frames of remote tracks by poll
//! or callback.

use super::args::*;
use super::delivery;
use super::event::cstring;
use super::guard::{FfiResult, call, fail};
use super::handles;
use super::types::rmw_status_t::{self, *};
use super::types::*;
use crate::media::TrackTarget;
use crate::media::audio::{AudioFrame, AudioSendConfig, OpusApplication, Pcm, Samples};
use std::ffi::CString;
use std::os::raw::{c_char, c_void};

/// The defaults: 48 kHz mono input, 20 ms frames, 32 kbit/s, complexity 9, FEC on (planned
/// for 10 % loss), DTX off, VoIP mode, 200 ms of queue.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_audio_track_config_default() -> rmw_audio_track_config_t {
    to_c_config(&AudioSendConfig::default())
}

fn to_c_config(d: &AudioSendConfig) -> rmw_audio_track_config_t {
    rmw_audio_track_config_t {
        sample_rate: d.sample_rate,
        channels: d.channels.into(),
        frame_ms: d.frame_ms,
        bitrate: d.bitrate,
        complexity: d.complexity.into(),
        fec: d.fec,
        expected_loss_percent: d.expected_loss_percent.into(),
        dtx: d.dtx,
        application: match d.application {
            OpusApplication::Voip => RMW_OPUS_VOIP,
            OpusApplication::Audio => RMW_OPUS_AUDIO,
            OpusApplication::LowDelay => RMW_OPUS_LOW_DELAY,
        },
        max_queue_ms: d.max_queue_ms,
    }
}

/// Reads the C struct field by field through raw reads (a `bool` byte other than 0/1 from C
/// must not become an invalid Rust bool) and checks every value.
unsafe fn read_config(p: *const rmw_audio_track_config_t) -> FfiResult<AudioSendConfig> {
    if p.is_null() {
        return Ok(AudioSendConfig::default());
    }
    macro_rules! field {
        ($f:ident) => {
            unsafe { std::ptr::addr_of!((*p).$f).read() }
        };
    }
    let flag = |b: u8| b != 0;
    let small = |v: u32, name: &str| -> FfiResult<u8> {
        u8::try_from(v).or_else(|_| fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} {v} is out of range")))
    };
    let application = match field!(application) {
        RMW_OPUS_VOIP => OpusApplication::Voip,
        RMW_OPUS_AUDIO => OpusApplication::Audio,
        RMW_OPUS_LOW_DELAY => OpusApplication::LowDelay,
        v => return fail(RMW_ERR_INVALID_ARGUMENT, format!("application must be RMW_OPUS_VOIP, RMW_OPUS_AUDIO or RMW_OPUS_LOW_DELAY, got {v}")),
    };
    let channels = field!(channels);
    let cfg = AudioSendConfig {
        sample_rate: field!(sample_rate),
        channels: u16::try_from(channels).unwrap_or(u16::MAX),
        frame_ms: field!(frame_ms),
        bitrate: field!(bitrate),
        complexity: small(field!(complexity), "complexity")?,
        fec: flag(unsafe { std::ptr::addr_of!((*p).fec).cast::<u8>().read() }),
        expected_loss_percent: small(field!(expected_loss_percent), "expected_loss_percent")?,
        dtx: flag(unsafe { std::ptr::addr_of!((*p).dtx).cast::<u8>().read() }),
        application,
        max_queue_ms: field!(max_queue_ms),
    };
    cfg.validate()?;
    Ok(cfg)
}

pub(super) unsafe fn read_target(kind: i32, id: *const c_char) -> FfiResult<TrackTarget> {
    let name = || unsafe { str_arg(id, "target_id") }.map(String::from);
    Ok(match kind {
        RMW_TARGET_NONE => TrackTarget::None,
        RMW_TARGET_PEER => TrackTarget::Peer(name()?),
        RMW_TARGET_SESSION => TrackTarget::Session(name()?),
        RMW_TARGET_ALL => TrackTarget::All,
        v => return fail(RMW_ERR_INVALID_ARGUMENT, format!("target_kind must be one of RMW_TARGET_NONE/PEER/SESSION/ALL, got {v}")),
    })
}

/// Creates an outgoing Opus track (`config` NULL: the defaults) sending to `target_kind`:
/// `RMW_TARGET_PEER` or `RMW_TARGET_SESSION` with the name in `target_id`, `RMW_TARGET_ALL`
/// or `RMW_TARGET_NONE` (`target_id` ignored, may be NULL). Needs `enable_audio` (default
/// on). A peer carries one outgoing audio track at a time: a second track aimed at it skips
/// it (its stats count the peer as busy). `*out` receives the track, owned by the transport.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_new(
    transport: rmw_transport_t,
    config: *const rmw_audio_track_config_t,
    target_kind: i32,
    target_id: *const c_char,
    out: *mut rmw_audio_track_t,
) -> rmw_status_t {
    call("rmw_audio_track_new", || {
        let out = unsafe { out_arg(out, "out") }?;
        let cfg = unsafe { read_config(config) }?;
        let target = unsafe { read_target(target_kind, target_id) }?;
        let id = handles::transport(transport)?.add_audio_track(target, cfg)?;
        *out = handles::audio_track_handle(id);
        Ok(())
    })
}

/// Queues `samples_per_channel` frames of interleaved float PCM (the track's rate and
/// channels) and returns without waiting for the encoder: any chunk size works. The samples
/// are copied. `RMW_ERR_QUEUE_FULL` when more than the track's `max_queue_ms` is waiting
/// (nothing of this call was taken: retry later or drop it); a chunk longer than the whole
/// queue is `RMW_ERR_INVALID_ARGUMENT`. Safe from any thread, e.g. an audio device callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_send_f32(track: rmw_audio_track_t, pcm: *const f32, samples_per_channel: usize) -> rmw_status_t {
    call("rmw_audio_track_send_f32", || unsafe { send(track, samples_per_channel, |n| slice_arg(pcm, n, "pcm").map(Pcm::F32)) })
}

/// As `rmw_audio_track_send_f32`, for interleaved `int16_t` PCM.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_send_s16(track: rmw_audio_track_t, pcm: *const i16, samples_per_channel: usize) -> rmw_status_t {
    call("rmw_audio_track_send_s16", || unsafe { send(track, samples_per_channel, |n| slice_arg(pcm, n, "pcm").map(Pcm::I16)) })
}

unsafe fn send<'a>(track: u64, samples_per_channel: usize, pcm: impl FnOnce(usize) -> FfiResult<Pcm<'a>>) -> FfiResult {
    let (t, id) = handles::audio_track(track)?;
    let channels = t.audio_track_config(id)?.channels as usize;
    let Some(n) = samples_per_channel.checked_mul(channels) else {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("samples_per_channel {samples_per_channel} is out of range"));
    };
    if n == 0 {
        return fail(RMW_ERR_INVALID_ARGUMENT, "samples_per_channel is 0");
    }
    Ok(t.send_audio(id, pcm(n)?)?)
}

/// Re-aims the track (same arguments as in `rmw_audio_track_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_set_target(track: rmw_audio_track_t, target_kind: i32, target_id: *const c_char) -> rmw_status_t {
    call("rmw_audio_track_set_target", || {
        let target = unsafe { read_target(target_kind, target_id) }?;
        let (t, id) = handles::audio_track(track)?;
        Ok(t.set_audio_track_target(id, target)?)
    })
}

/// Counters as JSON (size-query pattern): samples in, queue-full refusals, frames encoded,
/// frames not sent by DTX, packets and bytes sent, peers reached and peers busy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_stats_json(track: rmw_audio_track_t, buf: *mut c_char, len: *mut usize) -> rmw_status_t {
    call("rmw_audio_track_stats_json", || {
        let (t, id) = handles::audio_track(track)?;
        let mut v = serde_json::to_value(t.audio_track_stats(id)?).unwrap_or_default();
        handles::name_track(&mut v, handles::audio_track_handle);
        unsafe { write_string(&v.to_string(), buf, len) }
    })
}

/// Writes the track's configuration (as given to `rmw_audio_track_new`, defaults filled in)
/// to `*out`: e.g. its channel count, which `samples_per_channel` of the sends counts in.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_get_config(track: rmw_audio_track_t, out: *mut rmw_audio_track_config_t) -> rmw_status_t {
    call("rmw_audio_track_get_config", || {
        let out = unsafe { out_arg(out, "out") }?;
        let (t, id) = handles::audio_track(track)?;
        *out = to_c_config(&t.audio_track_config(id)?);
        Ok(())
    })
}

/// Stops the track: PCM already queued is still encoded and sent, then the handle becomes
/// invalid. 0 is a no-op. (Freeing the transport frees its tracks.)
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_track_free(track: rmw_audio_track_t) -> rmw_status_t {
    call("rmw_audio_track_free", || {
        if track == 0 {
            return Ok(());
        }
        let (t, id) = handles::audio_track(track)?;
        Ok(t.remove_audio_track(id)?)
    })
}

/// What an `rmw_audio_frame_t` points into.
pub(super) struct Owned {
    peer_id: CString,
    track_id: CString,
    samples: Samples,
}

fn frame_to_c(transport: u64, f: AudioFrame) -> (rmw_audio_frame_t, Box<Owned>) {
    let samples_per_channel = f.samples_per_channel();
    let o = Box::new(Owned { peer_id: cstring(&f.peer_id), track_id: cstring(&f.track_id), samples: f.samples });
    let (format, data) = match &o.samples {
        Samples::F32(s) => (rmw_sample_format_t::RMW_SAMPLE_F32, s.as_ptr().cast::<c_void>()),
        Samples::S16(s) => (rmw_sample_format_t::RMW_SAMPLE_S16, s.as_ptr().cast::<c_void>()),
    };
    let view = rmw_audio_frame_t {
        transport,
        peer_id: o.peer_id.as_ptr(),
        track_id: o.track_id.as_ptr(),
        sample_rate: f.sample_rate,
        channels: f.channels.into(),
        format,
        data,
        samples_per_channel,
        rtp_timestamp: f.rtp_timestamp,
        arrival_us: f.arrival_us,
        level: f.level,
        concealed: f.concealed,
        internal: std::ptr::null_mut(),
    };
    (view, o)
}

fn zeroed_frame() -> rmw_audio_frame_t {
    rmw_audio_frame_t {
        transport: 0,
        peer_id: std::ptr::null(),
        track_id: std::ptr::null(),
        sample_rate: 0,
        channels: 0,
        format: rmw_sample_format_t::RMW_SAMPLE_F32,
        data: std::ptr::null(),
        samples_per_channel: 0,
        rtp_timestamp: 0,
        arrival_us: 0,
        level: 127,
        concealed: false,
        internal: std::ptr::null_mut(),
    }
}

/// Waits up to `timeout_ms` (0: do not wait; negative: until a frame comes or the transport
/// is freed) for the next decoded audio frame of any remote track and writes it to `*frame`.
/// `RMW_ERR_TIMEOUT` when none came. Give each frame back with `rmw_audio_frame_release`.
/// When the application does not keep up, the oldest frames are dropped (counted in
/// `audio_frames_dropped` of `rmw_transport_stats_json`); the network is never held up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_poll_audio(transport: rmw_transport_t, frame: *mut rmw_audio_frame_t, timeout_ms: i32) -> rmw_status_t {
    call("rmw_transport_poll_audio", || unsafe { delivery::poll(transport, frame, timeout_ms, |t, d| t.poll_audio(d)) })
}

/// Frees what a polled frame points to and zeroes it. NULL, a zeroed frame, or one released
/// before are no-ops. Never call it on the frame passed to the callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_audio_frame_release(frame: *mut rmw_audio_frame_t) {
    let _ = call("rmw_audio_frame_release", || {
        unsafe { delivery::release(frame) };
        Ok(())
    });
}

/// Sets the callback that receives every decoded audio frame on the transport's audio thread
/// (started on first use), or with `callback` NULL goes back to polling. Same rules as
/// `rmw_transport_set_event_callback`: returns after a call in progress has returned, and the
/// callback may call any function, `rmw_transport_free` included.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmw_transport_set_audio_callback(transport: rmw_transport_t, callback: rmw_audio_callback_t, user_data: *mut c_void) -> rmw_status_t {
    call("rmw_transport_set_audio_callback", || {
        let t = handles::transport(transport)?;
        let handler = callback.map(|cb| delivery::handler::<rmw_audio_frame_t>(transport, cb, user_data));
        Ok(t.set_audio_handler(handler)?)
    })
}

/// Microseconds of CLOCK_MONOTONIC: the clock of the `arrival_us` of audio and video frames.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_clock_us() -> u64 {
    crate::media::monotonic_us()
}

delivery::c_view!(rmw_audio_frame_t, AudioFrame, Owned, "audio frame", frame_to_c, zeroed_frame);
