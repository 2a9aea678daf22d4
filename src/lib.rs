//! remotemedia-webrtc: real-time WebRTC audio, data (and, later, video) for native programs.
//!
//! The Rust core (`config`, `signaling`, `transport`, `peer`, `session`, `datachannel`, `media`, `events`)
//! knows nothing about C. `ffi` is the only module with `extern "C"` functions, raw pointers and
//! handle checks; it is a thin layer over the core. See docs/ARCHITECTURE.md.

pub mod config;
pub mod datachannel;
mod dispatch;
pub mod error;
pub mod events;
pub mod ffi;
// Entry points of the cargo-fuzz targets in fuzz/ (and tests/fuzz_corpus.rs); not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod media;
mod peer;
pub mod session;
pub mod signaling;
pub mod transport;

pub use config::{Config, IcePolicy, TurnServer};
pub use error::{Error, Result};
pub use events::{Event, MediaKind};
pub use signaling::server::{ServerConfig, SignalingServer};
pub use transport::Transport;

/// Library version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Bumped on every incompatible change of the C ABI; the soname carries it.
pub const ABI_VERSION: u32 = 1;
