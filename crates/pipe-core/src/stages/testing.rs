//! Small stage kinds that exercise the engine in its own tests: sources,
//! sums, sleeps, failures, a text producer (for type errors) and a kind that
//! runs in the worker process, and a metrics kind whose files go into the
//! run's report. Compiled only with the `test-kinds` feature.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::time::{Duration, Instant};

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, StageContext, StageError, ThreadUse};
use crate::util::IoContext;

pub static KINDS: &[&KindDef] = &[&SOURCE, &SUM, &TEXT, &WORKER, &THREADS, &KEYED, &ELASTIC, &METRICS];

const SLEEP: ParamDef = ParamDef {
    name: "sleep_ms",
    ty: ParamType::Int { min: 0, max: 600_000 },
    default: Default::Int(0),
    doc: "milliseconds to sleep (in small cancellable steps)",
};
const FAIL: ParamDef = ParamDef { name: "fail", ty: ParamType::Bool, default: Default::Bool(false), doc: "fail instead of writing" };
const VALUES: SlotDef =
    SlotDef { name: "values", accepts: &[ArtifactType::Numbers], many: true, required: true, doc: "stages whose numbers are summed" };

pub static SOURCE: KindDef = KindDef {
    name: "test-source",
    version: 1,
    summary: "writes a number (test kind)",
    inputs: &[],
    output: ArtifactType::Numbers,
    params: Schema::untyped(
        &[
            ParamDef { name: "value", ty: ParamType::Int { min: -1_000_000, max: 1_000_000 }, default: Default::Int(1), doc: "the number" },
            ParamDef { name: "items", ty: ParamType::Int { min: 1, max: 10_000 }, default: Default::Int(3), doc: "progress steps" },
            ParamDef {
                name: "root",
                ty: ParamType::Path { fingerprint: true },
                default: Default::Unset,
                doc: "a folder whose files are counted",
            },
            SLEEP,
            FAIL,
        ],
        super::no_check,
    ),
    threads: ThreadUse::Single,
    estimate_seconds: 1.0,
    process: Process::Engine(run_source),
    names_inputs: false,
};

pub static SUM: KindDef = KindDef {
    name: "test-sum",
    version: 1,
    summary: "sums its inputs (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Numbers,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "offset",
                ty: ParamType::Int { min: -1_000_000, max: 1_000_000 },
                default: Default::Int(0),
                doc: "added to the sum",
            },
            ParamDef { name: "rate", ty: ParamType::Float { min: 0.0, max: 1.0 }, default: Default::Float(0.5), doc: "unused number" },
            ParamDef { name: "mode", ty: ParamType::Choice(&["fast", "slow"]), default: Default::Str("fast"), doc: "unused choice" },
            ParamDef {
                name: "keep",
                ty: ParamType::IntOrChoice { min: 1, max: 100, choices: &["all"] },
                default: Default::Int(2),
                doc: "unused",
            },
            ParamDef {
                name: "grid",
                ty: ParamType::FloatList { min: 0.0, max: f64::INFINITY },
                default: Default::Floats(&[0.1, 1.0]),
                doc: "unused",
            },
            SLEEP,
            FAIL,
        ],
        super::no_check,
    ),
    threads: ThreadUse::Single,
    estimate_seconds: 1.0,
    process: Process::Engine(run_sum),
    names_inputs: false,
};

pub static TEXT: KindDef = KindDef {
    name: "test-text",
    version: 1,
    summary: "writes a text (test kind)",
    inputs: &[],
    output: ArtifactType::Text,
    params: Schema::untyped(
        &[ParamDef { name: "text", ty: ParamType::Text, default: Default::Str("hello"), doc: "the text" }],
        super::no_check,
    ),
    threads: ThreadUse::Single,
    estimate_seconds: 1.0,
    process: Process::Engine(|ctx| write(ctx, "text.txt", ctx.params.str("text").unwrap_or_default().to_string())),
    names_inputs: false,
};

pub static WORKER: KindDef = KindDef {
    name: "test-worker",
    version: 1,
    summary: "doubles the sum of its inputs in the worker process (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Numbers,
    params: Schema::untyped(&[SLEEP, FAIL], super::no_check),
    threads: ThreadUse::Parallel,
    estimate_seconds: 1.0,
    process: Process::Worker,
    names_inputs: false,
};

/// `test-worker`, run by `pipe-worker`.
pub fn run_worker(ctx: &mut StageContext) -> Result<(), StageError> {
    let sum = sum_inputs(ctx)?;
    finish(ctx, 2 * sum)
}

pub static THREADS: KindDef = KindDef {
    name: "test-threads",
    version: 1,
    summary: "records how many threads it was granted (test kind)",
    inputs: &[],
    output: ArtifactType::Numbers,
    params: Schema::untyped(&[SLEEP, FAIL], super::no_check),
    threads: ThreadUse::Parallel,
    estimate_seconds: 1.0,
    names_inputs: false,
    process: Process::Engine(|ctx| {
        let granted = ctx.threads as i64;
        let pool = rayon::current_num_threads() as i64;
        if granted != pool {
            return Err(StageError::Failed(format!("granted {granted} threads but the pool has {pool}")));
        }
        finish(ctx, granted)
    }),
};

