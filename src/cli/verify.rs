//! `pipe verify`: checks every cache entry against its manifest, with a
//! progress bar over the bytes hashed, and names the corrupt ones (with
//! `--discard`, removes those no run is using).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_FAILED, EXIT_OK, Outcome, existing_cache, table};
use pipe_core::cache::verify::verify_all;
use pipe_core::util::human_bytes;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Cache folder [default: ./cache]
    #[arg(long, value_name = "DIR", default_value = "cache")]
    pub cache_dir: PathBuf,
    /// Remove the corrupt entries (those a running `pipe run` uses are kept)
    #[arg(long)]
    pub discard: bool,
}

pub fn verify(args: &VerifyArgs) -> Outcome {
    let Some(cache) = existing_cache(&args.cache_dir, "verify")? else { return Ok(EXIT_OK) };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} verifying {bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let report = verify_all(&cache, args.discard, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    println!("checked {} entries ({}) in {}", report.checked, human_bytes(report.bytes), args.cache_dir.display());
    if report.corrupt.is_empty() {
        println!("all sound");
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = report
        .corrupt
        .iter()
        .map(|c| {
            let (stage, kind) = c.stage.clone().unwrap_or_else(|| ("?".into(), "?".into()));
            let done = if c.discarded {
                "discarded"
            } else if args.discard {
                "kept: in use"
            } else {
                "kept"
            };
            vec![c.key[..12].to_string(), stage, kind, done.to_string(), c.problem.clone()]
        })
        .collect();
    print!("{}", table(&["key", "stage", "kind", "action", "problem"], &rows));
    println!(
        "{} corrupt entr{}: {}",
        report.corrupt.len(),
        if report.corrupt.len() == 1 { "y" } else { "ies" },
        if args.discard {
            "the next run that needs one recomputes it"
        } else {
            "`pipe verify --discard` removes them, or the next run that reads one recomputes it"
        }
    );
    // Corruption found: said above, in the table; not an error of the command.
    Ok(EXIT_FAILED)
}
