//! `pipe gc`: frees cache space. With pipeline files, entries those
//! pipelines use now are kept and the rest removed; with `--older-than`, only
//! entries older than the age are removed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, existing_cache, load_pipeline};
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

pub fn gc(args: &GcArgs) -> i32 {
    if args.pipelines.is_empty() && args.older_than.is_none() {
        eprintln!("error: say what to keep: pipeline files whose stages stay (`pipe gc pipelines/a.toml`), or `--older-than 7d`");
        return EXIT_INVALID;
    }
    let older_than = match args.older_than.as_deref().map(|a| (a, parse_age(a))) {
        None => None,
        Some((_, Some(age))) => Some(SystemTime::now() - age),
        Some((text, None)) => {
            eprintln!("error: --older-than {text}: expected a number and a unit (s, m, h, d, w), e.g. 7d");
            return EXIT_INVALID;
        }
    };
    let cache = match existing_cache(&args.cache_dir, "remove") {
        Ok(Some(c)) => c,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    let keep = if args.pipelines.is_empty() {
        None
    } else {
        let mut keys = HashSet::new();
        for file in &args.pipelines {
            let (spec, dag) = match load_pipeline(file) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match plan(spec, dag, &cache, None, &PlanOptions::default()) {
                Ok(p) => keys.extend(p.stages.into_iter().map(|s| s.key)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_INVALID;
                }
            }
        }
        Some(keys)
    };
    match gc::collect(&cache, &gc::GcPolicy { keep, older_than, dry_run: args.dry_run }) {
        Ok(r) => {
            let verb = if args.dry_run { "would remove" } else { "removed" };
            println!(
                "{verb} {} entr{}, freeing {}; kept {}{}",
                r.removed,
                if r.removed == 1 { "y" } else { "ies" },
                human_bytes(r.bytes),
                r.kept,
                if r.in_use > 0 { format!(" ({} in use by a running `pipe run`)", r.in_use) } else { String::new() }
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
