//! Transport configuration: JSON (from C), `WEBRTC_*` environment variables (the standalone
//! binary), and `validate()` with messages that name the offending field.
//!
//! The default configuration contacts no public server: no STUN, no TURN, ICE on every local
//! interface. Tests use `ice_policy: "loopback"`.

use crate::error::{Error, Result};
use crate::media::audio::{INPUT_RATES, SampleFormat};
use crate::media::video::{VideoCodec, VideoOutputFormat};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnServer {
    pub url: String,
    pub username: String,
    pub credential: String,
}

/// Which local ICE candidates a transport gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IcePolicy {
    /// Host candidates on every interface, plus STUN/TURN candidates when servers are configured.
    #[default]
    All,
    /// Only 127.0.0.1 host candidates: for tests and same-machine use; nothing leaves loopback.
    Loopback,
    /// Only TURN relay candidates.
    Relay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `ws://host:port[/path]` or `wss://…` of a server speaking docs/PROTOCOL.md.
    pub signaling_url: String,
    /// For `wss://`: a PEM file of CA certificates trusted in addition to the system's (a
    /// private CA, or a self-signed server certificate). Verification is always on.
    pub signaling_ca_file: String,
    /// Our id on the signaling server. Empty: a random id `peer-xxxxxxxx` is chosen.
    pub peer_id: String,
    /// Sent with `announce` to servers that require authentication: their shared secret, or a
    /// JWT (HS256) issued for `peer_id`. Empty: none sent.
    pub signaling_token: String,
    /// `stun:host:port` URLs. Empty by default: no public server is contacted.
    pub stun_servers: Vec<String>,
    pub turn_servers: Vec<TurnServer>,
    /// Maximum simultaneous peer connections (mesh size).
    pub max_peers: u32,
    /// Audio codec preference (only "opus" is supported).
    pub audio_codec: String,
    /// Video codec preference: "vp8" or "vp9".
    pub video_codec: String,
    /// When true, every peer connection gets a default reliable channel labelled "data"
    /// (created by the offering side), used by `send_data` and broadcasts.
    pub enable_data_channel: bool,
    /// Longest a received audio packet that is missing is waited for before it is concealed.
    /// Packets that arrive in order are never held (see media/audio/jitter.rs).
    pub jitter_buffer_size_ms: u32,
    /// Every peer connection carries one two-way Opus audio track (m-line) from the start, so
    /// audio can be sent and received without renegotiation.
    pub enable_audio: bool,
    /// Received audio is decoded to this rate (8000..=96000 Hz)...
    pub audio_output_sample_rate: u32,
    /// ...this many interleaved channels (1 or 2)...
    pub audio_output_channels: u32,
    /// ...and this sample format.
    pub audio_output_format: SampleFormat,
    /// Received audio frames held for the application; the oldest is dropped (and counted)
    /// when it does not keep up.
    pub audio_queue_capacity: u32,
    /// Every peer connection carries one two-way video track (VP8 and VP9 offered, `video_codec`
    /// first) from the start.
    pub enable_video: bool,
    /// Received video is delivered as "i420" (planes as decoded) or "rgba".
    pub video_output_format: VideoOutputFormat,
    /// Decoded video frames held for the application; the oldest is dropped (and counted).
    pub video_queue_capacity: u32,
    /// Longest a missing video packet is waited for (NACK retransmission) before its frame is
    /// dropped and a keyframe is asked for.
    pub video_max_delay_ms: u32,
    /// Drops this share (0..=50 %) of incoming RTP packets before anything sees them, to test
    /// an application (and this library) under loss. 0, the default, drops nothing.
    pub simulate_loss_percent: u32,
    pub enable_rtcp: bool,
    pub rtcp_interval_ms: u32,
    pub ice_policy: IcePolicy,
    /// Answer incoming offers without asking the application.
    pub auto_answer: bool,
    /// ICE timeouts, both counted from the last packet heard from the peer: disconnected after
    /// the first, failed (and freed) after the second. Checked at the keepalive interval.
    pub ice_disconnected_timeout_ms: u32,
    pub ice_failed_timeout_ms: u32,
    pub ice_keepalive_interval_ms: u32,
    /// Signaling reconnect backoff: starts at the first value, doubles up to the second.
    pub reconnect_initial_ms: u32,
    pub reconnect_max_ms: u32,
    /// Capacity of the event queue toward the application; the oldest event is dropped (and
    /// counted) when the application does not drain it.
    pub event_queue_capacity: u32,
    /// Tokio worker threads of this transport's runtime.
    pub worker_threads: u32,
    /// Capabilities announced to the signaling server.
    pub capabilities: serde_json::Value,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            signaling_url: "ws://127.0.0.1:8080".into(),
            peer_id: String::new(),
            signaling_token: String::new(),
            signaling_ca_file: String::new(),
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            max_peers: 10,
            audio_codec: "opus".into(),
            video_codec: "vp8".into(),
            enable_data_channel: true,
            jitter_buffer_size_ms: 50,
            enable_audio: true,
            audio_output_sample_rate: 48_000,
            audio_output_channels: 2,
            audio_output_format: SampleFormat::F32,
            audio_queue_capacity: 256,
            enable_video: true,
            video_output_format: VideoOutputFormat::I420,
            video_queue_capacity: 8,
            video_max_delay_ms: 200,
            simulate_loss_percent: 0,
            enable_rtcp: true,
            rtcp_interval_ms: 5000,
            ice_policy: IcePolicy::All,
            auto_answer: true,
            ice_disconnected_timeout_ms: 5000,
            ice_failed_timeout_ms: 25000,
            ice_keepalive_interval_ms: 2000,
            reconnect_initial_ms: 100,
            // A restarted server sees every client back within 2 s; the jitter of the backoff
            // (signaling::client) spreads them over that time.
            reconnect_max_ms: 1500,
            event_queue_capacity: 8192,
            worker_threads: 2,
            capabilities: serde_json::json!({"audio": false, "video": false, "data": true}),
        }
    }
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::Config(msg())) }
}

