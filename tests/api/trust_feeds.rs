//! Feed import by URL fetches only what it should, off the request path,
//! and outside text reaches the terminal escaped.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gazette::digest::fetch::{FetchError, FetchPolicy, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::admin::{StaffClient, staff_session};
use crate::cli::text;
use crate::helpers::{Backend, spawn_app, spawn_app_with, wait_until};

const FEED: &[u8] = include_bytes!("../fixtures/central-asia.rss");

/// What a test server answers to a path: status line, extra headers, body.
type Answer = (&'static str, String, Vec<u8>);

/// A real HTTP server on `ip`, port chosen by the system, that records the
/// path of every request it gets. With a `gate`, each answer waits for a
/// permit (the test decides when the feed "arrives").
struct TestServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    async fn start(ip: IpAddr, answer: fn(&str, u16) -> Answer, gate: Option<Arc<Semaphore>>) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    seen.lock().unwrap().push(path.clone());
                    if let Some(gate) = gate {
                        gate.acquire().await.unwrap().forget();
                    }
                    let (status, headers, body) = answer(&path, port);
                    let head = format!(
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        Self { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A feed at `/feed.rss`, an HTML page at `/page.html`, 404 elsewhere.
fn feed_site(path: &str, _port: u16) -> Answer {
    match path {
        "/feed.rss" => ("200 OK", "Content-Type: application/rss+xml\r\n".into(), FEED.to_vec()),
        "/page.html" => (
            "200 OK",
            "Content-Type: text/html\r\n".into(),
            b"<!doctype html><title>Hi</title><p>Not a feed.".to_vec(),
        ),
        _ => ("404 Not Found", String::new(), b"no".to_vec()),
    }
}

/// `gazette articles import URL` with `feeds.allow_private_addresses` set as given.
async fn import_url(backend: &Backend, url: &str, allow_private: bool) -> std::process::Output {
    let database = backend.database_url().to_owned();
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["articles", "import", &url])
            .env("GAZETTE_DATABASE__URL", database)
            .env("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", allow_private.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn assert_refused(output: &std::process::Output, url: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
    assert!(
        stderr.contains("refused address") && stderr.contains("public addresses only"),
        "{url}: {stderr}"
    );
}

pub async fn a_feed_on_this_machine_or_a_metadata_address_is_refused_and_never_requested(backend: Backend) {
    let server = TestServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), feed_site, None).await;
    let port = server.port;
    for url in [
        format!("http://127.0.0.1:{port}/feed.rss"),
        // A host name is checked where it is resolved.
        format!("http://localhost:{port}/feed.rss"),
        format!("http://[::ffff:127.0.0.1]:{port}/feed.rss"),
        format!("http://2130706433:{port}/feed.rss"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        assert_refused(&import_url(&backend, &url, false).await, &url);
    }
    assert_eq!(server.requests(), Vec::<String>::new(), "nothing was fetched");

    // An operator with intranet feeds turns the setting on.
    let local = format!("http://127.0.0.1:{port}/feed.rss");
    let output = import_url(&backend, &local, true).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(server.requests(), vec!["/feed.rss".to_owned()]);
    // Link-local and cloud metadata addresses stay refused even then.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/",
    ] {
        assert_refused(&import_url(&backend, url, true).await, url);
    }

    // Errors name the class of problem, not the system's words for it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (format!("http://127.0.0.1:{closed}/feed.rss"), "cannot be reached"),
        (
            format!("http://127.0.0.1:{port}/gone.rss"),
            "answered HTTP status 404 Not Found",
        ),
        (format!("http://127.0.0.1:{port}/page.html"), "not a feed"),
    ];
    for (url, class) in cases {
        let output = import_url(&backend, &url, true).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains(class), "{url}: {stderr}");
        for internal in ["os error", "Connection refused", "error sending request", "tcp connect"] {
            assert!(!stderr.contains(internal), "{url}: {stderr}");
        }
    }
}

/// The one address the redirect test counts as public: a second loopback
/// address, so a real server can stand for "a public host" while every
/// other address is judged by the real policy.
const STAND_IN_PUBLIC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn public_or_stand_in(ip: IpAddr) -> bool {
    ip == IpAddr::V4(STAND_IN_PUBLIC) || FetchPolicy::PUBLIC_ONLY.permits(ip)
}

