//! `pipe check`, `pipe dag` and `pipe stages`: read-only views of a pipeline
//! file and of the stage registry. None of them touches the cache.

use std::path::Path;

use super::{EXIT_INVALID, EXIT_OK, load_pipeline, table};
use pipe_core::stages::{self, params::Default};

pub fn check(file: &Path) -> i32 {
    match load_pipeline(file) {
        Ok((spec, _)) => {
            println!(
                "{}: ok, pipeline `{}` with {} stage{}",
                file.display(),
                spec.name,
                spec.stages.len(),
                if spec.stages.len() == 1 { "" } else { "s" }
            );
            EXIT_OK
        }
        Err(code) => code,
    }
}

pub fn dag(file: &Path, dot: bool) -> i32 {
    match load_pipeline(file) {
        Ok((spec, dag)) => {
            print!("{}", if dot { pipe_core::graph::render_dot(&spec) } else { pipe_core::graph::render_text(&spec, &dag) });
            EXIT_OK
        }
        Err(code) => code,
    }
}

pub fn stages(kind: Option<&str>) -> i32 {
    let Some(name) = kind else {
        let rows: Vec<Vec<String>> =
            stages::registry().iter().map(|k| vec![k.name.to_string(), k.output.describe().to_string(), k.summary.to_string()]).collect();
        print!("{}", table(&["kind", "produces", "summary"], &rows));
        return EXIT_OK;
    };
    let Some(k) = stages::kind(name) else {
        let hint = pipe_core::suggest::nearest(name, stages::registry().iter().map(|k| k.name))
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        eprintln!("error: no stage kind `{name}` in this build{hint}; `pipe stages` lists them");
        return EXIT_INVALID;
    };
    println!("{} (version {}): {}\nproduces: {}\n", k.name, k.version, k.summary, k.output.describe());
    if !k.inputs.is_empty() {
        let rows: Vec<Vec<String>> = k
            .inputs
            .iter()
            .map(|s| {
                let takes = s.accepts.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
                let count = if s.many { "one or more" } else { "one" };
                vec![
                    s.name.to_string(),
                    format!("{count}: {takes}"),
                    if s.required { "required" } else { "optional" }.to_string(),
                    s.doc.to_string(),
                ]
            })
            .collect();
        println!("{}", table(&["input", "takes", "", "description"], &rows));
    }
    let rows: Vec<Vec<String>> = k
        .params
        .iter()
        .map(|p| {
            let default = match p.default {
                Default::Required => "required".to_string(),
                Default::Unset => "unset".to_string(),
                d => pipe_core::stages::ParamValue::from(d).display(),
            };
            vec![p.name.to_string(), p.ty.describe(), default, p.doc.trim().to_string()]
        })
        .collect();
    print!("{}", table(&["parameter", "type", "default", "description"], &rows));
    EXIT_OK
}
