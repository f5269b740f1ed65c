//! The documentation stays true: every command's `--help` has an example and describes every
//! argument, and the walkthroughs in `docs/` run as written, their shown output compared with
//! the real one (`trycmd`); the serving walkthrough's steps in the browser are followed
//! against the real server and what the page says they show is checked.

use clap::CommandFactory;
use lscp_mail::cli::Cli;

/// Every command and subcommand, with its path (`lscp-mail subscribers add`), leaves and
/// branches alike; clap's own `help` subcommand is not ours to document.
fn every_command() -> Vec<(String, clap::Command)> {
    fn walk(path: String, cmd: &clap::Command, into: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(format!("{path} {}", sub.get_name()), sub, into);
        }
        into.push((path, cmd.clone()));
    }
    let mut cli = Cli::command();
    cli.build();
    let mut all = Vec::new();
    walk("lscp-mail".to_owned(), &cli, &mut all);
    all
}

fn long_help(cmd: &clap::Command) -> String {
    cmd.clone().render_long_help().to_string()
}

#[test]
fn every_command_help_shows_an_example() {
    let without: Vec<String> = every_command()
        .into_iter()
        .filter(|(path, cmd)| !long_help(cmd).contains(&format!("\n  {path}")))
        .map(|(path, _)| path)
        .collect();
    assert!(
        without.is_empty(),
        "these commands' --help shows no example of themselves (an indented line starting \
         with the command, in after_help): {without:?}"
    );
}

#[test]
fn every_argument_is_described() {
    let mut undescribed = Vec::new();
    for (path, cmd) in every_command() {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                undescribed.push(format!("{path}: {id}"));
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "these arguments have no description in --help: {undescribed:?}"
    );
}

#[test]
fn check_help_lists_every_exit_code() {
    let (_, check) = every_command()
        .into_iter()
        .find(|(path, _)| path == "lscp-mail check")
        .expect("check is a command");
    let help = long_help(&check);
    for code in ["0 ", "1 ", "2 ", "3 "] {
        assert!(
            help.contains(&format!("Exit codes: {code}")) || help.contains(&format!(", {code}")),
            "check --help does not give exit code {code}:\n{help}"
        );
    }
}

/// A walkthrough page in `docs/`, with what it says to set up in its ```sh blocks before its
/// ```console blocks run: its own database and, when it mails, its own smtp-sink on its port.
struct Walkthrough {
    page: &'static str,
    /// None for a page that needs no database.
    database: Option<&'static str>,
    smtp_port: Option<u16>,
    env: &'static [(&'static str, &'static str)],
}

/// Keep each in step with its page's set-up block.
const WALKTHROUGHS: &[Walkthrough] = &[
    Walkthrough {
        page: "README.md",
        database: None,
        smtp_port: None,
        env: &[],
    },
    Walkthrough {
        page: "docs/operator-guide.md",
        database: None,
        smtp_port: None,
        env: &[],
    },
    Walkthrough {
        page: "docs/subscribers.md",
        database: Some("lscp_mail_subscribers"),
        smtp_port: None,
        env: &[],
    },
    Walkthrough {
        page: "docs/sending.md",
        database: Some("lscp_mail_sending"),
        smtp_port: Some(2526),
        env: &[("LSCP_MAIL_SITE__BASE_URL", "http://127.0.0.1:8080")],
    },
    Walkthrough {
        page: "docs/serving.md",
        database: Some("lscp_mail_serving"),
        smtp_port: Some(2527),
        env: &[("LSCP_MAIL_SITE__BASE_URL", "http://127.0.0.1:8080")],
    },
];

/// The walkthrough's database, absent before the walkthrough starts (it shows `db migrate`
/// creating it) and dropped again afterwards, even when the walkthrough fails.
struct Database {
    admin_url: String,
    name: &'static str,
}

impl Database {
    fn fresh(name: &'static str) -> (Self, String) {
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
        let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
        url.set_path("postgres");
        let db = Database {
            admin_url: url.to_string(),
            name,
        };
        db.drop_it();
        url.set_path(name);
        (db, url.to_string())
    }

    fn drop_it(&self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&self.admin_url)
                    .await
                    .expect("connect to the server's postgres database");
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut admin)
                    .await
                    .expect("drop the walkthrough's database");
            });
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.drop_it();
    }
}

#[test]
fn the_walkthroughs_run_as_written() {
    for walkthrough in WALKTHROUGHS {
        let database = walkthrough.database.map(Database::fresh);
        let _sink = walkthrough
            .smtp_port
            .map(|port| crate::common::smtp_sink::SmtpSink::start_on(port, &[]));
        let cases = trycmd::TestCases::new();
        cases
            .register_bin(
                "lscp-mail",
                std::path::Path::new(env!("CARGO_BIN_EXE_lscp-mail")),
            )
            // An inherited LSCP_MAIL_LOG=debug would add lines the pages do not show.
            .env("LSCP_MAIL_LOG", "warn,sqlx_postgres::options=error");
        if let Some((_, url)) = &database {
            cases.env("DATABASE_URL", url);
        }
        if let Some(port) = walkthrough.smtp_port {
            cases.env("SMTP_URL", format!("smtp://127.0.0.1:{port}"));
        }
        for (key, value) in walkthrough.env {
            cases.env(*key, *value);
        }
        cases.case(walkthrough.page).run();
    }
}

