//! Network impairment in user space (the test kernel has no netem): `ImpairedConn` wraps a UDP
//! socket as a webrtc-rs `Conn` and applies loss, delay, jitter and reordering to every
//! datagram *sent* through it. Put it under a TURN server's listening socket (see
//! `common::turn::TestTurn`) and every packet between two relay-only peers crosses it exactly
//! once, in both directions:
//!
//! ```text
//!   A --> TURN listen socket --> A's relay socket --> B's relay socket --> TURN listen socket --> B
//!                                                                         (send_to: impaired)
//! ```
//!
//! Receiving is never impaired, so a packet is never impaired twice. TURN control answers
//! (Allocate, CreatePermission, ChannelBind, Refresh) are impaired like any other datagram
//! unless `Impairment::relayed_only` is set. The peers' datagrams are looked into as far as
//! the DTLS record layer, to spare or to target the DTLS handshake (`spare_dtls_handshake`,
//! `lose_dtls_final_flight`); deterministic losses of given TURN answers (`drop_first`)
//! reproduce one exact fault. `common::turn::ImpairedProxy` puts the same impairment in front
//! of a server that cannot be wrapped (coturn).
//!
//! The counters (`ImpairStats`) say what was really done: how many datagrams were dropped
//! (the loss actually applied), held back, and sent after a later one to the same address.
//! `RMW_IMPAIR_SEED=<n>` replays a run's random choices, `RMW_IMPAIR_TRACE=1` prints each drop.

use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use webrtc::util::Conn;

/// What happens to each datagram sent through an `ImpairedConn`.
#[derive(Debug, Clone)]
pub struct Impairment {
    /// Each datagram is dropped independently with this probability (percent).
    pub loss_percent: f64,
    /// One-way delay added to every datagram that is not dropped...
    pub delay: Duration,
    /// ...plus a uniform random offset in [-jitter, +jitter]. Datagrams sent less than
    /// 2 * jitter apart can overtake each other: jitter reorders.
    pub jitter: Duration,
    /// Explicit reordering: this share (percent) of datagrams is held back `reorder_hold` more,
    /// so the datagrams sent during that time overtake it.
    pub reorder_percent: f64,
    pub reorder_hold: Duration,
    /// Only peer data (TURN ChannelData and Data indications) is impaired; TURN's own
    /// answers pass untouched. Off by default: everything is impaired, as on a real path.
    pub relayed_only: bool,
    /// Peer data carrying DTLS handshake records (ChangeCipherSpec, Handshake) is never
    /// dropped (still delayed and reordered). webrtc-rs 0.17.2's DTLS server never re-sends
    /// its final flight, so losing that one datagram deadlocks the handshake for good (see
    /// `lose_dtls_final_flight` and tests/network.rs); tests of what happens *after* the
    /// handshake spare it so as not to fail on that known bug by chance.
    pub spare_dtls_handshake: bool,
    /// Deterministic: loses the DTLS server's final flight (ChangeCipherSpec + Finished):
    /// every datagram with DTLS handshake records sent to the DTLS client within 200 ms of the
    /// first one after the client's own ChangeCipherSpec. A retransmission later gets through.
    pub lose_dtls_final_flight: bool,
    /// Deterministic losses on top of the random ones: `(t, n)` drops the first `n` STUN
    /// messages of type `t`, e.g. `(0x0103, 1)`: the first Allocate success response.
    pub drop_first: Vec<(u16, u32)>,
    /// Seed of the random generator; 0 takes one from the clock (printed by `describe`) or
    /// from the environment variable `RMW_IMPAIR_SEED`, to replay a run.
    pub seed: u64,
}

impl Impairment {
    /// No impairment at all: a plain relay.
    pub fn none() -> Impairment {
        Impairment {
            loss_percent: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_percent: 0.0,
            reorder_hold: Duration::ZERO,
            relayed_only: false,
            spare_dtls_handshake: false,
            lose_dtls_final_flight: false,
            drop_first: Vec::new(),
            seed: 0,
        }
    }

    fn is_random_none(&self) -> bool {
        self.loss_percent <= 0.0 && self.delay.is_zero() && self.jitter.is_zero() && (self.reorder_percent <= 0.0 || self.reorder_hold.is_zero())
    }
}

/// xorshift64*: cheap and good enough for coin flips; seeded, so a run can be replayed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn clock_seed() -> u64 {
    if let Some(s) = std::env::var("RMW_IMPAIR_SEED").ok().and_then(|v| v.trim().parse().ok()) {
        return s;
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
}

