//! Redaction for logs: SMTP replies and errors with every address and link token taken out.

/// `text` (an SMTP reply, or an error that may quote one) with every email address and every
/// link token taken out, for logs: servers quote the recipient (`550 5.1.1 <ann@example.org>:
/// Recipient address rejected`), and a token in a quoted link would let anyone act for them.
/// An address is what surrounds an `@`; a token is a run of 22 or more URL-safe base64
/// characters (a 128-bit random value; ours are longer), which no SMTP status code or word is.
pub fn redact(text: &str) -> String {
    let text = crate::store::redact_addresses(text);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        out.push_str(if run.len() >= 22 { "[token]" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if is_token_part(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn is_token_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}
