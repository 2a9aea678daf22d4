//! Safe VP8/VP9 real-time encoder and decoder over libvpx (via `env-libvpx-sys`).
//!
//! Design notes for callers:
//! * **Timestamps** are in the 90 kHz RTP video clock (the encoder's timebase is 1/90000,
//!   as in WebRTC). libvpx's rate control derives the frame rate from the *difference*
//!   between consecutive pts values, so pass real capture times in 90 kHz ticks (or
//!   `frame_index * 90000 / fps`), never bare frame indices. pts must strictly increase.
//! * **Resolution changes**: the encoder is fixed to `EncoderConfig::{width,height}`; a frame
//!   of another size is rejected with `Err`. Re-create the encoder (the new one starts with a
//!   keyframe). The decoder follows resolution changes in the bitstream by itself (a new
//!   keyframe carries the new size) and `I420Buf` always has the decoded frame's size.
//! * **Threads**: `Encoder` and `Decoder` are `Send` (move them to a codec thread) but not
//!   `Sync`; every call needs `&mut self`. Independent instances may run in parallel.
//! * Errors never panic and never cause UB: sizes, strides and slice lengths are checked
//!   before any pointer reaches libvpx.

use std::ffi::{CStr, c_char, c_int, c_long, c_uint, c_ulong};
use std::fmt;
use std::ptr;

use vpx_sys as sys;

/// RTP video clock; the encoder's timebase is 1/RTP_CLOCK_HZ.
pub const RTP_CLOCK_HZ: u32 = 90_000;
/// Largest width/height accepted anywhere in this module (VP8 stores 14 bits).
pub const MAX_DIMENSION: u32 = 16_383;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Vp8,
    Vp9,
}

impl Codec {
    /// Real-time speed used by `EncoderConfig::default()` / `EncoderConfig::new()`.
    ///
    /// * VP8: `-6`. For VP8 in real-time mode a *negative* cpu-used means "use exactly
    ///   speed |n|", a positive one lets libvpx auto-select the speed from measured encode
    ///   time (non-deterministic). WebRTC uses -6 on desktop (-12 on mobile ARM).
    /// * VP9: `7`. VP9 uses |cpu-used|; 5..9 are the real-time speeds, and 7 is the usual
    ///   desktop real-time choice for camera-sized frames (WebRTC uses lower speeds for small
    ///   frames and higher ones on mobile). 8 is ~20-25% faster at 720p for ~0.1 dB; see the
    ///   timing test.
    pub const fn default_speed(self) -> i32 {
        match self {
            Codec::Vp8 => -6,
            Codec::Vp9 => 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    /// Nominal frame rate; used for the per-frame duration and the keyframe size cap.
    pub fps: u32,
    /// Max frames between keyframes (libvpx kf_max_dist, auto placement); 0 = libvpx default.
    pub keyframe_interval: u32,
    /// VP8E_SET_CPUUSED (both codecs). See `Codec::default_speed`.
    pub speed: i32,
    /// g_threads. For VP9, >1 also enables row-mt and log2(threads) tile columns.
    pub threads: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            codec: Codec::Vp8,
            width: 640,
            height: 480,
            bitrate_kbps: 1000,
            fps: 30,
            keyframe_interval: 3000,
            speed: Codec::Vp8.default_speed(),
            threads: 1,
        }
    }
}

impl EncoderConfig {
    /// Defaults with the codec's own real-time speed. Prefer this over
    /// `EncoderConfig { codec: Codec::Vp9, ..Default::default() }`, which would keep VP8's -6.
    pub fn new(codec: Codec) -> Self {
        EncoderConfig { codec, speed: codec.default_speed(), ..Default::default() }
    }
}

/// Borrowed I420 (YUV 4:2:0, 8 bit) picture. Chroma planes are `(w+1)/2 x (h+1)/2`.
#[derive(Debug, Clone, Copy)]
pub struct I420<'a> {
    pub width: u32,
    pub height: u32,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub stride_y: u32,
    pub stride_u: u32,
    pub stride_v: u32,
}

impl I420<'_> {
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Checks dimensions, strides and that each plane holds `stride * rows` bytes.
    /// Everything that hands an `I420` to C code calls this first.
    pub fn validate(&self) -> Result<(), String> {
        check_dims(self.width, self.height)?;
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (self.chroma_width() as usize, self.chroma_height() as usize);
        check_plane("Y", self.y.len(), self.stride_y, w, h)?;
        check_plane("U", self.u.len(), self.stride_u, cw, ch)?;
        check_plane("V", self.v.len(), self.stride_v, cw, ch)
    }
}

pub(crate) fn check_dims(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(format!("invalid frame size {width}x{height} (1..={MAX_DIMENSION})"));
    }
    Ok(())
}

