//! The configuration's unit tests: what loads, what is refused and how it is said.

// figment's Jail fixes the closures' error type.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;

use super::*;

#[test]
fn colours_are_hex_only_because_they_go_into_style_attributes() {
    assert!(Colour::parse("#4B2E83").is_ok());
    assert!(Colour::parse("#fff").is_ok());
    assert!(Colour::parse("red;background:url(x)").is_err());
    assert!(Colour::parse("#12345").is_err());
}

#[test]
fn contrast_ratios_are_wcags() {
    let c = |s: &str| Colour::parse(s).expect("colour");
    let ratio = |a: &str, b: &str| (c(a).contrast_ratio(&c(b)) * 100.0).round() / 100.0;
    assert_eq!(ratio("#000", "#ffffff"), 21.0);
    assert_eq!(ratio("#ffffff", "#ffffff"), 1.0);
    // WebAIM's checker: #777777 on white is 4.48:1, just short of AA.
    assert_eq!(ratio("#777777", "#fff"), 4.48);
    assert_eq!(ratio("#fff", "#777777"), 4.48);
}

#[test]
fn the_default_brand_meets_wcag_aa() {
    assert_eq!(Config::default().contrast_warnings(), vec![]);
}

#[test]
fn the_shipped_example_file_says_exactly_the_defaults() {
    figment::Jail::expect_with(|_| {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let config = Config::load(Some(&example)).map_err(|e| e.to_string())?;
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&config.brand).ok(),
            serde_json::to_value(&defaults.brand).ok()
        );
        assert_eq!(config.topics, defaults.topics);
        assert_eq!(
            serde_json::to_value(&config.site).ok(),
            serde_json::to_value(&defaults.site).ok()
        );
        assert_eq!(
            serde_json::to_value(&config.serve).ok(),
            serde_json::to_value(&defaults.serve).ok()
        );
        assert_eq!(
            serde_json::to_value(&config.mail).ok(),
            serde_json::to_value(&defaults.mail).ok()
        );
        assert_eq!(
            serde_json::to_value(&config.send).ok(),
            serde_json::to_value(&defaults.send).ok()
        );
        assert_eq!(
            serde_json::to_value(&config.serve).ok(),
            serde_json::to_value(&defaults.serve).ok()
        );
        assert_eq!(
            serde_json::to_value(&config.bounce).ok(),
            serde_json::to_value(&defaults.bounce).ok()
        );
        assert!(config.dkim.is_none());
        Ok(())
    });
}

#[test]
fn database_and_smtp_urls_come_from_their_usual_variables_and_stay_secret() {
    use secrecy::ExposeSecret;
    figment::Jail::expect_with(|jail| {
        jail.set_env("DATABASE_URL", "postgres://app:s3cret@db:5432/news");
        jail.set_env("SMTP_URL", "smtp://mailer:hunter2@smtp.example.org:587");
        jail.set_env("LSCP_MAIL_SITE__BASE_URL", "https://news.example.org");
        let config = Config::from_figment(Figment::new()).map_err(|e| e.to_string())?;
        assert_eq!(
            config.database_url.as_ref().map(|u| u.expose_secret()),
            Some("postgres://app:s3cret@db:5432/news")
        );
        assert_eq!(config.site.base_url.as_str(), "https://news.example.org");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("hunter2"),
            "{debug}"
        );
        Ok(())
    });
}

#[test]
fn the_log_filter_variable_is_not_mistaken_for_a_setting() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LSCP_MAIL_LOG", "debug");
        Config::from_figment(Figment::new()).map_err(|e| e.to_string())?;
        Ok(())
    });
}

#[test]
fn give_up_after_reads_as_people_write_lengths_of_time() {
    use std::time::Duration;
    for (text, secs) in [("3d", 259_200), ("12h", 43_200), ("90m", 5_400), ("45", 45)] {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_SEND__GIVE_UP_AFTER", text);
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.send.give_up_after.0,
                Duration::from_secs(secs),
                "{text}"
            );
            Ok(())
        });
    }
    figment::Jail::expect_with(|jail| {
        jail.set_env("LSCP_MAIL_SEND__GIVE_UP_AFTER", "soon");
        let e = Config::load(None).expect_err("not a length of time");
        assert!(e.to_string().contains("give_up_after"), "{e}");
        Ok(())
    });
}

#[test]
fn an_unknown_setting_is_an_error_not_ignored() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("lscp-mail.toml", "[brand]\norganisaton = \"Typo\"\n")?;
        let err = Config::load(Some(Path::new("lscp-mail.toml"))).expect_err("typo refused");
        assert!(err.to_string().contains("organisaton"), "{err}");
        Ok(())
    });
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LSCP_MAIL_SEND__RATE", "fast");
        let err = Config::load(None).expect_err("not a rate");
        let message = err.to_string();
        assert!(message.contains("`send.rate`"), "{message}");
        assert!(message.contains("LSCP_MAIL_SEND__RATE"), "{message}");
        let cause = std::error::Error::source(&err).expect("figment's error is kept");
        assert!(cause.to_string().contains("fast"), "{cause}");
        Ok(())
    });
}

