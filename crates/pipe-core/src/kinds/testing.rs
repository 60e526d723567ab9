//! Small stage kinds that exercise the engine in its own tests: sources,
//! sums, sleeps, failures, a text producer (for type errors) and a kind that
//! runs in the worker process, and a metrics kind whose files go into the
//! run's report. Compiled only with the `test-kinds` feature.

use std::time::{Duration, Instant};

use super::cnn::All;
use super::params::{Default, ParamType};
use super::{ArtifactType, IntOr, KindDef, Many, Process, Schema, SlotDef, StageContext, StageError, ThreadUse};

pub static KINDS: &[&KindDef] = &[&SOURCE, &SUM, &SCALE, &TEXT, &WORKER, &THREADS, &KEYED, &ELASTIC, &METRICS];

const VALUES: SlotDef = SlotDef {
    name: "values",
    accepts: &[ArtifactType::Numbers],
    many: Many::Gather,
    required: true,
    doc: "stages whose numbers are summed",
};

crate::stage_params! {
    /// What every test kind takes: a sleep and a failure on request.
    pub struct Common {
        /// milliseconds to sleep (in small cancellable steps)
        sleep_ms: i64 = ParamType::Int { min: 0, max: 600_000 } => Default::Int(0),
        /// fail instead of writing
        fail: bool = ParamType::Bool => Default::Bool(false),
    }
}

crate::stage_params! {
    /// `test-source`'s parameters.
    pub struct SourceParams {
        /// the number
        value: i64 = ParamType::Int { min: -1_000_000, max: 1_000_000 } => Default::Int(1),
        /// progress steps
        items: i64 = ParamType::Int { min: 1, max: 10_000 } => Default::Int(3),
        /// a folder whose files are counted
        root: Option<String> = ParamType::Path { fingerprint: true } => Default::Unset,
        ..common: Common
    }
}

crate::choice! {
    /// `test-sum`'s unused choice.
    pub enum Mode { Fast = "fast", Slow = "slow" }
}

crate::stage_params! {
    /// `test-sum`'s parameters.
    pub struct SumParams {
        /// added to the sum
        offset: i64 = ParamType::Int { min: -1_000_000, max: 1_000_000 } => Default::Int(0),
        /// unused number
        rate: f64 = ParamType::Float { min: 0.0, max: 1.0 } => Default::Float(0.5),
        /// unused choice
        mode: Mode = Mode::TYPE => Default::Str("fast"),
        /// unused
        keep: IntOr<All> = ParamType::IntOrChoice { min: 1, max: 100, choices: All::WORDS } => Default::Int(2),
        /// unused
        grid: Vec<f64> = ParamType::FloatList { min: 0.0, max: f64::INFINITY } => Default::Floats(&[0.1, 1.0]),
        ..common: Common
    }
}

crate::stage_params! {
    /// `test-text`'s parameters.
    pub struct TextParams {
        /// the text
        text: String = ParamType::Text => Default::Str("hello"),
    }
}

crate::stage_params! {
    /// `test-metrics`'s parameters.
    pub struct MetricsParams {
        /// bytes of padding added to comparison.md
        padding: i64 = ParamType::Int { min: 0, max: 10_000_000 } => Default::Int(0),
        ..common: Common
    }
}

crate::stage_params! {
    /// `test-keyed`'s parameters.
    pub struct KeyedParams {
        /// threads to run on
        threads: i64 = ParamType::Int { min: 1, max: 64 } => Default::Int(2),
        ..common: Common
    }
    rules {
        fn keyed_threads(&self) -> Option<usize> {
            Some(self.threads.max(1) as usize)
        }
    }
}

crate::stage_params! {
    /// `test-elastic`'s parameters.
    pub struct ElasticParams {
        /// work items
        items: i64 = ParamType::Int { min: 1, max: 10_000 } => Default::Int(20),
        /// milliseconds per item
        item_ms: i64 = ParamType::Int { min: 0, max: 10_000 } => Default::Int(50),
        ..common: Common
    }
}

