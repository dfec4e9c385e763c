//! Stopping without dropping a request. Once the process is told to stop,
//! every response carries `Connection: close`, so a client on a keep-alive
//! connection (nginx's upstream pool, a browser) gets the answer to the
//! request it sent and then opens a new connection, which reaches the next
//! process, instead of sending its next request on a connection this
//! process is about to close.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;

/// Per process, as the signal that sets it is: a stopping process stops
/// all its servers.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// From now on, answer each request and close its connection.
pub fn begin() {
    STOPPING.store(true, Ordering::SeqCst);
}

pub(super) async fn close_connections_when_stopping(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    if STOPPING.load(Ordering::SeqCst) {
        res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}
