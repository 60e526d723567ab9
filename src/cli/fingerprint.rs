//! `pipe fingerprint DIR`: the content fingerprint a `load` stage folds into
//! its key, with how many files were read rather than served by the stat
//! cache. Useful to see why a dataset counts as changed, and to benchmark.

use std::path::PathBuf;
use std::time::Instant;

use super::{EXIT_OK, Outcome};
use pipe_core::cache::{Cache, fingerprint::fingerprint};

#[derive(Debug, clap::Args)]
pub struct FingerprintArgs {
    /// A data folder (or file)
    pub path: PathBuf,
    /// Cache folder holding the stat cache [default: ./cache]
    #[arg(long, value_name = "DIR", default_value = "cache")]
    pub cache_dir: PathBuf,
}

pub fn run(args: &FingerprintArgs) -> Outcome {
    let clock = Instant::now();
    let cache = Cache::open(&args.cache_dir)?;
    let fp = fingerprint(&cache.root().join("fingerprints"), &args.path)?;
    println!("{}  {} files, {} read, {:.3}s  {}", fp.hash, fp.files, fp.hashed, clock.elapsed().as_secs_f64(), args.path.display());
    Ok(EXIT_OK)
}