pub static SOURCE: KindDef = KindDef {
    name: "test-source",
    summary: "writes a number (test kind)",
    output: ArtifactType::Numbers,
    params: Schema::of::<SourceParams>(),
    estimate_seconds: 1.0,
    process: Process::Engine(run_source),
    ..KindDef::BASE
};

pub static SUM: KindDef = KindDef {
    name: "test-sum",
    summary: "sums its inputs (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Numbers,
    params: Schema::of::<SumParams>(),
    estimate_seconds: 1.0,
    process: Process::Engine(run_sum),
    ..KindDef::BASE
};

crate::stage_params! {
    pub struct ScaleParams {
        /// what the input's number is multiplied by
        factor: i64 = ParamType::Int { min: -1000, max: 1000 } => Default::Int(1),
        ..common: Common
    }
}

/// One input stage (not a list), and an output that depends on the seed:
/// what sweeps and repeats expand through.
pub static SCALE: KindDef = KindDef {
    name: "test-scale",
    summary: "its input times `factor`, plus the seed modulo 1000 (test kind)",
    inputs: &[SlotDef {
        name: "input",
        accepts: &[ArtifactType::Numbers],
        many: Many::One,
        required: true,
        doc: "the stage whose number is scaled",
    }],
    output: ArtifactType::Numbers,
    params: Schema::of::<ScaleParams>(),
    estimate_seconds: 1.0,
    process: Process::Engine(run_scale),
    ..KindDef::BASE
};

fn run_scale(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: ScaleParams = ctx.typed_params()?;
    let input = ctx.inputs_of("input").first().map(|a| a.dir.join("value.txt")).ok_or_else(|| StageError::Failed("no input".into()))?;
    let text = crate::fsx::read_to_string(&input)?;
    let value = text.trim().parse::<i64>().map_err(|e| StageError::Failed(format!("{}: not a number: {e}", input.display())))?;
    let seeded = (ctx.seed % 1000) as i64;
    finish(ctx, &p.common, value * p.factor + seeded)
}

pub static TEXT: KindDef = KindDef {
    name: "test-text",
    summary: "writes a text (test kind)",
    output: ArtifactType::Text,
    params: Schema::of::<TextParams>(),
    estimate_seconds: 1.0,
    process: Process::Engine(|ctx| {
        let p: TextParams = ctx.typed_params()?;
        write(ctx, "text.txt", p.text)
    }),
    ..KindDef::BASE
};

pub static WORKER: KindDef = KindDef {
    name: "test-worker",
    summary: "doubles the sum of its inputs in the worker process (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Numbers,
    params: Schema::of::<Common>(),
    threads: ThreadUse::Parallel,
    estimate_seconds: 1.0,
    ..KindDef::BASE
};

/// `test-worker`, run by `pipe-worker`.
pub fn run_worker(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: Common = ctx.typed_params()?;
    let sum = sum_inputs(ctx)?;
    finish(ctx, &p, 2 * sum)
}

pub static THREADS: KindDef = KindDef {
    name: "test-threads",
    summary: "records how many threads it was granted (test kind)",
    output: ArtifactType::Numbers,
    params: Schema::of::<Common>(),
    threads: ThreadUse::Parallel,
    estimate_seconds: 1.0,
    process: Process::Engine(|ctx| {
        let p: Common = ctx.typed_params()?;
        let granted = ctx.threads as i64;
        let pool = rayon::current_num_threads() as i64;
        if granted != pool {
            return Err(StageError::Failed(format!("granted {granted} threads but the pool has {pool}")));
        }
        finish(ctx, &p, granted)
    }),
    ..KindDef::BASE
};

pub static METRICS: KindDef = KindDef {
    name: "test-metrics",
    summary: "reports the sum of its inputs as an accuracy, like evaluate (test kind)",
    inputs: &[VALUES],
    output: ArtifactType::Metrics,
    params: Schema::of::<MetricsParams>(),
    estimate_seconds: 1.0,
    process: Process::Engine(run_metrics),
    ..KindDef::BASE
};