/// A `console` block is a promise that it runs: a page that has one must be among the
/// walkthroughs (`text` is for output that cannot run here, such as a browser's).
#[test]
fn every_page_with_console_blocks_is_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec!["README.md".to_owned(), "ARCHITECTURE.md".to_owned()];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ is there") {
        let name = entry.expect("a docs/ entry").file_name();
        pages.push(format!("docs/{}", name.to_string_lossy()));
    }
    let unrun: Vec<&String> = pages
        .iter()
        .filter(|page| {
            let text = std::fs::read_to_string(root.join(page)).expect("page reads");
            text.lines()
                .any(|l| l.trim_start().starts_with("```console"))
                && !WALKTHROUGHS.iter().any(|w| w.page == page.as_str())
        })
        .collect();
    assert!(
        unrun.is_empty(),
        "these pages have console blocks the tests do not run: {unrun:?}"
    );
}

/// A running `lscp-mail serve`, stopped when the test ends, however it ends.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The line of `page` that starts (after spaces) with `start`: output the page shows.
fn shown_line<'a>(page: &'a str, start: &str) -> &'a str {
    page.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("docs/serving.md shows no line starting {start:?}"))
}

/// A history line of `subscribers show` without its time, which differs from run to run.
fn without_time(line: &str) -> &str {
    // "2026-06-01 09:14:53 UTC  topics_changed …"
    line.trim_start()
        .get(25..)
        .unwrap_or_else(|| panic!("not a history line: {line:?}"))
}

