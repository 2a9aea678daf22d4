//! Pixel format conversion through libyuv (SIMD row functions; no per-pixel Rust loops).
//!
//! * Colour matrix: libyuv's default BT.601 limited ("studio") range, both directions,
//!   which is what WebRTC and libvpx-based pipelines assume for I420.
//! * Sizes: any width/height from 1 to `MAX_DIMENSION`, odd ones included; chroma planes are
//!   always `(w+1)/2 x (h+1)/2`.
//! * Every plane must be at least `stride * rows` bytes and every stride at least one row of
//!   pixels; otherwise `Err` (nothing reaches C unchecked). Unused `planes` entries
//!   (e.g. planes[1..] of RGBA) are ignored and may be empty slices.
//! * Must sit next to `vpx.rs` (it uses `super::vpx::{I420, I420Buf, ..}`).
//! * Needs `cargo:rustc-link-lib=yuv` (see build.rs); the few libyuv symbols used are declared
//!   below (libyuv exports them with C linkage).

use std::ffi::c_int;

use super::vpx::{I420, I420Buf, check_dims, check_plane};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// planes: Y, U, V.
    I420,
    /// planes: Y, interleaved UV (U first).
    Nv12,
    /// One plane, bytes R,G,B,A in memory (libyuv "ABGR").
    Rgba,
    /// One plane, bytes B,G,R,A in memory (libyuv "ARGB").
    Bgra,
}

#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub planes: [&'a [u8]; 3],
    pub strides: [u32; 3],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConvertError {}

#[allow(non_snake_case)]
mod ffi {
    use std::ffi::c_int;
    // Signatures from /usr/include/libyuv/{convert,convert_argb,compare}.h (libyuv 1857).
    unsafe extern "C" {
        pub fn I420Copy(
            src_y: *const u8, src_stride_y: c_int,
            src_u: *const u8, src_stride_u: c_int,
            src_v: *const u8, src_stride_v: c_int,
            dst_y: *mut u8, dst_stride_y: c_int,
            dst_u: *mut u8, dst_stride_u: c_int,
            dst_v: *mut u8, dst_stride_v: c_int,
            width: c_int, height: c_int,
        ) -> c_int;
        pub fn NV12ToI420(
            src_y: *const u8, src_stride_y: c_int,
            src_uv: *const u8, src_stride_uv: c_int,
            dst_y: *mut u8, dst_stride_y: c_int,
            dst_u: *mut u8, dst_stride_u: c_int,
            dst_v: *mut u8, dst_stride_v: c_int,
            width: c_int, height: c_int,
        ) -> c_int;
        /// Memory B,G,R,A -> I420.
        pub fn ARGBToI420(
            src_argb: *const u8, src_stride_argb: c_int,
            dst_y: *mut u8, dst_stride_y: c_int,
            dst_u: *mut u8, dst_stride_u: c_int,
            dst_v: *mut u8, dst_stride_v: c_int,
            width: c_int, height: c_int,
        ) -> c_int;
        /// Memory R,G,B,A -> I420.
        pub fn ABGRToI420(
            src_abgr: *const u8, src_stride_abgr: c_int,
            dst_y: *mut u8, dst_stride_y: c_int,
            dst_u: *mut u8, dst_stride_u: c_int,
            dst_v: *mut u8, dst_stride_v: c_int,
            width: c_int, height: c_int,
        ) -> c_int;
        pub fn ComputeSumSquareErrorPlane(
            src_a: *const u8, stride_a: c_int,
            src_b: *const u8, stride_b: c_int,
            width: c_int, height: c_int,
        ) -> u64;
        /// I420 -> memory R,G,B,A.
        pub fn I420ToABGR(
            src_y: *const u8, src_stride_y: c_int,
            src_u: *const u8, src_stride_u: c_int,
            src_v: *const u8, src_stride_v: c_int,
            dst_abgr: *mut u8, dst_stride_abgr: c_int,
            width: c_int, height: c_int,
        ) -> c_int;
    }
}

fn cerr<T>(msg: impl Into<String>) -> Result<T, ConvertError> {
    Err(ConvertError(msg.into()))
}

