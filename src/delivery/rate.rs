//! `delivery.rate_per_second` (or a relay's own `rate_per_second` in
//! `mail.relays`): a rate per relay, held by every worker process
//! together, not by each one. A relay is known by its identity
//! (`smtp://host:port`, see `crate::mail`), the same in every worker.
//!
//! The relay's next free send slot lives in the database
//! ([`crate::db::relay_rate`]). Slots are one interval (1/rate) apart. A
//! worker with no slot left reserves the next [`Pace::batch`] of them in one
//! statement (a quarter second's worth: a few statements a second for the
//! whole fleet, not one per message), and each message waits for its slot.
//!
//! Why the sum stays within the rate: every slot ever handed out is at least
//! one interval from every other; a message never leaves before its slot
//! and never more than [`Pace::late`] after it (a slot found later than that
//! is dropped, not used). So the messages leaving in any window of one
//! second had their slots in a span of one second plus `late`, which holds
//! at most `rate + burst` slots. The burst is what a quiet relay allows at
//! once: a reservation's first slot may lie up to `burst - 1` intervals
//! before now, never more, so slots nobody used during a quiet period do
//! not add up. A worker that dies holding slots wastes those slots and no
//! more: at most one batch, a quarter of a second of the relay's rate.
//!
//! Both lanes take their slots here: the relay counts confirmations the
//! same as digests, so they share one rate. A confirmation waits only for
//! the slots already handed out when it comes (about one per digest
//! sender), never for the issue.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::db::Db;
use crate::db::relay_rate::{self, Reservation};

/// How the rate is held: who shares it, its spacing, and this worker's slots.
pub(super) struct RelayRate {
    db: Db,
    relay: String,
    pace: Pace,
    /// Taken one at a time, in the order senders ask (tokio's mutex is fair).
    slots: Mutex<Slots>,
}

impl RelayRate {
    pub(super) fn new(db: Db, relay: String, rate: NonZeroU32) -> Self {
        Self {
            db,
            relay,
            pace: Pace::new(rate),
            slots: Mutex::new(Slots::default()),
        }
    }

    pub(super) fn relay(&self) -> &str {
        &self.relay
    }

    pub(super) fn per_second(&self) -> u64 {
        1_000_000 / self.pace.interval_us.max(1) as u64
    }

    pub(super) fn burst(&self) -> i64 {
        self.pace.batch
    }

    /// When this worker may start its next message to the relay: one of its
    /// slots, reserved from the database with the next few when it has none
    /// left. `None` when no slot comes by `deadline` (the message's lease
    /// would run short): the slot stays for the next message.
    pub(super) async fn next_slot(&self, deadline: Instant) -> Option<Instant> {
        let mut slots = self.slots.lock().await;
        loop {
            match slots.take(Instant::now(), deadline) {
                Take::Slot(due) => return Some(due),
                Take::TooLate => return None,
                Take::Empty if Instant::now() >= deadline => return None,
                Take::Empty => {}
            }
            let pace = &self.pace;
            match relay_rate::reserve(&self.db, &self.relay, pace.batch, pace.interval_us, pace.behind_us).await {
                Ok(reservation) => slots.fill(reservation, Instant::now(), pace),
                Err(e) => {
                    tracing::warn!(relay = %self.relay, error = %e,
                        "cannot reserve send slots in the database; trying again shortly");
                    tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_secs(1)).into()).await;
                }
            }
        }
    }
}

/// The spacing of one relay's slots, from its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pace {
    /// Microseconds between two slots, rounded up so that the pace never
    /// exceeds the rate.
    interval_us: i64,
    /// Slots per reservation, a quarter second's worth (at least one); also
    /// the burst: how many may leave at once after a quiet period.
    batch: i64,
    /// How far before now a reservation may start: `batch - 1` intervals,
    /// so that at most `batch` slots are due at once.
    behind_us: i64,
    /// How late a slot may still be used: `behind_us`, which a quiet
    /// relay's first slot already is when it arrives, plus a quarter
    /// interval for the statement's return and waking up. A slot used later
    /// could bunch with the slots other workers use on time.
    late_us: i64,
}

impl Pace {
    fn new(rate: NonZeroU32) -> Self {
        let rate = u64::from(rate.get());
        let interval_us = 1_000_000_u64.div_ceil(rate) as i64;
        let batch = rate.div_ceil(4) as i64;
        let behind_us = (batch - 1) * interval_us;
        Self {
            interval_us,
            batch,
            behind_us,
            late_us: behind_us + interval_us / 4,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_us as u64)
    }

    fn late(&self) -> Duration {
        Duration::from_micros(self.late_us as u64)
    }
}

/// This worker's reserved slots: one run of consecutive slots (a worker
/// reserves only when it has none left), on this machine's monotonic clock.
#[derive(Debug, Default)]
struct Slots {
    next: Option<Instant>,
    left: u64,
    interval: Duration,
    late: Duration,
}

#[derive(Debug, PartialEq, Eq)]
enum Take {
    Slot(Instant),
    /// The next slot comes after the deadline; it is kept.
    TooLate,
    /// No usable slot left: reserve more.
    Empty,
}

