//! What Gazette counts, and its exposition in the Prometheus text format
//! (version 0.0.4), written by hand: a few counters, one histogram, and the
//! queue gauges, which whoever serves `/metrics` reads (from the database,
//! see `crate::db::stats`) at most once per `metrics.cache_seconds` however
//! often it is scraped (counting the ledger scans the deliveries table).
//! This module records and writes; it reads nothing itself, so any module
//! may record here.
//!
//! Counters of the web role live in a [`Metrics`] value per application (so
//! two apps in one test process count apart); the SMTP send histogram is
//! process-wide, because the mail transport is created far from the web
//! layer and every send in the process should count.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Counters of one application's web role.
#[derive(Default)]
pub struct Metrics {
    signups: AtomicU64,
    confirmations: AtomicU64,
    unsubscribes: AtomicU64,
    confirmations_withheld: AtomicU64,
    /// (method, route pattern, status) → requests.
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    gauges: GaugeCache,
    /// Password checks of this application's staff logins.
    password_checks: std::sync::Arc<PasswordCheckGauges>,
}

/// How many password checks (argon2, 19 MiB each) run at once, the most
/// that ever did, and how many were refused because too many were running.
#[derive(Default)]
pub struct PasswordCheckGauges {
    running: AtomicU64,
    peak: AtomicU64,
    refused: AtomicU64,
}