pub static METRICS: KindDef = KindDef {
    name: "test-metrics",
    version: 1,
    summary: "reports the sum of its inputs as an accuracy, like evaluate (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Metrics,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "padding",
                ty: ParamType::Int { min: 0, max: 10_000_000 },
                default: Default::Int(0),
                doc: "bytes of padding added to comparison.md",
            },
            SLEEP,
            FAIL,
        ],
        super::no_check,
    ),
    threads: ThreadUse::Single,
    estimate_seconds: 1.0,
    process: Process::Engine(run_metrics),
    names_inputs: false,
};

/// `metrics.csv` in evaluate's columns and a `comparison.md` with one table.
fn run_metrics(ctx: &mut StageContext) -> Result<(), StageError> {
    let sum = sum_inputs(ctx)?;
    finish(ctx, sum)?;
    let csv = format!("approach,task,class,precision,recall,f1,f2,support\nsum,single,accuracy,,,{sum}.0,,1\n");
    write(ctx, "metrics.csv", csv)?;
    let padding = "<!-- padding -->\n".repeat(ctx.params.int("padding") as usize / 17 + 1);
    write(ctx, "comparison.md", format!("# test\n\n| approach | sum |\n|---|---|\n| sum | {sum} |\n\n{padding}"))
}

pub static KEYED: KindDef = KindDef {
    name: "test-keyed",
    version: 1,
    summary: "records the threads it runs on, which its key fixes (test kind)",
    inputs: &[],
    output: ArtifactType::Numbers,
    params: Schema::untyped(
        &[
            ParamDef { name: "threads", ty: ParamType::Int { min: 1, max: 64 }, default: Default::Int(2), doc: "threads to run on" },
            SLEEP,
            FAIL,
        ],
        super::no_check,
    ),
    threads: ThreadUse::Keyed,
    estimate_seconds: 1.0,
    names_inputs: false,
    process: Process::Engine(|ctx| finish(ctx, ctx.threads as i64)),
};

pub static ELASTIC: KindDef = KindDef {
    name: "test-elastic",
    version: 1,
    summary: "runs `items` items of `item_ms` in parallel in the worker; writes the most it ran at once (test kind)",
    inputs: &[],
    output: ArtifactType::Numbers,
    params: Schema::untyped(
        &[
            ParamDef { name: "items", ty: ParamType::Int { min: 1, max: 10_000 }, default: Default::Int(20), doc: "work items" },
            ParamDef {
                name: "item_ms",
                ty: ParamType::Int { min: 0, max: 10_000 },
                default: Default::Int(50),
                doc: "milliseconds per item",
            },
            SLEEP,
            FAIL,
        ],
        super::no_check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 1.0,
    process: Process::Worker,
    names_inputs: false,
};

/// `test-elastic`, run by `pipe-worker`.
pub fn run_elastic(ctx: &mut StageContext) -> Result<(), StageError> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let item = Duration::from_millis(ctx.params.int("item_ms") as u64);
    (0..ctx.params.int("items")).into_par_iter().for_each(|_| {
        let _permit = ctx.permit();
        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        std::thread::sleep(item);
        now.fetch_sub(1, Ordering::SeqCst);
    });
    finish(ctx, most.load(Ordering::SeqCst) as i64)
}

fn run_source(ctx: &mut StageContext) -> Result<(), StageError> {
    let items = ctx.params.int("items") as u64;
    for i in 1..=items {
        ctx.check_cancelled()?;
        ctx.progress(i, items, "items");
    }
    let mut value = ctx.params.int("value");
    if let Some(root) = ctx.params.str("root") {
        let root = std::path::PathBuf::from(root);
        value += std::fs::read_dir(&root).at("read folder", &root)?.count() as i64;
    }
    finish(ctx, value)
}

fn run_sum(ctx: &mut StageContext) -> Result<(), StageError> {
    let sum = sum_inputs(ctx)? + ctx.params.int("offset");
    finish(ctx, sum)
}

fn sum_inputs(ctx: &StageContext) -> Result<i64, StageError> {
    let mut sum = 0;
    for input in ctx.inputs_of("values") {
        let path = input.dir.join("value.txt");
        let text = std::fs::read_to_string(&path).at("read", &path)?;
        sum += text.trim().parse::<i64>().map_err(|e| StageError::Failed(format!("{}: not a number: {e}", path.display())))?;
    }
    Ok(sum)
}

/// Sleeps, fails when asked, else writes `value.txt`.
fn finish(ctx: &mut StageContext, value: i64) -> Result<(), StageError> {
    let deadline = Instant::now() + Duration::from_millis(ctx.params.int("sleep_ms") as u64);
    while Instant::now() < deadline {
        ctx.check_cancelled()?;
        std::thread::sleep(Duration::from_millis(5));
    }
    if ctx.params.bool("fail") {
        return Err(StageError::Failed("failed because `fail = true`".into()));
    }
    ctx.log(format!("value {value}"));
    write(ctx, "value.txt", format!("{value}\n"))
}

fn write(ctx: &StageContext, file: &str, text: String) -> Result<(), StageError> {
    let path = ctx.out_dir().join(file);
    std::fs::write(&path, text).at("write", &path)?;
    Ok(())
}
