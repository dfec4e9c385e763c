//! One SMTP connection, driven by its own task, which takes messages from a
//! queue. With PIPELINING the end of one message's content and the next
//! message's MAIL, RCPT and DATA go out in one write (RFC 2920 allows
//! commands after the end-of-data line without waiting for its reply), and
//! their replies are read together: one write and one round trip per
//! message instead of two of each. Without PIPELINING, one transaction at
//! a time, one command at a time.
//!
//! The task owns the connection, so nothing else can interleave commands
//! on it; a sender waits for its message's outcome on a oneshot channel.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Relay;
use super::client::{Client, ClientError};
use super::transaction::{self, Failure, Stage};
use crate::mail::{OutgoingMessage, SendError};

/// What a sender hears back.
pub(super) enum Outcome {
    /// What became of the message, and whether the connection broke with
    /// it (then a failure before the content may be retried on a fresh one).
    Done(Result<(), Failure>, bool),
    /// The connection could not be opened.
    NotConnected(SendError),
    /// The connection ended before the message was touched (it broke
    /// while the message waited in its queue, it reached
    /// `max_messages_per_connection`, or it sat idle): send it on another.
    NotTried,
}

pub(super) struct Job {
    pub message: OutgoingMessage,
    pub done: oneshot::Sender<Outcome>,
}

/// The senders' side of a driver.
#[derive(Clone)]
pub(super) struct Handle {
    jobs: mpsc::UnboundedSender<Job>,
    /// Messages queued or in progress on this connection.
    load: Arc<AtomicUsize>,
}

