//! Sweeps and repeated seeds: a stage's `[stages.NAME.matrix]` table (one
//! list of values per parameter; several give the cross product) and its
//! `repeats = N` (or `[pipeline] repeats` for the training kinds) expand,
//! before any key is computed, into ordinary stages named
//! `NAME[param=value,...]` and `NAME[repeat=K]`.
//!
//! A stage that consumes a swept stage through a one-stage input expands with
//! it and carries the same suffix (`svm[words=50]`); a stage that takes a
//! list of stages (`evaluate`'s `predictions`) takes every variant instead.
//! Variants of two inputs are matched on what they share (the same `repeat`,
//! the same value of the same swept parameter) and crossed otherwise.
//!
//! Repeat K trains with a seed derived from the pipeline seed and K
//! ([`repeat_seed`]; repeat 0 keeps the pipeline seed, so turning repeats on
//! reuses the run already cached). `load` and `augment` keep the pipeline
//! seed, so the split stays fixed, unless `[pipeline] resplit = true`.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::read::HintIfNone;
use super::{Diagnostic, InputRef, PipelineSpec, StageSpec};
use crate::kinds::params::{RawValue, check_value};
use crate::kinds::{KindDef, Many, ParamValue, RepeatsWith};

/// The most stages a pipeline may expand to.
pub const MAX_STAGES: usize = 1000;

/// A stage's sweep as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    /// Parameter -> the values to try (values in the order written,
    /// parameters in the kind's order).
    pub params: Vec<(String, Vec<ParamValue>)>,
    /// `repeats = N` on the stage.
    pub repeats: Option<u32>,
}

impl Sweep {
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.repeats.is_none()
    }
}

