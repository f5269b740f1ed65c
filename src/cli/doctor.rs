use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::output::OutputError;
use super::{code, exit};
use crate::config::Config;
use crate::mail::dkim;
use crate::mail::smtp::SmtpTarget;
use crate::send::campaign;
use crate::store::Store;

/// Check everything a send needs, and say how to fix what is wrong
///
/// Checks, without changing anything: the configuration loads; the database is reachable and
/// migrated; the mail server takes a session as `send` opens it (EHLO, STARTTLS, AUTH, then
/// MAIL FROM of mail.from and RSET: no mail is sent); the DKIM key file reads (its DNS record
/// is printed, to publish); site.base_url is https; the From address's domain aligns with the
/// DKIM domain; the unsubscribe mailto, if any, is on the From domain.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail doctor\n  \
SMTP_URL=smtp://user:pass@smtp.office365.com:587 lscp-mail --config live.toml doctor\n\n\
Exit codes: 0 every check passed, 1 at least one failed.")]
pub struct Args {}

/// One check's verdict; `fix` says what to do about a ✗.
struct Check {
    ok: bool,
    what: String,
    fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Self {
        Self {
            ok: true,
            what: what.into(),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: false,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn print(&self) -> Result<(), OutputError> {
        outln!("{} {}", if self.ok { "✓" } else { "✗" }, self.what)?;
        if let Some(fix) = &self.fix {
            outln!("    fix: {fix}")?;
        }
        Ok(())
    }
}

impl Args {
    /// Runs before the configuration is loaded, since loading it is the first check.
    pub fn run(self, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
        let config = match Config::load(config_path) {
            Ok(c) => c,
            Err(e) => {
                Check::fail(
                    format!("configuration: {e}"),
                    "correct the file or variable named above (`lscp-mail.toml` documents every setting)",
                )
                .print()?;
                return Ok(code(exit::INPUT));
            }
        };
        let mut checks = vec![Check::pass(match config_path {
            Some(p) => format!("configuration loads ({})", p.display()),
            None => "configuration loads".to_string(),
        })];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        checks.push(runtime.block_on(database(&config)));
        checks.push(runtime.block_on(smtp(&config)));
        checks.extend(dkim_key(&config));
        checks.push(base_url(&config));
        checks.extend(alignment(&config));
        for c in &checks {
            c.print()?;
        }
        let failed = checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            outln!("ready to send")?;
            Ok(code(exit::OK))
        } else {
            outln!("{failed} check(s) failed")?;
            Ok(code(exit::INPUT))
        }
    }
}

async fn database(config: &Config) -> Check {
    let store = match Store::connect(config).await {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                format!("database: {e}"),
                "set DATABASE_URL (or database_url in lscp-mail.toml) to a PostgreSQL database you can reach; `lscp-mail db migrate` creates it",
            );
        }
    };
    match store.pending_migrations().await {
        Ok(p) if p.is_empty() => Check::pass("database reachable and migrated"),
        Ok(p) => Check::fail(
            format!(
                "database reachable, but {} migration(s) not applied: {}",
                p.len(),
                p.join(", ")
            ),
            "run `lscp-mail db migrate` (send would apply them itself)",
        ),
        Err(e) => Check::fail(
            format!("database: {e}"),
            "check that the database user may read the schema",
        ),
    }
}

