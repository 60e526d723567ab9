//! Where stages run: `[pipeline.executor]` (local, or Slurm and the settings
//! every Slurm job gets) and `[stages.NAME.resources]` (one stage's own
//! request). Neither is part of any key: where a stage runs never changes
//! what it produces.
//!
//! ```toml
//! [pipeline.executor]
//! kind = "slurm"            # or "local" (the default); `--executor` overrides
//! partition = "gpu"
//! time = "2:00:00"          # Slurm's formats: MM, HH:MM:SS, D-HH:MM, ...
//! mem = "8G"
//! setup = ["module load cuda"]
//!
//! [stages.cnn.resources]
//! time = "1-00:00:00"
//! gpus = 1
//! ```

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::Diagnostic;
use super::read::HintIfNone;
use crate::kinds::params::RawValue;

/// Which executor runs the stages that run in a worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// Spawned on this machine.
    #[default]
    Local,
    /// Submitted with `sbatch`, one job per stage.
    Slurm,
}

impl ExecutorKind {
    pub fn parse(text: &str) -> Option<ExecutorKind> {
        match text {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

/// A (partial) Slurm request: what is unset falls back to the pipeline's
/// `[pipeline.executor]`, then to the stage kind's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub cpus: Option<u32>,
    pub mem_mb: Option<u64>,
    pub time_minutes: Option<u64>,
    pub gpus: Option<u32>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// More `sbatch` arguments, passed as written.
    pub sbatch_args: Vec<String>,
    /// Shell lines the job runs before the worker (`module load ...`).
    pub setup: Vec<String>,
}

impl Resources {
    /// `self` over `base`: a value set here wins; the lists add up, `base`'s first.
    pub fn over(&self, base: &Resources) -> Resources {
        let list = |a: &[String], b: &[String]| b.iter().chain(a).cloned().collect();
        Resources {
            cpus: self.cpus.or(base.cpus),
            mem_mb: self.mem_mb.or(base.mem_mb),
            time_minutes: self.time_minutes.or(base.time_minutes),
            gpus: self.gpus.or(base.gpus),
            partition: self.partition.clone().or_else(|| base.partition.clone()),
            account: self.account.clone().or_else(|| base.account.clone()),
            qos: self.qos.clone().or_else(|| base.qos.clone()),
            sbatch_args: list(&self.sbatch_args, &base.sbatch_args),
            setup: list(&self.setup, &base.setup),
        }
    }
}

/// `[pipeline.executor]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutorSpec {
    /// `kind`, if the file sets it (the command line's `--executor` wins).
    pub kind: Option<ExecutorKind>,
    /// What every job requests unless its stage says otherwise.
    pub resources: Resources,
    /// The longest wait between two `squeue` calls (`poll_interval`, seconds).
    pub poll_seconds: Option<f64>,
    /// The most jobs in flight at once (`max_jobs`).
    pub max_jobs: Option<usize>,
}

const RESOURCE_KEYS: &[&str] = &["cpus", "mem", "time", "gpus", "partition", "account", "qos", "sbatch_args", "setup"];
const EXECUTOR_KEYS: &[&str] = &["kind", "poll_interval", "max_jobs"];

/// Reads `[pipeline.executor]`.
pub(super) fn read_executor(value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> ExecutorSpec {
    let mut spec = ExecutorSpec::default();
    let DeValue::Table(table) = value.get_ref() else {
        errors.push(Diagnostic::new(value.span(), "`[pipeline.executor]` must be a table").hint("e.g. `executor = { kind = \"slurm\" }`"));
        return spec;
    };
    for (key, value) in table.iter() {
        let k = key.get_ref().as_ref();
        let (raw, span) = (super::read::raw_value(value.get_ref()), value.span());
        match k {
            "kind" => match &raw {
                RawValue::Str(s) if ExecutorKind::parse(s).is_some() => spec.kind = ExecutorKind::parse(s),
                _ => errors.push(Diagnostic::new(span, "`kind` of `[pipeline.executor]` must be \"local\" or \"slurm\"")),
            },
            "poll_interval" => match raw {
                RawValue::Int(n) if (1..=3600).contains(&n) => spec.poll_seconds = Some(n as f64),
                RawValue::Float(f) if (0.05..=3600.0).contains(&f) => spec.poll_seconds = Some(f),
                _ => errors.push(Diagnostic::new(span, "`poll_interval` must be a number of seconds in 0.05..=3600")),
            },
            "max_jobs" => match raw {
                RawValue::Int(n) if (1..=10_000).contains(&n) => spec.max_jobs = Some(n as usize),
                _ => errors.push(Diagnostic::new(span, "`max_jobs` must be an integer in 1..=10000")),
            },
            _ if RESOURCE_KEYS.contains(&k) => resource_key(k, raw, span, &mut spec.resources, "`[pipeline.executor]`", errors),
            other => errors.push(
                Diagnostic::new(key.span(), format!("unknown key `{other}` in `[pipeline.executor]`"))
                    .suggest(other, EXECUTOR_KEYS.iter().chain(RESOURCE_KEYS).copied())
                    .hint_if_none("`[pipeline.executor]` takes kind, poll_interval, max_jobs and the resource keys (cpus, mem, time, ...)"),
            ),
        }
    }
    spec
}

/// Reads `[stages.NAME.resources]`; `keyed` kinds take their CPUs from `threads`.
pub(super) fn read_resources(stage: &str, keyed: bool, value: &Spanned<DeValue>, errors: &mut Vec<Diagnostic>) -> Resources {
    let mut resources = Resources::default();
    let DeValue::Table(table) = value.get_ref() else {
        errors.push(
            Diagnostic::new(value.span(), format!("`resources` of stage `{stage}` must be a table"))
                .hint("e.g. `[stages.NAME.resources]` with `time = \"1:00:00\"`"),
        );
        return resources;
    };
    let what = format!("the resources of stage `{stage}`");
    for (key, value) in table.iter() {
        let k = key.get_ref().as_ref();
        if k == "cpus" && keyed {
            errors.push(
                Diagnostic::new(key.span(), format!("stage `{stage}` runs on exactly its `threads` parameter's CPUs (part of its key)"))
                    .hint("set `threads` on the stage instead of `cpus`"),
            );
        } else if RESOURCE_KEYS.contains(&k) {
            resource_key(k, super::read::raw_value(value.get_ref()), value.span(), &mut resources, &what, errors);
        } else {
            errors.push(
                Diagnostic::new(key.span(), format!("unknown key `{k}` in {what}"))
                    .suggest(k, RESOURCE_KEYS.iter().copied())
                    .hint_if_none("resources take cpus, mem, time, gpus, partition, account, qos, sbatch_args and setup"),
            );
        }
    }
    resources
}

fn resource_key(k: &str, raw: RawValue, span: Range<usize>, r: &mut Resources, what: &str, errors: &mut Vec<Diagnostic>) {
    let mut bad = |msg: String| errors.push(Diagnostic::new(span.clone(), format!("{what}: {msg}")));
    match k {
        "cpus" => match raw {
            RawValue::Int(n) if (1..=4096).contains(&n) => r.cpus = Some(n as u32),
            _ => bad("`cpus` must be an integer in 1..=4096".into()),
        },
        "gpus" => match raw {
            RawValue::Int(n) if (0..=64).contains(&n) => r.gpus = Some(n as u32),
            _ => bad("`gpus` must be an integer in 0..=64".into()),
        },
        "mem" => match &raw {
            RawValue::Str(s) => match parse_mem(s) {
                Ok(mb) => r.mem_mb = Some(mb),
                Err(e) => bad(e),
            },
            RawValue::Int(mb) if *mb > 0 => r.mem_mb = Some(*mb as u64),
            _ => bad("`mem` must be a size like \"4G\" or \"500M\" (an integer is megabytes)".into()),
        },
        "time" => match &raw {
            RawValue::Str(s) => match parse_time(s) {
                Ok(m) => r.time_minutes = Some(m),
                Err(e) => bad(e),
            },
            RawValue::Int(m) if *m > 0 => r.time_minutes = Some(*m as u64),
            _ => bad("`time` must be Slurm's \"HH:MM:SS\", \"D-HH:MM\" or minutes".into()),
        },
        "partition" | "account" | "qos" => match raw {
            RawValue::Str(s) if !s.trim().is_empty() && !s.contains(char::is_whitespace) => {
                let slot = match k {
                    "partition" => &mut r.partition,
                    "account" => &mut r.account,
                    _ => &mut r.qos,
                };
                *slot = Some(s);
            }
            _ => bad(format!("`{k}` must be a name without spaces")),
        },
        _ => match raw {
            RawValue::Array(items) if items.iter().all(|i| matches!(i, RawValue::Str(_))) => {
                let items = items.into_iter().map(|i| if let RawValue::Str(s) = i { s } else { unreachable!() });
                let list = if k == "setup" { &mut r.setup } else { &mut r.sbatch_args };
                list.extend(items);
            }
            _ => bad(format!("`{k}` must be a list of strings")),
        },
    }
}

/// Megabytes from `"500M"`, `"4G"`, `"1T"` or a plain number of megabytes.
pub fn parse_mem(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| format!("`mem` = \"{text}\" is not a size like \"4G\" or \"500M\""))?;
    let unit = unit.trim();
    let factor = match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" => 1,
        "G" | "GB" => 1024,
        "T" | "TB" => 1024 * 1024,
        "K" | "KB" => return Ok(n.div_ceil(1024).max(1)),
        _ => return Err(format!("`mem` = \"{text}\": unknown unit `{unit}` (use K, M, G or T)")),
    };
    if n == 0 {
        return Err("`mem` must be more than 0".into());
    }
    Ok(n * factor)
}

