//! Optional CUDA for the one `pipe-torch` binary. It is built against the
//! CPU libtorch that `scripts/setup.sh` assembles everywhere; on a machine
//! with an NVIDIA GPU the set-up also unpacks torch's CUDA libraries (the
//! torch wheel's `torch/lib` and the `nvidia-*` wheels it requires, side by
//! side as pip installs them, so their `$ORIGIN` rpaths find each other)
//! into `$PIPE_HOME/torch-2.11.0-cuda`. At start, before libtorch's first
//! use, `pipe-torch` loads `libtorch_cuda.so` from there (`dlopen`, global
//! symbols): its static initialisers register libtorch's CUDA backend, and
//! `device = "auto"` finds the GPU. This is what `LD_PRELOAD` of that
//! library did in the H200 check of GPU-NOTES, without a wrapper script.
//! `PIPE_TORCH_CUDA` names another folder holding `libtorch_cuda.so` (empty:
//! do not load CUDA). A `pipe-torch` built against a CUDA libtorch already
//! has it linked and loads nothing more. Loading changes nothing on the
//! CPU: the CPU kernels are libtorch_cpu's either way.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The libtorch version this binary is built against: the CUDA libraries
/// must be the same release (`TORCH_VERSION` in `scripts/setup.sh`).
pub const TORCH_VERSION: &str = "2.11.0";

/// What became of the CUDA libraries at start.
#[derive(Debug, Clone, PartialEq)]
pub enum CudaLibraries {
    /// No folder to load from (a CPU machine, or `PIPE_TORCH_CUDA` empty).
    NotInstalled,
    /// `libtorch_cuda.so` loaded from this folder.
    Loaded(PathBuf),
    /// `libtorch_cuda.so` was already loaded (linked at build time).
    Linked,
    /// The folder's `libtorch_cuda.so` would not load: why.
    Failed(PathBuf, String),
}

static LOADED: OnceLock<CudaLibraries> = OnceLock::new();

/// Loads the CUDA libraries once (see the module doc); later calls return
/// the first answer.
pub fn load() -> &'static CudaLibraries {
    LOADED.get_or_init(|| {
        if already_loaded() {
            return CudaLibraries::Linked;
        }
        let chosen = std::env::var_os("PIPE_TORCH_CUDA");
        let chosen_by_user = chosen.as_ref().is_some_and(|d| !d.is_empty());
        match folder(chosen, std::env::var_os("PIPE_HOME"), std::env::var_os("HOME")) {
            Some(dir) => match load_from(&dir) {
                CudaLibraries::NotInstalled if chosen_by_user => {
                    CudaLibraries::Failed(dir, "PIPE_TORCH_CUDA names a folder without libtorch_cuda.so (name its torch/lib)".into())
                }
                loaded => loaded,
            },
            None => CudaLibraries::NotInstalled,
        }
    })
}

/// Whether `libtorch_cuda.so` is in the process already (a CUDA libtorch
/// linked at build time): a second copy from another file must not load.
fn already_loaded() -> bool {
    // SAFETY: RTLD_NOLOAD only looks the library up; a found handle is
    // kept open for the life of the process, like the library itself.
    !unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) }.is_null()
}

/// Where the CUDA libraries are looked for: `PIPE_TORCH_CUDA` when set
/// (empty: nowhere), else `$PIPE_HOME/torch-VERSION-cuda/torch/lib`
/// (`PIPE_HOME` defaulting to `~/.cache/pipe`, as in `scripts/setup.sh`).
pub fn folder(
    pipe_torch_cuda: Option<std::ffi::OsString>,
    pipe_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(dir) = pipe_torch_cuda {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let pipe_home = match pipe_home.filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(home?).join(".cache").join("pipe"),
    };
    Some(pipe_home.join(format!("torch-{TORCH_VERSION}-cuda")).join("torch").join("lib"))
}