/// `metrics.csv` in evaluate's columns and a `comparison.md` with one table.
fn run_metrics(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: MetricsParams = ctx.typed_params()?;
    let sum = sum_inputs(ctx)?;
    finish(ctx, &p.common, sum)?;
    let csv = format!("approach,task,class,precision,recall,f1,f2,support\nsum,single,accuracy,,,{sum}.0,,1\n");
    write(ctx, "metrics.csv", csv)?;
    let padding = "<!-- padding -->\n".repeat(p.padding as usize / 17 + 1);
    write(ctx, "comparison.md", format!("# test\n\n| approach | sum |\n|---|---|\n| sum | {sum} |\n\n{padding}"))
}

pub static KEYED: KindDef = KindDef {
    name: "test-keyed",
    summary: "records the threads it runs on, which its key fixes (test kind)",
    output: ArtifactType::Numbers,
    params: Schema::of::<KeyedParams>(),
    threads: ThreadUse::Keyed,
    estimate_seconds: 1.0,
    process: Process::Engine(|ctx| {
        let p: KeyedParams = ctx.typed_params()?;
        finish(ctx, &p.common, ctx.threads as i64)
    }),
    ..KindDef::BASE
};

pub static ELASTIC: KindDef = KindDef {
    name: "test-elastic",
    summary: "runs `items` items of `item_ms` in parallel in the worker; writes the most it ran at once (test kind)",
    output: ArtifactType::Numbers,
    params: Schema::of::<ElasticParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 1.0,
    ..KindDef::BASE
};

/// `test-elastic`, run by `pipe-worker`.
pub fn run_elastic(ctx: &mut StageContext) -> Result<(), StageError> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let p: ElasticParams = ctx.typed_params()?;
    let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let item = Duration::from_millis(p.item_ms as u64);
    (0..p.items).into_par_iter().for_each(|_| {
        let _permit = ctx.permit();
        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        std::thread::sleep(item);
        now.fetch_sub(1, Ordering::SeqCst);
    });
    finish(ctx, &p.common, most.load(Ordering::SeqCst) as i64)
}

fn run_source(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: SourceParams = ctx.typed_params()?;
    let items = p.items as u64;
    for i in 1..=items {
        ctx.check_cancelled()?;
        ctx.progress(i, items, "items");
    }
    let mut value = p.value;
    if let Some(root) = &p.root {
        let root = std::path::PathBuf::from(root);
        value += crate::fsx::read_dir(&root).map_err(|e| e.doing("read folder"))?.count() as i64;
    }
    finish(ctx, &p.common, value)
}

fn run_sum(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: SumParams = ctx.typed_params()?;
    let sum = sum_inputs(ctx)? + p.offset;
    finish(ctx, &p.common, sum)
}

fn sum_inputs(ctx: &StageContext) -> Result<i64, StageError> {
    let mut sum = 0;
    for input in ctx.inputs_of("values") {
        let path = input.dir.join("value.txt");
        let text = crate::fsx::read_to_string(&path)?;
        sum += text.trim().parse::<i64>().map_err(|e| StageError::Failed(format!("{}: not a number: {e}", path.display())))?;
    }
    Ok(sum)
}

/// Sleeps, fails when asked, else writes `value.txt`.
fn finish(ctx: &mut StageContext, common: &Common, value: i64) -> Result<(), StageError> {
    let deadline = Instant::now() + Duration::from_millis(common.sleep_ms as u64);
    while Instant::now() < deadline {
        ctx.check_cancelled()?;
        std::thread::sleep(Duration::from_millis(5));
    }
    if common.fail {
        return Err(StageError::Failed("failed because `fail = true`".into()));
    }
    ctx.log(format!("value {value}"));
    write(ctx, "value.txt", format!("{value}\n"))
}

fn write(ctx: &StageContext, file: &str, text: String) -> Result<(), StageError> {
    let path = ctx.out_dir().join(file);
    crate::fsx::write(&path, text)?;
    Ok(())
}
