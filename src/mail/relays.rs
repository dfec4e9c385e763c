//! The SMTP relays a worker sends through (`mail.relays`, or `mail.smtp`
//! alone): which one takes the next message, and how each one is doing.
//!
//! Messages are spread by weight over the healthy relays. A relay that
//! cannot be reached ([`SendError::Unreachable`]: no connection, a timeout,
//! 421 before the transaction) [`FAILURES_BEFORE_COOL_DOWN`] times in a row
//! cools down: no message picks it until the cool-down ends, while its
//! messages go to the others at once (the caller asks for another relay,
//! see [`Relays::pick`]; the message was not tried, so it costs no
//! attempt). When the cool-down ends the relay is on trial: the next
//! message tries it, and one more failure cools it down twice as long
//! ([`COOL_DOWN_FIRST`] doubling up to [`COOL_DOWN_MOST`]), while any
//! answer from it (even a refusal) makes it healthy again.
//!
//! A message whose every other relay was tried still goes to a cooling
//! relay rather than to none: with one relay, or all down, each message is
//! tried (and retried later) as it was with one relay, and a cool-down only
//! ever steers mail to a relay that may take it.
//!
//! The rate of each relay is the delivery worker's business (it waits for
//! the relay's slot between [`Relays::pick`] and [`Relays::send_via`]);
//! the connections open to each relay at once are bounded here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::config::{HeloName, RelaySettings};
use crate::mail::smtp::{SmtpPool, SmtpSetupError};
use crate::mail::{OutgoingMessage, SendError};
use crate::metrics::RelayFigures;

/// Unreachable this many times in a row, a healthy relay cools down.
pub const FAILURES_BEFORE_COOL_DOWN: u32 = 2;
/// The first cool-down; each one after a failed trial lasts twice as long.
pub const COOL_DOWN_FIRST: Duration = Duration::from_secs(1);
/// The longest cool-down: a relay that comes back is used again within it.
pub const COOL_DOWN_MOST: Duration = Duration::from_secs(60);

/// Every relay of this worker.
#[derive(Debug)]
pub struct Relays {
    relays: Vec<Relay>,
}

struct Relay {
    /// `smtp://host:port`, the host lowercased without a final dot: the key
    /// of its rate (shared by every worker) and of its figures.
    identity: String,
    weight: u32,
    rate_per_second: Option<u32>,
    pool: SmtpPool,
    /// `None`: as many connections as the worker sends at once.
    connections: Option<Semaphore>,
    health: Mutex<Health>,
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    unreachable: AtomicU64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("identity", &self.identity)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

/// A relay's reachability.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Health {
    /// Unreachable in a row, since it last answered.
    failures: u32,
    /// Cool-downs in a row, since it last answered: the next lasts
    /// `COOL_DOWN_FIRST × 2^cool_downs`, and while it is not 0 the relay is
    /// on trial (one failure is enough).
    cool_downs: u32,
    /// Until when no message picks it.
    until: Option<Instant>,
    /// The same moment on the wall clock, for the figures.
    until_wall: Option<DateTime<Utc>>,
}

impl Health {
    fn cooling(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// The relay could not be reached at `now`; the cool-down this starts,
    /// if it starts one. Failures of messages that were already on their
    /// way while it cooled down neither count nor lengthen it.
    fn unreachable(&mut self, now: Instant) -> Option<Duration> {
        if self.cooling(now) {
            return None;
        }
        self.failures += 1;
        if self.failures < FAILURES_BEFORE_COOL_DOWN && self.cool_downs == 0 {
            return None;
        }
        let cool_down = COOL_DOWN_FIRST
            .saturating_mul(1 << self.cool_downs.min(16))
            .min(COOL_DOWN_MOST);
        self.failures = 0;
        self.cool_downs += 1;
        self.until = Some(now + cool_down);
        self.until_wall = Some(Utc::now() + chrono::Duration::from_std(cool_down).unwrap_or_default());
        Some(cool_down)
    }

    /// It answered: healthy again. Whether it was cooling down or on trial.
    fn answered(&mut self) -> bool {
        let was = self.cool_downs > 0 || self.until.is_some();
        *self = Health::default();
        was
    }
}

/// What [`choose`] knows of a relay.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    weight: u32,
    /// `None` when it is not cooling down.
    cooling_until: Option<Instant>,
}

