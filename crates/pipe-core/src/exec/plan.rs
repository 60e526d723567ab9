//! Planning: every stage's key (Merkle chain in DAG order, with source
//! fingerprints), then which stages are cached and which must run and why.
//! Every cached entry the run will read is held for reading (so `pipe gc`
//! leaves it alone until the run ends) and checked in full (every file's
//! blake3): the cached inputs of a stage that will run, and the `evaluate`
//! entries whose files the report copies. A corrupt one is recomputed
//! instead of being used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, Hold, Lookup, fingerprint};
use crate::keys::{KeyDoc, Reason, key_of, reasons_since, stage_doc};
use crate::kinds::{ArtifactType, ParamType, ParamValue};
use crate::record::{RunRecord, Why};
use crate::spec::PipelineSpec;
use crate::spec::dag::Dag;
use crate::util::PathError;

/// Why a pipeline could not be planned: each case names the stage (or the
/// flag) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{flag} {name}: no such stage in {}{}", file.display(), did_you_mean(.nearest))]
    NoSuchStage { flag: &'static str, name: String, file: PathBuf, nearest: Option<String> },
    #[error(
        "stage `{stage}`: `{param}`: {written} does not exist{}: put the data there, or change `{param}` in {}",
        relative_note(.written, .path, .file),
        file.display()
    )]
    MissingSource { stage: String, param: &'static str, written: String, path: String, file: PathBuf },
    #[error("stage `{stage}`: {source}\n  fix the pattern in {}, or create the file", file.display())]
    Code {
        stage: String,
        file: PathBuf,
        #[source]
        source: crate::kinds::command::CodeError,
    },
    #[error("stage `{stage}`: cannot read code file {}: {source}", path.display())]
    ReadCode {
        stage: String,
        path: PathBuf,
        #[source]
        source: PathError,
    },
    #[error("stage `{stage}`: `{param}`: {source}")]
    Fingerprint {
        stage: String,
        param: &'static str,
        #[source]
        source: PathError,
    },
    /// Holding or checking a cache entry the run will read.
    #[error(transparent)]
    Cache(#[from] PathError),
}

fn relative_note(written: &str, resolved: &str, file: &Path) -> String {
    if written == resolved || Path::new(written).is_absolute() {
        String::new()
    } else {
        format!(" (relative to the folder of {}: {resolved})", file.display())
    }
}

fn did_you_mean(nearest: &Option<String>) -> String {
    nearest.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default()
}

/// What the run will do with a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A sound cache entry exists.
    Cached,
    Run,
    /// Not needed for the selected `--stage` targets.
    Unselected,
}

#[derive(Debug, Clone)]
pub struct PlannedStage {
    pub key: String,
    pub doc: KeyDoc,
    /// Slot -> stage names bound to it.
    pub input_stages: BTreeMap<String, Vec<String>>,
    pub action: Action,
    pub reasons: Vec<Reason>,
    /// Expected seconds, for stages that run (see [`estimate`]); 0 otherwise.
    pub estimate: f64,
    /// For a stage that runs only because inputs that run too changed
    /// keys: the stages upstream whose output decides it (early cutoff,
    /// decided when planning); empty otherwise.
    pub runs_if: Vec<String>,
}

impl PlannedStage {
    /// Why the stage runs, or why not.
    pub fn why(&self) -> Why {
        match self.action {
            Action::Cached => Why::Unchanged,
            Action::Unselected => Why::NotSelected,
            Action::Run => Why::Changed(self.reasons.clone()),
        }
    }

    /// [`PlannedStage::why`], and for a stage that may be cut off, what decides it.
    pub fn reason_text(&self) -> String {
        self.with_condition(self.why().to_string())
    }

    /// `why`, followed by "runs if `data` changes its output" where early
    /// cutoff may spare the stage.
    pub fn with_condition(&self, why: String) -> String {
        if self.runs_if.is_empty() {
            return why;
        }
        let names: Vec<String> = self.runs_if.iter().map(|n| format!("`{n}`")).collect();
        let verb = if names.len() == 1 { "changes its" } else { "change their" };
        format!("{why}; runs if {} {verb} output", names.join(" or "))
    }
}

#[derive(Debug)]
pub struct Plan {
    pub spec: PipelineSpec,
    pub dag: Dag,
    /// Aligned with `spec.stages`.
    pub stages: Vec<PlannedStage>,
    /// Read holds on the cached entries this run will read.
    pub holds: Vec<Hold>,
}

/// Whether a stage's output files are copied into the run's report folder.
pub fn feeds_report(kind: &crate::kinds::KindDef) -> bool {
    kind.output == ArtifactType::Metrics
}

impl Plan {
    pub fn to_run(&self) -> usize {
        self.stages.iter().filter(|s| s.action == Action::Run).count()
    }

    /// Of [`Plan::to_run`], the stages that run only if an upstream
    /// stage's output changes (see [`PlannedStage::runs_if`]).
    pub fn conditional(&self) -> usize {
        self.stages.iter().filter(|s| !s.runs_if.is_empty()).count()
    }
}

