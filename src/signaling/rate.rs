//! Per-connection message rate limit of the signaling server: a token bucket, so the bursts a
//! real client sends (an offer and a dozen candidates per peer at connection time) pass, while a
//! client flooding the relay is refused and, if it keeps on, disconnected.

use std::time::{Duration, Instant};

/// `per_second` messages sustained, up to `burst` at once. Both must be > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    /// Ten peers connecting at once (announce, then per peer an offer or answer and ~10
    /// candidates) is ~120 messages; the default lets that through as one burst.
    fn default() -> Self {
        RateLimit { per_second: 100, burst: 200 }
    }
}

pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
    /// Messages refused since the last accepted one.
    refused_in_row: u32,
}

pub(crate) enum Verdict {
    Accept,
    /// Over the limit: refuse this message, keep the connection.
    Refuse,
    /// Refused more than a full burst in a row: the client ignores the errors; close it.
    Disconnect,
}

impl Bucket {
    pub fn new(limit: RateLimit, now: Instant) -> Bucket {
        Bucket { limit, tokens: f64::from(limit.burst), last: now, refused_in_row: 0 }
    }

    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        let refill = elapsed.min(Duration::from_secs(3600)).as_secs_f64() * f64::from(self.limit.per_second);
        self.tokens = (self.tokens + refill).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_row = 0;
            return Verdict::Accept;
        }
        self.refused_in_row = self.refused_in_row.saturating_add(1);
        if self.refused_in_row > self.limit.burst { Verdict::Disconnect } else { Verdict::Refuse }
    }

    pub fn describe(&self) -> String {
        format!("rate limit exceeded: more than {} messages/s (burst {})", self.limit.per_second, self.limit.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_passes_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit { per_second: 10, burst: 5 }, t0);
        for _ in 0..5 {
            assert!(matches!(b.take(t0), Verdict::Accept));
        }
        assert!(matches!(b.take(t0), Verdict::Refuse));
        // 100 ms at 10/s refills exactly one.
        assert!(matches!(b.take(t0 + Duration::from_millis(100)), Verdict::Accept));
        assert!(matches!(b.take(t0 + Duration::from_millis(100)), Verdict::Refuse));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(matches!(b.take(later), Verdict::Accept));
        }
        assert!(matches!(b.take(later), Verdict::Refuse));
    }

    #[test]
    fn a_client_that_keeps_flooding_is_disconnected() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit { per_second: 1, burst: 3 }, t0);
        let verdicts: Vec<_> = (0..8).map(|_| b.take(t0)).collect();
        assert!(verdicts[..3].iter().all(|v| matches!(v, Verdict::Accept)));
        assert!(verdicts[3..6].iter().all(|v| matches!(v, Verdict::Refuse)));
        assert!(matches!(verdicts[6], Verdict::Disconnect));
        // One accepted message resets the count.
        assert!(matches!(b.take(t0 + Duration::from_secs(1)), Verdict::Accept));
        assert!(matches!(b.take(t0 + Duration::from_secs(1)), Verdict::Refuse));
    }
}
