//! The transport's connection to a signaling server: announce, relay requests, typed server
//! events, and reconnection with exponential backoff (re-announcing each time). Peer-to-peer
//! connections do not depend on it once they are up.

use super::protocol::{self as rpc, Message as Rpc, ServerEvent};
use crate::error::{Error, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const TARGET: &str = "rmw::signaling::client";
/// A server that answers nothing for this long is treated as gone.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// WebSocket ping period; a server silent for `DEAD_AFTER` (no pong, nothing) is gone.
const PING_INTERVAL: Duration = Duration::from_secs(15);
const DEAD_AFTER: Duration = Duration::from_secs(45);

#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Announced (again, after a reconnect); the ids the server listed as already present.
    Connected { other_peers: Vec<String> },
    Disconnected { reason: String },
    Server(ServerEvent),
    /// A request of ours was refused, or the server sent something we could not use.
    Error { message: String },
}

pub struct ClientSettings {
    pub url: String,
    pub peer_id: String,
    pub capabilities: Value,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Sent as `params.token` of `announce` when not empty (servers that check it).
    pub token: String,
    /// How `wss://` servers are verified (`signaling::tls::client_config`); unused for `ws://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

enum Outgoing {
    Call { method: String, params: Value, reply: Option<oneshot::Sender<Result<Value>>> },
    Close(oneshot::Sender<()>),
}

/// Handle to the background connection task.
pub struct SignalingClient {
    out: mpsc::UnboundedSender<Outgoing>,
    connected: Arc<AtomicBool>,
}

impl SignalingClient {
    /// Starts connecting in the background on the current Tokio runtime.
    pub fn spawn(settings: ClientSettings, events: mpsc::UnboundedSender<ClientEvent>) -> SignalingClient {
        let (out, rx) = mpsc::unbounded_channel();
        let connected = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(settings, rx, events, connected.clone()));
        SignalingClient { out, connected }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Sends a request without waiting for its answer; a refusal arrives as `ClientEvent::Error`.
    pub fn send(&self, method: &str, params: Value) -> Result<()> {
        if !self.is_connected() {
            return Err(Error::NotConnected(format!("signaling server not connected (cannot send {method})")));
        }
        self.out
            .send(Outgoing::Call { method: method.into(), params, reply: None })
            .map_err(|_| Error::Closed("signaling client stopped".into()))
    }

    /// Sends a request and waits for its result.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        if !self.is_connected() {
            return Err(Error::NotConnected(format!("signaling server not connected (cannot send {method})")));
        }
        let (tx, rx) = oneshot::channel();
        self.out
            .send(Outgoing::Call { method: method.into(), params, reply: Some(tx) })
            .map_err(|_| Error::Closed("signaling client stopped".into()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::NotConnected(format!("signaling connection lost during {method}"))),
            Err(_) => Err(Error::Timeout(format!("no answer to {method} within {REQUEST_TIMEOUT:?}"))),
        }
    }

    /// Closes the WebSocket cleanly (so the server reports `peer_left` at once) and stops
    /// reconnecting.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.out.send(Outgoing::Close(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_millis(500), rx).await;
        }
    }
}

type Pending = HashMap<u64, (String, Option<oneshot::Sender<Result<Value>>>)>;