#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    /// `--stage`: run only these and what they need.
    pub targets: Vec<String>,
    /// `--force`: run these even if cached.
    pub force: Vec<String>,
}

/// Computes keys and decides what runs. Errors name the stage and what to do.
pub fn plan(spec: PipelineSpec, dag: Dag, cache: &Cache, previous: Option<&RunRecord>, opts: &PlanOptions) -> Result<Plan, PlanError> {
    // A stage by its name, or every variant of a swept stage by the name written in the file.
    let indices_of = |name: &str, flag: &'static str| {
        let exact: Vec<usize> = spec.stages.iter().position(|s| s.name == name).into_iter().collect();
        let found =
            if exact.is_empty() { spec.stages.iter().enumerate().filter(|(_, s)| s.base == name).map(|(i, _)| i).collect() } else { exact };
        if found.is_empty() {
            return Err(PlanError::NoSuchStage {
                flag,
                name: name.to_string(),
                file: spec.file.clone(),
                nearest: crate::suggest::nearest(name, spec.stages.iter().map(|s| s.name.as_str())).map(str::to_string),
            });
        }
        Ok(found)
    };
    let pick = |names: &[String], flag| -> Result<Vec<usize>, PlanError> {
        Ok(names.iter().map(|t| indices_of(t, flag)).collect::<Result<Vec<_>, _>>()?.concat())
    };
    let targets = pick(&opts.targets, "--stage")?;
    let forced = pick(&opts.force, "--force")?;
    let selected = if targets.is_empty() { vec![true; spec.stages.len()] } else { dag.closure(&targets) };

    let mut keys: Vec<String> = vec![String::new(); spec.stages.len()];
    let mut planned: Vec<Option<PlannedStage>> = vec![None; spec.stages.len()];
    for &i in &dag.order {
        let stage = &spec.stages[i];
        let mut input_keys = BTreeMap::new();
        let mut input_stages = BTreeMap::new();
        for (slot, refs) in &stage.inputs {
            let idx: Vec<usize> = refs.iter().map(|r| spec.stages.iter().position(|s| s.name == r.stage).expect("validated")).collect();
            input_keys.insert(slot.clone(), idx.iter().map(|j| keys[*j].clone()).collect::<Vec<_>>());
            input_stages.insert(slot.clone(), refs.iter().map(|r| r.stage.clone()).collect::<Vec<_>>());
        }
        let mut sources = BTreeMap::new();
        for def in stage.kind.params.iter().filter(|p| matches!(p.ty, ParamType::Path { fingerprint: true } | ParamType::File)) {
            if let ParamValue::Str(written) = stage.params.get(def.name) {
                let path = crate::spec::resolve_file(&spec.file, written).display().to_string();
                if !Path::new(&path).exists() {
                    return Err(PlanError::MissingSource {
                        stage: stage.name.clone(),
                        param: def.name,
                        written: written.clone(),
                        path: path.clone(),
                        file: spec.file.clone(),
                    });
                }
                let fp = fingerprint::fingerprint(&cache.root().join("fingerprints"), Path::new(&path))
                    .map_err(|source| PlanError::Fingerprint { stage: stage.name.clone(), param: def.name, source })?;
                sources.insert(def.name.to_string(), fp.hash);
            }
        }
        if let Some(command) = &stage.command {
            let dir = crate::spec::pipeline_dir(&spec.file);
            let files = crate::kinds::command::code_files(&dir, &command.code).map_err(|source| PlanError::Code {
                stage: stage.name.clone(),
                file: spec.file.clone(),
                source,
            })?;
            for (rel, path) in files {
                let bytes = crate::fsx::read(&path).map_err(|source| PlanError::ReadCode {
                    stage: stage.name.clone(),
                    path: path.clone(),
                    source,
                })?;
                sources.insert(crate::keys::code_source(&rel), blake3::hash(&bytes).to_hex().to_string());
            }
        }
        let doc = stage_doc(stage, stage.seed, &input_keys, &sources);
        let key = key_of(&doc);
        keys[i] = key.clone();
        let (action, why) = if !selected[i] {
            (Action::Unselected, Vec::new())
        } else if forced.contains(&i) {
            (Action::Run, vec![Reason::Forced])
        } else {
            match cache.lookup(&key) {
                Lookup::Hit(_) => (Action::Cached, Vec::new()),
                Lookup::Corrupt(why) => (Action::Run, vec![Reason::NotCached(format!("cache entry corrupt ({why})"))]),
                Lookup::Missing => (Action::Run, why_missing(previous, &stage.name, &key, &doc, &input_stages)),
            }
        };
        planned[i] = Some(PlannedStage { key, doc, input_stages, action, reasons: why, estimate: 0.0, runs_if: Vec::new() });
    }
    let mut stages: Vec<PlannedStage> = planned.into_iter().map(|p| p.expect("every stage planned")).collect();
    let report: Vec<bool> = spec.stages.iter().map(|s| feeds_report(s.kind)).collect();
    let holds = hold_and_verify_reads(&dag, cache, &report, &mut stages)?;
    for (stage, planned) in spec.stages.iter().zip(stages.iter_mut()).filter(|(_, p)| p.action == Action::Run) {
        planned.estimate = estimate(previous, cache, stage);
    }
    let names: Vec<String> = spec.stages.iter().map(|s| s.name.clone()).collect();
    let conditions = conditions(&dag, &names, &stages);
    for (planned, runs_if) in stages.iter_mut().zip(conditions) {
        planned.runs_if = runs_if;
    }
    Ok(Plan { spec, dag, stages, holds })
}

