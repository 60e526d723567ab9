//! The `pipe-torch` executable loads libtorch through its rpath, with no
//! LD_LIBRARY_PATH. (Building this test also builds the executable that the
//! workspace's end-to-end tests spawn.)

use std::process::Command;

#[test]
fn probe_finds_libtorch_without_a_library_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-torch")).arg("probe").env_remove("LD_LIBRARY_PATH").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("libtorch: ok (1+2+3 = 6)"), "{text}");
}