static PRIVATE_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// The "public" site: redirects to where the path says.
fn redirecting_site(path: &str, _port: u16) -> Answer {
    let private = PRIVATE_PORT.load(std::sync::atomic::Ordering::SeqCst);
    let to = |location: String| ("302 Found", format!("Location: {location}\r\n"), Vec::new());
    match path {
        "/to-literal" => to(format!("http://127.0.0.1:{private}/feed.rss")),
        "/to-name" => to(format!("http://localhost:{private}/feed.rss")),
        "/to-mapped" => to(format!("http://[::ffff:7f00:1]:{private}/feed.rss")),
        "/to-metadata" => to("http://169.254.169.254/latest/meta-data/".into()),
        "/to-file" => to("file:///etc/passwd".into()),
        "/moved" => to("/feed.rss".into()),
        "/loop" => to("/loop".into()),
        "/huge" => (
            "200 OK",
            String::new(),
            vec![b' '; gazette::digest::fetch::MAX_FEED_BYTES + 1],
        ),
        other => feed_site(other, 0),
    }
}

/// Redirects are followed by hand and each hop is checked like the first
/// (and a body past the size cap is refused).
/// To try that for real a test needs a host the checker counts as public
/// that it can also run a server on; the policy is injectable, and this
/// test counts exactly one loopback address (127.0.0.2) as public. Every
/// other address, including the redirect targets, is judged by the real
/// policy, whose classification has its own unit tests.
pub fn each_redirect_hop_is_checked_before_it_is_requested() -> Result<(), libtest_mimic::Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let private = TestServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), feed_site, None).await;
        PRIVATE_PORT.store(private.port, std::sync::atomic::Ordering::SeqCst);
        let public = TestServer::start(IpAddr::V4(STAND_IN_PUBLIC), redirecting_site, None).await;
        let fetcher = Fetcher::new(FetchPolicy::custom(public_or_stand_in));
        let at = |path: &str| url::Url::parse(&format!("http://{STAND_IN_PUBLIC}:{}{path}", public.port)).unwrap();

        let moved = fetcher
            .fetch(&at("/moved"))
            .await
            .expect("a redirect on the public host is followed");
        assert_eq!(moved.body, FEED);
        assert_eq!(moved.url, at("/feed.rss"));

        for path in ["/to-literal", "/to-name", "/to-mapped", "/to-metadata"] {
            match fetcher.fetch(&at(path)).await {
                Err(FetchError::RefusedAddress(_)) => {}
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(
            fetcher.fetch(&at("/to-file")).await,
            Err(FetchError::NotWeb(_))
        ));
        assert!(matches!(
            fetcher.fetch(&at("/loop")).await,
            Err(FetchError::TooManyRedirects(_))
        ));
        let huge = fetcher.fetch(&at("/huge")).await.unwrap_err();
        assert!(matches!(huge, FetchError::TooLarge(_)), "{huge:?}");
        assert!(huge.to_string().starts_with("too large:"), "{huge}");
        assert_eq!(private.requests(), Vec::<String>::new(), "no refused hop was requested");
        let asked = public.requests();
        for path in ["/to-literal", "/to-name", "/to-mapped", "/to-metadata"] {
            assert!(asked.contains(&path.to_owned()), "{asked:?}");
        }
        // Without the stand-in, the "public" host itself is refused.
        let strict = Fetcher::new(FetchPolicy::PUBLIC_ONLY);
        assert!(matches!(
            strict.fetch(&at("/moved")).await,
            Err(FetchError::RefusedAddress(_))
        ));
    });
    Ok(())
}

/// A server that takes the connection and never answers: the class is a
/// timeout, and the fetch gives up on time.
pub fn a_feed_that_never_answers_is_a_timeout() -> Result<(), libtest_mimic::Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let silent = TestServer::start(
            IpAddr::V4(STAND_IN_PUBLIC),
            feed_site,
            Some(Arc::new(Semaphore::new(0))),
        )
        .await;
        let fetcher = Fetcher::with_timeout(FetchPolicy::custom(public_or_stand_in), Duration::from_secs(1));
        let url = url::Url::parse(&format!("http://{STAND_IN_PUBLIC}:{}/feed.rss", silent.port)).unwrap();
        let error = fetcher.fetch(&url).await.unwrap_err();
        assert!(matches!(error, FetchError::Timeout { .. }), "{error:?}");
        assert!(error.to_string().starts_with("timeout:"), "{error}");
        assert_eq!(silent.requests(), vec!["/feed.rss".to_owned()]);
    });
    Ok(())
}

/// Posts the import form and follows the answer to the import's page until
/// the import has finished; returns that page.
pub async fn import_by_url(staff: &mut StaffClient, feed: &str) -> String {
    let response = staff.post("/admin/articles/import", &[("feed_url", feed)]).await;
    assert_eq!(response.status(), 303);
    let job = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(job.starts_with("/admin/articles/imports/"), "{job}");
    poll_until(staff, &job, |page| {
        page.contains("Feed imported:") || page.contains("The feed was not imported")
    })
    .await
}

