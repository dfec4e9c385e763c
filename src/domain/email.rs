use std::fmt;

use email_address::{EmailAddress, Options};

/// A reader's email address, as it will be written in the `To:` header.
///
/// The local part keeps the case the reader typed; the domain is stored in
/// its ASCII (IDNA) form so every later step (SMTP, DKIM, dedupe) sees one
/// spelling of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEmail {
    address: String,
    at: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Please enter your email address.")]
    Empty,
    #[error("That address is too long: an email address has at most 254 characters.")]
    TooLong,
    #[error("The part before the @ is too long: it can have at most 64 characters.")]
    LocalPartTooLong,
    #[error("Please enter only the address, like reader@example.com, without a name or angle brackets.")]
    DisplayName,
    #[error("Please use an address with a domain name, not an IP address.")]
    IpLiteral,
    #[error("The address needs a full domain after the @, such as example.com.")]
    MissingTld,
    #[error("The part before the @ may only use letters, digits and . _ + - and similar characters.")]
    LocalPart,
    #[error(
        "Addresses with characters beyond plain ASCII (such as accented letters) before the @ are not supported; \
         please use an address without them."
    )]
    NonAsciiLocalPart,
    #[error(
        "Addresses ending in .{0} cannot receive our mail: .{0} is a special-use name that never reaches a mailbox \
         on the internet. Please use your real address."
    )]
    SpecialUseDomain(&'static str),
    #[error("The domain after the @ is not a valid domain name.")]
    Domain,
    #[error("That doesn't look like an email address; it should look like reader@example.com.")]
    Malformed,
}

/// Which addresses this site accepts beyond the ordinary ones: a value the
/// caller builds from the settings (`subscriptions.allow_test_domains`) and
/// hands to every parse, so no parse depends on global state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Accept `.test` domains (RFC 6761), for test suites and staging sites.
    pub allow_test_domains: bool,
    /// Accept every special-use domain: only to find an address stored
    /// before they were refused (a staff login), never for a new one.
    pub allow_special_use: bool,
}

impl AddressPolicy {
    /// For looking up an account by its address: refusing a special-use
    /// domain there protects no one and would lock out staff added before.
    pub const LOOKUP: Self = Self {
        allow_test_domains: true,
        allow_special_use: true,
    };
}

/// Special-use top-level names (RFC 6761, RFC 6762, RFC 7686, RFC 3172):
/// no mail to them reaches a mailbox, so an address there is a typo, a
/// probe or a test, never a reader.
const SPECIAL_USE_TLDS: [&str; 6] = ["invalid", "localhost", "local", "onion", "arpa", "test"];

const MAX_ADDRESS_OCTETS: usize = 254;
const MAX_LOCAL_OCTETS: usize = 64;

