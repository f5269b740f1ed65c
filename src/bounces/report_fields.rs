//! The fields of a report's machine-readable part, read as the RFCs lay them out: a delivery
//! status notification's per-message and per-recipient blocks (RFC 3464) and a feedback
//! report's fields (RFC 5965).

use super::recognise::{Complaint, Dsn, RecipientStatus};

/// The header-like fields of a report part, in groups separated by blank lines, names
/// lower-cased, continuation lines joined.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = vec![Vec::<(String, String)>::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut().expect("never empty");
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = group.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// `rfc822; ann@example.org` → `ann@example.org`.
fn typed_address(v: &str) -> String {
    let a = v.split_once(';').map_or(v, |(_, a)| a).trim();
    a.trim_matches(['<', '>']).to_string()
}

pub(super) fn parse_dsn(text: &str) -> Dsn {
    let mut dsn = Dsn::default();
    for group in field_groups(text) {
        let get = |name: &str| {
            group
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        // The per-message group has no Action; each per-recipient group has one.
        let Some(action) = get("action") else {
            continue;
        };
        let status = get("status")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default();
        dsn.recipients.push(RecipientStatus {
            action: action
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase(),
            status,
            final_recipient: get("final-recipient").map(|v| typed_address(&v)),
            original_recipient: get("original-recipient").map(|v| typed_address(&v)),
            diagnostic: get("diagnostic-code").map(|v| {
                v.split_once(';')
                    .map_or(v.as_str(), |(_, d)| d)
                    .trim()
                    .to_string()
            }),
        });
    }
    dsn
}

pub(super) fn parse_feedback(text: &str) -> Complaint {
    let mut c = Complaint::default();
    for (name, value) in field_groups(text).into_iter().flatten() {
        match name.as_str() {
            "feedback-type" => c.feedback_type = value.to_ascii_lowercase(),
            "original-rcpt-to" => c
                .original_rcpt_to
                .push(value.trim_matches(['<', '>']).into()),
            _ => {}
        }
    }
    c
}
