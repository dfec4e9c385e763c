/// A staff member's new password: 12 to 256 characters, not only spaces.
/// Kept out of Debug output so it cannot reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffPassword(String);

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 256;

/// Why a text is not a staff password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters (it has {0})")]
    TooShort(usize),
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl StaffPassword {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let length = raw.chars().count();
        if raw.trim().is_empty() {
            return Err(PasswordError::Empty);
        }
        if length < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort(length));
        }
        if length > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StaffPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaffPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_twelve_characters_and_hides_itself() {
        assert!(StaffPassword::parse("eleven char").is_err());
        assert!(StaffPassword::parse("            ").is_err());
        assert!(StaffPassword::parse(&"x".repeat(257)).is_err());
        let password = StaffPassword::parse("correct horse battery").unwrap();
        assert_eq!(password.expose(), "correct horse battery");
        assert!(!format!("{password:?}").contains("horse"));
        // Characters, not bytes: twelve accented letters are enough.
        assert!(StaffPassword::parse(&"é".repeat(12)).is_ok());
    }
}
