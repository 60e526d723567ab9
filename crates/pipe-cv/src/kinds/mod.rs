//! The run functions of the kinds `pipe-worker` runs. Each kind's
//! definition (schema, inputs, version) is the static of the same name in
//! `pipe_core::kinds`.

pub mod augment;
#[cfg(test)]
mod bow_chain_tests;
pub mod cluster;
pub mod command;
pub mod encode;
pub mod ensemble;
pub mod evaluate;
pub mod extract;
#[cfg(test)]
mod kernel_sum_tests;
pub mod load;
pub mod multilabel_svm;
pub mod svm;
#[cfg(test)]
pub mod testutil;

use pipe_core::kinds::{self as defs, RunFn, Runners};

/// The kinds `pipe-worker` runs, by definition.
static RUNNERS: Runners = &[
    (&defs::load::LOAD, load::run),
    (&defs::augment::AUGMENT, augment::run),
    (&defs::extract::EXTRACT, extract::run),
    (&defs::cluster::CLUSTER, cluster::run),
    (&defs::encode::ENCODE, encode::run),
    (&defs::svm::SVM, svm::run),
    (&defs::multilabel_svm::MULTILABEL_SVM, multilabel_svm::run),
    (&defs::ensemble::ENSEMBLE, ensemble::run),
    (&defs::evaluate::EVALUATE, evaluate::run),
    (&defs::command::COMMAND, command::run),
];

/// The run function of a kind that runs in `pipe-worker`.
pub fn runner(kind: &str) -> Option<RunFn> {
    defs::runner_in(RUNNERS, kind).or_else(|| defs::runner_in(defs::TEST_WORKER_RUNNERS, kind))
}

#[cfg(test)]
mod tests {
    use pipe_core::kinds::{Process, registry};

    #[test]
    fn worker_kinds_and_only_they_have_a_runner() {
        for k in registry() {
            let in_worker = matches!(k.process, Process::OpenCv);
            assert_eq!(in_worker, super::runner(k.name).is_some(), "{}", k.name);
        }
    }
}
