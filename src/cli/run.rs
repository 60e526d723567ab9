//! `pipe run` and `pipe plan`: load the pipeline, plan against the cache and
//! the previous run, then (for `run`) execute and write the run record.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use super::{CliError, Dirs, EXIT_FAILED, EXIT_OK, Outcome, load_pipeline, table};
use pipe_core::cache::Cache;
use pipe_core::exec::plan::{Action, Plan, PlanOptions, plan as make_plan};
use pipe_core::exec::progress::{Mode, Progress};
use pipe_core::exec::slurm::SlurmExecutor;
use pipe_core::exec::{self, RunOutcome};
use pipe_core::record::{self, RecordError, RunRecord, StageRecord, StageStatus, Why};
use pipe_core::spec::resources::ExecutorKind;
use pipe_core::util::rfc3339;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    pub file: PathBuf,
    /// Plan only this stage and what it needs (repeatable)
    #[arg(long = "stage", value_name = "NAME")]
    pub stages: Vec<String>,
    /// Treat this stage as changed (repeatable)
    #[arg(long, value_name = "NAME")]
    pub force: Vec<String>,
    /// Where worker stages run: `local`, or `slurm` (one sbatch job each)
    /// [default: `[pipeline.executor] kind`, else local]
    #[arg(long, value_name = "KIND", value_parser = ["local", "slurm"])]
    pub executor: Option<String>,
    #[command(flatten)]
    pub set: super::SetArgs,
    #[command(flatten)]
    pub dirs: Dirs,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// CPU slots shared by all stages [default: the number of cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Show the plan and stop
    #[arg(long)]
    pub dry_run: bool,
    /// No progress output (warnings and failures still print)
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Loads, opens the cache and plans.
fn prepare(args: &PlanArgs) -> Result<(Plan, Cache, PathBuf), CliError> {
    prepare_checked(args, |_, _| Ok(()))
}

/// [`prepare`], with `check(spec, reports)` run before the cache is opened.
fn prepare_checked(
    args: &PlanArgs,
    check: impl FnOnce(&pipe_core::spec::PipelineSpec, &std::path::Path) -> Result<(), RecordError>,
) -> Result<(Plan, Cache, PathBuf), CliError> {
    let (spec, dag) = load_pipeline(&args.file, &args.set)?;
    let cache_dir = args.dirs.cache(&spec);
    let reports = args.dirs.reports(&spec);
    check(&spec, &reports).map_err(CliError::Reports)?;
    let cache = Cache::open(&cache_dir)?;
    let previous = record::last(&reports, &spec.name).unwrap_or_else(|e| {
        // Only the reasons given for re-running depend on it: plan on.
        eprintln!("warning: the previous run's record: {e}; every stage to run is explained as `new`");
        None
    });
    let opts = PlanOptions { targets: args.stages.clone(), force: args.force.clone() };
    let plan = make_plan(spec, dag, &cache, previous.as_ref(), &opts)?;
    Ok((plan, cache, reports))
}

/// The executor of this run: `--executor`, else the file's, else local.
fn executor_kind(args: &PlanArgs, plan: &Plan) -> ExecutorKind {
    args.executor.as_deref().and_then(ExecutorKind::parse).or(plan.spec.executor.kind).unwrap_or_default()
}

/// The plan, with each job's request in a last column under Slurm.
fn plan_table(plan: &Plan, executor: ExecutorKind, jobs: usize, overrides: &[String]) -> String {
    let mut rows = plan_rows(plan, overrides);
    let mut headers = vec!["stage", "kind", "action", "key", "why"];
    if executor == ExecutorKind::Slurm {
        headers.push("slurm request");
        let requests = exec::job_requests(plan, true, jobs);
        for (row, &i) in rows.iter_mut().zip(&plan.dag.order) {
            row.push(requests[i].as_ref().map_or_else(|| "-".into(), |r| r.describe()));
        }
    }
    table(&headers, &rows)
}