/// The relay for a message that has already tried those in `tried`:
/// weighted among the healthy ones with a weight, else evenly among the
/// healthy backups (weight 0), else the cooling one whose cool-down ends
/// first; `None` when every relay was tried. `roll(n)` is a number in
/// `0..n`.
fn choose(candidates: &[Candidate], tried: &[usize], roll: impl FnOnce(u64) -> u64) -> Option<usize> {
    let open = |i: &usize| !tried.contains(i);
    let healthy: Vec<usize> = (0..candidates.len())
        .filter(open)
        .filter(|&i| candidates[i].cooling_until.is_none())
        .collect();
    let weighted: Vec<usize> = healthy.iter().copied().filter(|&i| candidates[i].weight > 0).collect();
    if !weighted.is_empty() {
        let total: u64 = weighted.iter().map(|&i| u64::from(candidates[i].weight)).sum();
        let mut at = roll(total);
        for &i in &weighted {
            let weight = u64::from(candidates[i].weight);
            if at < weight {
                return Some(i);
            }
            at -= weight;
        }
        return weighted.last().copied();
    }
    if !healthy.is_empty() {
        let at = roll(healthy.len() as u64) as usize;
        return healthy.get(at).or(healthy.last()).copied();
    }
    (0..candidates.len())
        .filter(open)
        .min_by_key(|&i| candidates[i].cooling_until)
}

