//! The connections Gazette opens to its database send each message at
//! once. Without `TCP_NODELAY` a statement longer than one TCP segment (a
//! batch of delivery outcomes, of signups) keeps its last segment back
//! until PostgreSQL acknowledges the rest, 40 ms later on Linux: sqlx
//! 0.9.0 dropped the option, and `vendor/sqlx-core` sets it again.

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use crate::helpers::{Backend, test_settings};

/// The TCP sockets of this process connected to `peer_port`, with whether
/// each has `TCP_NODELAY`.
fn tcp_sockets_to(peer_port: u16) -> Vec<(SocketAddr, bool)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the calls below; one
        // closed meanwhile makes them fail, which skips it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let Ok(Some(peer)) = socket.peer_addr().map(|a| a.as_socket()) else {
            continue;
        };
        if peer.port() != peer_port || socket.r#type().ok() != Some(socket2::Type::STREAM) {
            continue;
        }
        if let Ok(nodelay) = socket.tcp_nodelay() {
            found.push((peer, nodelay));
        }
    }
    found
}

pub async fn database_connections_send_each_statement_at_once(backend: Backend) {
    let settings = test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    db.migrate().await.unwrap();
    let url = url::Url::parse(backend.database_url()).unwrap();
    let port = url.port().unwrap_or(5432);
    let sockets = tcp_sockets_to(port);
    assert!(!sockets.is_empty(), "the pool holds a connection to port {port}");
    assert!(
        sockets.iter().all(|(_, nodelay)| *nodelay),
        "a database connection waits for ACKs (no TCP_NODELAY): {sockets:?}"
    );
    db.close().await;
}
