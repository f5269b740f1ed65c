use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::report::{Report, kb};
use super::{UsageError, code, exit};
use crate::config::Config;
use crate::content::Issue;
use crate::render::{Audience, GMAIL_CLIP_BYTES, Rendered, images, message, variants};

/// Render an issue into a preview: index.html, index.txt and message.eml
///
/// Writes the responsive HTML email, its plain-text part and a complete multipart message
/// that a mail client opens, then prints a summary: sections, topics, size against Gmail's
/// clipping limit, links and warnings. Needs no database and no mail server.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail compose issues/2026-02\n  \
lscp-mail compose issues/2026-02 --topics training,events\n  \
lscp-mail compose issues/2026-02 --out /tmp/preview --open\n\n\
Exit codes: 0 written, 1 the issue has errors (nothing written), 2 bad usage, 3 could not run.")]
pub struct Args {
    /// The issue folder, such as issues/2026-02
    pub issue: PathBuf,

    /// Preview what a reader with only these topics receives (comma-separated)
    #[arg(long, value_name = "TOPICS")]
    pub topics: Option<String>,

    /// Write the three files directly in DIR [default: out/<YYYY-MM>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Open the HTML in the default browser afterwards
    #[arg(long)]
    pub open: bool,

    /// A folder of templates that replace the built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let catalog = config.topic_catalog()?;
        let audience = match &self.topics {
            None => Audience::Everyone,
            Some(list) => Audience::Topics(
                catalog
                    .parse_list(list)
                    .map_err(|e| UsageError(format!("--topics: {e}")))?,
            ),
        };
        let report = Report::build(&self.issue, config, self.templates.as_deref(), &audience)?;
        for d in report.diagnostics() {
            eprintln!("{d}");
        }
        let (Some(issue), Some(rendered)) = (report.issue(), report.rendered.as_ref()) else {
            eprintln!(
                "{}: {} error(s); nothing was written. `lscp-mail check {}` lists them again.",
                self.issue.display(),
                report.error_count(),
                self.issue.display()
            );
            return Ok(code(exit::INPUT));
        };
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| config.compose.out_dir.join(issue.id.to_string()));
        let eml = message::preview(&config.mail, &issue.subject, rendered)?;
        let images = images::publish(issue)?;
        let mut files: Vec<(&str, &[u8])> = vec![
            ("index.html", rendered.html.as_bytes()),
            ("index.txt", rendered.text.as_bytes()),
            ("message.eml", &eml),
        ];
        files.extend(images.iter().map(|i| (i.name.as_str(), i.bytes.as_slice())));
        write_all(&out, &files)?;
        out!("{}", summary(issue, &audience, rendered, &report, &out))?;
        if self.open {
            let html = out.join("index.html");
            open::that_detached(&html)
                .with_context(|| format!("cannot open {} in a browser", html.display()))?;
        }
        Ok(code(exit::OK))
    }
}

/// Writes every file beside its final name first, then renames: a failure leaves the previous
/// preview whole rather than half replaced.
fn write_all(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut staged = Vec::new();
    for (name, bytes) in files {
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        staged.push((tmp, dir.join(name)));
    }
    for (tmp, path) in staged {
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn summary(
    issue: &Issue,
    audience: &Audience,
    rendered: &Rendered,
    report: &Report,
    out: &Path,
) -> String {
    let mut s = String::new();
    let who = match audience {
        Audience::Everyone => "every reader".to_string(),
        Audience::Topics(t) => format!(
            "a reader of {}",
            t.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    s.push_str(&format!("{} ({}) for {who}\n", issue.title, issue.id));
    let included: Vec<_> = issue
        .sections
        .iter()
        .filter(|sec| audience.includes(sec))
        .collect();
    let mut by_topic: BTreeMap<&str, usize> = BTreeMap::new();
    for sec in &included {
        *by_topic
            .entry(sec.topic.as_ref().map_or("everyone", |t| t.as_str()))
            .or_default() += 1;
    }
    let counts: Vec<String> = by_topic.iter().map(|(t, n)| format!("{n} {t}")).collect();
    s.push_str(&format!(
        "  sections  {} of {} ({})\n",
        included.len(),
        issue.sections.len(),
        counts.join(", ")
    ));
    for sec in &included {
        s.push_str(&format!(
            "            - {} [{}{}]\n",
            sec.heading,
            sec.body.kind(),
            sec.topic
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        ));
    }
    let topics: Vec<String> = issue.topics().iter().map(ToString::to_string).collect();
    s.push_str(&format!(
        "  topics    {} ({} reader variants)\n",
        if topics.is_empty() {
            "none".to_string()
        } else {
            topics.join(", ")
        },
        variants(issue).len()
    ));
    let pct = rendered.html.len() * 100 / GMAIL_CLIP_BYTES;
    s.push_str(&format!(
        "  size      {} HTML, {pct}% of Gmail's {} clip limit{}; {} text\n",
        kb(rendered.html.len()),
        kb(GMAIL_CLIP_BYTES),
        if rendered.is_clipped_by_gmail() {
            " (CLIPPED)"
        } else {
            ""
        },
        kb(rendered.text.len())
    ));
    s.push_str(&format!("  links     {}\n", rendered.links().len()));
    s.push_str(&format!("  warnings  {}\n", report.warning_count()));
    let images = issue.local_images().len();
    s.push_str(&format!(
        "wrote {}/index.html, index.txt and message.eml{}\n",
        out.display(),
        match images {
            0 => String::new(),
            1 => " and 1 image".to_string(),
            n => format!(" and {n} images"),
        }
    ));
    s
}
