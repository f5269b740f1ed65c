//! `lscp-mail new`: next month's issue from the last, as an editor runs it, then `check`.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs lscp-mail in `dir` (no configuration file there: the built-in defaults, issues in
/// ./issues).
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = crate::common::lscp_mail(args)
        .current_dir(dir)
        .output()
        .expect("lscp-mail runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped issue `name` copied into the working folder's issues/.
fn copy_issue(name: &str, into: &Path) {
    crate::common::issues::copy_issue_into(name, &into.join("issues"));
}

#[test]
fn new_2026_03_from_2026_02_keeps_what_stays_true_and_passes_check_but_not_strict() {
    let work = tempfile::tempdir().expect("temp dir");
    let from = root().join("issues/2026-02");
    let (code, stdout, stderr) = run_in(
        work.path(),
        &["new", "2026-03", "--from", from.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("to be published Monday 2 March 2026"),
        "{stdout}"
    );

    let dir = work.path().join("issues/2026-03");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the new folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "01-lscp-training-new-dates-for-2026.toml",
            "02-save-to-your-favourites.toml",
            "03-dates-for-your-diary.toml",
            "issue.toml",
        ],
        "articles are not copied"
    );
    let issue = read(&dir.join("issue.toml"));
    assert!(issue.contains("month = \"2026-03\""), "{issue}");
    assert!(issue.contains("published = 2026-03-02"), "{issue}");
    assert!(issue.contains("subject = \"TO WRITE:"), "{issue}");
    assert!(
        issue.contains("contents = true"),
        "other keys stay: {issue}"
    );

    let training = read(&dir.join("01-lscp-training-new-dates-for-2026.toml"));
    assert!(
        !training.contains("Tuesday 24 February 2026"),
        "the past session is dropped"
    );
    assert!(
        !training.contains("Introduction to family help"),
        "a course with no session left is dropped"
    );
    assert!(training.contains("Tuesday 14 April 2026, 9am to 3.15pm"));
    assert!(
        training.contains("# The newsletter gives this course no dates."),
        "comments survive"
    );
    assert_eq!(
        read(&dir.join("02-save-to-your-favourites.toml")),
        read(&root().join("issues/2026-02/06-save-to-your-favourites.toml")),
        "saved links are kept as they are"
    );

    let (code, stdout, _) = run_in(work.path(), &["check", "issues/2026-03"]);
    assert_eq!(code, 0, "placeholders are warnings:\n{stdout}");
    for field in ["title", "subject", "preheader", "intro"] {
        assert!(
            stdout.contains(&format!("warning: {field} still to write")),
            "{field}:\n{stdout}"
        );
    }
    assert!(stdout.contains("0 errors, 4 warnings"), "{stdout}");
    let (code, _, _) = run_in(work.path(), &["check", "issues/2026-03", "--strict"]);
    assert_eq!(code, 1, "--strict fails until they are written");
}

#[test]
fn new_from_a_special_edition_keeps_its_training_groups_listed_by_title() {
    let work = tempfile::tempdir().expect("temp dir");
    let from = root().join("tests/fixtures/special-edition");
    let (code, stdout, stderr) = run_in(
        work.path(),
        &["new", "2026-07", "--from", from.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let dir = work.path().join("issues/2026-07");
    let training = read(&dir.join("01-training.toml"));
    assert_eq!(
        training,
        read(&from.join("01-training.toml")),
        "courses listed by title have no dates to pass: every group stays as written"
    );
    assert!(
        stdout.contains("01-training.toml: 6 of 6 courses"),
        "{stdout}"
    );
    let (code, stdout, _) = run_in(work.path(), &["check", "issues/2026-07"]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn new_starts_from_the_latest_earlier_issue_and_drops_what_is_over_by_then() {
    let work = tempfile::tempdir().expect("temp dir");
    copy_issue("2025-11", work.path());
    copy_issue("2026-02", work.path());
    let (code, stdout, stderr) = run_in(work.path(), &["new", "2026-04"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("from issues/2026-02"), "{stdout}");
    let dir = work.path().join("issues/2026-04");
    let diary = read(&dir.join("03-dates-for-your-diary.toml"));
    assert!(
        !diary.contains("Safer Sleep Week"),
        "over before 1 April: {diary}"
    );
    assert!(!diary.contains("CSE Awareness Day"), "{diary}");
    assert!(diary.contains("World Autism Week"), "{diary}");
    let training = read(&dir.join("01-lscp-training-new-dates-for-2026.toml"));
    assert!(!training.contains("March 2026,"), "March sessions dropped");
    let (code, stdout, _) = run_in(work.path(), &["check", "issues/2026-04"]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn new_refuses_to_overwrite_an_existing_folder_and_writes_nothing() {
    let work = tempfile::tempdir().expect("temp dir");
    copy_issue("2026-02", work.path());
    let existing = work.path().join("issues/2026-03");
    std::fs::create_dir(&existing).expect("mkdir");
    std::fs::write(existing.join("draft.txt"), "mine").expect("write");

    let (code, _, stderr) = run_in(work.path(), &["new", "2026-03"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("issues/2026-03 already exists"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&existing)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["draft.txt"], "nothing written into it");
    let strays: Vec<_> = std::fs::read_dir(work.path().join("issues"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(strays.is_empty(), "no half-written folder: {strays:?}");
}

#[test]
fn new_without_an_earlier_issue_says_so() {
    let work = tempfile::tempdir().expect("temp dir");
    copy_issue("2026-02", work.path());
    let (code, _, stderr) = run_in(work.path(), &["new", "2026-01"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("there is no issue before 2026-01"),
        "{stderr}"
    );
    assert!(!work.path().join("issues/2026-01").exists());
}
