//! Benchmarks (not tests; never asserted): `cargo bench --bench connect [-- quick]`.
//!
//! 1. Connection setup through the C API and the bundled signaling server: from creating two
//!    transports (announce) to the default data channel open on both sides; and from
//!    `rmw_transport_connect_peer` to both open. Baseline in the same process: two bare
//!    webrtc-rs peer connections with the same settings, descriptions handed over in memory.
//! 2. Data-channel goodput through the C API: 64 KiB messages, reliable ordered, one connection.
//! 3. RSS per connected data-only peer: one transport here, its peers in child processes.
//! 4. RSS over create → connect → free cycles.
//!
//! Loopback only: every transport uses `ice_policy: loopback` and the server binds 127.0.0.1.

use remotemedia_webrtc::ffi::*;
use std::ffi::{CStr, CString};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn check(st: rmw_status_t, what: &str) {
    if st != rmw_status_t::RMW_OK {
        let msg = unsafe { CStr::from_ptr(rmw_last_error_message()) }.to_string_lossy();
        panic!("{what}: {st:?}: {msg}");
    }
}

fn server() -> (rmw_signaling_server_t, String) {
    let mut s = 0;
    let addr = CString::new("127.0.0.1:0").unwrap();
    check(unsafe { rmw_signaling_server_start(addr.as_ptr(), 0, &mut s) }, "server");
    let mut port = 0u16;
    check(unsafe { rmw_signaling_server_port(s, &mut port) }, "port");
    (s, format!("ws://127.0.0.1:{port}"))
}

