//! Staff accounts: password hashing with argon2id (the crate's defaults,
//! m=19456 KiB, t=2, p=1, OWASP's baseline), always off the async threads
//! because one hash takes tens of milliseconds of CPU.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::domain::StaffPassword;

pub async fn hash_password(password: StaffPassword) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| format!("cannot hash the password: {e}"))
    })
    .await
    .map_err(|e| format!("the hashing task failed: {e}"))?
}

/// Whether `password` matches the stored PHC string `hash`.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
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
}
