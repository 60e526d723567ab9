//! Weights from a file (`weights = "PATH"`), loaded by name into a network.
//! pipe reads safetensors; a PyTorch state dict as `torch.save` writes it
//! (the zip format, or the legacy pre-zip one) is converted once with
//! `scripts/torch_to_safetensors.py` (standard library only), and such a
//! file given directly is an error that says so: libtorch's C++ loader,
//! which tch wraps, cannot read Python's pickled dicts (measured: it fails
//! on torch 2.11's `torch.save` of a state dict). Every tensor of the network
//! must be in the file with its shape and nothing else may be there, except
//! the output layer (loaded when its shape fits this task's classes, else
//! left new) and batch norm's `num_batches_tracked` counters;
//! `strict = false` loads what fits and logs the rest.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::{TchError, Tensor, nn};

/// Why a weights file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {why}")]
    Unreadable { path: String, why: String },
    #[error(
        "{path} does not fit the network ({arch}): {problems}; check `arch` (and `width`, `hidden`), or set strict = false to load what fits"
    )]
    Mismatch { path: String, arch: String, problems: String },
    #[error("copying {name} from {path}: {source}")]
    Copy {
        path: String,
        name: String,
        #[source]
        source: TchError,
    },
}

/// The tensors of a weights file, by name.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let unreadable = |why: String| WeightsError::Unreadable { path: path.display().to_string(), why };
    let mut head = [0u8; 9];
    {
        use std::io::Read;
        let mut f = pipe_core::fsx::open(path).map_err(|e| unreadable(format!("cannot open: {}", e.source)))?;
        let n = f.read(&mut head).map_err(|e| unreadable(format!("cannot read: {e}")))?;
        if n < head.len() {
            return Err(unreadable("too short to be a weights file".into()));
        }
    }
    let convert = |what: &str| {
        unreadable(format!(
            "{what}: pipe reads safetensors; convert it once with `python3 scripts/torch_to_safetensors.py {} OUT.safetensors` and name that file",
            path.display()
        ))
    };
    if head.starts_with(b"PK\x03\x04") {
        Err(convert("a torch.save file (zip format)"))
    } else if head[8] == b'{' {
        Tensor::read_safetensors(path).map_err(|e| unreadable(format!("not a valid safetensors file: {e}")))
    } else if head[0] == 0x80 {
        Err(convert("a torch.save file (legacy format)"))
    } else {
        Err(unreadable("neither safetensors nor a torch.save zip file".into()))
    }
}

/// What loading did: tensors copied, and those left as they were.
#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    pub copied: usize,
    /// The output layer's tensors that were left new (their shape is this task's).
    pub head_new: Vec<String>,
    /// With strict = false: what did not fit.
    pub skipped: Vec<String>,
}

