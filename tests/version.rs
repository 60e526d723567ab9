//! `pipe --version`: the version and build, then whether the two workers are
//! next to the executable and whether `pipe-torch` sees CUDA; never an error.
#![allow(clippy::disallowed_methods)] // test fixtures: plain std::fs

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `pipe ARG` with the workers looked for in `dir` (or next to it when None).
fn version(arg: &str, dir: Option<&Path>) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipe"));
    cmd.arg(arg).env_remove("PIPE_WORKER_DIR");
    if let Some(d) = dir {
        cmd.env("PIPE_WORKER_DIR", d);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn fake_worker(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn first_line_names_the_build(line: &str) {
    let expected =
        [format!("pipe {} (debug build)", env!("CARGO_PKG_VERSION")), format!("pipe {} (release build)", env!("CARGO_PKG_VERSION"))];
    assert!(expected.contains(&line.to_string()), "{line}");
}

#[test]
fn version_says_when_the_workers_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let lines = version("--version", Some(dir.path()));
    assert_eq!(lines.len(), 3, "{lines:?}");
    first_line_names_the_build(&lines[0]);
    let d = dir.path().display();
    assert_eq!(lines[1], format!("pipe-worker: missing (not at {d}/pipe-worker); the OpenCV stage kinds cannot run"));
    assert_eq!(lines[2], format!("pipe-torch: missing (not at {d}/pipe-torch); the CNN stage kinds cannot run"));
    assert_eq!(version("-V", Some(dir.path())), lines, "-V says the same");
}

#[test]
fn version_reads_cuda_from_the_probe_and_survives_a_broken_worker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    fake_worker(dir.path(), "pipe-worker", "exit 0");
    fake_worker(dir.path(), "pipe-torch", "echo 'libtorch: ok (1+2+3 = 6), 4 threads, CUDA: yes, 2 device(s)'");
    let lines = version("--version", Some(dir.path()));
    first_line_names_the_build(&lines[0]);
    assert_eq!(
        lines[1..],
        [format!("pipe-worker: {d}/pipe-worker"), format!("pipe-torch: {d}/pipe-torch (libtorch ok, CUDA: yes, 2 device(s))")]
    );

    fake_worker(dir.path(), "pipe-torch", "echo 'error while loading shared libraries: libtorch_cpu.so' >&2; exit 127");
    let lines = version("--version", Some(dir.path()));
    assert_eq!(
        lines[2],
        format!(
            "pipe-torch: {d}/pipe-torch (present, but `pipe-torch probe` failed: error while loading shared libraries: libtorch_cpu.so)"
        )
    );
}

/// The real workers of this build, when they are built next to `pipe`.
#[test]
fn version_probes_the_real_worker() {
    let lines = version("--version", None);
    assert_eq!(lines.len(), 3, "{lines:?}");
    first_line_names_the_build(&lines[0]);
    assert!(lines[1].starts_with("pipe-worker: "), "{lines:?}");
    let torch = Path::new(env!("CARGO_BIN_EXE_pipe")).with_file_name("pipe-torch");
    if torch.is_file() {
        assert!(lines[2].starts_with(&format!("pipe-torch: {} (libtorch ok, CUDA: ", torch.display())), "{lines:?}");
    } else {
        assert!(lines[2].starts_with("pipe-torch: missing"), "{lines:?}");
    }
}
