//! What an operator installs from `deploy/systemd`, checked by systemd's own
//! `systemd-analyze` (verify, security, calendar), and the one clock of the
//! weekly issue: `gazette dispatch --scheduled` (what the timer runs) and the
//! built-in scheduler of `gazette serve` make up a missed run as that run's
//! week, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use gazette::config::{CronSchedule, ScheduleSettings, ScheduleTimezone};
use gazette::domain::IssueWeek;

use crate::cli::{FIXTURE, import, run, text};
use crate::helpers::{Backend, gazette_command, test_settings};

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd");
const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";
/// `systemd-analyze security` calls 0.0–3.0 (of 10) "OK"; above is "MEDIUM".
const MOST_EXPOSURE: f64 = 3.0;

/// Why the systemd tests cannot run here, if they cannot (Debian's package
/// `systemd` has the tool; `.ci/run` installs it).
pub fn missing_systemd_analyze() -> Option<String> {
    match Command::new(SYSTEMD_ANALYZE).arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("{SYSTEMD_ANALYZE} --version failed: {}", text(&out.stderr))),
        Err(e) => Some(format!("{SYSTEMD_ANALYZE} cannot run ({e}); install Debian's systemd")),
    }
}

fn unit_files() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(UNITS)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ["service", "socket", "timer"].contains(&ext.to_str().unwrap()))
        })
        .collect();
    units.sort();
    units
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

/// A root directory as a Debian system would have it for these units:
/// systemd's own units (sysinit.target, …), the shipped units in
/// /etc/systemd/system, and, when `with_binary`, the built `gazette` as
/// /usr/local/bin/gazette, where the units' ExecStart looks for it.
fn system_root(with_binary: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("deploy-root-{}", uuid::Uuid::new_v4().simple()));
    let system = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&system).unwrap();
    for entry in std::fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), system.join(entry.file_name())).unwrap();
        }
    }
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    for unit in unit_files() {
        std::fs::copy(&unit, etc.join(file_name(&unit))).unwrap();
    }
    if with_binary {
        let bin = root.join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let built = Path::new(env!("CARGO_BIN_EXE_gazette"));
        // A hard link where the target directory allows it (the binary is large).
        std::fs::hard_link(built, bin.join("gazette"))
            .or_else(|_| std::fs::copy(built, bin.join("gazette")).map(|_| ()))
            .unwrap();
    }
    root
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(SYSTEMD_ANALYZE).args(args).output().unwrap()
}

