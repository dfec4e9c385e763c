//! The IMAP poller against a real Dovecot (Debian's `dovecot-imapd`), each
//! test starting its own with a throwaway configuration: a passwd-file
//! user, a maildir in a temporary directory, a free port (plain IMAP and
//! IMAP over TLS with a certificate from a test CA). Messages are APPENDed
//! over IMAP as a mail server would deliver them, and `gazette serve` polls.
//! Without Dovecot the tests are skipped with the reason; with CI=true they
//! must run (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gazette::config::Settings;
use gazette::db::Db;
use gazette::with_pool;

use crate::helpers::{Backend, ServeProcess, free_port, test_settings, wait_until};

const DOVECOT: &str = "/usr/sbin/dovecot";
const USER: &str = "bounces";
const PASSWORD: &str = "imap \"secret\" pw";

/// Why the Dovecot tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    (!Path::new(DOVECOT).is_file()).then(|| format!("{DOVECOT} is not installed (apt-get install dovecot-imapd)"))
}

/// Dovecot in the foreground with everything in a directory of its own;
/// stopped and cleaned up when dropped.
struct Dovecot {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls_port: u16,
}

impl Dovecot {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("gazette-dovecot-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Started as root, Dovecot drops to an unprivileged user for the
        // logins and the mailbox (it refuses root for either); otherwise it
        // runs everything as the user running the tests.
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let (user, group, uid, gid) = match id("-u").as_str() {
            "0" => {
                let status = Command::new("chown")
                    .args(["-R", "65534:65534"])
                    .arg(dir.join("mail"))
                    .status()
                    .unwrap();
                assert!(status.success());
                (
                    "nobody".to_owned(),
                    id_group_of_65534(),
                    "65534".to_owned(),
                    "65534".to_owned(),
                )
            }
            uid => (id("-un"), id("-gn"), uid.to_owned(), id("-g")),
        };
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let d = dir.display();
        let mail = dir.join("mail").join(USER);
        std::fs::write(
            dir.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}\n", mail.display()),
        )
        .unwrap();
        let conf = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/run\n\
             instance_name = gazette-test-{port}\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{d}/cert.pem\n\
             ssl_key = <{d}/key.pem\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             log_path = {d}/dovecot.log\n\
             default_login_user = {user}\n\
             default_internal_user = {user}\n\
             default_internal_group = {group}\n\
             first_valid_uid = 1\n\
             mail_fsync = never\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/passwd\n}}\n\
             mail_location = maildir:{d}/mail/%u\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        let dovecot = Self {
            child,
            dir,
            port,
            tls_port,
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return dovecot;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dovecot did not listen within 10 s: {}", dovecot.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    fn url(&self, tls: bool) -> String {
        match tls {
            true => format!("imaps://{USER}@127.0.0.1:{}/INBOX", self.tls_port),
            false => format!("imap://{USER}@127.0.0.1:{}/INBOX", self.port),
        }
    }

    /// The files (messages) of one maildir folder ("" is INBOX).
    fn messages_in(&self, folder: &str) -> usize {
        let base = self.dir.join("mail").join(USER);
        let base = if folder.is_empty() {
            base
        } else {
            base.join(format!(".{folder}"))
        };
        ["new", "cur"]
            .iter()
            .map(|sub| std::fs::read_dir(base.join(sub)).map(|d| d.count()).unwrap_or(0))
            .sum()
    }

    /// APPENDs `messages` to INBOX over IMAP (MULTIAPPEND, LITERAL+);
    /// returns the UIDVALIDITY and UIDs the server gave them.
    fn append(&self, messages: &[Vec<u8>]) -> (u32, Vec<u32>) {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut tagged = |writer: &mut TcpStream, command: &[u8], tag: &str| -> String {
            writer.write_all(command).unwrap();
            loop {
                let mut line = String::new();
                assert!(reader.read_line(&mut line).unwrap() > 0, "dovecot hung up");
                if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                    assert!(rest.starts_with("OK"), "{tag}: {rest}");
                    return rest.to_owned();
                }
            }
        };
        tagged(
            &mut writer,
            format!("a LOGIN {USER} \"imap \\\"secret\\\" pw\"\r\n").as_bytes(),
            "a",
        );
        // MULTIAPPEND: one command, one transaction for them all.
        let mut command = b"m APPEND INBOX".to_vec();
        for message in messages {
            command.extend_from_slice(format!(" {{{}+}}\r\n", message.len()).as_bytes());
            command.extend_from_slice(message);
        }
        command.extend_from_slice(b"\r\n");
        let answer = tagged(&mut writer, &command, "m");
        // OK [APPENDUID 1796067421 7:9] Append completed
        let code = answer.split("[APPENDUID ").nth(1).expect("APPENDUID");
        let mut numbers = code.split([' ', ']']);
        let validity = numbers.next().unwrap().parse().unwrap();
        let mut uids = Vec::new();
        for part in numbers.next().unwrap().split(',') {
            let (first, last) = part.split_once(':').unwrap_or((part, part));
            uids.extend(first.parse::<u32>().unwrap()..=last.parse::<u32>().unwrap());
        }
        tagged(&mut writer, b"z LOGOUT\r\n", "z");
        (validity, uids)
    }
}

