//! TURN servers for the tests, all on 127.0.0.1 only:
//!
//! - `Coturn`: the real coturn (`turnserver` from Debian's `coturn` package) as a child
//!   process, long-term credentials, UDP only (no TLS/DTLS/TCP, no CLI), relaying to loopback
//!   peers, logging to a file in a scratch directory, killed on drop. `Coturn::start()` returns
//!   `None` (and says why) when coturn is not installed, unless `RMW_REQUIRE_COTURN=1`, where
//!   that is a failure.
//! - `TestTurn`: webrtc-rs's own TURN server (`webrtc::turn`) on its own Tokio runtime, its
//!   listening socket wrapped in an `ImpairedConn` (common/impair.rs), so that every packet
//!   between two relay-only peers crosses the impairment, and counted. Beware: it answers a
//!   retransmitted Allocate with 437 instead of the lost success (coturn answers it again), so
//!   impair only peer data through it (`Impairment::relayed_only`) unless that is the point.
//! - `ImpairedProxy`: a UDP proxy whose answers to the clients cross an `ImpairedConn`, to put
//!   an impairment in front of coturn.

use super::impair::{ImpairReport, ImpairStats, ImpairedConn, Impairment};
use remotemedia_webrtc::TurnServer;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const REALM: &str = "rmw.test";
pub const USER: &str = "rmw";
pub const PASSWORD: &str = "s3cret-relay";

/// A `turn_servers` entry.
pub fn turn_entry(url: &str, username: &str, credential: &str) -> TurnServer {
    TurnServer { url: url.into(), username: username.into(), credential: credential.into() }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir, for one server's files.
fn scratch_dir(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!("rmw-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Sends STUN Binding requests to `addr` until one is answered (true) or `timeout` passes.
pub fn stun_ping(addr: SocketAddr, timeout: Duration) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // Type 0x0001 (Binding request), length 0, magic cookie, 12-byte transaction id.
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(b"rmw-ping-123");
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let _ = s.send_to(&req, addr);
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            // A Binding success response (0x0101) for our transaction.
            if n >= 20 && buf[0..2] == [0x01, 0x01] && buf[8..20] == req[8..20] {
                return true;
            }
        }
    }
    false
}

/// coturn as a child process on 127.0.0.1 (see the module comment).
pub struct Coturn {
    child: Option<Child>,
    pub port: u16,
    pub relay_ports: (u16, u16),
    dir: PathBuf,
}

impl Coturn {
    /// Starts `turnserver` and waits until it answers STUN. `None` when it is not installed
    /// (a message says so), unless the environment has `RMW_REQUIRE_COTURN=1`: then it panics.
    pub fn start() -> Option<Coturn> {
        let Some(bin) = find_in_path("turnserver") else {
            let required = std::env::var("RMW_REQUIRE_COTURN").is_ok_and(|v| v.trim() == "1");
            assert!(!required, "RMW_REQUIRE_COTURN=1 but `turnserver` is not installed (apt-get install coturn)");
            eprintln!("SKIPPED: coturn's `turnserver` is not installed (apt-get install coturn; set RMW_REQUIRE_COTURN=1 to make this a failure)");
            return None;
        };
        let dir = scratch_dir("coturn");
        let port = free_udp_port();
        // A small relay range next to the listening port (free in a fresh network namespace).
        let lo = if port < 65_000 { port + 1 } else { port - 40 };
        let relay_ports = (lo, lo + 31);
        let log = dir.join("turn.log");
        let args: Vec<String> = vec![
            "-n".into(), // no configuration file: everything is on this command line
            "--listening-ip=127.0.0.1".into(),
            format!("--listening-port={port}"),
            "--relay-ip=127.0.0.1".into(),
            format!("--min-port={}", relay_ports.0),
            format!("--max-port={}", relay_ports.1),
            "--lt-cred-mech".into(),
            format!("--user={USER}:{PASSWORD}"),
            format!("--realm={REALM}"),
            "--no-tls".into(),
            "--no-dtls".into(),
            "--no-tcp".into(),
            "--no-tcp-relay".into(),
            "--no-cli".into(),
            "--allow-loopback-peers".into(),
            "--no-software-attribute".into(),
            "--verbose".into(),
            format!("--log-file={}", log.display()),
            "--simple-log".into(),
            "--no-stdout-log".into(),
            format!("--pidfile={}", dir.join("turn.pid").display()),
            // Its SQLite user database (unused: the user is on the command line) stays here too.
            format!("--userdb={}", dir.join("turndb").display()),
        ];
        let child = Command::new(&bin).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut t = Coturn { child: Some(child), port, relay_ports, dir };
        let addr = t.addr();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = t.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("turnserver exited ({status}) before answering; args {args:?}; log:\n{}", t.log());
            }
            if stun_ping(addr, Duration::from_millis(300)) {
                return Some(t);
            }
        }
        panic!("turnserver did not answer STUN on {addr} within 10 s; log:\n{}", t.log());
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}", self.port)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("turn.log")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Kills the server (as a crash would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- coturn log ({}) ---\n{}", self.log_path().display(), tail(&self.log(), 60));
        } else {
            remove_dir(&self.dir);
        }
    }
}

