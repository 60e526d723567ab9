//! `pipe check`, `pipe dag` and `pipe stages`: read-only views of a pipeline
//! file and of the stage registry. None of them touches the cache.

use std::path::Path;

use super::{CliError, EXIT_OK, Outcome, load_pipeline, table};
use pipe_core::kinds::{self, params::Default};

pub fn check(file: &Path, set: &super::SetArgs) -> Outcome {
    let (spec, _) = load_pipeline(file, set)?;
    println!(
        "{}: ok, pipeline `{}` with {} stage{}",
        file.display(),
        spec.name,
        spec.stages.len(),
        if spec.stages.len() == 1 { "" } else { "s" }
    );
    // What each swept or repeated stage expanded to, in file order.
    let mut expanded: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in spec.stages.iter().filter(|s| !s.variant.is_empty()) {
        match expanded.iter_mut().find(|(base, _)| *base == s.base) {
            Some((_, names)) => names.push(&s.name),
            None => expanded.push((&s.base, vec![&s.name])),
        }
    }
    for (base, names) in expanded {
        println!("  {base} -> {} variants: {}", names.len(), names.join(", "));
    }
    Ok(EXIT_OK)
}

pub fn dag(file: &Path, dot: bool, set: &super::SetArgs) -> Outcome {
    let (spec, dag) = load_pipeline(file, set)?;
    print!("{}", if dot { pipe_core::spec::dag::render_dot(&spec) } else { pipe_core::spec::dag::render_text(&spec, &dag) });
    Ok(EXIT_OK)
}

pub fn stages(kind: Option<&str>) -> Outcome {
    let Some(name) = kind else {
        let rows: Vec<Vec<String>> =
            kinds::registry().iter().map(|k| vec![k.name.to_string(), produces(k), k.summary.to_string()]).collect();
        print!("{}", table(&["kind", "produces", "summary"], &rows));
        return Ok(EXIT_OK);
    };
    let Some(k) = kinds::kind(name) else {
        let nearest = pipe_core::suggest::nearest(name, kinds::registry().iter().map(|k| k.name)).map(str::to_string);
        return Err(CliError::NoSuchKind { name: name.to_string(), nearest });
    };
    if k.is_command() {
        println!("{} (version {}): {}\n\n{}", k.name, k.version, k.summary, kinds::command::SYNTAX);
        return Ok(EXIT_OK);
    }
    println!("{} (version {}): {}\nproduces: {}\n", k.name, k.version, k.summary, k.output.describe());
    if !k.inputs.is_empty() {
        let rows: Vec<Vec<String>> = k
            .inputs
            .iter()
            .map(|s| {
                let takes = s.accepts.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
                let count = if s.many.is_list() { "one or more" } else { "one" };
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
                d => pipe_core::kinds::ParamValue::from(d).display(),
            };
            vec![p.name.to_string(), p.ty.describe(), default, p.doc.to_string()]
        })
        .collect();
    print!("{}", table(&["parameter", "type", "default", "description"], &rows));
    Ok(EXIT_OK)
}

/// What a kind produces, as `pipe stages` lists it.
fn produces(k: &kinds::KindDef) -> String {
    if k.is_command() { "what `produces` says".to_string() } else { k.output.describe().to_string() }
}
