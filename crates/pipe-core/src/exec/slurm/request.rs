//! What one stage's Slurm job asks for: the stage's `[stages.NAME.resources]`
//! over `[pipeline.executor]` over the kind's defaults ([`JobDefaults`]).
//! CPUs follow the kind's thread use: a keyed kind (libtorch) gets exactly its
//! `threads` (part of its key), a single-threaded kind one, the others the
//! pipeline's `cpus` or `--jobs`. A stage whose kind says it uses a GPU
//! (`device = "cuda"`) gets one.

use crate::exec::slots::keyed_threads;
use crate::kinds::{JobDefaults, ThreadUse};
use crate::spec::StageSpec;
use crate::spec::resources::{ExecutorSpec, format_mem, format_time};

/// One job's complete request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    pub cpus: u32,
    pub mem_mb: u64,
    pub time_minutes: u64,
    pub gpus: u32,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub sbatch_args: Vec<String>,
    pub setup: Vec<String>,
}

impl JobRequest {
    /// `stage`'s request; `default_cpus` for kinds that use what they are given.
    pub fn of(stage: &StageSpec, executor: &ExecutorSpec, default_cpus: usize) -> JobRequest {
        let r = stage.resources.over(&executor.resources);
        let JobDefaults { mem_mb, minutes } = stage.kind.job;
        let cpus = match stage.kind.threads {
            ThreadUse::Keyed => keyed_threads(stage) as u32,
            ThreadUse::Single => 1,
            ThreadUse::Parallel | ThreadUse::Elastic => r.cpus.unwrap_or(default_cpus.max(1) as u32),
        };
        let wants_cuda = stage.resolved.uses_gpu;
        JobRequest {
            cpus,
            mem_mb: r.mem_mb.unwrap_or(mem_mb),
            time_minutes: r.time_minutes.unwrap_or(minutes),
            gpus: r.gpus.unwrap_or(u32::from(wants_cuda)),
            partition: r.partition,
            account: r.account,
            qos: r.qos,
            sbatch_args: r.sbatch_args,
            setup: r.setup,
        }
    }

    /// The request as `sbatch` arguments (the engine adds the job name and log).
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut args = vec![format!("--cpus-per-task={}", self.cpus), format!("--mem={}", format_mem(self.mem_mb))];
        args.push(format!("--time={}", format_time(self.time_minutes)));
        if self.gpus > 0 {
            args.push(format!("--gpus={}", self.gpus));
        }
        for (flag, value) in [("--partition", &self.partition), ("--account", &self.account), ("--qos", &self.qos)] {
            if let Some(v) = value {
                args.push(format!("{flag}={v}"));
            }
        }
        args.extend(self.sbatch_args.iter().cloned());
        args
    }

    /// For `pipe plan --executor slurm`: `2 CPUs, 2G, 2:00:00, partition debug`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} CPU{}", self.cpus, if self.cpus == 1 { "" } else { "s" })];
        parts.push(format_mem(self.mem_mb));
        parts.push(format_time(self.time_minutes));
        if self.gpus > 0 {
            parts.push(format!("{} GPU{}", self.gpus, if self.gpus == 1 { "" } else { "s" }));
        }
        for (what, value) in [("partition", &self.partition), ("account", &self.account), ("qos", &self.qos)] {
            if let Some(v) = value {
                parts.push(format!("{what} {v}"));
            }
        }
        if !self.sbatch_args.is_empty() {
            parts.push(self.sbatch_args.join(" "));
        }
        parts.join(", ")
    }
}

#[cfg(all(test, feature = "test-kinds"))]
mod tests {
    use super::*;

    fn spec(source: &str) -> crate::spec::PipelineSpec {
        crate::spec::parse(std::path::Path::new("p.toml"), source).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_stage_overrides_the_pipeline_which_overrides_the_kind() {
        let s = spec(
            "[pipeline.executor]\nkind = \"slurm\"\npartition = \"cpu\"\nmem = \"1G\"\nsetup = [\"module load x\"]\n\
             [stages.a]\nkind = \"test-source\"\n\
             [stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\n[stages.w.resources]\ntime = \"1-00:00:00\"\ncpus = 3\nsbatch_args = [\"--exclusive\"]\n\
             [stages.k]\nkind = \"test-keyed\"\nthreads = 2\n",
        );
        let w = JobRequest::of(s.stage("w").unwrap(), &s.executor, 8);
        assert_eq!(w.cpus, 3);
        assert_eq!(w.mem_mb, 1024, "the pipeline's mem");
        assert_eq!(w.time_minutes, 1440, "the stage's time");
        assert_eq!(w.partition.as_deref(), Some("cpu"));
        assert_eq!(w.sbatch_args(), ["--cpus-per-task=3", "--mem=1G", "--time=1-00:00:00", "--partition=cpu", "--exclusive"]);
        assert_eq!(w.setup, ["module load x"]);
        assert_eq!(w.describe(), "3 CPUs, 1G, 1-00:00:00, partition cpu, --exclusive");
        let k = JobRequest::of(s.stage("k").unwrap(), &s.executor, 8);
        assert_eq!(k.cpus, 2, "a keyed kind runs on its threads");
        assert_eq!(k.time_minutes, JobDefaults::WORKER.minutes, "the kind's default time");
        let a = JobRequest::of(s.stage("a").unwrap(), &s.executor, 8);
        assert_eq!(a.cpus, 1, "a single-threaded kind asks for one CPU");
    }

    #[test]
    fn a_keyed_stage_takes_its_cpus_from_threads_and_bad_values_are_named() {
        let errors = crate::spec::parse(
            std::path::Path::new("p.toml"),
            "[pipeline.executor]\nkind = \"cluster\"\nmem = \"4 bananas\"\n[stages.k]\nkind = \"test-keyed\"\n[stages.k.resources]\ncpus = 4\ntmie = \"1:00:00\"\n",
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(|d| format!("{} {:?}", d.message, d.hint)).collect();
        let all = text.join("\n");
        assert!(all.contains("must be \"local\" or \"slurm\""), "{all}");
        assert!(all.contains("unknown unit `bananas`"), "{all}");
        assert!(all.contains("set `threads` on the stage instead of `cpus`"), "{all}");
        assert!(all.contains("unknown key `tmie`") && all.contains("time"), "{all}");
    }
}