fn remove_dir(d: &Path) {
    let _ = std::fs::remove_dir_all(d);
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Long-term credentials: one user.
struct OneUser {
    user: String,
    key: Vec<u8>,
}

impl webrtc::turn::auth::AuthHandler for OneUser {
    fn auth_handle(&self, username: &str, _realm: &str, _src: SocketAddr) -> Result<Vec<u8>, webrtc::turn::Error> {
        if username == self.user { Ok(self.key.clone()) } else { Err(webrtc::turn::Error::ErrNoSuchUser) }
    }
}

/// webrtc-rs's TURN server on 127.0.0.1 with its listening socket impaired (see the module
/// comment). Relay sockets are on 127.0.0.1 too. Stopped on drop.
pub struct TestTurn {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<webrtc::turn::server::Server>,
    addr: SocketAddr,
    stats: Arc<ImpairStats>,
    description: String,
}

impl TestTurn {
    pub fn start(imp: Impairment) -> TestTurn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("test-turn").enable_all().build().unwrap();
        let (server, addr, stats, description) = runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let conn = ImpairedConn::new(socket, imp);
            let (stats, description) = (conn.stats(), conn.describe());
            let server = webrtc::turn::server::Server::new(webrtc::turn::server::config::ServerConfig {
                conn_configs: vec![webrtc::turn::server::config::ConnConfig {
                    conn: Arc::new(conn),
                    relay_addr_generator: Box::new(webrtc::turn::relay::relay_static::RelayAddressGeneratorStatic {
                        relay_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                        address: "127.0.0.1".into(),
                        net: Arc::new(webrtc::util::vnet::net::Net::new(None)),
                    }),
                }],
                realm: REALM.into(),
                auth_handler: Arc::new(OneUser { user: USER.into(), key: webrtc::turn::auth::generate_auth_key(USER, REALM, PASSWORD) }),
                channel_bind_timeout: Duration::ZERO, // the default, 10 minutes
                alloc_close_notify: None,
            })
            .await
            .unwrap();
            (server, addr, stats, description)
        });
        TestTurn { runtime: Some(runtime), server: Some(server), addr, stats, description }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("turn:{}", self.addr)
    }

    /// The `turn_servers` entry with the right credentials.
    pub fn entry(&self) -> TurnServer {
        turn_entry(&self.url(), USER, PASSWORD)
    }

    pub fn report(&self) -> ImpairReport {
        self.stats.report()
    }

    /// The impairment applied, with the seed.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl Drop for TestTurn {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            if let Some(server) = self.server.take() {
                rt.block_on(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(2), server.close()).await;
                });
            }
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A UDP proxy on 127.0.0.1 in front of a server (e.g. coturn, which cannot be wrapped from
/// inside): each client gets an upstream socket of its own, so the server sees one 5-tuple per
/// client as usual. What goes back to the clients crosses an `ImpairedConn`; what goes to the
/// server is not impaired (so each exchange is impaired once). Stopped on drop.
pub struct ImpairedProxy {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    stats: Arc<ImpairStats>,
    description: String,
}

impl ImpairedProxy {
    pub fn start(upstream: SocketAddr, imp: Impairment) -> ImpairedProxy {
        use std::collections::HashMap;
        use webrtc::util::Conn;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("test-proxy").enable_all().build().unwrap();
        let (addr, stats, description) = runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let front = Arc::new(ImpairedConn::new(socket, imp));
            let (stats, description) = (front.stats(), front.describe());
            tokio::spawn(async move {
                let mut clients: HashMap<SocketAddr, Arc<tokio::net::UdpSocket>> = HashMap::new();
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, client)) = front.recv_from(&mut buf).await {
                    let up = match clients.get(&client) {
                        Some(up) => up.clone(),
                        None => {
                            let up = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
                            up.connect(upstream).await.unwrap();
                            clients.insert(client, up.clone());
                            // The server's answers to this client, back through the impairment.
                            let (up2, front2) = (up.clone(), front.clone());
                            tokio::spawn(async move {
                                let mut buf = vec![0u8; 65_536];
                                while let Ok(n) = up2.recv(&mut buf).await {
                                    let _ = front2.send_to(&buf[..n], client).await;
                                }
                            });
                            up
                        }
                    };
                    let _ = up.send(&buf[..n]).await;
                }
            });
            (addr, stats, description)
        });
        ImpairedProxy { runtime: Some(runtime), addr, stats, description }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `turn:` URL of the server through this proxy.
    pub fn turn_url(&self) -> String {
        format!("turn:{}", self.addr)
    }

    pub fn report(&self) -> ImpairReport {
        self.stats.report()
    }

    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl Drop for ImpairedProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
