//! `pipe runs`, `pipe show` and `pipe diff`: reading the report folders of
//! earlier runs. None of them touches the cache.

use std::path::PathBuf;

use super::{CliError, EXIT_OK, Outcome, table};
use pipe_core::fsx;
use pipe_core::record;
use pipe_core::report::diff;

/// `pipe diff --format`: the command-line face of [`diff::Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Md,
    Csv,
    Json,
}

impl From<Format> for diff::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => diff::Format::Table,
            Format::Md => diff::Format::Md,
            Format::Csv => diff::Format::Csv,
            Format::Json => diff::Format::Json,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only this pipeline's runs (its name, or its file)
    pub pipeline: Option<String>,
    /// Reports folder [default: ./reports]
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A run id (or a unique prefix), or a run folder
    pub run: String,
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Run id, run folder, or pipeline file (its latest run)
    pub a: String,
    /// Run id, run folder, or pipeline file (its latest run)
    pub b: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Deltas larger than this are marked as changes
    #[arg(long, default_value = "0.0005")]
    pub tolerance: f64,
    /// Every class's F1 too, not only the averages
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports_dir: PathBuf,
}

/// The headline metric of each approach in a run, from its metrics.csv:
/// accuracy (single-label), micro-averaged F2 (multi-label, the paper's).
fn headline(dir: &std::path::Path) -> String {
    // A run without an evaluate stage has no metrics.csv; one that cannot be
    // read leaves the cell empty too (this is a listing, `pipe show` says more).
    let Ok(text) = fsx::read_to_string(dir.join("metrics.csv")) else { return String::new() };
    let comparison = fsx::read_to_string(dir.join("comparison.md")).unwrap_or_default();
    headline_of(&text, &partial_in(&comparison))
}

/// The approaches the comparison marks partial (`| step1 (partial: 3 of 22 classes) |`).
fn partial_in(comparison_md: &str) -> Vec<String> {
    comparison_md
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" | ").next()?.split_once(" (partial: ").map(|(name, _)| name.to_string()))
        .collect()
}

fn headline_of(metrics_csv: &str, partial: &[String]) -> String {
    let mut cells: Vec<(bool, String)> = metrics_csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            // approach,task,class,precision,recall,f1,f2,support,variant,repeat;
            // a swept approach's name is quoted (`"svm[words=50,repeat=0]"`).
            let f: Vec<String> = pipe_core::data::imet::csv_fields(l);
            let number = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
            let part = partial.contains(&f[0]);
            let name = if part { format!("{} (partial)", f[0]) } else { f[0].clone() };
            match (f.get(1).map(String::as_str), f.get(2).map(String::as_str)) {
                (Some("single"), Some("accuracy")) => Some((part, format!("{name} {:.3}", number(5)))),
                (Some("multi"), Some("micro avg")) => Some((part, format!("{name} micro F2 {:.3}", number(6)))),
                _ => None,
            }
        })
        .collect();
    // Partial approaches last: never the first number a reader sees.
    cells.sort_by_key(|(part, _)| *part);
    cells.into_iter().map(|(_, c)| c).collect::<Vec<_>>().join(", ")
}

pub fn runs(args: &RunsArgs) -> Outcome {
    let name = args.pipeline.as_deref().map(|p| {
        if p.ends_with(".toml") {
            pipe_core::spec::load(std::path::Path::new(p)).map(|s| s.name).unwrap_or_else(|e| {
                // Perhaps a pipeline named like a file: list its runs, but say why.
                eprintln!("warning: {p}: {e}; listing the runs of a pipeline named `{p}`");
                p.to_string()
            })
        } else {
            p.to_string()
        }
    });
    let (found, unreadable) = record::list_all(&args.reports_dir, name.as_deref());
    for (dir, why) in &unreadable {
        eprintln!("warning: run folder {} is unreadable: {why}", dir.display());
    }
    if found.is_empty() {
        println!("no runs under {}", args.reports_dir.display());
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|(dir, r)| {
            let ran = r.stages.iter().filter(|s| s.status == record::StageStatus::Ran).count();
            vec![
                r.run_id.clone(),
                r.started.clone(),
                r.pipeline.clone(),
                r.status.clone(),
                format!("{ran}/{}", r.stages.len()),
                headline(dir),
            ]
        })
        .collect();
    print!("{}", table(&["run", "started", "pipeline", "status", "ran", "accuracy (multi-label: micro F2)"], &rows));
    Ok(EXIT_OK)
}

