//! What the user sees while a pipeline runs. Only the scheduler thread calls
//! into this module (stage threads send it events), so output never
//! interleaves. On a terminal: indicatif bars, one per running stage under an
//! overall bar; otherwise plain log lines on stderr; `--quiet`: nothing but
//! warnings and failures.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::StageStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Plain,
    Quiet,
}

impl Mode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

pub struct Progress {
    mode: Mode,
    started: Instant,
    multi: MultiProgress,
    overall: ProgressBar,
    bars: HashMap<usize, ProgressBar>,
    /// Plain mode: when each stage last printed a progress line.
    last_line: HashMap<usize, Instant>,
}

impl Progress {
    pub fn new(mode: Mode, total: usize) -> Self {
        let multi =
            MultiProgress::with_draw_target(if mode == Mode::Bars { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} stages  {msg}")
                .expect("valid template"),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        Progress { mode, started: Instant::now(), multi, overall, bars: HashMap::new(), last_line: HashMap::new() }
    }

    fn line(&self, text: &str) {
        match self.mode {
            Mode::Bars => self.multi.suspend(|| eprintln!("{text}")),
            _ => eprintln!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    pub fn started(&mut self, i: usize, name: &str, threads: usize) {
        match self.mode {
            Mode::Bars => {
                let bar = self.multi.insert_before(&self.overall, ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:<18} {bar:25} {pos}/{len} {msg} {per_sec} eta {eta}")
                        .expect("valid template"),
                );
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                self.bars.insert(i, bar);
            }
            Mode::Plain => self.line(&format!("start   {name} ({threads} thread{})", if threads == 1 { "" } else { "s" })),
            Mode::Quiet => {}
        }
    }

    pub fn progress(&mut self, i: usize, name: &str, pos: u64, len: u64, unit: &str) {
        match self.mode {
            Mode::Bars => {
                if let Some(bar) = self.bars.get(&i) {
                    bar.set_length(len);
                    bar.set_position(pos);
                    bar.set_message(unit.to_string());
                }
            }
            Mode::Plain => {
                let due = self.last_line.get(&i).is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                if due || pos == len {
                    self.last_line.insert(i, Instant::now());
                    self.line(&format!("        {name}: {pos}/{len} {unit}"));
                }
            }
            Mode::Quiet => {}
        }
    }

    /// The stage was submitted as cluster job `job` (`slurm:1234`).
    pub fn job(&mut self, i: usize, name: &str, job: &str) {
        match self.mode {
            Mode::Bars => {
                if let Some(bar) = self.bars.get(&i) {
                    bar.set_prefix(format!("{name} ({job})"));
                }
            }
            Mode::Plain => self.line(&format!("        {name}: submitted as {job}")),
            Mode::Quiet => {}
        }
    }

    pub fn warning(&mut self, name: &str, text: &str) {
        let text = crate::util::printable(text);
        if self.mode == Mode::Quiet {
            eprintln!("warning: {name}: {text}");
        } else {
            self.line(&format!("warning {name}: {text}"));
        }
    }

    pub fn finished(&mut self, i: usize, name: &str, status: StageStatus, seconds: f64, note: &str) {
        if let Some(bar) = self.bars.remove(&i) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.overall.inc(1);
        self.overall.set_message(format!("{name} {}", status.as_str()));
        let text = match status {
            StageStatus::Failed => format!("failed  {name}: {note}"),
            StageStatus::Skipped => format!("skipped {name}: {note}"),
            s => format!("{:<7} {name} ({seconds:.2}s)", s.as_str()),
        };
        if self.mode != Mode::Quiet || status == StageStatus::Failed {
            self.line(&crate::util::printable(&text));
        }
    }

    pub fn finish(self) {
        self.overall.finish_and_clear();
        // Only the terminal's bars: a failure to erase them changes nothing.
        let _ = self.multi.clear();
    }
}