/// Minutes (rounded up) from Slurm's time formats: `MM`, `MM:SS`,
/// `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || format!("`time` = \"{text}\" is not a Slurm time (MM, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (Some(num(d)?), rest),
        None => (None, text),
    };
    let parts: Vec<u64> = rest.split(':').map(num).collect::<Result<_, _>>()?;
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86400 + h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    if seconds == 0 {
        return Err("`time` must be more than 0".into());
    }
    Ok(seconds.div_ceil(60))
}

/// `"4G"` for 4096, `"500M"` for 500.
pub fn format_mem(mb: u64) -> String {
    if mb.is_multiple_of(1024) { format!("{}G", mb / 1024) } else { format!("{mb}M") }
}

/// Slurm's `D-HH:MM:00` (or `HH:MM:00` under a day) for `minutes`.
pub fn format_time(minutes: u64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    if d > 0 { format!("{d}-{h:02}:{m:02}:00") } else { format!("{h}:{m:02}:00") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_as_slurm_writes_them() {
        assert_eq!(parse_mem("4G"), Ok(4096));
        assert_eq!(parse_mem("500M"), Ok(500));
        assert_eq!(parse_mem("2048"), Ok(2048));
        assert_eq!(parse_mem("1t"), Ok(1024 * 1024));
        assert!(parse_mem("4 bananas").unwrap_err().contains("unknown unit"));
        assert!(parse_mem("G").is_err());
        assert_eq!(parse_time("30"), Ok(30));
        assert_eq!(parse_time("1:30"), Ok(2), "90 s round up to 2 minutes");
        assert_eq!(parse_time("2:00:00"), Ok(120));
        assert_eq!(parse_time("1-00"), Ok(1440));
        assert_eq!(parse_time("1-02:03"), Ok(1440 + 123));
        assert_eq!(parse_time("1-00:00:01"), Ok(1441));
        assert!(parse_time("1:2:3:4").is_err());
        assert!(parse_time("0").is_err());
        assert_eq!(format_mem(4096), "4G");
        assert_eq!(format_mem(500), "500M");
        assert_eq!(format_time(120), "2:00:00");
        assert_eq!(format_time(1441), "1-00:01:00");
    }

    #[test]
    fn a_stage_request_overrides_the_pipeline_and_adds_to_its_lists() {
        let base =
            Resources { mem_mb: Some(1024), partition: Some("cpu".into()), setup: vec!["module load a".into()], ..Default::default() };
        let stage = Resources { mem_mb: Some(8192), setup: vec!["module load b".into()], ..Default::default() };
        let merged = stage.over(&base);
        assert_eq!(merged.mem_mb, Some(8192));
        assert_eq!(merged.partition.as_deref(), Some("cpu"));
        assert_eq!(merged.setup, ["module load a", "module load b"]);
    }
}
