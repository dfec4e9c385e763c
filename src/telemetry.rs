//! Logging set-up: human-readable lines (or JSON objects, `log.format =
//! "json"`) on stderr, filtered by `RUST_LOG` when set, else by `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

const QUIET_NOTICES: &str = "sqlx::postgres::notice=warn";

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
    // actix's Logger writes through the `log` crate; tracing-subscriber's
    // default features bridge it, so request lines appear here too.
    // Colours only for a terminal: in a file or a journal the escape codes
    // would be noise around every line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        // The request span (request_id, method, path) rides on every event
        // logged while a request is handled.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}
