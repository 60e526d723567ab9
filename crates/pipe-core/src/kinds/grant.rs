//! A running stage's CPU grant, jobserver style: the scheduler may raise it
//! while the stage runs (slots freed by finished stages that no ready stage
//! can use) and lower it again (a newly ready stage needs them back). A
//! [`ThreadUse::Elastic`](super::ThreadUse) kind runs its parallel loop in a
//! pool sized for the whole budget and takes a [`Permit`] per work item, so
//! at most "grant" items run at once. The work is split per item, never per
//! thread, so the grant changes how fast a stage runs, not what it writes.
//! An item must not start nested rayon work while it holds its permit: the
//! pool's other threads may all be waiting for permits.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug)]
pub struct Grant {
    /// (granted slots, items running now)
    state: Mutex<(usize, usize)>,
    changed: Condvar,
}

impl Grant {
    pub fn new(slots: usize) -> Arc<Grant> {
        Arc::new(Grant { state: Mutex::new((slots.max(1), 0)), changed: Condvar::new() })
    }

    /// Slots granted now.
    pub fn slots(&self) -> usize {
        self.state.lock().expect("grant lock").0
    }

    /// Sets the grant (at least one slot); items already running finish.
    pub fn set(&self, slots: usize) {
        self.state.lock().expect("grant lock").0 = slots.max(1);
        self.changed.notify_all();
    }

    /// Waits until fewer items run than are granted, then counts one more.
    pub fn permit(&self) -> Permit<'_> {
        let mut state = self.state.lock().expect("grant lock");
        while state.1 >= state.0 {
            state = self.changed.wait(state).expect("grant lock");
        }
        state.1 += 1;
        Permit { grant: self }
    }
}

/// One work item's share of the grant; released when dropped.
pub struct Permit<'a> {
    grant: &'a Grant,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.grant.state.lock().expect("grant lock").1 -= 1;
        self.grant.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Runs 4 threads × 10 items of 5 ms under `grant`; returns the most
    /// items seen running at once.
    fn most_at_once(grant: &Arc<Grant>, raise_to: Option<usize>) -> usize {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        let _p = grant.permit();
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
            if let Some(n) = raise_to {
                std::thread::sleep(Duration::from_millis(30));
                grant.set(n);
            }
        });
        most.load(Ordering::SeqCst)
    }

    #[test]
    fn no_more_items_run_than_granted() {
        assert_eq!(most_at_once(&Grant::new(1), None), 1);
        assert_eq!(most_at_once(&Grant::new(2), None), 2);
    }

    #[test]
    fn a_raised_grant_lets_waiting_items_start() {
        let grant = Grant::new(1);
        assert_eq!(most_at_once(&grant, Some(3)), 3);
        assert_eq!(grant.slots(), 3);
    }
}
