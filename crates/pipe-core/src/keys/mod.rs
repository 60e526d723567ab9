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

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::StageSpec;

/// The canonical description of a stage that its key is the hash of (and
/// that run records and cache manifests keep, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDoc {
    /// [`crate::FORMAT_VERSION`].
    pub format: u32,
    pub kind: String,
    /// The kind's implementation version.
    pub version: u32,
    /// The pipeline's seed.
    pub seed: u64,
    /// Every parameter, defaults filled in (an object of canonical values).
    pub params: Value,
    /// Slot -> the keys of the stages bound to it.
    #[serde(default)]
    pub inputs: BTreeMap<String, Vec<String>>,
    /// Path parameter -> content fingerprint of what it names.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
    /// Slot -> the names of the stages bound to it, for kinds whose output
    /// says which stage each input came from (`evaluate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_names: Option<BTreeMap<String, Vec<String>>>,
    /// A `command` stage's program, what it produces and its threads (see
    /// [`crate::kinds::command::CommandSpec::key_value`]); its code files
    /// are in `sources` as `code:PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Value>,
}

impl KeyDoc {
    /// The document as a JSON value: what keys are hashed from and what
    /// records keep.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("key documents serialise")
    }

    /// A document as a record or manifest kept it.
    pub fn from_value(value: &Value) -> Result<KeyDoc, serde_json::Error> {
        KeyDoc::deserialize(value)
    }
}

/// The canonical description of a stage that its key is the hash of.
pub fn stage_doc(stage: &StageSpec, seed: u64, input_keys: &BTreeMap<String, Vec<String>>, sources: &BTreeMap<String, String>) -> KeyDoc {
    let input_names = stage
        .kind
        .names_inputs
        .then(|| stage.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| r.stage.clone()).collect())).collect());
    KeyDoc {
        format: crate::FORMAT_VERSION,
        kind: stage.kind.name.to_string(),
        version: stage.kind.version,
        seed,
        params: stage.params.to_json(),
        inputs: input_keys.clone(),
        sources: sources.clone(),
        input_names,
        command: stage.command.as_ref().map(|c| c.key_value()),
    }
}

/// A parameter change that a `--set` made, said so (`--set vocab.words 100
/// → 200`); `None` for any other reason. `stage` may be a variant's name
/// (`vocab[words=50]`); `overrides` as written (`vocab.words=200`).
pub fn by_override<'a>(reason: &Reason, stage: &str, mut overrides: impl Iterator<Item = &'a String>) -> Option<String> {
    let Reason::Param { name, old, new } = reason else { return None };
    let base = stage.split('[').next().unwrap_or(stage);
    let target = format!("{base}.{name}=");
    overrides.any(|o| o.starts_with(&target)).then(|| format!("--set {base}.{name} {old} → {new}"))
}

/// The `sources` entry of a command stage's code file (a path relative to
/// the pipeline file's folder).
pub fn code_source(path: &str) -> String {
    format!("{CODE_PREFIX}{path}")
}

const CODE_PREFIX: &str = "code:";

/// blake3 of the document's canonical bytes, as 64 hex digits.
pub fn key_of(doc: &KeyDoc) -> String {
    // Through a `Value`, as keys always were: serde_json's default map is a
    // BTreeMap, so fields and parameters serialise sorted.
    let bytes = serde_json::to_vec(&doc.to_value()).expect("JSON values always serialise");
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
    /// The same inputs under other stage names, for a kind whose output
    /// names its inputs (`evaluate`).
    InputRenamed {
        slot: String,
        old: Vec<String>,
        new: Vec<String>,
    },
    Source {
        param: String,
    },
    Seed {
        old: String,
        new: String,
    },
    Implementation,
    /// A command stage's program, output type or threads.
    Command {
        field: String,
        old: String,
        new: String,
    },
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
            Reason::InputRenamed { slot, old, new } => write!(f, "input {slot} renamed: {} → {}", old.join(", "), new.join(", ")),
            Reason::Source { param } => match param.strip_prefix(CODE_PREFIX) {
                Some(file) => write!(f, "code {file} changed"),
                None => write!(f, "data under `{param}` changed"),
            },
            Reason::Command { field, old, new } => write!(f, "command {field} {old} → {new}"),
            Reason::Seed { old, new } => write!(f, "seed {old} → {new}"),
            Reason::Implementation => write!(f, "stage implementation or format changed"),
            Reason::Kind { old, new } => write!(f, "kind {old} → {new}"),
        }
    }
}

/// The differences between a stage's previous document, as a run record
/// kept it, and its current one. `input_stages` maps each slot to the stage
/// names bound to it now. A recorded document that is not a [`KeyDoc`]
/// (written by another format) differs by [`Reason::Implementation`].
pub fn reasons_since(old: &Value, new: &KeyDoc, input_stages: &BTreeMap<String, Vec<String>>) -> Vec<Reason> {
    match KeyDoc::from_value(old) {
        Ok(old) => reasons(&old, new, input_stages),
        Err(_) => vec![Reason::Implementation],
    }
}

