//! An editor's Markdown as email HTML and as plain text. Raw HTML in the Markdown is shown as
//! text, never passed through: the email's markup is the templates' job alone.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use textwrap::{Options as Wrap, WordSeparator, WordSplitter, WrapAlgorithm};

use crate::content::{Markdown, markdown_link_target};

fn parser(md: &str) -> Parser<'_> {
    Parser::new_ext(md, Markdown::OPTIONS)
}

/// HTML for inside an `<mj-text>`; links get the brand colour inline, since mail clients
/// ignore much of a `<style>` block. A link whose destination `check` would refuse
/// (`javascript:`, `data:`…) is written as its words alone, whoever calls this.
pub fn to_html(md: &Markdown, link_colour: &str) -> String {
    // Links do not nest in CommonMark, but their ends must match their starts: remember
    // whether each open link was written.
    let mut open: Vec<bool> = Vec::new();
    let events = parser(&md.0).map(|e| match e {
        Event::Start(Tag::Link { dest_url, .. }) => {
            let safe = markdown_link_target(&dest_url).is_ok();
            open.push(safe);
            if !safe {
                return Event::Html("".into());
            }
            Event::Html(
                format!(
                    "<a href=\"{}\" style=\"color:{link_colour};text-decoration:underline\">",
                    escape_attr(&dest_url)
                )
                .into(),
            )
        }
        Event::End(TagEnd::Link) => match open.pop() {
            Some(true) => Event::Html("</a>".into()),
            _ => Event::Html("".into()),
        },
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Image { dest_url, .. }) => Event::Text(dest_url),
        Event::End(TagEnd::Image) => Event::Text("".into()),
        other => other,
    });
    let mut html = String::with_capacity(md.0.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A Markdown text that is one paragraph, as inline HTML without its `<p>`, for a line it
/// shares with other words; `None` when it has lists, headings or several paragraphs.
pub fn to_inline_html(md: &Markdown, link_colour: &str) -> Option<String> {
    let html = to_html(md, link_colour);
    let inner = html.trim_end().strip_prefix("<p>")?.strip_suffix("</p>")?;
    (!inner.contains("<p>") && !inner.contains("</p>")).then(|| inner.to_string())
}

/// Plain text wrapped at `width`, with every link written out after its label.
pub fn to_text(md: &Markdown, width: usize) -> String {
    let mut out = TextOut::new(width);
    let mut link: Option<String> = None;
    for event in parser(&md.0) {
        match event {
            Event::Start(Tag::List(start)) => {
                out.depth += 1;
                // The number before the first item: `Item` counts up from it.
                out.numbers.push(start.map(|n| n.saturating_sub(1)));
            }
            Event::End(TagEnd::List(_)) => {
                out.depth = out.depth.saturating_sub(1);
                out.numbers.pop();
                if out.depth == 0 {
                    out.blank_line();
                }
            }
            Event::Start(Tag::Item) => {
                out.flush();
                out.in_item = true;
                if let Some(Some(n)) = out.numbers.last_mut() {
                    *n += 1;
                }
            }
            Event::End(TagEnd::Item) => {
                out.flush();
                out.in_item = false;
            }
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_)) => {
                out.flush();
                if out.depth == 0 {
                    out.blank_line();
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                link = markdown_link_target(&dest_url)
                    .is_ok()
                    .then(|| dest_url.to_string())
            }
            Event::End(TagEnd::Link) => {
                if let Some(url) = link.take() {
                    let address = url.strip_prefix("mailto:").unwrap_or(&url);
                    if !out.line.trim_end().ends_with(address) {
                        out.line.push_str(&format!(" ({address})"));
                    }
                }
            }
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.line.push_str(&t)
            }
            Event::SoftBreak => out.line.push(' '),
            Event::HardBreak => out.flush(),
            _ => {}
        }
    }
    out.flush();
    out.text.trim_end().to_string()
}

struct TextOut {
    width: usize,
    text: String,
    line: String,
    depth: usize,
    /// Per open list, the number of its current item when it is numbered.
    numbers: Vec<Option<u64>>,
    in_item: bool,
}

impl TextOut {
    fn new(width: usize) -> Self {
        Self {
            width,
            text: String::new(),
            line: String::new(),
            depth: 0,
            numbers: Vec::new(),
            in_item: false,
        }
    }

