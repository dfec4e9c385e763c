//! Logging set-up: human-readable lines (or JSON objects, `log.format =
//! "json"`) on stderr, filtered by `RUST_LOG` when set, else by `log.level`.
//!
//! With `json`, every line is one object: `timestamp`, `level`, the
//! event's own fields at the top level (`message` and, for a request,
//! `method`, `path`, `status`, …), `target`, and `span` with the request's
//! `request_id` for events logged while a request is handled. No field
//! names a source file of the machine that built the binary: events from
//! the `log` crate lose their `log.file`/`log.line`, and a panic is logged
//! with its location relative to its crate ([`portable_location`]).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

const QUIET_NOTICES: &str = "sqlx::postgres::notice=warn";

/// Where a panic is logged.
const PANIC_TARGET: &str = "gazette::panic";

pub fn init(level: &str) {
    init_with(level, LogFormat::Human);
}

pub fn init_with(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(level)
            .unwrap_or_else(|_| EnvFilter::new("info"))
            // PostgreSQL's notices ("relation \"_sqlx_migrations\" already
            // exists, skipping" on every command) say nothing an operator
            // needs; its warnings still come through. RUST_LOG can ask for them.
            .add_directive(QUIET_NOTICES.parse().expect("a valid directive"))
    });
    // Libraries that write through the `log` crate (actix's server)
    // are bridged by tracing-subscriber's default features, so their
    // lines appear here too, in the same format.
    // Colours only for a terminal: in a file or a journal the escape codes
    // would be noise around every line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_file(false)
        .with_line_number(false)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        // Fields at the top level (`.status`, not `.fields.status`), as log
        // collectors index them; the request span (request_id, method,
        // path) rides on every event logged while a request is handled.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if installed.is_ok() {
        log_panics();
    }
}

/// A panic becomes an error event, so it is a JSON object like every
/// other line (the default hook writes plain text), and names its place
/// without the build machine's paths. When the filter would drop the
/// event, the default hook speaks instead: a panic is never silent.
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !tracing::enabled!(target: PANIC_TARGET, tracing::Level::ERROR) {
            return default(info);
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic without a message)");
        let location = info
            .location()
            .map(|l| format!("{}:{}", portable_location(l.file()), l.line()));
        let thread = std::thread::current();
        tracing::error!(
            target: PANIC_TARGET,
            panic = message,
            location,
            thread = thread.name().unwrap_or("unnamed"),
            "a thread panicked"
        );
    }));
}

/// A source file as the panic location gives it, without where the build
/// machine kept it: the crate's own files are relative already
/// (`src/web/mod.rs`); a dependency's absolute path under the cargo home
/// keeps its crate and version (`actix-server-2.5.0/src/worker.rs`); any
/// other absolute path keeps its file name only.
pub fn portable_location(file: &str) -> String {
    if !file.starts_with('/') && !file.contains(":\\") {
        return file.to_owned();
    }
    let parts: Vec<&str> = file.split(['/', '\\']).collect();
    // …/registry/src/<index>/<crate-version>/… and …/git/checkouts/<repo>/<rev>/…
    let crate_dir = parts.windows(2).enumerate().find_map(|(at, w)| match (w[0], w[1]) {
        ("registry", "src") => Some(at + 3),
        ("git", "checkouts") => Some(at + 2),
        _ => None,
    });
    match crate_dir {
        Some(from) if parts.len() > from + 1 => parts[from..].join("/"),
        _ => parts.last().copied().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::portable_location;

    #[test]
    fn locations_keep_no_path_of_the_build_machine() {
        assert_eq!(portable_location("src/web/mod.rs"), "src/web/mod.rs");
        assert_eq!(
            portable_location(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/actix-server-2.5.0/src/worker.rs"
            ),
            "actix-server-2.5.0/src/worker.rs"
        );
        assert_eq!(
            portable_location("/home/ci/.cargo/git/checkouts/lettre-0123abcd/4f5e6d7/src/lib.rs"),
            "lettre-0123abcd/4f5e6d7/src/lib.rs"
        );
        assert_eq!(
            portable_location("/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/option.rs"),
            "option.rs"
        );
        assert_eq!(
            portable_location("C:\\Users\\ci\\.cargo\\registry\\src\\index\\tokio-1.0.0\\src\\lib.rs"),
            "tokio-1.0.0/src/lib.rs"
        );
    }
}
