//! The preview page: a bar above the email (variant, width, plain text, the `.eml`), the
//! warnings, and the email in a frame whose HTML is exactly what `compose` writes. It is the
//! only page with script: a few lines that reload it when the server has a newer build.

use std::path::Path;

use super::server::{Snapshot, View};
use super::{Build, Ready};
use crate::content::Diagnostic;
use crate::render::markdown::escape_attr as esc;

const PHONE_PX: u32 = 375;
const DESKTOP_PX: u32 = 640;

pub fn render(issue: &Path, snapshot: &Snapshot, view: &View) -> String {
    let (title, body) = match &snapshot.build {
        Build::Ready(ready) => (ready.title.clone(), ready_body(ready, view)),
        Build::Broken { diagnostics } => (
            "The issue has errors".to_string(),
            broken_body(issue, diagnostics),
        ),
        Build::Failed { error } => (
            "The preview cannot be built".to_string(),
            format!(
                "<section class=\"errors\" id=\"errors\"><h1>The preview cannot be built</h1>\
                 <pre>{}</pre><p>Fix it and save: this page updates itself.</p></section>",
                esc(error)
            ),
        ),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Preview: {title}</title><style>{STYLE}</style></head>\
<body data-generation=\"{generation}\">\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>{body}\
<script>{SCRIPT}</script></body></html>\n",
        title = esc(&title),
        generation = snapshot.generation,
    )
}

fn ready_body(ready: &Ready, view: &View) -> String {
    let topics = match view.topic_set(ready) {
        Ok(t) => t,
        Err(e) => {
            return format!(
                "<section class=\"errors\" id=\"errors\"><h1>Unknown topic</h1><p>{}</p>\
                 <p><a href=\"/\">Show the full issue</a></p></section>",
                esc(&e)
            );
        }
    };
    let query = view.query();
    let with = |extra: &str| {
        let joined = [query.as_str(), extra]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("&");
        if joined.is_empty() {
            String::new()
        } else {
            format!("?{joined}")
        }
    };
    let width = if view.phone { PHONE_PX } else { DESKTOP_PX };
    let width_q = if view.phone { "width=phone" } else { "" };
    let part_q = if view.text { "part=text" } else { "" };
    let both = |a: &str, b: &str| {
        [a, b]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("&")
    };

    let mut bar = String::new();
    bar.push_str(&format!(
        "<nav class=\"bar\" aria-label=\"Preview\"><strong>{} ({})</strong>",
        esc(&ready.title),
        esc(&ready.id)
    ));
    // The variant: a form of checkboxes, one per topic the issue uses; none ticked is the full
    // issue. It works without script.
    bar.push_str("<form method=\"get\" action=\"/\"><fieldset><legend>Reader of</legend>");
    for topic in &ready.topics {
        let checked = topics.as_ref().is_some_and(|t| t.contains(topic));
        let label = ready
            .catalog
            .get(topic)
            .map_or(topic.as_str(), |i| i.name.as_str());
        bar.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"topic\" value=\"{v}\"{c}> {l}</label> ",
            v = esc(topic.as_str()),
            c = if checked { " checked" } else { "" },
            l = esc(label)
        ));
    }
    if view.phone {
        bar.push_str("<input type=\"hidden\" name=\"width\" value=\"phone\">");
    }
    if view.text {
        bar.push_str("<input type=\"hidden\" name=\"part\" value=\"text\">");
    }
    bar.push_str(
        "<button type=\"submit\">Show</button> <a href=\"/\">Full issue</a></fieldset></form>",
    );
    bar.push_str(&format!(
        "<span class=\"switch\"><a href=\"{phone}\"{pc}>Phone ({PHONE_PX} px)</a> \
         <a href=\"{desktop}\"{dc}>Desktop ({DESKTOP_PX} px)</a> \
         <a href=\"{html}\"{hc}>HTML</a> <a href=\"{text}\"{tc}>Plain text</a> \
         <a href=\"/message.eml{eml}\" download>Download .eml</a></span></nav>",
        phone = with(&both("width=phone", part_q)),
        desktop = with(part_q),
        html = with(width_q),
        text = with(&both(width_q, "part=text")),
        eml = with(""),
        pc = current(view.phone),
        dc = current(!view.phone),
        hc = current(!view.text),
        tc = current(view.text),
    ));

    let mut body = bar;
    if !ready.warnings.is_empty() {
        body.push_str(&format!(
            "<section class=\"warnings\" id=\"warnings\"><h2>{} warning{}</h2>{}</section>",
            ready.warnings.len(),
            if ready.warnings.len() == 1 { "" } else { "s" },
            diagnostics_list(&ready.warnings)
        ));
    }
    let src = if view.text {
        format!("/email.txt{}", with(""))
    } else {
        format!("/email{}", with(""))
    };
    body.push_str(&format!(
        "<main><iframe id=\"email\" title=\"The email\" src=\"{}\" style=\"width:{width}px\"></iframe></main>",
        esc(&src)
    ));
    body
}

