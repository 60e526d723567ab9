//! Early cutoff: a stage whose inputs re-ran but came out byte-identical
//! takes the entry computed from that same content before, instead of
//! running (see [`crate::cache::content`] for why that is its output).
//!
//! Keys are untouched: a cut-off stage is published under its own key,
//! whose document names its inputs' new keys, so the plan, the locks, the
//! records and one-key-one-result work as for any entry. The plan cannot
//! know before running whether an input's output will change; it says which
//! stages decide it ([`super::plan::PlannedStage::runs_if`]), and the
//! record names each stage that was cut off.

use std::collections::HashMap;

use super::plan::{Action, Plan, PlannedStage};
use crate::cache::content::content_key;
use crate::cache::{Cache, Entry, Hold, Lookup};

/// The content key of stage `i`: its key document with each input key
/// replaced by the digest of that input's output. `None` for a stage
/// without inputs (its key already says everything) or when an input's
/// entry cannot be read.
pub fn content_key_of(plan: &Plan, cache: &Cache, i: usize, digests: &mut HashMap<String, String>) -> Option<String> {
    let doc = &plan.stages[i].doc;
    if doc.inputs.is_empty() {
        return None;
    }
    let mut inputs = serde_json::Map::new();
    for (slot, keys) in &doc.inputs {
        let mut list = Vec::new();
        for key in keys {
            if !digests.contains_key(key) {
                let Lookup::Hit(entry) = cache.lookup(key) else { return None };
                digests.insert(key.clone(), entry.manifest.digest());
            }
            list.push(serde_json::Value::String(digests[key].clone()));
        }
        inputs.insert(slot.clone(), serde_json::Value::Array(list));
    }
    let mut value = doc.to_value();
    value["inputs"] = serde_json::Value::Object(inputs);
    Some(content_key(&value))
}

/// An entry computed before from the same content as stage `i` (under
/// another key), held for reading and checked in full (every file's blake3).
pub fn earlier_entry(plan: &Plan, cache: &Cache, i: usize) -> Option<(Entry, Hold)> {
    let content = content_key_of(plan, cache, i, &mut HashMap::new())?;
    let key = cache.computed_from(&content).filter(|k| *k != plan.stages[i].key)?;
    let hold = cache.hold(&key).ok()?;
    match cache.lookup(&key) {
        Lookup::Hit(entry) if entry.manifest.kind == plan.spec.stages[i].kind.name && entry.verify().is_ok() => Some((entry, hold)),
        _ => None,
    }
}

/// The inputs of stage `i` whose keys differ from those `earlier` was
/// computed from: stages that re-ran (or were cut off) with the same output.
pub fn same_output_inputs(planned: &PlannedStage, earlier: &Entry) -> Vec<String> {
    let mut names = Vec::new();
    for (slot, keys) in &planned.doc.inputs {
        let old = earlier.manifest.doc["inputs"][slot].as_array();
        for (n, key) in keys.iter().enumerate() {
            let was = old.and_then(|o| o.get(n)).and_then(|v| v.as_str());
            let name = &planned.input_stages[slot][n];
            if was != Some(key.as_str()) && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Records the content key of every stage of the run whose entry is
/// published (ran, cut off or cached), so a later run can cut off at them.
/// Best effort: a cache this process cannot write keeps no record.
pub fn remember(plan: &Plan, cache: &Cache, published: impl Fn(usize) -> bool) {
    let mut digests = HashMap::new();
    for &i in &plan.dag.order {
        if plan.stages[i].action == Action::Unselected || !published(i) {
            continue;
        }
        if let Some(content) = content_key_of(plan, cache, i, &mut digests) {
            let _ = cache.remember_content(&content, &plan.stages[i].key);
        }
    }
}
