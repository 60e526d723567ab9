//! The run's provenance at the end of `report.html`: which pipe, which
//! pipeline file (its blake3), and per stage its kind, key, status,
//! seconds, threads and cluster job, then each compared approach's
//! parameters. `report.html` itself is a cache entry (the same bytes for
//! every run that reuses it), so the engine adds this section to the run
//! folder's copy only: it is the one part of the page that belongs to the
//! run, between `<section id="provenance">` and its `</section>`.

use std::fmt::Write as _;

use crate::record::RunRecord;
use crate::spec::PipelineSpec;

/// Where the engine's section starts, for tools that compare two runs' pages.
pub const START: &str = "<section id=\"provenance\">";
pub const END: &str = "</section>";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The provenance section of the evaluate stage `evaluate` (an index in the
/// run record's stages), with each stage's warnings (from this run or, for
/// a cached stage, from when it ran): a run that diverged says so here too.
pub fn section(spec: &PipelineSpec, record: &RunRecord, evaluate: usize) -> String {
    let file = &spec.file;
    let hash = crate::fsx::read(file).map_or_else(|e| format!("unreadable ({e})"), |b| blake3::hash(&b).to_hex().to_string());
    let mut h = String::new();
    let _ = writeln!(h, "{START}\n<h2>Provenance</h2>");
    let _ = writeln!(
        h,
        "<p>pipe {} &middot; pipeline <code>{}</code> (blake3 <code>{}</code>) &middot; seed {}</p>",
        env!("CARGO_PKG_VERSION"),
        escape(&file.display().to_string()),
        escape(&hash),
        spec.seed
    );
    h.push_str("<table>\n<tr><th>stage</th><th>kind</th><th>key</th><th>status</th><th>seconds</th><th>threads</th><th>job</th></tr>\n");
    for s in &record.stages {
        let threads = if s.threads > 0 { s.threads.to_string() } else { "-".into() };
        let job = match (&s.executor, &s.job_id) {
            (Some(e), Some(id)) => format!("{e}:{id}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{:.2}</td><td>{threads}</td><td>{}</td></tr>",
            escape(&s.name),
            escape(&s.kind),
            &s.key[..12],
            s.status.as_str(),
            s.seconds,
            escape(&job)
        );
    }
    h.push_str("</table>\n");
    let warned: Vec<(&String, &String)> = record.stages.iter().flat_map(|s| s.warnings.iter().map(move |w| (&s.name, w))).collect();
    if !warned.is_empty() {
        h.push_str("<h3>Warnings</h3>\n<ul class=\"warnings\">\n");
        for (name, w) in warned {
            let _ = writeln!(h, "<li><b>{}</b>: {}</li>", escape(name), escape(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h3>Parameters of the compared approaches</h3>\n<table>\n<tr><th>approach</th><th>kind</th><th>parameters</th></tr>\n");
    let compared: Vec<&String> = record.stages[evaluate].inputs.values().flatten().collect();
    for name in compared {
        let Some(stage) = spec.stage(name) else { continue };
        let params: Vec<String> = stage.params.0.iter().map(|(k, v)| format!("{k} = {}", v.to_json())).collect();
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", escape(name), stage.kind.name, escape(&params.join(", ")));
    }
    let _ = writeln!(h, "</table>\n{END}");
    h
}

/// `page` with `section` before its closing `</body>` (at the end if it has none).
pub fn insert(page: &str, section: &str) -> String {
    match page.rfind("</body>") {
        Some(at) => format!("{}{section}{}", &page[..at], &page[at..]),
        None => format!("{page}{section}"),
    }
}

/// `page` without the engine's section: what the evaluate stage wrote.
pub fn strip(page: &str) -> String {
    match (page.find(START), page.find(START).and_then(|s| page[s..].find(END).map(|e| s + e + END.len()))) {
        (Some(start), Some(end)) => format!("{}{}", &page[..start], page[end..].trim_start_matches('\n')),
        _ => page.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_goes_before_the_end_of_the_body_and_comes_out_again() {
        let page = "<html><body><h1>x</h1></body></html>\n";
        let with = insert(page, &format!("{START}<p>run</p>{END}\n"));
        assert_eq!(with, format!("<html><body><h1>x</h1>{START}<p>run</p>{END}\n</body></html>\n"));
        assert_eq!(strip(&with), page);
        assert_eq!(strip(page), page, "a page without the section is left as it is");
    }
}
