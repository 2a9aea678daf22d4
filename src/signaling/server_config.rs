//! What the signaling server is told: address, limits, authentication, TLS. Built in code
//! (`ServerConfig { .., ..Default::default() }`) or parsed from the JSON object the C API and
//! the standalone binary take (docs/PROTOCOL.md §5 and §8 describe the effects).

use super::auth::Auth;
use super::rate::RateLimit;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::PathBuf;

const MAX_MESSAGE_BYTES: usize = 64 << 20;
const MAX_OUTBOUND_QUEUE: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (see `SignalingServer::local_addr`).
    pub bind_addr: String,
    /// Largest text frame answered normally; a larger one gets a -32600 error. Frames above
    /// max(4 × this, 64 KiB) close the connection (the WebSocket layer refuses to buffer them).
    pub max_message_bytes: usize,
    /// Messages queued toward one client; a relay to a client whose queue is full fails with a
    /// -32000 error to the sender instead of blocking everybody.
    pub outbound_queue: usize,
    /// When set, `announce` needs a valid `token` param (see `signaling::auth`).
    pub auth: Option<Auth>,
    /// Messages a connection may send (see `signaling::rate`); `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// When set, the server speaks TLS only (`wss://`): PEM certificate chain and private key.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_addr: "127.0.0.1:8080".into(),
            max_message_bytes: 256 * 1024,
            outbound_queue: 1024,
            auth: None,
            rate_limit: Some(RateLimit::default()),
            tls: None,
        }
    }
}

/// The JSON form. Absent fields keep their defaults; unknown fields are an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Json {
    bind_addr: Option<String>,
    max_message_bytes: Option<usize>,
    outbound_queue: Option<usize>,
    /// `{"per_second":N,"burst":M}`, or `null` for no limit.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<RateJson>>,
    auth: Option<AuthJson>,
    tls: Option<TlsJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateJson {
    per_second: u32,
    burst: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
enum AuthJson {
    SharedSecret { secret: String },
    Jwt { secret: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsJson {
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl ServerConfig {
    /// Parses the JSON object form over the defaults, e.g.
    /// `{"bind_addr":"0.0.0.0:8443","rate_limit":{"per_second":50,"burst":100},
    ///   "auth":{"kind":"jwt","secret":"…"},"tls":{"cert_file":"cert.pem","key_file":"key.pem"}}`.
    /// An empty string is the defaults. The result is validated.
    pub fn from_json(json: &str) -> Result<ServerConfig> {
        let mut cfg = ServerConfig::default();
        if json.trim().is_empty() {
            return Ok(cfg);
        }
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Config(format!("server config JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::Config("server config JSON must be an object".into()));
        }
        let j: Json = serde_path_to_error::deserialize(v).map_err(|e| Error::Config(format!("server config JSON: {}: {}", e.path(), e.inner())))?;
        if let Some(v) = j.bind_addr {
            cfg.bind_addr = v;
        }
        if let Some(v) = j.max_message_bytes {
            cfg.max_message_bytes = v;
        }
        if let Some(v) = j.outbound_queue {
            cfg.outbound_queue = v;
        }
        if let Some(r) = j.rate_limit {
            cfg.rate_limit = r.map(|r| RateLimit { per_second: r.per_second, burst: r.burst });
        }
        cfg.auth = j.auth.map(|a| match a {
            AuthJson::SharedSecret { secret } => Auth::SharedSecret(secret),
            AuthJson::Jwt { secret } => Auth::Jwt { secret },
        });
        cfg.tls = j.tls.map(|t| TlsFiles { cert_file: t.cert_file, key_file: t.key_file });
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        // Upper bounds: found by the `configs` fuzz target (4 × the size overflowed; tokio's
        // channels panic above their permit limit).
        if !(1024..=MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return fail(format!("max_message_bytes must be in 1024..={MAX_MESSAGE_BYTES}, got {}", self.max_message_bytes));
        }
        if !(1..=MAX_OUTBOUND_QUEUE).contains(&self.outbound_queue) {
            return fail(format!("outbound_queue must be in 1..={MAX_OUTBOUND_QUEUE}, got {}", self.outbound_queue));
        }
        if self.rate_limit.is_some_and(|r| r.per_second == 0 || r.burst == 0) {
            return fail("rate_limit: per_second and burst must be > 0 (for no limit: null)".into());
        }
        if let Some(Auth::SharedSecret(s) | Auth::Jwt { secret: s }) = &self.auth {
            if s.is_empty() {
                return fail("auth.secret is empty".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_the_defaults_and_fields_override_them() {
        let d = ServerConfig::from_json("").unwrap();
        assert_eq!((d.max_message_bytes, d.rate_limit), (262_144, Some(RateLimit::default())));
        let c = ServerConfig::from_json(
            r#"{"bind_addr":"127.0.0.1:0","max_message_bytes":4096,"outbound_queue":8,
                "rate_limit":{"per_second":5,"burst":7},"auth":{"kind":"jwt","secret":"k"},
                "tls":{"cert_file":"c.pem","key_file":"k.pem"}}"#,
        )
        .unwrap();
        assert_eq!((c.bind_addr.as_str(), c.max_message_bytes, c.outbound_queue), ("127.0.0.1:0", 4096, 8));
        assert_eq!(c.rate_limit, Some(RateLimit { per_second: 5, burst: 7 }));
        assert_eq!(c.auth, Some(Auth::Jwt { secret: "k".into() }));
        assert_eq!(c.tls, Some(TlsFiles { cert_file: "c.pem".into(), key_file: "k.pem".into() }));
        assert_eq!(ServerConfig::from_json(r#"{"rate_limit":null}"#).unwrap().rate_limit, None);
    }

    #[test]
    fn mistakes_are_named() {
        for (json, needle) in [
            ("[]", "must be an object"),
            ("{", "server config JSON"),
            (r#"{"bind":"x"}"#, "unknown field `bind`"),
            (r#"{"max_message_bytes":10}"#, "max_message_bytes must be in 1024..="),
            (r#"{"max_message_bytes":18446744073709551615}"#, "max_message_bytes must be in 1024..="),
            (r#"{"outbound_queue":4611686018427387904}"#, "outbound_queue must be in 1..="),
            (r#"{"max_message_bytes":-1}"#, "max_message_bytes"),
            (r#"{"outbound_queue":0}"#, "outbound_queue must be in 1..="),
            (r#"{"rate_limit":{"per_second":0,"burst":1}}"#, "per_second and burst must be > 0"),
            (r#"{"rate_limit":{"per_second":1}}"#, "rate_limit"),
            (r#"{"auth":{"kind":"password","secret":"x"}}"#, "auth"),
            (r#"{"auth":{"kind":"jwt","secret":""}}"#, "auth.secret is empty"),
            (r#"{"tls":{"cert_file":"c.pem"}}"#, "tls"),
        ] {
            let e = ServerConfig::from_json(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
