//! Cut marks: the layout puts `<lscp-cut data-s="ANCHOR">` before everything that belongs to a
//! section (its block, its "In this issue" entry) and `data-s=""` before what every reader gets.
//! mrml passes them through untouched, so the whole issue is rendered once and each reader's
//! version is assembled from the pieces, instead of running mrml once per topic combination.

const OPEN: &str = "<lscp-cut data-s=\"";
const CLOSE: &str = "\"></lscp-cut>";

/// The mark for a section's pieces, or for shared ones when `anchor` is empty.
pub fn mark(anchor: &str) -> String {
    // Anchors are made of [a-z0-9-] by the loader, so nothing here needs escaping.
    format!("{OPEN}{anchor}{CLOSE}")
}

/// The mark between sections, where MJML wants raw content wrapped.
pub fn block_mark(anchor: &str) -> String {
    format!("<mj-raw>{}</mj-raw>", mark(anchor))
}

/// A rendering split at its cut marks: each piece with the anchor it belongs to ("" for all).
pub struct Pieces<'a> {
    pieces: Vec<(&'a str, &'a str)>,
}

impl<'a> Pieces<'a> {
    pub fn split(text: &'a str) -> Self {
        let mut pieces = Vec::new();
        let mut anchor = "";
        let mut rest = text;
        while let Some(at) = rest.find(OPEN) {
            pieces.push((anchor, &rest[..at]));
            let after = &rest[at + OPEN.len()..];
            match after.find(CLOSE) {
                Some(end) => {
                    anchor = &after[..end];
                    rest = &after[end + CLOSE.len()..];
                }
                // Not one of ours after all: keep it as text.
                None => {
                    pieces.push((anchor, &rest[at..at + OPEN.len()]));
                    rest = after;
                }
            }
        }
        pieces.push((anchor, rest));
        Self { pieces }
    }

    /// True when every one of `anchors` has at least one piece: the templates carry the marks.
    pub fn covers<'b>(&self, mut anchors: impl Iterator<Item = &'b str>) -> bool {
        anchors.all(|a| self.pieces.iter().any(|(p, _)| *p == a))
    }

    /// The shared pieces and those of the sections `keep` accepts, marks removed.
    pub fn assemble(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::with_capacity(self.pieces.iter().map(|(_, p)| p.len()).sum());
        for (anchor, piece) in &self.pieces {
            if anchor.is_empty() || keep(anchor) {
                out.push_str(piece);
            }
        }
        out
    }
}

/// The text with every cut mark removed.
pub fn strip(text: &str) -> String {
    Pieces::split(text).assemble(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_follow_their_mark_until_the_next() {
        let text = format!("head{}A{}B{}tail", mark("a"), mark("b"), mark(""));
        let p = Pieces::split(&text);
        assert_eq!(p.assemble(|_| true), "headABtail");
        assert_eq!(p.assemble(|a| a == "b"), "headBtail");
        assert_eq!(p.assemble(|_| false), "headtail");
        assert!(p.covers(["a", "b"].into_iter()));
        assert!(!p.covers(["c"].into_iter()));
    }

    #[test]
    fn text_without_marks_is_one_shared_piece() {
        let p = Pieces::split("no marks here");
        assert_eq!(p.assemble(|_| false), "no marks here");
        assert_eq!(
            strip("a<lscp-cut data-s=\"broken"),
            "a<lscp-cut data-s=\"broken"
        );
    }
}
