//! Generates `kinds.rs` in `OUT_DIR`: the stage kinds' modules and the
//! `KINDS` registry, from the files of `src/kinds/` (see `build/registry.rs`).
#![allow(clippy::disallowed_methods)] // no crate::fsx here; the panic names the path

#[path = "build/registry.rs"]
mod registry;

use std::path::Path;

fn main() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("src/kinds");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build/registry.rs");
    let (source, files) = registry::generate(&dir);
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("kinds.rs");
    std::fs::write(&out, source).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
