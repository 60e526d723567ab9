//! Stage keys: blake3 over a canonical JSON document of everything that
//! determines a stage's output — the format version, the kind and its
//! implementation version, the pipeline seed, the parameters with defaults
//! filled in, the keys of its inputs (a Merkle chain) and the content
//! fingerprints of the folders it reads. Objects are sorted maps and numbers
//! are canonical `f64`/`i64`, so comments, key order, `1e-4` vs `0.0001` and
//! spelled-out defaults never change a key.
//!
//! The same documents explain re-runs: [`reasons`] compares a stage's document
//! with the one recorded by the previous run (cargo's `DirtyReason` idea).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::spec::StageSpec;

/// The canonical description of a stage that its key is the hash of.
pub fn stage_doc(stage: &StageSpec, seed: u64, input_keys: &BTreeMap<String, Vec<String>>, sources: &BTreeMap<String, String>) -> Value {
    let mut doc = json!({
        "format": crate::FORMAT_VERSION,
        "kind": stage.kind.name,
        "version": stage.kind.version,
        "seed": seed,
        "params": stage.params.to_json(),
        "inputs": input_keys,
        "sources": sources,
    });
    if stage.kind.names_inputs {
        let names: BTreeMap<&String, Vec<&str>> =
            stage.inputs.iter().map(|(slot, refs)| (slot, refs.iter().map(|r| r.stage.as_str()).collect())).collect();
        doc["input_names"] = json!(names);
    }
    doc
}

/// blake3 of the document's canonical bytes, as 64 hex digits.
pub fn key_of(doc: &Value) -> String {
    // serde_json's default map is a BTreeMap: keys serialise sorted.
    let bytes = serde_json::to_vec(doc).expect("JSON values always serialise");
    blake3::hash(&bytes).to_hex().to_string()
}

/// Why a stage's key differs from the previous run's.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// No earlier run of this pipeline recorded the stage.
    New,
    /// `--force NAME`.
    Forced,
    /// Same key as before, but no usable cache entry (removed, or corrupt).
    NotCached(String),
    Param {
        name: String,
        old: String,
        new: String,
    },
    /// An upstream stage's key changed.
    Input {
        slot: String,
        stage: String,
    },
    Source {
        param: String,
    },
    Seed {
        old: String,
        new: String,
    },
    Implementation,
    Kind {
        old: String,
        new: String,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::New => write!(f, "new"),
            Reason::Forced => write!(f, "forced"),
            Reason::NotCached(why) => write!(f, "{why}"),
            Reason::Param { name, old, new } => write!(f, "params.{name} {old} → {new}"),
            Reason::Input { slot, stage } => write!(f, "input {stage} changed ({slot})"),
            Reason::Source { param } => write!(f, "data under `{param}` changed"),
            Reason::Seed { old, new } => write!(f, "seed {old} → {new}"),
            Reason::Implementation => write!(f, "stage implementation or format changed"),
            Reason::Kind { old, new } => write!(f, "kind {old} → {new}"),
        }
    }
}

/// The differences between the previous document of a stage and its current
/// one. `input_stages` maps each slot to the stage names bound to it now.
pub fn reasons(old: &Value, new: &Value, input_stages: &BTreeMap<String, Vec<String>>) -> Vec<Reason> {
    let field = |doc: &Value, name: &str| doc.get(name).cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    if field(old, "kind") != field(new, "kind") {
        out.push(Reason::Kind { old: show(&field(old, "kind")), new: show(&field(new, "kind")) });
        return out;
    }
    if field(old, "version") != field(new, "version") || field(old, "format") != field(new, "format") {
        out.push(Reason::Implementation);
    }
    if field(old, "seed") != field(new, "seed") {
        out.push(Reason::Seed { old: show(&field(old, "seed")), new: show(&field(new, "seed")) });
    }
    let (old_params, new_params) = (field(old, "params"), field(new, "params"));
    let names: std::collections::BTreeSet<&String> = object_keys(&old_params).chain(object_keys(&new_params)).collect();
    for name in names {
        let (a, b) = (old_params.get(name).unwrap_or(&Value::Null), new_params.get(name).unwrap_or(&Value::Null));
        if a != b {
            out.push(Reason::Param { name: name.clone(), old: show(a), new: show(b) });
        }
    }
    let (old_inputs, new_inputs) = (field(old, "inputs"), field(new, "inputs"));
    for (slot, stages) in input_stages {
        let (a, b) = (old_inputs.get(slot), new_inputs.get(slot));
        if a == b {
            continue;
        }
        let (a, b) = (a.and_then(Value::as_array), b.and_then(Value::as_array));
        for (i, stage) in stages.iter().enumerate() {
            let changed = match (a, b) {
                (Some(a), Some(b)) => a.get(i) != b.get(i),
                _ => true,
            };
            if changed {
                out.push(Reason::Input { slot: slot.clone(), stage: stage.clone() });
            }
        }
    }
    if field(old, "sources") != field(new, "sources") {
        for name in object_keys(&field(new, "sources")) {
            if old.get("sources").and_then(|s| s.get(name)) != new.get("sources").and_then(|s| s.get(name)) {
                out.push(Reason::Source { param: name.clone() });
            }
        }
    }
    if out.is_empty() {
        out.push(Reason::Implementation);
    }
    out
}