impl Relays {
    /// Pools for `relays`, each greeting as `helo`.
    pub fn new(relays: &[RelaySettings], helo: &HeloName) -> Result<Self, SmtpSetupError> {
        let relays = relays
            .iter()
            .map(|relay| {
                Ok(Relay {
                    identity: identity(&relay.smtp.host, relay.smtp.port),
                    weight: relay.weight,
                    rate_per_second: relay.rate_per_second,
                    pool: SmtpPool::new(&relay.smtp, helo)?,
                    connections: relay.connections.map(|n| Semaphore::new(n.get())),
                    health: Mutex::default(),
                    sent: AtomicU64::new(0),
                    deferred: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    unreachable: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, SmtpSetupError>>()?;
        Ok(Self { relays })
    }

    /// Each relay's identity and its own rate (`None`: the default).
    pub fn rates(&self) -> Vec<(String, Option<u32>)> {
        self.relays
            .iter()
            .map(|r| (r.identity.clone(), r.rate_per_second))
            .collect()
    }

    pub fn identity(&self, relay: usize) -> &str {
        &self.relays[relay].identity
    }

    /// The relay for the next try of a message that already tried those
    /// in `tried` (each could not be reached); `None` when all were.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let now = Instant::now();
        let candidates: Vec<Candidate> = self
            .relays
            .iter()
            .map(|relay| {
                let health = relay.health.lock().unwrap_or_else(|e| e.into_inner());
                Candidate {
                    weight: relay.weight,
                    cooling_until: health.until.filter(|_| health.cooling(now)),
                }
            })
            .collect();
        choose(&candidates, tried, |n| rand::rng().random_range(0..n.max(1)))
    }

    /// Sends `message` through `relay` (within its connection limit) and
    /// notes what this says of the relay.
    pub async fn send_via(&self, relay: usize, message: &OutgoingMessage) -> Result<(), SendError> {
        let relay = &self.relays[relay];
        let _permit = match &relay.connections {
            // The semaphore is never closed.
            Some(connections) => connections.acquire().await.ok(),
            None => None,
        };
        let result =
            crate::metrics::timed_smtp_send(relay.pool.send(message), |e| matches!(e, SendError::Permanent(_))).await;
        let counter = match &result {
            Ok(()) => &relay.sent,
            Err(SendError::Transient(_)) => &relay.deferred,
            Err(SendError::Permanent(_)) => &relay.failed,
            Err(SendError::Unreachable(_)) => &relay.unreachable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut health = relay.health.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Err(SendError::Unreachable(why)) => {
                if let Some(cool_down) = health.unreachable(Instant::now()) {
                    tracing::warn!(relay = %relay.identity, error = %why, ?cool_down,
                        "the relay cannot be reached; it cools down and its mail goes to the other relays");
                }
            }
            _ => {
                if health.answered() {
                    tracing::info!(relay = %relay.identity, "the relay answers again");
                }
            }
        }
        result
    }

    /// Every relay's figures since this worker started.
    pub fn figures(&self) -> Vec<RelayFigures> {
        let now = Instant::now();
        self.relays
            .iter()
            .map(|relay| {
                let health = relay.health.lock().unwrap_or_else(|e| e.into_inner());
                RelayFigures {
                    relay: relay.identity.clone(),
                    sent: relay.sent.load(Ordering::Relaxed),
                    deferred: relay.deferred.load(Ordering::Relaxed),
                    failed: relay.failed.load(Ordering::Relaxed),
                    unreachable: relay.unreachable.load(Ordering::Relaxed),
                    cooling_until: health.until_wall.filter(|_| health.cooling(now)),
                }
            })
            .collect()
    }

    /// Closes every relay's idle connections.
    pub async fn close(&self) {
        for relay in &self.relays {
            relay.pool.close().await;
        }
    }

    /// Where mail goes, for the start-up log line.
    pub fn describe(relays: &[RelaySettings]) -> String {
        let one = |relay: &RelaySettings| {
            let tls = match relay.smtp.tls {
                crate::config::SmtpTls::None => "no TLS",
                crate::config::SmtpTls::Starttls => "STARTTLS",
                crate::config::SmtpTls::Tls => "TLS",
            };
            format!("{}:{} ({tls})", relay.smtp.host, relay.smtp.port)
        };
        match relays {
            [relay] => format!("sent over SMTP to {}", one(relay)),
            _ => format!(
                "sent over SMTP to {} relays: {}",
                relays.len(),
                relays
                    .iter()
                    .map(|r| format!("{} weight {}", one(r), r.weight))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The identity a relay's rate and figures are kept under: host names are
/// compared without case or a final dot.
pub fn identity(host: &str, port: u16) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("smtp://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(weight: u32) -> Candidate {
        Candidate {
            weight,
            cooling_until: None,
        }
    }

    #[test]
    fn relays_are_chosen_by_weight_among_the_healthy_ones() {
        let relays = [healthy(3), healthy(1)];
        // Rolls 0..4: three land on the first relay, one on the second.
        let picks: Vec<_> = (0..4)
            .map(|r| {
                choose(&relays, &[], |n| {
                    assert_eq!(n, 4);
                    r
                })
            })
            .collect();
        assert_eq!(picks, [Some(0), Some(0), Some(0), Some(1)]);
        // The one already tried is left out: the other takes the message.
        assert_eq!(choose(&relays, &[0], |n| n - 1), Some(1));
        assert_eq!(choose(&relays, &[0, 1], |_| 0), None);
    }

    #[test]
    fn a_cooling_relay_is_picked_only_when_no_other_is_left_and_backups_come_before_it() {
        let now = Instant::now();
        let cooling = |secs| Candidate {
            weight: 5,
            cooling_until: Some(now + Duration::from_secs(secs)),
        };
        let relays = [cooling(10), healthy(1), healthy(0)];
        assert_eq!(choose(&relays, &[], |n| n - 1), Some(1), "the healthy weighted one");
        assert_eq!(choose(&relays, &[1], |_| 0), Some(2), "then the backup");
        assert_eq!(choose(&relays, &[1, 2], |_| 0), Some(0), "then the cooling one");
        let relays = [cooling(10), cooling(3)];
        assert_eq!(choose(&relays, &[], |_| 0), Some(1), "the one back first");
    }

    #[test]
    fn a_relay_cools_down_after_repeated_failures_twice_as_long_after_each_failed_trial() {
        let start = Instant::now();
        let mut health = Health::default();
        assert_eq!(health.unreachable(start), None, "one failure may be a fluke");
        assert_eq!(health.unreachable(start), Some(Duration::from_secs(1)));
        assert!(health.cooling(start));
        // Messages already on their way fail too: they neither count nor
        // lengthen the cool-down.
        assert_eq!(health.unreachable(start + Duration::from_millis(500)), None);
        let later = start + Duration::from_secs(1);
        assert!(!health.cooling(later));
        // On trial: one failure is enough, and the cool-down doubles.
        assert_eq!(health.unreachable(later), Some(Duration::from_secs(2)));
        let later = later + Duration::from_secs(2);
        assert_eq!(health.unreachable(later), Some(Duration::from_secs(4)));
        let mut longest = Duration::ZERO;
        for _ in 0..20 {
            health.until = None;
            longest = health.unreachable(later).unwrap();
        }
        assert_eq!(longest, COOL_DOWN_MOST);
        // An answer, even a refusal, makes it healthy: two failures again.
        assert!(health.answered());
        assert_eq!(health, Health::default());
        assert_eq!(health.unreachable(later), None);
    }

    #[test]
    fn identities_ignore_case_and_a_final_dot() {
        assert_eq!(identity(" Relay.Example.org. ", 587), "smtp://relay.example.org:587");
    }
}