/// The import's page, fetched until `finished` holds (at most 20 s).
async fn poll_until(staff: &StaffClient, job: &str, finished: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = staff.get(job).await.text().await.unwrap();
        if finished(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import did not finish: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn an_import_by_url_returns_at_once_and_its_page_shows_progress_then_the_counts(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.feeds.allow_private_addresses = true).await;
    let mut staff = staff_session(&app).await;
    // The feed's server holds its answer until the test lets it go.
    let gate = Arc::new(Semaphore::new(0));
    let server = TestServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), feed_site, Some(gate.clone())).await;
    staff.page("/admin/articles").await;
    let feed = format!("http://127.0.0.1:{}/feed.rss", server.port);
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        staff.post("/admin/articles/import", &[("feed_url", &feed)]),
    )
    .await
    .expect("the form answers while the feed is still being fetched");
    assert_eq!(response.status(), 303);
    let job = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(job.starts_with("/admin/articles/imports/"), "{job}");

    wait_until(Duration::from_secs(10), "the feed to be requested", || async {
        !server.requests().is_empty()
    })
    .await;
    let page = staff.page(&job).await;
    assert!(page.contains("fetching the feed"), "{page}");
    assert!(page.contains(r#"<meta http-equiv="refresh" content="2">"#), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 0);

    gate.add_permits(1);
    let done = poll_until(&staff, &job, |page| page.contains("Feed imported:")).await;
    assert!(
        done.contains("Feed imported: 2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{done}"
    );
    assert!(
        !done.contains("http-equiv=\"refresh\""),
        "a finished import stops refreshing"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM feed_imports WHERE status = 'done'")
            .await,
        1
    );

    // With the default policy, the staff see the class of problem and the
    // server is never asked.
    let strict = spawn_app(&backend).await;
    // The same database: the staff member logs in there too.
    let mut staff = StaffClient::new(&strict);
    let logged_in = staff
        .log_in(crate::admin::STAFF_EMAIL, crate::admin::STAFF_PASSWORD)
        .await;
    assert_eq!(logged_in.status(), 303);
    staff.page("/admin/articles").await;
    let before = server.requests().len();
    let page = import_by_url(&mut staff, &feed).await;
    assert!(
        page.contains("The feed was not imported") && page.contains("refused address"),
        "{page}"
    );
    assert_eq!(server.requests().len(), before, "nothing was fetched");
}

/// `gazette ARGS…` on the test's database, without the app's own (coloured)
/// log lines: what is left is what the command prints.
async fn run_quiet(backend: &Backend, args: &[&str]) -> (String, String) {
    let database = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("GAZETTE_DATABASE__URL", database)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (text(&output.stdout), text(&output.stderr))
}

pub async fn outside_text_with_control_characters_is_escaped_on_the_terminal(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("gazette-escape-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    let feed = dir.join("feed.json");
    // A title that clears the screen and one that reverses the line (a bidi
    // override is not a control character to the title's own parser).
    std::fs::write(
        &feed,
        format!(
            r#"{{"version": "https://jsonfeed.org/version/1.1", "title": "Hostile",
                "items": [
                  {{"id": "1", "title": "\u001b[2J\u001b[31mPwned\u001b[0m\rOK", "content_text": "Body."}},
                  {{"id": "2", "url": "https://news.example.org/bidi", "title": "Invoice \u202egpj.exe",
                    "content_text": "It happened. It mattered.", "date_published": "{now}"}}
                ]}}"#
        ),
    )
    .unwrap();
    let (out, err) = run_quiet(&backend, &["articles", "import", feed.to_str().unwrap()]).await;
    assert!(
        out.contains("1 added, 0 updated, 0 unchanged, 1 rejected"),
        "{out}{err}"
    );
    assert!(err.contains(r"\e[2J\e[31mPwned\e[0m\rOK"), "{err}");

    let (shown, _) = run_quiet(&backend, &["dispatch", "--dry-run"]).await;
    assert!(shown.contains(r"Invoice \u{202e}gpj.exe"), "{shown}");

    let csv = dir.join("readers.csv");
    std::fs::write(
        &csv,
        "email,name\n\u{1b}[2J\u{1b}]0;owned\u{7}@example.com,Eve\nok@example.com,\u{9b}31mMallory\u{202e}\n",
    )
    .unwrap();
    let (_, csv_err) = run_quiet(
        &backend,
        &["subscribers", "import", csv.to_str().unwrap(), "--confirmed"],
    )
    .await;
    assert!(
        csv_err.contains("rejected line 2") && csv_err.contains("rejected line 3"),
        "{csv_err}"
    );

    for (what, printed) in [
        ("feed import", format!("{out}{err}")),
        ("dry run", shown),
        ("CSV import", csv_err),
    ] {
        let raw: Vec<char> = printed
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
            .collect();
        assert!(raw.is_empty(), "{what} printed raw controls {raw:?}: {printed:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