pub fn the_units_pass_systemd_analyze_verify_and_rate_ok_in_security() -> Result<(), libtest_mimic::Failed> {
    let units: Vec<String> = unit_files().iter().map(|u| file_name(u)).collect();
    for expected in [
        "gazette-dispatch.service",
        "gazette-dispatch.timer",
        "gazette-serve.service",
        "gazette-serve.socket",
        "gazette-worker.service",
    ] {
        assert!(units.contains(&expected.to_owned()), "{expected} in {units:?}");
    }

    // Without the binary, verify must name the missing ExecStart: the
    // check below is live.
    let bare = system_root(false);
    let mut args = vec!["verify".to_owned(), format!("--root={}", bare.display())];
    args.extend(units.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let missing = analyze(&args);
    assert!(!missing.status.success(), "verify passed without the binary");
    assert!(
        text(&missing.stderr).contains("/usr/local/bin/gazette is not executable"),
        "{}",
        text(&missing.stderr)
    );
    std::fs::remove_dir_all(&bare).unwrap();

    let root = system_root(true);
    let root_arg = format!("--root={}", root.display());
    let mut args = vec!["verify", root_arg.as_str()];
    args.extend(units.iter().map(String::as_str));
    let verified = analyze(&args);
    assert!(
        verified.status.success() && verified.stderr.is_empty() && verified.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );

    let threshold = format!("--threshold={}", (MOST_EXPOSURE * 10.0) as u32);
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let path = root.join("etc/systemd/system").join(unit);
        let path = path.to_str().unwrap();
        let rated = analyze(&["security", "--offline=yes", &root_arg, &threshold, "--no-pager", path]);
        let out = text(&rated.stdout);
        let exposure: f64 = out
            .lines()
            .find_map(|line| {
                line.split_once(&format!("Overall exposure level for {unit}: "))?
                    .1
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no overall exposure for {unit}: {out}{}", text(&rated.stderr)));
        println!("{unit}: exposure {exposure}");
        assert!(
            exposure <= MOST_EXPOSURE && rated.status.success(),
            "{unit}: exposure {exposure} (at most {MOST_EXPOSURE}):\n{out}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
    Ok(())
}

/// The timer only wakes `gazette dispatch --scheduled`; the time is
/// `schedule.cron` in `schedule.timezone`. Whatever the sample production
/// configuration's schedule, the timer (as systemd reads its OnCalendar=)
/// fires within 15 minutes after each scheduled run, so the README's
/// promise holds.
pub fn the_dispatch_timer_fires_within_15_minutes_of_every_scheduled_run() -> Result<(), libtest_mimic::Failed> {
    let timer = std::fs::read_to_string(Path::new(UNITS).join("gazette-dispatch.timer")).unwrap();
    let calendar = timer
        .lines()
        .find_map(|line| line.strip_prefix("OnCalendar="))
        .expect("OnCalendar= in the timer");
    assert!(timer.lines().any(|line| line == "Persistent=true"), "{timer}");
    let production = config::Config::builder()
        .add_source(config::File::with_name(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/production.toml"
        )))
        .build()
        .unwrap();
    let schedule = ScheduleSettings {
        enabled: false,
        cron: CronSchedule::parse(&production.get_string("schedule.cron").unwrap()).unwrap(),
        timezone: ScheduleTimezone::parse(&production.get_string("schedule.timezone").unwrap()).unwrap(),
        grace_hours: 24,
    };
    let mut at = Utc::now();
    for _ in 0..6 {
        at = schedule.next_after(at).unwrap();
        // systemd's next elapse at or after the scheduled instant.
        let base = format!("--base-time=@{}", at.timestamp() - 1);
        let out = Command::new(SYSTEMD_ANALYZE)
            .args(["calendar", &base, calendar])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let printed = text(&out.stdout);
        assert!(out.status.success(), "{printed}{}", text(&out.stderr));
        let late = next_elapse(&printed) - at.timestamp();
        assert!(
            (0..=15 * 60).contains(&late),
            "the timer fires {late} s after the run of {at}: {printed}"
        );
    }
    Ok(())
}

/// The epoch seconds of "Next elapse:" in `systemd-analyze calendar`'s
/// output, run with TZ=UTC.
fn next_elapse(printed: &str) -> i64 {
    let utc = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("Next elapse: "))
        .unwrap_or_else(|| panic!("no next elapse in {printed}"));
    // "Fri 2026-12-04 08:00:00 UTC"
    let stamp = utc.split_whitespace().skip(1).take(2).collect::<Vec<_>>().join(" ");
    chrono::NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{utc}: {e}"))
        .and_utc()
        .timestamp()
}

/// A missed run ten days ago: its week is never this week, whatever day
/// the test runs. A yearly pattern names it (the day and month), so it is
/// the last run before now.
fn run_ten_days_ago() -> (DateTime<Utc>, String) {
    let at = (Utc::now() - chrono::Duration::days(10))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} {} {} *", at.minute(), at.hour(), at.day(), at.month());
    (at, cron)
}

/// Three confirmed readers, one article before the missed run and one after.
async fn readers_and_articles_around(backend: &Backend, at: DateTime<Utc>) {
    let csv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readers-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &csv,
        "email,name\nada@example.com,Ada\nbob@example.com,Bob\ncal@example.com,Cal\n",
    )
    .unwrap();
    let imported = run(
        backend,
        &["subscribers", "import", csv.to_str().unwrap(), "--confirmed"],
    )
    .await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    std::fs::remove_file(csv).unwrap();
    for (url, published) in [
        ("https://example.org/before", at - chrono::Duration::days(1)),
        ("https://example.org/after", at + chrono::Duration::days(1)),
    ] {
        let published = published.to_rfc3339();
        let out = import(backend, &[FIXTURE, "--url", url, "--published", &published]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

async fn issue_weeks(backend: &Backend) -> Vec<String> {
    let db = gazette::app::database(&test_settings(backend, 25), gazette::app::Schema::Check)
        .await
        .unwrap();
    let weeks: Vec<String> = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT week FROM issues ORDER BY week").fetch_all(pool).await.unwrap()
    });
    db.close().await;
    weeks
}

async fn dispatch_scheduled(backend: &Backend, env: &[(&str, &str)]) -> std::process::Output {
    let url = backend.database_url().to_owned();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        gazette_command()
            .args(["dispatch", "--scheduled"])
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_SCHEDULE__TIMEZONE", "UTC")
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub async fn a_timer_run_after_an_outage_dispatches_the_missed_runs_week_as_of_its_time(backend: Backend) {
    let (at, cron) = run_ten_days_ago();
    let week = IssueWeek::of(at, chrono_tz::Tz::UTC).to_string();
    assert_ne!(week, IssueWeek::of(Utc::now(), chrono_tz::Tz::UTC).to_string());
    readers_and_articles_around(&backend, at).await;

    // The built-in scheduler is on (the default): a timer or cron running
    // the command too would be two clocks. Refused before anything is read.
    let refused = dispatch_scheduled(&backend, &[("GAZETTE_SCHEDULE__CRON", &cron)]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("schedule.enabled = false"),
        "{}",
        text(&refused.stderr)
    );
    assert!(issue_weeks(&backend).await.is_empty());

    let off = |grace: &'static str| {
        [
            ("GAZETTE_SCHEDULE__ENABLED", "false"),
            ("GAZETTE_SCHEDULE__CRON", cron.as_str()),
            ("GAZETTE_SCHEDULE__GRACE_HOURS", grace),
        ]
    };
    // Ten days late with a day of grace (a timer firing at boot after a
    // long outage): the week is skipped, and says so.
    let skipped = dispatch_scheduled(&backend, &off("24")).await;
    assert!(skipped.status.success(), "{}", text(&skipped.stderr));
    let said = text(&skipped.stdout);
    assert!(
        said.starts_with(&format!("{week}: the run of ")) && said.contains("skipped"),
        "{said}"
    );
    assert!(issue_weeks(&backend).await.is_empty());

    // Within the grace: that run's week, as of its time. The article from
    // the day after the run waits for the next issue.
    let made_up = dispatch_scheduled(&backend, &off("264")).await;
    assert!(made_up.status.success(), "{}", text(&made_up.stderr));
    let said = text(&made_up.stdout);
    assert!(
        said.starts_with(&format!(
            "{week}: issue queued for 3 readers (1 articles) for the run of "
        )),
        "{said}"
    );
    assert_eq!(issue_weeks(&backend).await, std::slice::from_ref(&week));

    // Every later run finds it done.
    let again = dispatch_scheduled(&backend, &off("264")).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).starts_with(&format!("{week}: already dispatched for the run of ")),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(issue_weeks(&backend).await, [week]);
}

