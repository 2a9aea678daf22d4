//! Video helpers for the tests: a moving test pattern that carries its frame number, sent in
//! real time, and the checks a user would make (which frame arrived, how close it is).

use remotemedia_webrtc::Transport;
use remotemedia_webrtc::media::video::{I420, I420Buf, PixelFormat, RawFrame, VideoFrame, psnr};
use std::time::{Duration, Instant};

/// Frame `n` of the pattern: a vertical gradient, a white bar moving 8 px per frame, colour
/// ramps in the chroma planes, and `n` as 16 black/white 32x32 blocks along the top.
pub fn pattern(w: u32, h: u32, n: u32) -> I420Buf {
    let mut f = I420Buf::new_black(w, h);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y, rest) = f.data.split_at_mut((w * h) as usize);
    let (u, v) = rest.split_at_mut((cw * ch) as usize);
    let bar = (8 * n) % w;
    for r in 0..h {
        for c in 0..w {
            let mut val = 40 + (r * 120 / h) as u8;
            if c >= bar && c < bar + 32 {
                val = 235;
            }
            y[(r * w + c) as usize] = val;
        }
    }
    for bit in 0..16 {
        let on = (n >> bit) & 1 == 1;
        let x0 = 16 + 36 * bit;
        if x0 + 32 > w || 40 > h {
            break;
        }
        for r in 8..40 {
            for c in x0..x0 + 32 {
                y[(r * w + c) as usize] = if on { 235 } else { 16 };
            }
        }
    }
    for r in 0..ch {
        for c in 0..cw {
            u[(r * cw + c) as usize] = 90 + (c * 80 / cw) as u8;
            v[(r * cw + c) as usize] = 90 + (r * 80 / ch) as u8;
        }
    }
    f
}

/// The frame number a received frame carries (None if the blocks are unreadable).
pub fn frame_number(f: &VideoFrame) -> Option<u32> {
    let (w, stride) = (f.width, f.strides[0] as usize);
    let y = f.plane(0);
    let mut n = 0;
    for bit in 0..16 {
        let x0 = 16 + 36 * bit;
        if x0 + 32 > w {
            break;
        }
        let mut sum = 0u32;
        for r in 16..32 {
            for c in x0 + 8..x0 + 24 {
                sum += y[r * stride + c as usize] as u32;
            }
        }
        let mean = sum / 256;
        match mean {
            0..=60 => {}
            200..=255 => n |= 1 << bit,
            _ => return None,
        }
    }
    Some(n)
}

/// The received frame as an I420 view (it must be I420 output).
pub fn as_i420(f: &VideoFrame) -> I420<'_> {
    I420 { width: f.width, height: f.height, y: f.plane(0), u: f.plane(1), v: f.plane(2), stride_y: f.strides[0], stride_u: f.strides[1], stride_v: f.strides[2] }
}

/// PSNR of a received frame against the pattern frame it carries.
pub fn psnr_of(f: &VideoFrame) -> Option<f64> {
    let n = frame_number(f)?;
    Some(psnr(&as_i420(f), &pattern(f.width, f.height, n).as_i420()))
}

/// Sends frames `from..to` of the pattern at `fps` in real time with `size(n)`.
pub fn send_pattern(t: &Transport, track: u64, from: u32, to: u32, fps: u32, size: impl Fn(u32) -> (u32, u32)) {
    let start = Instant::now();
    for n in from..to {
        let (w, h) = size(n);
        let f = pattern(w, h, n);
        let i = f.as_i420();
        let raw = RawFrame { format: PixelFormat::I420, width: w, height: h, planes: [i.y, i.u, i.v], strides: [i.stride_y, i.stride_u, i.stride_v] };
        t.send_video(track, &raw).unwrap();
        let due = start + Duration::from_secs_f64((n - from + 1) as f64 / fps as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// Decoded frames from `peer` arriving within `d`.
pub fn collect(t: &Transport, peer: &str, d: Duration) -> Vec<VideoFrame> {
    let deadline = Instant::now() + d;
    let mut frames = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(f) = t.poll_video(Some(left.min(Duration::from_millis(50)))).unwrap() {
            if f.peer_id == peer {
                frames.push(f);
            }
        }
    }
    frames
}
