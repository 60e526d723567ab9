//! The ready queue: which stages can start, given which have finished. Pure
//! bookkeeping with no threads or I/O (cargo's `DependencyQueue` idea), so
//! its rules are unit-tested on their own: a stage is ready once every input
//! that runs in this session has succeeded; a failure skips everything
//! downstream of it and nothing else. Among ready stages the one with the
//! longest estimated path to the end of the run goes first
//! ([`critical_path`]), so the stages that decide the run's length never wait
//! behind short side branches.

use std::collections::VecDeque;

use crate::spec::dag::Dag;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not part of this run (cached or unselected): counts as done.
    Idle,
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
    Skipped,
}

pub struct DependencyQueue {
    state: Vec<State>,
    /// Higher first; see [`critical_path`].
    priority: Vec<f64>,
    pending: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: VecDeque<usize>,
}

impl DependencyQueue {
    /// `active[i]`: stage `i` runs in this session. Ready stages come out in
    /// DAG order.
    pub fn new(dag: &Dag, active: &[bool]) -> Self {
        let n = active.len();
        let mut q = DependencyQueue {
            state: vec![State::Idle; n],
            priority: vec![0.0; n],
            pending: vec![0; n],
            dependents: dag.dependents.clone(),
            ready: VecDeque::new(),
        };
        for &i in &dag.order {
            if !active[i] {
                continue;
            }
            q.pending[i] = dag.deps[i].iter().filter(|d| active[**d]).count();
            if q.pending[i] == 0 {
                q.state[i] = State::Ready;
                q.ready.push_back(i);
            } else {
                q.state[i] = State::Waiting;
            }
        }
        q
    }

    /// Orders ready stages by `priority` (higher first; ties in DAG order).
    pub fn with_priority(mut self, priority: Vec<f64>) -> Self {
        self.priority = priority;
        self
    }

    pub fn priority(&self, i: usize) -> f64 {
        self.priority[i]
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn pop(&mut self) -> Option<usize> {
        self.pop_first(|_| true)
    }

    /// The ready stage of highest priority, if `fits` accepts it (a stage
    /// that cannot start yet is not overtaken).
    pub fn pop_first_if(&mut self, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let at = self.best(|_| true)?;
        fits(self.ready[at]).then(|| self.take(at))
    }

    /// Like [`DependencyQueue::pop_first_if`], among the ready stages
    /// `among` accepts (those that run here, not as cluster jobs).
    pub fn pop_first_among_if(&mut self, among: impl Fn(usize) -> bool, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let at = self.best(among)?;
        fits(self.ready[at]).then(|| self.take(at))
    }

    /// The ready stage of highest priority that `fits`, if any.
    pub fn pop_first(&mut self, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let at = self.best(fits)?;
        Some(self.take(at))
    }

    /// Where in the ready list the stage of highest priority that `fits`
    /// is (ties: the first ready).
    fn best(&self, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (at, &i) in self.ready.iter().enumerate() {
            if fits(i) && best.is_none_or(|b| self.priority[i] > self.priority[self.ready[b]]) {
                best = Some(at);
            }
        }
        best
    }

    fn take(&mut self, at: usize) -> usize {
        let i = self.ready.remove(at).expect("position is in range");
        self.state[i] = State::Running;
        i
    }

    /// Records a finished stage. Returns the stages skipped because it failed.
    pub fn finish(&mut self, i: usize, ok: bool) -> Vec<usize> {
        debug_assert_eq!(self.state[i], State::Running);
        if ok {
            self.state[i] = State::Done;
            for &d in &self.dependents[i].clone() {
                if self.state[d] == State::Waiting {
                    self.pending[d] -= 1;
                    if self.pending[d] == 0 {
                        self.state[d] = State::Ready;
                        self.ready.push_back(d);
                    }
                }
            }
            return Vec::new();
        }
        self.state[i] = State::Failed;
        let mut skipped = Vec::new();
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if matches!(self.state[d], State::Waiting | State::Ready) {
                self.state[d] = State::Skipped;
                self.ready.retain(|r| *r != d);
                skipped.push(d);
                stack.extend(self.dependents[d].iter().copied());
            }
        }
        skipped.sort_unstable();
        skipped
    }