impl PasswordCheckGauges {
    /// A check starts computing; dropping the guard ends it.
    pub fn start(&self) -> impl Drop + '_ {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        struct Running<'a>(&'a AtomicU64);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Running(&self.running)
    }

    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Metrics {
    /// Metrics whose database gauges are read at most once per `max_age`.
    pub fn with_gauge_cache(max_age: Duration) -> Self {
        Self {
            gauges: GaugeCache::new(max_age),
            ..Self::default()
        }
    }

    /// Where the staff logins' password checks report, for `/metrics`.
    pub fn password_checks(&self) -> std::sync::Arc<PasswordCheckGauges> {
        self.password_checks.clone()
    }

    /// A signup form accepted (new, pending or already confirmed alike).
    pub fn signup(&self) {
        self.signups.fetch_add(1, Ordering::Relaxed);
    }

    /// A reader confirmed their address.
    pub fn confirmation(&self) {
        self.confirmations.fetch_add(1, Ordering::Relaxed);
    }

    /// A reader unsubscribed (on the page or with one click).
    pub fn unsubscribe(&self) {
        self.unsubscribes.fetch_add(1, Ordering::Relaxed);
    }

    /// A signup refused because `limits.confirmations_per_hour` was
    /// reached: its confirmation email was withheld (nothing written).
    pub fn confirmation_withheld(&self) {
        self.confirmations_withheld.fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP request answered; `route` is the matched pattern (such as
    /// `/archive/{week}`), never the raw path, so labels stay few.
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *http.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
    }

    /// The whole exposition, with the queue and ledger gauges as last read
    /// (read now, with `read_gauges`, when that is older than the cache's
    /// age).
    pub async fn render<E, F: Future<Output = Result<Gauges, E>>>(
        &self,
        read_gauges: impl FnOnce() -> F,
    ) -> Result<String, E> {
        let mut out = String::new();
        counter(
            &mut out,
            "gazette_signups_total",
            "Signup forms accepted.",
            self.signups.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gazette_confirmations_total",
            "Readers who confirmed their address.",
            self.confirmations.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gazette_unsubscribes_total",
            "Readers who unsubscribed.",
            self.unsubscribes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gazette_confirmations_withheld_total",
            "Signups refused, and their confirmation email withheld, because the hourly cap on confirmation emails was reached.",
            self.confirmations_withheld.load(Ordering::Relaxed),
        );

        out.push_str("# HELP gazette_http_requests_total HTTP requests by method, route pattern and status.\n");
        out.push_str("# TYPE gazette_http_requests_total counter\n");
        {
            let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
            for ((method, route, status), count) in http.iter() {
                let _ = writeln!(
                    out,
                    "gazette_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(method),
                    escape(route)
                );
            }
        }

        let checks = &self.password_checks;
        out.push_str("# HELP gazette_password_checks_running Staff password checks computing now.\n");
        out.push_str("# TYPE gazette_password_checks_running gauge\n");
        let _ = writeln!(
            out,
            "gazette_password_checks_running {}",
            checks.running.load(Ordering::SeqCst)
        );
        out.push_str(
            "# HELP gazette_password_checks_peak The most staff password checks that ever computed at once.\n",
        );
        out.push_str("# TYPE gazette_password_checks_peak gauge\n");
        let _ = writeln!(out, "gazette_password_checks_peak {}", checks.peak());
        counter(
            &mut out,
            "gazette_password_checks_refused_total",
            "Staff logins answered 429 because too many password checks were running.",
            checks.refused.load(Ordering::Relaxed),
        );

        let gauges = self.gauges.current(Instant::now(), read_gauges).await?;
        let (transactional, digest) = (gauges.transactional, gauges.digest);
        out.push_str("# HELP gazette_queue_depth Messages waiting to be sent (queued or being sent), by kind.\n");
        out.push_str("# TYPE gazette_queue_depth gauge\n");
        let _ = writeln!(out, "gazette_queue_depth{{kind=\"transactional\"}} {transactional}");
        let _ = writeln!(out, "gazette_queue_depth{{kind=\"digest\"}} {digest}");

        out.push_str("# HELP gazette_deliveries Digest deliveries in the ledger, by outcome.\n");
        out.push_str("# TYPE gazette_deliveries gauge\n");
        for (status, count) in &gauges.deliveries {
            let _ = writeln!(out, "gazette_deliveries{{outcome=\"{}\"}} {count}", escape(status));
        }

        out.push_str(
            "# HELP gazette_inbound_messages_total Inbound messages (bounces, complaints, replies) read, by kind.\n",
        );
        out.push_str("# TYPE gazette_inbound_messages_total counter\n");
        for (kind, count) in &gauges.inbound {
            let _ = writeln!(
                out,
                "gazette_inbound_messages_total{{kind=\"{}\"}} {count}",
                escape(kind)
            );
        }

        out.push_str("# HELP gazette_webhook_deliveries Webhook deliveries (one event to one endpoint) in the ledger, by status.\n");
        out.push_str("# TYPE gazette_webhook_deliveries gauge\n");
        for (status, count) in &gauges.webhook_deliveries {
            let _ = writeln!(
                out,
                "gazette_webhook_deliveries{{status=\"{}\"}} {count}",
                escape(status)
            );
        }
        out.push_str(
            "# HELP gazette_webhook_attempts_total Webhook posts made, by outcome: delivered (2xx), retried, failed \
             (given up), disabled (410 Gone).\n",
        );
        out.push_str("# TYPE gazette_webhook_attempts_total counter\n");
        for (outcome, count) in &gauges.webhook_attempts {
            let _ = writeln!(
                out,
                "gazette_webhook_attempts_total{{outcome=\"{}\"}} {count}",
                escape(outcome)
            );
        }

        render_relays(&mut out, &gauges.relays);
        SMTP_SENDS.render(&mut out);
        Ok(out)
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The queue and ledger gauges, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    /// Transactional messages waiting to be sent.
    pub transactional: i64,
    /// Digest copies waiting to be sent.
    pub digest: i64,
    /// Digest deliveries by outcome; every outcome should be listed, zero
    /// when none has it, so its series exists from the first scrape on.
    pub deliveries: Vec<(String, i64)>,
    /// Every worker's relays, added up per relay.
    pub relays: Vec<RelayFigures>,
    /// Inbound messages read, by kind; every kind listed, zero when none.
    pub inbound: Vec<(String, i64)>,
    /// Webhook deliveries in the ledger, by status; every status listed.
    pub webhook_deliveries: Vec<(String, i64)>,
    /// Webhook attempts made, by outcome (`delivered`, `retried`, `failed`,
    /// `disabled`); every outcome listed.
    pub webhook_attempts: Vec<(String, i64)>,
}

/// The last [`Gauges`] read and when; one reading at a time, so a burst of
/// scrapes after it expires runs the queries once.
struct GaugeCache {
    max_age: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Arc<Gauges>)>>,
}

impl Default for GaugeCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

impl GaugeCache {
    fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The reading as of `now`: the last one while it is younger than the
    /// cache's age, else a new one from `read`.
    async fn current<E, F: Future<Output = Result<Gauges, E>>>(
        &self,
        now: Instant,
        read: impl FnOnce() -> F,
    ) -> Result<Arc<Gauges>, E> {
        let mut last = self.last.lock().await;
        if let Some((at, gauges)) = last.as_ref()
            && now.saturating_duration_since(*at) < self.max_age
        {
            return Ok(gauges.clone());
        }
        let gauges = Arc::new(read().await?);
        *last = Some((now, gauges.clone()));
        Ok(gauges)
    }
}

/// What one relay did, as a worker counted it (since it started), and
/// whether it is cooling down; `/metrics` of `serve` and the staff
/// dashboard read the same from every worker's row in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayFigures {
    /// `smtp://host:port`.
    pub relay: String,
    pub sent: u64,
    /// Not taken now (4xx, a dropped connection): tried again later.
    pub deferred: u64,
    /// Refused for good (5xx).
    pub failed: u64,
    /// Not reached (no connection, a timeout, 421 at the greeting): the
    /// message went to another relay, or was tried again later.
    pub unreachable: u64,
    /// Until when no message picks it; `None`: healthy.
    pub cooling_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The per-relay series: messages by outcome, and the cool-down state.
pub fn render_relays(out: &mut String, relays: &[RelayFigures]) {
    let name = "gazette_relay_messages_total";
    let _ = write!(
        out,
        "# HELP {name} Messages handed to each SMTP relay, by outcome.\n# TYPE {name} counter\n"
    );
    for figures in relays {
        let relay = escape(&figures.relay);
        for (outcome, count) in [
            ("sent", figures.sent),
            ("deferred", figures.deferred),
            ("failed", figures.failed),
            ("unreachable", figures.unreachable),
        ] {
            let _ = writeln!(out, "{name}{{relay=\"{relay}\",outcome=\"{outcome}\"}} {count}");
        }
    }
    let name = "gazette_relay_cooling_down";
    let _ = write!(
        out,
        "# HELP {name} 1 while the relay is cooling down (it could not be reached; its mail goes to the others), else 0.\n# TYPE {name} gauge\n"
    );
    for figures in relays {
        let cooling = u8::from(figures.cooling_until.is_some());
        let _ = writeln!(out, "{name}{{relay=\"{}\"}} {cooling}", escape(&figures.relay));
    }
    let name = "gazette_relay_cooling_down_until_seconds";
    let _ = write!(
        out,
        "# HELP {name} When the relay's cool-down ends (Unix time), for relays cooling down.\n# TYPE {name} gauge\n"
    );
    for figures in relays {
        if let Some(until) = figures.cooling_until {
            let _ = writeln!(
                out,
                "{name}{{relay=\"{}\"}} {}",
                escape(&figures.relay),
                until.timestamp()
            );
        }
    }
}

/// What `gazette worker` serves on `metrics.listen`: its send histogram
/// and its relays' figures (the queue gauges are `serve`'s).
pub fn render_worker(relays: &[RelayFigures]) -> String {
    let mut out = String::new();
    SMTP_SENDS.render(&mut out);
    render_relays(&mut out, relays);
    out
}

/// The outcome of one SMTP send, as the histogram labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SmtpOutcome {
    Sent,
    /// Retried later (4xx, dropped connection).
    Deferred,
    /// Refused for good (5xx).
    Refused,
}

impl SmtpOutcome {
    fn label(self) -> &'static str {
        match self {
            SmtpOutcome::Sent => "sent",
            SmtpOutcome::Deferred => "deferred",
            SmtpOutcome::Refused => "refused",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds: a local relay answers
/// in milliseconds, a remote one with TLS in tens to hundreds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct HistogramData {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

struct Histogram {
    by_outcome: Mutex<BTreeMap<SmtpOutcome, HistogramData>>,
}

static SMTP_SENDS: LazyLock<Histogram> = LazyLock::new(|| Histogram {
    by_outcome: Mutex::new(BTreeMap::new()),
});

impl Histogram {
    fn observe(&self, seconds: f64, outcome: SmtpOutcome) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let mut all = self.by_outcome.lock().unwrap_or_else(|e| e.into_inner());
        let data = all.entry(outcome).or_default();
        // Buckets are cumulative in the format: store them that way.
        for (bound, bucket) in BUCKETS.iter().zip(data.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        data.count += 1;
        data.sum += seconds;
    }

    fn render(&self, out: &mut String) {
        let name = "gazette_smtp_send_seconds";
        let _ = write!(
            out,
            "# HELP {name} Time to hand one message to the SMTP relay, by outcome.\n# TYPE {name} histogram\n"
        );
        let all = self.by_outcome.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (outcome, data) in all {
            let outcome = outcome.label();
            for (bound, count) in BUCKETS.iter().zip(data.buckets) {
                let _ = writeln!(out, "{name}_bucket{{outcome=\"{outcome}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {}", data.count);
            let _ = writeln!(out, "{name}_sum{{outcome=\"{outcome}\"}} {}", data.sum);
            let _ = writeln!(out, "{name}_count{{outcome=\"{outcome}\"}} {}", data.count);
        }
    }
}

/// Records how long one SMTP send took and how it ended.
pub fn observe_smtp_send(seconds: f64, outcome: SmtpOutcome) {
    SMTP_SENDS.observe(seconds, outcome);
}

/// Runs one SMTP send and records its duration and outcome: sent, or by
/// `is_permanent(error)` refused or deferred.
pub async fn timed_smtp_send<T, E>(
    send: impl Future<Output = Result<T, E>>,
    is_permanent: impl FnOnce(&E) -> bool,
) -> Result<T, E> {
    let started = Instant::now();
    let result = send.await;
    let outcome = match &result {
        Ok(_) => SmtpOutcome::Sent,
        Err(e) if is_permanent(e) => SmtpOutcome::Refused,
        Err(_) => SmtpOutcome::Deferred,
    };
    observe_smtp_send(started.elapsed().as_secs_f64(), outcome);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let histogram = Histogram {
            by_outcome: Mutex::new(BTreeMap::new()),
        };
        histogram.observe(0.003, SmtpOutcome::Sent);
        histogram.observe(0.2, SmtpOutcome::Sent);
        histogram.observe(f64::NAN, SmtpOutcome::Refused);
        let mut out = String::new();
        histogram.render(&mut out);
        assert!(
            out.contains("gazette_smtp_send_seconds_bucket{outcome=\"sent\",le=\"0.0025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("gazette_smtp_send_seconds_bucket{outcome=\"sent\",le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("gazette_smtp_send_seconds_bucket{outcome=\"sent\",le=\"0.25\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("gazette_smtp_send_seconds_bucket{outcome=\"sent\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("gazette_smtp_send_seconds_count{outcome=\"refused\"} 1\n"),
            "{out}"
        );
    }

    fn gauges(digest: i64) -> Result<Gauges, ()> {
        Ok(Gauges {
            transactional: 0,
            digest,
            deliveries: vec![],
            relays: vec![],
            inbound: vec![],
            webhook_deliveries: vec![],
            webhook_attempts: vec![],
        })
    }

    #[tokio::test]
    async fn gauges_are_read_once_per_cache_age() {
        let cache = GaugeCache::new(Duration::from_secs(5));
        let start = Instant::now();
        let reads = std::sync::atomic::AtomicU32::new(0);
        let read = |digest| {
            reads.fetch_add(1, Ordering::Relaxed);
            async move { gauges(digest) }
        };
        assert_eq!(cache.current(start, || read(1)).await.unwrap().digest, 1);
        // Within the age: the queue changed, the scrape still shows the reading.
        let later = start + Duration::from_millis(4999);
        assert_eq!(cache.current(later, || read(2)).await.unwrap().digest, 1);
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        // Once it is as old as the age, the next scrape reads again.
        let expired = start + Duration::from_secs(5);
        assert_eq!(cache.current(expired, || read(3)).await.unwrap().digest, 3);
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        // A failed reading keeps nothing: the next scrape tries again.
        let failed = expired + Duration::from_secs(6);
        assert!(cache.current(failed, || async { Err(()) }).await.is_err());
        assert_eq!(cache.current(failed, || read(4)).await.unwrap().digest, 4);
    }

    #[test]
    fn each_relay_has_its_outcomes_and_its_state() {
        let until = chrono::DateTime::from_timestamp(1_770_465_630, 0).unwrap();
        let relays = [
            RelayFigures {
                relay: "smtp://a.example.org:25".into(),
                sent: 7,
                deferred: 1,
                failed: 2,
                unreachable: 0,
                cooling_until: None,
            },
            RelayFigures {
                relay: "smtp://b.example.org:25".into(),
                sent: 0,
                deferred: 0,
                failed: 0,
                unreachable: 3,
                cooling_until: Some(until),
            },
        ];
        let mut out = String::new();
        render_relays(&mut out, &relays);
        for line in [
            "gazette_relay_messages_total{relay=\"smtp://a.example.org:25\",outcome=\"sent\"} 7\n",
            "gazette_relay_messages_total{relay=\"smtp://a.example.org:25\",outcome=\"failed\"} 2\n",
            "gazette_relay_messages_total{relay=\"smtp://b.example.org:25\",outcome=\"unreachable\"} 3\n",
            "gazette_relay_cooling_down{relay=\"smtp://a.example.org:25\"} 0\n",
            "gazette_relay_cooling_down{relay=\"smtp://b.example.org:25\"} 1\n",
            "gazette_relay_cooling_down_until_seconds{relay=\"smtp://b.example.org:25\"} 1770465630\n",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
        assert!(!out.contains("until_seconds{relay=\"smtp://a"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