impl Handle {
    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Queues `job`; gives it back when the connection has ended.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.load.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(job).map_err(|e| {
            self.load.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

/// Starts the task that connects to `relay` and drives the connection. It
/// ends after `idle_limit` without a message, once the connection has
/// carried `max_messages` (0: no limit), when it breaks, or when every
/// [`Handle`] is dropped.
pub(super) fn start(
    relay: Arc<Relay>,
    max_messages: u32,
    idle_limit: Duration,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
    let load = Arc::new(AtomicUsize::new(0));
    let shared_load = load.clone();
    let task = tokio::spawn(async move {
        let client = match relay.connect().await {
            Ok(client) => client,
            Err(error) => {
                // Everyone waiting for this connection hears why.
                queue.close();
                while let Ok(job) = queue.try_recv() {
                    shared_load.fetch_sub(1, Ordering::Relaxed);
                    let _ = job.done.send(Outcome::NotConnected(error.clone()));
                }
                return;
            }
        };
        let driver = Driver {
            client,
            queue,
            load: shared_load,
            carried: 0,
            max_messages,
            idle_limit,
        };
        driver.run().await;
    });
    (Handle { jobs, load }, task)
}

struct Driver {
    client: Client,
    queue: mpsc::UnboundedReceiver<Job>,
    load: Arc<AtomicUsize>,
    /// Messages whose content went out on this connection.
    carried: u32,
    max_messages: u32,
    idle_limit: Duration,
}

impl Driver {
    async fn run(mut self) {
        if self.client.extensions().pipelining {
            self.pipelined().await;
        } else {
            self.one_at_a_time().await;
        }
        // Whatever is still queued was never touched: its senders try
        // another connection.
        self.queue.close();
        while let Ok(job) = self.queue.try_recv() {
            self.finish(job, Outcome::NotTried);
        }
        if !self.client.is_broken() {
            self.client.quit().await;
        }
    }

    fn full(&self) -> bool {
        self.max_messages > 0 && self.carried >= self.max_messages
    }

    async fn next_job(&mut self) -> Option<Job> {
        if self.full() {
            return None;
        }
        tokio::time::timeout(self.idle_limit, self.queue.recv())
            .await
            .ok()
            .flatten()
    }

    fn finish(&self, job: Job, outcome: Outcome) {
        self.load.fetch_sub(1, Ordering::Relaxed);
        let _ = job.done.send(outcome);
    }

    fn done(&self, job: Job, result: Result<(), Failure>) {
        self.finish(job, Outcome::Done(result, self.client.is_broken()));
    }

    async fn one_at_a_time(&mut self) {
        while let Some(job) = self.next_job().await {
            let result = transaction::send(&mut self.client, &job.message).await;
            if !matches!(result, Err(Failure::TooBig { .. })) {
                self.carried += 1;
            }
            let refused = matches!(result, Err(Failure::Refused(..) | Failure::Sender(_)));
            self.done(job, result);
            if self.client.is_broken() || (refused && !self.reset().await) {
                return;
            }
        }
    }

    /// The loop of a pipelining connection. `current` is the message whose
    /// DATA got its 354 and whose content is not written yet; the next
    /// message is taken only if one is already queued, so a lone message
    /// never waits for company.
    async fn pipelined(&mut self) {
        let mut current: Option<Job> = None;
        loop {
            let next = match &current {
                None => match self.next_job().await {
                    Some(job) => Some(job),
                    None => return,
                },
                Some(_) if self.full() => None,
                Some(_) => match self.queue.try_recv() {
                    Ok(job) => Some(job),
                    // The reply just read may have freed a sender that
                    // has its next message ready: let it run (the task it
                    // woke runs next on this thread) before writing this
                    // content alone.
                    Err(_) => {
                        tokio::task::yield_now().await;
                        self.queue.try_recv().ok()
                    }
                },
            };
            let next = match next {
                Some(job) => match transaction::check_size(&self.client, &job.message) {
                    Ok(()) => Some(job),
                    Err(too_big) => {
                        self.done(job, Err(too_big));
                        if current.is_none() {
                            continue;
                        }
                        None
                    }
                },
                None => None,
            };
            let commands = next
                .as_ref()
                .map(|job| transaction::envelope_commands(&self.client, &job.message))
                .unwrap_or_default();
            // Gathered first: an iterator chain borrowed across the write's
            // await point would make this task's future too particular
            // about lifetimes for tokio::spawn.
            let mut parts: Vec<&[u8]> = Vec::with_capacity(24);
            if let Some(job) = &current {
                for piece in job.message.wire_pieces() {
                    parts.push(piece);
                }
                parts.push(transaction::end_of_data(&job.message));
            }
            for command in &commands {
                parts.push(command.as_bytes());
            }
            let written = self.client.write_all(parts).await;
            if let Err(e) = written {
                self.broke(current.take(), next, &e);
                return;
            }
            if let Some(job) = current.take() {
                let result = transaction::read_end_of_data_reply(&mut self.client).await;
                let failed = match &result {
                    Err(Failure::Broken(e, _)) => Some(copy(e)),
                    _ => None,
                };
                self.done(job, result);
                if let Some(e) = failed {
                    self.broke(None, next, &e);
                    return;
                }
                if self.client.is_broken() {
                    // A 421 to the end of data: the relay hangs up.
                    self.broke(None, next, &ClientError::Closed);
                    return;
                }
            }
            let Some(job) = next else { continue };
            match transaction::read_envelope_replies(&mut self.client, commands.len()).await {
                Ok(()) => {
                    self.carried += 1;
                    current = Some(job);
                }
                Err(failure) => {
                    let refused = matches!(failure, Failure::Refused(..) | Failure::Sender(_));
                    self.done(job, Err(failure));
                    if self.client.is_broken() || (refused && !self.reset().await) {
                        return;
                    }
                }
            }
        }
    }

    /// The connection failed while `current`'s content (if any) and
    /// `next`'s envelope (if any) were on their way.
    fn broke(&self, current: Option<Job>, next: Option<Job>, why: &ClientError) {
        if let Some(job) = current {
            self.done(job, Err(Failure::Broken(copy(why), Stage::Content)));
        }
        if let Some(job) = next {
            self.done(job, Err(Failure::Broken(copy(why), Stage::Envelope)));
        }
    }

    /// After a refused message the connection is fine, once RSET clears the
    /// half-finished transaction.
    async fn reset(&mut self) -> bool {
        match self.client.command("RSET").await {
            Ok(()) => self.client.read_reply().await.is_ok_and(|reply| reply.is_success()),
            Err(_) => false,
        }
    }
}

/// The same failure, for a second message it also ended.
fn copy(e: &ClientError) -> ClientError {
    match e {
        ClientError::Timeout(limit) => ClientError::Timeout(*limit),
        ClientError::Closed => ClientError::Closed,
        other => ClientError::Io(io::Error::other(other.to_string())),
    }
}
