//! Optional authentication of `announce` (docs/PROTOCOL.md, "Authentication"): a client proves
//! it may use a peer id with a `token` param. Servers without it configured accept anyone, and
//! clients that send a token to such a server are unaffected (the param is ignored).
//!
//! Two schemes: a shared secret (every client holds the same string), or a JWT signed with
//! HS256 whose `sub` must be the announced peer id and whose `exp` must not have passed, so a
//! token issued for one peer cannot be used to announce as another.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    SharedSecret(String),
    Jwt { secret: String },
}

impl std::fmt::Debug for Auth {
    // Never print secrets (configs end up in logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::SharedSecret(_) => f.write_str("SharedSecret(..)"),
            Auth::Jwt { .. } => f.write_str("Jwt { .. }"),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Auth {
    /// Ok when `token` allows announcing `peer_id`; else why not (sent back to the client).
    pub fn check(&self, peer_id: &str, token: Option<&str>) -> Result<(), String> {
        let token = token.ok_or("unauthorized: this server requires params.token")?;
        match self {
            Auth::SharedSecret(secret) => {
                if constant_time_eq(token.as_bytes(), secret.as_bytes()) { Ok(()) } else { Err("unauthorized: wrong token".into()) }
            }
            Auth::Jwt { secret } => {
                let mut v = Validation::new(Algorithm::HS256);
                v.set_required_spec_claims(&["exp", "sub"]);
                v.leeway = 5;
                let data = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v).map_err(|e| format!("unauthorized: invalid token ({e})"))?;
                if data.claims.sub != peer_id {
                    return Err(format!("unauthorized: the token is for {:?}, not {peer_id:?}", data.claims.sub));
                }
                Ok(())
            }
        }
    }
}

/// Comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn jwt(sub: &str, exp_in: i64, secret: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        encode(&Header::new(Algorithm::HS256), &serde_json::json!({"sub": sub, "exp": now + exp_in}), &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    #[test]
    fn shared_secret() {
        let a = Auth::SharedSecret("s3cret".into());
        assert!(a.check("alice", Some("s3cret")).is_ok());
        assert!(a.check("alice", Some("s3cret!")).unwrap_err().contains("wrong token"));
        assert!(a.check("alice", None).unwrap_err().contains("requires params.token"));
        assert_eq!(format!("{a:?}"), "SharedSecret(..)");
    }

    #[test]
    fn jwt_binds_the_peer_id_and_expires() {
        let a = Auth::Jwt { secret: "k".into() };
        assert!(a.check("alice", Some(&jwt("alice", 60, "k"))).is_ok());
        assert!(a.check("bob", Some(&jwt("alice", 60, "k"))).unwrap_err().contains("not \"bob\""));
        assert!(a.check("alice", Some(&jwt("alice", -60, "k"))).unwrap_err().contains("invalid token"));
        assert!(a.check("alice", Some(&jwt("alice", 60, "other key"))).unwrap_err().contains("invalid token"));
        assert!(a.check("alice", Some("not.a.jwt")).is_err());
    }
}
