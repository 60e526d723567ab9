//! Helpers shared by the end-to-end tests.

use serde_json::Value;

/// The statuses of all stages of a run record, as `name=status` sorted by
/// name.
pub fn statuses(record: &Value) -> Vec<String> {
    let mut v: Vec<String> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}
