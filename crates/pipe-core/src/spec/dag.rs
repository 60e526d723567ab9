//! The pipeline's stages as a DAG (petgraph): topological order, and cycle
//! detection that names every stage on the cycle, reported with the spec's
//! other problems; and the text and Graphviz views of `pipe dag`. Keys are in the
//! `keys` module.

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Diagnostic, PipelineSpec};

/// Edges point from an input stage to the stage that consumes it.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    /// Stage indices (into `spec.stages`) so that inputs come first.
    pub order: Vec<usize>,
    /// Direct inputs of each stage, without repeats.
    pub deps: Vec<Vec<usize>>,
    /// Direct consumers of each stage.
    pub dependents: Vec<Vec<usize>>,
}

impl Dag {
    /// Builds the graph of a validated spec; a cycle is reported with every
    /// stage on it.
    pub fn build(spec: &PipelineSpec) -> Result<Dag, Vec<Diagnostic>> {
        let n = spec.stages.len();
        let index: std::collections::HashMap<&str, usize> = spec.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(n, n);
        let nodes: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();
        let mut deps = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for (i, stage) in spec.stages.iter().enumerate() {
            // Unknown names are the spec's errors to report; skip them here so
            // cycles among the rest are still found in the same pass.
            for r in stage.inputs.values().flatten() {
                let Some(&j) = index.get(r.stage.as_str()) else { continue };
                if !deps[i].contains(&j) {
                    deps[i].push(j);
                    dependents[j].push(i);
                    graph.add_edge(nodes[j], nodes[i], ());
                }
            }
        }
        match toposort(&graph, None) {
            Ok(order) => Ok(Dag { order: order.into_iter().map(|n| graph[n]).collect(), deps, dependents }),
            Err(_) => Err(cycles(spec, &graph, &deps)),
        }
    }

    /// `targets` and everything they (transitively) need.
    pub fn closure(&self, targets: &[usize]) -> Vec<bool> {
        let mut need = vec![false; self.deps.len()];
        let mut stack = targets.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut need[i], true) {
                stack.extend(&self.deps[i]);
            }
        }
        need
    }
}

fn cycles(spec: &PipelineSpec, graph: &DiGraph<usize, ()>, deps: &[Vec<usize>]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for scc in tarjan_scc(graph) {
        let members: Vec<usize> = scc.iter().map(|n| graph[*n]).collect();
        let self_loop = members.len() == 1 && deps[members[0]].contains(&members[0]);
        if members.len() < 2 && !self_loop {
            continue;
        }
        let path = cycle_path(&members, deps);
        let names: Vec<&str> = path.iter().map(|i| spec.stages[*i].name.as_str()).collect();
        let first = &spec.stages[path[0]];
        out.push(
            Diagnostic::new(first.span.clone(), format!("the stages form a cycle: {}", names.join(" -> ")))
                .hint("a stage cannot depend on its own output: remove one of these inputs"),
        );
    }
    out
}

/// One concrete cycle through a strongly connected component, closed (the
/// first stage repeated at the end), following consumer -> input edges.
fn cycle_path(members: &[usize], deps: &[Vec<usize>]) -> Vec<usize> {
    let start = *members.iter().min().expect("a component has members");
    let mut path = vec![start];
    let mut seen = vec![start];
    let mut at = start;
    loop {
        let next = deps[at]
            .iter()
            .copied()
            .filter(|d| members.contains(d))
            .min_by_key(|d| (*d != start, !seen.contains(d), *d))
            .expect("every member of a cycle has an input on it");
        path.push(next);
        if next == start || seen.contains(&next) {
            // Trim to the loop that closes at `next`.
            let from = path.iter().position(|p| *p == next).unwrap_or(0);
            return path[from..].to_vec();
        }
        seen.push(next);
        at = next;
    }
}

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