fn id_group_of_65534() -> String {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .find(|l| l.split(':').nth(2) == Some("65534"))
        .and_then(|l| l.split(':').next())
        .unwrap_or("nogroup")
        .to_owned()
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its own children.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bounce-like message, numbered so each is different.
fn message(n: usize, body_bytes: usize) -> Vec<u8> {
    let mut text = format!(
        "From: MAILER-DAEMON@mx.example.net\r\n\
         To: bounces+x.y@bounces.gazette.test\r\n\
         Subject: Undelivered Mail Returned to Sender {n}\r\n\
         Message-ID: <bounce-{n}@mx.example.net>\r\n\
         \r\n\
         This is bounce number {n}.\r\n"
    );
    while text.len() < body_bytes {
        text.push_str("padding padding padding padding padding padding padding padding\r\n");
    }
    text.into_bytes()
}

fn serve_env(dovecot: &Dovecot, tls: bool, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let password_file = dovecot.dir.join("imap-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut env = vec![
        ("GAZETTE_INBOUND__IMAP_URL", dovecot.url(tls)),
        (
            "GAZETTE_INBOUND__IMAP_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
        (
            "GAZETTE_INBOUND__IMAP_CA_FILE",
            dovecot.dir.join("ca.pem").display().to_string(),
        ),
        ("GAZETTE_INBOUND__IMAP_DONE_FOLDER", "Processed".into()),
    ];
    env.extend(extra.iter().cloned());
    env
}

async fn start_serve(backend: &Backend, env: &[(&'static str, String)]) -> ServeProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServeProcess::start(backend, &env).await
}

async fn database(backend: &Backend) -> Db {
    let settings: Settings = test_settings(backend, 25);
    Db::connect(&settings.database).await.unwrap()
}

async fn stored_keys(db: &Db) -> Vec<String> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT dedupe_key FROM inbound_messages WHERE source = 'imap' ORDER BY dedupe_key")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

async fn count_distinct_raw(db: &Db) -> i64 {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(DISTINCT raw) FROM inbound_messages")
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

fn expected_keys(validity: u32, uids: &[u32]) -> Vec<String> {
    let mut keys: Vec<String> = uids.iter().map(|uid| format!("imap:INBOX:{validity}:{uid}")).collect();
    keys.sort();
    keys
}

/// Mail in the mailbox when serve starts is stored once (keyed by
/// UIDVALIDITY and UID) and moved to the done folder (created on the way);
/// a message over the size limit is left and logged; a message arriving
/// later is picked up within seconds through IDLE, with the poll interval
/// at five minutes.
pub async fn imap_mail_is_stored_once_moved_and_new_mail_comes_through_idle(backend: Backend) {
    let dovecot = Dovecot::start();
    let small: Vec<Vec<u8>> = (0..3).map(|n| message(n, 0)).collect();
    let (validity, mut uids) = dovecot.append(&small);
    let (_, big) = dovecot.append(&[message(99, 40_000)]);
    let env = serve_env(
        &dovecot,
        false,
        &[
            ("GAZETTE_INBOUND__IMAP_POLL_SECONDS", "300".into()),
            ("GAZETTE_INBOUND__MAX_MESSAGE_BYTES", "20000".into()),
        ],
    );
    let serve = start_serve(&backend, &env).await;
    let db = database(&backend).await;

    // A move shows in the target folder before it has left INBOX (to
    // another connection): wait for both ends of it.
    wait_until(Duration::from_secs(20), "the three messages to move", || async {
        dovecot.messages_in("Processed") == 3 && dovecot.messages_in("") == 1
    })
    .await;
    assert_eq!(stored_keys(&db).await, expected_keys(validity, &uids));
    let skipped = serve
        .line_containing("over inbound.max_message_bytes", Duration::from_secs(10))
        .expect("the oversize message is logged");
    assert!(skipped.contains(&format!("uid={}", big[0])), "{skipped}");
    assert_eq!(dovecot.messages_in(""), 1, "the oversize message stays in INBOX");

    // IDLE: the poll interval is 300 s; the new message must come within 10.
    let (_, later) = dovecot.append(&[message(3, 0)]);
    uids.extend(later);
    wait_until(Duration::from_secs(10), "the later message to move (IDLE)", || async {
        dovecot.messages_in("Processed") == 4 && dovecot.messages_in("") == 1
    })
    .await;
    assert_eq!(stored_keys(&db).await, expected_keys(validity, &uids));
    assert_eq!(dovecot.messages_in(""), 1);
    let raw: Vec<u8> = with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT raw FROM inbound_messages WHERE dedupe_key = $1")
            .bind(format!("imap:INBOX:{validity}:{}", uids[0]))
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(raw, small[0], "stored exactly as it was in the mailbox");
    drop(serve);
    db.close().await;
}

/// Over TLS (imaps://, the server's certificate from a private CA given in
/// inbound.imap_ca_file), with many messages: serve is killed (SIGKILL)
/// midway through the mailbox, restarted, and every message ends up stored
/// once and moved, none stored twice, including one stored but not moved
/// when the process died.
pub async fn a_poller_killed_midway_over_tls_stores_nothing_twice_after_a_restart(backend: Backend) {
    const MESSAGES: usize = 150;
    let dovecot = Dovecot::start();
    let all: Vec<Vec<u8>> = (0..MESSAGES).map(|n| message(n, 1_000)).collect();
    let (validity, uids) = dovecot.append(&all);
    let env = serve_env(&dovecot, true, &[("GAZETTE_INBOUND__IMAP_POLL_SECONDS", "1".into())]);
    let db = database(&backend).await;

    // A crash between storing and moving, made certain: the last message
    // is stored as the poller stores it, but left in the mailbox.
    let last_key = format!("imap:INBOX:{validity}:{}", uids[MESSAGES - 1]);
    gazette::db::inbound::store(
        &db,
        &gazette::db::inbound::NewInbound {
            source: gazette::domain::InboundSource::Imap,
            dedupe_key: Some(&last_key),
            envelope_to: &[],
            raw: &all[MESSAGES - 1],
            received_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();

    // Each round kills serve once a further part is stored (where it falls
    // in the store → move loop is left to chance).
    for kills in 1..=2 {
        let before = stored_keys(&db).await.len();
        let serve = start_serve(&backend, &env).await;
        wait_until(
            Duration::from_secs(30),
            "a further part of the mailbox to be stored",
            || async { stored_keys(&db).await.len() >= before + 15 },
        )
        .await;
        drop(serve); // SIGKILL
        // Dovecot finishes a command it had already read (a MOVE) before
        // it notices the hang-up: count the folders once it has.
        wait_until(
            Duration::from_secs(10),
            "dovecot to see the connection close",
            || async { dovecot.log().matches("Connection closed").count() >= kills },
        )
        .await;
        let stored = stored_keys(&db).await.len();
        let moved = dovecot.messages_in("Processed");
        assert!(stored < MESSAGES, "killed midway: {stored} stored");
        assert!(moved <= stored, "{moved} moved but {stored} stored");
    }

    let serve = start_serve(&backend, &env).await;
    // Moved means out of INBOX as well as in Processed: on Maildir, Dovecot
    // links a moved message's file into the folder before it removes the
    // original, so the two counts are read as one condition, never one
    // after the other (that caught the last move between its two steps).
    wait_until(Duration::from_secs(120), "every message to be moved", || async {
        dovecot.messages_in("Processed") == MESSAGES && dovecot.messages_in("") == 0
    })
    .await;
    assert_eq!(stored_keys(&db).await, expected_keys(validity, &uids));
    assert_eq!(
        count_distinct_raw(&db).await,
        MESSAGES as i64,
        "each message stored once"
    );
    // The restart found the message stored but not moved, and moved it
    // without storing it again.
    assert!(serve.line_containing("stored before", Duration::from_secs(5)).is_some());
    // And every message was read: the ones a kill left stored but unread
    // were read when serve started again.
    wait_until(Duration::from_secs(10), "no message left unread", || async {
        with_pool!(&db, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM inbound_messages WHERE status = 'received'")
            .fetch_one(pool)
            .await
            .unwrap())
            == 0
    })
    .await;
    drop(serve);
    db.close().await;
}
