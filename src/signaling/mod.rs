//! Signaling: the JSON-RPC 2.0 dialect of docs/PROTOCOL.md over WebSocket.
//!
//! `protocol` parses and builds messages (shared by both ends), `server` is the relay we ship,
//! `client` is the transport's connection to any server speaking the dialect.

pub mod client;
pub mod protocol;
pub mod server;
