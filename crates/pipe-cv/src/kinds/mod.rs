//! The run functions of the kinds `pipe-worker` runs. Each kind's
//! definition (schema, inputs, version) is the static of the same name in
//! `pipe_core::kinds`.

pub mod augment;
#[cfg(test)]
mod bow_chain_tests;
pub mod cluster;
pub mod colour;
pub mod command;
pub mod encode;
pub mod ensemble;
pub mod evaluate;
pub mod extract;
pub mod hog;
#[cfg(test)]
mod kernel_sum_tests;
pub mod lbp;
pub mod load;
pub mod multilabel_svm;
mod per_image;
pub mod svm;
#[cfg(test)]
pub mod testutil;

use pipe_core::kinds::RunFn;

/// The run function of a kind that runs in `pipe-worker`.
pub fn runner(kind: &str) -> Option<RunFn> {
    match kind {
        "load" => Some(load::run),
        "augment" => Some(augment::run),
        "extract" => Some(extract::run),
        "cluster" => Some(cluster::run),
        "encode" => Some(encode::run),
        "svm" => Some(svm::run),
        "hog" => Some(hog::run),
        "colour" => Some(colour::run),
        "lbp" => Some(lbp::run),
        "multilabel-svm" => Some(multilabel_svm::run),
        "ensemble" => Some(ensemble::run),
        "evaluate" => Some(evaluate::run),
        "command" => Some(command::run),
        _ => pipe_core::kinds::test_worker_runner(kind),
    }
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
