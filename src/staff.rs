//! Staff accounts: password hashing with argon2id (the crate's defaults,
//! m=19456 KiB, t=2, p=1, OWASP's baseline), always off the async threads
//! because one hash takes tens of milliseconds of CPU.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::domain::StaffPassword;
use crate::metrics::PasswordCheckGauges;

/// A password that could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot hash the password: {0}")]
    Argon2(argon2::password_hash::Error),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the hashing task failed")]
    Panicked,
}

fn hash_now(password: &StaffPassword) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(HashError::Argon2)
}

fn verify_now(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

pub async fn hash_password(password: StaffPassword) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

/// Whether `password` matches the stored PHC string `hash`.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_now(&password, &hash))
        .await
        .unwrap_or(false)
}

/// The web role's password hashing and checking, at most `at_once` at a
/// time: each takes 19 MiB and tens of milliseconds of CPU, so a flood of
/// logins must queue, not run all at once and exhaust memory. A request
/// that cannot start within the wait is refused ([`Busy`], a 429).
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    wait: Duration,
    gauges: Arc<PasswordCheckGauges>,
}

/// Too many password checks are running; try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl PasswordChecks {
    /// At most `at_once` checks compute together, reported to `gauges`.
    pub fn new(at_once: usize, wait: Duration, gauges: Arc<PasswordCheckGauges>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(at_once.max(1))),
            wait,
            gauges,
        }
    }

    /// What `/metrics` shows of these checks.
    pub fn gauges(&self) -> Arc<PasswordCheckGauges> {
        self.gauges.clone()
    }

    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        Ok(self.run(move || verify_now(&password, &hash)).await?.unwrap_or(false))
    }

    pub async fn hash(&self, password: StaffPassword) -> Result<Result<String, HashError>, Busy> {
        let hashed = self.run(move || hash_now(&password)).await?;
        Ok(hashed.unwrap_or_else(|| Err(HashError::Panicked)))
    }

    /// Runs `work` on a blocking thread once a permit is free; `None` when
    /// the thread panicked. The permit moves into the thread, so a request
    /// given up half-way (the client left) still holds it until the
    /// computation really ends.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<Option<T>, Busy> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                self.gauges.refused();
                return Err(Busy);
            }
        };
        let gauges = self.gauges.clone();
        let done = tokio::task::spawn_blocking(move || {
            let running = gauges.start();
            let result = work();
            // In this order: the gauge must never count a check whose
            // permit has been handed on.
            drop(running);
            drop(permit);
            result
        })
        .await;
        Ok(done.ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let password = StaffPassword::parse("correct horse battery").unwrap();
        let first = hash_password(password.clone()).await.unwrap();
        let second = hash_password(password).await.unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a fresh salt each time");
        assert!(verify_password("correct horse battery".into(), first.clone()).await);
        assert!(!verify_password("correct horse battery!".into(), first).await);
        assert!(!verify_password("anything".into(), "not a hash".into()).await);
    }

    #[tokio::test]
    async fn checks_past_the_cap_wait_then_are_refused() {
        let checks = Arc::new(PasswordChecks::new(1, Duration::from_millis(50), Arc::default()));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let checks = checks.clone();
            tokio::spawn(async move {
                checks
                    .run(move || {
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(checks.verify("x".into(), "not a hash".into()).await, Err(Busy));
        release_tx.send(()).unwrap();
        assert_eq!(holder.await.unwrap(), Ok(Some(())));
        assert_eq!(checks.verify("x".into(), "not a hash".into()).await, Ok(false));
        assert_eq!(checks.gauges().peak(), 1);
    }
}
