//! The documentation stays true: every command's `--help` has an example and describes every
//! argument, and the walkthroughs in `docs/` run as written, their shown output compared with
//! the real one (`trycmd`).

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
