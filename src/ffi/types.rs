//! Types shared with C. Enums that C passes *in* are plain integers validated on entry
//! (an out-of-range value is an error, not undefined behaviour); enums only returned to C
//! are Rust enums with a fixed representation.

use std::os::raw::{c_char, c_void};

/// ABI version of this header (see `rmw_abi_version`).
pub const RMW_ABI_VERSION: u32 = 1;
const _: () = assert!(RMW_ABI_VERSION == crate::ABI_VERSION);

/// Largest data-channel message `rmw_data_channel_send` / `rmw_transport_send_data` accept.
pub const RMW_MAX_MESSAGE_SIZE: usize = 65536;
const _: () = assert!(RMW_MAX_MESSAGE_SIZE == crate::peer::MAX_SEND_MESSAGE_SIZE);

/// Result of every fallible call. `RMW_OK` is 0, errors are negative; the text of the last
/// error on the calling thread is `rmw_last_error_message()`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_status_t {
    RMW_OK = 0,
    /// A pointer was NULL, a string was not UTF-8, a size or enum value was out of range.
    RMW_ERR_INVALID_ARGUMENT = -1,
    /// The handle is 0, was never created, was freed, or names another kind of object.
    RMW_ERR_INVALID_HANDLE = -2,
    /// The output buffer is too small; the required size was written to `*len`.
    RMW_ERR_BUFFER_TOO_SMALL = -3,
    /// Nothing happened within the timeout (e.g. no event to poll).
    RMW_ERR_TIMEOUT = -4,
    /// The peer, session or channel named does not exist.
    RMW_ERR_NOT_FOUND = -5,
    RMW_ERR_ALREADY_EXISTS = -6,
    /// The transport already holds `max_peers` peers.
    RMW_ERR_MAX_PEERS = -7,
    /// The signaling server or the data channel is not connected / open yet.
    RMW_ERR_NOT_CONNECTED = -8,
    RMW_ERR_SIGNALING = -9,
    RMW_ERR_WEBRTC = -10,
    /// The configuration JSON is malformed or a value is out of range.
    RMW_ERR_CONFIG = -11,
    RMW_ERR_IO = -12,
    /// The transport is closed (being freed).
    RMW_ERR_CLOSED = -13,
    /// A blocking call was made from a thread where it would deadlock (a library runtime
    /// thread, e.g. inside the log callback).
    RMW_ERR_WOULD_BLOCK = -14,
    /// An internal error was caught at the API boundary; the library is still usable.
    RMW_ERR_INTERNAL = -15,
    /// A media send queue is full (the encoder is behind): this input was not taken.
    RMW_ERR_QUEUE_FULL = -16,
    /// The codec (libopus, libvpx) refused the data or the settings.
    RMW_ERR_CODEC = -17,
}