/// A plane of `rows` rows of `row_bytes` bytes each at `stride` must fit in `len` bytes.
/// Strides must also fit in a C `int`.
pub(crate) fn check_plane(
    name: &str,
    len: usize,
    stride: u32,
    row_bytes: usize,
    rows: usize,
) -> Result<(), String> {
    if (stride as usize) < row_bytes || stride > i32::MAX as u32 {
        return Err(format!("{name} stride {stride} invalid for rows of {row_bytes} bytes"));
    }
    match (stride as usize).checked_mul(rows) {
        Some(need) if len >= need => Ok(()),
        _ => Err(format!("{name} plane too short: {len} bytes < stride {stride} * {rows} rows")),
    }
}

/// Owned tightly packed I420: Y (w*h), then U, then V ((w+1)/2 * (h+1)/2 each).
#[derive(Clone, PartialEq, Eq)]
pub struct I420Buf {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl fmt::Debug for I420Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "I420Buf({}x{}, {} bytes)", self.width, self.height, self.data.len())
    }
}

impl I420Buf {
    /// (Y plane size, size of one chroma plane) for a tight buffer.
    pub fn plane_sizes(width: u32, height: u32) -> (usize, usize) {
        let y = width as usize * height as usize;
        let c = width.div_ceil(2) as usize * height.div_ceil(2) as usize;
        (y, c)
    }


    /// Video black (BT.601 limited range: Y=16, U=V=128).
    pub fn new_black(width: u32, height: u32) -> I420Buf {
        let (y, c) = Self::plane_sizes(width, height);
        let mut data = vec![128u8; y + 2 * c];
        data[..y].fill(16);
        I420Buf { width, height, data }
    }

