//! The standalone WebRTC peer: configured by the `WEBRTC_*` environment variables (see
//! docs/ARCHITECTURE.md), it joins the signaling server and answers every offer.
//!
//! `WEBRTC_DEMO=echo` (or `--echo`) makes it an echo peer: every data-channel message comes
//! back on the channel it arrived on. `WEBRTC_CONNECT=peer1,peer2` also connects to those peers
//! when they appear. Events are printed one per line. Runs until SIGINT/SIGTERM.

#[path = "common/shutdown.rs"]
mod shutdown;

use remotemedia_webrtc::{Config, Event, Transport};
use std::time::Duration;

fn main() {
    let echo = std::env::args().any(|a| a == "--echo") || std::env::var("WEBRTC_DEMO").is_ok_and(|v| v == "echo");
    let connect: Vec<String> = std::env::var("WEBRTC_CONNECT")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let cfg = Config::from_env().unwrap_or_else(|e| {
        eprintln!("webrtc_server: {e}");
        std::process::exit(2)
    });
    shutdown::install();
    let t = Transport::new(cfg).unwrap_or_else(|e| {
        eprintln!("webrtc_server: {e}");
        std::process::exit(2)
    });
    println!("webrtc_server: peer id {} ({})", t.local_peer_id(), if echo { "echo mode" } else { "answering" });
    while !shutdown::requested() {
        let ev = match t.poll_event(Some(Duration::from_millis(100))) {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(_) => break,
        };
        match &ev {
            Event::DataChannelMessage { peer_id, channel, data, binary, .. } => {
                println!("message from {peer_id}: {} bytes{}", data.len(), if *binary { " (binary)" } else { "" });
                if echo {
                    if let Err(e) = t.send_on_channel(*channel, data, *binary) {
                        eprintln!("echo to {peer_id} failed: {e}");
                    }
                }
            }
            Event::PeerDiscovered { peer_id } if connect.contains(peer_id) => {
                println!("{ev:?}");
                if let Err(e) = t.connect_peer(peer_id) {
                    eprintln!("connect to {peer_id} failed: {e}");
                }
            }
            _ => println!("{ev:?}"),
        }
    }
    t.close();
}
