//! `command`: runs the user's program (see `pipe_core::kinds::command`),
//! then checks what it wrote and publishes the same canonical files as the
//! built-in kinds, so `evaluate`, `ensemble`, `pipe diff` and the
//! significance tests cannot tell it from them.
//!
//! The program gets `PIPE_JOB` (a JSON document: stage, params, seed,
//! threads, each input slot's artifact folder and, for those that describe
//! images, an `index` CSV; out_dir; command; produces), `PIPE_OUT` (the
//! folder it writes into), `PIPE_THREADS` and `OMP_NUM_THREADS`. What it
//! must write for each `produces` is in `docs/artifacts.md` and [`outputs`].

pub mod outputs;
pub mod program;

use std::path::PathBuf;
use std::time::Duration;

use pipe_core::data::dataset::Dataset;
use pipe_core::fsx::{self, absolute};
use pipe_core::kinds::command::carries_index;
use pipe_core::kinds::{InputArtifact, StageContext, StageError};
use serde_json::json;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let job = ctx.command.clone().ok_or_else(|| StageError::Failed("the job of this command stage names no program".into()))?;
    // Absolute: the program runs in the pipeline file's folder, not the engine's.
    let out = absolute(ctx.out_dir());
    let scratch = program::scratch_dir(&out);
    fsx::create_dir_all(&scratch)?;
    let document = job_document(ctx, &job, &scratch)?;
    let job_file = scratch.join("job.json");
    fsx::write(&job_file, serde_json::to_vec_pretty(&document).expect("JSON values serialise"))?;
    let threads = ctx.threads.max(1).to_string();
    let launch = program::Launch {
        argv: &job.argv,
        cwd: &job.cwd,
        env: vec![
            ("PIPE_JOB", job_file.display().to_string()),
            ("PIPE_OUT", out.display().to_string()),
            ("PIPE_THREADS", threads.clone()),
            ("OMP_NUM_THREADS", threads),
            ("PIPE_SEED", ctx.seed.to_string()),
        ],
        timeout: job.timeout_s.map(Duration::from_secs),
        log: &job.log,
    };
    let finished = program::run(launch, ctx.events())?;
    for line in finished.lines {
        ctx.log(line);
    }
    let shown = job.argv.join(" ");
    let reference = reference(ctx);
    outputs::publish(&out, job.produces, reference.as_ref()).map_err(|e| {
        StageError::Failed(format!("`{shown}` finished, but its output is not usable: {e}\n  its whole output: {}", job.log.display()))
    })?;
    let _ = fsx::remove_dir_all(&scratch);
    Ok(())
}

/// The input whose image index the output is checked against: the first
/// (in slot order) that describes images.
fn reference(ctx: &StageContext) -> Option<InputArtifact> {
    ctx.inputs.values().flatten().find(|a| carries_index(a.artifact)).cloned()
}

/// `PIPE_JOB`: the worker's job, with each image-describing input's index
/// as CSV (the input's own `index.csv`, or one converted from its Parquet
/// into the scratch folder).
fn job_document(
    ctx: &StageContext,
    job: &pipe_core::kinds::command::CommandJob,
    scratch: &std::path::Path,
) -> Result<serde_json::Value, StageError> {
    let mut inputs = serde_json::Map::new();
    for (slot, items) in &ctx.inputs {
        let mut list = Vec::new();
        for (i, a) in items.iter().enumerate() {
            let mut item = json!({ "stage": a.stage, "artifact": a.artifact, "dir": absolute(&a.dir) });
            if carries_index(a.artifact) {
                item["index"] = json!(absolute(&index_csv(&a.dir, &scratch.join(format!("{slot}-{i}-index.csv")))?));
            }
            list.push(item);
        }
        inputs.insert(slot.clone(), serde_json::Value::Array(list));
    }
    Ok(json!({
        "stage": ctx.name,
        "kind": "command",
        "params": ctx.params.to_json(),
        "seed": ctx.seed,
        "threads": ctx.threads.max(1),
        "inputs": inputs,
        "out_dir": absolute(ctx.out_dir()),
        "command": job.argv,
        "produces": job.produces,
    }))
}

/// The path of an `index.csv` for the artifact in `dir`.
fn index_csv(dir: &std::path::Path, converted: &std::path::Path) -> Result<PathBuf, StageError> {
    let own = dir.join("index.csv");
    if own.is_file() {
        return Ok(own);
    }
    Dataset::write_index_csv(converted, &Dataset::read_meta(dir)?, &Dataset::read_index(dir)?)?;
    Ok(converted.to_path_buf())
}
