//! The core's one error type. Each variant maps to exactly one C status code
//! (see `ffi::status`), so the kind of failure survives the FFI boundary and the
//! text goes to `rmw_last_error_message`.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("max_peers reached: {0}")]
    MaxPeers(String),
    #[error("not connected: {0}")]
    NotConnected(String),
    #[error("signaling: {0}")]
    Signaling(String),
    #[error("webrtc: {0}")]
    WebRtc(String),
    #[error("i/o: {0}")]
    Io(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("closed: {0}")]
    Closed(String),
    #[error("would block: {0}")]
    WouldBlock(String),
    /// A bounded queue toward an encoder is full: the input was not taken.
    #[error("queue full: {0}")]
    QueueFull(String),
    #[error("codec: {0}")]
    Codec(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<webrtc::Error> for Error {
    fn from(e: webrtc::Error) -> Self {
        Error::WebRtc(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl From<audiopus::Error> for Error {
    fn from(e: audiopus::Error) -> Self {
        Error::Codec(format!("opus: {e}"))
    }
}
