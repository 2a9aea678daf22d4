//! JSON-RPC 2.0 messages of the signaling dialect, parsed and built in one place so the
//! server and the client cannot disagree about a field name.

use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const APPLICATION_ERROR: i64 = -32000;

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
    pub fn application(message: impl Into<String>) -> Self {
        Self::new(APPLICATION_ERROR, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request (`id` present) or a notification (`id` absent).
    Call { id: Option<Value>, method: String, params: Value },
    Response { id: Value, result: Result<Value, RpcError> },
}

/// Parses one text frame. On failure returns the error to answer with, and the request id
/// when one could be read (JSON-RPC answers parse errors with `id: null`).
pub fn parse(text: &str) -> Result<Message, (Option<Value>, RpcError)> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| (None, RpcError::new(PARSE_ERROR, format!("parse error: {e}"))))?;
    let Value::Object(mut obj) = v else {
        let what = if v.is_array() { "batch requests are not supported" } else { "a message must be a JSON object" };
        return Err((None, RpcError::new(INVALID_REQUEST, what)));
    };
    let id = obj.remove("id");
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err((id, RpcError::new(INVALID_REQUEST, "invalid request: \"jsonrpc\" must be \"2.0\"")));
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err((id, RpcError::new(INVALID_REQUEST, "invalid request: \"method\" must be a string")));
        };
        let params = match obj.remove("params") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(p @ Value::Object(_)) => p,
            Some(_) => return Err((id, RpcError::invalid_params("params must be an object"))),
        };
        return Ok(Message::Call { id, method, params });
    }
    let Some(id) = id else {
        return Err((None, RpcError::new(INVALID_REQUEST, "invalid request: no \"method\"")));
    };
    if let Some(result) = obj.remove("result") {
        return Ok(Message::Response { id, result: Ok(result) });
    }
    if let Some(Value::Object(err)) = obj.remove("error") {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(APPLICATION_ERROR);
        let message = err.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Message::Response { id, result: Err(RpcError::new(code, message)) });
    }
    Err((Some(id), RpcError::new(INVALID_REQUEST, "invalid request: no \"method\", \"result\" or \"error\"")))
}

pub fn request(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

pub fn notification(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

pub fn response(id: &Value, result: Result<Value, RpcError>) -> String {
    match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}}),
    }
    .to_string()
}

/// A required string parameter.
pub fn str_param<'a>(params: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::invalid_params(format!("params.{name} must be a string"))),
        None => Err(RpcError::invalid_params(format!("params.{name} is required"))),
    }
}

/// An optional string parameter (absent or null → None).
pub fn opt_str_param<'a>(params: &'a Value, name: &str) -> Result<Option<&'a str>, RpcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RpcError::invalid_params(format!("params.{name} must be a string"))),
    }
}

/// An optional unsigned integer parameter.
pub fn opt_u16_param(params: &Value, name: &str) -> Result<Option<u16>, RpcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| RpcError::invalid_params(format!("params.{name} must be an integer 0..=65535"))),
    }
}

/// What the server tells a client, typed. Parsing is lenient about fields the dialect marks
/// optional and strict about the ones a peer connection needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Offer { from: String, sdp: String },
    Answer { from: String, sdp: String },
    IceCandidate { from: String, candidate: String, sdp_mid: Option<String>, sdp_mline_index: Option<u16> },
    PeerJoined { peer_id: String, capabilities: Value },
    PeerLeft { peer_id: String },
    PeerDisconnected { peer_id: String },
}

impl ServerEvent {
    /// `Ok(None)` for a method this client does not know (servers may add notifications).
    pub fn from_call(method: &str, params: &Value) -> Result<Option<ServerEvent>, RpcError> {
        Ok(Some(match method {
            "offer" => ServerEvent::Offer { from: str_param(params, "from_peer_id")?.into(), sdp: str_param(params, "sdp")?.into() },
            "answer" => ServerEvent::Answer { from: str_param(params, "from_peer_id")?.into(), sdp: str_param(params, "sdp")?.into() },
            "ice_candidate" => ServerEvent::IceCandidate {
                from: str_param(params, "from_peer_id")?.into(),
                candidate: str_param(params, "candidate")?.into(),
                sdp_mid: opt_str_param(params, "sdp_mid")?.map(String::from),
                sdp_mline_index: opt_u16_param(params, "sdp_mline_index")?,
            },
            "peer_joined" => ServerEvent::PeerJoined {
                peer_id: str_param(params, "peer_id")?.into(),
                capabilities: params.get("capabilities").cloned().unwrap_or(Value::Null),
            },
            "peer_left" => ServerEvent::PeerLeft { peer_id: str_param(params, "peer_id")?.into() },
            "peer_disconnected" => ServerEvent::PeerDisconnected { peer_id: str_param(params, "peer_id")?.into() },
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_classifies_frames() {
        assert_eq!(parse("{").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse("[]").unwrap_err().1.code, INVALID_REQUEST);
        let (id, e) = parse(r#"{"id":7,"method":"announce"}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(json!(7)), INVALID_REQUEST));
        assert_eq!(parse(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).unwrap_err().1.code, INVALID_PARAMS);
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"list_peers"}"#).unwrap(),
            Message::Call { id: Some(json!(1)), method: "list_peers".into(), params: json!({}) }
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32000,"message":"taken"}}"#).unwrap(),
            Message::Response { id: json!("a"), result: Err(RpcError::application("taken")) }
        );
    }

    #[test]
    fn server_events_need_their_fields() {
        let p = json!({"from_peer_id":"a","candidate":"candidate:1 1 UDP 1 127.0.0.1 5 typ host","sdp_mid":"0","sdp_mline_index":0});
        assert!(matches!(ServerEvent::from_call("ice_candidate", &p).unwrap(), Some(ServerEvent::IceCandidate { sdp_mline_index: Some(0), .. })));
        let e = ServerEvent::from_call("offer", &json!({"from_peer_id":"a"})).unwrap_err();
        assert_eq!(e.message, "params.sdp is required");
        assert_eq!(ServerEvent::from_call("room_joined", &json!({})).unwrap(), None);
    }
}
