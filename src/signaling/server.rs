//! The signaling relay we ship: embeddable (own runtime, start/stop) and behind the
//! `rmw_signaling_server` binary. It speaks docs/PROTOCOL.md and fixes the reference server's
//! weakness: an id is bound to a socket only when `announce` succeeds, and every relayed message
//! carries the sender id the server knows, never one the client wrote.
//!
//! Plain HTTP `GET /` on the same port serves the browser peer page (web/peer.html) used by the
//! Chromium interop test and usable by hand.

use super::protocol::{self as rpc, Message as Rpc, RpcError};
use super::rate::{Bucket, Verdict};
pub use super::server_config::ServerConfig;
use crate::error::{Error, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PEER_PAGE: &str = include_str!("web/peer.html");
const MAX_PEER_ID_LEN: usize = 256;
/// The server pings every client this often and drops one silent for `IDLE_TIMEOUT`, so a
/// vanished client releases its id (a reconnect would otherwise be refused as a duplicate).
const PING_INTERVAL: Duration = Duration::from_secs(15);
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A TLS client that does not finish its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server. Dropping it stops it.
pub struct SignalingServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
    tls: bool,
}

impl SignalingServer {
    /// Binds and starts serving on a runtime of its own; returns once the socket is bound.
    pub fn start(cfg: ServerConfig) -> Result<SignalingServer> {
        cfg.validate()?;
        // Certificate problems fail the start, not every later handshake.
        let acceptor = cfg.tls.as_ref().map(super::tls::acceptor).transpose()?;
        let tls = acceptor.is_some();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rmw-signaling")
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(TcpListener::bind(&cfg.bind_addr))
            .map_err(|e| Error::Io(format!("bind {}: {e}", cfg.bind_addr)))?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let hub = Arc::new(Hub::default());
        runtime.spawn(accept_loop(listener, hub, Arc::new(cfg), acceptor, rx));
        tracing::info!(target: "rmw::signaling::server", %addr, tls, "signaling server listening");
        Ok(SignalingServer { addr, shutdown, runtime: Some(runtime), tls })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://` (or `wss://` with TLS) URL clients use to reach this server.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "wss" } else { "ws" }, self.addr)
    }