/// How long a stage that must run will take: the seconds it took in the
/// previous run when it ran there, else the recorded duration of the entry
/// that run used (its manifest, if still cached), else the kind's estimate
/// for these parameters.
pub fn estimate(previous: Option<&RunRecord>, cache: &Cache, stage: &crate::spec::StageSpec) -> f64 {
    if let Some(old) = previous.and_then(|r| r.stage(&stage.name)) {
        if old.status == crate::record::StageStatus::Ran && old.seconds > 0.0 {
            return old.seconds;
        }
        if let Lookup::Hit(entry) = cache.lookup(&old.key) {
            return entry.manifest.seconds;
        }
    }
    stage.estimate()
}

fn why_missing(previous: Option<&RunRecord>, name: &str, key: &str, doc: &KeyDoc, inputs: &BTreeMap<String, Vec<String>>) -> Vec<Reason> {
    match previous.and_then(|r| r.stage(name)) {
        None => vec![Reason::New],
        Some(old) if old.key == key && old.status == crate::record::StageStatus::Failed => {
            vec![Reason::NotCached("failed in the previous run".into())]
        }
        Some(old) if old.key == key && old.status == crate::record::StageStatus::Skipped => {
            vec![Reason::NotCached("skipped in the previous run".into())]
        }
        Some(old) if old.key == key => vec![Reason::NotCached("not in the cache (removed)".into())],
        Some(old) => reasons_since(&old.doc, doc, inputs),
    }
}

/// Reverse DAG order: each cached entry the run reads (a running stage's
/// input, or a report's source when `report[i]`) is held, then checked in
/// full; a failing one is re-run (and its own inputs checked in turn).
fn hold_and_verify_reads(dag: &Dag, cache: &Cache, report: &[bool], stages: &mut [PlannedStage]) -> Result<Vec<Hold>, PathError> {
    let mut holds = Vec::new();
    let mut held = vec![false; stages.len()];
    for &i in dag.order.iter().rev() {
        if report[i] && stages[i].action == Action::Cached {
            hold_and_verify(cache, &mut stages[i], &mut holds)?;
            held[i] = true;
        }
        if stages[i].action != Action::Run {
            continue;
        }
        for &j in &dag.deps[i] {
            if stages[j].action == Action::Cached && !held[j] {
                hold_and_verify(cache, &mut stages[j], &mut holds)?;
                held[j] = true;
            }
        }
    }
    Ok(holds)
}

fn hold_and_verify(cache: &Cache, stage: &mut PlannedStage, holds: &mut Vec<Hold>) -> Result<(), PathError> {
    let hold = cache.hold(&stage.key)?;
    let problem = match cache.lookup(&stage.key) {
        Lookup::Hit(entry) => entry.verify().err().map(|why| format!("cache entry corrupt ({why})")),
        Lookup::Corrupt(why) => Some(format!("cache entry corrupt ({why})")),
        Lookup::Missing => Some("cache entry removed while planning".into()),
    };
    match problem {
        Some(why) => {
            stage.action = Action::Run;
            stage.reasons = vec![Reason::NotCached(why)];
        }
        None => holds.push(hold),
    }
    Ok(())
}

/// For each stage that runs only because inputs that also run changed
/// keys, the stages that decide whether it runs: the nearest ones upstream
/// that run for a reason of their own. Empty for the others (they run, or
/// they do not). `pipe plan` says "runs if `data` changes its output".
fn conditions(dag: &Dag, names: &[String], stages: &[PlannedStage]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new(); stages.len()];
    for &i in &dag.order {
        let p = &stages[i];
        if p.action != Action::Run || p.reasons.is_empty() {
            continue;
        }
        let mut deciders: Vec<String> = Vec::new();
        let mut conditional = true;
        for reason in &p.reasons {
            let Reason::Input { stage, .. } = reason else {
                conditional = false;
                break;
            };
            let Some(j) = names.iter().position(|n| n == stage) else {
                conditional = false;
                break;
            };
            if stages[j].action != Action::Run {
                conditional = false;
                break;
            }
            let upstream = if out[j].is_empty() { std::slice::from_ref(&names[j]) } else { &out[j][..] };
            for name in upstream {
                if !deciders.contains(name) {
                    deciders.push(name.clone());
                }
            }
        }
        if conditional {
            out[i] = deciders;
        }
    }
    out
}
