//! Gives `pipe-torch` an rpath to libtorch, so it runs without the user
//! exporting LD_LIBRARY_PATH. `LIBTORCH` is set by the Makefile (see
//! scripts/setup.sh); the `pipe` binary's crate does not depend on libtorch.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg-bin=pipe-torch=-Wl,-rpath,{}", lib.display());
    }
}
