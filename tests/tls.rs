//! `wss://` signaling: our server with a certificate from a private CA made for the test (rcgen),
//! our client verifying it. Verification is on by default: a client that does not trust the CA,
//! or reaches the server under a name the certificate does not carry, does not connect.

mod common;

use common::{TIMEOUT, config, connect, next_message, poll_until, wait_for};
use remotemedia_webrtc::transport::Target;
use remotemedia_webrtc::{Event, ServerConfig, SignalingServer, Transport};
use remotemedia_webrtc::signaling::server_config::TlsFiles;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A CA, and a server certificate it signed for `names`, as PEM files in a fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str, names: &[&str]) -> Pki {
        let dir = std::env::temp_dir().join(format!("rmw-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "remotemedia-webrtc test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn files(&self) -> TlsFiles {
        TlsFiles { cert_file: self.dir.join("cert.pem"), key_file: self.dir.join("key.pem") }
    }

    fn server(&self) -> SignalingServer {
        SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), tls: Some(self.files()), ..Default::default() }).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn trusting(url: &str, id: &str, ca: &str) -> Transport {
    let t = Transport::new(remotemedia_webrtc::Config { signaling_ca_file: ca.into(), ..config(url, id) }).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

/// The reason a transport gives for not getting onto the signaling server.
fn refusal(t: &Transport) -> String {
    let got = poll_until(
        t,
        TIMEOUT,
        |e| matches!(e, Event::SignalingConnected | Event::SignalingDisconnected { .. } | Event::Error { .. }),
        || None,
    )
    .unwrap_or_else(|(seen, _)| panic!("no signaling outcome; saw {seen:?}"));
    match got {
        Event::SignalingDisconnected { reason } | Event::Error { message: reason, .. } => reason,
        e => panic!("connected although it should not trust the server: {e:?}"),
    }
}

#[test]
fn wss_signaling_connects_two_peers_through_a_private_ca() {
    let pki = Pki::new("ok", &["127.0.0.1", "localhost"]);
    let server = pki.server();
    let url = server.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let a = trusting(&url, "alice", &pki.path("ca.pem"));
    let b = trusting(&url.replace("127.0.0.1", "localhost"), "bob", &pki.path("ca.pem"));
    connect(&a, &b);
    a.send_data(Target::Peer("bob"), b"over wss-negotiated DTLS", false).unwrap();
    assert_eq!(next_message(&b).1, b"over wss-negotiated DTLS");
}

#[test]
fn certificate_verification_is_on_by_default() {
    let pki = Pki::new("verify", &["127.0.0.1"]);
    let server = pki.server();
    let url = server.url();

    // Not trusting the CA: refused as an unknown issuer, retried, never announced.
    let stranger = Transport::new(config(&url, "stranger")).unwrap();
    let reason = refusal(&stranger);
    assert!(reason.contains("certificate") && reason.contains("UnknownIssuer"), "{reason}");

    // Trusting the CA but reaching the server under a name the certificate does not carry.
    let misnamed = Transport::new(remotemedia_webrtc::Config { signaling_ca_file: pki.path("ca.pem"), ..config(&url.replace("127.0.0.1", "localhost"), "misnamed") }).unwrap();
    let reason = refusal(&misnamed);
    assert!(reason.contains("certificate not valid for name \"localhost\""), "{reason}");

    // Neither got an id on the server, and a trusting client is served normally.
    let a = trusting(&url, "alice", &pki.path("ca.pem"));
    let list = a.list_signaling_peers().unwrap();
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["peers"][0]["peer_id"], "alice", "{list}");
}

#[test]
fn a_tls_server_refuses_plain_websocket_and_keeps_serving() {
    let pki = Pki::new("plain", &["127.0.0.1"]);
    let server = pki.server();
    let plain = server.url().replace("wss://", "ws://");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(plain.as_str())).await });
    assert!(matches!(r, Ok(Err(_))), "plain ws:// to a TLS port must fail at once: {r:?}");
    trusting(&server.url(), "alice", &pki.path("ca.pem"));
}

#[test]
fn certificate_problems_are_named_at_start() {
    let pki = Pki::new("bad", &["127.0.0.1"]);
    let start = |cert: &Path, key: &Path| {
        let tls = TlsFiles { cert_file: cert.into(), key_file: key.into() };
        SignalingServer::start(ServerConfig { bind_addr: "127.0.0.1:0".into(), tls: Some(tls), ..Default::default() }).map(drop).unwrap_err().to_string()
    };
    let (cert, key, missing) = (pki.dir.join("cert.pem"), pki.dir.join("key.pem"), pki.dir.join("missing.pem"));
    assert!(start(&missing, &key).contains("missing.pem"));
    assert!(start(&cert, &missing).contains("missing.pem"));
    // A certificate given as the key, and a key that does not match the certificate.
    assert!(start(&cert, &cert).contains("cert.pem"));
    let other = Pki::new("other", &["127.0.0.1"]);
    let e = start(&cert, &other.dir.join("key.pem"));
    assert!(e.contains("TLS certificate"), "{e}");

    // A client's CA file is read when the transport is made.
    let e = Transport::new(remotemedia_webrtc::Config { signaling_ca_file: missing.to_string_lossy().into(), ..config("wss://127.0.0.1:9", "x") })
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
}

#[test]
fn the_c_api_starts_a_wss_server_from_json() {
    use remotemedia_webrtc::ffi::*;
    use std::ffi::CString;
    let pki = Pki::new("capi", &["127.0.0.1"]);
    let json = serde_json::json!({"bind_addr": "127.0.0.1:0", "tls": {"cert_file": pki.path("cert.pem"), "key_file": pki.path("key.pem")}, "rate_limit": null});
    let json = CString::new(json.to_string()).unwrap();
    let mut server = 0;
    assert_eq!(unsafe { rmw_signaling_server_start_with_config(json.as_ptr(), &mut server) }, rmw_status_t::RMW_OK);
    let mut buf = [0 as std::os::raw::c_char; 64];
    let mut len = buf.len();
    assert_eq!(unsafe { rmw_signaling_server_url(server, buf.as_mut_ptr(), &mut len) }, rmw_status_t::RMW_OK);
    let url = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_string();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    trusting(&url, "alice", &pki.path("ca.pem"));
    assert_eq!(rmw_signaling_server_stop(server), rmw_status_t::RMW_OK);

    let bad = CString::new(r#"{"tls":{"cert_file":"/nonexistent/cert.pem","key_file":"k.pem"}}"#).unwrap();
    assert_eq!(unsafe { rmw_signaling_server_start_with_config(bad.as_ptr(), &mut server) }, rmw_status_t::RMW_ERR_CONFIG);
    let msg = unsafe { std::ffi::CStr::from_ptr(rmw_last_error_message()) }.to_string_lossy().into_owned();
    assert!(msg.contains("/nonexistent/cert.pem"), "{msg}");
}
