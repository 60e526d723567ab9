//! The architecture, checked: the `pipe` executable links neither OpenCV nor
//! libtorch (read from its ELF `NEEDED` entries, against `pipe-worker` and
//! `pipe-torch`, which must), and the top-level modules of each library crate
//! depend on each other without a cycle.
#![allow(clippy::disallowed_methods)] // a test reads files directly; its panic names the path

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `DT_NEEDED` entries of a 64-bit little-endian ELF file: the shared
/// libraries the dynamic loader must load for it.
fn needed_libraries(path: &Path) -> Vec<String> {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!((elf[4], elf[5]), (2, 1), "only 64-bit little-endian ELF is read here");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    // Program headers: PT_LOAD (1) maps addresses to file offsets; PT_DYNAMIC (2) is the dynamic table.
    let headers: Vec<(u32, usize, usize, usize)> = (0..phnum)
        .map(|i| {
            let h = phoff + i * phentsize;
            let kind = u32::from_le_bytes(elf[h..h + 4].try_into().unwrap());
            (kind, u64_at(h + 8), u64_at(h + 16), u64_at(h + 32)) // type, offset, vaddr, filesz
        })
        .collect();
    let file_offset = |addr: usize| {
        headers
            .iter()
            .find(|(kind, _, vaddr, size)| *kind == 1 && (*vaddr..vaddr + size).contains(&addr))
            .map(|(_, offset, vaddr, _)| addr - vaddr + offset)
            .expect("the string table is in a loaded segment")
    };
    let Some(&(_, dynamic, _, size)) = headers.iter().find(|h| h.0 == 2) else { return Vec::new() };
    let entries: Vec<(usize, usize)> = (0..size / 16).map(|i| (u64_at(dynamic + i * 16), u64_at(dynamic + i * 16 + 8))).collect();
    let strtab = file_offset(entries.iter().find(|e| e.0 == 5).expect("a dynamic file has DT_STRTAB").1);
    entries
        .iter()
        .filter(|e| e.0 == 1)
        .map(|&(_, at)| {
            let start = strtab + at;
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}

fn executable(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_pipe")).with_file_name(name)
}

#[test]
fn the_engine_links_neither_opencv_nor_libtorch() {
    let pipe = needed_libraries(Path::new(env!("CARGO_BIN_EXE_pipe")));
    assert!(pipe.iter().any(|l| l.starts_with("libc.so")), "the reader works: {pipe:?}");
    let heavy: Vec<&String> =
        pipe.iter().filter(|l| l.starts_with("libopencv") || l.starts_with("libtorch") || l.starts_with("libc10")).collect();
    assert!(heavy.is_empty(), "pipe links {heavy:?}");
    // The workers do link them (built by their crates' own tests in the same `cargo test`).
    for (worker, lib) in [("pipe-worker", "libopencv_core"), ("pipe-torch", "libtorch")] {
        let path = executable(worker);
        if path.exists() {
            let needed = needed_libraries(&path);
            assert!(needed.iter().any(|l| l.starts_with(lib)), "{worker}: {needed:?}");
        }
    }
}

/// Top-level module -> the top-level modules of the same crate it uses
/// (`crate::m`, or `super::m` from a module's own files).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let tops: BTreeSet<String> = std::fs::read_dir(src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            (!["lib", "main", "bin"].contains(&stem.as_str())).then_some(stem)
        })
        .collect();
    let mut files = vec![src.to_path_buf()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let rel = p.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if !tops.contains(&top) || p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let uses = graph.entry(top.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let word: String = text[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if tops.contains(&word) && word != top {
                uses.insert(word);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules on it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_depend_on_each_other_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for krate in ["crates/pipe-core/src", "crates/pipe-cv/src", "src"] {
        let graph = module_graph(&root.join(krate));
        assert!(graph.len() >= 2 || krate == "src", "{krate}: {graph:?}");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: the modules form a cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c"), ("c", "a")].iter().map(|(k, v)| (k.to_string(), [v.to_string()].into())).collect();
    assert_eq!(find_cycle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn the_core_crate_depends_on_neither_opencv_nor_tch() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/pipe-core/Cargo.toml")).unwrap();
    for line in manifest.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        assert!(!["opencv", "tch", "torch-sys"].contains(&name), "pipe-core depends on {line}");
    }
}

/// Within one folder of a crate, sibling file -> the siblings its
/// production code uses (`super::name` in a file of the folder, or
/// `crate::folder::path::name` anywhere below a sibling). The folder's
/// `mod.rs` is the parent, not a sibling: its children may use what it defines.
fn sibling_graph(crate_src: &Path, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let module_path: Vec<String> =
        dir.strip_prefix(crate_src).unwrap().components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let prefix = if module_path.is_empty() { "crate::".to_string() } else { format!("crate::{}::", module_path.join("::")) };
    let mut siblings: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let (path, name) = (e.path(), e.file_name().into_string().unwrap());
        if path.is_dir() {
            let mut files = vec![path.clone()];
            let mut all = Vec::new();
            while let Some(p) = files.pop() {
                if p.is_dir() {
                    files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                } else if p.extension().is_some_and(|x| x == "rs") {
                    all.push(p);
                }
            }
            siblings.entry(name).or_default().extend(all);
        } else if let Some(stem) = name.strip_suffix(".rs").filter(|s| !["mod", "lib", "main"].contains(s)) {
            siblings.entry(stem.to_string()).or_default().push(path);
        }
    }
    let names: BTreeSet<String> = siblings.keys().cloned().collect();
    let word_after = |text: &str, at: usize| -> String { text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut graph = BTreeMap::new();
    for (name, files) in &siblings {
        let mut uses = BTreeSet::new();
        for f in files {
            // Production code: a file's tests (from its `#[cfg(test)]` on,
            // and test files) may use whatever they test with.
            let stem = f.file_stem().unwrap().to_string_lossy();
            if stem == "tests" || stem.ends_with("_tests") {
                continue;
            }
            let whole = std::fs::read_to_string(f).unwrap();
            let text = whole.split("#[cfg(test)]").next().unwrap_or_default();
            let direct = f.parent() == Some(dir);
            let mut refs: Vec<String> = text.match_indices(&prefix).map(|(at, _)| word_after(text, at + prefix.len())).collect();
            if direct {
                refs.extend(text.match_indices("super::").map(|(at, _)| word_after(text, at + 7)));
            }
            uses.extend(refs.into_iter().filter(|r| names.contains(r) && r != name));
        }
        graph.insert(name.clone(), uses);
    }
    graph
}

#[test]
fn files_of_one_folder_depend_on_each_other_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for krate in ["crates/pipe-core/src", "crates/pipe-cv/src", "crates/pipe-torch/src", "src"] {
        let src = root.join(krate);
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            dirs.extend(std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            if let Some(cycle) = find_cycle(&sibling_graph(&src, &dir)) {
                panic!("{}: its files form a cycle: {}", dir.display(), cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn the_file_cycle_finder_sees_super_paths() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("mod.rs"), "mod a; mod b;").unwrap();
    std::fs::write(m.join("a.rs"), "use super::b::x;").unwrap();
    std::fs::write(m.join("b.rs"), "use crate::m::a::y;").unwrap();
    let graph = sibling_graph(dir.path(), &m);
    assert_eq!(find_cycle(&graph), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
}
