//! Forwarding the library's diagnostics to one application sink: our own `tracing` events and
//! webrtc-rs's `log` records (bridged), each with level, target and message.
//!
//! The subscriber is installed once per process, on the first `set_sink`; it is a no-op until
//! a sink is set, and levels above the chosen maximum are filtered before formatting.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once, RwLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Receives (level 1 = error … 5 = trace, target, message).
pub type Sink = Arc<dyn Fn(u8, &str, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while the sink runs, so a sink that logs (or calls into us) does not recurse.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

pub fn level_number(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn log_filter(max: u8) -> log::LevelFilter {
    match max {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Sets (or with `None` removes) the process-wide sink and the most verbose level it gets
/// (1..=5). Returns false if another global tracing subscriber was already installed by the
/// host program, in which case our events go to that one.
pub fn set_sink(sink: Option<Sink>, max_level: u8) -> bool {
    let mut installed = true;
    INSTALL.call_once(|| {
        let sub = tracing_subscriber::registry().with(Forward);
        installed = tracing::subscriber::set_global_default(sub).is_ok();
        let _ = tracing_log::LogTracer::init();
    });
    let max = if sink.is_some() { max_level.min(5) } else { 0 };
    *SINK.write().unwrap() = sink;
    MAX_LEVEL.store(max, Ordering::Release);
    log::set_max_level(log_filter(max));
    installed
}

struct Forward;

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if name == "message" {
            let _ = write!(self.0, "{value:?}");
        } else if !name.starts_with("log.") {
            let _ = write!(self.0, " {name}={value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else if !field.name().starts_with("log.") {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        level_number(meta.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if IN_SINK.with(|f| f.replace(true)) {
            return;
        }
        let sink = SINK.read().unwrap().clone();
        if let Some(sink) = sink {
            let mut v = MessageVisitor(String::new());
            event.record(&mut v);
            // Records bridged from `log` carry their real target in a field.
            let normalized = event.normalized_metadata();
            let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
            sink(level_number(meta.level()), meta.target(), v.0.trim_start());
        }
        IN_SINK.with(|f| f.set(false));
    }
}