impl SubscriberEmail {
    pub fn parse(raw: &str, policy: AddressPolicy) -> Result<Self, EmailError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(EmailError::Empty);
        }
        if raw.contains('<') || raw.contains('>') {
            return Err(EmailError::DisplayName);
        }
        let at = raw.rfind('@').ok_or(EmailError::Malformed)?;
        let (local, domain) = (&raw[..at], &raw[at + 1..]);
        if domain.starts_with('[') {
            return Err(EmailError::IpLiteral);
        }
        if local.is_empty() || domain.is_empty() {
            return Err(EmailError::Malformed);
        }
        if local.len() > MAX_LOCAL_OCTETS {
            return Err(EmailError::LocalPartTooLong);
        }
        if !local.is_ascii() {
            return Err(EmailError::NonAsciiLocalPart);
        }
        if !is_dot_atom(local) {
            return Err(EmailError::LocalPart);
        }
        // The special-use check reads the name as DNS does: without its
        // trailing root dot, in any case, after IDNA mapping (`ＴＥＳＴ`).
        let bare = domain.strip_suffix('.').unwrap_or(domain);
        if bare.is_empty() {
            return Err(EmailError::MissingTld);
        }
        let ascii_domain = idna::domain_to_ascii_strict(bare)
            .map_err(|_| EmailError::Domain)?
            .to_ascii_lowercase();
        let tld = match ascii_domain.rsplit_once('.') {
            Some((rest, tld)) if !rest.is_empty() && !tld.is_empty() => tld,
            _ => return Err(EmailError::MissingTld),
        };
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            // `reader@192.168.1.10`: an IP address without brackets.
            return Err(EmailError::IpLiteral);
        }
        if let Some(&special) = SPECIAL_USE_TLDS.iter().find(|&&s| s == tld)
            && !policy.allow_special_use
            && !(special == "test" && policy.allow_test_domains)
        {
            return Err(EmailError::SpecialUseDomain(special));
        }
        if domain.ends_with('.') {
            return Err(EmailError::MissingTld);
        }
        let address = format!("{local}@{ascii_domain}");
        if address.len() > MAX_ADDRESS_OCTETS {
            return Err(EmailError::TooLong);
        }
        let options = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        EmailAddress::parse_with_options(&address, options).map_err(|_| EmailError::Malformed)?;
        // The mail layer must never reject an address the form accepted.
        lettre::Address::new(local, &ascii_domain).map_err(|_| EmailError::Malformed)?;
        Ok(Self { address, at })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The key two spellings of one mailbox share: `Reader@Example.COM` and
    /// `reader@example.com` are one subscriber. Tags and dots are kept:
    /// `a+news@x.org` and `a.b@x.org` are other mailboxes to us.
    pub fn dedupe_key(&self) -> String {
        self.address.to_lowercase()
    }

    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.address
    }
}

