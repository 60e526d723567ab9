//! The TOML walk behind [`super::parse`]: spanned values from `toml`'s
//! recoverable parser, checked against the stage registry.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::read::{HintIfNone, NAME_RULE, input_refs, raw_value, valid_name};
use super::{Diagnostic, PipelineSpec, StageSpec};
use crate::kinds::params::{Default, RawValue, check_value};
use crate::kinds::{self, ArtifactType, KindDef, ParamValue, Params};

const PIPELINE_KEYS: &[&str] = &["name", "seed", "cache", "reports", "repeats", "resplit", "executor"];
const TOP_KEYS: &[&str] = &["pipeline", "stages"];

/// Parses and validates `source` (the text of `file`), collecting every problem.
pub fn parse(file: &Path, source: &str) -> Result<PipelineSpec, Vec<Diagnostic>> {
    let (doc, syntax) = DeTable::parse_recoverable(source);
    let mut errors = syntax_errors(source, &syntax);
    let doc = doc.into_inner();
    let mut spec = PipelineSpec {
        file: file.to_path_buf(),
        name: file.file_stem().and_then(|s| s.to_str()).unwrap_or("pipeline").to_string(),
        seed: 0,
        cache_dir: None,
        reports_dir: None,
        stages: Vec::new(),
        repeats: super::matrix::Repeats::default(),
        executor: super::resources::ExecutorSpec::default(),
        dag: super::dag::Dag::default(),
    };
    for (key, value) in doc.iter() {
        match key.get_ref().as_ref() {
            "pipeline" => pipeline_table(value, &mut spec, &mut errors),
            "stages" => stage_tables(value, &mut spec, &mut errors),
            other => errors.push(
                Diagnostic::new(key.span(), format!("unknown top-level key `{other}`"))
                    .suggest(other, TOP_KEYS.iter().copied())
                    .hint_if_none("a pipeline file has a `[pipeline]` table and `[stages.NAME]` tables"),
            ),
        }
    }
    if spec.stages.is_empty() && syntax.is_empty() {
        errors.push(
            Diagnostic::new(None, "the pipeline has no stages")
                .hint("add a stage, e.g. `[stages.data]` with `kind = \"load\"`; `pipe stages` lists the kinds"),
        );
    }
    // `cache` and `reports` written in the file are relative to it, as its
    // data roots are (the defaults and the command-line flags: to the
    // working folder).
    spec.cache_dir = spec.cache_dir.map(|d| super::resolve_file(file, &d.to_string_lossy()));
    spec.reports_dir = spec.reports_dir.map(|d| super::resolve_file(file, &d.to_string_lossy()));
    check_references(&spec, &mut errors);
    match super::dag::Dag::build(&spec) {
        Err(cycles) => errors.extend(cycles),
        Ok(dag) if errors.is_empty() => {
            let (repeats, written) = (spec.repeats, edges(&spec));
            super::matrix::expand(&mut spec, &dag.order, repeats, &mut errors);
            // A sweep or repeats make another graph; otherwise this one stands.
            spec.dag = if edges(&spec) == written {
                dag
            } else {
                super::dag::Dag::build(&spec).unwrap_or_else(|cycles| {
                    errors.extend(cycles);
                    super::dag::Dag::default()
                })
            };
        }
        Ok(_) => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for stage in &mut spec.stages {
        stage.resolved = super::Resolved::of(stage);
    }
    Ok(spec)
}

/// Each stage's name with the names of the stages it reads: what the DAG is built from.
fn edges(spec: &PipelineSpec) -> Vec<(String, Vec<String>)> {
    spec.stages.iter().map(|s| (s.name.clone(), s.inputs.values().flatten().map(|r| r.stage.clone()).collect())).collect()
}

/// TOML's own errors, with a duplicated `[stages.X]` table said in our words
/// (and the follow-on "duplicate key" errors inside it dropped).
fn syntax_errors(source: &str, syntax: &[toml::de::Error]) -> Vec<Diagnostic> {
    let line_of = |at: usize| source[..at.min(source.len())].matches('\n').count();
    let mut out = Vec::new();
    let mut duplicated_table: Option<usize> = None; // line of its header
    for e in syntax {
        let span = e.span();
        let msg = e.message().trim().trim_end_matches('.').to_string();
        let start = span.as_ref().map_or(0, |s| s.start);
        let line_no = line_of(start);
        let line = source.lines().nth(line_no).unwrap_or("").trim();
        if msg == "duplicate key" && line.starts_with('[') {
            duplicated_table = Some(line_no);
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            let what = match header.strip_prefix("stages.") {
                Some(name) => format!("stage `{name}` is defined twice"),
                None => format!("table `[{header}]` is defined twice"),
            };
            out.push(Diagnostic::new(span, what).hint("each name can be used once: rename or merge one of them"));
            continue;
        }
        if msg == "duplicate key"
            && duplicated_table
                .is_some_and(|h| line_no > h && !source.lines().skip(h + 1).take(line_no - h - 1).any(|l| l.trim_start().starts_with('[')))
        {
            continue;
        }
        out.push(Diagnostic::new(span, format!("TOML syntax: {msg}")));
    }
    out
}

fn as_table<'a, 'i>(value: &'a Spanned<DeValue<'i>>, what: &str, errors: &mut Vec<Diagnostic>) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            errors.push(Diagnostic::new(value.span(), format!("{what} must be a table")));
            None
        }
    }
}