async fn smtp(config: &Config) -> Check {
    let target = match SmtpTarget::from_config(&config.smtp) {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                format!("mail server: {e}"),
                "set SMTP_URL, such as smtp://user:pass@smtp.office365.com:587",
            );
        }
    };
    let sender = match crate::send::personalise::envelope_sender(config, &config.mail.from.email) {
        Ok(sender) => sender,
        Err(e) => {
            return Check::fail(
                format!("mail.from = {:?}: {e}", config.mail.from.to_string()),
                "set mail.from to a name and address: \"Name <address@domain>\"",
            );
        }
    };
    let limit = Duration::from_secs(config.send.smtp_timeout_seconds);
    match campaign::preflight(&target, &config.mail.message_id_domain, &sender, limit).await {
        Ok(()) => Check::pass(format!(
            "mail server {target} accepts a session and the sender {sender} (nothing was sent)"
        )),
        Err(f) if f.is_permanent() => Check::fail(
            format!("mail server {target}: {f}"),
            format!("check {}", f.suspect()),
        ),
        Err(f) => Check::fail(
            format!("mail server {target} unavailable: {f}"),
            "check the host and port in SMTP_URL, and that this machine may reach it; try again later if the server is down",
        ),
    }
}

const DKIM_FIX: &str = "add a [dkim] section (domain, selector, key_file): Gmail and Yahoo \
want bulk mail signed. `openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out dkim.pem` makes a key; \
run doctor again to see the DNS record to publish";

fn dkim_key(config: &Config) -> Option<Check> {
    let Some(d) = &config.dkim else {
        return Some(Check::fail("DKIM: not configured", DKIM_FIX));
    };
    Some(match dkim::dns_record(d) {
        Ok((name, value)) => Check::pass(format!(
            "DKIM key {} reads; publish this DNS record:\n    {name}. IN TXT \"{value}\"",
            d.key_file.display()
        )),
        Err(e) => Check::fail(
            format!("DKIM: {e}"),
            "point dkim.key_file at the private key: rsa-sha256, a PEM key in PKCS#8 or PKCS#1; ed25519-sha256, a PKCS#8 PEM key or the base64 32-byte seed (see DKIM in docs/sending.md)",
        ),
    })
}

fn base_url(config: &Config) -> Check {
    let url = &config.site.base_url;
    if url.is_https() {
        Check::pass(format!("site.base_url {url} is https"))
    } else {
        Check::fail(
            format!("site.base_url {url} is not https"),
            "serve the site behind a TLS proxy and set site.base_url to its https:// address: mail clients warn of plain links, and unsubscribe links carry a reader's token",
        )
    }
}

/// Relaxed alignment as DMARC has it, approximately: the same domain or one inside the other.
fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

fn alignment(config: &Config) -> Vec<Check> {
    let domain = config.mail.from.email.domain().to_string();
    let mut checks = Vec::new();
    if let Some(d) = &config.dkim {
        checks.push(if aligned(&domain, &d.domain) {
            Check::pass(format!(
                "the From domain {domain} aligns with the DKIM domain {}",
                d.domain
            ))
        } else {
            Check::fail(
                format!(
                    "the From domain {domain} does not align with the DKIM domain {}",
                    d.domain
                ),
                "sign with the From address's domain (dkim.domain), or send from an address on the DKIM domain (mail.from): DMARC fails otherwise",
            )
        });
    }
    if let Some(mailto) = &config.mail.unsubscribe_mailto {
        let to = mailto.to_string();
        let on = mailto.domain();
        checks.push(if aligned(&domain, on) {
            Check::pass(format!("the unsubscribe address {to} is on the From domain"))
        } else {
            Check::fail(
                format!("the unsubscribe address {to} is not on the From domain {domain}"),
                "use an unsubscribe address on the From domain (mail.unsubscribe_mailto): mailbox providers distrust a List-Unsubscribe elsewhere",
            )
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::aligned;

    #[test]
    fn alignment_is_relaxed_as_dmarcs() {
        assert!(aligned("leeds.gov.uk", "leeds.gov.uk"));
        assert!(aligned("news.leedsscp.org.uk", "leedsscp.org.uk"));
        assert!(aligned("LEEDSSCP.org.uk", "news.leedsscp.org.uk"));
        assert!(!aligned("leeds.gov.uk", "leedsscp.org.uk"));
        assert!(!aligned("evilleeds.gov.uk", "leeds.gov.uk"));
    }
}