fn plan_rows(plan: &Plan, overrides: &[String]) -> Vec<Vec<String>> {
    plan.dag
        .order
        .iter()
        .map(|&i| {
            let (s, p) = (&plan.spec.stages[i], &plan.stages[i]);
            let action = match p.action {
                Action::Cached => "cached",
                Action::Run => "run",
                Action::Unselected => "-",
            };
            // A change a `--set` made is named as one.
            let why = if p.action == Action::Run && !overrides.is_empty() {
                let shown: Vec<String> = p
                    .reasons
                    .iter()
                    .map(|r| pipe_core::keys::by_override(r, &s.name, overrides.iter()).unwrap_or_else(|| r.to_string()))
                    .collect();
                p.with_condition(shown.join("; "))
            } else {
                p.reason_text()
            };
            vec![s.name.clone(), s.kind.name.to_string(), action.to_string(), p.key[..12].to_string(), why]
        })
        .collect()
}

/// ", N of them only if an input's output changes" (early cutoff), or nothing.
fn conditional_note(plan: &Plan) -> String {
    match plan.conditional() {
        0 => String::new(),
        n => format!(", {n} of them only if an upstream stage's output changes"),
    }
}

pub(super) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn plan(args: &PlanArgs) -> Outcome {
    let (plan, _, _) = prepare(args)?;
    print!("{}", plan_table(&plan, executor_kind(args, &plan), default_jobs(), &args.set.set));
    println!("{} of {} stages will run{}", plan.to_run(), plan.stages.len(), conditional_note(&plan));
    Ok(EXIT_OK)
}

