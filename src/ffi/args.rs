//! Reading arguments from C and writing results back: the only place that dereferences
//! caller pointers.

use super::guard::{FfiResult, fail};
use super::types::rmw_status_t::*;
use std::ffi::CStr;
use std::os::raw::c_char;

/// A required NUL-terminated UTF-8 string.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} is NULL"));
    }
    match unsafe { CStr::from_ptr(p) }.to_str() {
        Ok(s) => Ok(s),
        Err(e) => fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} is not valid UTF-8 ({e})")),
    }
}

/// An optional string: NULL → None.
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() { Ok(None) } else { unsafe { str_arg(p, name) }.map(Some) }
}

/// A byte buffer; NULL is allowed only with `len` 0.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    unsafe { slice_arg(p, len, name) }
}

/// `len` values of `T`; NULL is allowed only with `len` 0, a misaligned pointer is refused.
pub(crate) unsafe fn slice_arg<'a, T>(p: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} is NULL with length {len}"));
    }
    if len.checked_mul(size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} length {len} is out of range"));
    }
    if !p.is_aligned() {
        return fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} is not aligned for its type"));
    }
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A required out-pointer.
pub(crate) unsafe fn out_arg<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    match unsafe { p.as_mut() } {
        Some(r) => Ok(r),
        None => fail(RMW_ERR_INVALID_ARGUMENT, format!("{name} is NULL")),
    }
}

/// Writes a value through an out-pointer that may be NULL (then nothing is written).
pub(crate) unsafe fn write_opt<T>(p: *mut T, v: T) {
    if let Some(r) = unsafe { p.as_mut() } {
        *r = v;
    }
}

/// The size-query pattern: `*len` holds the buffer's capacity on entry and the size needed
/// (with the NUL) on return. `buf` NULL only asks for the size.
pub(crate) unsafe fn write_string(s: &str, buf: *mut c_char, len: *mut usize) -> FfiResult {
    let len = unsafe { out_arg(len, "len") }?;
    let needed = s.len() + 1;
    let capacity = *len;
    *len = needed;
    if buf.is_null() {
        return Ok(());
    }
    if capacity < needed {
        return fail(RMW_ERR_BUFFER_TOO_SMALL, format!("buffer of {capacity} bytes, {needed} needed"));
    }
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}