fn pipeline_table(value: &Spanned<DeValue>, spec: &mut PipelineSpec, errors: &mut Vec<Diagnostic>) {
    let Some(table) = as_table(value, "`pipeline`", errors) else { return };
    for (key, value) in table.iter() {
        let k = key.get_ref().as_ref();
        let raw = raw_value(value.get_ref());
        let span = value.span();
        match k {
            "name" => match raw {
                RawValue::Str(s) if valid_name(&s) => spec.name = s,
                RawValue::Str(s) => {
                    errors.push(Diagnostic::new(span, format!("pipeline name `{s}` is not usable as a folder name")).hint(NAME_RULE))
                }
                _ => errors.push(Diagnostic::new(span, "`name` must be a string")),
            },
            "seed" => match raw {
                RawValue::Int(i) if i >= 0 => spec.seed = i as u64,
                _ => errors.push(Diagnostic::new(span, "`seed` must be a non-negative integer")),
            },
            "repeats" => match raw {
                RawValue::Int(n) if (1..=100).contains(&n) => spec.repeats.repeats = Some(n as u32),
                _ => errors.push(Diagnostic::new(span, "`repeats` must be an integer in 1..=100")),
            },
            "resplit" => match raw {
                RawValue::Bool(b) => spec.repeats.resplit = b,
                _ => errors.push(Diagnostic::new(span, "`resplit` must be true or false")),
            },
            "executor" => spec.executor = super::resources::read_executor(value, errors),
            "cache" | "reports" => match raw {
                RawValue::Str(s) if !s.trim().is_empty() => {
                    let dir = Some(PathBuf::from(s));
                    if k == "cache" { spec.cache_dir = dir } else { spec.reports_dir = dir }
                }
                _ => errors.push(Diagnostic::new(span, format!("`{k}` must be a folder path (a string)"))),
            },
            other => errors.push(
                Diagnostic::new(key.span(), format!("unknown key `{other}` in `[pipeline]`"))
                    .suggest(other, PIPELINE_KEYS.iter().copied())
                    .hint_if_none("`[pipeline]` takes name, seed, cache, reports, repeats, resplit and an `executor` table"),
            ),
        }
    }
}

fn stage_tables(value: &Spanned<DeValue>, spec: &mut PipelineSpec, errors: &mut Vec<Diagnostic>) {
    let Some(table) = as_table(value, "`stages`", errors) else { return };
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        if !valid_name(name) {
            errors.push(Diagnostic::new(key.span(), format!("stage name `{name}` is not allowed")).hint(NAME_RULE));
            continue;
        }
        let Some(body) = as_table(value, &format!("stage `{name}`"), errors) else { continue };
        if let Some(stage) = stage_table(name, key.span(), body, errors) {
            spec.stages.push(stage);
        }
    }
}

