//! Debian's nginx for the tests that need a real web server in front of or
//! beside Gazette (the reverse proxy, the feed sources): one runner, each
//! test giving only its own `http` directives. Without nginx those tests
//! are skipped with the reason; with CI=true they must run (`.ci/run`
//! installs nginx).

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NGINX: &str = "/usr/sbin/nginx";

/// Why the nginx tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    (!Path::new(NGINX).is_file()).then(|| format!("{NGINX} is not installed (apt-get install nginx)"))
}

/// nginx in the foreground, with its configuration, pid, logs and buffers in
/// a directory of its own; stopped and cleaned up when dropped.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Starts nginx on a port of its own with the `http` directives that
    /// `directives(dir, port)` writes (its `server` blocks, logs, types),
    /// after the common ones (pid, error log, buffer paths). The test binds
    /// the listening socket itself and hands it to nginx (nginx takes
    /// inherited sockets from the `NGINX` variable, as in a binary upgrade),
    /// so no other process can take the port between choosing it and
    /// listening on it: `directives` must `listen 127.0.0.1:{port}`.
    pub fn start(directives: impl FnOnce(&Path, u16) -> String) -> Self {
        let dir = std::env::temp_dir().join(format!("gazette-nginx-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // nginx's workers run as an unprivileged user when started as root:
        // they must reach what is inside.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             {}\n\
             }}\n",
            directives(&dir, port)
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(NGINX)
            .args(Self::paths(&dir))
            .args(["-g", "daemon off;"])
            // The listening socket is the child's fd 0.
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .env("NGINX", "0;")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        Self { child, dir, port }
    }

    /// `-p DIR -c DIR/nginx.conf -e DIR/error.log`.
    fn paths(dir: &Path) -> Vec<std::ffi::OsString> {
        vec![
            "-p".into(),
            dir.into(),
            "-c".into(),
            dir.join("nginx.conf").into(),
            "-e".into(),
            dir.join("error.log").into(),
        ]
    }

    /// The directory nginx's configuration, logs and anything the test puts
    /// there live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Waits until nginx answers `path` with a 200 to `client`.
    pub async fn wait_until_it_answers(&mut self, client: &reqwest::Client, path: &str) {
        let url = self.url(path);
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("nginx exited ({status}): {}", self.error_log());
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nginx did not answer {path} within 10 s: {}", self.error_log());
    }
}

impl Drop for Nginx {
    /// Asks the master to stop (it stops its workers; a killed master
    /// would leave them running), and kills it only if it does not.
    fn drop(&mut self) {
        let _ = Command::new(NGINX)
            .args(Self::paths(&self.dir))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
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