fn check_range(name: &str, v: u32, lo: u32, hi: u32) -> Result<()> {
    check((lo..=hi).contains(&v), || format!("{name} must be in {lo}..={hi}, got {v}"))
}

impl Config {
    /// Parses a JSON object; absent fields take their defaults, unknown fields are an error
    /// (a misspelt option should not be silently ignored). The result is validated.
    pub fn from_json(json: &str) -> Result<Config> {
        let cfg: Config = if json.trim().is_empty() {
            Config::default()
        } else {
            let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Config(format!("config JSON: {e}")))?;
            if !v.is_object() {
                return Err(Error::Config("config JSON must be an object".into()));
            }
            // The path names the field in type errors ("max_peers: invalid type: string ...").
            serde_path_to_error::deserialize(v).map_err(|e| Error::Config(format!("config JSON: {}: {}", e.path(), e.inner())))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads the `WEBRTC_*` environment variables over the defaults (see docs/ARCHITECTURE.md).
    pub fn from_env() -> Result<Config> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`] with an injectable lookup, so tests need not touch the
    /// process environment.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut c = Config::default();
        let num = |k: &str| -> Result<Option<u32>> {
            get(k)
                .map(|v| v.trim().parse::<u32>().map_err(|_| Error::Config(format!("{k}: expected a number, got {v:?}"))))
                .transpose()
        };
        let flag = |k: &str| -> Result<Option<bool>> {
            get(k)
                .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(Error::Config(format!("{k}: expected true/false, got {v:?}"))),
                })
                .transpose()
        };
        let list = |v: String| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        if let Some(v) = get("WEBRTC_SIGNALING_URL") { c.signaling_url = v; }
        if let Some(v) = get("WEBRTC_PEER_ID") { c.peer_id = v; }
        if let Some(v) = get("WEBRTC_SIGNALING_TOKEN") { c.signaling_token = v; }
        if let Some(v) = get("WEBRTC_SIGNALING_CA_FILE") { c.signaling_ca_file = v; }
        if let Some(v) = get("WEBRTC_STUN_SERVERS") { c.stun_servers = list(v); }
        if let Some(v) = get("WEBRTC_TURN_SERVERS") {
            // url|username|credential, comma separated
            c.turn_servers = list(v)
                .into_iter()
                .map(|e| {
                    let p: Vec<&str> = e.split('|').collect();
                    match p.as_slice() {
                        [url, user, cred] => Ok(TurnServer { url: url.to_string(), username: user.to_string(), credential: cred.to_string() }),
                        _ => Err(Error::Config(format!("WEBRTC_TURN_SERVERS: expected url|username|credential, got {e:?}"))),
                    }
                })
                .collect::<Result<_>>()?;
        }
        if let Some(v) = num("WEBRTC_MAX_PEERS")? { c.max_peers = v; }
        if let Some(v) = get("WEBRTC_AUDIO_CODEC") { c.audio_codec = v.to_ascii_lowercase(); }
        if let Some(v) = get("WEBRTC_VIDEO_CODEC") { c.video_codec = v.to_ascii_lowercase(); }
        if let Some(v) = flag("WEBRTC_ENABLE_DATA_CHANNEL")? { c.enable_data_channel = v; }
        if let Some(v) = num("WEBRTC_JITTER_BUFFER_MS")? { c.jitter_buffer_size_ms = v; }
        if let Some(v) = flag("WEBRTC_ENABLE_RTCP")? { c.enable_rtcp = v; }
        if let Some(v) = num("WEBRTC_RTCP_INTERVAL_MS")? { c.rtcp_interval_ms = v; }
        if let Some(v) = get("WEBRTC_ICE_POLICY") {
            c.ice_policy = serde_json::from_value(serde_json::Value::String(v.to_ascii_lowercase()))
                .map_err(|_| Error::Config(format!("WEBRTC_ICE_POLICY: expected all, loopback or relay, got {v:?}")))?;
        }
        if let Some(v) = flag("WEBRTC_AUTO_ANSWER")? { c.auto_answer = v; }
        if let Some(v) = flag("WEBRTC_ENABLE_AUDIO")? { c.enable_audio = v; }
        if let Some(v) = flag("WEBRTC_ENABLE_VIDEO")? { c.enable_video = v; }
        c.validate()?;
        Ok(c)
    }

    /// The video codec we offer first and send when the peer accepts it.
    pub fn preferred_video_codec(&self) -> VideoCodec {
        if self.video_codec == "vp9" { VideoCodec::Vp9 } else { VideoCodec::Vp8 }
    }

    pub fn validate(&self) -> Result<()> {
        let url = self.signaling_url.as_str();
        let host = url.strip_prefix("ws://").or_else(|| url.strip_prefix("wss://"));
        check(host.is_some(), || format!("signaling_url must start with ws:// or wss://, got {url:?}"))?;
        check(host.is_some_and(|h| !h.is_empty()), || "signaling_url has no host".into())?;
        check(self.peer_id.len() <= 256, || format!("peer_id is {} bytes, at most 256", self.peer_id.len()))?;
        check(!self.peer_id.chars().any(char::is_control), || "peer_id contains control characters".into())?;
        for (i, s) in self.stun_servers.iter().enumerate() {
            check(s.starts_with("stun:") || s.starts_with("stuns:"), || format!("stun_servers[{i}] must start with stun: or stuns:, got {s:?}"))?;
        }
        for (i, t) in self.turn_servers.iter().enumerate() {
            check(t.url.starts_with("turn:") || t.url.starts_with("turns:"), || format!("turn_servers[{i}].url must start with turn: or turns:, got {:?}", t.url))?;
            check(!t.username.is_empty(), || format!("turn_servers[{i}].username is empty"))?;
            check(!t.credential.is_empty(), || format!("turn_servers[{i}].credential is empty"))?;
        }
        check(self.ice_policy != IcePolicy::Relay || !self.turn_servers.is_empty(), || "ice_policy \"relay\" needs at least one turn_servers entry".into())?;
        check_range("max_peers", self.max_peers, 1, 1024)?;
        check(self.audio_codec == "opus", || format!("audio_codec must be \"opus\", got {:?}", self.audio_codec))?;
        check(matches!(self.video_codec.as_str(), "vp8" | "vp9"), || format!("video_codec must be \"vp8\" or \"vp9\", got {:?}", self.video_codec))?;
        check_range("jitter_buffer_size_ms", self.jitter_buffer_size_ms, 10, 2000)?;
        check(INPUT_RATES.contains(&self.audio_output_sample_rate), || format!(
            "audio_output_sample_rate must be one of {INPUT_RATES:?}, got {}", self.audio_output_sample_rate))?;
        check_range("audio_output_channels", self.audio_output_channels, 1, 2)?;
        check_range("audio_queue_capacity", self.audio_queue_capacity, 4, 1 << 16)?;
        check_range("video_queue_capacity", self.video_queue_capacity, 1, 1024)?;
        check_range("video_max_delay_ms", self.video_max_delay_ms, 10, 5000)?;
        check_range("simulate_loss_percent", self.simulate_loss_percent, 0, 50)?;
        check_range("rtcp_interval_ms", self.rtcp_interval_ms, 100, 60_000)?;
        check_range("ice_keepalive_interval_ms", self.ice_keepalive_interval_ms, 100, 60_000)?;
        check_range("ice_disconnected_timeout_ms", self.ice_disconnected_timeout_ms, 500, 600_000)?;
        check(self.ice_failed_timeout_ms >= self.ice_disconnected_timeout_ms, || format!(
            "ice_failed_timeout_ms ({}) must be >= ice_disconnected_timeout_ms ({})", self.ice_failed_timeout_ms, self.ice_disconnected_timeout_ms))?;
        check_range("reconnect_initial_ms", self.reconnect_initial_ms, 10, 60_000)?;
        check(self.reconnect_max_ms >= self.reconnect_initial_ms, || "reconnect_max_ms must be >= reconnect_initial_ms".into())?;
        check_range("event_queue_capacity", self.event_queue_capacity, 16, 1 << 20)?;
        check_range("worker_threads", self.worker_threads, 1, 64)?;
        check(self.capabilities.is_object(), || "capabilities must be a JSON object".into())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_contact_no_public_server() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.stun_servers.is_empty() && c.turn_servers.is_empty());
        assert_eq!(c.max_peers, 10);
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = Config::from_json(r#"{"max_peers":0}"#).unwrap_err();
        assert_eq!(e, Error::Config("max_peers must be in 1..=1024, got 0".into()));
        let e = Config::from_json(r#"{"max_peer":3}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `max_peer`"), "{e}");
        let e = Config::from_json(r#"{"stun_servers":["http://x"]}"#).unwrap_err().to_string();
        assert!(e.contains("stun_servers[0]"), "{e}");
        let e = Config::from_json(r#"{"turn_servers":[{"url":"turn:x","username":"","credential":"c"}]}"#).unwrap_err().to_string();
        assert!(e.contains("turn_servers[0].username"), "{e}");
        let e = Config::from_json(r#"{"video_codec":"h264"}"#).unwrap_err().to_string();
        assert!(e.contains("video_codec"), "{e}");
        let e = Config::from_json("{").unwrap_err().to_string();
        assert!(e.contains("config JSON"), "{e}");
        let e = Config::from_json(r#"{"max_peers":"ten"}"#).unwrap_err().to_string();
        assert!(e.contains("max_peers: invalid type"), "{e}");
        let e = Config::from_json(r#"{"ice_policy":"sideways"}"#).unwrap_err().to_string();
        assert!(e.contains("ice_policy"), "{e}");
        let e = Config::from_json(r#"["ws://127.0.0.1:9","x"]"#).unwrap_err().to_string();
        assert!(e.contains("must be an object"), "{e}");
    }

    #[test]
    fn env_vars_override_defaults() {
        let vars = [
            ("WEBRTC_SIGNALING_URL", "ws://127.0.0.1:9000"),
            ("WEBRTC_MAX_PEERS", "3"),
            ("WEBRTC_STUN_SERVERS", "stun:127.0.0.1:3478, stun:127.0.0.1:3479"),
            ("WEBRTC_TURN_SERVERS", "turn:127.0.0.1:3478|u|p"),
            ("WEBRTC_ICE_POLICY", "loopback"),
            ("WEBRTC_ENABLE_DATA_CHANNEL", "false"),
        ];
        let c = Config::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        assert_eq!(c.signaling_url, "ws://127.0.0.1:9000");
        assert_eq!(c.max_peers, 3);
        assert_eq!(c.stun_servers.len(), 2);
        assert_eq!(c.turn_servers[0].username, "u");
        assert_eq!(c.ice_policy, IcePolicy::Loopback);
        assert!(!c.enable_data_channel);
        let e = Config::from_vars(|k| (k == "WEBRTC_MAX_PEERS").then(|| "ten".to_string())).unwrap_err().to_string();
        assert!(e.contains("WEBRTC_MAX_PEERS"), "{e}");
    }
}