    /// Stops accepting, closes every connection and joins the server's threads.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for SignalingServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

#[derive(Default)]
struct Hub {
    peers: Mutex<HashMap<String, Slot>>,
    next_conn: AtomicU64,
    next_offer: AtomicU64,
}

struct Slot {
    conn: u64,
    tx: mpsc::Sender<String>,
    capabilities: Value,
}

impl Hub {
    /// Queues `msg` for `to`. Never waits: a client that stops reading must not stall the relay.
    fn relay(&self, to: &str, msg: String) -> std::result::Result<(), RpcError> {
        let peers = self.peers.lock().unwrap();
        let slot = peers.get(to).ok_or_else(|| RpcError::application(format!("peer not found: {to}")))?;
        slot.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RpcError::application(format!("peer {to} is not reading: its queue is full")),
            mpsc::error::TrySendError::Closed(_) => RpcError::application(format!("peer not found: {to}")),
        })
    }

    fn broadcast_except(&self, except: &str, msg: &str) {
        let peers = self.peers.lock().unwrap();
        for (id, slot) in peers.iter().filter(|(id, _)| id.as_str() != except) {
            if slot.tx.try_send(msg.to_string()).is_err() {
                tracing::warn!(target: "rmw::signaling::server", peer = %id, "dropped a notification: queue full or closed");
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, hub: Arc<Hub>, cfg: Arc<ServerConfig>, tls: Option<TlsAcceptor>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, peer, hub.clone(), cfg.clone(), tls.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(target: "rmw::signaling::server", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Reads the HTTP request head without consuming it, so a WebSocket upgrade can still be
/// handed to tungstenite while a plain GET gets the browser page.
async fn peek_request_head(stream: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        if head.contains("\r\n\r\n") || n == buf.len() {
            return Some(head.into_owned());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn is_websocket_upgrade(head: &str) -> bool {
    head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade") && value.split(',').any(|v| v.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

async fn serve_http(mut stream: TcpStream, head: &str) {
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let (status, ctype, body) = match path {
        "/" | "/peer.html" => ("200 OK", "text/html; charset=utf-8", PEER_PAGE),
        _ => ("404 Not Found", "text/plain", "not found\n"),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    hub: Arc<Hub>,
    cfg: Arc<ServerConfig>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let Some(tls) = tls else {
        let Some(head) = peek_request_head(&stream).await else { return };
        if !is_websocket_upgrade(&head) {
            return serve_http(stream, &head).await;
        }
        return serve_websocket(stream, remote, hub, cfg, shutdown).await;
    };
    // With TLS the port speaks WebSocket only: the browser page is for plain local testing.
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve_websocket(stream, remote, hub, cfg, shutdown).await,
        Ok(Err(e)) => tracing::debug!(target: "rmw::signaling::server", %remote, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(target: "rmw::signaling::server", %remote, "TLS handshake timed out"),
    }
}

async fn serve_websocket<S>(stream: S, remote: SocketAddr, hub: Arc<Hub>, cfg: Arc<ServerConfig>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_limit = (cfg.max_message_bytes * 4).max(64 * 1024);
    let ws_cfg = super::websocket_config().max_message_size(Some(ws_limit)).max_frame_size(Some(ws_limit));
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(ws_cfg)).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(target: "rmw::signaling::server", %remote, error = %e, "websocket handshake failed");
            return;
        }
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<String>(cfg.outbound_queue);
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                text = rx.recv() => match text { Some(t) => WsMessage::text(t), None => break },
                _ = ping.tick() => WsMessage::Ping(Vec::new().into()),
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut last_heard = tokio::time::Instant::now();
    let mut conn = Connection::new(&hub, tx, cfg);
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep_until(last_heard + IDLE_TIMEOUT) => {
                tracing::debug!(target: "rmw::signaling::server", %remote, "client silent: closing");
                break;
            }
            f = source.next() => f,
        };
        last_heard = tokio::time::Instant::now();
        let reply = match frame {
            Some(Ok(WsMessage::Text(text))) => conn.handle_frame(Frame::Text(text.as_str()), std::time::Instant::now()),
            Some(Ok(WsMessage::Binary(_))) => conn.handle_frame(Frame::Binary, std::time::Instant::now()),
            Some(Ok(WsMessage::Close(_))) | None => break,
            Some(Ok(_)) => None, // ping/pong are answered by tungstenite
            Some(Err(e)) => {
                tracing::debug!(target: "rmw::signaling::server", %remote, error = %e, "connection error");
                break;
            }
        };
        if let Some(reply) = reply {
            if conn.tx.send(reply).await.is_err() {
                break;
            }
        }
        if conn.flooding {
            tracing::info!(target: "rmw::signaling::server", %remote, peer = ?conn.peer_id, "closing a client that ignores the rate limit");
            break;
        }
    }
    conn.leave();
    drop(conn);
    let _ = writer.await;
}

/// Runs `frames` — (client index, text) from `clients` connected sockets — through the server's
/// message handling without sockets, threads or a runtime, then closes every connection, and
/// returns what each client was sent, in order. A client closed for flooding sends nothing more.
/// For the `signaling_server` fuzz target (fuzz/) and tests of the handling's invariants.
#[doc(hidden)]
pub fn handle_frames_offline(cfg: ServerConfig, clients: usize, frames: &[(usize, &str)]) -> Vec<Vec<String>> {
    let hub = Arc::new(Hub::default());
    let cfg = Arc::new(cfg);
    let (mut conns, mut inboxes): (Vec<_>, Vec<_>) = (0..clients.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::channel(cfg.outbound_queue);
            (Connection::new(&hub, tx, cfg.clone()), rx)
        })
        .unzip();
    let mut received = vec![Vec::new(); conns.len()];
    let mut drain = |inboxes: &mut Vec<mpsc::Receiver<String>>| {
        for (inbox, got) in inboxes.iter_mut().zip(received.iter_mut()) {
            while let Ok(m) = inbox.try_recv() {
                got.push(m);
            }
        }
    };
    let now = std::time::Instant::now();
    for &(i, text) in frames {
        let conn = &mut conns[i % clients.max(1)];
        if conn.flooding {
            continue;
        }
        if let Some(reply) = conn.handle_frame(Frame::Text(text), now) {
            let _ = conn.tx.try_send(reply);
        }
        if conn.flooding {
            conn.leave();
        }
        drain(&mut inboxes);
    }
    for conn in &mut conns {
        conn.leave();
    }
    drain(&mut inboxes);
    received
}

/// A WebSocket data frame as the message handling sees it.
enum Frame<'a> {
    Text(&'a str),
    Binary,
}

struct Connection {
    id: u64,
    peer_id: Option<String>,
    tx: mpsc::Sender<String>,
    hub: Arc<Hub>,
    cfg: Arc<ServerConfig>,
    bucket: Option<Bucket>,
    /// Set when the client kept sending past the rate limit: the connection is to be closed.
    flooding: bool,
}

impl Connection {
    fn new(hub: &Arc<Hub>, tx: mpsc::Sender<String>, cfg: Arc<ServerConfig>) -> Connection {
        let bucket = cfg.rate_limit.map(|limit| Bucket::new(limit, std::time::Instant::now()));
        Connection { id: hub.next_conn.fetch_add(1, Ordering::Relaxed), peer_id: None, tx, hub: hub.clone(), cfg, bucket, flooding: false }
    }

    /// Handles one data frame received at `now`; returns the response to send back, if any.
    fn handle_frame(&mut self, frame: Frame<'_>, now: std::time::Instant) -> Option<String> {
        if let Some(bucket) = &mut self.bucket {
            match bucket.take(now) {
                Verdict::Accept => {}
                verdict => {
                    // Answered (id null: the frame is not parsed) so a well-meaning client learns
                    // why; nothing in it is executed or relayed.
                    let mut msg = bucket.describe();
                    if matches!(verdict, Verdict::Disconnect) {
                        self.flooding = true;
                        msg.push_str(": closing the connection");
                    }
                    return Some(rpc::response(&Value::Null, Err(RpcError::application(msg))));
                }
            }
        }
        match frame {
            Frame::Text(text) => self.handle_text(text),
            Frame::Binary => {
                Some(rpc::response(&Value::Null, Err(RpcError::new(rpc::INVALID_REQUEST, "binary frames are not supported: send JSON text"))))
            }
        }
    }

    fn handle_text(&mut self, text: &str) -> Option<String> {
        if text.len() > self.cfg.max_message_bytes {
            let msg = format!("message of {} bytes exceeds the limit of {} bytes", text.len(), self.cfg.max_message_bytes);
            return Some(rpc::response(&Value::Null, Err(RpcError::new(rpc::INVALID_REQUEST, msg))));
        }
        match rpc::parse(text) {
            // A notification (no id) with bad params: JSON-RPC forbids answering it.
            Err((None, err)) if err.code == rpc::INVALID_PARAMS => None,
            Err((id, err)) => Some(rpc::response(&id.unwrap_or(Value::Null), Err(err))),
            Ok(Rpc::Response { .. }) => None, // the server sends no requests; stray responses are ignored
            Ok(Rpc::Call { id, method, params }) => {
                let result = self.dispatch(&method, &params);
                if let Err(e) = &result {
                    tracing::debug!(target: "rmw::signaling::server", peer = ?self.peer_id, %method, error = %e, "request failed");
                }
                // A call without an id is a notification: JSON-RPC forbids answering it.
                id.map(|id| rpc::response(&id, result))
            }
        }
    }

    fn dispatch(&mut self, method: &str, params: &Value) -> std::result::Result<Value, RpcError> {
        if method == "announce" {
            return self.announce(params);
        }
        if !matches!(method, "offer" | "answer" | "ice_candidate" | "disconnect" | "list_peers") {
            return Err(RpcError::new(rpc::METHOD_NOT_FOUND, format!("method not found: {method}")));
        }
        let me = self.peer_id.clone().ok_or_else(|| RpcError::application("not announced: call announce first"))?;
        match method {
            "offer" => {
                let to = rpc::str_param(params, "to_peer_id")?;
                let sdp = rpc::str_param(params, "sdp")?;
                let kind = rpc::opt_str_param(params, "type")?.unwrap_or("offer");
                let offer_id = format!("offer-{}", self.hub.next_offer.fetch_add(1, Ordering::Relaxed) + 1);
                let note = rpc::notification("offer", json!({"from_peer_id": me, "offer_id": offer_id, "sdp": sdp, "type": kind}));
                self.hub.relay(to, note)?;
                Ok(json!({"offer_id": offer_id, "to_peer_id": to}))
            }
            "answer" => {
                let to = rpc::str_param(params, "to_peer_id")?;
                let sdp = rpc::str_param(params, "sdp")?;
                let kind = rpc::opt_str_param(params, "type")?.unwrap_or("answer");
                self.hub.relay(to, rpc::notification("answer", json!({"from_peer_id": me, "sdp": sdp, "type": kind})))?;
                Ok(json!({"to_peer_id": to}))
            }
            "ice_candidate" => {
                let to = rpc::str_param(params, "to_peer_id")?;
                let candidate = rpc::str_param(params, "candidate")?;
                let mid = rpc::opt_str_param(params, "sdp_mid")?;
                let index = rpc::opt_u16_param(params, "sdp_mline_index")?;
                let note = rpc::notification(
                    "ice_candidate",
                    json!({"from_peer_id": me, "candidate": candidate, "sdp_mid": mid, "sdp_mline_index": index}),
                );
                self.hub.relay(to, note)?;
                Ok(json!({"to_peer_id": to}))
            }
            "disconnect" => {
                let target = rpc::str_param(params, "peer_id")?;
                self.hub.relay(target, rpc::notification("peer_disconnected", json!({"peer_id": me})))?;
                Ok(json!({"peer_id": target}))
            }
            _ => {
                let peers = self.hub.peers.lock().unwrap();
                let list: Vec<Value> = peers
                    .iter()
                    .map(|(id, s)| json!({"peer_id": id, "capabilities": s.capabilities, "state": "connected"}))
                    .collect();
                Ok(json!({"count": list.len(), "peers": list}))
            }
        }
    }

    fn announce(&mut self, params: &Value) -> std::result::Result<Value, RpcError> {
        let id = rpc::str_param(params, "peer_id")?;
        if id.is_empty() || id.len() > MAX_PEER_ID_LEN || id.chars().any(char::is_control) {
            return Err(RpcError::invalid_params(format!("params.peer_id must be 1..={MAX_PEER_ID_LEN} bytes without control characters")));
        }
        if let Some(current) = &self.peer_id {
            return Err(RpcError::application(format!("this connection already announced as {current}")));
        }
        if let Some(auth) = &self.cfg.auth {
            // The socket stays unannounced: it can do nothing but try again.
            auth.check(id, rpc::opt_str_param(params, "token")?).map_err(RpcError::application)?;
        }
        let capabilities = params.get("capabilities").cloned().unwrap_or_else(|| json!({}));
        let others: Vec<String> = {
            let mut peers = self.hub.peers.lock().unwrap();
            if peers.contains_key(id) {
                return Err(RpcError::application(format!("peer id already announced: {id}")));
            }
            let others = peers.keys().cloned().collect();
            peers.insert(id.to_string(), Slot { conn: self.id, tx: self.tx.clone(), capabilities: capabilities.clone() });
            others
        };
        self.peer_id = Some(id.to_string());
        tracing::debug!(target: "rmw::signaling::server", peer = %id, "announced");
        self.hub.broadcast_except(id, &rpc::notification("peer_joined", json!({"peer_id": id, "capabilities": capabilities})));
        Ok(json!({"peer_id": id, "peers_count": others.len() + 1, "other_peers": others}))
    }

    /// Unbinds this socket's id (only if it still owns it) and tells the others.
    fn leave(&mut self) {
        let Some(id) = self.peer_id.take() else { return };
        let removed = {
            let mut peers = self.hub.peers.lock().unwrap();
            match peers.get(&id) {
                Some(slot) if slot.conn == self.id => peers.remove(&id).is_some(),
                _ => false,
            }
        };
        if removed {
            tracing::debug!(target: "rmw::signaling::server", peer = %id, "left");
            self.hub.broadcast_except(&id, &rpc::notification("peer_left", json!({"peer_id": id})));
        }
    }
}