/// RFC 5322 dot-atom in ASCII: what real mailboxes use. Quoted local parts
/// and internationalised local parts are refused because most relays
/// cannot deliver to them.
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || SPECIALS.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(raw: &str) -> Result<SubscriberEmail, EmailError> {
        SubscriberEmail::parse(raw, AddressPolicy::default())
    }

    #[test]
    fn accepts_ordinary_addresses_and_keeps_tags_and_dots() {
        for ok in [
            "reader@example.com",
            "first.last+news@example.co.uk",
            "o'brien@example.ie",
            "x@sub.domain.example",
        ] {
            assert_eq!(parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn trims_and_lowercases_only_the_domain() {
        let e = parse("  Reader@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "Reader@example.com");
        assert_eq!(e.dedupe_key(), "reader@example.com");
        assert_eq!(e.local_part(), "Reader");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn stores_idn_domains_in_ascii_form() {
        let e = parse("leser@bücher.example").unwrap();
        assert_eq!(e.as_str(), "leser@xn--bcher-kva.example");
        let upper = parse("leser@BÜCHER.example").unwrap();
        assert_eq!(upper.dedupe_key(), e.dedupe_key());
    }

    #[test]
    fn rejects_each_kind_of_bad_address_with_its_reason() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let b = |n| "b".repeat(n);
        let long_total = format!("{}@{}.{}.{}.com", "a".repeat(64), b(62), b(61), b(61));
        assert_eq!(long_total.len(), 255);
        let cases: &[(&str, EmailError)] = &[
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("Reader <reader@example.com>", EmailError::DisplayName),
            ("<reader@example.com>", EmailError::DisplayName),
            ("reader@[192.168.0.1]", EmailError::IpLiteral),
            ("reader@192.168.0.1", EmailError::IpLiteral),
            ("reader@localhost", EmailError::MissingTld),
            ("reader@example.", EmailError::MissingTld),
            ("readerexample.com", EmailError::Malformed),
            ("@example.com", EmailError::Malformed),
            ("reader@", EmailError::Malformed),
            ("re der@example.com", EmailError::LocalPart),
            ("reader.@example.com", EmailError::LocalPart),
            ("re..der@example.com", EmailError::LocalPart),
            ("\"quoted\"@example.com", EmailError::LocalPart),
            ("reader\r\nBcc: x@example.com@example.com", EmailError::LocalPart),
            ("reader@exa mple.com", EmailError::Domain),
            (&long_local, EmailError::LocalPartTooLong),
            (&long_total, EmailError::TooLong),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse(raw).as_ref(), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn special_use_domains_are_refused_however_they_are_written() {
        for suffix in SPECIAL_USE_TLDS {
            let upper = suffix.to_ascii_uppercase();
            for raw in [
                format!("reader@example.{suffix}"),
                format!("reader@Mail.Example.{upper}"),
                format!("reader@example.{suffix}."),
                format!("reader@EXAMPLE.{upper}."),
            ] {
                let refused = parse(&raw).unwrap_err();
                assert_eq!(refused, EmailError::SpecialUseDomain(suffix), "{raw}");
                assert!(refused.to_string().contains(&format!(".{suffix}")), "{refused}");
            }
        }
        // Fullwidth letters map to `.test` under IDNA, and are that name.
        assert_eq!(
            parse("reader@example.\u{ff54}\u{ff45}\u{ff53}\u{ff54}"),
            Err(EmailError::SpecialUseDomain("test"))
        );
        // Only the last label counts.
        assert!(parse("reader@test.example.com").is_ok());
        assert!(parse("reader@onion.example").is_ok());
    }

    #[test]
    fn test_domains_pass_only_when_the_policy_allows_them() {
        let allow = AddressPolicy {
            allow_test_domains: true,
            ..AddressPolicy::default()
        };
        let e = SubscriberEmail::parse("Reader@Gazette.TEST", allow).unwrap();
        assert_eq!(e.as_str(), "Reader@gazette.test");
        // A trailing dot is still not an address we write into `To:`.
        assert_eq!(
            SubscriberEmail::parse("reader@gazette.test.", allow),
            Err(EmailError::MissingTld)
        );
        for other in [
            "reader@x.invalid",
            "reader@x.localhost",
            "reader@x.local",
            "reader@x.onion",
            "reader@x.arpa",
        ] {
            assert!(
                matches!(
                    SubscriberEmail::parse(other, allow),
                    Err(EmailError::SpecialUseDomain(_))
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn a_lookup_finds_addresses_at_any_domain() {
        for raw in ["admin@intranet.local", "admin@x.invalid", "admin@gazette.test"] {
            assert_eq!(
                SubscriberEmail::parse(raw, AddressPolicy::LOOKUP).unwrap().as_str(),
                raw
            );
        }
        // Everything else is parsed as strictly as ever.
        assert_eq!(
            SubscriberEmail::parse("jürgen@x.local", AddressPolicy::LOOKUP),
            Err(EmailError::NonAsciiLocalPart)
        );
    }

    #[test]
    fn a_non_ascii_local_part_is_called_unsupported_not_wrong() {
        for raw in ["jürgen@example.com", "李@example.com", "ada\u{a0}@example.com"] {
            let refused = parse(raw).unwrap_err();
            assert_eq!(refused, EmailError::NonAsciiLocalPart, "{raw}");
            let message = refused.to_string();
            assert!(message.contains("not supported"), "{message}");
            assert!(!message.contains("may only use letters"), "{message}");
        }
    }

    #[test]
    fn the_longest_allowed_address_is_254_octets() {
        let b = "b".repeat(61);
        let max = format!("{}@{b}.{b}.{b}.com", "a".repeat(64));
        assert_eq!(max.len(), 254);
        assert!(parse(&max).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_never_holds_a_line_break(raw in "\\PC*|[a-zA-Z0-9.+@\\r\\n <>\\[\\]]{0,80}") {
            if let Ok(e) = parse(&raw) {
                prop_assert!(!e.as_str().contains(['\r', '\n', ' ', '<', '>']));
                prop_assert!(e.as_str().len() <= 254);
                prop_assert_eq!(parse(e.as_str()).unwrap(), e);
            }
        }
    }
}
