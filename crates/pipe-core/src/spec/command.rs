//! The `[stages.NAME]` table of a `command` stage: the user's program, what
//! it produces, the code files in its key, its freely named `[inputs]` and
//! its `[params]` of any TOML values (see [`crate::kinds::command`]).

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::read::{HintIfNone, input_refs, raw_value, valid_name};
use super::{Diagnostic, StageSpec};
use crate::kinds::command::{COMMAND, CommandSpec, MAX_THREADS, PRODUCIBLE, parse_duration};
use crate::kinds::params::RawValue;
use crate::kinds::{ArtifactType, ParamValue, Params};

const KEYS: &[&str] = &["kind", "command", "produces", "code", "threads", "timeout", "inputs", "params", "matrix", "repeats", "resources"];

/// Reads a command stage; `None` when what is written cannot make a stage
/// (the errors say why).
pub(super) fn stage_table(name: &str, span: Range<usize>, body: &DeTable, errors: &mut Vec<Diagnostic>) -> Option<StageSpec> {
    let mut argv: Option<Vec<String>> = None;
    let mut produces: Option<ArtifactType> = None;
    let mut code = Vec::new();
    let mut threads = 1;
    let mut timeout_s = None;
    let mut inputs = BTreeMap::new();
    let mut params: BTreeMap<String, ParamValue> = BTreeMap::new();
    let mut sweep = super::matrix::Sweep::default();
    let mut resources = super::resources::Resources::default();
    for (key, value) in body.iter() {
        let span = value.span();
        match key.get_ref().as_ref() {
            "kind" => {}
            "command" => {
                argv = strings(value).filter(|a| !a.is_empty() && !a[0].trim().is_empty()).or_else(|| {
                    errors.push(
                        Diagnostic::new(
                            span,
                            format!("stage `{name}`: `command` must be a non-empty list of strings (the program and its arguments)"),
                        )
                        .hint("e.g. `command = [\"python3\", \"stages/logreg.py\"]`; it runs in the pipeline file's folder"),
                    );
                    None
                })
            }
            "produces" => {
                produces = match value.get_ref().as_str().and_then(|w| PRODUCIBLE.iter().copied().find(|t| t.word() == w)) {
                    Some(t) => Some(t),
                    None => {
                        let words: Vec<String> = PRODUCIBLE.iter().map(|t| t.word()).collect();
                        let written = value.get_ref().as_str().unwrap_or_default();
                        errors.push(
                            Diagnostic::new(span, format!("stage `{name}`: `produces` must be one of {}", quoted(&words)))
                                .suggest(written, words.iter().map(String::as_str))
                                .hint_if_none("`files` is cached and handed on without checks; the others are validated"),
                        );
                        None
                    }
                }
            }
            "code" => match strings(value).or_else(|| value.get_ref().as_str().map(|s| vec![s.to_string()])) {
                Some(globs) if globs.iter().all(|g| !g.trim().is_empty()) => code = globs,
                _ => errors.push(
                    Diagnostic::new(span, format!("stage `{name}`: `code` must be a list of file paths or globs"))
                        .hint("e.g. `code = [\"stages/logreg.py\", \"stages/lib/*.py\"]`, relative to the pipeline file"),
                ),
            },
            "threads" => match raw_value(value.get_ref()) {
                RawValue::Int(n) if (1..=MAX_THREADS).contains(&n) => threads = n as usize,
                _ => errors.push(Diagnostic::new(span, format!("stage `{name}`: `threads` must be an integer in 1..={MAX_THREADS}"))),
            },
            "timeout" => {
                let seconds = match raw_value(value.get_ref()) {
                    RawValue::Int(n) if n > 0 => Some(n as u64),
                    RawValue::Str(s) => parse_duration(&s),
                    _ => None,
                };
                match seconds {
                    Some(s) => timeout_s = Some(s),
                    None => errors.push(
                        Diagnostic::new(span, format!("stage `{name}`: `timeout` must be a duration"))
                            .hint("seconds as an integer, or a string such as \"90s\", \"30m\", \"2h\", \"1d\""),
                    ),
                }
            }
            "inputs" => {
                let Some(table) = table_of(name, "inputs", value, errors) else { continue };
                for (slot, refs) in table.iter() {
                    let slot_name = slot.get_ref().as_ref();
                    if !valid_name(slot_name) {
                        errors.push(
                            Diagnostic::new(slot.span(), format!("stage `{name}`: input name `{slot_name}` is not allowed"))
                                .hint("use letters, digits, `-` and `_`"),
                        );
                    } else if let Some(refs) = input_refs(name, slot_name, true, refs, errors) {
                        inputs.insert(slot_name.to_string(), refs);
                    }
                }
            }
            "params" => {
                let Some(table) = table_of(name, "params", value, errors) else { continue };
                for (param, v) in table.iter() {
                    match to_json(v.get_ref()) {
                        Ok(json) => {
                            params.insert(param.get_ref().to_string(), ParamValue::Json(json));
                        }
                        Err(why) => errors.push(Diagnostic::new(v.span(), format!("stage `{name}`: param `{}`: {why}", param.get_ref()))),
                    }
                }
            }
            "matrix" => sweep.params = read_matrix(name, value, errors),
            "repeats" => sweep.repeats = super::matrix::read_repeats(name, value, errors),
            "resources" => resources = super::resources::read_resources(name, true, value, errors),
            other => errors.push(
                Diagnostic::new(key.span(), format!("unknown key `{other}` in command stage `{name}`"))
                    .suggest(other, KEYS.iter().copied())
                    .hint_if_none(&format!(
                        "the program's own parameters go in `[stages.{name}.params]`; `pipe stages command` lists the keys"
                    )),
            ),
        }
    }
    let missing = |key: &str, hint: &str, errors: &mut Vec<Diagnostic>| {
        errors.push(Diagnostic::new(span.clone(), format!("command stage `{name}` needs `{key}`")).hint(hint.to_string()));
    };
    if argv.is_none() && !body.iter().any(|(k, _)| k.get_ref() == "command") {
        missing("command", "e.g. `command = [\"python3\", \"stages/logreg.py\"]`", errors);
    }
    if produces.is_none() && !body.iter().any(|(k, _)| k.get_ref() == "produces") {
        let words: Vec<String> = PRODUCIBLE.iter().map(|t| t.word()).collect();
        missing("produces", &format!("one of {}", quoted(&words)), errors);
    }
    for (param, _) in &sweep.params {
        if params.contains_key(param) {
            errors.push(
                Diagnostic::new(span.clone(), format!("stage `{name}` both sets param `{param}` and sweeps it in its matrix"))
                    .hint("keep one: the value in `[params]`, or the matrix's list"),
            );
        }
        // The first value stands in until the matrix expands the stage.
        params.insert(param.clone(), sweep.params.iter().find(|(p, _)| p == param).map(|(_, v)| v[0].clone()).unwrap_or(ParamValue::Unset));
    }
    let (argv, produces) = (argv?, produces?);
    Some(StageSpec {
        name: name.to_string(),
        kind: &COMMAND,
        inputs,
        params: Params(params),
        span,
        base: name.to_string(),
        variant: Vec::new(),
        sweep,
        seed: 0,
        resources,
        output: produces,
        command: Some(CommandSpec { argv, produces, code, threads, timeout_s }),
        resolved: Default::default(),
    })
}