    /// Wraps the pending paragraph or list item into the output.
    fn flush(&mut self) {
        let line = std::mem::take(&mut self.line);
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let indent = "  ".repeat(self.depth.saturating_sub(1));
        let (first, rest) = if self.in_item {
            let marker = match self.numbers.last() {
                Some(Some(n)) => format!("{n}. "),
                _ => "- ".to_string(),
            };
            let under = " ".repeat(marker.len());
            (format!("{indent}{marker}"), format!("{indent}{under}"))
        } else {
            (indent.clone(), indent)
        };
        // Greedy (first-fit) filling, as plain-text mail tools wrap: about half the cost of
        // textwrap's optimal fit, which was the larger part of composing an issue.
        let opts = Wrap::new(self.width)
            .initial_indent(&first)
            .subsequent_indent(&rest)
            .break_words(false)
            .word_separator(WordSeparator::AsciiSpace)
            .word_splitter(WordSplitter::NoHyphenation)
            .wrap_algorithm(WrapAlgorithm::FirstFit);
        for l in textwrap::wrap(line, opts) {
            self.text.push_str(&l);
            self.text.push('\n');
        }
        // A second paragraph inside the same item continues under its text, not as a new bullet.
        self.in_item = false;
    }

    fn blank_line(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            self.text.push('\n');
        }
    }
}

/// Wraps a plain string as a paragraph.
pub fn wrap(text: &str, width: usize) -> String {
    let opts = Wrap::new(width)
        .break_words(false)
        .word_separator(WordSeparator::AsciiSpace)
        .word_splitter(WordSplitter::NoHyphenation)
        .wrap_algorithm(WrapAlgorithm::FirstFit);
    textwrap::wrap(text.trim(), opts).join("\n")
}

pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(s: &str) -> Markdown {
        Markdown(s.to_string())
    }

    #[test]
    fn links_are_written_out_in_plain_text() {
        let text = to_text(
            &md("See the [NWG website](https://www.nwgnetwork.org/) for more."),
            72,
        );
        assert_eq!(
            text,
            "See the NWG website (https://www.nwgnetwork.org/) for more."
        );
    }

    #[test]
    fn an_email_link_whose_label_is_the_address_is_not_repeated() {
        let text = to_text(
            &md("Email [lscp.info@leeds.gov.uk](mailto:lscp.info@leeds.gov.uk)."),
            72,
        );
        assert_eq!(text, "Email lscp.info@leeds.gov.uk.");
    }

    #[test]
    fn a_numbered_list_keeps_its_numbers_and_wraps_under_its_text() {
        let text = to_text(
            &md(
                "Steps:\n\n1. talk to the worker first, and say what worries you\n2. then to their manager\n\n- a bullet",
            ),
            32,
        );
        assert_eq!(
            text,
            "Steps:\n\n1. talk to the worker first, and\n   say what worries you\n2. then to their manager\n\n- a bullet"
        );
        let text = to_text(&md("3. from three\n4. on"), 72);
        assert_eq!(text, "3. from three\n4. on");
    }

    #[test]
    fn bullets_wrap_under_their_own_text() {
        let text = to_text(
            &md(
                "Members will:\n\n- give feedback on the LSCP’s guidance and information that is long enough to wrap\n- share opinions",
            ),
            40,
        );
        assert_eq!(
            text,
            "Members will:\n\n- give feedback on the LSCP’s guidance\n  and information that is long enough to\n  wrap\n- share opinions"
        );
    }

    #[test]
    fn raw_html_in_markdown_is_shown_as_text_not_markup() {
        let html = to_html(&md("Hello <script>alert(1)</script> **there**"), "#000");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("<strong>there</strong>"), "{html}");
    }

    #[test]
    fn a_script_link_is_written_as_its_words_alone() {
        for dest in [
            "javascript:alert(1)",
            "jav&#x61;script:alert(1)",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "vbscript:msgbox(1)",
            "<javascript:alert(1)>",
        ] {
            let md = md(&format!("Click [here]({dest}) or <vbscript:x> now"));
            let html = to_html(&md, "#000");
            assert!(!html.contains("href"), "{dest}: {html}");
            assert!(html.contains("here"), "{dest}: {html}");
            // The plain text writes a link's address after its words, but not this one's.
            let text = to_text(&md, 72);
            assert!(!text.contains('('), "{dest}: {text}");
        }
        let html = to_html(&md("[a](tel:+441132476524) [b](#training)"), "#000");
        assert!(html.contains("href=\"tel:+441132476524\""), "{html}");
        assert!(html.contains("href=\"#training\""), "{html}");
    }

    #[test]
    fn links_carry_the_brand_colour_inline() {
        let html = to_html(&md("[guidance](https://example.org/a?b=1&c=2)"), "#4b2e83");
        assert_eq!(
            html.trim(),
            "<p><a href=\"https://example.org/a?b=1&amp;c=2\" style=\"color:#4b2e83;text-decoration:underline\">guidance</a></p>"
        );
    }

    #[test]
    fn long_urls_are_never_broken_across_lines() {
        let url = "https://www.leedsscp.org.uk/practitioners/local-protocols/a-very-long-path";
        let text = to_text(&md(&format!("Read [this]({url})")), 40);
        assert!(text.contains(url), "{text}");
    }
}
