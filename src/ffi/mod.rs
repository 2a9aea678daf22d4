//! The C ABI. Everything `extern "C"`, every raw pointer and every handle check lives here;
//! each export is a thin line into the Rust core through `guard::call`, which catches
//! panics, validates arguments and maps the core's `Error` to a status code plus the
//! thread-local message behind `rmw_last_error_message`.
//!
//! Handles are 64-bit ids, never reused, with the object kind in the top byte: a freed,
//! never-created or wrong-kind handle is looked up and refused, never dereferenced.
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

mod args;
mod audio;
mod datachannel;
mod delivery;
mod event;
mod guard;
mod handles;
mod log;
mod server;
mod session;
mod transport;
mod types;
mod video;

pub use audio::*;
pub use datachannel::*;
pub use event::*;
pub use guard::{rmw_last_error_message, rmw_status_string};
pub use log::*;
pub use server::*;
pub use session::*;
pub use transport::*;
pub use types::*;
pub use video::*;

use std::os::raw::c_char;

/// Library version, e.g. "0.1.0". Static string: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// ABI version: changes whenever a declaration of this header changes incompatibly. A program
/// can compare it with `RMW_ABI_VERSION` from the header it was compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn rmw_abi_version() -> u32 {
    crate::ABI_VERSION
}