/// Copies `tensors` (read from `path`) into `vs` by name; see the module doc.
/// `head` is the output layer's name prefix, `arch` names the network in errors.
pub fn load_into(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    head: &str,
    strict: bool,
    path: &Path,
    arch: &str,
) -> Result<Loaded, WeightsError> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let in_head = |name: &str| name.strip_prefix(head).is_some_and(|rest| rest.starts_with('.'));
    let file: HashMap<String, Tensor> = tensors.into_iter().filter(|(name, _)| !name.ends_with("num_batches_tracked")).collect();
    let mut loaded = Loaded::default();
    let (mut missing, mut wrong_shape) = (Vec::new(), Vec::new());
    let mut plan = Vec::new();
    for (name, var) in &vars {
        match file.get(name) {
            Some(t) if t.size() == var.size() => plan.push((name, var, t)),
            Some(_) if in_head(name) => loaded.head_new.push(name.clone()),
            Some(t) => wrong_shape.push(format!("{name} is {:?} in the file, {:?} in the network", t.size(), var.size())),
            None if in_head(name) => loaded.head_new.push(name.clone()),
            None => missing.push(name.clone()),
        }
    }
    let mut unexpected: Vec<String> = file.keys().filter(|n| !vars.contains_key(*n)).cloned().collect();
    unexpected.sort();
    let mut problems = Vec::new();
    let list = |what: &str, names: &[String]| {
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        let more = if names.len() > shown.len() { format!(" and {} more", names.len() - shown.len()) } else { String::new() };
        format!("{} {what}: {}{more}", names.len(), shown.join(", "))
    };
    if !missing.is_empty() {
        problems.push(list("missing from the file", &missing));
    }
    if !unexpected.is_empty() {
        problems.push(list("in the file but not in the network", &unexpected));
    }
    if !wrong_shape.is_empty() {
        problems.push(list("with another shape", &wrong_shape));
    }
    if strict && !problems.is_empty() {
        return Err(WeightsError::Mismatch { path: path.display().to_string(), arch: arch.into(), problems: problems.join("; ") });
    }
    loaded.skipped = missing.into_iter().chain(unexpected).chain(wrong_shape).collect();
    let _guard = tch::no_grad_guard();
    for (name, var, t) in plan {
        let copy = |var: &Tensor| -> Result<(), TchError> {
            let src = t.f_to_device(var.device())?.f_to_kind(var.kind())?;
            var.shallow_clone().f_copy_(&src)
        };
        copy(var).map_err(|source| WeightsError::Copy { path: path.display().to_string(), name: name.clone(), source })?;
        loaded.copied += 1;
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{Arch, Net, Shape};
    use tch::{Device, Kind};

    fn shape(outputs: i64) -> Shape {
        Shape { channels: 3, width: 8, hidden: 32, outputs, batch_norm: true, dropout: 0.5 }
    }

    fn logits(net: &Net) -> Tensor {
        let x = Tensor::arange(2 * 3 * 32 * 32, (Kind::Float, Device::Cpu)).f_view([2, 3, 32, 32]).unwrap().sin();
        net.f_forward_t(&x, false).unwrap()
    }

    #[test]
    fn saved_weights_load_back_to_identical_logits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.safetensors");
        for arch in [Arch::Small, Arch::ResNet18, Arch::EfficientNetLite0] {
            tch::manual_seed(1);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Net::new(&vs.root(), arch, shape(5));
            vs.save(&file).unwrap();
            tch::manual_seed(2);
            let fresh = nn::VarStore::new(Device::Cpu);
            let other = Net::new(&fresh.root(), arch, shape(5));
            assert!(logits(&net).f_sub(&logits(&other)).unwrap().abs().max().double_value(&[]) > 0.0, "{arch:?}: another start");
            let got = load_into(&fresh, read(&file).unwrap(), other.head(), true, &file, "test").unwrap();
            assert!(got.head_new.is_empty() && got.skipped.is_empty(), "{arch:?}: {got:?}");
            assert_eq!(
                Vec::<f32>::try_from(logits(&net).flatten(0, -1)).unwrap(),
                Vec::<f32>::try_from(logits(&other).flatten(0, -1)).unwrap(),
                "{arch:?}"
            );
        }
    }

    #[test]
    fn a_new_task_keeps_a_new_head_and_a_wrong_file_names_its_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.safetensors");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Net::new(&vs.root(), Arch::ResNet18, shape(5));
        vs.save(&file).unwrap();
        // Seven classes instead of five: everything but the head loads.
        let seven = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&seven.root(), Arch::ResNet18, shape(7));
        let got = load_into(&seven, read(&file).unwrap(), net.head(), true, &file, "resnet18").unwrap();
        assert_eq!(got.head_new, ["out.bias", "out.weight"]);
        // Another network: strict names what is missing and what is extra.
        let small = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&small.root(), Arch::Small, shape(5));
        let err = load_into(&small, read(&file).unwrap(), net.head(), true, &file, "small").unwrap_err().to_string();
        assert!(err.contains("34 missing from the file: bn0.bias, "), "{err}");
        assert!(err.contains("100 in the file but not in the network: layer0_0.bn1.bias, "), "{err}");
        assert!(err.contains("strict = false"), "{err}");
        let loose = load_into(&small, read(&file).unwrap(), net.head(), false, &file, "small").unwrap();
        assert_eq!(loose.copied, 1, "only out.bias has the same name and shape");
        assert!(!loose.skipped.is_empty());
    }

    #[test]
    fn torch_save_files_are_named_with_the_command_that_converts_them() {
        // Written by torch 2.11's torch.save, in both formats (tests/data/README.md).
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        for (file, format) in [("small-zip.pt", "zip format"), ("small-legacy.pth", "legacy format")] {
            let err = read(&data.join(file)).unwrap_err().to_string();
            assert!(err.contains(format) && err.contains("scripts/torch_to_safetensors.py") && err.contains(file), "{err}");
        }
        // Its conversion (tests/data/small.safetensors) reads.
        let converted = read(&data.join("small.safetensors")).unwrap();
        assert_eq!(converted.len(), 5);
    }

    #[test]
    fn files_that_are_not_weights_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("old.pth");
        pipe_core::fsx::write(&legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]).unwrap();
        assert!(read(&legacy).unwrap_err().to_string().contains("torch_to_safetensors.py"));
        let text = dir.path().join("notes.txt");
        pipe_core::fsx::write(&text, "these are not weights").unwrap();
        assert!(read(&text).unwrap_err().to_string().contains("neither safetensors nor"));
    }
}