/// What a datagram the TURN server sends is, as far as counting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Peer data: ChannelData (first byte 0x40..=0x7F) or a STUN Data indication (0x0017).
    Relayed,
    /// A STUN message of the TURN server's own, with its message type.
    Stun(u16),
    Other,
}

pub fn classify(b: &[u8]) -> Kind {
    if b.len() >= 4 && (0x40..=0x7F).contains(&b[0]) {
        return Kind::Relayed;
    }
    if b.len() >= 20 && b[0] & 0xC0 == 0 && b[4..8] == [0x21, 0x12, 0xA4, 0x42] {
        let t = u16::from_be_bytes([b[0], b[1]]);
        return if t == 0x0017 { Kind::Relayed } else { Kind::Stun(t) };
    }
    Kind::Other
}

/// The peer's datagram inside a ChannelData message or a Data indication (its DATA
/// attribute, 0x0013).
pub fn relayed_payload(b: &[u8]) -> Option<&[u8]> {
    if b.len() >= 4 && (0x40..=0x7F).contains(&b[0]) {
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        return b.get(4..4 + len);
    }
    if classify(b) != Kind::Relayed {
        return None;
    }
    let mut at = 20;
    while at + 4 <= b.len() {
        let (t, len) = (u16::from_be_bytes([b[at], b[at + 1]]), u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize);
        if t == 0x0013 {
            return b.get(at + 4..at + 4 + len);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Content types of the DTLS records in a datagram (empty if it is not DTLS: RFC 7983
/// demultiplexing, first byte 20..=63). 20 is ChangeCipherSpec, 22 Handshake, 23 application
/// data (SCTP).
pub fn dtls_records(p: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut at = 0;
    // Record header: type, version (2), epoch (2), sequence number (6), length (2).
    while at + 13 <= p.len() && (20..=63).contains(&p[at]) {
        types.push(p[at]);
        at += 13 + u16::from_be_bytes([p[at + 11], p[at + 12]]) as usize;
    }
    types
}

fn is_dtls_handshake(records: &[u8]) -> bool {
    records.iter().any(|t| *t == 20 || *t == 22)
}

/// Counters of an `ImpairedConn` (all datagrams it was asked to send).
#[derive(Debug, Default)]
pub struct ImpairStats {
    /// Datagrams handed to `send_to`.
    pub datagrams: AtomicU64,
    /// Of them, dropped by the impairment.
    pub dropped: AtomicU64,
    /// Peer data (ChannelData / Data indications) handed to `send_to`, and dropped.
    pub relayed: AtomicU64,
    pub relayed_dropped: AtomicU64,
    /// Datagrams held back on purpose (`reorder_percent`).
    pub held: AtomicU64,
    /// Datagrams with DTLS handshake records: spared from loss, and dropped on purpose
    /// (`lose_dtls_final_flight`).
    pub dtls_spared: AtomicU64,
    pub dtls_final_flight_dropped: AtomicU64,
    /// Measured: datagrams that left after a datagram handed in later to the same address.
    pub out_of_order: AtomicU64,
    /// Sum and maximum of the delay applied to datagrams that were sent (µs).
    pub delay_us_sum: AtomicU64,
    pub delay_us_max: AtomicU64,
    pub delayed: AtomicU64,
    /// TURN answers seen: Allocate success (0x0103) and error (0x0113; the first, nonce-less
    /// request of every client gets a 401), CreatePermission success (0x0108), ChannelBind
    /// success (0x0109).
    pub allocations: AtomicU64,
    pub allocate_errors: AtomicU64,
    pub permissions: AtomicU64,
    pub channel_binds: AtomicU64,
    /// Peer data per destination (the TURN clients, i.e. the peers' local sockets).
    per_destination: Mutex<HashMap<SocketAddr, u64>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ImpairReport {
    pub datagrams: u64,
    pub dropped: u64,
    pub relayed: u64,
    pub relayed_dropped: u64,
    pub held: u64,
    pub dtls_spared: u64,
    pub dtls_final_flight_dropped: u64,
    pub out_of_order: u64,
    pub mean_delay_ms: f64,
    pub max_delay_ms: f64,
    pub allocations: u64,
    pub allocate_errors: u64,
    pub permissions: u64,
    pub channel_binds: u64,
    /// Peer data per destination, most first.
    pub relayed_to: Vec<(SocketAddr, u64)>,
}

impl ImpairReport {
    /// Share of all datagrams dropped, in percent.
    pub fn loss_percent(&self) -> f64 {
        100.0 * self.dropped as f64 / self.datagrams.max(1) as f64
    }

    /// Share of peer data dropped, in percent.
    pub fn relayed_loss_percent(&self) -> f64 {
        100.0 * self.relayed_dropped as f64 / self.relayed.max(1) as f64
    }

    /// The change since `earlier` (counters only; delays and destinations are this report's).
    pub fn since(&self, earlier: &ImpairReport) -> ImpairReport {
        ImpairReport {
            datagrams: self.datagrams - earlier.datagrams,
            dropped: self.dropped - earlier.dropped,
            relayed: self.relayed - earlier.relayed,
            relayed_dropped: self.relayed_dropped - earlier.relayed_dropped,
            held: self.held - earlier.held,
            dtls_spared: self.dtls_spared - earlier.dtls_spared,
            dtls_final_flight_dropped: self.dtls_final_flight_dropped - earlier.dtls_final_flight_dropped,
            out_of_order: self.out_of_order - earlier.out_of_order,
            allocations: self.allocations - earlier.allocations,
            allocate_errors: self.allocate_errors - earlier.allocate_errors,
            permissions: self.permissions - earlier.permissions,
            channel_binds: self.channel_binds - earlier.channel_binds,
            ..self.clone()
        }
    }
}

impl fmt::Display for ImpairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} datagrams, {} dropped ({:.2} %); peer data {} ({} dropped, {:.2} %); {} held back, {} left out of order; \
             DTLS handshake datagrams: {} spared from loss, {} of a final flight dropped; \
             delay mean {:.1} ms max {:.1} ms; TURN: {} allocations, {} allocate errors, {} permissions, {} channel binds; \
             peer data per destination {:?}",
            self.datagrams,
            self.dropped,
            self.loss_percent(),
            self.relayed,
            self.relayed_dropped,
            self.relayed_loss_percent(),
            self.held,
            self.out_of_order,
            self.dtls_spared,
            self.dtls_final_flight_dropped,
            self.mean_delay_ms,
            self.max_delay_ms,
            self.allocations,
            self.allocate_errors,
            self.permissions,
            self.channel_binds,
            self.relayed_to,
        )
    }
}

impl ImpairStats {
    pub fn report(&self) -> ImpairReport {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut relayed_to: Vec<(SocketAddr, u64)> = self.per_destination.lock().unwrap().iter().map(|(a, n)| (*a, *n)).collect();
        relayed_to.sort_by(|a, b| b.1.cmp(&a.1));
        ImpairReport {
            datagrams: get(&self.datagrams),
            dropped: get(&self.dropped),
            relayed: get(&self.relayed),
            relayed_dropped: get(&self.relayed_dropped),
            held: get(&self.held),
            dtls_spared: get(&self.dtls_spared),
            dtls_final_flight_dropped: get(&self.dtls_final_flight_dropped),
            out_of_order: get(&self.out_of_order),
            mean_delay_ms: get(&self.delay_us_sum) as f64 / get(&self.delayed).max(1) as f64 / 1000.0,
            max_delay_ms: get(&self.delay_us_max) as f64 / 1000.0,
            allocations: get(&self.allocations),
            allocate_errors: get(&self.allocate_errors),
            permissions: get(&self.permissions),
            channel_binds: get(&self.channel_binds),
            relayed_to,
        }
    }

    fn count(&self, kind: Kind, target: SocketAddr) {
        self.datagrams.fetch_add(1, Ordering::Relaxed);
        let counter = match kind {
            Kind::Relayed => {
                *self.per_destination.lock().unwrap().entry(target).or_default() += 1;
                &self.relayed
            }
            Kind::Stun(0x0103) => &self.allocations,
            Kind::Stun(0x0113) => &self.allocate_errors,
            Kind::Stun(0x0108) => &self.permissions,
            Kind::Stun(0x0109) => &self.channel_binds,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Finding the DTLS server's final flight: the first ChangeCipherSpec goes to the server
/// (the client's flight 5); handshake records then going elsewhere are the server's flight 6.
#[derive(Default)]
struct FinalFlight {
    server: Option<SocketAddr>,
    started: Option<std::time::Instant>,
}

/// Keeps, per destination, the newest submission number already sent: a datagram sent after
/// it left out of order.
#[derive(Default)]
struct OrderTracker {
    next: u64,
    newest_sent: HashMap<SocketAddr, u64>,
}

/// A delayed datagram, ordered by when it is due, then by when it was handed in (so that
/// datagrams due at the same time keep their order: without jitter the link is FIFO).
struct Scheduled {
    due: tokio::time::Instant,
    seq: u64,
    data: Vec<u8>,
    target: SocketAddr,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// What the sending side and the scheduler task share.
struct Link {
    socket: Arc<UdpSocket>,
    /// Delayed datagrams, earliest due first.
    queue: Mutex<std::collections::BinaryHeap<std::cmp::Reverse<Scheduled>>>,
    /// Wakes the scheduler: a new datagram (maybe due earlier), or the conn was dropped.
    wake: tokio::sync::Notify,
    closed: std::sync::atomic::AtomicBool,
    order: Mutex<OrderTracker>,
    stats: Arc<ImpairStats>,
}

/// Sends the delayed datagrams when they are due, in (due, handed-in) order. One task per
/// conn, on the runtime it was created on; ends when the conn is dropped (datagrams still
/// queued then are lost, as on a link that goes down).
async fn scheduler(link: Arc<Link>) {
    loop {
        if link.closed.load(Ordering::Acquire) {
            return;
        }
        let next = link.queue.lock().unwrap().peek().map(|s| s.0.due);
        match next {
            None => link.wake.notified().await,
            Some(due) if due > tokio::time::Instant::now() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = link.wake.notified() => {}
                }
            }
            Some(_) => {
                let now = tokio::time::Instant::now();
                let mut batch = Vec::new();
                {
                    let mut q = link.queue.lock().unwrap();
                    while q.peek().is_some_and(|s| s.0.due <= now) {
                        batch.push(q.pop().unwrap().0);
                    }
                }
                for s in batch {
                    // Like a real network, a send error (e.g. the client's socket is gone) is silent.
                    let _ = transmit(&link, s.seq, &s.data, s.target).await;
                }
            }
        }
    }
}

/// A UDP socket whose sends are impaired; receives pass through. Delayed datagrams wait in a
/// queue that one task drains when they are due.
pub struct ImpairedConn {
    link: Arc<Link>,
    imp: Impairment,
    seed: u64,
    rng: Mutex<Rng>,
    /// What is left of `imp.drop_first`.
    drop_first: Mutex<Vec<(u16, u32)>>,
    final_flight: Mutex<FinalFlight>,
    stats: Arc<ImpairStats>,
    /// `RMW_IMPAIR_TRACE=1`: every dropped datagram is printed (time, size, destination).
    trace: bool,
}

impl Drop for ImpairedConn {
    fn drop(&mut self) {
        self.link.closed.store(true, Ordering::Release);
        self.link.wake.notify_one();
    }
}

/// Seconds since the first call: the time base of `RMW_IMPAIR_TRACE` lines.
pub fn trace_clock() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
}

impl ImpairedConn {
    /// Wraps `socket`; must be called inside a Tokio runtime (its scheduler task runs there).
    pub fn new(socket: UdpSocket, imp: Impairment) -> ImpairedConn {
        let seed = if imp.seed != 0 { imp.seed } else { clock_seed() };
        let stats = Arc::new(ImpairStats::default());
        let link = Arc::new(Link {
            socket: Arc::new(socket),
            queue: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            order: Mutex::default(),
            stats: stats.clone(),
        });
        tokio::spawn(scheduler(link.clone()));
        ImpairedConn {
            link,
            rng: Mutex::new(Rng::new(seed)),
            drop_first: Mutex::new(imp.drop_first.clone()),
            final_flight: Mutex::default(),
            seed,
            imp,
            stats,
            trace: std::env::var("RMW_IMPAIR_TRACE").is_ok_and(|v| v == "1"),
        }
    }

    pub fn stats(&self) -> Arc<ImpairStats> {
        self.stats.clone()
    }

    /// The impairment and the seed in use, for the test's output.
    pub fn describe(&self) -> String {
        let i = &self.imp;
        format!(
            "loss {} %, delay {:?} ± {:?}, {} % held back {:?} more{}{}, seed {} (RMW_IMPAIR_SEED={} replays it)",
            i.loss_percent,
            i.delay,
            i.jitter,
            i.reorder_percent,
            i.reorder_hold,
            match (i.relayed_only, i.spare_dtls_handshake) {
                (true, true) => ", peer data only, DTLS handshake spared from loss",
                (true, false) => ", peer data only",
                (false, true) => ", DTLS handshake spared from loss",
                (false, false) => "",
            },
            if i.drop_first.is_empty() { String::new() } else { format!(", dropping the first {:?} (STUN type, count)", i.drop_first) }
                + if i.lose_dtls_final_flight { ", losing the DTLS server's final flight" } else { "" },
            self.seed,
            self.seed
        )
    }

    /// Decides the fate of one datagram: None = dropped, else the delay to apply.
    fn fate(&self, buf: &[u8], kind: Kind, target: SocketAddr) -> Option<Duration> {
        let dtls = relayed_payload(buf).map(dtls_records).unwrap_or_default();
        if self.imp.lose_dtls_final_flight && is_dtls_handshake(&dtls) {
            let mut ff = self.final_flight.lock().unwrap();
            match ff.server {
                None if dtls.contains(&20) => ff.server = Some(target),
                Some(server) if server != target => {
                    let started = *ff.started.get_or_insert_with(std::time::Instant::now);
                    if started.elapsed() < Duration::from_millis(200) {
                        self.stats.dtls_final_flight_dropped.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                }
                _ => {}
            }
        }
        if let Kind::Stun(t) = kind {
            let mut first = self.drop_first.lock().unwrap();
            if let Some((_, n)) = first.iter_mut().find(|(ty, n)| *ty == t && *n > 0) {
                *n -= 1;
                return None;
            }
        }
        if self.imp.is_random_none() || (self.imp.relayed_only && kind != Kind::Relayed) {
            return Some(Duration::ZERO);
        }
        let mut rng = self.rng.lock().unwrap();
        if rng.next_f64() * 100.0 < self.imp.loss_percent {
            if !(self.imp.spare_dtls_handshake && is_dtls_handshake(&dtls)) {
                return None;
            }
            self.stats.dtls_spared.fetch_add(1, Ordering::Relaxed);
        }
        let j = self.imp.jitter.as_secs_f64();
        let mut d = (self.imp.delay.as_secs_f64() + (rng.next_f64() * 2.0 - 1.0) * j).max(0.0);
        if rng.next_f64() * 100.0 < self.imp.reorder_percent {
            d += self.imp.reorder_hold.as_secs_f64();
            self.stats.held.fetch_add(1, Ordering::Relaxed);
        }
        Some(Duration::from_secs_f64(d))
    }
}

/// Sends one datagram (now), noting whether something handed in later already left.
async fn transmit(link: &Link, seq: u64, buf: &[u8], target: SocketAddr) -> std::io::Result<usize> {
    {
        let mut o = link.order.lock().unwrap();
        let newest = o.newest_sent.entry(target).or_insert(seq);
        if seq < *newest {
            link.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
        } else {
            *newest = seq;
        }
    }
    link.socket.send_to(buf, target).await
}

#[async_trait]
impl Conn for ImpairedConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc::util::Result<()> {
        Ok(self.link.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc::util::Result<usize> {
        Ok(self.link.socket.recv(buf).await?)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc::util::Result<(usize, SocketAddr)> {
        Ok(self.link.socket.recv_from(buf).await?)
    }

    async fn send(&self, buf: &[u8]) -> webrtc::util::Result<usize> {
        let target = self.link.socket.peer_addr()?;
        self.send_to(buf, target).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc::util::Result<usize> {
        let kind = classify(buf);
        self.stats.count(kind, target);
        let seq = {
            let mut o = self.link.order.lock().unwrap();
            o.next += 1;
            o.next
        };
        let Some(delay) = self.fate(buf, kind, target) else {
            if self.trace {
                let dtls = relayed_payload(buf).map(dtls_records).unwrap_or_default();
                eprintln!("impair: t={:.3} dropped {} bytes to {target} ({kind:?}, DTLS records {dtls:?})", trace_clock(), buf.len());
            }
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if kind == Kind::Relayed {
                self.stats.relayed_dropped.fetch_add(1, Ordering::Relaxed);
            }
            // A lost datagram was still "sent" as far as the sender can tell.
            return Ok(buf.len());
        };
        let us = delay.as_micros() as u64;
        self.stats.delayed.fetch_add(1, Ordering::Relaxed);
        self.stats.delay_us_sum.fetch_add(us, Ordering::Relaxed);
        self.stats.delay_us_max.fetch_max(us, Ordering::Relaxed);
        if delay.is_zero() {
            return Ok(transmit(&self.link, seq, buf, target).await?);
        }
        let due = tokio::time::Instant::now() + delay;
        self.link.queue.lock().unwrap().push(std::cmp::Reverse(Scheduled { due, seq, data: buf.to_vec(), target }));
        self.link.wake.notify_one();
        Ok(buf.len())
    }

    fn local_addr(&self) -> webrtc::util::Result<SocketAddr> {
        Ok(self.link.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Does nothing, like webrtc-rs's own `Conn` for `UdpSocket`: the TURN server calls
    /// `close` on its listening conn whenever *one allocation* closes (turn 0.17.2,
    /// allocation/mod.rs), which must not stop the others. The socket closes when dropped.
    async fn close(&self) -> webrtc::util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
