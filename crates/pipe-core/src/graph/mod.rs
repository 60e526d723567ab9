//! The pipeline graph's keys and views: stage keys (the Merkle chain over the
//! DAG, in [`keys`]) and the text/DOT views of `pipe dag`. The DAG itself
//! (order, cycles) is built with the spec, in [`crate::spec::dag`].

pub mod keys;

use crate::spec::PipelineSpec;
pub use crate::spec::dag::Dag;

/// `pipe dag`: one line per stage in run order, with its inputs.
pub fn render_text(spec: &PipelineSpec, dag: &Dag) -> String {
    let mut out = String::new();
    for &i in &dag.order {
        let s = &spec.stages[i];
        let inputs: Vec<String> = s
            .inputs
            .iter()
            .map(|(slot, refs)| format!("{slot}={}", refs.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>().join(",")))
            .collect();
        if inputs.is_empty() {
            out.push_str(&format!("{} ({})\n", s.name, s.kind.name));
        } else {
            out.push_str(&format!("{} ({}) <- {}\n", s.name, s.kind.name, inputs.join(" ")));
        }
    }
    out
}

/// `pipe dag --dot`: Graphviz, edges labelled with the input slot.
pub fn render_dot(spec: &PipelineSpec) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", spec.name);
    for s in &spec.stages {
        out.push_str(&format!("  \"{}\" [label=\"{}\\n{}\"];\n", s.name, s.name, s.kind.name));
    }
    for s in &spec.stages {
        for (slot, refs) in &s.inputs {
            for r in refs {
                out.push_str(&format!("  \"{}\" -> \"{}\" [label=\"{slot}\"];\n", r.stage, s.name));
            }
        }
    }
    out.push_str("}\n");
    out
}