fn stage_table(name: &str, span: Range<usize>, body: &DeTable, errors: &mut Vec<Diagnostic>) -> Option<StageSpec> {
    let kind_entry = body.iter().find(|(k, _)| k.get_ref().as_ref() == "kind");
    let Some((_, kind_value)) = kind_entry else {
        errors.push(Diagnostic::new(span, format!("stage `{name}` has no `kind`")).hint(kinds_hint()));
        return None;
    };
    let kind = resolve_kind(kind_value, errors)?;
    if kind.is_command() {
        return super::command::stage_table(name, span, body, errors);
    }
    let before = errors.len();
    let mut inputs = BTreeMap::new();
    let mut given: BTreeMap<&str, ParamValue> = BTreeMap::new();
    let mut sweep = super::matrix::Sweep::default();
    let mut resources = super::resources::Resources::default();
    for (key, value) in body.iter() {
        let k = key.get_ref().as_ref();
        if k == "kind" {
            continue;
        }
        if k == "matrix" {
            sweep.params = super::matrix::read_matrix(name, kind, value, errors);
        } else if k == "repeats" {
            sweep.repeats = super::matrix::read_repeats(name, value, errors);
        } else if k == "resources" {
            let keyed = kind.threads == kinds::ThreadUse::Keyed;
            resources = super::resources::read_resources(name, keyed, value, errors);
        } else if let Some(slot) = kind.slot(k) {
            if let Some(refs) = input_refs(name, slot.name, slot.many.is_list(), value, errors) {
                inputs.insert(slot.name.to_string(), refs);
            }
        } else if let Some(def) = kind.param(k) {
            match check_value(&def.ty, &raw_value(value.get_ref())) {
                Ok(v) => {
                    given.insert(def.name, v);
                }
                Err(e) => errors.push(Diagnostic::new(value.span(), format!("stage `{name}`: `{k}`: {}", e.0))),
            }
        } else {
            let valid = kind.params.iter().map(|p| p.name).chain(kind.inputs.iter().map(|s| s.name));
            errors.push(
                Diagnostic::new(key.span(), format!("unknown key `{k}` in stage `{name}` (kind `{}`)", kind.name))
                    .suggest(k, valid)
                    .hint_if_none(&format!("`pipe stages {}` lists its inputs and parameters", kind.name)),
            );
        }
    }
    for slot in kind.inputs.iter().filter(|s| s.required && !inputs.contains_key(s.name)) {
        errors.push(Diagnostic::new(span.clone(), format!("stage `{name}` needs input `{}` ({})", slot.name, slot.doc)).hint(format!(
            "add `{} = \"STAGE\"` naming a stage that produces {}",
            slot.name,
            accepts(slot.accepts)
        )));
    }
    for (param, _) in &sweep.params {
        if given.contains_key(param.as_str()) {
            errors.push(
                Diagnostic::new(span.clone(), format!("stage `{name}` both sets `{param}` and sweeps it in its matrix"))
                    .hint("keep one: the plain value, or the matrix's list"),
            );
        }
    }
    let mut params = BTreeMap::new();
    for def in kind.params.iter() {
        let swept = sweep.params.iter().find(|(p, _)| p == def.name).map(|(_, values)| values[0].clone());
        let value = match given.remove(def.name).or(swept) {
            Some(v) => v,
            None if matches!(def.default, Default::Required) => {
                errors.push(Diagnostic::new(span.clone(), format!("stage `{name}` needs parameter `{}`", def.name)).hint(format!(
                    "{}: {}",
                    def.ty.describe(),
                    def.doc
                )));
                ParamValue::Unset
            }
            None => def.default.into(),
        };
        params.insert(def.name.to_string(), value);
    }
    let params = Params(params);
    if errors.len() == before {
        for problem in kind.params.check(&params) {
            errors.push(Diagnostic::new(span.clone(), format!("stage `{name}`: {problem}")));
        }
    }
    // Kept even when a value was wrong, so its inputs are still checked;
    // the errors already make the whole parse fail.

    Some(StageSpec {
        name: name.to_string(),
        kind,
        inputs,
        params,
        span,
        base: name.to_string(),
        variant: Vec::new(),
        sweep,
        seed: 0,
        resources,
        output: kind.output,
        command: None,
        resolved: super::Resolved::default(),
    })
}

