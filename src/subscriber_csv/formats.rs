//! The export files of the tools publications leave, recognised by their
//! header rows: where the address and the name are, and how a row says
//! that its reader left (unsubscribed, bounced, blocklisted) or never
//! confirmed. A reader who left there is imported as unsubscribed and is
//! never mailed; one who never confirmed is asked to, whatever the import's
//! consent says.
//!
//! The headers, from each tool's documentation of its export:
//! - Mailchimp audience exports: `Email Address`, `First Name`, `Last Name`,
//!   … `MEMBER_RATING`, `OPTIN_TIME`, `LEID`, `EUID`; the unsubscribed
//!   export adds `UNSUB_TIME`, the cleaned (bounced) one `CLEAN_TIME`.
//! - Substack: `email`, `active_subscription`, `expiry`, `plan`,
//!   `email_disabled` (true for a reader who turned emails off),
//!   `created_at`.
//! - listmonk: `uuid`, `email`, `name`, `attributes`, `status` (`enabled`,
//!   `disabled` or `blocklisted`), `created_at`, `updated_at`.
//! - Buttondown: `email` (or `email_address`), `subscriber_type` (or
//!   `type`: `regular`, `premium`, `unactivated`, `unsubscribed`,
//!   `removed`, `undeliverable`, `complained`, …), `creation_date`, `notes`,
//!   `tags`, `metadata`.
//! - Ghost members: `id`, `email`, `name`, `note`, `subscribed_to_emails`
//!   (`true`/`false`), `complimentary_plan`, `stripe_customer_id`,
//!   `created_at`, `deleted_at`, `labels`.
//! - Gazette's own export: `email`, `name`, `status`, `source`, …

use std::fmt;

pub use crate::domain::Standing;

/// Where an import file came from, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `email,name` without a header row.
    Plain,
    /// A header naming an email column (and perhaps a name one).
    Header,
    Gazette,
    Mailchimp,
    Substack,
    Listmonk,
    Buttondown,
    Ghost,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Plain => "CSV without a header (email,name)",
            Format::Header => "CSV with a header",
            Format::Gazette => "Gazette export",
            Format::Mailchimp => "Mailchimp export",
            Format::Substack => "Substack export",
            Format::Listmonk => "listmonk export",
            Format::Buttondown => "Buttondown export",
            Format::Ghost => "Ghost members export",
        })
    }
}

/// Where the reader's name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameColumns {
    None,
    One(usize),
    /// First and last name, joined with a space.
    FirstLast(Option<usize>, Option<usize>),
}

/// How a row's standing is read from one of its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StandingRule {
    /// Every row is on the list.
    Subscribed,
    /// A filled cell in any of these columns means the reader left
    /// (Mailchimp's `UNSUB_TIME`, `CLEAN_TIME`).
    LeftWhenFilled(Vec<usize>),
    /// The cell's value (lowercased) says; values not listed are
    /// [`Standing::Subscribed`].
    Values {
        column: usize,
        left: &'static [&'static str],
        unconfirmed: &'static [&'static str],
    },
}

/// A file's columns, as its header (or the lack of one) gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub format: Format,
    email: usize,
    name: NameColumns,
    standing: StandingRule,
}

const FALSE: &[&str] = &["false", "no", "0", "n", "f"];
const TRUE: &[&str] = &["true", "yes", "1", "y", "t"];

impl Layout {
    /// A file without a header: `email,name`.
    pub fn headerless() -> Self {
        Self {
            format: Format::Plain,
            email: 0,
            name: NameColumns::One(1),
            standing: StandingRule::Subscribed,
        }
    }