fn libyuv_result(name: &str, r: c_int) -> Result<(), ConvertError> {
    if r == 0 { Ok(()) } else { cerr(format!("libyuv {name} failed ({r})")) }
}

/// Validates a frame's size, strides and planes; returns the bytes each plane spans
/// (`stride * rows`; 0 for planes the format does not use).
pub fn check(src: &RawFrame) -> Result<[usize; 3], ConvertError> {
    let (w, h) = (src.width, src.height);
    check_dims(w, h).map_err(ConvertError)?;
    let (wu, hu) = (w as usize, h as usize);
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    let chk = |i: usize, name: &str, row_bytes: usize, rows: usize| {
        check_plane(name, src.planes[i].len(), src.strides[i], row_bytes, rows).map_err(ConvertError)?;
        Ok::<usize, ConvertError>(src.strides[i] as usize * rows)
    };
    Ok(match src.format {
        PixelFormat::I420 => [chk(0, "Y", wu, hu)?, chk(1, "U", cw, ch)?, chk(2, "V", cw, ch)?],
        PixelFormat::Nv12 => [chk(0, "Y", wu, hu)?, chk(1, "UV", 2 * cw, ch)?, 0],
        PixelFormat::Rgba | PixelFormat::Bgra => [chk(0, "RGBA/BGRA", 4 * wu, hu)?, 0, 0],
    })
}

/// Converts any supported frame to a new tight I420 buffer.
pub fn to_i420(src: &RawFrame) -> Result<I420Buf, ConvertError> {
    check(src)?;
    let (w, h) = (src.width, src.height);
    let cw = w.div_ceil(2) as usize;

    let (ys, cs) = I420Buf::plane_sizes(w, h);
    // Every byte is written by libyuv, so skip zero-filling; the length is only set on success.
    let mut data: Vec<u8> = Vec::with_capacity(ys + 2 * cs);
    let dy = data.as_mut_ptr();
    // SAFETY: offsets are within the capacity just reserved.
    let (du, dv) = unsafe { (dy.add(ys), dy.add(ys + cs)) };
    let (sy, sc) = (w as c_int, cw as c_int);
    let (wi, hi) = (w as c_int, h as c_int);
    let p = |i: usize| src.planes[i].as_ptr();
    let s = |i: usize| src.strides[i] as c_int;
    // SAFETY: source planes validated above (stride >= row, len >= stride * rows); the
    // destination has room for tight planes of exactly these sizes.
    let r = unsafe {
        match src.format {
            PixelFormat::I420 => {
                ffi::I420Copy(p(0), s(0), p(1), s(1), p(2), s(2), dy, sy, du, sc, dv, sc, wi, hi)
            }
            PixelFormat::Nv12 => ffi::NV12ToI420(p(0), s(0), p(1), s(1), dy, sy, du, sc, dv, sc, wi, hi),
            PixelFormat::Rgba => ffi::ABGRToI420(p(0), s(0), dy, sy, du, sc, dv, sc, wi, hi),
            PixelFormat::Bgra => ffi::ARGBToI420(p(0), s(0), dy, sy, du, sc, dv, sc, wi, hi),
        }
    };
    libyuv_result("to_i420", r)?;
    // SAFETY: libyuv wrote all ys + 2*cs bytes.
    unsafe { data.set_len(ys + 2 * cs) };
    Ok(I420Buf { width: w, height: h, data })
}

fn check_dst(src: &I420, dst: &[u8], dst_stride: u32) -> Result<(), ConvertError> {
    src.validate().map_err(ConvertError)?;
    check_plane("destination", dst.len(), dst_stride, 4 * src.width as usize, src.height as usize)
        .map_err(ConvertError)
}

/// I420 -> RGBA (memory order R,G,B,A; A = 255). `dst` needs `dst_stride * height` bytes,
/// `dst_stride >= 4 * width`.
pub fn i420_to_rgba(src: &I420, dst: &mut [u8], dst_stride: u32) -> Result<(), ConvertError> {
    check_dst(src, dst, dst_stride)?;
    let r = unsafe {
        ffi::I420ToABGR(
            src.y.as_ptr(), src.stride_y as c_int,
            src.u.as_ptr(), src.stride_u as c_int,
            src.v.as_ptr(), src.stride_v as c_int,
            dst.as_mut_ptr(), dst_stride as c_int,
            src.width as c_int, src.height as c_int,
        )
    };
    libyuv_result("I420ToABGR", r)
}


