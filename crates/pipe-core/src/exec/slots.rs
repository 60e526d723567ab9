//! The CPU budget: `--jobs` slots, what each running stage holds, and the
//! slots lent to running [`ThreadUse::Elastic`] stages. Bookkeeping only (the
//! scheduler loop in `exec` decides when to call what), so the rules are
//! unit-tested here:
//! - a stage starts with its base share (see [`Slots::share`]);
//! - slots that no ready stage can use are lent to the running elastic
//!   stage with the longest critical path ([`Slots::lend`]);
//! - as soon as a stage is ready but cannot start, every lent slot is taken
//!   back ([`Slots::reclaim`]): a lent slot never delays a waiting stage by
//!   more than the work item it is running.

use std::sync::Arc;

use crate::kinds::ThreadUse;
use crate::kinds::grant::Grant;
use crate::spec::StageSpec;

pub struct Slots {
    jobs: usize,
    free: usize,
    /// Base slots of each running stage.
    base: Vec<usize>,
    /// Extra slots lent to each running elastic stage.
    lent: Vec<usize>,
    grants: Vec<Option<Arc<Grant>>>,
}

impl Slots {
    pub fn new(jobs: usize, stages: usize) -> Self {
        let jobs = jobs.max(1);
        Slots { jobs, free: jobs, base: vec![0; stages], lent: vec![0; stages], grants: vec![None; stages] }
    }

    pub fn jobs(&self) -> usize {
        self.jobs
    }

    pub fn free(&self) -> usize {
        self.free
    }

    /// The slots `stage` needs free before it can start.
    pub fn needed(&self, stage: &StageSpec) -> usize {
        match stage.kind.threads {
            ThreadUse::Keyed => keyed_threads(stage).min(self.jobs),
            ThreadUse::Single | ThreadUse::Parallel | ThreadUse::Elastic => 1,
        }
    }

    /// (slots taken, threads to run on) for `stage` starting now, with
    /// `waiting` stages ready to share the free slots.
    pub fn share(&self, stage: &StageSpec, waiting: usize) -> (usize, usize) {
        match stage.kind.threads {
            ThreadUse::Single => (1, 1),
            ThreadUse::Parallel | ThreadUse::Elastic => {
                let share = (self.free / waiting.max(1)).max(1);
                (share, share)
            }
            ThreadUse::Keyed => (self.needed(stage), keyed_threads(stage)),
        }
    }

    /// Records stage `i` starting on `slots`; an elastic stage gets a grant
    /// the scheduler can raise later.
    pub fn start(&mut self, i: usize, stage: &StageSpec, slots: usize) -> Option<Arc<Grant>> {
        self.free -= slots;
        self.base[i] = slots;
        let grant = matches!(stage.kind.threads, ThreadUse::Elastic).then(|| Grant::new(slots));
        self.grants[i] = grant.clone();
        grant
    }

    /// Records stage `i` finished: its slots, lent ones included, are free.
    pub fn finish(&mut self, i: usize) {
        self.free += self.base[i] + self.lent[i];
        self.base[i] = 0;
        self.lent[i] = 0;
        self.grants[i] = None;
    }

    /// Takes every lent slot back. Returns how many.
    pub fn reclaim(&mut self) -> usize {
        let mut taken = 0;
        for i in 0..self.lent.len() {
            if self.lent[i] > 0 {
                taken += self.lent[i];
                self.free += self.lent[i];
                self.lent[i] = 0;
                if let Some(g) = &self.grants[i] {
                    g.set(self.base[i]);
                }
            }
        }
        taken
    }

    /// Lends every free slot to the running elastic stage of highest
    /// `priority`. Returns the stage and its new slot count.
    pub fn lend(&mut self, priority: impl Fn(usize) -> f64) -> Option<(usize, usize)> {
        if self.free == 0 {
            return None;
        }
        let to = (0..self.grants.len()).filter(|&i| self.grants[i].is_some()).max_by(|&a, &b| priority(a).total_cmp(&priority(b)))?;
        self.lent[to] += self.free;
        self.free = 0;
        let slots = self.base[to] + self.lent[to];
        self.grants[to].as_ref().expect("elastic").set(slots);
        Some((to, slots))
    }

    pub fn lent_any(&self) -> bool {
        self.lent.iter().any(|&l| l > 0)
    }
}

/// The threads a [`ThreadUse::Keyed`] stage runs on: its `threads` parameter.
pub fn keyed_threads(stage: &StageSpec) -> usize {
    stage.keyed_threads().unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testutil::defaults;
    use crate::kinds::{Params, kind};

    fn stage(kind_name: &str) -> StageSpec {
        let k = kind(kind_name).expect("a kind of this build");
        let stage = StageSpec {
            name: kind_name.into(),
            kind: k,
            params: Params::from_json(k, &defaults(k)).unwrap(),
            inputs: Default::default(),
            span: 0..0,
            base: kind_name.into(),
            variant: Vec::new(),
            sweep: Default::default(),
            seed: 0,
            resources: Default::default(),
            output: k.output,
            command: None,
            resolved: Default::default(),
        };
        let resolved = crate::spec::Resolved::of(&stage);
        StageSpec { resolved, ..stage }
    }

    #[test]
    fn free_slots_are_lent_to_the_elastic_stage_and_taken_back() {
        let (elastic, single) = (stage("extract"), stage("evaluate"));
        let mut slots = Slots::new(2, 3);
        let (s0, _) = slots.share(&elastic, 2);
        let grant = slots.start(0, &elastic, s0).expect("extract is elastic");
        slots.start(1, &single, 1);
        assert_eq!((slots.free(), grant.slots()), (0, 1));
        slots.finish(1);
        assert_eq!(slots.lend(|_| 0.0), Some((0, 2)));
        assert_eq!((slots.free(), grant.slots()), (0, 2));
        // A stage became ready: the lent slot comes back.
        assert_eq!(slots.reclaim(), 1);
        assert_eq!((slots.free(), grant.slots()), (1, 1));
        slots.finish(0);
        assert_eq!(slots.free(), 2);
    }

    #[test]
    fn only_elastic_stages_borrow() {
        let mut slots = Slots::new(2, 2);
        assert!(slots.start(0, &stage("evaluate"), 1).is_none());
        assert_eq!(slots.lend(|_| 0.0), None);
        assert_eq!(slots.free(), 1);
    }

    #[test]
    fn keyed_stages_take_their_threads_capped_at_the_budget() {
        let slots = Slots::new(1, 1);
        let cnn = stage("cnn-stage1");
        assert_eq!(slots.needed(&cnn), 1);
        assert_eq!(slots.share(&cnn, 3), (1, 1));
    }
}
