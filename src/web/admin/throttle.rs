//! How staff logins are slowed down without letting anyone lock staff out.
//!
//! No limit refuses an account as a whole: then anyone who knows a staff
//! address could keep its owner out by typing wrong passwords. Instead:
//!
//! - each client may try so many logins a minute, for any account
//!   (`limits.admin_logins_per_ip_per_minute`, checked in `auth::login`);
//! - each (account, client) pair may fail so many times a minute
//!   (`limits.admin_logins_per_account_per_minute`), so one client's
//!   guessing at one account is slowed to a crawl, while the owner on
//!   another client is not touched;
//! - the account's failures from all clients count against the same
//!   budget, and once it is spent, clients that have failed for this
//!   account recently wait too. A client with no recent failure for the
//!   account is always let try: the owner typing the right password from
//!   a fresh client gets in whatever an attacker does elsewhere. Many
//!   clients guessing together (a botnet) are slowed to one guess per
//!   client per interval, not stopped; the cap on password checks running
//!   at once bounds how fast the server verifies guesses in any case.
//!
//! Both keys use the account's normalised address ([`crate::db::staff::account_key`]),
//! the same one the account lookup uses, so spellings of one address
//! share one budget.

use std::net::IpAddr;
use std::time::Duration;

use crate::web::rate_limit::FailureLimit;

#[derive(Clone)]
pub struct LoginThrottle {
    per_client: FailureLimit<(String, IpAddr)>,
    per_account: FailureLimit<String>,
}

impl LoginThrottle {
    /// `failures_per_minute` for each (account, client) pair and for the
    /// account across clients; 0 switches both off.
    pub fn per_minute(failures_per_minute: u32) -> Self {
        Self {
            per_client: FailureLimit::per_minute(failures_per_minute),
            per_account: FailureLimit::per_minute(failures_per_minute),
        }
    }

    /// `Err(wait)` when `client` must wait before trying `account` again.
    pub fn check(&self, account: &str, client: IpAddr) -> Result<(), Duration> {
        let pair = (account.to_owned(), client);
        self.per_client.check(&pair)?;
        if self.per_client.has_failed(&pair) {
            self.per_account.check(&account.to_owned())?;
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, client: IpAddr) {
        self.per_client.failed(&(account.to_owned(), client));
        self.per_account.failed(&account.to_owned());
    }

    /// The right password: this client's own failures for the account are
    /// forgiven (the account-wide count stays, as others may be guessing).
    pub fn succeeded(&self, account: &str, client: IpAddr) {
        self.per_client.forgive(&(account.to_owned(), client));
    }

    pub fn spawn_janitor(&self) {
        self.per_client.spawn_janitor();
        self.per_account.spawn_janitor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_guessing_client_is_slowed_and_a_fresh_client_is_never_refused() {
        let throttle = LoginThrottle::per_minute(3);
        for _ in 0..3 {
            assert!(throttle.check("staff@example.org", ip(1)).is_ok());
            throttle.failed("staff@example.org", ip(1));
        }
        assert!(throttle.check("staff@example.org", ip(1)).is_err(), "the guesser waits");
        assert!(throttle.check("other@example.org", ip(1)).is_ok(), "per account");
        // The account's budget is spent, but a client that has not failed
        // for it may still try (the owner on their own machine).
        assert!(throttle.check("staff@example.org", ip(2)).is_ok());
        // Once it has failed too, while the account is being guessed at,
        // it waits like the guesser.
        throttle.failed("staff@example.org", ip(2));
        assert!(throttle.check("staff@example.org", ip(2)).is_err());
        // A third client, however many others failed, is still let in.
        for n in 10..50 {
            throttle.failed("staff@example.org", ip(n));
        }
        assert!(throttle.check("staff@example.org", ip(3)).is_ok());
    }

    #[test]
    fn the_right_password_forgives_the_clients_own_failures() {
        let throttle = LoginThrottle::per_minute(3);
        for _ in 0..2 {
            throttle.failed("staff@example.org", ip(1));
        }
        throttle.succeeded("staff@example.org", ip(1));
        // The account's budget is spent by someone else meanwhile; the
        // client that proved itself counts as fresh.
        throttle.failed("staff@example.org", ip(9));
        assert!(throttle.check("staff@example.org", ip(9)).is_err());
        assert!(throttle.check("staff@example.org", ip(1)).is_ok());
    }
}
