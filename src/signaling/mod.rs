//! Signaling: the JSON-RPC 2.0 dialect of docs/PROTOCOL.md over WebSocket.
//!
//! `protocol` parses and builds messages (shared by both ends), `server` is the relay we ship,
//! `client` is the transport's connection to any server speaking the dialect, `auth` the
//! optional check of `announce`, `rate` the server's per-connection message rate limit, `tls` the rustls set-up of `wss://`.

pub mod auth;
pub mod client;
pub mod protocol;
pub mod rate;
pub mod server;
pub mod server_config;
pub(crate) mod tls;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The WebSocket settings of both ends. tungstenite preallocates a 128 KiB read buffer per
/// connection; signaling messages are a few kB (an SDP is ~5 kB), and the buffer still grows
/// for a larger one. 16 KiB also keeps the buffer under glibc's 128 KiB mmap threshold: freeing
/// an mmapped block raises that threshold for the rest of the process, after which every
/// thread's arena keeps up to twice as much freed memory (the soak's RSS plateau).
pub(crate) fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}
