//! A subscriber's email address: checked once at the edge, then trusted.

use std::fmt;
use std::str::FromStr;

/// The longest address SMTP can carry (RFC 5321 path limit less the angle brackets).
const MAX_LEN: usize = 254;

/// An address a newsletter can be sent to, kept in the form the practitioner gave it
/// (trimmed). Two addresses that differ only in case are the same subscriber: compare
/// [`SubscriberEmail::normalised`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEmail(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("`{0}` is not an email address")]
    Invalid(String),
    #[error("`{0}` is not an address on an internet domain (such as name@leeds.gov.uk)")]
    NotInternetDomain(String),
}

impl SubscriberEmail {
    pub fn parse(given: &str) -> Result<Self, EmailError> {
        let email = given.trim();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let address =
            lettre::Address::from_str(email).map_err(|_| EmailError::Invalid(email.to_string()))?;
        // lettre accepts `user@localhost` and `user@[10.0.0.1]`, which are never a
        // practitioner's mailbox and usually a typo.
        let domain = address.domain();
        if !domain.contains('.')
            || domain.starts_with('[')
            || domain.parse::<std::net::IpAddr>().is_ok()
        {
            return Err(EmailError::NotInternetDomain(email.to_string()));
        }
        Ok(Self(email.to_string()))
    }

    /// An address read back from the database, where only parsed addresses are written.
    pub(crate) fn from_store(email: String) -> Self {
        Self(email)
    }

    /// As given, for the `To:` header and for display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased: the key that makes `Ann@Example.org` and `ann@example.org` one subscriber.
    pub fn normalised(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SubscriberEmail {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_the_case_it_was_given_but_matches_lower_cased() {
        let e = SubscriberEmail::parse("  Ann.Smith@Example.ORG ").expect("valid");
        assert_eq!(e.as_str(), "Ann.Smith@Example.ORG");
        assert_eq!(e.normalised(), "ann.smith@example.org");
    }

    #[test]
    fn things_that_are_not_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.org",
            "ann@@example.org",
            "ann smith@example.org",
            "Ann <ann@example.org>",
            "ann@localhost",
            "ann@[192.168.1.1]",
            "ann@10.0.0.1",
            "ann@example.org;bob@example.org",
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_address_longer_than_smtp_allows_is_refused() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(SubscriberEmail::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn ordinary_practitioner_addresses_are_accepted() {
        for good in [
            "j.bloggs@leeds.gov.uk",
            "first.last+news@nhs.net",
            "o'neill@example.org",
            "ann@sub.example.org",
        ] {
            assert!(SubscriberEmail::parse(good).is_ok(), "{good:?} was refused");
        }
    }
}
