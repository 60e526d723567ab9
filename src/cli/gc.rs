//! `pipe gc`: frees cache space. With pipeline files, entries those
//! pipelines use now are kept and the rest removed; with `--older-than`, only
//! entries older than the age are removed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{CliError, EXIT_OK, Outcome, existing_cache, load_pipeline};
use pipe_core::cache::gc;
use pipe_core::exec::plan::{PlanOptions, plan};
use pipe_core::util::{human_bytes, parse_age};

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Pipelines whose current stages are kept
    pub pipelines: Vec<PathBuf>,
    /// Only remove entries older than this age (e.g. 12h, 7d, 2w)
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Cache folder [default: ./cache]
    #[arg(long, value_name = "DIR", default_value = "cache")]
    pub cache_dir: PathBuf,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn gc(args: &GcArgs) -> Outcome {
    if args.pipelines.is_empty() && args.older_than.is_none() {
        return Err(CliError::GcWithoutRule);
    }
    let older_than = match args.older_than.as_deref().map(|a| (a, parse_age(a))) {
        None => None,
        Some((_, Some(age))) => Some(SystemTime::now() - age),
        Some((text, None)) => return Err(CliError::BadAge(text.to_string())),
    };
    let Some(cache) = existing_cache(&args.cache_dir, "remove")? else { return Ok(EXIT_OK) };
    let keep = if args.pipelines.is_empty() {
        None
    } else {
        let mut keys = HashSet::new();
        for file in &args.pipelines {
            let (spec, dag) = load_pipeline(file, &Default::default())?;
            let p = plan(spec, dag, &cache, None, &PlanOptions::default())?;
            keys.extend(p.stages.into_iter().map(|s| s.key));
        }
        Some(keys)
    };
    let r = gc::collect(&cache, &gc::GcPolicy { keep, older_than, dry_run: args.dry_run })?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} entr{}, freeing {}; kept {}{}",
        r.removed,
        if r.removed == 1 { "y" } else { "ies" },
        human_bytes(r.bytes),
        r.kept,
        if r.in_use > 0 { format!(" ({} in use by a running `pipe run`)", r.in_use) } else { String::new() }
    );
    Ok(EXIT_OK)
}