/// A transport: one identity on the signaling server and its peer connections.
pub type rmw_transport_t = u64;
/// A running signaling server.
pub type rmw_signaling_server_t = u64;
/// A data channel; valid until its close event has been delivered or its transport is freed.
pub type rmw_data_channel_t = u64;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_event_kind_t {
    /// No event: a zero-initialised or released `rmw_event_t`.
    RMW_EVENT_NONE = 0,
    /// Announced on the signaling server (again after each reconnect).
    RMW_EVENT_SIGNALING_CONNECTED = 1,
    /// Lost the signaling server; `message` says why. Reconnection is automatic, and peer
    /// connections that are up keep working.
    RMW_EVENT_SIGNALING_DISCONNECTED = 2,
    /// `peer_id` is on the signaling server and can be connected to.
    RMW_EVENT_PEER_DISCOVERED = 3,
    /// `peer_id` left the signaling server (a live peer connection may continue).
    RMW_EVENT_PEER_LEFT = 4,
    /// `peer_id` sent an offer and `auto_answer` is off: call `rmw_transport_accept_peer` or
    /// `rmw_transport_disconnect_peer`.
    RMW_EVENT_PEER_OFFER = 5,
    /// The connection to `peer_id` changed to `peer_state`.
    RMW_EVENT_PEER_STATE_CHANGED = 6,
    /// `channel` (labelled `label`, to `peer_id`) is open; channels the remote opened are
    /// announced this way too.
    RMW_EVENT_DATA_CHANNEL_OPEN = 7,
    RMW_EVENT_DATA_CHANNEL_CLOSE = 8,
    /// A message on `channel`: `data`/`len`, `binary` false for text (UTF-8, not
    /// NUL-terminated).
    RMW_EVENT_DATA_CHANNEL_MESSAGE = 9,
    /// The buffered amount of `channel` fell to its low threshold.
    RMW_EVENT_DATA_CHANNEL_BUFFERED_AMOUNT_LOW = 10,
    /// Something failed; `message` says what, `peer_id` names the peer if one is concerned.
    RMW_EVENT_ERROR = 11,
    /// `peer_id` started sending track `track_id` of `media_kind`, coded as `codec` ("opus")
    /// at `clock_rate` with `channels` (the negotiated format: Opus is always 48000/2, even for
    /// a mono stream). Its decoded audio comes through
    /// `rmw_transport_poll_audio` / the audio callback.
    RMW_EVENT_TRACK_ADDED = 12,
    /// Track `track_id` of `peer_id` ended.
    RMW_EVENT_TRACK_REMOVED = 13,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_media_kind_t {
    RMW_MEDIA_NONE = 0,
    RMW_MEDIA_AUDIO = 1,
    RMW_MEDIA_VIDEO = 2,
}

/// Sample format of received audio (`audio_output_format` in the transport config).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_sample_format_t {
    /// Interleaved `float` in [-1, 1].
    RMW_SAMPLE_F32 = 0,
    /// Interleaved `int16_t`.
    RMW_SAMPLE_S16 = 1,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_peer_state_t {
    RMW_PEER_NEW = 0,
    RMW_PEER_CONNECTING = 1,
    RMW_PEER_CONNECTED = 2,
    RMW_PEER_DISCONNECTED = 3,
    RMW_PEER_FAILED = 4,
    RMW_PEER_CLOSED = 5,
}

/// One event. Every pointer in it is owned by the library: after `rmw_transport_poll_event`
/// it stays valid until `rmw_event_release`; inside the event callback, until the callback
/// returns. Fields that do not apply to the kind are 0 / NULL.
#[repr(C)]
#[derive(Debug)]
pub struct rmw_event_t {
    pub kind: rmw_event_kind_t,
    pub transport: rmw_transport_t,
    /// NUL-terminated peer id, or NULL.
    pub peer_id: *const c_char,
    pub peer_state: rmw_peer_state_t,
    pub channel: rmw_data_channel_t,
    /// NUL-terminated channel label, or NULL.
    pub label: *const c_char,
    /// Message payload (may contain NUL bytes), or NULL.
    pub data: *const u8,
    pub len: usize,
    pub binary: bool,
    /// NUL-terminated human-readable text (errors, disconnect reasons), or NULL.
    pub message: *const c_char,
    /// Track events: NUL-terminated track id (the sender's name for it: unique per peer,
    /// so `peer_id` + `track_id` identify a track), or NULL.
    pub track_id: *const c_char,
    pub media_kind: rmw_media_kind_t,
    /// Track events: NUL-terminated lower-case codec name ("opus"), or NULL.
    pub codec: *const c_char,
    pub clock_rate: u32,
    pub channels: u32,
    /// Library-private; do not touch.
    pub internal: *mut c_void,
}

/// An outgoing audio track of a transport; valid until `rmw_audio_track_free` or until its
/// transport is freed.
pub type rmw_audio_track_t = u64;

/// Whom an outgoing track sends to (`target_kind` arguments).
pub const RMW_TARGET_NONE: i32 = 0;
/// The peer named by `target_id`.
pub const RMW_TARGET_PEER: i32 = 1;
/// Every peer of the session named by `target_id`, as its membership changes.
pub const RMW_TARGET_SESSION: i32 = 2;
/// Every peer of the transport, later ones included.
pub const RMW_TARGET_ALL: i32 = 3;

/// Opus application modes (`rmw_audio_track_config_t.application`).
pub const RMW_OPUS_VOIP: i32 = 0;
pub const RMW_OPUS_AUDIO: i32 = 1;
pub const RMW_OPUS_LOW_DELAY: i32 = 2;

/// How an outgoing audio track encodes; start from `rmw_audio_track_config_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmw_audio_track_config_t {
    /// Rate of the PCM you send: 8000, 12000, 16000, 24000, 32000, 44100, 48000 or 96000 Hz
    /// (anything but 48000 is resampled). Default 48000.
    pub sample_rate: u32,
    /// 1 or 2 (interleaved). Default 1.
    pub channels: u32,
    /// Opus frame: 10, 20, 40 or 60 ms. Default 20.
    pub frame_ms: u32,
    /// Bits per second, 6000..=510000. Default 32000.
    pub bitrate: u32,
    /// 0 (fastest) ..= 10 (best). Default 9.
    pub complexity: u32,
    /// In-band FEC (the receiver rebuilds a lost frame from the next). Default true.
    pub fec: bool,
    /// Loss rate (0..=100 %) FEC is planned for. Default 10.
    pub expected_loss_percent: u32,
    /// Discontinuous transmission: silence is not sent. Default false.
    pub dtx: bool,
    /// `RMW_OPUS_VOIP` (default), `RMW_OPUS_AUDIO` or `RMW_OPUS_LOW_DELAY`.
    pub application: i32,
    /// Most PCM (ms) queued ahead of the encoder before sends are refused with
    /// `RMW_ERR_QUEUE_FULL`. Default 200.
    pub max_queue_ms: u32,
}