/// PSNR in dB over all Y, U and V samples together: `10*log10(255^2 / MSE)` with
/// MSE = (SSE_Y + SSE_U + SSE_V) / (number of Y+U+V samples), so luma weighs 4:1:1 by sample
/// count (like libvpx's "overall" PSNR). Identical pictures give 100.0 (also the cap).
/// Returns 0.0 if the sizes differ or either picture fails `I420::validate`.
pub fn psnr(a: &I420, b: &I420) -> f64 {
    if a.width != b.width || a.height != b.height || a.validate().is_err() || b.validate().is_err() {
        return 0.0;
    }
    let (w, h) = (a.width as c_int, a.height as c_int);
    let (cw, ch) = (a.chroma_width() as c_int, a.chroma_height() as c_int);
    // SAFETY: both pictures validated, same dimensions.
    let sse = unsafe {
        ffi::ComputeSumSquareErrorPlane(a.y.as_ptr(), a.stride_y as c_int, b.y.as_ptr(), b.stride_y as c_int, w, h)
            + ffi::ComputeSumSquareErrorPlane(a.u.as_ptr(), a.stride_u as c_int, b.u.as_ptr(), b.stride_u as c_int, cw, ch)
            + ffi::ComputeSumSquareErrorPlane(a.v.as_ptr(), a.stride_v as c_int, b.v.as_ptr(), b.stride_v as c_int, cw, ch)
    };
    if sse == 0 {
        return 100.0;
    }
    let samples = w as f64 * h as f64 + 2.0 * cw as f64 * ch as f64;
    let mse = sse as f64 / samples;
    (10.0 * (255.0f64 * 255.0 / mse).log10()).min(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colourful smooth RGBA test image (smooth so 4:2:0 subsampling loses little).
    fn rgba_gradient(w: u32, h: u32, stride: u32) -> Vec<u8> {
        let mut v = vec![0xEEu8; (stride * h) as usize];
        for r in 0..h {
            for c in 0..w {
                let o = (r * stride + c * 4) as usize;
                // at least ~64 px per full ramp so neighbouring pixels stay close even
                // on tiny images (4:2:0 cannot keep per-pixel colour changes)
                v[o] = (c * 255 / (w - 1).max(63)).min(255) as u8;
                v[o + 1] = (r * 255 / (h - 1).max(63)).min(255) as u8;
                v[o + 2] = ((c + r) * 255 / (w + h).max(126)).min(255) as u8;
                v[o + 3] = 255;
            }
        }
        v
    }

    fn max_diff(a: &[u8], b: &[u8], w: u32, h: u32, sa: u32, sb: u32) -> u8 {
        let mut m = 0u8;
        for r in 0..h {
            for c in 0..4 * w {
                let (x, y) = (a[(r * sa + c) as usize], b[(r * sb + c) as usize]);
                m = m.max(x.abs_diff(y));
            }
        }
        m
    }

    fn rgba_roundtrip(w: u32, h: u32, stride: u32) {
        let src = rgba_gradient(w, h, stride);
        let frame = RawFrame { format: PixelFormat::Rgba, width: w, height: h, planes: [&src, &[], &[]], strides: [stride, 0, 0] };
        let i420 = to_i420(&frame).unwrap();
        let (ys, cs) = I420Buf::plane_sizes(w, h);
        assert_eq!(i420.data.len(), ys + 2 * cs);
        let mut back = vec![0u8; (w * 4 * h) as usize];
        i420_to_rgba(&i420.as_i420(), &mut back, w * 4).unwrap();
        let d = max_diff(&src, &back, w, h, stride, w * 4);
        println!("RGBA {w}x{h} stride {stride}: max abs diff {d}");
        assert!(d <= 6, "RGBA round trip diff {d} at {w}x{h}");
    }

    #[test]
    fn rgba_round_trip_even_odd_padded() {
        rgba_roundtrip(640, 480, 640 * 4);
        rgba_roundtrip(641, 481, 641 * 4 + 12);
        rgba_roundtrip(1, 1, 4);
        rgba_roundtrip(3, 5, 16);
    }

    #[test]
    fn bgra_is_rgba_swapped() {
        let (w, h) = (65, 33);
        let rgba = rgba_gradient(w, h, w * 4);
        let bgra: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect();
        let a = to_i420(&RawFrame { format: PixelFormat::Rgba, width: w, height: h, planes: [&rgba, &[], &[]], strides: [w * 4, 0, 0] }).unwrap();
        let b = to_i420(&RawFrame { format: PixelFormat::Bgra, width: w, height: h, planes: [&bgra, &[], &[]], strides: [w * 4, 0, 0] }).unwrap();
        assert_eq!(a, b, "same colours in either byte order give the same I420");
        // and a pure red pixel image comes out with the expected BT.601 values
        let red: Vec<u8> = [255u8, 0, 0, 255].repeat(16 * 16);
        let y = to_i420(&RawFrame { format: PixelFormat::Rgba, width: 16, height: 16, planes: [&red, &[], &[]], strides: [64, 0, 0] }).unwrap();
        let (yy, u, v) = (y.data[0], y.data[256], y.data[256 + 64]);
        assert!(yy.abs_diff(82) <= 2 && u.abs_diff(90) <= 2 && v.abs_diff(240) <= 2, "red -> {yy},{u},{v}");
        // back to RGBA: byte order R,G,B,A
        let mut out = vec![0u8; 16 * 16 * 4];
        i420_to_rgba(&y.as_i420(), &mut out, 64).unwrap();
        assert!(out[0] > 247 && out[1] < 8 && out[2] < 8 && out[3] == 255, "{:?}", &out[..4]);
    }

    /// Builds padded NV12 and I420 versions of a frame and checks both convert exactly.
    fn nv12_and_i420(w: u32, h: u32) {
        let reference = super::super::vpx::tests::pattern(w, h, 5);
        let r = reference.as_i420();
        let (cw, ch) = (r.chroma_width(), r.chroma_height());
        let (sy, suv) = (w + 32, 2 * cw + 64);
        let mut y = vec![0xAAu8; (sy * h) as usize];
        let mut uv = vec![0x55u8; (suv * ch) as usize];
        for row in 0..h {
            y[(row * sy) as usize..(row * sy + w) as usize].copy_from_slice(&r.y[(row * w) as usize..((row + 1) * w) as usize]);
        }
        for row in 0..ch {
            for c in 0..cw {
                uv[(row * suv + 2 * c) as usize] = r.u[(row * cw + c) as usize];
                uv[(row * suv + 2 * c + 1) as usize] = r.v[(row * cw + c) as usize];
            }
        }
        let nv12 = RawFrame { format: PixelFormat::Nv12, width: w, height: h, planes: [&y, &uv, &[]], strides: [sy, suv, 0] };
        assert_eq!(to_i420(&nv12).unwrap(), reference, "NV12 {w}x{h}");
        assert_eq!(psnr(&to_i420(&nv12).unwrap().as_i420(), &r), 100.0);

        // padded I420 in
        let (scu, scv) = (cw + 7, cw + 16);
        let mut u = vec![1u8; (scu * ch) as usize];
        let mut v = vec![2u8; (scv * ch) as usize];
        for row in 0..ch {
            let src = (row * cw) as usize..((row + 1) * cw) as usize;
            u[(row * scu) as usize..(row * scu + cw) as usize].copy_from_slice(&r.u[src.clone()]);
            v[(row * scv) as usize..(row * scv + cw) as usize].copy_from_slice(&r.v[src]);
        }
        let i420 = RawFrame { format: PixelFormat::I420, width: w, height: h, planes: [&y, &u, &v], strides: [sy, scu, scv] };
        assert_eq!(to_i420(&i420).unwrap(), reference, "I420 {w}x{h}");

        // short planes / small strides rejected
        let mut bad = nv12;
        bad.planes[1] = &uv[..uv.len() - 1];
        assert!(to_i420(&bad).is_err());
        let mut bad = nv12;
        bad.strides[1] = 2 * cw - 1;
        assert!(to_i420(&bad).is_err());
        let mut bad = i420;
        bad.planes[0] = &y[..(sy * (h - 1)) as usize];
        assert!(to_i420(&bad).is_err());
        let mut bad = i420;
        bad.planes[2] = &[];
        assert!(to_i420(&bad).is_err());
    }

    #[test]
    fn nv12_and_i420_with_padding() {
        nv12_and_i420(640, 480);
        nv12_and_i420(641, 481);
        nv12_and_i420(17, 9);
    }

    #[test]
    fn rejects_bad_input() {
        let buf = vec![0u8; 4 * 64 * 64];
        let f = |w, h, stride, len: usize| RawFrame { format: PixelFormat::Rgba, width: w, height: h, planes: [&buf[..len], &[], &[]], strides: [stride, 0, 0] };
        assert!(to_i420(&f(64, 64, 256, buf.len())).is_ok());
        assert!(to_i420(&f(0, 64, 256, buf.len())).is_err());
        assert!(to_i420(&f(64, 0, 256, buf.len())).is_err());
        assert!(to_i420(&f(64, 64, 255, buf.len())).is_err()); // stride < 4*w
        assert!(to_i420(&f(64, 64, 256, buf.len() - 1)).is_err()); // short
        assert!(to_i420(&f(64, 64, u32::MAX, buf.len())).is_err()); // stride overflow
        assert!(to_i420(&f(100_000, 1, 400_000, buf.len())).is_err()); // too large

        let img = I420Buf::new_black(64, 64);
        let mut out = vec![0u8; 64 * 64 * 4];
        assert!(i420_to_rgba(&img.as_i420(), &mut out, 256).is_ok());
        assert!(out.chunks(4).all(|p| p == [0, 0, 0, 255]), "video black -> RGB 0");
        assert!(i420_to_rgba(&img.as_i420(), &mut out[..64 * 64 * 4 - 1], 256).is_err());
        assert!(i420_to_rgba(&img.as_i420(), &mut out, 200).is_err());
        let mut short = img.as_i420();
        short.v = &short.v[..10];
        assert!(i420_to_rgba(&short, &mut out, 256).is_err());
        // a malformed I420Buf (data too short) is rejected, not read out of bounds
        let broken = I420Buf { width: 64, height: 64, data: vec![0; 100] };
        assert!(i420_to_rgba(&broken.as_i420(), &mut out, 256).is_err());
        assert_eq!(psnr(&broken.as_i420(), &img.as_i420()), 0.0);
    }

    #[test]
    fn psnr_values() {
        let a = I420Buf::new_black(31, 17);
        let mut b = a.clone();
        assert_eq!(psnr(&a.as_i420(), &b.as_i420()), 100.0);
        // every sample off by 1 -> MSE 1 -> 48.13 dB
        for x in b.data.iter_mut() {
            *x += 1;
        }
        assert!((psnr(&a.as_i420(), &b.as_i420()) - 48.1308).abs() < 1e-3);
        assert_eq!(psnr(&a.as_i420(), &I420Buf::new_black(32, 17).as_i420()), 0.0);
    }

    #[test]
    fn timing_conversions_720p() {
        let (w, h) = (1280u32, 720u32);
        let rgba = rgba_gradient(w, h, w * 4);
        let frame = RawFrame { format: PixelFormat::Rgba, width: w, height: h, planes: [&rgba, &[], &[]], strides: [w * 4, 0, 0] };
        let n = 100;
        let t = std::time::Instant::now();
        let mut last = None;
        for _ in 0..n {
            last = Some(to_i420(&frame).unwrap());
        }
        let to = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        let i420 = last.unwrap();
        let mut out = vec![0u8; (w * h * 4) as usize];
        let t = std::time::Instant::now();
        for _ in 0..n {
            i420_to_rgba(&i420.as_i420(), &mut out, w * 4).unwrap();
        }
        let from = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        println!("TIMING 1280x720 RGBA->I420 {to:.3} ms, I420->RGBA {from:.3} ms");
    }
}