/// The differences between the previous document of a stage and its current
/// one. `input_stages` maps each slot to the stage names bound to it now.
pub fn reasons(old: &KeyDoc, new: &KeyDoc, input_stages: &BTreeMap<String, Vec<String>>) -> Vec<Reason> {
    let mut out = Vec::new();
    if old.kind != new.kind {
        out.push(Reason::Kind { old: old.kind.clone(), new: new.kind.clone() });
        return out;
    }
    if old.version != new.version || old.format != new.format {
        out.push(Reason::Implementation);
    }
    if old.seed != new.seed {
        out.push(Reason::Seed { old: old.seed.to_string(), new: new.seed.to_string() });
    }
    let names: std::collections::BTreeSet<&String> = object_keys(&old.params).chain(object_keys(&new.params)).collect();
    for name in names {
        let (a, b) = (old.params.get(name).unwrap_or(&Value::Null), new.params.get(name).unwrap_or(&Value::Null));
        if a != b {
            out.push(Reason::Param { name: name.clone(), old: show(a), new: show(b) });
        }
    }
    for (slot, stages) in input_stages {
        let (a, b) = (old.inputs.get(slot), new.inputs.get(slot));
        if a == b {
            continue;
        }
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
    // The same inputs under new names: only the names changed. (With
    // changed inputs, the reasons above already name the new stages.)
    if let (Some(old_names), Some(new_names)) = (&old.input_names, &new.input_names) {
        let slots: std::collections::BTreeSet<&String> = old_names.keys().chain(new_names.keys()).collect();
        for slot in slots {
            let (a, b) = (old_names.get(slot), new_names.get(slot));
            if a != b && old.inputs.get(slot) == new.inputs.get(slot) {
                let list = |names: Option<&Vec<String>>| names.cloned().unwrap_or_default();
                out.push(Reason::InputRenamed { slot: slot.clone(), old: list(a), new: list(b) });
            }
        }
    }
    if old.command != new.command {
        let field = |doc: &KeyDoc, name: &str| doc.command.as_ref().and_then(|c| c.get(name)).cloned().unwrap_or(Value::Null);
        for name in ["argv", "produces", "threads"] {
            let (a, b) = (field(old, name), field(new, name));
            if a != b {
                out.push(Reason::Command { field: name.into(), old: show(&a), new: show(&b) });
            }
        }
    }
    if old.sources != new.sources {
        for (name, fingerprint) in &new.sources {
            if old.sources.get(name) != Some(fingerprint) {
                out.push(Reason::Source { param: name.clone() });
            }
        }
        // A code file no longer listed (a glob that matches less).
        for name in old.sources.keys().filter(|n| !new.sources.contains_key(*n)) {
            out.push(Reason::Source { param: name.clone() });
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
        let dag = spec.dag.clone();
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for &i in &dag.order {
            let s = &spec.stages[i];
            let inputs = s.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| out[&r.stage].clone()).collect())).collect();
            out.insert(s.name.clone(), key_of(&stage_doc(s, s.seed, &inputs, &BTreeMap::new())));
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
        s2.params.0.insert("offset".into(), crate::kinds::ParamValue::Int(5));
        let new = stage_doc(&s2, 0, &[("values".to_string(), vec!["k2".to_string()])].into(), &BTreeMap::new());
        let text: Vec<String> = reasons(&old, &new, &inputs).iter().map(ToString::to_string).collect();
        assert_eq!(text, ["params.offset 0 → 5", "input a changed (values)"]);
    }
}

#[cfg(test)]
mod typed {
    use std::collections::BTreeMap;

    use super::*;

    fn doc(names: &[&str], keys: &[&str]) -> KeyDoc {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        KeyDoc {
            format: 1,
            kind: "evaluate".into(),
            version: 3,
            seed: 7,
            params: serde_json::json!({"top_k": 5}),
            inputs: [("predictions".to_string(), list(keys))].into(),
            sources: BTreeMap::new(),
            input_names: Some([("predictions".to_string(), list(names))].into()),
            command: None,
        }
    }

    #[test]
    fn renaming_an_evaluate_input_says_what_changed() {
        let (old, new) = (doc(&["svm", "cnn"], &["k1", "k2"]), doc(&["svm", "resnet"], &["k1", "k2"]));
        assert_ne!(key_of(&old), key_of(&new), "names are part of an evaluate stage's key");
        let now: BTreeMap<String, Vec<String>> = [("predictions".to_string(), vec!["svm".to_string(), "resnet".to_string()])].into();
        let why = reasons(&old, &new, &now);
        assert_eq!(
            why,
            [Reason::InputRenamed {
                slot: "predictions".into(),
                old: vec!["svm".into(), "cnn".into()],
                new: vec!["svm".into(), "resnet".into()]
            }]
        );
        assert_eq!(why[0].to_string(), "input predictions renamed: svm, cnn → svm, resnet");
        // From a record's JSON too, and a changed input is not called a rename.
        let changed = doc(&["svm", "resnet"], &["k1", "k3"]);
        let text: Vec<String> = reasons_since(&old.to_value(), &changed, &now).iter().map(ToString::to_string).collect();
        assert_eq!(text, ["input resnet changed (predictions)"]);
    }

    #[test]
    fn documents_serialise_as_before_and_read_back() {
        let mut d = doc(&["a"], &["k"]);
        let v = d.to_value();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"format":1,"input_names":{"predictions":["a"]},"inputs":{"predictions":["k"]},"kind":"evaluate","params":{"top_k":5},"seed":7,"sources":{},"version":3}"#
        );
        assert_eq!(KeyDoc::from_value(&v).unwrap(), d);
        d.input_names = None;
        assert!(d.to_value().get("input_names").is_none(), "kinds that do not name inputs have no such field");
        assert_eq!(reasons_since(&serde_json::json!({"old": "format"}), &d, &BTreeMap::new()), [Reason::Implementation]);
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
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines").join(file);
        let spec = crate::spec::load(&path).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let dag = spec.dag.clone();
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        for &i in &dag.order {
            let s = &spec.stages[i];
            let inputs =
                s.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| keys[&r.stage].clone()).collect())).collect();
            keys.insert(s.name.clone(), key_of(&stage_doc(s, s.seed, &inputs, &BTreeMap::new())));
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
