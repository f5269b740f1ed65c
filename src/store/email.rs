//! A subscriber's email address: checked once at the edge, then trusted.

use std::fmt;
use std::str::FromStr;

/// The longest address SMTP can carry (RFC 5321 path limit less the angle brackets).
const MAX_LEN: usize = 254;

/// An address a newsletter can be sent to, kept in the form the practitioner gave it
/// (trimmed). Two addresses that differ only in case are the same subscriber: compare
/// [`SubscriberEmail::normalised`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
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
    /// Sending to `élise@…` needs SMTPUTF8 all the way to the mailbox, which most servers on
    /// the way do not offer; refused here rather than failing at every send.
    #[error(
        "`{0}` has letters outside ASCII before the @; such addresses cannot be delivered \
         through most mail servers: ask the practitioner for an ASCII address"
    )]
    NonAsciiLocalPart(String),
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
        let email = &ascii_domain(email)?;
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

    /// An address as the database holds it, trusted as every query that reads one does
    /// (`email AS "email: SubscriberEmail"`), not checked again: a row written before today's
    /// checks (an address with letters outside ASCII before the @) still gets its mail.
    pub fn from_stored(email: String) -> Self {
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

/// The address with its domain in ASCII (punycode) form, so that it goes out on any server;
/// the part before the @ must be ASCII already.
pub fn ascii_domain(email: &str) -> Result<String, EmailError> {
    let invalid = || EmailError::Invalid(email.to_string());
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    if !local.is_ascii() {
        return Err(EmailError::NonAsciiLocalPart(email.to_string()));
    }
    if domain.is_ascii() {
        return Ok(email.to_string());
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
    Ok(format!("{local}@{domain}"))
}

/// `text` with anything shaped like an email address replaced by `[address]`. Mail servers
/// quote the recipient in their replies (`550 5.1.1 <ann@example.org>: unknown user`); a reply
/// is stored and shown with the address taken out, so the delivery record, `status` and
/// erasure never have to find it again.
pub fn redact_addresses(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let local = out.chars().rev().take_while(|&c| is_local_part(c)).count();
            let domain = chars[i + 1..]
                .iter()
                .take_while(|&&c| is_domain_part(c))
                .count();
            if local > 0 && domain > 0 {
                let keep = out.chars().count() - local;
                out = out.chars().take(keep).collect();
                out.push_str("[address]");
                i += 1 + domain;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// RFC 5322's atext and the dot, and any letter (internationalised addresses).
fn is_local_part(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

/// A domain, or an address literal such as `[192.0.2.1]`.
fn is_domain_part(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':')
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
    fn a_server_reply_is_kept_without_the_address_it_quotes() {
        assert_eq!(
            redact_addresses("550 5.1.1 <gone.person@example.org>: Recipient address rejected"),
            "550 5.1.1 <[address]>: Recipient address rejected"
        );
        assert_eq!(
            redact_addresses("550 user Gone.Person+x@Example.ORG unknown; ann@b.org too"),
            "550 user [address] unknown; [address] too"
        );
        assert_eq!(
            redact_addresses("250 2.0.0 Ok: queued as 4F2"),
            "250 2.0.0 Ok: queued as 4F2"
        );
        assert_eq!(redact_addresses("a @ b and @@"), "a @ b and @@");
    }

    #[test]
    fn an_address_with_letters_outside_ascii_before_the_at_is_refused_with_a_reason() {
        let err = SubscriberEmail::parse("élise@exemple.fr").expect_err("refused");
        assert_eq!(
            err,
            EmailError::NonAsciiLocalPart("élise@exemple.fr".into())
        );
        assert!(err.to_string().contains("outside ASCII"), "{err}");
    }

    #[test]
    fn an_internationalised_domain_is_kept_in_its_ascii_form() {
        let e = SubscriberEmail::parse("elise@exemple-été.fr").expect("valid");
        assert_eq!(e.as_str(), "elise@xn--exemple-t-i4ab.fr");
        assert!(e.as_str().is_ascii());
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
