//! A restart behind the proxy loses no request. The test plays systemd's
//! part for `gazette-serve.socket`: it holds the listening socket and
//! passes it to the real `gazette serve` as file descriptor 3 with
//! LISTEN_FDS=1 and LISTEN_PID set to the child (a shell that execs the
//! binary keeps its pid), then, under a steady load of new and keep-alive
//! connections, stops that process with SIGTERM and starts the next on the
//! same socket, as `systemctl restart` does.

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::text;
use crate::helpers::{Backend, wait_until};

/// `gazette serve` on the socket `listener` holds, started as systemd
/// starts a socket-activated service. Its own `server.port` is a port
/// nobody connects to: requests reach it only through the passed socket.
fn start_on_socket(backend: &Backend, listener: &TcpListener) -> Child {
    let socket = OwnedFd::from(listener.try_clone().unwrap());
    Command::new("/bin/sh")
        .args([
            "-c",
            // The socket arrives as stdin; systemd's place for it is fd 3.
            r#"exec 3<&0 0</dev/null; export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_gazette"),
            "serve",
            "--no-worker",
            "--no-scheduler",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // As `helpers::gazette_command`: the checkout's configuration.
        .env("GAZETTE_CONFIG_DIR", "config")
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_SERVER__PORT", "1")
        .env("GAZETTE_METRICS__LISTEN", "")
        .env(
            "GAZETTE_LOG__LEVEL",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::from(socket))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gazette serve starts")
}

fn sigterm(child: &Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

async fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "gazette serve did not stop within {within:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    /// Responses that told the client to close the connection.
    closing: u64,
    /// Requests sent after the first process was told to stop and answered.
    answered_after_sigterm: u64,
    errors: Vec<String>,
}

/// Sends requests one after another until `stop`, on keep-alive
/// connections or on a new connection each time.
async fn client(
    base: String,
    keep_alive: bool,
    stop: Arc<AtomicBool>,
    sigterm_at: Arc<std::sync::Mutex<Option<Instant>>>,
) -> Tally {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if !keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    let http = builder.build().unwrap();
    let mut tally = Tally::default();
    let paths = ["/", "/health_check", "/archive"];
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) && tally.sent < 20_000 {
        let path = paths[i % paths.len()];
        i += 1;
        let sent_at = Instant::now();
        tally.sent += 1;
        match http.get(format!("{base}{path}")).send().await {
            Ok(response) => {
                let status = response.status();
                let closing = response
                    .headers()
                    .get("connection")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                match response.bytes().await {
                    Ok(_) if status == 200 => {
                        tally.answered += 1;
                        tally.closing += u64::from(closing);
                        if sigterm_at.lock().unwrap().is_some_and(|at| sent_at > at) {
                            tally.answered_after_sigterm += 1;
                        }
                    }
                    Ok(_) => tally.errors.push(format!("GET {path}: {status}")),
                    Err(e) => tally.errors.push(format!("GET {path}: body: {e:?}")),
                }
            }
            Err(e) => tally.errors.push(format!("GET {path}: {e:?}")),
        }
    }
    tally
}

pub async fn a_restart_on_the_passed_socket_answers_every_request_under_load(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut first = start_on_socket(&backend, &listener);
    let health = format!("{base}/health_check");
    wait_until(Duration::from_secs(20), "the first process to answer", || async {
        reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sigterm_at = Arc::new(std::sync::Mutex::new(None));
    let clients: Vec<_> = (0..6)
        .map(|n| tokio::spawn(client(base.clone(), n % 2 == 0, stop.clone(), sigterm_at.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    *sigterm_at.lock().unwrap() = Some(Instant::now());
    sigterm(&first);
    let stopped = wait_for_exit(&mut first, Duration::from_secs(20)).await;
    let mut said = String::new();
    std::io::Read::read_to_string(&mut first.stderr.take().unwrap(), &mut said).unwrap();
    assert!(stopped.success(), "the first process exited with {stopped}: {said}");
    // Requests sent from here on wait in the socket's backlog until the
    // next process accepts them.
    let mut second = start_on_socket(&backend, &listener);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_until(Duration::from_secs(20), "the second process to answer", || async {
        reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);

    let mut total = Tally::default();
    for (n, handle) in clients.into_iter().enumerate() {
        let tally = handle.await.unwrap();
        println!(
            "client {n} ({}): {} sent, {} answered, {} with Connection: close, {} answered after SIGTERM",
            if n % 2 == 0 { "keep-alive" } else { "new connections" },
            tally.sent,
            tally.answered,
            tally.closing,
            tally.answered_after_sigterm
        );
        assert!(
            tally.answered_after_sigterm > 0,
            "client {n} got no answer after the SIGTERM"
        );
        total.sent += tally.sent;
        total.answered += tally.answered;
        total.closing += tally.closing;
        total.errors.extend(tally.errors);
    }
    sigterm(&second);
    let stopped = wait_for_exit(&mut second, Duration::from_secs(20)).await;
    let mut said = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut said).unwrap();
    assert!(
        stopped.success(),
        "the second process exited with {stopped}: {}",
        text(said.as_bytes())
    );

    assert!(
        total.errors.is_empty(),
        "{} errors: {:?}",
        total.errors.len(),
        total.errors
    );
    assert_eq!(total.answered, total.sent);
    // The keep-alive clients were told to close while the first process
    // stopped (and again when the second did not: it stopped after them).
    assert!(total.closing > 0, "no response carried Connection: close");
}