/// Loads `dir/libtorch_cuda.so` with its symbols global; a folder without
/// that file is [`CudaLibraries::NotInstalled`].
pub fn load_from(dir: &Path) -> CudaLibraries {
    let lib = dir.join("libtorch_cuda.so");
    if !lib.is_file() {
        return CudaLibraries::NotInstalled;
    }
    let path = CString::new(lib.as_os_str().as_bytes()).expect("a path without NUL bytes");
    // SAFETY: dlopen with a valid C string; the handle is kept for the life
    // of the process (never dlclosed), as libtorch's registries require.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns the last error as a C string, or null.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() { "unknown dlopen error".to_string() } else { std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned() }
        };
        return CudaLibraries::Failed(dir.to_path_buf(), why);
    }
    CudaLibraries::Loaded(dir.to_path_buf())
}

/// The probe's "CUDA: ..." answer for `devices` visible devices.
pub fn describe(libraries: &CudaLibraries, devices: i64) -> String {
    if devices > 0 { format!("yes, {devices} device(s)") } else { format!("no ({})", why_no_device(libraries)) }
}

/// Why libtorch sees no CUDA device, given what became of the libraries.
pub fn why_no_device(libraries: &CudaLibraries) -> String {
    match libraries {
        CudaLibraries::NotInstalled => {
            "torch's CUDA libraries are not installed: scripts/setup.sh installs them where nvidia-smi finds a GPU, or with PIPE_CUDA=1"
                .to_string()
        }
        CudaLibraries::Loaded(dir) => {
            format!("torch's CUDA libraries loaded from {}, but no device: check nvidia-smi and the driver", dir.display())
        }
        CudaLibraries::Linked => "libtorch's CUDA library is linked, but no device: check nvidia-smi and the driver".to_string(),
        CudaLibraries::Failed(dir, why) => format!(
            "torch's CUDA libraries at {} did not load: {why}; to install them again, remove that torch-{TORCH_VERSION}-cuda folder and run scripts/setup.sh",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_the_override_or_under_pipe_home() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(folder(os("/opt/cuda-torch"), os("/p"), os("/h")), Some(PathBuf::from("/opt/cuda-torch")));
        assert_eq!(folder(os(""), os("/p"), os("/h")), None, "an empty override turns CUDA off");
        assert_eq!(folder(None, os("/p"), os("/h")), Some(PathBuf::from("/p/torch-2.11.0-cuda/torch/lib")));
        assert_eq!(folder(None, None, os("/h")), Some(PathBuf::from("/h/.cache/pipe/torch-2.11.0-cuda/torch/lib")));
        assert_eq!(folder(None, os(""), os("/h")), Some(PathBuf::from("/h/.cache/pipe/torch-2.11.0-cuda/torch/lib")));
        assert_eq!(folder(None, None, None), None);
    }

    #[test]
    fn a_folder_without_the_library_is_not_installed_and_a_broken_library_says_why() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_from(dir.path()), CudaLibraries::NotInstalled);
        pipe_core::fsx::write(dir.path().join("libtorch_cuda.so"), b"not a shared object").unwrap();
        let CudaLibraries::Failed(at, why) = load_from(dir.path()) else { panic!("a broken library must fail") };
        assert_eq!(at, dir.path());
        assert!(why.contains("libtorch_cuda.so"), "{why}");
        let line = describe(&CudaLibraries::Failed(at, why), 0);
        assert!(line.starts_with("no (") && line.contains("did not load") && line.contains("remove that"), "{line}");
    }

    #[test]
    fn the_cpu_build_has_no_cuda_library_loaded_at_start() {
        assert!(!already_loaded(), "tests run against the CPU libtorch");
    }

    #[test]
    fn a_device_is_yes_whatever_the_libraries() {
        assert_eq!(describe(&CudaLibraries::NotInstalled, 2), "yes, 2 device(s)");
        assert!(describe(&CudaLibraries::Loaded(PathBuf::from("/x")), 0).contains("no device"));
    }

    #[test]
    fn the_version_is_the_set_up_scripts() {
        let setup =
            pipe_core::fsx::read_to_string(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup.sh"))).unwrap();
        assert!(setup.lines().any(|l| l == format!("TORCH_VERSION={TORCH_VERSION}")), "scripts/setup.sh and cuda.rs name one libtorch");
    }
}
