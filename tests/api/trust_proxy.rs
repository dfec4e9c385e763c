//! Gazette behind a reverse proxy: Debian's nginx runs the shipped
//! `deploy/nginx/gazette-proxy.conf` as it is, in front of the real app,
//! and clients on two loopback addresses (127.0.0.2 and 127.0.0.3) sign up
//! through it. Without nginx the test is skipped with the reason; with
//! CI=true it must run (`.ci/run` installs nginx).
//!
//! Also here: what a client talking to Gazette directly can and cannot
//! claim in `Forwarded` / `X-Forwarded-For`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use gazette::config::TrustedProxies;

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::nginx::Nginx;

fn shipped_proxy_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/gazette-proxy.conf")
}

/// nginx with the shipped proxy directives, in front of Gazette on
/// `upstream_port`.
fn proxy_in_front_of(upstream_port: u16) -> Nginx {
    Nginx::start(|dir, port| {
        format!(
            "access_log {}/access.log;\n\
             upstream gazette {{ server 127.0.0.1:{upstream_port}; }}\n\
             server {{\n\
             listen 127.0.0.1:{port};\n\
             include {};\n\
             }}",
            dir.display(),
            shipped_proxy_conf().display()
        )
    })
}

/// A client whose connections come from `source` (a loopback address).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn sign_up(client: &reqwest::Client, base: &str, email: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = client
        .post(format!("{base}/subscriptions"))
        .form(&[("name", "Reader"), ("email", email)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST /subscriptions").status().as_u16()
}

/// The address the consent record keeps for a reader.
async fn consent_ip(app: &TestApp, email: &str) -> Option<String> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT signup_ip FROM subscribers WHERE email_key = $1")
            .bind(email)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// Gazette trusting only the proxy on 127.0.0.1, two signups a minute per client.
async fn app_behind_a_proxy(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.limits.signups_per_ip_per_minute = 2;
        settings.server.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await
}

pub async fn two_clients_behind_nginx_are_limited_apart_and_recorded_with_their_own_addresses(backend: Backend) {
    let app = app_behind_a_proxy(&backend).await;
    let upstream_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let mut nginx = proxy_in_front_of(upstream_port);
    let (ada, bob) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    nginx.wait_until_it_answers(&ada, "/health_check").await;
    let site = nginx.url("");

    // Ada uses up her two signups; her claim to be Bob changes nothing.
    assert_eq!(sign_up(&ada, &site, "ada1@example.com", &[]).await, 200);
    let claim = [("X-Forwarded-For", "127.0.0.3"), ("Forwarded", "for=127.0.0.3")];
    assert_eq!(sign_up(&ada, &site, "ada2@example.com", &claim).await, 200);
    assert_eq!(sign_up(&ada, &site, "ada3@example.com", &claim).await, 429);
    // Bob, behind the same proxy, still has his own.
    assert_eq!(sign_up(&bob, &site, "bob1@example.com", &[]).await, 200);
    assert_eq!(sign_up(&bob, &site, "bob2@example.com", &[]).await, 200);
    assert_eq!(sign_up(&bob, &site, "bob3@example.com", &[]).await, 429);

    for (email, ip) in [
        ("ada1@example.com", "127.0.0.2"),
        ("ada2@example.com", "127.0.0.2"),
        ("bob1@example.com", "127.0.0.3"),
    ] {
        assert_eq!(consent_ip(&app, email).await.as_deref(), Some(ip), "{email}");
    }

    // /metrics is not proxied: nginx answers itself (no request id from Gazette).
    let metrics = ada.get(format!("{site}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 404);
    assert!(
        metrics.headers().get("x-request-id").is_none(),
        "{:?}",
        metrics.headers()
    );

    // A body as large as the biggest CSV import reaches Gazette (which asks
    // an anonymous visitor to log in) rather than nginx's 413.
    let body = vec![b'a'; gazette::web::admin::MAX_IMPORT_BYTES];
    let import = ada
        .post(format!("{site}/admin/subscribers/import"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(import.headers().get("x-request-id").is_some(), "nginx answered itself");
    assert_eq!(import.status(), 303);
}

/// Talking to Gazette directly, a client's forwarding headers are its own
/// words: the limit and the consent record go by its address. A trusted
/// peer's `Forwarded` is believed, and IPv6 clients share a limit per /64.
pub async fn forwarding_headers_count_only_from_a_trusted_proxy_and_ipv6_is_limited_per_64(backend: Backend) {
    let app = app_behind_a_proxy(&backend).await;
    let stranger = client_from("127.0.0.4");
    for (i, spoof) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"].iter().enumerate() {
        let forwarded = format!("for={spoof}");
        let headers = [("X-Forwarded-For", *spoof), ("Forwarded", forwarded.as_str())];
        let status = sign_up(&stranger, &app.address, &format!("s{i}@example.com"), &headers).await;
        assert_eq!(status, if i < 2 { 200 } else { 429 }, "signup {i}");
    }
    assert_eq!(consent_ip(&app, "s0@example.com").await.as_deref(), Some("127.0.0.4"));

    // 127.0.0.1 is the trusted proxy here.
    let proxy = client_from("127.0.0.1");
    let from = |client: &'static str| [("Forwarded", client)];
    let home = "for=\"[2001:db8:1:2::10]:5555\"";
    let same_64 = "for=\"[2001:db8:1:2:ffff::1]\"";
    let other_64 = "for=\"[2001:db8:1:3::10]\"";
    assert_eq!(sign_up(&proxy, &app.address, "v1@example.com", &from(home)).await, 200);
    assert_eq!(
        sign_up(&proxy, &app.address, "v2@example.com", &from(same_64)).await,
        200
    );
    assert_eq!(
        sign_up(&proxy, &app.address, "v3@example.com", &from(same_64)).await,
        429
    );
    assert_eq!(
        sign_up(&proxy, &app.address, "v4@example.com", &from(other_64)).await,
        200
    );
    assert_eq!(
        consent_ip(&app, "v1@example.com").await.as_deref(),
        Some("2001:db8:1:2::10")
    );
    assert_eq!(
        consent_ip(&app, "v4@example.com").await.as_deref(),
        Some("2001:db8:1:3::10")
    );
    // Headers that cannot be read are ignored: the proxy itself is the client.
    let garbled = [
        ("Forwarded", "for=\"[2001:db8::1"),
        ("X-Forwarded-For", "not, an, address"),
    ];
    assert_eq!(sign_up(&proxy, &app.address, "g1@example.com", &garbled).await, 200);
    assert_eq!(consent_ip(&app, "g1@example.com").await.as_deref(), Some("127.0.0.1"));
}

/// `server.trusted_proxies` is a TOML list, or a comma-separated environment
/// variable; a bad entry stops the process with one line naming the key and
/// the entry.
pub fn trusted_proxies_come_from_a_toml_list_or_an_env_list_and_a_bad_entry_is_named()
-> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("gazette-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let check = |toml: &str, env: Option<&str>| {
        std::fs::write(dir.join("default.toml"), format!("[server]\n{toml}\n")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gazette"));
        command.args(["config", "check"]).env("GAZETTE_CONFIG_DIR", &dir);
        if let Some(env) = env {
            command.env("GAZETTE_SERVER__TRUSTED_PROXIES", env);
        }
        command.output().unwrap()
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let listed = check(r#"trusted_proxies = ["10.0.0.0/8", "::1"]"#, None);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let stdout = text(&listed.stdout);
    assert!(
        stdout.contains(r#"server.trusted_proxies = "[10.0.0.0/8, ::1]""#),
        "{stdout}"
    );
    let from_env = check("", Some("10.0.0.0/8, 192.0.2.7"));
    assert!(from_env.status.success(), "{}", text(&from_env.stderr));

    for (toml, env, bad) in [
        (r#"trusted_proxies = ["10.0.0.0/8", "nope/99"]"#, None, "`nope/99`"),
        ("", Some("10.0.0.1,proxy.example.org"), "`proxy.example.org`"),
        ("", Some("10.0.0.0/33"), "`10.0.0.0/33`"),
    ] {
        let output = check(toml, env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("server.trusted_proxies") && stderr.contains(bad),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