pub fn run(args: &RunArgs) -> Outcome {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let dry_run = args.dry_run;
    let writable = |spec: &pipe_core::spec::PipelineSpec, reports: &std::path::Path| {
        if dry_run { Ok(()) } else { record::check_writable(reports, &spec.name) }
    };
    let (plan, cache, reports) = prepare_checked(&args.plan, writable)?;
    let jobs = args.jobs.map_or_else(default_jobs, usize::from);
    let executor = executor_kind(&args.plan, &plan);
    if args.dry_run {
        print!("{}", plan_table(&plan, executor, jobs, &args.plan.set.set));
        println!("{} of {} stages would run{} (dry run: nothing was run)", plan.to_run(), plan.stages.len(), conditional_note(&plan));
        return Ok(EXIT_OK);
    }
    if plan.to_run() > 0
        && let Some(why) = cache.unwritable()
    {
        let stages =
            plan.spec.stages.iter().zip(&plan.stages).filter(|(_, p)| p.action == Action::Run).map(|(s, _)| s.name.clone()).collect();
        return Err(CliError::ReadOnlyCache { root: cache.root().to_path_buf(), why, stages });
    }
    if plan.holds.iter().any(|h| !h.is_locked()) {
        eprintln!(
            "note: the cache {} cannot be written, so this run reads it without taking its read locks: `pipe gc` there cannot see it",
            cache.root().display()
        );
    }
    let slurm = match executor {
        ExecutorKind::Slurm => Some(slurm_executor(&plan)?),
        ExecutorKind::Local => None,
    };
    super::signals::install(&cancel);
    let mut progress = Progress::new(Mode::detect(args.quiet), plan.to_run());
    let outcome = exec::execute(&plan, &cache, jobs, slurm.as_ref(), &cancel, &mut progress);
    progress.finish();

    let record = run_record(&plan, &outcome, &cache, started_at, clock.elapsed().as_secs_f64(), &args.plan.set.set);
    let described = record.clone();
    let (run_dir, record, report) =
        record::write(&reports, record, |staging| pipe_core::report::write(staging, &plan.spec, &described, &cache))
            .map_err(CliError::WriteRecord)?;
    print_summary(&record, &run_dir);
    let tables =
        report.map_err(|source| CliError::Report { source, summary: run_dir.join("summary.json"), interrupted: outcome.interrupted })?;
    for (stage, table) in tables {
        println!("\n{stage}: test-split metrics (full report: {})\n{table}", run_dir.join("comparison.md").display());
    }
    Ok(if outcome.interrupted {
        super::signals::interrupted_exit_code()
    } else if outcome.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// The Slurm executor, once `sbatch` is found: a missing client is one
/// clear error before anything runs, not one per stage.
fn slurm_executor(plan: &Plan) -> Result<SlurmExecutor, CliError> {
    match std::process::Command::new("sbatch").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(SlurmExecutor::from_spec(&plan.spec.executor)),
        Ok(out) => Err(CliError::Executor(format!("`sbatch --version` failed: {}", String::from_utf8_lossy(&out.stderr).trim()))),
        Err(e) => Err(CliError::Executor(format!(
            "the Slurm executor needs `sbatch` on PATH ({e}); on this machine `bash scripts/slurm.sh start` starts a one-node cluster"
        ))),
    }
}

fn run_record(plan: &Plan, outcome: &RunOutcome, cache: &Cache, started: SystemTime, seconds: f64, overrides: &[String]) -> RunRecord {
    let stages = plan
        .dag
        .order
        .iter()
        .filter(|&&i| plan.stages[i].action != Action::Unselected)
        .map(|&i| {
            let (s, p, r) = (&plan.spec.stages[i], &plan.stages[i], &outcome.results[i]);
            StageRecord {
                name: s.name.clone(),
                kind: s.kind.name.to_string(),
                key: p.key.clone(),
                status: r.status,
                seconds: r.seconds,
                reason: r.reason.clone(),
                error: r.error.clone(),
                threads: r.threads,
                start: r.start,
                warnings: match r.status {
                    StageStatus::Cached => logged_warnings(cache, &p.key),
                    _ => r.warnings.clone(),
                },
                inputs: p.input_stages.clone(),
                doc: p.doc.to_value(),
                executor: r.job.as_ref().and_then(|j| j.split_once(':')).map(|(e, _)| e.to_string()),
                job_id: r.job.as_ref().and_then(|j| j.split_once(':')).map(|(_, id)| id.to_string()),
                job_overhead: r.job_overhead.map(|(to_start, to_publish)| record::JobOverhead { to_start, to_publish }),
            }
        })
        .collect();
    let status = if outcome.interrupted {
        "interrupted"
    } else if outcome.failed() {
        "failed"
    } else {
        "ok"
    };
    RunRecord {
        pipeline: plan.spec.name.clone(),
        run_id: record::new_run_id(started),
        pipeline_file: plan.spec.file.display().to_string(),
        started: rfc3339(started),
        seconds,
        status: status.to_string(),
        cpu_seconds: cpu_seconds(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        report: "complete".into(),
        overrides: overrides.to_vec(),
        stages,
    }
}

/// User + system CPU seconds of this process and of the workers it has waited for.
fn cpu_seconds() -> f64 {
    let of = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return 0.0;
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// The warnings a cached stage gave when it ran, from its `stage.log`.
fn logged_warnings(cache: &Cache, key: &str) -> Vec<String> {
    cache.logged_warnings(key).unwrap_or_else(|e| {
        eprintln!("warning: the warnings of a cached stage are not in this run's record: {e}");
        Vec::new()
    })
}

fn print_summary(record: &RunRecord, run_dir: &std::path::Path) {
    let rows: Vec<Vec<String>> = record
        .stages
        .iter()
        .map(|s| {
            let why = match &s.error {
                Some(e) => pipe_core::util::printable(e).into_owned(),
                None => s.reason.to_string(),
            };
            vec![s.name.clone(), s.kind.clone(), s.status.as_str().to_string(), format!("{:.2}", s.seconds), why]
        })
        .collect();
    print!("{}", table(&["stage", "kind", "status", "seconds", "why"], &rows));
    let count = |st: StageStatus| record.stages.iter().filter(|s| s.status == st).count();
    let jobs = record.stages.iter().filter(|s| s.job_id.is_some()).count();
    if jobs > 0 {
        println!("CPU: {jobs} stages ran as cluster jobs (`pipe show` lists their ids); the engine used {:.1} s", record.cpu_seconds);
    } else if let Some(u) = record.utilisation().filter(|_| record.stages.iter().any(|s| s.status == StageStatus::Ran)) {
        println!("CPU: {:.1} s over {} cores × {:.1} s: {:.0}% used", record.cpu_seconds, record.cores, record.seconds, 100.0 * u);
    }
    let cut_off = record.stages.iter().filter(|s| matches!(s.reason, Why::CutOff(_))).count();
    println!(
        "{}: {} ran, {} cached{}, {} failed, {} skipped in {:.2}s ({})",
        record.run_id,
        count(StageStatus::Ran),
        count(StageStatus::Cached),
        if cut_off > 0 { format!(" ({cut_off} cut off: input unchanged)") } else { String::new() },
        count(StageStatus::Failed),
        count(StageStatus::Skipped),
        record.seconds,
        record.status
    );
    println!("record: {}", run_dir.join("summary.json").display());
}
