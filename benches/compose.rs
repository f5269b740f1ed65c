//! How long composing a shipped issue takes, in-process.
//!
//! For each folder `issues/YYYY-MM` that loads without errors (one that does not is skipped
//! with a note on stderr), with the built-in templates and the repository's `lscp-mail.toml`:
//!
//! - `load/<issue>`: reading and checking the issue folder (TOML parse + every check);
//! - `all_variants/<issue>`: rendering every email the issue can become, the full issue
//!   (`Audience::Everyone`) plus one per topic variant (`render::variants`), each through
//!   handlebars, mrml and the plain-text part: what `send` does once per campaign;
//! - `mrml_full/<issue>`: the mrml step alone (parse + render) on the full issue's MJML, the
//!   figure comparable with `mjml2html` on the same MJML;
//! - `stage_view`, `stage_handlebars`, `stage_mrml`, `stage_text` `/<issue>`: the parts of
//!   `all_variants`, each over every variant, to see which one dominates.
//!
//! With `LSCP_BENCH_DUMP_MJML=DIR` set it times nothing: it writes the MJML of every variant to
//! `DIR/<issue>/*.mjml` (`everyone.mjml` is the full issue) for `bench/mjml-node.js` and exits.
//! `bench/compose.sh` runs both and prints the comparison; see BENCHMARKS.md.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use lscp_mail::config::{Config, DEFAULT_CONFIG_FILE};
use lscp_mail::content::{Issue, TopicCatalog, load_issue};
use lscp_mail::render::{self, Audience, ReaderLinks, Renderer, view::EmailView};

struct Shipped {
    id: String,
    dir: PathBuf,
    issue: Issue,
    links: ReaderLinks,
    /// `Everyone` first, then one per topic variant.
    audiences: Vec<(String, Audience)>,
}

fn issues_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("issues")
}

/// Every `issues/YYYY-MM` folder that loads without errors, oldest first.
fn shipped(config: &Config, catalog: &TopicCatalog) -> Vec<Shipped> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(issues_dir())
        .expect("the issues/ folder is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.join("issue.toml").is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loaded = load_issue(&dir, catalog);
        let errors = loaded.errors().count();
        let Some(issue) = loaded.issue.filter(|_| errors == 0) else {
            eprintln!(
                "note: skipping issues/{id}: it does not load ({errors} error(s)); \
                 run `lscp-mail check issues/{id}`"
            );
            continue;
        };
        let links = ReaderLinks::preview(config, &issue);
        let mut audiences = vec![("everyone".to_string(), Audience::Everyone)];
        for set in render::variants(&issue) {
            let name = set.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("+");
            audiences.push((format!("topics-{name}"), Audience::Topics(set)));
        }
        out.push(Shipped {
            id,
            dir,
            issue,
            links,
            audiences,
        });
    }
    out
}

fn dump_mjml(out: &Path, config: &Config, catalog: &TopicCatalog, issues: &[Shipped]) {
    let renderer = Renderer::new(None).expect("the built-in templates parse");
    for s in issues {
        let dir = out.join(&s.id);
        std::fs::create_dir_all(&dir).expect("can create the dump folder");
        for (name, audience) in &s.audiences {
            let r = renderer
                .render(&s.issue, config, catalog, audience, &s.links)
                .expect("the issue renders");
            std::fs::write(dir.join(format!("{name}.mjml")), &r.mjml).expect("can write MJML");
        }
        eprintln!(
            "wrote {} MJML files for {} to {}",
            s.audiences.len(),
            s.id,
            dir.display()
        );
    }
}

/// The secondary figures: a short measurement, so the whole bench takes about a minute.
fn short<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g
}

