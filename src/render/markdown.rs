//! An editor's Markdown as email HTML and as plain text. Raw HTML in the Markdown is shown as
//! text, never passed through: the email's markup is the templates' job alone.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use textwrap::{Options as Wrap, WordSeparator, WordSplitter, WrapAlgorithm};

use crate::content::Markdown;

fn parser(md: &str) -> Parser<'_> {
    Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH)
}

/// HTML for inside an `<mj-text>`; links get the brand colour inline, since mail clients
/// ignore much of a `<style>` block.
pub fn to_html(md: &Markdown, link_colour: &str) -> String {
    let events = parser(&md.0).map(|e| match e {
        Event::Start(Tag::Link { dest_url, .. }) => Event::Html(
            format!(
                "<a href=\"{}\" style=\"color:{link_colour};text-decoration:underline\">",
                escape_attr(&dest_url)
            )
            .into(),
        ),
        Event::End(TagEnd::Link) => Event::Html("</a>".into()),
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Image { dest_url, .. }) => Event::Text(dest_url),
        Event::End(TagEnd::Image) => Event::Text("".into()),
        other => other,
    });
    let mut html = String::with_capacity(md.0.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Plain text wrapped at `width`, with every link written out after its label.
pub fn to_text(md: &Markdown, width: usize) -> String {
    let mut out = TextOut::new(width);
    let mut link: Option<String> = None;
    for event in parser(&md.0) {
        match event {
            Event::Start(Tag::List(_)) => out.depth += 1,
            Event::End(TagEnd::List(_)) => {
                out.depth = out.depth.saturating_sub(1);
                if out.depth == 0 {
                    out.blank_line();
                }
            }
            Event::Start(Tag::Item) => {
                out.flush();
                out.in_item = true;
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
            Event::Start(Tag::Link { dest_url, .. }) => link = Some(dest_url.to_string()),
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
    in_item: bool,
}

impl TextOut {
    fn new(width: usize) -> Self {
        Self {
            width,
            text: String::new(),
            line: String::new(),
            depth: 0,
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
            (format!("{indent}- "), format!("{indent}  "))
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