fn object_keys(v: &Value) -> impl Iterator<Item = &String> {
    v.as_object().into_iter().flat_map(|m| m.keys())
}

/// A JSON value as a user reads it: strings without quotes, unset as `unset`.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "unset".into(),
        other => other.to_string(),
    }
}

#[cfg(all(test, feature = "test-kinds"))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::parse;

    /// Keys of every stage of a pipeline source, by name (Merkle order).
    fn keys(source: &str) -> BTreeMap<String, String> {
        let spec = parse(Path::new("p.toml"), source).unwrap();
        let dag = crate::graph::Dag::build(&spec).unwrap();
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for &i in &dag.order {
            let s = &spec.stages[i];
            let inputs = s.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| out[&r.stage].clone()).collect())).collect();
            out.insert(s.name.clone(), key_of(&stage_doc(s, spec.seed, &inputs, &BTreeMap::new())));
        }
        out
    }

    const BASE: &str = r#"
[stages.a]
kind = "test-source"
value = 2

[stages.s]
kind = "test-sum"
values = "a"
rate = 1e-4
"#;

    #[test]
    fn formatting_never_changes_a_key() {
        let same = r#"
# the same pipeline, written differently
[stages.s]
rate = 0.0001     # not 1e-4 this time
offset = 0        # the default, spelled out
values = ["a"]
kind = "test-sum"

[stages.a]
value = 2
kind = "test-source"
items = 3
"#;
        assert_eq!(keys(BASE), keys(same));
    }

    #[test]
    fn what_matters_changes_the_key_downstream_too() {
        let base = keys(BASE);
        let changed = keys(&BASE.replace("value = 2", "value = 3"));
        assert_ne!(base["a"], changed["a"]);
        assert_ne!(base["s"], changed["s"], "an input's key folds into its consumers");
        let seeded = keys(&format!("[pipeline]\nseed = 1\n{BASE}"));
        assert_ne!(base["s"], seeded["s"]);
        let renamed = keys(&BASE.replace("stages.a]", "stages.src]").replace("values = \"a\"", "values = \"src\""));
        assert_eq!(base["s"], renamed["s"], "stage names are not part of keys");
    }

    #[test]
    fn reasons_name_the_parameter_and_the_input() {
        let spec = parse(Path::new("p.toml"), BASE).unwrap();
        let s = spec.stage("s").unwrap();
        let inputs: BTreeMap<String, Vec<String>> = [("values".to_string(), vec!["a".to_string()])].into();
        let old = stage_doc(s, 0, &[("values".to_string(), vec!["k1".to_string()])].into(), &BTreeMap::new());
        let mut s2 = s.clone();
        s2.params.0.insert("offset".into(), crate::stages::ParamValue::Int(5));
        let new = stage_doc(&s2, 0, &[("values".to_string(), vec!["k2".to_string()])].into(), &BTreeMap::new());
        let text: Vec<String> = reasons(&old, &new, &inputs).iter().map(ToString::to_string).collect();
        assert_eq!(text, ["params.offset 0 → 5", "input a changed (values)"]);
    }
}

/// Keys of the shipped pipelines, pinned: a change to the key encoding, to a
/// kind's schema or defaults, or to a kind's version shows up here. An
/// intended change updates the pinned values in the same commit (and bumps
/// the kind's `version` or [`crate::FORMAT_VERSION`] when outputs change).
#[cfg(test)]
mod pinned {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::{key_of, stage_doc};

    /// `stage key` per line, sorted by stage name; data fingerprints left out.
    fn keys_of(file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(file);
        let spec = crate::spec::load(&path).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let dag = crate::graph::Dag::build(&spec).unwrap();
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        for &i in &dag.order {
            let s = &spec.stages[i];
            let inputs =
                s.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| keys[&r.stage].clone()).collect())).collect();
            keys.insert(s.name.clone(), key_of(&stage_doc(s, spec.seed, &inputs, &BTreeMap::new())));
        }
        keys.iter().map(|(name, key)| format!("{name} {}\n", &key[..16])).collect()
    }

    #[test]
    fn the_shipped_pipelines_keys_are_pinned() {
        let all: String =
            ["quickstart.toml", "openclipart.toml", "met-paper.toml"].iter().map(|f| format!("# {f}\n{}", keys_of(f))).collect();
        insta::assert_snapshot!(all);
    }
}
