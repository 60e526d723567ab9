//! `pipe predict`: applies a trained approach of a pipeline to a folder of
//! new images (see `pipe_core::spec::predict` for how the stages are
//! replayed), then writes one CSV row per image: its predicted class and
//! the top five with their scores (multi-label: the labels decided and the
//! top five), and for a file that could not be used, why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{CliError, EXIT_FAILED, EXIT_OK, Outcome, load_pipeline};
use pipe_core::cache::{Cache, Lookup};
use pipe_core::data::dataset::Dataset;
use pipe_core::data::predictions::{MultiPredictions, Predictions};
use pipe_core::exec::plan::{Action, PlanOptions, plan as make_plan};
use pipe_core::exec::progress::{Mode, Progress};
use pipe_core::kinds::ArtifactType;
use pipe_core::spec::predict::{approaches, derive};

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The pipeline file whose run trained the approach
    pub file: PathBuf,
    /// The folder of new images (searched recursively: png, jpg, jpeg, bmp, webp)
    pub images: PathBuf,
    /// The approach: a stage that predicts classes or labels (`pipe predict FILE DIR` lists them)
    #[arg(long, short = 'a', value_name = "STAGE")]
    pub approach: Option<String>,
    /// The CSV to write [default: predictions-APPROACH.csv]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// CPU slots [default: the number of cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// No progress output (warnings and failures still print)
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub set: super::SetArgs,
    #[command(flatten)]
    pub dirs: super::Dirs,
}

/// How many classes (labels) each row lists with their scores.
const TOP: usize = 5;