impl Slots {
    /// Takes in the slots of `reservation`, whose answer came at `at`. The
    /// statement read the database's clock before the answer left, so the
    /// slots land on this clock no earlier than they are: a message may
    /// leave late, never early.
    fn fill(&mut self, reservation: Reservation, at: Instant, pace: &Pace) {
        let offset = reservation.first_us - reservation.now_us;
        let first = if offset >= 0 {
            at + Duration::from_micros(offset as u64)
        } else {
            at.checked_sub(Duration::from_micros(offset.unsigned_abs()))
                .unwrap_or(at)
        };
        *self = Slots {
            next: Some(first),
            left: pace.batch as u64,
            interval: pace.interval(),
            late: pace.late(),
        };
    }

    /// The next slot usable `now` for a message that must start by
    /// `deadline`. Slots too late to use (this worker was busy or idle
    /// while they passed) are dropped: they cost rate, never a burst.
    fn take(&mut self, now: Instant, deadline: Instant) -> Take {
        let Some(next) = self.next.filter(|_| self.left > 0) else {
            return Take::Empty;
        };
        let mut next = next;
        if let Some(overdue) = now.checked_duration_since(next + self.late).filter(|d| !d.is_zero()) {
            let stale = overdue.as_nanos().div_ceil(self.interval.as_nanos().max(1));
            let stale = u64::try_from(stale).unwrap_or(u64::MAX).min(self.left);
            self.left -= stale;
            if self.left == 0 {
                self.next = None;
                return Take::Empty;
            }
            next += self.interval * u32::try_from(stale).unwrap_or(u32::MAX);
        }
        if next > deadline {
            self.next = Some(next);
            return Take::TooLate;
        }
        self.left -= 1;
        self.next = Some(next + self.interval);
        Take::Slot(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(rate: u32) -> Pace {
        Pace::new(NonZeroU32::new(rate).unwrap())
    }

    #[test]
    fn the_pace_never_exceeds_the_rate_and_the_burst_is_a_quarter_second() {
        assert_eq!(
            pace(10),
            Pace {
                interval_us: 100_000,
                batch: 3,
                behind_us: 200_000,
                late_us: 225_000
            }
        );
        // 1/3 s rounded up: three slots take a hair over a second, not under.
        assert_eq!(pace(3).interval_us, 333_334);
        assert_eq!((pace(3).batch, pace(3).behind_us), (1, 0));
        assert_eq!((pace(1000).interval_us, pace(1000).batch), (1_000, 250));
        assert_eq!(pace(u32::MAX).interval_us, 1);
    }

    /// Any window of one second can hold the slots of a span of one second
    /// plus `late`; slots are an interval apart, so that is `rate + burst`
    /// at most, for every rate.
    #[test]
    fn a_second_plus_the_lateness_holds_at_most_rate_plus_burst_slots() {
        for rate in [1, 2, 3, 4, 5, 7, 10, 99, 100, 1000, 14_000] {
            let p = pace(rate);
            let span = 1_000_000 + p.late_us;
            // Slots at 0, interval, 2·interval, …: those strictly inside a
            // half-open span of length `span`.
            let slots = (span - 1) / p.interval_us + 1;
            assert!(slots <= i64::from(rate) + p.batch, "rate {rate}: {slots} slots");
        }
    }

    fn reservation(first_us: i64, now_us: i64) -> Reservation {
        Reservation { first_us, now_us }
    }

    #[test]
    fn slots_land_on_the_local_clock_and_are_taken_in_order() {
        let p = pace(10);
        let at = Instant::now() + Duration::from_secs(10);
        let far = at + Duration::from_secs(60);
        let mut slots = Slots::default();
        assert_eq!(slots.take(at, far), Take::Empty);
        // A quiet relay: the first slot lies the burst's span before now.
        slots.fill(reservation(5_000_000 - 200_000, 5_000_000), at, &p);
        let ms = Duration::from_millis;
        assert_eq!(slots.take(at, far), Take::Slot(at - ms(200)));
        assert_eq!(slots.take(at, far), Take::Slot(at - ms(100)));
        assert_eq!(slots.take(at, far), Take::Slot(at));
        assert_eq!(slots.take(at, far), Take::Empty);
        // Slots ahead of now, as when other workers hold the next ones.
        slots.fill(reservation(5_700_000, 5_000_000), at, &p);
        assert_eq!(slots.take(at, far), Take::Slot(at + ms(700)));
    }

    #[test]
    fn a_slot_after_the_deadline_is_kept_for_the_next_message() {
        let p = pace(10);
        let at = Instant::now() + Duration::from_secs(10);
        let mut slots = Slots::default();
        slots.fill(reservation(1_500_000, 1_000_000), at, &p);
        let ms = Duration::from_millis;
        assert_eq!(slots.take(at, at + ms(499)), Take::TooLate);
        assert_eq!(slots.take(at, at + ms(500)), Take::Slot(at + ms(500)));
    }

    #[test]
    fn slots_that_passed_unused_are_dropped_not_sent_at_once() {
        let p = pace(10);
        let at = Instant::now() + Duration::from_secs(10);
        let far = at + Duration::from_secs(60);
        let ms = Duration::from_millis;
        let mut slots = Slots::default();
        slots.fill(reservation(1_000_000, 1_000_000), at, &p);
        // Slots at +0, +100, +200 ms; usable until 225 ms after each. At
        // +300 ms the first (75 ms overdue) is gone, the second is not.
        assert_eq!(slots.take(at + ms(300), far), Take::Slot(at + ms(100)));
        // Long after all of them: none is used, more must be reserved.
        assert_eq!(slots.take(at + ms(5_000), far), Take::Empty);
        assert_eq!(slots.take(at + ms(5_000), far), Take::Empty);
    }
}
