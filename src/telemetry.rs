//! Logging set-up: human-readable lines on stderr, filtered by `RUST_LOG`
//! when set, else by `log.level`.

use tracing_subscriber::EnvFilter;

pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // actix's Logger writes through the `log` crate; tracing-subscriber's
    // default features bridge it, so request lines appear here too.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