/// Every distinct `{base}{prefix}TOKEN` link in `text`, sorted.
fn links(text: &str, base: &str, prefix: &str) -> Vec<String> {
    let start = format!("{base}{prefix}");
    let mut found: Vec<String> = text
        .match_indices(&start)
        .map(|(at, _)| {
            let token: String = text[at + start.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            format!("{prefix}{token}")
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The serving walkthrough's steps in a browser cannot run as a console block: this follows
/// them with the real binary, as the page tells the operator to, against its own database,
/// sink and port (so it can run beside `the_walkthroughs_run_as_written`), and checks what the
/// page says each step shows.
#[test]
fn the_serving_walkthrough_works_step_by_step_against_the_real_server() {
    use crate::common::web::Visitor;
    use std::io::BufRead;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/serving.md")).expect("the page reads");
    let (database, url) = Database::fresh("lscp_mail_serving_steps");
    let sink = crate::common::smtp_sink::SmtpSink::start(&[]);
    let port = crate::common::free_port();
    // The page's server is on 8080; this one on a port of its own, and so are its links.
    let base = format!("http://127.0.0.1:{port}");
    let as_here = |shown: &str| shown.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let command = |args: &[&str]| {
        let mut cmd = crate::common::lscp_mail(args);
        cmd.env("DATABASE_URL", &url)
            .env("SMTP_URL", sink.url())
            .env("LSCP_MAIL_SITE__BASE_URL", &base)
            .env("LSCP_MAIL_SERVE__LISTEN", format!("127.0.0.1:{port}"))
            .env("LSCP_MAIL_LOG", "warn,sqlx_postgres::options=error");
        cmd
    };
    let run = |args: &[&str]| -> String {
        let out = command(args).output().expect("lscp-mail runs");
        assert!(
            out.status.success(),
            "lscp-mail {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let history_of = |email: &str| run(&["subscribers", "show", email]);

    // 1. The subscribers, then the server, which says where it listens as the page shows.
    run(&["db", "migrate"]);
    run(&["subscribers", "import", "subscribers/example.csv"]);
    let mut child = command(&["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("serve's standard error");
    let serving = Serving(child);
    let mut said = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut said)
        .expect("serve says where it listens");
    assert_eq!(
        said.trim_end(),
        as_here(shown_line(&page, "listening on http://")),
        "serve's first line"
    );

    let tokio = tokio::runtime::Runtime::new().expect("runtime");
    tokio.block_on(async {
        let mut visitor = Visitor::new(&base);
        assert!(page.contains("`curl http://127.0.0.1:8080/healthz` answers `ok`"));
        assert_eq!(visitor.get("/healthz").await.body.trim(), "ok");

        // 2. Amara's links, from the message a dry run writes for her.
        let out = tempfile::tempdir().expect("temp dir");
        let folder = out.path().to_str().expect("a UTF-8 path");
        run(&["send", "issues/2026-02", "--dry-run", "--out", folder]);
        let message = std::fs::read_dir(out.path())
            .expect("the dry run's folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.to_string_lossy()
                    .ends_with("-amara.okafor@example.org.eml")
            })
            .expect("a message for Amara");
        let bytes = std::fs::read(&message).expect("the message reads");
        let parsed = mail_parser::MessageParser::default()
            .parse(&bytes)
            .expect("a message");
        let text = parsed.body_text(0).expect("a text part").into_owned();
        let html = parsed.body_html(0).expect("an HTML part").into_owned();
        let preferences = links(&format!("{text}{html}"), &base, "/p/");
        let unsubscribe = links(&format!("{text}{html}"), &base, "/u/");
        assert_eq!(
            preferences.len(),
            1,
            "one preferences link: {preferences:?}"
        );
        assert_eq!(
            unsubscribe.len(),
            1,
            "one unsubscribe link: {unsubscribe:?}"
        );
        let (prefs, unsub) = (&preferences[0], &unsubscribe[0]);
        assert_eq!(prefs.len() - "/p/".len(), 64, "a token of 64 characters");
        assert_eq!(
            prefs["/p/".len()..],
            unsub["/u/".len()..],
            "both carry her token"
        );

        // 3. Her preferences: masked address, every topic, Save; a change logged from the web.
        let form = visitor.get(prefs).await;
        assert_eq!(form.status, 200);
        for shown in ["a•••@example.org", "Save", "Unsubscribe from everything"] {
            assert!(
                form.body.contains(shown),
                "the page shows {shown}:\n{}",
                form.body
            );
        }
        for topic in lscp_mail::content::TopicCatalog::builtin().info() {
            assert!(form.body.contains(&topic.description), "{}", topic.slug);
        }
        let csrf = form.form_token(prefs);
        let saved = visitor
            .post(
                prefs,
                &[("csrf", &csrf), ("topic", "training"), ("topic", "events")],
            )
            .await;
        assert_eq!(saved.status, 200);
        let history = history_of("amara.okafor@example.org");
        assert!(
            history.contains(without_time(shown_line(&page, "2026-06-01 09:14:53 UTC"))),
            "the change is logged as the page shows:\n{history}"
        );

        // 4. Opening the unsubscribe link changes nothing; the one-click post unsubscribes.
        assert_eq!(visitor.get(unsub).await.status, 200);
        assert!(!history_of("amara.okafor@example.org").contains("unsubscribed"));
        let one_click = Visitor::new(&base)
            .post_raw(
                unsub,
                "application/x-www-form-urlencoded",
                "List-Unsubscribe=One-Click".into(),
            )
            .await;
        assert!(
            page.contains("-d 'List-Unsubscribe=One-Click' http://127.0.0.1:8080/u/TOKEN\n200")
        );
        assert_eq!(one_click.status, 200);
        let history = history_of("amara.okafor@example.org");
        assert_eq!(
            without_time(history.lines().last().expect("a history")),
            without_time(shown_line(&page, "2026-06-01 09:15:10 UTC")),
            "`subscribers show … | tail -1` as the page shows"
        );

        // 5. Sign-up: "Check your inbox", a confirmation link in the sink, Confirm; active.
        let mut dev = Visitor::new(&base);
        let csrf = dev.get("/subscribe").await.form_token("/subscribe");
        let answer = dev
            .post(
                "/subscribe",
                &[
                    ("csrf", &csrf),
                    ("email", "dev.patel@example.org"),
                    ("topic", "training"),
                    ("topic", "events"),
                ],
            )
            .await;
        assert!(answer.body.contains("Check your inbox"), "{}", answer.body);
        assert!(history_of("dev.patel@example.org").contains("pending"));
        let mut confirm = Vec::new();
        for _ in 0..300 {
            confirm = sink
                .dumped()
                .iter()
                .flat_map(|m| links(&m.text(), &base, "/confirm/"))
                .collect();
            if !confirm.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(confirm.len(), 1, "one confirmation link in the sink");
        let opened = dev.get(&confirm[0]).await;
        assert!(opened.body.contains("Confirm"), "{}", opened.body);
        assert!(history_of("dev.patel@example.org").contains("pending"));
        let csrf = opened.form_token(&confirm[0]);
        dev.post(
            &confirm[0],
            &[("csrf", &csrf), ("name", "Dev Patel"), ("organisation", "")],
        )
        .await;
        let dev_history = history_of("dev.patel@example.org");
        for shown in [
            "status:        active",
            "Dev Patel",
            "subscribed",
            "confirmed",
        ] {
            assert!(dev_history.contains(shown), "{shown}:\n{dev_history}");
        }

        // 6. The archive: empty after a dry run; the issue and its calendar files once sent.
        assert!(
            !visitor
                .get("/issues")
                .await
                .body
                .contains("/issues/2026-02")
        );
        run(&["send", "issues/2026-02"]);
        let archive = visitor.get("/issues").await;
        assert!(archive.body.contains("/issues/2026-02"), "{}", archive.body);
        let ics = visitor
            .get("/issues/2026-02/events/dates-for-your-diary-1.ics")
            .await;
        assert!(page.contains("(`/issues/2026-02/events/dates-for-your-diary-1.ics`)"));
        assert_eq!(ics.status, 200);
        assert!(ics.body.starts_with("BEGIN:VCALENDAR"), "{}", ics.body);
    });
    drop(serving);
    drop(database);
}