fn quoted(words: &[String]) -> String {
    words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
}

/// A list of strings, or `None` for anything else.
fn strings(value: &Spanned<DeValue>) -> Option<Vec<String>> {
    match value.get_ref() {
        DeValue::Array(items) => items.iter().map(|i| i.get_ref().as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn table_of<'a, 'i>(stage: &str, key: &str, value: &'a Spanned<DeValue<'i>>, errors: &mut Vec<Diagnostic>) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            errors.push(
                Diagnostic::new(value.span(), format!("stage `{stage}`: `{key}` must be a table"))
                    .hint(format!("write `[stages.{stage}.{key}]` on its own line, then one `name = value` per line")),
            );
            None
        }
    }
}

/// A stage's `matrix`: each entry a list of distinct values of any TOML
/// type (the program's parameters are its own), in name order (TOML tables
/// do not keep the written one).
fn read_matrix(stage: &str, value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> Vec<(String, Vec<ParamValue>)> {
    let mut out = super::matrix::read_lists(stage, value, errors, |_, _, _| true, |_, item| to_json(item).map(ParamValue::Json));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A TOML value as canonical JSON: what the program reads and the key holds.
fn to_json(value: &DeValue) -> Result<serde_json::Value, String> {
    Ok(match value {
        DeValue::Table(t) => {
            let mut map = serde_json::Map::new();
            for (k, v) in t.iter() {
                map.insert(k.get_ref().to_string(), to_json(v.get_ref())?);
            }
            serde_json::Value::Object(map)
        }
        DeValue::Array(items) => serde_json::Value::Array(items.iter().map(|i| to_json(i.get_ref())).collect::<Result<_, _>>()?),
        DeValue::Datetime(_) => return Err("dates are not supported: write it as a string".into()),
        other => match raw_value(other) {
            RawValue::Int(i) => i.into(),
            RawValue::Float(f) if f.is_finite() => serde_json::Number::from_f64(f).map(serde_json::Value::Number).ok_or("not a number")?,
            RawValue::Float(_) => return Err("nan and inf cannot be passed to a program as JSON".into()),
            RawValue::Bool(b) => b.into(),
            RawValue::Str(s) => s.into(),
            RawValue::Other(what) => return Err(format!("{what} is not supported")),
            RawValue::Array(_) => unreachable!("arrays are handled above"),
        },
    })
}