pub fn show(args: &ShowArgs) -> Outcome {
    let (dir, r) = record::find(&args.reports_dir, &args.run).map_err(CliError::FindRun)?;
    println!("{} ({}), started {}, {:.2}s, {}\n", r.run_id, r.pipeline, r.started, r.seconds, r.status);
    if !r.overrides.is_empty() {
        println!("overrides: {}\n", r.overrides.iter().map(|o| format!("--set {o}")).collect::<Vec<_>>().join(" "));
    }
    if r.report != "complete" {
        println!("report: {}\n", r.report);
    }
    let jobs = r.stages.iter().filter(|s| s.job_id.is_some()).count();
    if jobs > 0 {
        println!("CPU: {jobs} stages ran as cluster jobs; the engine used {:.1} s\n", r.cpu_seconds);
    } else if let Some(u) = r.utilisation() {
        println!("CPU: {:.1} s over {} cores × {:.1} s: {:.0}% used\n", r.cpu_seconds, r.cores, r.seconds, 100.0 * u);
    }
    let rows: Vec<Vec<String>> = r
        .stages
        .iter()
        .map(|s| {
            let mut row = vec![
                s.name.clone(),
                s.kind.clone(),
                s.status.as_str().into(),
                format!("{:.2}", s.seconds),
                if s.threads > 0 { s.threads.to_string() } else { "-".into() },
            ];
            if jobs > 0 {
                row.push(match (&s.executor, &s.job_id) {
                    (Some(e), Some(id)) => format!("{e} {id}"),
                    _ if s.status == pipe_core::record::StageStatus::Ran => "local".into(),
                    _ => "-".into(),
                });
            }
            row.push(s.error.clone().unwrap_or_else(|| s.reason.to_string()));
            row
        })
        .collect();
    let headers: &[&str] = if jobs > 0 {
        &["stage", "kind", "status", "seconds", "threads", "job", "why"]
    } else {
        &["stage", "kind", "status", "seconds", "threads", "why"]
    };
    print!("{}", table(headers, &rows));
    for s in r.stages.iter().filter(|s| !s.warnings.is_empty()) {
        for w in &s.warnings {
            println!("warning: {}: {w}", s.name);
        }
    }
    match fsx::read_to_string(dir.join("comparison.md")) {
        Ok(md) => println!("\n{md}"),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => println!("\n(no evaluate stage in this run)"),
        Err(e) => return Err(e.into()),
    }
    Ok(EXIT_OK)
}

pub fn diff(args: &DiffArgs) -> Outcome {
    let resolve = |arg: &str| diff::resolve(&args.reports_dir, arg).map_err(CliError::Resolve);
    let (a, b) = (resolve(&args.a)?, resolve(&args.b)?);
    let deltas = diff::metric_deltas(&a.dir, &b.dir, args.all).map_err(CliError::Compare)?;
    let why = diff::why(&a.record, &b.record);
    let significance = pipe_core::report::significance::between(&a.dir, &b.dir);
    print!("{}", diff::render(&a, &b, &deltas, &why, &significance, args.format.into(), args.tolerance));
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    #[test]
    fn headline_is_accuracy_or_micro_f2() {
        let csv = "approach,task,class,precision,recall,f1,f2,support\n\
                   svm,single,cats,0.5,0.5,0.5,0.5,2\n\
                   svm,single,accuracy,,,0.75,,4\n\
                   tags,multi,micro avg,0.2,0.8,0.32,0.5,10\n\
                   tags,multi,samples avg,0.3,0.6,0.4,0.4567,10\n";
        assert_eq!(super::headline_of(csv, &[]), "svm 0.750, tags micro F2 0.500");
        let swept = "approach,task,class,precision,recall,f1,f2,support,variant,repeat\n\
                     \"svm[words=50,repeat=1]\",single,accuracy,0.6,0.6,0.6,,4,svm[words=50],1\n";
        assert_eq!(super::headline_of(swept, &[]), "svm[words=50,repeat=1] 0.600");
        let md = "| approach | accuracy |\n|---|---|\n| cnn | 0.600 |\n| step1 (partial: 3 of 6 classes) | 0.900 |\n";
        let partial = super::partial_in(md);
        assert_eq!(partial, ["step1"]);
        let two = "approach,task,class,precision,recall,f1,f2,support\nstep1,single,accuracy,,,0.9,,4\ncnn,single,accuracy,,,0.6,,4\n";
        assert_eq!(super::headline_of(two, &partial), "cnn 0.600, step1 (partial) 0.900");
    }
}
