//! Rate limits keyed by client IP or by account: a token bucket per key,
//! from `governor`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Allows `per_minute` requests per key, in bursts of up to that many;
/// `None` when the limit is switched off (0 in the settings).
#[derive(Clone)]
pub struct KeyedRateLimit<K: Hash + Eq + Clone>(Option<Arc<DefaultKeyedRateLimiter<K>>>);

/// Requests per client IP address.
pub type IpRateLimit = KeyedRateLimit<IpAddr>;

/// Login attempts per staff address; callers key it by the lowercased address.
pub type AccountRateLimit = KeyedRateLimit<String>;

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimit<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// `Err(wait)` when `key` must wait before its next request.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        match &self.0 {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(key)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded
    /// by the keys seen in the last minute.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Forgets idle keys once a minute, for as long as the runtime runs.
    pub fn spawn_janitor(&self) {
        let limit = self.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                limit.forget_idle();
            }
        });
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
        assert!(limit.check(&a).is_ok());
        assert!(limit.check(&a).is_ok());
        let wait = limit.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(limit.check(&b).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = IpRateLimit::per_minute(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| limit.check(&a).is_ok()));
    }
}
