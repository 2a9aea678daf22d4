//! Sessions: named groups of peers inside one transport, used as broadcast targets.
//! Membership outlives a peer connection (a peer that reconnects stays in its sessions);
//! broadcasts skip members that are not connected.

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub session_id: String,
    pub peers: BTreeSet<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_id: BTreeMap<String, Session>,
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 {
        return Err(Error::InvalidArgument(format!("session id must be 1..=256 bytes, got {}", id.len())));
    }
    Ok(())
}

impl Sessions {
    pub fn create(&mut self, id: &str) -> Result<()> {
        check_id(id)?;
        if self.by_id.contains_key(id) {
            return Err(Error::AlreadyExists(format!("session {id}")));
        }
        let created_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        self.by_id.insert(id.into(), Session { session_id: id.into(), peers: BTreeSet::new(), created_at_ms });
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<&Session> {
        self.by_id.get(id).ok_or_else(|| Error::NotFound(format!("session {id}")))
    }

    pub fn list(&self) -> Vec<Session> {
        self.by_id.values().cloned().collect()
    }

    pub fn remove(&mut self, id: &str) -> Result<()> {
        self.by_id.remove(id).map(|_| ()).ok_or_else(|| Error::NotFound(format!("session {id}")))
    }

    pub fn add_peer(&mut self, id: &str, peer: &str) -> Result<()> {
        let s = self.by_id.get_mut(id).ok_or_else(|| Error::NotFound(format!("session {id}")))?;
        if !s.peers.insert(peer.into()) {
            return Err(Error::AlreadyExists(format!("peer {peer} in session {id}")));
        }
        Ok(())
    }

    pub fn remove_peer(&mut self, id: &str, peer: &str) -> Result<()> {
        let s = self.by_id.get_mut(id).ok_or_else(|| Error::NotFound(format!("session {id}")))?;
        if !s.peers.remove(peer) {
            return Err(Error::NotFound(format!("peer {peer} in session {id}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let mut s = Sessions::default();
        s.create("room").unwrap();
        assert!(matches!(s.create("room"), Err(Error::AlreadyExists(_))));
        s.add_peer("room", "a").unwrap();
        assert!(matches!(s.add_peer("room", "a"), Err(Error::AlreadyExists(_))));
        assert_eq!(s.get("room").unwrap().peers.len(), 1);
        s.remove_peer("room", "a").unwrap();
        assert!(matches!(s.remove_peer("room", "a"), Err(Error::NotFound(_))));
        assert_eq!(s.list().len(), 1);
        s.remove("room").unwrap();
        assert!(matches!(s.get("room"), Err(Error::NotFound(_))));
        assert!(matches!(s.create(""), Err(Error::InvalidArgument(_))));
    }
}