fn kinds_hint() -> String {
    "add `kind = \"...\"`; `pipe stages` lists the kinds of this build".to_string()
}

fn resolve_kind(value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> Option<&'static KindDef> {
    let Some(text) = value.get_ref().as_str() else {
        errors.push(Diagnostic::new(value.span(), "`kind` must be a string").hint(kinds_hint()));
        return None;
    };
    if let Some(kind) = kinds::kind(text) {
        return Some(kind);
    }
    let all = kinds::registry().iter().map(|k| k.name);
    errors.push(Diagnostic::new(value.span(), format!("unknown stage kind `{text}`")).suggest(text, all).hint_if_none(&kinds_hint()));
    None
}

fn accepts(types: &[ArtifactType]) -> String {
    let mut out = Vec::new();
    for t in types {
        let producers: Vec<&str> = kinds::registry().iter().filter(|k| k.output == *t && !k.is_command()).map(|k| k.name).collect();
        out.push(if producers.is_empty() {
            t.describe().to_string()
        } else {
            format!("{} (a {} stage)", t.describe(), producers.join(" or "))
        });
    }
    out.join(" or ")
}

/// Inputs name existing stages of a matching artifact type, each once; a
/// command stage that produces something pipe validates reads the image
/// index from one of its inputs.
fn check_references(spec: &PipelineSpec, errors: &mut Vec<Diagnostic>) {
    let by_name: BTreeMap<&str, &StageSpec> = spec.stages.iter().map(|s| (s.name.as_str(), s)).collect();
    for stage in &spec.stages {
        for (slot_name, refs) in &stage.inputs {
            // A command stage's slots are its own, and take any artifact.
            let slot =
                if stage.command.is_some() { None } else { Some(stage.kind.slot(slot_name).expect("slots were checked against the kind")) };
            let mut seen = BTreeSet::new();
            for r in refs {
                if !seen.insert(r.stage.as_str()) {
                    errors.push(Diagnostic::new(
                        r.span.clone(),
                        format!("stage `{}` lists `{}` twice in `{slot_name}`", stage.name, r.stage),
                    ));
                    continue;
                }
                let Some(target) = by_name.get(r.stage.as_str()) else {
                    errors.push(
                        Diagnostic::new(
                            r.span.clone(),
                            format!(
                                "stage `{}`: input `{slot_name}` names `{}`, which is not a stage of this pipeline",
                                stage.name, r.stage
                            ),
                        )
                        .suggest(&r.stage, by_name.keys().copied()),
                    );
                    continue;
                };
                let Some(slot) = slot else { continue };
                if !slot.accepts.contains(&target.output) {
                    errors.push(
                        Diagnostic::new(
                            r.span.clone(),
                            format!(
                                "stage `{}`: input `{slot_name}` takes {}, but `{}` is a `{}` stage, which produces {}",
                                stage.name,
                                accepts(slot.accepts),
                                target.name,
                                target.kind.name,
                                target.output.describe()
                            ),
                        )
                        .hint(format!("name a stage that produces {}", accepts(slot.accepts))),
                    );
                }
            }
        }
        if let Some(command) = stage.command.as_ref().filter(|c| c.produces != ArtifactType::Files) {
            let indexed = stage
                .inputs
                .values()
                .flatten()
                .any(|r| by_name.get(r.stage.as_str()).is_some_and(|t| crate::kinds::command::carries_index(t.output)));
            if !indexed && stage.inputs.values().flatten().all(|r| by_name.contains_key(r.stage.as_str())) {
                errors.push(
                    Diagnostic::new(
                        stage.span.clone(),
                        format!(
                            "command stage `{}` produces {}, so it needs an input of images, features or histograms (the images it describes)",
                            stage.name,
                            command.produces.describe()
                        ),
                    )
                    .hint(format!("add `[stages.{}.inputs]` with e.g. `images = \"data\"`; pipe checks the output against that input's index", stage.name)),
                );
            }
        }
    }
}