pub async fn serve_started_after_an_outage_dispatches_the_missed_runs_week_as_of_its_time(backend: Backend) {
    let (at, cron) = run_ten_days_ago();
    let week = IssueWeek::of(at, chrono_tz::Tz::UTC).to_string();
    readers_and_articles_around(&backend, at).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One pool for the whole wait (not one per poll), and serve's log kept
    // so a run that does not come shows why.
    let db = gazette::app::database(&test_settings(&backend, 25), gazette::app::Schema::Check)
        .await
        .unwrap();
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
    let mut serve = gazette_command()
        .args(["serve", "--no-worker"])
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_SERVER__PORT", port.to_string())
        .env("GAZETTE_SCHEDULE__ENABLED", "true")
        .env("GAZETTE_SCHEDULE__CRON", &cron)
        .env("GAZETTE_SCHEDULE__TIMEZONE", "UTC")
        .env("GAZETTE_SCHEDULE__GRACE_HOURS", "264")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let weeks = || async {
        gazette::with_pool!(&db, pool => {
            sqlx::query_scalar::<_, String>("SELECT week FROM issues ORDER BY week")
                .fetch_all(pool)
                .await
                .unwrap()
        })
    };
    let made_up = tokio::time::timeout(Duration::from_secs(20), async {
        while weeks().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    let _ = serve.kill();
    let _ = serve.wait();
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_file(&log).unwrap();
    assert!(
        made_up.is_ok(),
        "serve did not make up the missed run within 20 s; it printed:\n{printed}"
    );
    assert_eq!(weeks().await, [week], "{printed}");
    let deliveries: i64 = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries").fetch_one(pool).await.unwrap()
    });
    db.close().await;
    assert_eq!(deliveries, 3);
}
