//! The standalone signaling server: `rmw_signaling_server [--config FILE.json] [--bind HOST:PORT]
//! [--max-message-bytes N]` (or RMW_SIGNALING_BIND). The config file holds the JSON object of
//! `rmw_signaling_server_start_with_config` (limits, rate limit, TLS); flags and the environment
//! override it. Runs until SIGINT/SIGTERM.
//! Authentication of `announce`: RMW_SIGNALING_SECRET (a shared secret every client sends as
//! its token) or RMW_SIGNALING_JWT_SECRET (clients send an HS256 JWT whose `sub` is their peer
//! id). Secrets come from the environment, not the command line, so `ps` does not show them.

#[path = "common/shutdown.rs"]
mod shutdown;

use remotemedia_webrtc::signaling::auth::Auth;
use remotemedia_webrtc::{ServerConfig, SignalingServer};
use std::time::Duration;

const USAGE: &str = "usage: rmw_signaling_server [--config FILE.json] [--bind HOST:PORT] [--max-message-bytes N]";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = match args.iter().position(|a| a == "--config") {
        Some(i) if i + 1 < args.len() => {
            let path = args.drain(i..=i + 1).nth(1).unwrap_or_default();
            let json = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&format!("--config {path}: {e}")));
            ServerConfig::from_json(&json).unwrap_or_else(|e| fail(&format!("--config {path}: {e}")))
        }
        Some(_) => fail(USAGE),
        None => ServerConfig::default(),
    };
    if let Ok(b) = std::env::var("RMW_SIGNALING_BIND") {
        cfg.bind_addr = b;
    }
    if let Ok(s) = std::env::var("RMW_SIGNALING_SECRET") {
        cfg.auth = Some(Auth::SharedSecret(s));
    }
    if let Ok(secret) = std::env::var("RMW_SIGNALING_JWT_SECRET") {
        cfg.auth = Some(Auth::Jwt { secret });
    }
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--bind", Some(v)) => cfg.bind_addr = v,
            ("--max-message-bytes", Some(v)) => {
                cfg.max_message_bytes = v.parse().unwrap_or_else(|_| fail(&format!("--max-message-bytes: not a number: {v}")))
            }
            _ => fail(USAGE),
        }
    }
    shutdown::install();
    let server = SignalingServer::start(cfg).unwrap_or_else(|e| fail(&e.to_string()));
    if server.url().starts_with("wss://") {
        println!("rmw_signaling_server listening on {}", server.url());
    } else {
        println!("rmw_signaling_server listening on {} (browser test page: http://{}/)", server.url(), server.local_addr());
    }
    while !shutdown::requested() {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}

fn fail(msg: &str) -> ! {
    eprintln!("rmw_signaling_server: {msg}");
    std::process::exit(2)
}