fn benches(c: &mut Criterion, config: &Config, catalog: &TopicCatalog, issues: &[Shipped]) {
    let renderer = Renderer::new(None).expect("the built-in templates parse");

    // The headline figures: a longer measurement.
    let mut g = c.benchmark_group("all_variants");
    g.sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // What `send` does: one mrml run for the whole issue, every variant assembled from it.
    for s in issues {
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), s, |b, s| {
            b.iter(|| {
                let all = renderer
                    .render_variants(&s.issue, config, catalog, &s.links)
                    .expect("the issue renders");
                black_box(all);
            })
        });
    }
    g.finish();

    // For comparison: each email rendered on its own, mrml once per variant.
    let mut g = c.benchmark_group("each_alone");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for s in issues {
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), s, |b, s| {
            b.iter(|| {
                for (_, audience) in &s.audiences {
                    let r = renderer
                        .render(&s.issue, config, catalog, audience, &s.links)
                        .expect("the issue renders");
                    black_box(r);
                }
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("mrml_full");
    g.sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for s in issues {
        let mjml = renderer
            .render(&s.issue, config, catalog, &Audience::Everyone, &s.links)
            .expect("the issue renders")
            .mjml;
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), &mjml, |b, mjml| {
            b.iter(|| black_box(renderer.mjml_to_html(black_box(mjml)).expect("mrml")))
        });
    }
    g.finish();

    let mut g = short(c, "load");
    for s in issues {
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), &s.dir, |b, dir| {
            b.iter(|| black_box(load_issue(black_box(dir), catalog)))
        });
    }
    g.finish();

    // The parts of `all_variants`, each over every variant of the issue. Together they are
    // `Renderer::render`: view (content to template data, Markdown to HTML), handlebars
    // (template data to MJML), mrml (MJML to HTML), text (the plain-text part).
    let hb = render::templates::registry(None).expect("the built-in templates parse");
    let mut g = short(c, "stage_view");
    for s in issues {
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), s, |b, s| {
            b.iter(|| {
                for (_, audience) in &s.audiences {
                    black_box(EmailView::new(
                        &s.issue, config, catalog, audience, &s.links,
                    ));
                }
            })
        });
    }
    g.finish();

    let mut g = short(c, "stage_handlebars");
    for s in issues {
        let views: Vec<EmailView> = s
            .audiences
            .iter()
            .map(|(_, a)| EmailView::new(&s.issue, config, catalog, a, &s.links))
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), &views, |b, views| {
            b.iter(|| {
                for view in views {
                    black_box(hb.render("email", view).expect("handlebars"));
                }
            })
        });
    }
    g.finish();

    let mut g = short(c, "stage_mrml");
    for s in issues {
        let mjml: Vec<String> = s
            .audiences
            .iter()
            .map(|(_, a)| {
                renderer
                    .render(&s.issue, config, catalog, a, &s.links)
                    .expect("the issue renders")
                    .mjml
            })
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), &mjml, |b, mjml| {
            b.iter(|| {
                for m in mjml {
                    black_box(renderer.mjml_to_html(m).expect("mrml"));
                }
            })
        });
    }
    g.finish();

    let mut g = short(c, "stage_text");
    for s in issues {
        g.bench_with_input(BenchmarkId::from_parameter(&s.id), s, |b, s| {
            b.iter(|| {
                for (_, audience) in &s.audiences {
                    black_box(render::text::render(
                        &s.issue, config, catalog, audience, &s.links,
                    ));
                }
            })
        });
    }
    g.finish();
}

fn main() {
    // What `lscp-mail compose` run from the repository uses: ./lscp-mail.toml, else the
    // built-in defaults, then the environment.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
    let config =
        Config::load(file.is_file().then_some(file.as_path())).expect("the configuration loads");
    let catalog = config
        .topic_catalog()
        .expect("the configured topics are valid");
    let issues = shipped(&config, &catalog);
    if let Some(out) = std::env::var_os("LSCP_BENCH_DUMP_MJML") {
        dump_mjml(Path::new(&out), &config, &catalog, &issues);
        return;
    }
    for s in &issues {
        eprintln!(
            "issues/{}: {} emails (everyone + {} topic variants)",
            s.id,
            s.audiences.len(),
            s.audiences.len() - 1
        );
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &config, &catalog, &issues);
    c.final_summary();
}