async fn run(s: ClientSettings, mut out: mpsc::UnboundedReceiver<Outgoing>, events: mpsc::UnboundedSender<ClientEvent>, connected: Arc<AtomicBool>) {
    let mut backoff = s.reconnect_initial;
    let mut next_id: u64 = 1;
    let mut reported_failure: Option<String> = None;
    loop {
        let connector = s.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let reason = match tokio_tungstenite::connect_async_tls_with_config(s.url.as_str(), Some(super::websocket_config()), true, connector).await {
            Err(e) => {
                // Surfaced once per distinct cause (a bad certificate, a refused port), not on
                // every retry of a server that stays down.
                let reason = format!("cannot connect to the signaling server {}: {e}", s.url);
                if reported_failure.as_deref() != Some(reason.as_str()) {
                    let _ = events.send(ClientEvent::Error { message: reason.clone() });
                    reported_failure = Some(reason.clone());
                }
                reason
            }
            Ok((ws, _)) => {
                let (mut sink, mut source) = ws.split();
                let mut pending: Pending = HashMap::new();
                let announce_id = next_id;
                next_id += 1;
                let mut params = json!({"peer_id": s.peer_id, "capabilities": s.capabilities});
                if !s.token.is_empty() {
                    params["token"] = s.token.clone().into();
                }
                let announce = rpc::request(announce_id, "announce", params);
                let mut announced = false;
                let mut last_heard = tokio::time::Instant::now();
                let mut ping = tokio::time::interval(PING_INTERVAL);
                ping.tick().await;
                let announce_deadline = tokio::time::sleep(REQUEST_TIMEOUT);
                tokio::pin!(announce_deadline);
                let reason = if let Err(e) = sink.send(WsMessage::text(announce)).await {
                    format!("send announce: {e}")
                } else {
                    loop {
                        tokio::select! {
                            _ = &mut announce_deadline, if !announced => break "no answer to announce".to_string(),
                            _ = ping.tick() => {
                                if last_heard.elapsed() > DEAD_AFTER { break format!("server silent for {DEAD_AFTER:?}"); }
                                if let Err(e) = sink.send(WsMessage::Ping(Vec::new().into())).await { break format!("ping: {e}"); }
                            }
                            cmd = out.recv() => match cmd {
                                None => return,
                                Some(Outgoing::Close(done)) => {
                                    connected.store(false, Ordering::Release);
                                    let _ = sink.close().await;
                                    let _ = done.send(());
                                    return;
                                }
                                Some(Outgoing::Call { method, params, reply }) => {
                                    let id = next_id;
                                    next_id += 1;
                                    let text = rpc::request(id, &method, params);
                                    pending.insert(id, (method, reply));
                                    if let Err(e) = sink.send(WsMessage::text(text)).await { break format!("send: {e}"); }
                                }
                            },
                            frame = source.next() => match { last_heard = tokio::time::Instant::now(); frame } {
                                None => break "server closed the connection".to_string(),
                                Some(Err(e)) => break format!("read: {e}"),
                                Some(Ok(WsMessage::Close(_))) => break "server closed the connection".to_string(),
                                Some(Ok(WsMessage::Text(text))) => {
                                    match handle_frame(text.as_str(), announce_id, &mut pending, &events) {
                                        FrameOutcome::Announced(others) => {
                                            announced = true;
                                            backoff = s.reconnect_initial;
                                            reported_failure = None;
                                            connected.store(true, Ordering::Release);
                                            tracing::info!(target: TARGET, peer_id = %s.peer_id, url = %s.url, "announced");
                                            let _ = events.send(ClientEvent::Connected { other_peers: others });
                                        }
                                        FrameOutcome::AnnounceRefused(msg) => break format!("announce refused: {msg}"),
                                        FrameOutcome::Other => {}
                                    }
                                }
                                Some(Ok(_)) => {}
                            },
                        }
                    }
                };
                let was_connected = connected.swap(false, Ordering::AcqRel);
                for (_, (method, reply)) in pending.drain() {
                    if let Some(r) = reply {
                        let _ = r.send(Err(Error::NotConnected(format!("signaling connection lost during {method}"))));
                    }
                }
                if was_connected {
                    let _ = events.send(ClientEvent::Disconnected { reason: reason.clone() });
                }
                reason
            }
        };
        tracing::debug!(target: TARGET, %reason, retry_in = ?backoff, "signaling not connected");
        // Wait out the backoff, but still honour close and refuse calls meanwhile.
        // 75-100% of the backoff, at random: clients of a restarted server do not all come
        // back in the same instant.
        let jitter = 0.75 + 0.25 * f64::from(crate::media::rtp::random_u32()) / f64::from(u32::MAX);
        let sleep = tokio::time::sleep(backoff.mul_f64(jitter));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = out.recv() => match cmd {
                    None => return,
                    Some(Outgoing::Close(done)) => { let _ = done.send(()); return; }
                    Some(Outgoing::Call { method, reply, .. }) => {
                        if let Some(r) = reply {
                            let _ = r.send(Err(Error::NotConnected(format!("signaling server not connected (cannot send {method})"))));
                        }
                    }
                },
            }
        }
        backoff = (backoff * 2).min(s.reconnect_max);
    }
}

enum FrameOutcome {
    Announced(Vec<String>),
    AnnounceRefused(String),
    Other,
}

fn handle_frame(text: &str, announce_id: u64, pending: &mut Pending, events: &mpsc::UnboundedSender<ClientEvent>) -> FrameOutcome {
    let report = |message: String| {
        tracing::warn!(target: TARGET, %message);
        let _ = events.send(ClientEvent::Error { message });
    };
    match rpc::parse(text) {
        Err((_, e)) => report(format!("unusable message from the signaling server: {e}")),
        Ok(Rpc::Response { id, result }) => {
            let id = id.as_u64().unwrap_or(0);
            if id == announce_id {
                return match result {
                    Ok(r) => FrameOutcome::Announced(
                        r.get("other_peers")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                            .unwrap_or_default(),
                    ),
                    Err(e) => {
                        report(format!("announce refused: {e}"));
                        FrameOutcome::AnnounceRefused(e.to_string())
                    }
                };
            }
            match (pending.remove(&id), result) {
                (Some((_, Some(reply))), r) => {
                    let _ = reply.send(r.map_err(|e| {
                        if e.message.starts_with("peer not found") { Error::NotFound(e.to_string()) } else { Error::Signaling(e.to_string()) }
                    }));
                }
                (Some((method, None)), Err(e)) => report(format!("{method} refused by the signaling server: {e}")),
                _ => {}
            }
        }
        Ok(Rpc::Call { method, params, .. }) => match ServerEvent::from_call(&method, &params) {
            Ok(Some(ev)) => {
                let _ = events.send(ClientEvent::Server(ev));
            }
            Ok(None) => tracing::debug!(target: TARGET, %method, "ignoring unknown notification"),
            Err(e) => report(format!("bad {method} notification: {e}")),
        },
    }
    FrameOutcome::Other
}
