//! The standalone binaries: `rmw_signaling_server` serves, `webrtc_server` in echo mode
//! (configured only through WEBRTC_* variables) answers a native transport's messages.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// The standalone signaling server started with `args`, and the URL it prints.
fn standalone_server(args: &[&std::ffi::OsStr]) -> (Kill, String) {
    let mut server = Kill(Command::new(env!("CARGO_BIN_EXE_rmw_signaling_server")).args(args).stdout(Stdio::piped()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("ws://")).expect("server prints its URL").to_string();
    (server, url)
}

#[test]
fn echo_peer_through_the_standalone_server() {
    let (_server, url) = standalone_server(&["--bind".as_ref(), "127.0.0.1:0".as_ref()]);
    let _echo = EchoPeer::spawn(&url, "echo");
    let me = transport(&url, "client");
    if !me.discovered_peers().contains(&"echo".to_string()) {
        wait_for(&me, |e| matches!(e, remotemedia_webrtc::Event::PeerDiscovered { peer_id } if peer_id == "echo"));
    }
    me.connect_peer("echo").unwrap();
    let ch = channel_of(&wait_for(&me, is_open("echo", "data")));
    me.send_on_channel(ch, b"marco", false).unwrap();
    assert_eq!(next_message(&me), ("data".to_string(), b"marco".to_vec(), false));
    me.send_on_channel(ch, &[9, 8, 7], true).unwrap();
    assert_eq!(next_message(&me), ("data".to_string(), vec![9, 8, 7], true));
}

#[test]
fn standalone_server_takes_a_config_file_and_names_its_mistakes() {
    let dir = std::env::temp_dir().join(format!("rmw-bin-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"bind_addr":"127.0.0.1:0","rate_limit":{"per_second":50,"burst":80}}"#).unwrap();
    let (_server, url) = standalone_server(&["--config".as_ref(), good.as_os_str()]);
    transport(&url, "configured");

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"rate_limit":{"per_second":0,"burst":1}}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmw_signaling_server")).arg("--config").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.json") && stderr.contains("per_second and burst must be > 0"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