/// Reads a stage's `matrix` table: each entry a known parameter of the kind
/// with a non-empty list of values of its type.
pub fn read_matrix(stage: &str, kind: &KindDef, value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> Vec<(String, Vec<ParamValue>)> {
    let known = |name: &str, span: Range<usize>, errors: &mut Vec<Diagnostic>| {
        let found = kind.param(name).is_some();
        if !found {
            errors.push(
                Diagnostic::new(span, format!("stage `{stage}`: the matrix sweeps `{name}`, which kind `{}` does not have", kind.name))
                    .suggest(name, kind.params.iter().map(|p| p.name))
                    .hint_if_none(&format!("`pipe stages {}` lists its parameters", kind.name)),
            );
        }
        found
    };
    let read = |name: &str, item: &DeValue| {
        let def = kind.param(name).expect("checked by `known`");
        check_value(&def.ty, &super::read::raw_value(item)).map_err(|e| e.0)
    };
    let mut out = read_lists(stage, value, errors, known, read);
    // In the kind's parameter order: TOML tables do not keep the written one.
    out.sort_by_key(|(name, _)| kind.params.iter().position(|p| p.name == name));
    out
}

/// A `matrix` table, for any kind: each entry whose name `known` accepts
/// (it reports the others) a non-empty list of at most [`MAX_STAGES`]
/// distinct values, each read by `read`. A list whose every value is wrong
/// is left out, its errors reported.
pub(super) fn read_lists(
    stage: &str,
    value: &Spanned<DeValue>,
    errors: &mut Vec<Diagnostic>,
    mut known: impl FnMut(&str, Range<usize>, &mut Vec<Diagnostic>) -> bool,
    read: impl Fn(&str, &DeValue) -> Result<ParamValue, String>,
) -> Vec<(String, Vec<ParamValue>)> {
    let DeValue::Table(table) = value.get_ref() else {
        errors.push(
            Diagnostic::new(value.span(), format!("stage `{stage}`: `matrix` must be a table"))
                .hint(format!("write `[stages.{stage}.matrix]` with one list per parameter, e.g. `words = [50, 100]`")),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, values) in table.iter() {
        let name = key.get_ref().as_ref();
        if !known(name, key.span(), errors) {
            continue;
        }
        let DeValue::Array(items) = values.get_ref() else {
            errors.push(Diagnostic::new(values.span(), format!("stage `{stage}`: matrix `{name}` must be a list of values")));
            continue;
        };
        if items.is_empty() {
            errors.push(
                Diagnostic::new(values.span(), format!("stage `{stage}`: matrix `{name}` is an empty list"))
                    .hint("give at least one value"),
            );
            continue;
        }
        if items.len() > MAX_STAGES {
            errors.push(
                Diagnostic::new(
                    values.span(),
                    format!(
                        "stage `{stage}`: matrix `{name}` lists {} values, more than the {MAX_STAGES} stages a pipeline may expand to",
                        items.len()
                    ),
                )
                .hint("sweep fewer values, or split the sweep over several pipelines"),
            );
            continue;
        }
        let mut checked = Vec::with_capacity(items.len());
        for item in items.iter() {
            match read(name, item.get_ref()) {
                Ok(v) if checked.contains(&v) => {
                    errors.push(Diagnostic::new(item.span(), format!("stage `{stage}`: matrix `{name}` lists {} twice", v.display())))
                }
                Ok(v) => checked.push(v),
                Err(e) => errors.push(Diagnostic::new(item.span(), format!("stage `{stage}`: matrix `{name}`: {e}"))),
            }
        }
        // A list whose every value was wrong has its errors already.
        if !checked.is_empty() {
            out.push((name.to_string(), checked));
        }
    }
    out
}

/// Reads `repeats = N` (1 to 100).
pub fn read_repeats(stage: &str, value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> Option<u32> {
    match super::read::raw_value(value.get_ref()) {
        RawValue::Int(n) if (1..=100).contains(&n) => Some(n as u32),
        _ => {
            errors.push(Diagnostic::new(value.span(), format!("stage `{stage}`: `repeats` must be an integer in 1..=100")));
            None
        }
    }
}

/// The seed of repeat `k`: the pipeline seed for repeat 0, a SplitMix64
/// mix of the seed and `k` for the others (deterministic, and distinct).
pub fn repeat_seed(seed: u64, k: u32) -> u64 {
    if k == 0 {
        return seed;
    }
    let mut z = seed ^ (u64::from(k)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one variant fixes: a swept parameter of a stage, or the repeat.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Dim {
    Param { stage: String, param: String },
    Repeat,
}

/// One variant: the value each dimension takes, in the order they appeared.
type Assignment = Vec<(Dim, String)>;

/// Pipeline-wide settings that decide which stages repeat.
#[derive(Debug, Clone, Copy, Default)]
pub struct Repeats {
    pub repeats: Option<u32>,
    pub resplit: bool,
}

/// Replaces every swept or repeated stage (and what consumes it) by its
/// variants. `order` is a topological order of `spec.stages`.
pub fn expand(spec: &mut PipelineSpec, order: &[usize], repeats: Repeats, errors: &mut Vec<Diagnostic>) {
    let any = repeats.repeats.is_some() || spec.stages.iter().any(|s| !s.sweep.is_empty());
    for s in &mut spec.stages {
        s.seed = spec.seed;
    }
    if !any {
        return;
    }
    let index: BTreeMap<&str, usize> = spec.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut variants: Vec<Vec<Assignment>> = vec![Vec::new(); spec.stages.len()];
    let mut too_many: Option<std::ops::Range<usize>> = None;
    for &i in order {
        let stage = &spec.stages[i];
        // Inputs through one-stage and Together slots carry their variants
        // along, except into a stage that gathers (`evaluate`): it stays one
        // stage, and its other inputs give it their first variant.
        let mut combos: Vec<Assignment> = vec![Vec::new()];
        let gathers = gathers(stage);
        for (slot, refs) in &stage.inputs {
            let many = stage.kind.slot(slot).is_some_and(|s| s.many == Many::Gather);
            if many || gathers {
                continue;
            }
            for r in refs {
                let Some(&j) = index.get(r.stage.as_str()) else { continue };
                combos = join(&combos, &variants[j]);
            }
        }
        // Counted before anything is built: a product past the limit is an
        // error at once, however large.
        let size = stage.sweep.params.iter().fold(combos.len(), |n, (_, v)| n.saturating_mul(v.len()));
        if size > MAX_STAGES {
            too_many = Some(stage.span.clone());
            break;
        }
        for (param, values) in &stage.sweep.params {
            let dim = Dim::Param { stage: stage.name.clone(), param: param.clone() };
            combos = combos.iter().flat_map(|c| values.iter().map(|v| with(c, dim.clone(), display(v))).collect::<Vec<_>>()).collect();
        }
        // The kinds that train with the seed (each definition says), with
        // `resplit` those that draw the split, and command stages that
        // produce predictions.
        let repeated_kind = match stage.kind.repeats {
            RepeatsWith::Seed => true,
            RepeatsWith::Split => repeats.resplit,
            RepeatsWith::Never => stage.command.as_ref().is_some_and(|c| crate::kinds::command::is_approach(c.produces)),
        };
        if let Some(n) = stage.sweep.repeats.or(repeats.repeats.filter(|_| repeated_kind)) {
            let repeated = combos.iter().any(|c| c.iter().any(|(d, _)| *d == Dim::Repeat));
            if !repeated && combos.len().saturating_mul(n as usize) > MAX_STAGES {
                too_many = Some(stage.span.clone());
                break;
            }
            combos = with_repeats(stage, combos, n, errors);
        }
        if combos.len() > MAX_STAGES {
            too_many = Some(stage.span.clone());
            break;
        }
        variants[i] = if combos.len() == 1 && combos[0].is_empty() { Vec::new() } else { combos };
    }
    let total: usize = variants.iter().map(|v| v.len().max(1)).sum();
    if too_many.is_some() || total > MAX_STAGES {
        errors.push(
            Diagnostic::new(too_many, format!("the matrix and repeats expand this pipeline past {MAX_STAGES} stages"))
                .hint("sweep fewer values, or split the sweep over several pipelines"),
        );
        return;
    }
    let names: Vec<Vec<String>> = spec
        .stages
        .iter()
        .zip(&variants)
        .map(|(s, vs)| if vs.is_empty() { vec![s.name.clone()] } else { vs.iter().map(|a| variant_name(&s.name, a)).collect() })
        .collect();
    let mut out = Vec::with_capacity(total);
    for (i, stage) in spec.stages.iter().enumerate() {
        let own: Vec<Assignment> = if variants[i].is_empty() { vec![Vec::new()] } else { variants[i].clone() };
        for (v, assignment) in own.iter().enumerate() {
            out.push(variant(spec, stage, assignment, &names[i][v], &index, &variants, &names));
        }
    }
    for s in &out {
        if !s.variant.is_empty() {
            for problem in s.kind.params.check(&s.params) {
                errors.push(Diagnostic::new(s.span.clone(), format!("stage `{}`: {problem}", s.name)));
            }
        }
    }
    spec.stages = out;
}

/// `combos` repeated `n` times, or, when its inputs are already repeated,
/// kept as they are (and an error if their count is not `n`).
fn with_repeats(stage: &StageSpec, combos: Vec<Assignment>, n: u32, errors: &mut Vec<Diagnostic>) -> Vec<Assignment> {
    let have: std::collections::BTreeSet<&String> =
        combos.iter().filter_map(|c| c.iter().find(|(d, _)| *d == Dim::Repeat)).map(|(_, v)| v).collect();
    if have.is_empty() {
        return combos.iter().flat_map(|c| (0..n).map(move |k| with(c, Dim::Repeat, k.to_string()))).collect();
    }
    if have.len() != n as usize {
        errors.push(
            Diagnostic::new(
                stage.span.clone(),
                format!("stage `{}` repeats {n} times, but its inputs are repeated {} times", stage.name, have.len()),
            )
            .hint("give the stages of one chain the same `repeats` (or set `[pipeline] repeats`)"),
        );
    }
    combos
}

/// The stage of one variant: its name, parameters, seed and inputs.
fn variant(
    spec: &PipelineSpec,
    stage: &StageSpec,
    assignment: &Assignment,
    name: &str,
    index: &BTreeMap<&str, usize>,
    variants: &[Vec<Assignment>],
    names: &[Vec<String>],
) -> StageSpec {
    let mut s = stage.clone();
    s.name = name.to_string();
    for (dim, value) in assignment {
        match dim {
            Dim::Param { stage: origin, param } if *origin == stage.name => {
                let values = &stage.sweep.params.iter().find(|(p, _)| p == param).expect("a swept parameter").1;
                let chosen = values.iter().find(|v| display(v) == *value).expect("a listed value");
                s.params.0.insert(param.clone(), chosen.clone());
            }
            Dim::Repeat => s.seed = repeat_seed(spec.seed, value.parse().expect("a repeat number")),
            Dim::Param { .. } => {}
        }
    }
    s.variant = assignment.iter().map(|(d, v)| (label(d, assignment), v.clone())).collect();
    // A gathering stage is not expanded by its other inputs (see `expand`):
    // each gives it its first variant.
    let gathers = gathers(stage);
    let inputs: BTreeMap<String, Vec<InputRef>> = stage
        .inputs
        .iter()
        .map(|(slot, refs)| {
            let many = stage.kind.slot(slot).is_some_and(|d| d.many == Many::Gather);
            let bound = refs
                .iter()
                .flat_map(|r| {
                    let Some(&j) = index.get(r.stage.as_str()) else { return vec![r.clone()] };
                    let pick: Vec<String> = if variants[j].is_empty() {
                        vec![names[j][0].clone()]
                    } else if many {
                        names[j].clone()
                    } else {
                        let matching = variants[j]
                            .iter()
                            .zip(&names[j])
                            .filter(|(a, _)| a.iter().all(|(d, v)| assignment.iter().all(|(d2, v2)| d2 != d || v2 == v)))
                            .map(|(_, n)| n.clone());
                        if gathers { matching.take(1).collect() } else { matching.collect() }
                    };
                    pick.into_iter().map(|stage| InputRef { stage, span: r.span.clone() }).collect()
                })
                .collect();
            (slot.clone(), bound)
        })
        .collect();
    s.inputs = inputs;
    s
}

/// Whether `stage` gathers every variant of a list input (`evaluate`): such
/// a stage is never expanded by its inputs.
fn gathers(stage: &StageSpec) -> bool {
    stage.kind.inputs.iter().any(|slot| slot.many == Many::Gather)
}

/// The combinations of `a` with `b` that agree on the dimensions they share.
fn join(a: &[Assignment], b: &[Assignment]) -> Vec<Assignment> {
    if b.is_empty() {
        return a.to_vec();
    }
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let agree = y.iter().all(|(d, v)| x.iter().all(|(d2, v2)| d2 != d || v2 == v));
            if agree {
                let mut z = x.clone();
                z.extend(y.iter().filter(|(d, _)| !x.iter().any(|(d2, _)| d2 == d)).cloned());
                out.push(z);
            }
        }
    }
    out
}

fn with(a: &Assignment, dim: Dim, value: String) -> Assignment {
    let mut out = a.clone();
    out.push((dim, value));
    out
}

/// How a dimension reads in a name: `repeat`, the parameter, or
/// `stage.parameter` when two swept stages share the parameter's name.
fn label(dim: &Dim, assignment: &Assignment) -> String {
    match dim {
        Dim::Repeat => "repeat".into(),
        Dim::Param { stage, param } => {
            let shared = assignment.iter().any(|(d, _)| matches!(d, Dim::Param { stage: s, param: p } if p == param && s != stage));
            if shared { format!("{stage}.{param}") } else { param.clone() }
        }
    }
}

fn variant_name(base: &str, assignment: &Assignment) -> String {
    let parts: Vec<String> = assignment.iter().map(|(d, v)| format!("{}={v}", label(d, assignment))).collect();
    format!("{base}[{}]", parts.join(","))
}

/// A value as it reads in a stage name: `50`, `0.001`, `rbf`, `[1.0,10.0]`.
fn display(v: &ParamValue) -> String {
    match v {
        ParamValue::Str(s) | ParamValue::Json(serde_json::Value::String(s)) => s.clone(),
        other => other.display(),
    }
}

#[cfg(all(test, feature = "test-kinds"))]
mod tests;