/// A block of decoded audio from one remote track. Every pointer is owned by the library:
/// after `rmw_transport_poll_audio` it stays valid until `rmw_audio_frame_release`; inside
/// the audio callback, until the callback returns.
#[repr(C)]
#[derive(Debug)]
pub struct rmw_audio_frame_t {
    pub transport: rmw_transport_t,
    /// NUL-terminated ids of the sending peer and of its track.
    pub peer_id: *const c_char,
    pub track_id: *const c_char,
    /// As configured: `audio_output_sample_rate`, `audio_output_channels`,
    /// `audio_output_format`.
    pub sample_rate: u32,
    pub channels: u32,
    pub format: rmw_sample_format_t,
    /// Interleaved samples: `samples_per_channel * channels` values of `format`.
    pub data: *const c_void,
    pub samples_per_channel: usize,
    /// RTP timestamp (48 kHz clock) of the first sample.
    pub rtp_timestamp: u32,
    /// Arrival of the packet, in microseconds of CLOCK_MONOTONIC (see `rmw_clock_us`).
    pub arrival_us: u64,
    /// Level as in RFC 6464: 0 is full scale, 127 silence (-dBov).
    pub level: u8,
    /// True when the block was lost and concealed or rebuilt from FEC.
    pub concealed: bool,
    /// Library-private; do not touch.
    pub internal: *mut c_void,
}

/// An outgoing video track of a transport; valid until `rmw_video_track_free` or until its
/// transport is freed.
pub type rmw_video_track_t = u64;

/// Pixel formats of frames you send (`rmw_raw_video_frame_t.format`).
/// planes: Y, U, V.
pub const RMW_PIXEL_I420: i32 = 0;
/// planes: Y, interleaved UV.
pub const RMW_PIXEL_NV12: i32 = 1;
/// One plane, bytes R, G, B, A in memory (e.g. a texture read back from a game engine).
pub const RMW_PIXEL_RGBA: i32 = 2;
/// One plane, bytes B, G, R, A in memory.
pub const RMW_PIXEL_BGRA: i32 = 3;

/// `rmw_video_track_config_t.speed`: the codec's real-time default.
pub const RMW_VIDEO_SPEED_DEFAULT: i32 = 99;

/// How an outgoing video track encodes; start from `rmw_video_track_config_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmw_video_track_config_t {
    /// Target bitrate, 30..=50000 kbit/s: the ceiling; a peer's REMB estimate lowers what the
    /// encoder aims at for it. Default 1500. Changeable with `rmw_video_track_set_bitrate`.
    pub bitrate_kbps: u32,
    /// Floor when following the peers' bandwidth estimates (REMB), 30..=50000 (capped by
    /// `bitrate_kbps`). Default 150.
    pub min_bitrate_kbps: u32,
    /// Nominal frame rate for rate control, 1..=120. Default 30.
    pub fps: u32,
    /// Longest run of frames between keyframes (0: libvpx decides). Default 3000.
    pub keyframe_interval: u32,
    /// libvpx cpu-used, -16..=16 (higher is faster), or `RMW_VIDEO_SPEED_DEFAULT`.
    pub speed: i32,
    /// Encoder threads, 1..=16. Default 1.
    pub threads: u32,
}

/// A frame you send. The library reads `sizes[i]` bytes at `planes[i]` during the call only
/// (it copies them); each plane needs `strides[i] * rows` bytes (rows: `height`, or
/// `(height + 1) / 2` for chroma planes). Unused planes (RGBA/BGRA: 1 and 2; NV12: 2) are
/// ignored and may be NULL.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmw_raw_video_frame_t {
    /// `RMW_PIXEL_I420`, `RMW_PIXEL_NV12`, `RMW_PIXEL_RGBA` or `RMW_PIXEL_BGRA`.
    pub format: i32,
    pub width: u32,
    pub height: u32,
    pub planes: [*const u8; 3],
    pub strides: [u32; 3],
    pub sizes: [usize; 3],
}

