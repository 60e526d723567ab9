//! Running one of this crate's stage kinds in a unit test, through
//! `pipe_core::kinds::testutil` (parameters from the kind's defaults plus
//! overrides, a temporary output folder, captured warnings).

use std::collections::BTreeMap;
use std::path::Path;

pub use pipe_core::kinds::testutil::{Run, defaults, with};
use pipe_core::kinds::{ArtifactType, InputArtifact, KindDef};

/// Runs `kind` with `params` on `inputs` (slot -> folders of `images` artifacts).
pub fn run(kind: &'static KindDef, params: serde_json::Value, inputs: &[(&str, &Path)], seed: u64) -> Run {
    let inputs: BTreeMap<String, Vec<InputArtifact>> = inputs
        .iter()
        .map(|(slot, dir)| {
            (slot.to_string(), vec![InputArtifact { stage: "input".into(), artifact: ArtifactType::Images, dir: dir.to_path_buf() }])
        })
        .collect();
    run_with_inputs(kind, params, inputs, seed)
}

/// [`run`] with the inputs spelled out (several per slot, stage names).
pub fn run_with_inputs(kind: &'static KindDef, params: serde_json::Value, inputs: BTreeMap<String, Vec<InputArtifact>>, seed: u64) -> Run {
    let run = match kind.process {
        pipe_core::kinds::Process::Engine(run) => run,
        _ => super::runner(kind.name).expect("pipe-cv kinds have a runner"),
    };
    pipe_core::kinds::testutil::run_kind(kind, run, params, inputs, seed)
}
