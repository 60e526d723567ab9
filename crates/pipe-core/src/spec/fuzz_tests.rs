//! A fuzz test of the spec parser: documents grown from a grammar of what a
//! pipeline file may hold (every kind of this build, their real parameter
//! and slot names, misspellings, values of every TOML type, sweeps, repeats,
//! resources, command stages) and byte-level mutations of the shipped
//! pipelines. Whatever the document, `parse` returns a spec or diagnostics,
//! and a diagnostic's span lies inside the text: it never panics.
//! Deterministic (seeded) and bounded, so it runs in every `cargo test`.

use std::path::Path;

use super::parse;
use crate::kinds::registry;
use crate::rng::Rng;

/// Documents per seed; a few thousand parse in well under a second.
const DOCUMENTS: usize = 3000;

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

fn value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 2 { 10 } else { 13 }) {
        0 => rng.below(100).to_string(),
        1 => pick(rng, &["-1", "0", "9223372036854775807", "-9223372036854775808", "0x7f", "1_000"]).to_string(),
        2 => format!("{}", rng.range(-10.0, 1000.0)),
        3 => pick(rng, &["nan", "inf", "-inf", "1e308", "1e-320", "0.0"]).to_string(),
        4 => pick(rng, &["true", "false"]).to_string(),
        5 => format!("\"{}\"", pick(rng, &["", "rbf", "all", "tune-global", "cuda", "../x", "~/w.safetensors", "ünïcode", "a|b", "30m"])),
        6 => pick(rng, &["1979-05-27", "1979-05-27T07:32:00Z"]).to_string(),
        7 => "[]".to_string(),
        8 => stage_name(rng),
        9 => format!("\"{}\"", stage_name(rng).trim_matches('"')),
        _ => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| value(rng, depth + 1)).collect();
            if rng.chance(0.3) {
                format!("{{ a = {} }}", items.first().cloned().unwrap_or("1".into()))
            } else {
                format!("[{}]", items.join(", "))
            }
        }
    }
}

fn stage_name(rng: &mut Rng) -> String {
    format!("\"{}\"", pick(rng, &["data", "a", "b", "svm", "cmd", "missing", "data[words=1]", ""]))
}

/// A key a stage of `kind` might have: one of its own, one of another
/// kind's, a table key, or a misspelling.
fn key(rng: &mut Rng, kind: &str) -> String {
    let own: Vec<&str> = crate::kinds::kind(kind)
        .map(|k| k.params.iter().map(|p| p.name).chain(k.inputs.iter().map(|s| s.name)).collect())
        .unwrap_or_default();
    match rng.below(5) {
        0 | 1 if !own.is_empty() => own[rng.below(own.len())].to_string(),
        2 => {
            let all: Vec<&str> = registry().iter().flat_map(|k| k.params.iter().map(|p| p.name)).collect();
            all[rng.below(all.len())].to_string()
        }
        3 => pick(rng, &["command", "produces", "code", "threads", "timeout", "repeats", "kind", "inputs", "params"]).to_string(),
        _ => pick(rng, &["wrods", "c", "\"quoted key\"", "a.b", "ümlaut"]).to_string(),
    }
}

fn document(rng: &mut Rng) -> String {
    let kinds: Vec<&str> = registry().iter().map(|k| k.name).collect();
    let mut out = String::new();
    if rng.chance(0.7) {
        out.push_str("[pipeline]\n");
        for _ in 0..rng.below(4) {
            let k = pick(rng, &["name", "seed", "cache", "reports", "repeats", "resplit", "nmae"]);
            out.push_str(&format!("{k} = {}\n", value(rng, 0)));
        }
        if rng.chance(0.2) {
            out.push_str(&format!("[pipeline.executor]\nkind = {}\ncpus = {}\n", value(rng, 0), value(rng, 0)));
        }
    }
    for s in 0..rng.below(5) {
        let name = pick(rng, &["data", "a", "b", "svm", "cmd"]);
        let name = if rng.chance(0.8) { format!("{name}{s}") } else { name.to_string() };
        let kind = if rng.chance(0.9) { kinds[rng.below(kinds.len())] } else { "nosuchkind" };
        out.push_str(&format!("\n[stages.{name}]\nkind = \"{kind}\"\n"));
        if kind == "command" && rng.chance(0.7) {
            out.push_str("command = [\"python3\", \"s.py\"]\nproduces = \"predictions\"\n");
        }
        for _ in 0..rng.below(6) {
            out.push_str(&format!("{} = {}\n", key(rng, kind), value(rng, 0)));
        }
        for table in ["matrix", "inputs", "params", "resources"] {
            if rng.chance(0.25) {
                out.push_str(&format!("[stages.{name}.{table}]\n"));
                for _ in 0..rng.below(4) {
                    let v = if table == "matrix" && rng.chance(0.7) {
                        let n = rng.below(5);
                        format!("[{}]", (0..n).map(|_| value(rng, 1)).collect::<Vec<_>>().join(", "))
                    } else {
                        value(rng, 0)
                    };
                    out.push_str(&format!("{} = {v}\n", key(rng, kind)));
                }
            }
        }
    }
    out
}

/// `text` with a few bytes deleted, duplicated or replaced.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => {
                bytes.remove(at);
            }
            1 => {
                let b = bytes[at];
                bytes.insert(at, b);
            }
            _ => {
                const NOISE: &[u8] = b"[]=\"'#\n,.0x-";
                bytes[at] = NOISE[rng.below(NOISE.len())];
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parses_without_panic(source: &str) {
    let outcome = std::panic::catch_unwind(|| parse(Path::new("fuzz.toml"), source));
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(items)) => {
            for d in items {
                if let Some(span) = d.span {
                    assert!(span.start <= span.end && span.end <= source.len() + 1, "span {span:?} outside the text:\n{source}");
                }
            }
        }
        Err(_) => panic!("the parser panicked on:\n{source}"),
    }
}

#[test]
fn grown_documents_never_panic_the_parser() {
    let mut rng = Rng::new(20261205, "fuzz-grammar");
    for _ in 0..DOCUMENTS {
        parses_without_panic(&document(&mut rng));
    }
}

#[test]
fn mutated_pipelines_never_panic_the_parser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let mut shipped: Vec<String> = crate::fsx::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| crate::fsx::read_to_string(e.path()).unwrap())
        .collect();
    shipped.sort();
    assert!(!shipped.is_empty());
    let mut rng = Rng::new(20261205, "fuzz-mutations");
    for _ in 0..DOCUMENTS {
        let base = &shipped[rng.below(shipped.len())];
        parses_without_panic(&mutate(&mut rng, base));
    }
}