pub fn predict(args: &PredictArgs) -> Outcome {
    let (spec, _) = load_pipeline(&args.file, &args.set)?;
    let Some(approach) = args.approach.clone() else {
        return Err(CliError::Predict(format!(
            "say which approach to apply with --approach; those of {}: {}",
            args.file.display(),
            approaches(&spec).join(", ")
        )));
    };
    let images = pipe_core::fsx::canonicalize(&args.images)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| CliError::Predict(format!("{}: not a folder: give the folder of images to classify", args.images.display())))?;
    let derived = derive(&spec, &approach, &images).map_err(|e| CliError::Predict(e.to_string()))?;
    let cache = Cache::open(&args.dirs.cache(&spec))?;
    let dag = derived.spec.dag.clone();
    let opts = PlanOptions { targets: vec![derived.approach.clone()], force: Vec::new() };
    let mut plan = make_plan(derived.spec, dag, &cache, None, &opts)?;
    // The original stages are the training run's: those the replay reads
    // must be cached, and none of them runs here.
    for (stage, planned) in plan.spec.stages.iter().zip(plan.stages.iter_mut()) {
        if stage.name.ends_with(pipe_core::spec::predict::NEW_SUFFIX) {
            continue;
        }
        if derived.reads.contains(&stage.name) && planned.action != Action::Cached {
            return Err(CliError::Predict(format!(
                "stage `{}` is not cached{}: `pipe run {}{} --stage {approach}` trains the approach first (pipe predict retrains nothing)",
                stage.name,
                planned.reasons.first().map(|r| format!(" ({r})")).unwrap_or_default(),
                args.file.display(),
                args.set.set.iter().map(|s| format!(" -S {s}")).collect::<String>(),
            )));
        }
        if planned.action == Action::Run {
            planned.action = Action::Unselected;
        }
    }
    if plan.to_run() > 0
        && let Some(why) = cache.unwritable()
    {
        return Err(CliError::Predict(format!("the cache {} cannot be written ({why})", cache.root().display())));
    }
    let cancel = Arc::new(AtomicBool::new(false));
    super::signals::install(&cancel);
    let jobs = args.jobs.map_or_else(super::run::default_jobs, usize::from);
    let mut progress = Progress::new(Mode::detect(args.quiet), plan.to_run());
    let outcome = pipe_core::exec::execute(&plan, &cache, jobs, None, &cancel, &mut progress);
    progress.finish();
    if outcome.interrupted {
        return Ok(super::signals::interrupted_exit_code());
    }
    let failed: Vec<String> = plan
        .spec
        .stages
        .iter()
        .zip(&outcome.results)
        .filter_map(|(s, r)| r.error.as_ref().map(|e| format!("stage `{}` failed: {e}", s.name)))
        .collect();
    if !failed.is_empty() {
        eprintln!("{}", pipe_core::util::printable(&failed.join("\n")));
        return Ok(EXIT_FAILED);
    }
    let dir_of = |name: &str| -> Result<PathBuf, CliError> {
        let i = plan.spec.stages.iter().position(|s| s.name == name).expect("a derived stage");
        match cache.lookup(&plan.stages[i].key) {
            Lookup::Hit(entry) => Ok(entry.out_dir()),
            _ => Err(CliError::Predict(format!("stage `{name}`: its entry is not in the cache after the run"))),
        }
    };
    let rows = Dataset::read_index(&dir_of(&derived.images)?).map_err(|e| CliError::Predict(e.to_string()))?;
    let meta = Dataset::read_meta(&dir_of(&derived.images)?).map_err(|e| CliError::Predict(e.to_string()))?;
    let answer = dir_of(&derived.approach)?;
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("predictions-{approach}.csv")));
    let shown = |source: &str| shown_path(source, &images, &args.images);
    let mut lines: Vec<(String, String)> = Vec::new();
    let (header, summary) = match plan.spec.stages.iter().find(|s| s.name == derived.approach).map(|s| s.output) {
        Some(ArtifactType::MultiLabelPredictions) => {
            let p = MultiPredictions::read(&answer).map_err(|e| CliError::Predict(e.to_string()))?;
            for k in 0..p.ids.len() {
                let labels: Vec<&str> = p.y_pred[k].iter().map(|&l| p.meta.classes[l as usize].as_str()).collect();
                let row = format!("{},{}", csv_field(&labels.join("|")), top(&p.meta.classes, &p.scores[k]));
                lines.push((shown(&rows[p.ids[k] as usize].source), row));
            }
            let tagged = p.y_pred.iter().filter(|s| !s.is_empty()).count();
            (format!("path,labels,{},problem", top_header("label")), format!("{tagged} of {} images got at least one label", p.ids.len()))
        }
        _ => {
            let p = Predictions::read(&answer).map_err(|e| CliError::Predict(e.to_string()))?;
            let mut per_class = vec![0usize; p.meta.classes.len()];
            for k in 0..p.ids.len() {
                let class = p.y_pred[k] as usize;
                per_class[class] += 1;
                let row = format!("{},{}", csv_field(&p.meta.classes[class]), top(&p.meta.classes, &p.scores[k]));
                lines.push((shown(&rows[p.ids[k] as usize].source), row));
            }
            let mut counts: Vec<(usize, &String)> = per_class.iter().copied().zip(&p.meta.classes).filter(|(n, _)| *n > 0).collect();
            counts.sort_by_key(|c| std::cmp::Reverse(c.0));
            let said: Vec<String> = counts.iter().take(6).map(|(n, c)| format!("{c} {n}")).collect();
            let more = if counts.len() > 6 { ", ..." } else { "" };
            (format!("path,predicted,{},problem", top_header("class")), format!("predicted: {}{more}", said.join(", ")))
        }
    };
    let width = header.split(',').count() - 2;
    let mut out: Vec<(String, String)> = lines.into_iter().map(|(path, row)| (path, format!("{row},"))).collect();
    let left_out: Vec<_> = meta.bad.iter().chain(&meta.dropped).collect();
    for b in &left_out {
        out.push((shown(&b.item), format!("{}{}", ",".repeat(width), csv_field(&b.problem))));
    }
    out.sort();
    let mut text = format!("{header}\n");
    for (path, row) in &out {
        text.push_str(&format!("{},{row}\n", csv_field(path)));
    }
    pipe_core::fsx::write(&output, text)?;
    println!("{} images: {summary}", out.len() - left_out.len());
    if !left_out.is_empty() {
        let names: Vec<String> = left_out.iter().take(3).map(|b| format!("{} ({})", shown(&b.item), b.problem)).collect();
        println!(
            "left out {} file{}: {}{}",
            left_out.len(),
            if left_out.len() == 1 { "" } else { "s" },
            names.join("; "),
            if left_out.len() > 3 { ", ..." } else { "" }
        );
    }
    println!("wrote {}", output.display());
    Ok(EXIT_OK)
}

/// `class_1,score_1,...` for the top [`TOP`].
fn top_header(word: &str) -> String {
    (1..=TOP).map(|k| format!("{word}_{k},score_{k}")).collect::<Vec<_>>().join(",")
}

/// The [`TOP`] highest scores with their names (empty cells past the
/// number of classes); scores in full precision.
fn top(names: &[String], scores: &[f64]) -> String {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    (0..TOP)
        .map(|k| match order.get(k) {
            Some(&c) => format!("{},{}", csv_field(&names[c]), scores[c]),
            None => ",".to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A CSV cell, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// A source path as the user named its folder: `images/a.png`, not the
/// canonical `/home/.../images/a.png`.
fn shown_path(source: &str, canonical: &Path, given: &Path) -> String {
    match Path::new(source).strip_prefix(canonical) {
        Ok(rest) => given.join(rest).display().to_string(),
        Err(_) => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_five_are_the_highest_scores_first_ties_in_class_order() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(top(&names, &[0.25, 0.5, 0.25]), "b,0.5,a,0.25,c,0.25,,,,");
        assert_eq!(top_header("class").split(',').count(), 10);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(shown_path("/x/imgs/a/b.png", Path::new("/x/imgs"), Path::new("imgs")), "imgs/a/b.png");
    }
}
