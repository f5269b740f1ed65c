//! What makes an email hard to use with a screen reader, judged from the content alone: link
//! words that say nothing once read out of context (screen readers list a page's links on
//! their own), and headings that skip a level (readers move by heading level).

/// Link words that only make sense next to the sentence around them.
const VAGUE_LINK_TEXTS: &[&str] = &[
    "click here",
    "click",
    "here",
    "read more",
    "more",
    "link",
    "this link",
];

/// Why `text`, the words of a link to `dest`, says nothing on its own; `None` when it does.
pub fn vague_link_text(text: &str, dest: &str) -> Option<String> {
    let words = text
        .trim()
        .trim_end_matches(['.', ':', '!', '…', '>', '»', '→', ' '])
        .trim()
        .to_lowercase();
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    if VAGUE_LINK_TEXTS.contains(&words.as_str()) {
        return Some(format!(
            "the link text \"{}\" says nothing out of context",
            text.trim()
        ));
    }
    let bare =
        |s: &str| s.starts_with("http://") || s.starts_with("https://") || s.starts_with("www.");
    if bare(&words) || (!words.is_empty() && words == dest.trim().to_lowercase()) {
        return Some(format!(
            "the link text is the bare address `{}`, which a screen reader spells out",
            text.trim()
        ));
    }
    None
}

/// The first heading (its index in `levels`) that skips a level, with the level it should have
/// been at most: headings go down one level at a time from `under`, the heading the text sits
/// under (2 for a section's `<h2>`).
pub fn skipped_heading(under: u8, levels: &[u8]) -> Vec<(usize, u8)> {
    let mut previous = under;
    let mut skips = Vec::new();
    for (i, &level) in levels.iter().enumerate() {
        if level > previous + 1 {
            skips.push((i, previous + 1));
        }
        previous = level;
    }
    skips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_need_their_sentence_are_vague() {
        for text in [
            "click here",
            "Here",
            "Read more…",
            "  link ",
            "Click\nhere.",
        ] {
            assert!(
                vague_link_text(text, "https://example.org").is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bare_address_is_vague_but_an_email_address_is_not() {
        assert!(vague_link_text("https://example.org/a", "https://example.org/a").is_some());
        assert!(vague_link_text("www.example.org", "https://www.example.org").is_some());
        assert!(
            vague_link_text("lscp.info@leeds.gov.uk", "mailto:lscp.info@leeds.gov.uk").is_none()
        );
        assert!(vague_link_text("the Lullaby Trust", "https://example.org").is_none());
        assert!(vague_link_text("Read more about safer sleep", "https://example.org").is_none());
    }

    #[test]
    fn headings_go_down_one_level_at_a_time() {
        assert_eq!(skipped_heading(2, &[3, 4, 3, 3]), vec![]);
        assert_eq!(skipped_heading(2, &[4]), vec![(0, 3)]);
        assert_eq!(skipped_heading(2, &[3, 5, 2, 4]), vec![(1, 4), (3, 3)]);
    }
}
