//! Our reading of inbound mail against one we did not write: sisimai
//! (Debian's `libsisimai-perl`, the bounce-parsing library with the largest
//! public set of real bounces) reads every message in
//! `tests/fixtures/inbound/` through `tests/inbound_reference.pl`, and must
//! find the same reason and recipient we find. Where we differ on purpose
//! the difference is listed, with why, in
//! `tests/fixtures/inbound/sisimai-differences.tsv`; a listed difference
//! that no longer differs fails the test, so the list stays true.
//!
//! sisimai is installed by `.ci/run`; without it the test is listed as
//! skipped with the reason, except with CI=true, where it must run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gazette::inbound::classify;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

fn main() {
    let arguments = Arguments::from_args();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let trial = Trial::test("sisimai_finds_the_reasons_and_recipients_we_find", compare);
    let trial = match missing_sisimai() {
        Some(why) if !in_ci => {
            eprintln!("skipping the sisimai comparison: {why}");
            trial.with_ignored_flag(true).with_kind(format!("skipped: {why}"))
        }
        _ => trial,
    };
    libtest_mimic::run(&arguments, vec![trial]).exit();
}

fn missing_sisimai() -> Option<String> {
    match Command::new("perl").args(["-MSisimai", "-MJSON::PP", "-e1"]).output() {
        Err(error) => Some(format!("perl cannot be run: {error}")),
        Ok(out) if !out.status.success() => Some(format!(
            "perl cannot load Sisimai (`apt-get install libsisimai-perl`): {}",
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("")
        )),
        Ok(_) => None,
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inbound")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap_or_else(|e| panic!("{}: {e}", fixtures_dir().display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// A listed difference: (file, field, ours, sisimai's, why).
struct Listed {
    file: String,
    field: String,
    ours: String,
    theirs: String,
}

fn listed() -> Result<Vec<Listed>, Failed> {
    let text = std::fs::read_to_string(fixtures_dir().join("sisimai-differences.tsv"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != 5 || cells[4].trim().is_empty() {
            return Err(format!("sisimai-differences.tsv: {line:?} needs 5 cells, the last saying why").into());
        }
        out.push(Listed {
            file: cells[0].to_owned(),
            field: cells[1].to_owned(),
            ours: cells[2].to_owned(),
            theirs: cells[3].to_owned(),
        });
    }
    Ok(out)
}

fn compare() -> Result<(), Failed> {
    let files = fixtures();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inbound_reference.pl");
    let output = Command::new("perl").arg(script).args(&files).output()?;
    if !output.status.success() {
        return Err(format!(
            "inbound_reference.pl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let found: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout)?;
    let listed = listed()?;
    let mut used = vec![false; listed.len()];
    let mut problems = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let report = classify::message(&std::fs::read(path)?, &[]);
        let theirs = &found[&path.display().to_string()];
        // sisimai reads nothing from mail that is not a bounce, complaint
        // or auto-reply: ours must then be unknown too.
        let (their_reason, their_recipient) = match theirs {
            Value::Null => ("-".to_owned(), "-".to_owned()),
            v => (
                v["reason"].as_str().unwrap_or("-").to_owned(),
                v["recipient"]
                    .as_str()
                    .filter(|r| !r.is_empty())
                    .unwrap_or("-")
                    .to_owned(),
            ),
        };
        let our_reason = match report.reason {
            gazette::inbound::Reason::Undefined => "-".to_owned(),
            reason => reason.as_str().to_owned(),
        };
        let our_recipient = report.recipient.clone().unwrap_or_else(|| "-".to_owned());
        for (field, ours, theirs) in [
            ("reason", our_reason, their_reason),
            (
                "recipient",
                our_recipient.to_lowercase(),
                their_recipient.to_lowercase(),
            ),
        ] {
            let entry = listed.iter().position(|l| l.file == file && l.field == field);
            match (ours == theirs, entry) {
                (true, None) => {}
                (true, Some(i)) => {
                    used[i] = true;
                    problems.push(format!("{file}: {field} is listed as differing, but both say {ours}"));
                }
                (false, Some(i)) if listed[i].ours == ours && listed[i].theirs == theirs => used[i] = true,
                (false, _) => problems.push(format!("{file}: {field}: we say {ours}, sisimai says {theirs}")),
            }
        }
    }
    for (l, used) in listed.iter().zip(&used) {
        if !used {
            problems.push(format!("{}: a listed {} difference names no fixture", l.file, l.field));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}