fn current(yes: bool) -> &'static str {
    if yes { " aria-current=\"true\"" } else { "" }
}

fn broken_body(issue: &Path, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    format!(
        "<section class=\"errors\" id=\"errors\"><h1>{} has {errors} error{}</h1>\
         <p>There is no email to show until they are fixed. Save a file and this page updates.</p>\
         {}</section>",
        esc(&issue.display().to_string()),
        if errors == 1 { "" } else { "s" },
        diagnostics_list(diagnostics)
    )
}

/// Each diagnostic as `check` prints it (file:line:column: level: message (field) and hint).
fn diagnostics_list(diagnostics: &[Diagnostic]) -> String {
    let items: String = diagnostics
        .iter()
        .map(|d| {
            format!(
                "<li class=\"{}\"><pre>{}</pre></li>",
                if d.is_error() { "error" } else { "warning" },
                esc(&d.to_string())
            )
        })
        .collect();
    format!("<ul class=\"diagnostics\">{items}</ul>")
}

const STYLE: &str = "body{margin:0;font:15px/1.4 system-ui,sans-serif;background:#e9ebee;color:#1b1b1b}\
.bar{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.5rem 1rem;background:#1d2b4f;color:#fff}\
.bar a{color:#fff}.bar a[aria-current]{font-weight:bold;text-decoration:none;border-bottom:2px solid #fff}\
.bar fieldset{border:0;margin:0;padding:0;display:inline}.bar legend{float:left;margin-right:.5rem}\
.warnings{background:#fff6d5;padding:.5rem 1rem;border-bottom:1px solid #c9a600}\
.errors{background:#fff;padding:1rem;margin:1rem;border-left:6px solid #b00020}\
.diagnostics{list-style:none;padding:0}.diagnostics pre{white-space:pre-wrap;margin:.25rem 0}\
.error pre{color:#8a0016}.warnings h2{font-size:1rem;margin:.25rem 0}\
main{display:flex;justify-content:center;padding:1rem}\
iframe{height:calc(100vh - 8rem);border:0;background:#fff;box-shadow:0 0 0 1px #bbb}\
#status:empty{display:none}#status{margin:0;padding:.25rem 1rem;background:#ffd;color:#333}\
body.stale main{opacity:.4}";

/// Listens for rebuilds; reloads when the server's build is newer than the one shown, keeping
/// the email's scroll position. While a rebuild runs the email is dimmed, never passed off as
/// current.
const SCRIPT: &str = r#"(function(){
var shown=Number(document.body.dataset.generation);
var key="lscp-preview-scroll";
var frame=document.getElementById("email");
if(frame){frame.addEventListener("load",function(){var y=Number(sessionStorage.getItem(key)||0);try{frame.contentWindow.scrollTo(0,y);}catch(e){}});}
var status=document.getElementById("status");
var es=new EventSource("/events");
es.addEventListener("building",function(){document.body.classList.add("stale");status.textContent="Updating…";});
es.addEventListener("built",function(e){
if(Number(e.data)!==shown){
try{if(frame){sessionStorage.setItem(key,String(frame.contentWindow.scrollY||0));}}catch(x){}
location.reload();}
else{document.body.classList.remove("stale");status.textContent="";}
});
es.onerror=function(){status.textContent="The preview server stopped: restart lscp-mail preview, then reload.";};
})();"#;
