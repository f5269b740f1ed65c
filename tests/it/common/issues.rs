//! The shipped issues (`issues/`) as the tests use them: copied for a test to edit, and
//! rendered as `compose` renders them.

use std::path::{Path, PathBuf};

use lscp_mail::config::Config;
use lscp_mail::content::{Issue, TopicCatalog};
use lscp_mail::render::{Audience, ReaderLinks, Rendered, Renderer};

/// A copy of the shipped issue `name` at `folder/NAME`, for a test to edit.
pub fn copy_issue_into(name: &str, folder: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("issues")
        .join(name);
    let dir = folder.join(name);
    std::fs::create_dir_all(&dir).expect("the copy's folder");
    for entry in std::fs::read_dir(&from).expect("the shipped issue") {
        let entry = entry.expect("an entry of the issue");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    dir
}

/// A copy of the shipped issue `name` in a temporary folder of its own, removed when the
/// `TempDir` is dropped.
pub fn copy_issue(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = copy_issue_into(name, tmp.path());
    (tmp, dir)
}

/// `issue` rendered for `audience` with the default configuration, the built-in templates and
/// the links a preview gives.
pub fn render(issue: &Issue, audience: &Audience) -> Rendered {
    let config = Config::default();
    let links = ReaderLinks::preview(&config, issue);
    Renderer::new(None)
        .expect("built-in templates")
        .render(issue, &config, &TopicCatalog::builtin(), audience, &links)
        .expect("renders")
}