#[test]
fn a_value_that_reads_but_cannot_be_used_names_its_variable_and_keeps_the_cause() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LSCP_MAIL_SEND__BATCH", "0");
        let err = Config::load(None).expect_err("a batch of nothing");
        assert!(err.to_string().contains("LSCP_MAIL_SEND__BATCH"), "{err}");
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env("LSCP_MAIL_MAIL__FROM", "not an address");
        let err = Config::load(None).expect_err("not a mailbox");
        assert!(err.to_string().contains("LSCP_MAIL_MAIL__FROM"), "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "lettre's reason is kept: {err:?}"
        );
        Ok(())
    });
}

#[test]
fn a_url_an_address_or_a_mailbox_that_does_not_parse_is_said_with_its_value_and_reason() {
    for (variable, value, expected) in [
        (
            "LSCP_MAIL_SITE__BASE_URL",
            "news.example.org",
            "invalid configuration: `site.base_url` = \"news.example.org\" (LSCP_MAIL_SITE__BASE_URL) is not an http(s) URL",
        ),
        (
            "LSCP_MAIL_BRAND__WEBSITE",
            "ftp://example.org",
            "invalid configuration: `brand.website` = \"ftp://example.org\" (LSCP_MAIL_BRAND__WEBSITE) is not an http(s) URL",
        ),
        (
            "LSCP_MAIL_SERVE__LISTEN",
            "localhost",
            "invalid configuration: `serve.listen` = \"localhost\" (LSCP_MAIL_SERVE__LISTEN) is not an address and port like \"127.0.0.1:8080\"",
        ),
        (
            "LSCP_MAIL_MAIL__REPLY_TO",
            "nobody",
            "invalid configuration: `mail.reply_to` = \"nobody\" (LSCP_MAIL_MAIL__REPLY_TO) is not an address like \"Name <name@example.org>\"",
        ),
    ] {
        figment::Jail::expect_with(|jail| {
            jail.set_env(variable, value);
            let err = Config::load(None).expect_err(value);
            assert_eq!(err.to_string(), expected);
            Ok(())
        });
    }
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "lscp-mail.toml",
            "[site]\nbase_url = \"https://news.example.org\"\n[serve]\nlisten = \"[::1]:9000\"\n",
        )?;
        let config = Config::load(Some(Path::new("lscp-mail.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(
            config.site.base_url.to_string(),
            "https://news.example.org",
            "as written"
        );
        assert_eq!(config.site.url("/p/x"), "https://news.example.org/p/x");
        assert_eq!(
            config.serve.listen,
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9000))
        );
        assert_eq!(
            config.mail.from.to_string(),
            Mail::default().from.to_string()
        );
        Ok(())
    });
}

#[test]
fn a_bad_value_in_a_file_names_the_file_as_given() {
    figment::Jail::expect_with(|jail| {
        std::fs::create_dir_all(jail.directory().join("settings")).map_err(|e| e.to_string())?;
        let given = jail.directory().join("settings/lscp-mail.toml");
        std::fs::write(
            &given,
            "[send]\nbatch = 0\n[brand]\norganisaton = \"Typo\"\n",
        )
        .map_err(|e| e.to_string())?;
        let err = Config::load(Some(&given)).expect_err("typo refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!("in {}", given.display())),
            "the whole path, not lscp-mail.toml alone: {message}"
        );
        assert!(message.contains("`brand.organisaton`"), "{message}");
        jail.create_file("settings/lscp-mail.toml", "[send]\nbatch = 0\n")?;
        let relative = Path::new("settings/lscp-mail.toml");
        let err = Config::load(Some(relative)).expect_err("a batch of nothing");
        assert!(
            err.to_string()
                .contains("`send.batch` = \"0\" (in settings/lscp-mail.toml)"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_tagged_address_carries_its_tag_and_finds_it_again() {
    let a = TaggedAddress::parse("bounces@News.Example.org").expect("address");
    assert_eq!(a.with_tag("abc"), "bounces+abc@News.Example.org");
    assert_eq!(a.tag_of("<Bounces+abc@news.example.org>"), Some("abc"));
    assert_eq!(a.tag_of("bounces@news.example.org"), None);
    assert_eq!(a.tag_of("other+abc@news.example.org"), None);
    assert!(TaggedAddress::parse("bounces+x@example.org").is_err());
    assert!(TaggedAddress::parse("Name <bounces@example.org>").is_err());
    assert!(TaggedAddress::parse("bounces").is_err());
}

#[test]
fn a_password_in_a_url_is_never_shown() {
    assert_eq!(
        redact_url("postgres://app:s3cret@db.internal:5432/news"),
        "postgres://app:***@db.internal:5432/news"
    );
    assert_eq!(redact_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
}

#[test]
fn a_password_given_as_a_url_parameter_is_never_shown() {
    assert_eq!(
        redact_url("postgres://app@db/news?password=s3cret&sslmode=require&sslpassword=k3y"),
        "postgres://app@db/news?password=***&sslmode=require&sslpassword=***"
    );
    assert_eq!(
        redact_url("postgres://app:pw@db/news?PASSWORD=s3cret"),
        "postgres://app:***@db/news?PASSWORD=***"
    );
}