    /// Borrowed view. If `data` is shorter than `buffer_size` (the fields are public), the
    /// missing planes come out empty/short and `I420::validate` rejects the view.
    pub fn as_i420(&self) -> I420<'_> {
        let (ys, cs) = Self::plane_sizes(self.width, self.height);
        let d = &self.data[..];
        let part = |a: usize, b: usize| d.get(a..b).unwrap_or(&d[a.min(d.len())..]);
        I420 {
            width: self.width,
            height: self.height,
            y: part(0, ys),
            u: part(ys, ys + cs),
            v: part(ys + cs, ys + 2 * cs),
            stride_y: self.width,
            stride_u: self.width.div_ceil(2),
            stride_v: self.width.div_ceil(2),
        }
    }

    /// Mutable (Y, U, V) planes. Panics if `data.len() != buffer_size(width, height)`.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (ys, cs) = Self::plane_sizes(self.width, self.height);
        assert_eq!(self.data.len(), ys + 2 * cs, "I420Buf data has the wrong length");
        let (y, rest) = self.data.split_at_mut(ys);
        let (u, v) = rest.split_at_mut(cs);
        (y, u, v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// Same units as the pts passed to `encode` (90 kHz).
    pub pts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpxError(pub String);

impl fmt::Display for VpxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for VpxError {}

fn err<T>(msg: impl Into<String>) -> Result<T, VpxError> {
    Err(VpxError(msg.into()))
}

unsafe fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: libvpx returns NUL-terminated static strings or strings owned by a live ctx.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Error for a failed call on a *live* context: result code text + libvpx's detail string.
unsafe fn ctx_err(ctx: *mut sys::vpx_codec_ctx_t, what: &str, res: sys::vpx_codec_err_t) -> VpxError {
    let msg = unsafe { cstr(sys::vpx_codec_err_to_string(res)) }.unwrap_or_default();
    match unsafe { cstr(sys::vpx_codec_error_detail(ctx)) } {
        Some(d) if !d.is_empty() => VpxError(format!("{what}: {msg}: {d}")),
        _ => VpxError(format!("{what}: {msg}")),
    }
}

/// Error for a failed *init*: libvpx already destroyed the context and its detail string may
/// point into freed memory, so only the result code is used.
fn init_err(what: &str, res: sys::vpx_codec_err_t) -> VpxError {
    let msg = unsafe { cstr(sys::vpx_codec_err_to_string(res)) }.unwrap_or_default();
    VpxError(format!("{what}: {msg}"))
}

const OK: sys::vpx_codec_err_t = sys::vpx_codec_err_t::VPX_CODEC_OK;

/// Real-time VP8/VP9 encoder: one input frame -> at most one output frame, no lag.
pub struct Encoder {
    // Boxed so the addresses libvpx sees never move with the Encoder.
    ctx: Box<sys::vpx_codec_ctx_t>,
    raw_cfg: Box<sys::vpx_codec_enc_cfg_t>,
    cfg: EncoderConfig,
    last_pts: Option<i64>,
    duration: c_ulong,
}

// SAFETY: the context is owned exclusively by this value and libvpx keeps no thread
// affinity (its worker threads, if any, are internal and joined on destroy).
unsafe impl Send for Encoder {}

impl Encoder {
    pub fn new(cfg: &EncoderConfig) -> Result<Encoder, VpxError> {
        check_dims(cfg.width, cfg.height).map_err(VpxError)?;
        if cfg.bitrate_kbps == 0 || cfg.fps == 0 || cfg.fps > 1000 {
            return err(format!("invalid bitrate {} kbps / fps {}", cfg.bitrate_kbps, cfg.fps));
        }
        if cfg.threads == 0 || cfg.threads > 64 {
            return err(format!("invalid thread count {}", cfg.threads));
        }
        let iface = unsafe {
            match cfg.codec {
                Codec::Vp8 => sys::vpx_codec_vp8_cx(),
                Codec::Vp9 => sys::vpx_codec_vp9_cx(),
            }
        };
        // The config struct contains Rust enums whose zero pattern is invalid, so let libvpx
        // fill it before it is ever read as a Rust value.
        let mut raw = Box::<sys::vpx_codec_enc_cfg_t>::new_uninit();
        let res = unsafe { sys::vpx_codec_enc_config_default(iface, raw.as_mut_ptr(), 0) };
        if res != OK {
            return Err(init_err("vpx_codec_enc_config_default", res));
        }
        // SAFETY: initialised by vpx_codec_enc_config_default.
        let mut raw = unsafe { raw.assume_init() };

        raw.g_w = cfg.width;
        raw.g_h = cfg.height;
        raw.g_threads = cfg.threads;
        raw.g_timebase = sys::vpx_rational { num: 1, den: RTP_CLOCK_HZ as c_int };
        // Each frame decodable as well as possible after losses (no backward-adaptive
        // entropy state carried between frames).
        raw.g_error_resilient = sys::VPX_ERROR_RESILIENT_DEFAULT;
        raw.g_pass = sys::vpx_enc_pass::VPX_RC_ONE_PASS;
        raw.g_lag_in_frames = 0; // no look-ahead: zero added latency
        raw.rc_end_usage = sys::vpx_rc_mode::VPX_CBR;
        raw.rc_dropframe_thresh = 0; // never drop: every input yields a frame
        raw.rc_resize_allowed = 0; // output size must stay the configured size
        raw.rc_target_bitrate = cfg.bitrate_kbps;
        // Buffer model and quantizer range as WebRTC's libvpx wrappers use them.
        raw.rc_buf_initial_sz = 500;
        raw.rc_buf_optimal_sz = 600;
        raw.rc_buf_sz = 1000;
        raw.rc_min_quantizer = 2;
        match cfg.codec {
            Codec::Vp8 => {
                raw.rc_max_quantizer = 56;
                raw.rc_undershoot_pct = 100;
                raw.rc_overshoot_pct = 15;
            }
            Codec::Vp9 => {
                raw.rc_max_quantizer = 52;
                raw.rc_undershoot_pct = 50;
                raw.rc_overshoot_pct = 50;
            }
        }
        raw.kf_mode = sys::vpx_kf_mode::VPX_KF_AUTO;
        if cfg.keyframe_interval > 0 {
            raw.kf_min_dist = 0;
            raw.kf_max_dist = cfg.keyframe_interval;
        }

        let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        let res = unsafe {
            sys::vpx_codec_enc_init_ver(
                &mut *ctx,
                iface,
                &*raw,
                0,
                sys::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if res != OK {
            // libvpx destroys the context itself on a failed init.
            return Err(init_err("vpx_codec_enc_init", res));
        }
        let mut enc = Encoder {
            ctx,
            raw_cfg: raw,
            cfg: cfg.clone(),
            last_pts: None,
            duration: (RTP_CLOCK_HZ / cfg.fps) as c_ulong,
        };

        use sys::vp8e_enc_control_id as id;
        // Cap keyframe size to limit the burst after a keyframe (WebRTC's MaxIntraTarget:
        // 600 ms optimal buffer * 0.5 * fps / 10, in % of the per-frame budget, >= 300).
        let max_intra_pct = (600 * cfg.fps / 20).max(300);
        enc.control(id::VP8E_SET_CPUUSED, cfg.speed as c_int)?;
        enc.control(id::VP8E_SET_MAX_INTRA_BITRATE_PCT, max_intra_pct as c_int)?;
        match cfg.codec {
            Codec::Vp8 => {
                // Denoiser off: saves CPU; camera pipelines usually denoise upstream.
                enc.control(id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
                // Skip encoding macroblocks whose change is below a tiny threshold (WebRTC: 1).
                enc.control(id::VP8E_SET_STATIC_THRESHOLD, 1)?;
                // One token partition as WebRTC: multiple partitions only help multi-threaded
                // decoders and cost a few bytes per frame.
                enc.control(
                    id::VP8E_SET_TOKEN_PARTITIONS,
                    sys::vp8e_token_partitions::VP8_ONE_TOKENPARTITION as c_int,
                )?;
            }
            Codec::Vp9 => {
                // No adaptive quantisation. Cyclic refresh (aq-mode 3, libvpx's usual real-time
                // choice) dipped to 28 dB on two frames of our moving test pattern at 1.5 Mbit/s
                // (53 dB otherwise); without it every frame stays above 52 dB. Recovery after
                // loss comes from PLI-driven keyframes instead.
                enc.control(id::VP9E_SET_AQ_MODE, 0)?;
                enc.control(id::VP9E_SET_NOISE_SENSITIVITY, 0)?;
                // Threads need tiles / row-mt to have work to share. libvpx caps tile
                // columns by width (min 256 px per tile).
                let tiles_log2 = 31 - cfg.threads.leading_zeros(); // floor(log2(threads))
                enc.control(id::VP9E_SET_TILE_COLUMNS, tiles_log2 as c_int)?;
                enc.control(id::VP9E_SET_ROW_MT, (cfg.threads > 1) as c_int)?;
            }
        }
        Ok(enc)
    }

    fn control(&mut self, id: sys::vp8e_enc_control_id, value: c_int) -> Result<(), VpxError> {
        // All controls used here take an int / unsigned int by value (same size and ABI in
        // varargs).
        let ctx: *mut sys::vpx_codec_ctx_t = &mut *self.ctx;
        let res = unsafe { sys::vpx_codec_control_(ctx, id as c_int, value) };
        if res != OK {
            return Err(unsafe { ctx_err(ctx, &format!("vpx_codec_control({id:?}={value})"), res) });
        }
        Ok(())
    }

    /// Encodes one frame with the real-time deadline. `pts` is in 90 kHz ticks and must be
    /// greater than the previous one. Returns the packets libvpx produced (normally exactly
    /// one frame).
    pub fn encode(
        &mut self,
        frame: &I420,
        pts: i64,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedFrame>, VpxError> {
        if frame.width != self.cfg.width || frame.height != self.cfg.height {
            return err(format!(
                "frame size {}x{} differs from encoder size {}x{}; re-create the encoder",
                frame.width, frame.height, self.cfg.width, self.cfg.height
            ));
        }
        frame.validate().map_err(VpxError)?;
        if let Some(last) = self.last_pts
            && pts <= last
        {
            return err(format!("pts {pts} not greater than previous pts {last}"));
        }

        // Describe the caller's planes without copying; libvpx copies the picture into its
        // own buffers inside vpx_codec_encode (lag 0) and never writes to it.
        // SAFETY: all-zero is valid for vpx_image_t (enum fields have a 0 variant).
        let mut img: sys::vpx_image_t = unsafe { std::mem::zeroed() };
        img.fmt = sys::vpx_img_fmt::VPX_IMG_FMT_I420;
        img.w = frame.width;
        img.h = frame.height;
        img.d_w = frame.width;
        img.d_h = frame.height;
        img.r_w = frame.width;
        img.r_h = frame.height;
        img.bit_depth = 8;
        img.x_chroma_shift = 1;
        img.y_chroma_shift = 1;
        img.bps = 12;
        img.planes = [
            frame.y.as_ptr() as *mut u8,
            frame.u.as_ptr() as *mut u8,
            frame.v.as_ptr() as *mut u8,
            ptr::null_mut(),
        ];
        img.stride = [frame.stride_y as c_int, frame.stride_u as c_int, frame.stride_v as c_int, 0];

        let flags: c_long = if force_keyframe { sys::VPX_EFLAG_FORCE_KF as c_long } else { 0 };
        let ctx: *mut sys::vpx_codec_ctx_t = &mut *self.ctx;
        let res = unsafe {
            sys::vpx_codec_encode(ctx, &img, pts, self.duration, flags, sys::VPX_DL_REALTIME as c_ulong)
        };
        if res != OK {
            return Err(unsafe { ctx_err(ctx, "vpx_codec_encode", res) });
        }
        self.last_pts = Some(pts);

        let mut out = Vec::with_capacity(1);
        let mut iter: sys::vpx_codec_iter_t = ptr::null();
        loop {
            let pkt = unsafe { sys::vpx_codec_get_cx_data(ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // Read `kind` as a plain integer so an unexpected value can never be an invalid
            // Rust enum.
            let kind = unsafe { ptr::addr_of!((*pkt).kind).cast::<u32>().read() };
            if kind != sys::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT as u32 {
                continue;
            }
            let f = unsafe { ptr::addr_of!((*pkt).data.frame).read() };
            let data = if f.buf.is_null() || f.sz == 0 {
                Vec::new()
            } else {
                // SAFETY: libvpx guarantees buf/sz valid until the next call on ctx.
                unsafe { std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize) }.to_vec()
            };
            out.push(EncodedFrame { data, keyframe: f.flags & sys::VPX_FRAME_IS_KEY != 0, pts: f.pts });
        }
        Ok(out)
    }

    /// Changes the target bitrate (takes effect from the next frame, rate control adapts over
    /// roughly the 1 s buffer).
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), VpxError> {
        if kbps == 0 {
            return err("bitrate must be > 0");
        }
        let old = self.raw_cfg.rc_target_bitrate;
        self.raw_cfg.rc_target_bitrate = kbps;
        let ctx: *mut sys::vpx_codec_ctx_t = &mut *self.ctx;
        let res = unsafe { sys::vpx_codec_enc_config_set(ctx, &*self.raw_cfg) };
        if res != OK {
            self.raw_cfg.rc_target_bitrate = old;
            return Err(unsafe { ctx_err(ctx, "vpx_codec_enc_config_set", res) });
        }
        self.cfg.bitrate_kbps = kbps;
        Ok(())
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        unsafe { sys::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// VP8/VP9 decoder producing tight I420 frames.
pub struct Decoder {
    ctx: Box<sys::vpx_codec_ctx_t>,
    iface: *mut sys::vpx_codec_iface_t,
}

/// Largest picture a remote keyframe may declare (4096x2304: 4K UHD fits). libvpx would
/// otherwise allocate and decode whatever size a packet claims: a 14-byte VP8 header saying
/// 16383x16383 cost 0.7 s and 500 MB (found by the `video_rtp` fuzz target).
pub(crate) const MAX_DECODE_PIXELS: u64 = 4096 * 2304;

// SAFETY: as for Encoder.
unsafe impl Send for Decoder {}

impl Decoder {
    pub fn new(codec: Codec) -> Result<Decoder, VpxError> {
        Self::with_threads(codec, 1)
    }

    /// `threads > 1` helps VP9 (tiles) and VP8 streams with several token partitions.
    pub fn with_threads(codec: Codec, threads: u32) -> Result<Decoder, VpxError> {
        if threads == 0 || threads > 64 {
            return err(format!("invalid thread count {threads}"));
        }
        let iface = unsafe {
            match codec {
                Codec::Vp8 => sys::vpx_codec_vp8_dx(),
                Codec::Vp9 => sys::vpx_codec_vp9_dx(),
            }
        };
        let dcfg = sys::vpx_codec_dec_cfg_t { threads, w: 0, h: 0 };
        let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        let res = unsafe {
            sys::vpx_codec_dec_init_ver(&mut *ctx, iface, &dcfg, 0, sys::VPX_DECODER_ABI_VERSION as c_int)
        };
        if res != OK {
            return Err(init_err("vpx_codec_dec_init", res));
        }
        Ok(Decoder { ctx, iface })
    }

    /// Decodes one complete encoded frame. `Ok(None)` means the data decoded but produced no
    /// visible picture. Corrupt data, or a frame that libvpx reports as decoded from corrupt
    /// references, gives `Err`: ask the sender for a keyframe; the decoder stays usable and
    /// recovers at the next keyframe.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<I420Buf>, VpxError> {
        // Empty input would mean "flush" to libvpx; not a frame.
        if data.is_empty() {
            return err("empty input");
        }
        let len = c_uint::try_from(data.len()).map_err(|_| VpxError("input too large".into()))?;
        let mut si = sys::vpx_codec_stream_info_t { sz: std::mem::size_of::<sys::vpx_codec_stream_info_t>() as c_uint, w: 0, h: 0, is_kf: 0 };
        // SAFETY: iface is the codec's static interface, data/len a valid slice, si a valid out.
        let peeked = unsafe { sys::vpx_codec_peek_stream_info(self.iface, data.as_ptr(), len, &mut si) };
        if peeked == OK && si.is_kf != 0 && u64::from(si.w) * u64::from(si.h) > MAX_DECODE_PIXELS {
            return err(format!("a keyframe of {}x{} is larger than the decoder accepts ({MAX_DECODE_PIXELS} pixels)", si.w, si.h));
        }
        let ctx: *mut sys::vpx_codec_ctx_t = &mut *self.ctx;
        let res = unsafe { sys::vpx_codec_decode(ctx, data.as_ptr(), len, ptr::null_mut(), 0) };
        if res != OK {
            return Err(unsafe { ctx_err(ctx, "vpx_codec_decode", res) });
        }
        let mut last = None;
        let mut iter: sys::vpx_codec_iter_t = ptr::null();
        loop {
            let img = unsafe { sys::vpx_codec_get_frame(ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // Copy right away: the image is only valid until the next call on ctx.
            last = Some(unsafe { copy_image(img) }?);
        }
        if last.is_some() {
            let mut corrupted: c_int = 0;
            let res = unsafe {
                sys::vpx_codec_control_(
                    ctx,
                    sys::vp8_dec_control_id::VP8D_GET_FRAME_CORRUPTED as c_int,
                    &mut corrupted as *mut c_int,
                )
            };
            if res == OK && corrupted != 0 {
                return err("decoded frame is corrupted (missing/corrupt reference); need a keyframe");
            }
        }
        Ok(last)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        unsafe { sys::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// Copies a decoder output image (respecting its strides, cropped to d_w x d_h) into a
/// tight I420Buf. Fields are read individually so no invalid enum value is ever materialised.
unsafe fn copy_image(img: *const sys::vpx_image_t) -> Result<I420Buf, VpxError> {
    let (fmt, w, h, xs, ys, planes, strides) = unsafe {
        (
            ptr::addr_of!((*img).fmt).cast::<u32>().read(),
            (*img).d_w,
            (*img).d_h,
            (*img).x_chroma_shift,
            (*img).y_chroma_shift,
            (*img).planes,
            (*img).stride,
        )
    };
    let i420 = sys::vpx_img_fmt::VPX_IMG_FMT_I420 as u32;
    let yv12 = sys::vpx_img_fmt::VPX_IMG_FMT_YV12 as u32;
    // planes[U]/planes[V] already point at U/V for YV12 too.
    if (fmt != i420 && fmt != yv12) || xs != 1 || ys != 1 {
        return err(format!("unsupported decoded format {fmt:#x} (only 8-bit 4:2:0, VP9 profile 0)"));
    }
    check_dims(w, h).map_err(VpxError)?;
    let mut out = I420Buf::new_black(w, h);
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    let (dy, du, dv) = out.planes_mut();
    let jobs: [(&mut [u8], usize, usize, usize); 3] =
        [(dy, 0, w as usize, h as usize), (du, 1, cw, ch), (dv, 2, cw, ch)];
    for (dst, p, cols, rows) in jobs {
        let (src, stride) = (planes[p], strides[p]);
        if src.is_null() || stride < 0 || (stride as usize) < cols {
            return err(format!("decoder returned an invalid plane {p} (stride {stride})"));
        }
        for r in 0..rows {
            // SAFETY: libvpx's image holds `rows` rows of at least `cols` bytes at `stride`.
            let row = unsafe { std::slice::from_raw_parts(src.add(r * stride as usize), cols) };
            dst[r * cols..(r + 1) * cols].copy_from_slice(row);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use super::super::convert::psnr;
    use std::time::Instant;

    /// Moving colourful test pattern: scrolling gradients, a moving box, a textured band.
    pub fn pattern(w: u32, h: u32, t: u32) -> I420Buf {
        let mut b = I420Buf::new_black(w, h);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (y, u, v) = b.planes_mut();
        let (bx, by) = ((t * 7) % w, (t * 3) % h);
        for r in 0..h {
            for c in 0..w {
                let mut val = (((c + 2 * t) * 200 / w) % 200 + r * 40 / h) as u8 + 16;
                let in_box = c.wrapping_sub(bx) < w / 6 && r.wrapping_sub(by) < h / 6;
                if in_box {
                    val = 235 - ((c ^ r) & 0x1f) as u8;
                }
                if r > h / 2 && r < h / 2 + h / 10 {
                    // moving fine texture (hard to code)
                    val = (((c + 3 * t) / 4 % 2) * 100 + ((r / 4) % 2) * 60 + 40) as u8;
                }
                y[(r * w + c) as usize] = val;
            }
        }
        for r in 0..ch {
            for c in 0..cw {
                u[(r * cw + c) as usize] = (64 + ((c + t) * 128 / cw) % 128) as u8;
                v[(r * cw + c) as usize] = (192 - (r + t) * 128 / ch.max(1) % 128) as u8;
            }
        }
        b
    }

    /// `pattern` plus per-frame pseudo-random sensor-like noise (+-6 luma, +-3 chroma):
    /// much harder to code, closer to camera content for timing.
    pub fn noisy_pattern(w: u32, h: u32, t: u32) -> I420Buf {
        let mut b = pattern(w, h, t);
        let ys = (w * h) as usize;
        let mut x = 0x9E3779B9u32 ^ t.wrapping_mul(0x85EBCA6B);
        for (i, p) in b.data.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let amp = if i < ys { 13 } else { 7 };
            *p = (*p as i32 + (x % amp) as i32 - (amp / 2) as i32).clamp(0, 255) as u8;
        }
        b
    }

    fn pts(i: u32) -> i64 {
        i as i64 * 3000 // 30 fps in 90 kHz ticks
    }

    fn roundtrip(codec: Codec, src_fn: fn(u32, u32, u32) -> I420Buf, label: &str) {
        let cfg = EncoderConfig::new(codec);
        let mut enc = Encoder::new(&cfg).unwrap();
        let mut dec = Decoder::new(codec).unwrap();
        let mut total = 0usize;
        let mut min_psnr = f64::MAX;
        let mut sum_psnr = 0.0;
        for i in 0..60 {
            let src = src_fn(640, 480, i);
            let out = enc.encode(&src.as_i420(), pts(i), false).unwrap();
            assert_eq!(out.len(), 1, "lag 0 => one output per input");
            if i == 0 {
                assert!(out[0].keyframe, "first output must be a keyframe");
            } else {
                assert!(!out[0].keyframe, "unexpected keyframe at {i}");
            }
            assert_eq!(out[0].pts, pts(i));
            total += out[0].data.len();
            let pic = dec.decode(&out[0].data).unwrap().expect("a picture");
            assert_eq!((pic.width, pic.height), (640, 480));
            let p = psnr(&src.as_i420(), &pic.as_i420());
            if i >= 5 {
                min_psnr = min_psnr.min(p);
                sum_psnr += p;
            }
        }
        let kbps = total as f64 * 8.0 / 2.0 / 1000.0;
        println!(
            "{codec:?} 640x480 {label} 60 frames @1000 kbps: {kbps:.0} kbps, PSNR min {min_psnr:.2} avg {:.2} dB (frames 5..60)",
            sum_psnr / 55.0
        );
        assert!(min_psnr >= 30.0, "{codec:?} PSNR {min_psnr} < 30");
    }

    #[test]
    fn vp8_roundtrip_psnr() {
        roundtrip(Codec::Vp8, pattern, "clean");
        roundtrip(Codec::Vp8, noisy_pattern, "noisy");
    }

    #[test]
    fn vp9_roundtrip_psnr() {
        roundtrip(Codec::Vp9, pattern, "clean");
        roundtrip(Codec::Vp9, noisy_pattern, "noisy");
    }

    fn keyframes_and_errors(codec: Codec) {
        let mut enc = Encoder::new(&EncoderConfig::new(codec)).unwrap();
        let mut dec = Decoder::new(codec).unwrap();
        let mut frames = Vec::new();
        for i in 0..12 {
            let out = enc.encode(&pattern(640, 480, i).as_i420(), pts(i), i == 8).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].keyframe, i == 0 || i == 8, "frame {i}");
            frames.push(out.into_iter().next().unwrap());
        }
        // wrong size -> Err, encoder still usable afterwards
        let small = I420Buf::new_black(320, 240);
        assert!(enc.encode(&small.as_i420(), pts(100), false).is_err());
        // non-increasing pts -> Err
        assert!(enc.encode(&pattern(640, 480, 0).as_i420(), pts(11), false).is_err());
        // short plane -> Err
        let f = pattern(640, 480, 0);
        let mut v = f.as_i420();
        v.y = &v.y[..640 * 479];
        assert!(enc.encode(&v, pts(101), false).is_err());
        let mut v = f.as_i420();
        v.stride_u = 100; // < chroma width
        assert!(enc.encode(&v, pts(101), false).is_err());
        assert!(enc.encode(&f.as_i420(), pts(102), false).is_ok());

        // garbage before anything -> Err
        let garbage: Vec<u8> = (0..3000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(dec.decode(&garbage).is_err());
        assert!(dec.decode(&[]).is_err());
        assert!(dec.decode(&frames[0].data).unwrap().is_some());
        assert!(dec.decode(&frames[1].data).unwrap().is_some());
        // garbage mid-stream -> Err, then the next keyframe decodes fine
        assert!(dec.decode(&garbage).is_err());
        assert!(dec.decode(&garbage[..7]).is_err());
        let pic = dec.decode(&frames[8].data).unwrap().expect("keyframe picture");
        let p = psnr(&pattern(640, 480, 8).as_i420(), &pic.as_i420());
        assert!(p > 30.0, "psnr after recovery {p}");
        for f in &frames[9..12] {
            assert!(dec.decode(&f.data).unwrap().is_some());
        }
        // a truncated real frame must not crash either (may be Err or a corrupt-flag Err)
        let _ = dec.decode(&frames[9].data[..frames[9].data.len() / 2]);
        // wrong codec's decoder rejects the keyframe
        let other = if codec == Codec::Vp8 { Codec::Vp9 } else { Codec::Vp8 };
        assert!(Decoder::new(other).unwrap().decode(&frames[0].data).is_err());
    }

    #[test]
    fn vp8_keyframes_and_errors() {
        keyframes_and_errors(Codec::Vp8);
    }

    #[test]
    fn vp9_keyframes_and_errors() {
        keyframes_and_errors(Codec::Vp9);
    }

    fn bitrate_change(codec: Codec) {
        let mut cfg = EncoderConfig::new(codec);
        cfg.bitrate_kbps = 1500;
        let mut enc = Encoder::new(&cfg).unwrap();
        let seg = |enc: &mut Encoder, from: u32| -> usize {
            (from..from + 60)
                .map(|i| {
                    let out = enc.encode(&pattern(640, 480, i).as_i420(), pts(i), false).unwrap();
                    if i >= from + 30 { out.iter().map(|f| f.data.len()).sum() } else { 0 }
                })
                .sum()
        };
        let hi = seg(&mut enc, 0);
        enc.set_bitrate(300).unwrap();
        assert_eq!(enc.config().bitrate_kbps, 300);
        let lo = seg(&mut enc, 60);
        let (hi_kbps, lo_kbps) = (hi as f64 * 8.0 / 1000.0, lo as f64 * 8.0 / 1000.0); // 30 frames = 1 s
        println!("{codec:?} set_bitrate: 1500 kbps -> {hi_kbps:.0} kbps measured; 300 kbps -> {lo_kbps:.0} kbps");
        assert!(lo_kbps < hi_kbps * 0.5, "bitrate change had no effect");
        assert!(lo_kbps < 300.0 * 1.5 && lo_kbps > 300.0 * 0.3);
        assert!(enc.set_bitrate(0).is_err());
    }

    #[test]
    fn vp8_set_bitrate() {
        bitrate_change(Codec::Vp8);
    }

    #[test]
    fn vp9_set_bitrate() {
        bitrate_change(Codec::Vp9);
    }

    #[test]
    fn bad_configs() {
        for c in [Codec::Vp8, Codec::Vp9] {
            let ok = EncoderConfig::new(c);
            assert!(Encoder::new(&EncoderConfig { width: 0, ..ok.clone() }).is_err());
            assert!(Encoder::new(&EncoderConfig { fps: 0, ..ok.clone() }).is_err());
            assert!(Encoder::new(&EncoderConfig { bitrate_kbps: 0, ..ok.clone() }).is_err());
            assert!(Encoder::new(&EncoderConfig { threads: 0, ..ok.clone() }).is_err());
            // libvpx clamps (VP8) or rejects (VP9) out-of-range speeds; either way no panic.
            let r = Encoder::new(&EncoderConfig { speed: 99, ..ok.clone() }).map(|_| ());
            println!("{c:?} speed 99 -> {r:?}");
        }
        // odd sizes and threads work
        for c in [Codec::Vp8, Codec::Vp9] {
            let cfg = EncoderConfig { width: 641, height: 481, threads: 2, ..EncoderConfig::new(c) };
            let mut enc = Encoder::new(&cfg).unwrap();
            let mut dec = Decoder::with_threads(c, 2).unwrap();
            for i in 0..3 {
                let src = pattern(641, 481, i);
                let out = enc.encode(&src.as_i420(), pts(i), false).unwrap();
                let pic = dec.decode(&out[0].data).unwrap().unwrap();
                assert_eq!((pic.width, pic.height), (641, 481));
                assert!(psnr(&src.as_i420(), &pic.as_i420()) > 28.0);
            }
        }
        fn assert_send<T: Send>() {}
        assert_send::<Encoder>();
        assert_send::<Decoder>();
    }

    /// Decoder follows a resolution change carried by a new keyframe.
    #[test]
    fn a_keyframe_declaring_a_huge_picture_is_refused_before_decoding() {
        // VP8 keyframe tag, start code, then 16383x16383 (RFC 6386 §9.1): libvpx would allocate
        // for it.
        let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f];
        frame.extend([0u8; 32]);
        let mut dec = Decoder::new(Codec::Vp8).unwrap();
        let t = std::time::Instant::now();
        let e = dec.decode(&frame).unwrap_err().to_string();
        assert!(e.contains("16383x16383 is larger than the decoder accepts"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_millis(100), "{:?}", t.elapsed());
        // The decoder still decodes a normal stream afterwards.
        let mut enc = Encoder::new(&EncoderConfig { width: 64, height: 48, ..EncoderConfig::new(Codec::Vp8) }).unwrap();
        let out = enc.encode(&pattern(64, 48, 0).as_i420(), pts(0), false).unwrap();
        assert_eq!(dec.decode(&out[0].data).unwrap().map(|p| (p.width, p.height)), Some((64, 48)));
    }

    #[test]
    fn decoder_resolution_change() {
        for c in [Codec::Vp8, Codec::Vp9] {
            let mut dec = Decoder::new(c).unwrap();
            for (w, h) in [(320, 240), (640, 360)] {
                let mut enc = Encoder::new(&EncoderConfig { width: w, height: h, ..EncoderConfig::new(c) }).unwrap();
                for i in 0..3 {
                    let out = enc.encode(&pattern(w, h, i).as_i420(), pts(i), false).unwrap();
                    let pic = dec.decode(&out[0].data).unwrap().unwrap();
                    assert_eq!((pic.width, pic.height), (w, h));
                }
            }
        }
    }

    fn median_ms(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }

    /// Prints per-frame timings at 1280x720 (run alone for clean numbers:
    /// `cargo test --release timing_720p -- --nocapture --test-threads=1`).
    #[test]
    fn timing_720p() {
        let (w, h, n) = (1280u32, 720u32, 60u32);
        let frames: Vec<I420Buf> = (0..n).map(|i| noisy_pattern(w, h, i)).collect();
        let runs: [(Codec, i32, u32, u32); 6] = [
            (Codec::Vp8, -6, 1, 1500),
            (Codec::Vp9, 7, 1, 1500),
            (Codec::Vp9, 8, 1, 1500),
            (Codec::Vp8, -6, 2, 1500),
            (Codec::Vp9, 7, 2, 1500),
            (Codec::Vp9, 8, 2, 1500),
        ];
        for (codec, speed, threads, kbps) in runs {
            let cfg = EncoderConfig { codec, width: w, height: h, bitrate_kbps: kbps, speed, threads, ..Default::default() };
            let mut enc = Encoder::new(&cfg).unwrap();
            let mut dec = Decoder::new(codec).unwrap();
            let (mut te, mut td, mut bytes, mut ps) = (Vec::new(), Vec::new(), 0usize, 0.0);
            for (i, f) in frames.iter().enumerate() {
                let t0 = Instant::now();
                let out = enc.encode(&f.as_i420(), pts(i as u32), false).unwrap();
                te.push(t0.elapsed().as_secs_f64() * 1e3);
                bytes += out[0].data.len();
                let t1 = Instant::now();
                let pic = dec.decode(&out[0].data).unwrap().unwrap();
                td.push(t1.elapsed().as_secs_f64() * 1e3);
                ps += psnr(&f.as_i420(), &pic.as_i420());
            }
            println!(
                "TIMING {codec:?} 1280x720 noisy speed {speed} threads {threads} @{kbps} kbps: encode median {:.2} ms, decode (1 thread) median {:.2} ms, {:.0} kbps, avg PSNR {:.2} dB",
                median_ms(te),
                median_ms(td),
                bytes as f64 * 8.0 / (n as f64 / 30.0) / 1000.0,
                ps / n as f64
            );
        }
    }
}
