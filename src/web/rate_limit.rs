//! Rate limits keyed by client IP or by account: a token bucket per key,
//! from `governor`, and [`FailureLimit`], which counts only failures.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Allows `per_minute` requests per key, in bursts of up to that many;
/// `None` when the limit is switched off (0 in the settings).
#[derive(Clone)]
pub struct KeyedRateLimit<K: Hash + Eq + Clone>(Option<Arc<DefaultKeyedRateLimiter<K>>>);

/// Requests per client IP address.
pub type IpRateLimit = KeyedRateLimit<IpAddr>;

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
        every_minute(move || limit.forget_idle());
    }
}

/// Failures per key: a key may fail `per_minute` times in a burst, and
/// then once each `60 / per_minute` seconds. Unlike [`KeyedRateLimit`],
/// asking costs nothing; only [`FailureLimit::failed`] counts, so a key
/// that keeps succeeding is never slowed. `None` when switched off.
///
/// Each key holds the moment its failures are paid off (the theoretical
/// arrival time of the generic cell rate algorithm): one failure adds one
/// interval to it, and a key is refused while it lies more than
/// `per_minute - 1` intervals ahead.
#[derive(Clone)]
pub struct FailureLimit<K: Hash + Eq + Clone>(Option<Arc<Failures<K>>>);

struct Failures<K> {
    interval: Duration,
    tolerance: Duration,
    paid_off_at: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> FailureLimit<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|n| {
            let interval = Duration::from_secs(60) / n.get();
            Arc::new(Failures {
                interval,
                tolerance: interval * (n.get() - 1),
                paid_off_at: Mutex::new(HashMap::new()),
            })
        }))
    }

    /// `Err(wait)` when `key` failed too often to try again yet.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(failures) = &self.0 else { return Ok(()) };
        let map = failures.paid_off_at.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(paid_off) if paid_off.saturating_duration_since(now) > failures.tolerance => {
                Err(paid_off.saturating_duration_since(now) - failures.tolerance)
            }
            _ => Ok(()),
        }
    }

    /// Whether `key` has failed recently (its failures are not paid off).
    pub fn has_failed(&self, key: &K) -> bool {
        self.has_failed_at(key, Instant::now())
    }

    fn has_failed_at(&self, key: &K, now: Instant) -> bool {
        let Some(failures) = &self.0 else { return false };
        let map = failures.paid_off_at.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).is_some_and(|paid_off| *paid_off > now)
    }

    /// Counts one failure of `key`.
    pub fn failed(&self, key: &K) {
        self.failed_at(key, Instant::now());
    }

    fn failed_at(&self, key: &K, now: Instant) {
        let Some(failures) = &self.0 else { return };
        let mut map = failures.paid_off_at.lock().unwrap_or_else(|e| e.into_inner());
        let paid_off = map.entry(key.clone()).or_insert(now);
        *paid_off = (*paid_off).max(now) + failures.interval;
    }

    /// Forgets the failures of `key` (it proved itself).
    pub fn forgive(&self, key: &K) {
        if let Some(failures) = &self.0 {
            failures
                .paid_off_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
        }
    }

    /// Forgets keys whose failures are paid off, so memory stays bounded by
    /// the keys that failed in the last minute.
    pub fn forget_idle(&self) {
        if let Some(failures) = &self.0 {
            let now = Instant::now();
            let mut map = failures.paid_off_at.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, paid_off| *paid_off > now);
            map.shrink_to_fit();
        }
    }

    /// Forgets paid-off keys once a minute, for as long as the runtime runs.
    pub fn spawn_janitor(&self) {
        let limit = self.clone();
        every_minute(move || limit.forget_idle());
    }
}

/// Runs `task` once a minute, for as long as the runtime runs.
fn every_minute(task: impl Fn() + Send + 'static) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            task();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_allowed_in_a_burst_then_one_per_interval() {
        let limit = FailureLimit::<&str>::per_minute(3);
        let t0 = Instant::now();
        assert!(!limit.has_failed_at(&"a", t0));
        for _ in 0..3 {
            assert!(limit.check_at(&"a", t0).is_ok());
            limit.failed_at(&"a", t0);
        }
        assert!(limit.has_failed_at(&"a", t0));
        assert_eq!(limit.check_at(&"a", t0), Err(Duration::from_secs(20)));
        assert!(limit.check_at(&"b", t0).is_ok(), "other keys are apart");
        // One interval later, one more failure is allowed, and only one.
        let t1 = t0 + Duration::from_secs(20);
        assert!(limit.check_at(&"a", t1).is_ok());
        limit.failed_at(&"a", t1);
        assert!(limit.check_at(&"a", t1).is_err());
        // Once every failure is paid off, the key is fresh again.
        let t2 = t1 + Duration::from_secs(60);
        assert!(!limit.has_failed_at(&"a", t2));
        limit.forgive(&"a");
        assert!(limit.check_at(&"a", t0).is_ok());
    }

    #[test]
    fn a_switched_off_failure_limit_never_refuses() {
        let limit = FailureLimit::<u8>::per_minute(0);
        (0..100).for_each(|_| limit.failed(&1));
        assert!(limit.check(&1).is_ok() && !limit.has_failed(&1));
    }

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