/// Layout of received frames (`video_output_format` in the transport config).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rmw_video_format_t {
    /// `planes` Y, U, V with `strides`; chroma planes are `(width + 1) / 2` wide.
    RMW_VIDEO_I420 = 0,
    /// `planes[0]` holds R, G, B, A bytes, `strides[0]` per row.
    RMW_VIDEO_RGBA = 1,
}

/// A decoded frame from one remote track. Every pointer is owned by the library: after
/// `rmw_transport_poll_video` it stays valid until `rmw_video_frame_release`; inside the
/// video callback, until the callback returns.
#[repr(C)]
#[derive(Debug)]
pub struct rmw_video_frame_t {
    pub transport: rmw_transport_t,
    pub peer_id: *const c_char,
    pub track_id: *const c_char,
    /// "vp8" or "vp9".
    pub codec: *const c_char,
    pub width: u32,
    pub height: u32,
    pub format: rmw_video_format_t,
    pub planes: [*const u8; 3],
    pub strides: [u32; 3],
    /// RTP timestamp (90 kHz clock).
    pub rtp_timestamp: u32,
    /// Arrival of the frame's last packet, microseconds of CLOCK_MONOTONIC (`rmw_clock_us`).
    pub arrival_us: u64,
    pub keyframe: bool,
    /// Library-private; do not touch.
    pub internal: *mut c_void,
}

/// Runs on the transport's video thread, with the same rules as the audio callback.
pub type rmw_video_callback_t = Option<unsafe extern "C" fn(frame: *const rmw_video_frame_t, user_data: *mut c_void)>;

/// Runs on the transport's audio thread (never a thread the library needs for the network).
/// `frame` and its samples are valid until the callback returns. Any API function may be
/// called from it, `rmw_transport_free` of this transport included.
pub type rmw_audio_callback_t = Option<unsafe extern "C" fn(frame: *const rmw_audio_frame_t, user_data: *mut c_void)>;

/// Reliability of a data channel, as in the W3C `RTCDataChannelInit`. At most one of
/// `max_retransmits` and `max_packet_lifetime_ms` may be >= 0; both -1 means reliable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmw_data_channel_options_t {
    pub ordered: bool,
    /// -1: unlimited (reliable); 0..=65535: give up on a message after that many retransmits.
    pub max_retransmits: i32,
    /// -1: unlimited; 0..=65535: give up on a message after that many milliseconds.
    pub max_packet_lifetime_ms: i32,
}

/// Log levels of `rmw_set_log_callback`.
pub const RMW_LOG_ERROR: i32 = 1;
pub const RMW_LOG_WARN: i32 = 2;
pub const RMW_LOG_INFO: i32 = 3;
pub const RMW_LOG_DEBUG: i32 = 4;
pub const RMW_LOG_TRACE: i32 = 5;

/// Runs on the transport's event thread (never on a thread the library needs for media).
/// `event` and everything it points to are valid until the callback returns. Any API
/// function may be called from it, `rmw_transport_free` of this transport included.
pub type rmw_event_callback_t = Option<unsafe extern "C" fn(event: *const rmw_event_t, user_data: *mut c_void)>;

/// Runs on whichever thread logged, library threads included: keep it short, and call no
/// blocking API function from it (they return `RMW_ERR_WOULD_BLOCK` there). `target` and
/// `message` are valid until it returns.
pub type rmw_log_callback_t =
    Option<unsafe extern "C" fn(level: i32, target: *const c_char, message: *const c_char, user_data: *mut c_void)>;

impl From<crate::events::MediaKind> for rmw_media_kind_t {
    fn from(k: crate::events::MediaKind) -> Self {
        match k {
            crate::events::MediaKind::Audio => rmw_media_kind_t::RMW_MEDIA_AUDIO,
            crate::events::MediaKind::Video => rmw_media_kind_t::RMW_MEDIA_VIDEO,
        }
    }
}

impl From<crate::events::PeerState> for rmw_peer_state_t {
    fn from(s: crate::events::PeerState) -> Self {
        use crate::events::PeerState::*;
        match s {
            New => rmw_peer_state_t::RMW_PEER_NEW,
            Connecting => rmw_peer_state_t::RMW_PEER_CONNECTING,
            Connected => rmw_peer_state_t::RMW_PEER_CONNECTED,
            Disconnected => rmw_peer_state_t::RMW_PEER_DISCONNECTED,
            Failed => rmw_peer_state_t::RMW_PEER_FAILED,
            Closed => rmw_peer_state_t::RMW_PEER_CLOSED,
        }
    }
}