    /// Stops handing out work (Ctrl-C): every stage not yet started is skipped.
    pub fn drain(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, s) in self.state.iter_mut().enumerate() {
            if matches!(s, State::Waiting | State::Ready) {
                *s = State::Skipped;
                out.push(i);
            }
        }
        self.ready.clear();
        out
    }
}

/// Each active stage's estimated seconds from its start to the end of the
/// run: its own estimate plus the longest such path among the active stages
/// that read it (the critical path through it).
pub fn critical_path(dag: &Dag, active: &[bool], seconds: &[f64]) -> Vec<f64> {
    let mut length = vec![0.0; active.len()];
    for &i in dag.order.iter().rev() {
        if !active[i] {
            continue;
        }
        let after = dag.dependents[i].iter().filter(|&&d| active[d]).map(|&d| length[d]).fold(0.0, f64::max);
        length[i] = seconds[i] + after;
    }
    length
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a -> b -> d, a -> c, e alone.
    fn dag() -> Dag {
        let deps = vec![vec![], vec![0], vec![0], vec![1], vec![]];
        let mut dependents = vec![Vec::new(); 5];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        Dag { order: vec![0, 4, 1, 2, 3], deps, dependents }
    }

    #[test]
    fn stages_become_ready_when_their_inputs_finish() {
        let mut q = DependencyQueue::new(&dag(), &[true; 5]);
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(0), Some(4), None));
        q.finish(0, true);
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), None));
        q.finish(1, true);
        assert_eq!(q.pop(), Some(3));
    }

    #[test]
    fn a_failure_skips_only_what_depends_on_it() {
        let mut q = DependencyQueue::new(&dag(), &[true; 5]);
        q.pop();
        q.pop();
        assert_eq!(q.finish(0, false), vec![1, 2, 3]);
        q.finish(4, true);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn inactive_inputs_count_as_done() {
        let mut q = DependencyQueue::new(&dag(), &[false, true, false, true, false]);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), None);
        q.finish(1, true);
        assert_eq!(q.pop(), Some(3));
    }

    #[test]
    fn the_critical_path_goes_first() {
        // a(10) -> b(50) -> d(5), a -> c(1), e(30): after a, b (55 to go)
        // before c (1); at the start a (65) before e (30).
        let seconds = [10.0, 50.0, 1.0, 5.0, 30.0];
        let length = critical_path(&dag(), &[true; 5], &seconds);
        assert_eq!(length, vec![65.0, 55.0, 1.0, 5.0, 30.0]);
        let mut q = DependencyQueue::new(&dag(), &[true; 5]).with_priority(length);
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(4));
        q.finish(0, true);
        assert_eq!((q.pop(), q.pop()), (Some(1), Some(2)));
    }

    #[test]
    fn a_long_side_branch_overtakes_dag_order() {
        // e alone takes 100: it starts before a's whole chain (66).
        let length = critical_path(&dag(), &[true; 5], &[10.0, 50.0, 1.0, 5.0, 100.0]);
        let mut q = DependencyQueue::new(&dag(), &[true; 5]).with_priority(length);
        assert_eq!(q.pop(), Some(4));
    }

    #[test]
    fn pop_first_passes_over_stages_that_do_not_fit() {
        let mut q = DependencyQueue::new(&dag(), &[true; 5]);
        assert_eq!(q.pop_first(|i| i != 0), Some(4));
        assert_eq!(q.pop_first(|i| i != 0), None);
        assert_eq!(q.pop(), Some(0));
    }

    #[test]
    fn the_most_urgent_stage_is_not_overtaken() {
        let length = critical_path(&dag(), &[true; 5], &[10.0, 50.0, 1.0, 5.0, 1.0]);
        let mut q = DependencyQueue::new(&dag(), &[true; 5]).with_priority(length);
        assert_eq!(q.pop_first_if(|i| i != 0), None, "a (65 s to go) does not fit: e (1 s) must not take its slot");
        assert_eq!(q.ready_len(), 2);
        assert_eq!(q.pop_first_if(|_| true), Some(0));
        assert_eq!(q.pop_first_if(|_| true), Some(4));
    }

    #[test]
    fn drain_skips_what_has_not_started() {
        let mut q = DependencyQueue::new(&dag(), &[true; 5]);
        q.pop();
        assert_eq!(q.drain(), vec![1, 2, 3, 4]);
        assert_eq!(q.pop(), None);
    }
}