    /// The layout a header row names, if the row is a header: it must name
    /// an email column. `names` are the row's cells.
    pub fn from_header(names: &[&str]) -> Option<Self> {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        let has = |wanted: &str| find(&[wanted]).is_some();
        let email = find(&["email", "e-mail", "email address", "email_address", "e-mail address"])?;
        let name_column = find(&["name", "full name", "full_name"]);
        let one_name = name_column.map_or(NameColumns::None, NameColumns::One);
        let values = |column: usize, left, unconfirmed| StandingRule::Values {
            column,
            left,
            unconfirmed,
        };
        let layout = |format, name, standing| Self {
            format,
            email,
            name,
            standing,
        };

        let mailchimp_marks = [
            "first name",
            "last name",
            "member_rating",
            "optin_time",
            "confirm_time",
            "leid",
            "euid",
            "unsub_time",
            "clean_time",
        ];
        if names[email] == "email address" && mailchimp_marks.iter().any(|m| has(m)) {
            let left: Vec<usize> = [find(&["unsub_time"]), find(&["clean_time"])]
                .into_iter()
                .flatten()
                .collect();
            let name = match (find(&["first name"]), find(&["last name"])) {
                (None, None) => one_name,
                (first, last) => NameColumns::FirstLast(first, last),
            };
            return Some(layout(Format::Mailchimp, name, StandingRule::LeftWhenFilled(left)));
        }
        if has("uuid")
            && has("attributes")
            && let Some(status) = find(&["status"])
        {
            return Some(layout(
                Format::Listmonk,
                one_name,
                values(status, &["blocklisted", "disabled"], &[]),
            ));
        }
        if let Some(subscribed) = find(&["subscribed_to_emails", "subscribed"])
            && ["labels", "complimentary_plan", "stripe_customer_id", "note"]
                .iter()
                .any(|m| has(m))
        {
            return Some(layout(Format::Ghost, one_name, values(subscribed, FALSE, &[])));
        }
        if ["active_subscription", "email_disabled", "expiry"]
            .iter()
            .any(|m| has(m))
        {
            let standing = match find(&["email_disabled"]) {
                Some(disabled) => values(disabled, TRUE, &[]),
                None => StandingRule::Subscribed,
            };
            return Some(layout(Format::Substack, one_name, standing));
        }
        if let Some(kind) = find(&["subscriber_type", "type"])
            && ["creation_date", "notes", "tags", "metadata"].iter().any(|m| has(m))
        {
            return Some(layout(
                Format::Buttondown,
                one_name,
                values(
                    kind,
                    &[
                        "unsubscribed",
                        "removed",
                        "undeliverable",
                        "complained",
                        "spammy",
                        "blocked",
                    ],
                    &["unactivated"],
                ),
            ));
        }
        if let Some(status) = find(&["status"])
            && has("source")
            && name_column.is_some()
        {
            return Some(layout(
                Format::Gazette,
                one_name,
                values(status, &["unsubscribed", "bounced"], &["pending"]),
            ));
        }
        Some(layout(Format::Header, one_name, StandingRule::Subscribed))
    }

    /// The address cell's index.
    pub fn email(&self) -> usize {
        self.email
    }

    /// The cells whose text is kept (the address and the name), which must
    /// be UTF-8.
    pub fn text_columns(&self) -> impl Iterator<Item = usize> {
        let name = match self.name {
            NameColumns::None => [None, None],
            NameColumns::One(index) => [Some(index), None],
            NameColumns::FirstLast(first, last) => [first, last],
        };
        std::iter::once(self.email).chain(name.into_iter().flatten())
    }

