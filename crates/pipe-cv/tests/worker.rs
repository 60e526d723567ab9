//! The `pipe-worker` executable as the engine sees it: its usage line and a
//! job file it cannot read. (Building this test also builds the executable
//! that the workspace's end-to-end tests spawn.)

use std::process::Command;

#[test]
fn without_a_job_it_prints_its_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-worker")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: pipe-worker run JOB.json"));
}

#[test]
fn a_missing_job_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-worker")).arg("run").arg(&job).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&job.display().to_string()), "{err}");
}
