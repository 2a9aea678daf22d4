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