    /// The reader's name from a row's cells (`cell` gives a trimmed cell,
    /// empty when missing).
    pub fn name<'a>(&self, cell: impl Fn(usize) -> &'a str) -> String {
        match self.name {
            NameColumns::None => String::new(),
            NameColumns::One(index) => cell(index).to_owned(),
            NameColumns::FirstLast(first, last) => [first, last]
                .into_iter()
                .flatten()
                .map(&cell)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The row's standing in the tool it came from.
    pub fn standing<'a>(&self, cell: impl Fn(usize) -> &'a str) -> Standing {
        match &self.standing {
            StandingRule::Subscribed => Standing::Subscribed,
            StandingRule::LeftWhenFilled(columns) => match columns.iter().any(|c| !cell(*c).is_empty()) {
                true => Standing::Left,
                false => Standing::Subscribed,
            },
            StandingRule::Values {
                column,
                left,
                unconfirmed,
            } => {
                let value = cell(*column).to_lowercase();
                if left.contains(&value.as_str()) {
                    Standing::Left
                } else if unconfirmed.contains(&value.as_str()) {
                    Standing::Unconfirmed
                } else {
                    Standing::Subscribed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(header: &str) -> Layout {
        let names: Vec<&str> = header.split(',').collect();
        Layout::from_header(&names).expect("a header")
    }

    fn read(layout: &Layout, row: &str) -> (String, Standing) {
        let cells: Vec<&str> = row.split(',').collect();
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        (layout.name(cell), layout.standing(cell))
    }

    #[test]
    fn each_tools_header_is_recognised_with_its_name_and_standing() {
        let mailchimp = layout("Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,UNSUB_TIME");
        assert_eq!(mailchimp.format, Format::Mailchimp);
        assert_eq!(
            read(&mailchimp, "a@x.org,Ada,Lovelace,2,2020-01-01,"),
            ("Ada Lovelace".into(), Standing::Subscribed)
        );
        assert_eq!(
            read(&mailchimp, "a@x.org,,Lovelace,2,2020-01-01,2021-01-01 10:00"),
            ("Lovelace".into(), Standing::Left)
        );
        let cleaned = layout("Email Address,First Name,Last Name,CLEAN_TIME,CLEAN_CAMPAIGN_TITLE");
        assert_eq!(
            read(&cleaned, "a@x.org,Ada,,2021-01-01,"),
            ("Ada".into(), Standing::Left)
        );

        let listmonk = layout("uuid,email,name,attributes,status,created_at,updated_at");
        assert_eq!(listmonk.format, Format::Listmonk);
        assert_eq!(read(&listmonk, "u,a@x.org,Ada,{},blocklisted,,").1, Standing::Left);
        assert_eq!(
            read(&listmonk, "u,a@x.org,Ada,{},enabled,,"),
            ("Ada".into(), Standing::Subscribed)
        );

        let ghost = layout("id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at");
        assert_eq!(ghost.format, Format::Ghost);
        assert_eq!(read(&ghost, "1,a@x.org,Ada,,false,,,").1, Standing::Left);
        assert_eq!(read(&ghost, "1,a@x.org,Ada,,TRUE,,,").1, Standing::Subscribed);

        let substack = layout("email,active_subscription,expiry,plan,email_disabled,created_at");
        assert_eq!(substack.format, Format::Substack);
        assert_eq!(
            read(&substack, "a@x.org,false,,,true,"),
            (String::new(), Standing::Left)
        );
        assert_eq!(read(&substack, "a@x.org,true,,,false,").1, Standing::Subscribed);

        let buttondown = layout("email,subscriber_type,creation_date,notes,tags,metadata");
        assert_eq!(buttondown.format, Format::Buttondown);
        assert_eq!(read(&buttondown, "a@x.org,unsubscribed,,,,").1, Standing::Left);
        assert_eq!(read(&buttondown, "a@x.org,unactivated,,,,").1, Standing::Unconfirmed);
        assert_eq!(read(&buttondown, "a@x.org,regular,,,,").1, Standing::Subscribed);

        let ours = layout("email,name,status,source,created_at,confirmed_at,unsubscribed_at");
        assert_eq!(ours.format, Format::Gazette);
        assert_eq!(read(&ours, "a@x.org,Ada,bounced,form,,,").1, Standing::Left);
        assert_eq!(read(&ours, "a@x.org,Ada,pending,form,,,").1, Standing::Unconfirmed);

        let plain = layout("Name,Signed up,E-mail");
        assert_eq!(plain.format, Format::Header);
        assert_eq!(read(&plain, "Ada,2020,a@x.org"), ("Ada".into(), Standing::Subscribed));
        assert!(Layout::from_header(&["name", "address"]).is_none(), "no email column");
    }
}
