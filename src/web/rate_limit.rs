//! Per-client-IP rate limits (a token bucket per address, from `governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Allows `per_minute` requests per IP address, in bursts of up to that
/// many; `None` when the limit is switched off (0 in the settings).
#[derive(Clone)]
pub struct IpRateLimit(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl IpRateLimit {
    pub fn per_minute(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// `Err(wait)` when `ip` must wait before its next request.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.0 {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(&ip)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Forgets addresses whose buckets are full again, so memory stays
    /// bounded by the addresses seen in the last minute.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_quota_then_refuses_per_address() {
        let limit = IpRateLimit::per_minute(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limit.check(a).is_ok());
        assert!(limit.check(a).is_ok());
        let wait = limit.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(limit.check(b).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = IpRateLimit::per_minute(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| limit.check(a).is_ok()));
    }
}