fn transport(url: &str, id: &str, extra: &str) -> rmw_transport_t {
    let cfg = CString::new(format!(r#"{{"signaling_url":"{url}","peer_id":"{id}","ice_policy":"loopback"{extra}}}"#)).unwrap();
    let mut t = 0;
    check(unsafe { rmw_transport_new(cfg.as_ptr(), &mut t) }, "transport");
    t
}

/// Polls until an event of `kind` (for `peer`, if given) arrives; returns its channel.
fn wait(t: rmw_transport_t, kind: rmw_event_kind_t, peer: Option<&str>) -> rmw_data_channel_t {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut ev: rmw_event_t = unsafe { std::mem::zeroed() };
        if unsafe { rmw_transport_poll_event(t, &mut ev, 100) } != rmw_status_t::RMW_OK {
            continue;
        }
        let hit = ev.kind == kind
            && peer.is_none_or(|p| !ev.peer_id.is_null() && unsafe { CStr::from_ptr(ev.peer_id) }.to_str() == Ok(p));
        let ch = ev.channel;
        unsafe { rmw_event_release(&mut ev) };
        if hit {
            return ch;
        }
    }
    panic!("timed out waiting for {kind:?}");
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").parse().unwrap()))
        .unwrap()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn bench_setup(url: &str, n: usize) {
    let (mut total, mut connect) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t0 = Instant::now();
        let (a, b) = (transport(url, &format!("sa{i}"), ""), transport(url, &format!("sb{i}"), ""));
        wait(a, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
        wait(b, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
        let t1 = Instant::now();
        let peer = CString::new(format!("sb{i}")).unwrap();
        check(unsafe { rmw_transport_connect_peer(a, peer.as_ptr()) }, "connect");
        wait(a, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
        wait(b, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
        let done = Instant::now();
        total.push((done - t0).as_secs_f64() * 1e3);
        connect.push((done - t1).as_secs_f64() * 1e3);
        check(rmw_transport_free(a), "free");
        check(rmw_transport_free(b), "free");
    }
    let base = baseline_setup(n);
    let (bp50, bp99) = (percentile(&mut base.clone(), 0.5), percentile(&mut base.clone(), 0.99));
    let cp50 = percentile(&mut connect, 0.5);
    println!("setup, {n} connections (ms)                     p50      p99");
    println!("  announce -> both channels open (C API)   {:>8.2} {:>8.2}", percentile(&mut total, 0.5), percentile(&mut total, 0.99));
    println!("  connect_peer -> both channels open       {:>8.2} {:>8.2}", cp50, percentile(&mut connect, 0.99));
    println!("  baseline: bare webrtc-rs pair, in memory {:>8.2} {:>8.2}", bp50, bp99);
    println!("  ratio connect_peer p50 / baseline p50    {:>8.2}", cp50 / bp50);
}

/// Two bare webrtc-rs 0.17.2 peer connections, loopback settings, SDP and candidates handed
/// over in memory: what the library's setup path is compared against.
fn baseline_setup(n: usize) -> Vec<f64> {
    use webrtc::api::APIBuilder;
    use webrtc::api::setting_engine::SettingEngine;
    use webrtc::ice::mdns::MulticastDnsMode;
    use webrtc::ice::network_type::NetworkType;
    use webrtc::peer_connection::configuration::RTCConfiguration;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut s = SettingEngine::default();
        s.set_include_loopback_candidate(true);
        s.set_interface_filter(Box::new(|n: &str| n == "lo"));
        s.set_ip_filter(Box::new(|ip: std::net::IpAddr| ip.is_loopback()));
        s.set_network_types(vec![NetworkType::Udp4]);
        s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        s.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
        s.set_host_acceptance_min_wait(Some(Duration::ZERO));
        let api = Arc::new(APIBuilder::new().with_setting_engine(s).build());
        let mut out = Vec::new();
        let mut stuck = 0;
        for _ in 0..n {
            let t0 = Instant::now();
            let a = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await.unwrap());
            let b = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await.unwrap());
            for (from, to) in [(&a, &b), (&b, &a)] {
                let to = Arc::downgrade(to);
                from.on_ice_candidate(Box::new(move |c| {
                    let to = to.clone();
                    Box::pin(async move {
                        if let (Some(c), Some(to)) = (c, to.upgrade()) {
                            let _ = to.add_ice_candidate(c.to_json().unwrap()).await;
                        }
                    })
                }));
            }
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let tx2 = tx.clone();
            b.on_data_channel(Box::new(move |dc| {
                let tx = tx2.clone();
                dc.on_open(Box::new(move || {
                    let _ = tx.send(());
                    Box::pin(async {})
                }));
                Box::pin(async {})
            }));
            let dc = a.create_data_channel("data", None).await.unwrap();
            dc.on_open(Box::new(move || {
                let _ = tx.send(());
                Box::pin(async {})
            }));
            let offer = a.create_offer(None).await.unwrap();
            a.set_local_description(offer.clone()).await.unwrap();
            b.set_remote_description(offer).await.unwrap();
            let answer = b.create_answer(None).await.unwrap();
            b.set_local_description(answer.clone()).await.unwrap();
            a.set_remote_description(answer).await.unwrap();
            // Both sides' open, or give up on this pair (bare webrtc-rs occasionally never
            // opens when both checks race; counted, not hidden).
            let opened = tokio::time::timeout(Duration::from_secs(5), async {
                rx.recv().await;
                rx.recv().await;
            })
            .await;
            match opened {
                Ok(()) => out.push(t0.elapsed().as_secs_f64() * 1e3),
                Err(_) => stuck += 1,
            }
            let _ = a.close().await;
            let _ = b.close().await;
        }
        if stuck > 0 {
            println!("  baseline: {stuck} of {n} bare pairs never opened within 5 s (left out)");
        }
        out
    })
}

fn bench_goodput(url: &str, seconds: f64) {
    let (a, b) = (transport(url, "ga", ""), transport(url, "gb", ""));
    wait(a, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
    wait(b, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
    let peer = CString::new("gb").unwrap();
    check(unsafe { rmw_transport_connect_peer(a, peer.as_ptr()) }, "connect");
    let ch = wait(a, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
    wait(b, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut ev: rmw_event_t = unsafe { std::mem::zeroed() };
                if unsafe { rmw_transport_poll_event(b, &mut ev, 50) } == rmw_status_t::RMW_OK {
                    if ev.kind == rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_MESSAGE {
                        received.fetch_add(ev.len as u64, Ordering::Relaxed);
                    }
                    unsafe { rmw_event_release(&mut ev) };
                }
            }
        })
    };
    let msg = vec![0xabu8; 64 * 1024];
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        let mut buffered = 0u64;
        check(unsafe { rmw_data_channel_buffered_amount(ch, &mut buffered) }, "buffered");
        if buffered > 4 << 20 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        check(unsafe { rmw_data_channel_send(ch, msg.as_ptr(), msg.len(), true) }, "send");
        sent += msg.len() as u64;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    let cpu = cpu_seconds() - cpu0;
    stop.store(true, Ordering::Relaxed);
    receiver.join().unwrap();
    println!("goodput, 64 KiB reliable ordered messages, {seconds} s, through the C API");
    println!("  received {:.1} MB of {:.1} MB sent: {:.0} Mbit/s, process CPU {:.0}% of one core", got as f64 / 1e6, sent as f64 / 1e6, got as f64 * 8.0 / elapsed / 1e6, cpu / elapsed * 100.0);
    check(rmw_transport_free(a), "free");
    check(rmw_transport_free(b), "free");
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / ticks
}

struct Children(Vec<Child>);
impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bench_rss_per_peer(url: &str, n: usize) {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("webrtc_server");
    if !bin.exists() {
        println!("rss per peer: skipped ({} missing: cargo build --release --bins)", bin.display());
        return;
    }
    let _kids = Children(
        (0..n)
            .map(|i| {
                Command::new(&bin)
                    .env("WEBRTC_SIGNALING_URL", url)
                    .env("WEBRTC_PEER_ID", format!("rp{i}"))
                    .env("WEBRTC_ICE_POLICY", "loopback")
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let hub = transport(url, "rhub", &format!(r#","max_peers":{}"#, n + 1));
    wait(hub, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kb();
    for i in 0..n {
        let p = CString::new(format!("rp{i}")).unwrap();
        // A child may not have announced yet: retry until the server knows it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match unsafe { rmw_transport_connect_peer(hub, p.as_ptr()) } {
                rmw_status_t::RMW_OK => break,
                rmw_status_t::RMW_ERR_NOT_FOUND if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                st => check(st, "connect"),
            }
        }
        wait(hub, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kb();
    println!("RSS per connected data-only peer ({n} peers in child processes)");
    println!("  hub RSS {before} kB -> {after} kB: {:.0} kB per peer", (after - before) as f64 / n as f64);
    check(rmw_transport_free(hub), "free");
}

fn bench_cycles(url: &str, n: usize) {
    let t_before = threads();
    let mut marks = Vec::new();
    for i in 0..n {
        let (a, b) = (transport(url, &format!("ca{i}"), ""), transport(url, &format!("cb{i}"), ""));
        wait(a, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
        wait(b, rmw_event_kind_t::RMW_EVENT_SIGNALING_CONNECTED, None);
        let peer = CString::new(format!("cb{i}")).unwrap();
        check(unsafe { rmw_transport_connect_peer(a, peer.as_ptr()) }, "connect");
        let ch = wait(a, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
        wait(b, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_OPEN, None);
        check(unsafe { rmw_data_channel_send(ch, b"x".as_ptr(), 1, true) }, "send");
        wait(b, rmw_event_kind_t::RMW_EVENT_DATA_CHANNEL_MESSAGE, None);
        check(rmw_transport_free(a), "free");
        check(rmw_transport_free(b), "free");
        if (i + 1) % (n / 4).max(1) == 0 {
            marks.push((i + 1, rss_kb()));
        }
    }
    println!("create -> connect -> message -> free cycles");
    for (i, kb) in &marks {
        println!("  after {i:>4} cycles: RSS {kb} kB");
    }
    println!("  threads before {t_before}, after {}", threads());
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (s, url) = server();
    println!("remotemedia-webrtc {} benchmarks; {} cores", unsafe { CStr::from_ptr(rmw_version()) }.to_str().unwrap(), std::thread::available_parallelism().map_or(0, |n| n.get()));
    let (n, secs, peers, cycles) = if quick { (10, 1.0, 4, 20) } else { (100, 5.0, 20, 200) };
    bench_setup(&url, n);
    bench_goodput(&url, secs);
    bench_rss_per_peer(&url, peers);
    bench_cycles(&url, cycles);
    check(rmw_signaling_server_stop(s), "stop");
}
