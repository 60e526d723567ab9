//! Running one stage kind in a unit test: parameters from the kind's
//! defaults plus overrides, a temporary output folder, captured warnings.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::context::{EventSink, StageEvent};
use super::{InputArtifact, KindDef, ParamValue, Params, RunFn, StageContext, StageError};

pub struct Run {
    pub out: tempfile::TempDir,
    pub warnings: Vec<String>,
    pub log: Vec<String>,
    pub result: Result<(), StageError>,
}

impl Run {
    pub fn ok(&self) -> &Path {
        if let Err(e) = &self.result {
            panic!("stage failed: {e}");
        }
        self.out.path()
    }

    pub fn error(&self) -> String {
        self.result.as_ref().expect_err("the stage should fail").to_string()
    }
}

/// The kind's defaults as JSON, for overriding with [`with`].
pub fn defaults(kind: &KindDef) -> serde_json::Value {
    let map = kind.params.iter().map(|d| (d.name.to_string(), ParamValue::from(d.default).to_json())).collect();
    serde_json::Value::Object(map)
}

pub fn with(mut v: serde_json::Value, key: &str, value: impl Into<serde_json::Value>) -> serde_json::Value {
    v[key] = value.into();
    v
}

/// Runs `kind` through `run` with `params` (checked like a pipeline file
/// would be) on `inputs` (slot -> artifacts), in a 2-thread pool.
pub fn run_kind(
    kind: &'static KindDef,
    run: RunFn,
    params: serde_json::Value,
    inputs: BTreeMap<String, Vec<InputArtifact>>,
    seed: u64,
) -> Run {
    let params = Params::from_json(kind, &params).unwrap();
    let problems = kind.params.check(&params);
    assert!(problems.is_empty(), "{problems:?}");
    let out = tempfile::tempdir().unwrap();
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&warnings);
    let events: EventSink = Arc::new(move |e| {
        if let StageEvent::Warning(w) = e {
            sink.lock().unwrap().push(w);
        }
    });
    let mut ctx = StageContext::new(
        "stage".into(),
        kind,
        params,
        seed,
        inputs,
        2,
        out.path().to_path_buf(),
        events,
        Arc::new(AtomicBool::new(false)),
    );
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let result = pool.install(|| run(&mut ctx));
    let log = ctx.log_lines().to_vec();
    let warnings = warnings.lock().unwrap().clone();
    Run { out, warnings, log, result }
}
