//! The handlebars templates: built into the binary from `templates/`, and replaceable one file
//! at a time by a folder the user names (`--templates DIR` or `compose.templates`).

use std::path::{Path, PathBuf};

use handlebars::Handlebars;

use super::RenderError;
use crate::content::{Diagnostic, Rule};

/// The built-in templates, `templates/` embedded in the binary (in debug builds too, so a
/// binary moved away from its sources still renders).
#[derive(rust_embed::RustEmbed)]
#[folder = "templates/"]
#[include = "*.mjml.hbs"]
struct Builtin;

const EXTENSION: &str = ".mjml.hbs";

/// The name of every template file, its path under `templates/`, for error hints: the files
/// embedded, so a template added to the folder is known without a list to keep in step.
pub fn template_files() -> impl Iterator<Item = std::borrow::Cow<'static, str>> {
    Builtin::iter()
}

/// The name a template file is registered under, which partials are called by: its file name
/// without the folder and extension (`partials/footer.mjml.hbs` is `footer`).
fn registered_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(EXTENSION).unwrap_or(file)
}

/// A warning for each file in `dir` that replaces no built-in template: a misspelt
/// `fotter.mjml.hbs` would otherwise leave the built-in footer in place without a word.
/// Hidden files (editors' swap and backup files) are left alone; a missing folder is the
/// renderer's error, not a warning.
pub fn unused_override_warnings(dir: &Path) -> Vec<Diagnostic> {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(dir).ok()?;
            let name = relative.to_str()?.replace(std::path::MAIN_SEPARATOR, "/");
            if template_files().any(|t| t == name) {
                return None;
            }
            // A misspelt name, or a right name in the wrong folder (`footer.mjml.hbs` at the top).
            let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
            let closest = template_files()
                .map(|t| {
                    let d = strsim::levenshtein(&name, &t)
                        .min(strsim::levenshtein(&base(&name), &base(&t)));
                    (d, t)
                })
                .min()
                .filter(|(d, _)| *d <= 4);
            let hint = match closest {
                Some((_, t)) => format!("did you mean `{t}`?"),
                None => format!(
                    "the templates are: {}",
                    template_files().collect::<Vec<_>>().join(", ")
                ),
            };
            Some(
                Diagnostic::warning(
                    Rule::UnusedTemplate,
                    &path,
                    format!("`{name}` replaces no template, so it is not used"),
                )
                .hint(hint),
            )
        })
        .collect()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

pub fn registry(overrides: Option<&Path>) -> Result<Handlebars<'static>, RenderError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // Only what HTML and MJML need: handlebars' default also turns `=` into `&#x3D;`, which
    // would make every URL with a query string unreadable to link checkers.
    hb.register_escape_fn(|s| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    });
    hb.register_helper("cut", Box::new(CutHelper { block: false }));
    hb.register_helper("cut-block", Box::new(CutHelper { block: true }));
    if let Some(dir) = overrides
        && !dir.is_dir()
    {
        return Err(RenderError::TemplateDir(dir.to_path_buf()));
    }
    for path in template_files() {
        let (text, origin) = match overrides.map(|d| d.join(&*path)).filter(|p| p.is_file()) {
            Some(p) => {
                let text =
                    std::fs::read_to_string(&p).map_err(|source| RenderError::ReadTemplate {
                        path: p.clone(),
                        source,
                    })?;
                (text, p.display().to_string())
            }
            None => {
                let builtin = Builtin::get(&path).map(|f| f.data).unwrap_or_default();
                let text = String::from_utf8_lossy(&builtin).into_owned();
                (text, format!("built-in templates/{path}"))
            }
        };
        hb.register_template_string(registered_name(&path), text)
            .map_err(|e| RenderError::Template {
                origin,
                source: Box::new(e),
            })?;
    }
    Ok(hb)
}

/// `{{{cut anchor}}}` inside a text block, `{{{cut-block anchor}}}` between sections: see
/// [`super::cut`].
struct CutHelper {
    block: bool,
}

impl handlebars::HelperDef for CutHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc handlebars::Context,
        _: &mut handlebars::RenderContext<'reg, 'rc>,
        out: &mut dyn handlebars::Output,
    ) -> handlebars::HelperResult {
        let anchor = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
        if !anchor
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(handlebars::RenderErrorReason::Other(format!(
                "cut marks take a section anchor, not `{anchor}`"
            ))
            .into());
        }
        if self.block {
            out.write(&super::cut::block_mark(anchor))?;
        } else {
            out.write(&super::cut::mark(anchor))?;
        }
        Ok(())
    }
}
