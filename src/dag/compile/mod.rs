//! From a raw workflow to a [`CompiledWorkflow`]: parameters resolved, actions and their
//! parameters checked, references checked, `needs` resolved, cycles refused.
//!
//! Every problem is reported; compilation goes on after one so that a single run of
//! `drctl validate` shows them all. This file holds the entry point and the graph; each
//! stage lives in its own module: `params` (`[params]` and `--param`), `steps` (one step's
//! action, timing and markers), `args` (a `with` table against the action's schema) and
//! `references` (`${params.X}`, `${steps.X.outputs.Y}` and `needs`).

mod args;
mod params;
mod references;
mod steps;

use petgraph::graph::{DiGraph, NodeIndex};

use super::cycle::find_cycles;
use super::{CompiledWorkflow, DEFAULT_CONCURRENCY, Step};
use crate::actions::Registry;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::workflow::{OnFailure, ParamValue, RawWorkflow, Spanned};

pub use params::Override;
use params::resolve_params;
use steps::index_steps;

/// Compiles `raw`. Problems go to `diags`; the workflow is returned only when there were none
/// (lints are not run here).
pub fn compile(
    raw: &RawWorkflow,
    registry: &Registry,
    overrides: &[Override],
    diags: &mut Diagnostics,
) -> Option<CompiledWorkflow> {
    let errors_before = diags.error_count();
    let params = resolve_params(raw, overrides, diags);
    let ids = index_steps(&raw.steps, diags);

    let mut compiler = Compiler {
        registry,
        params: &params,
        diags,
    };
    let mut steps = Vec::with_capacity(raw.steps.len());
    let mut refs_per_step = Vec::with_capacity(raw.steps.len());
    for raw_step in &raw.steps {
        let (step, refs) = compiler.step(raw, raw_step, &ids);
        steps.push(step);
        refs_per_step.push(refs);
    }
    // References and needs are checked once every step's action is known.
    for (i, raw_step) in raw.steps.iter().enumerate() {
        let mut needs = compiler.needs(raw_step, &ids);
        for r in &refs_per_step[i] {
            if let Some(dep) = compiler.step_ref(r, &raw.steps, &ids) {
                needs.push(dep);
            }
        }
        needs.sort_unstable();
        needs.dedup();
        if let Some(step) = &mut steps[i] {
            step.needs = needs;
        }
    }
    compiler.markers(raw);

    // A step that did not compile was reported, here or by the reader (a step without an
    // `action`, say): the rest must not be compiled without it, their `needs` would point
    // at the wrong steps.
    if diags.error_count() > errors_before || steps.iter().any(Option::is_none) {
        return None;
    }
    let steps: Vec<Step> = steps.into_iter().flatten().collect();
    let needs: Vec<Vec<usize>> = steps.iter().map(|s| s.needs.clone()).collect();
    let graph = build_graph(&needs);
    let cycles = find_cycles(&graph, &needs);
    for cycle in &cycles {
        report_cycle(cycle, &steps, raw, diags);
    }
    if !cycles.is_empty() {
        return None;
    }

    let header = &raw.header;
    Some(CompiledWorkflow {
        name: header.name.as_ref()?.value.clone(),
        kind: header.kind.as_ref()?.value,
        description: header.description.clone(),
        rto: header.rto.as_ref().map(|d| d.value),
        rpo: header.rpo.as_ref().map(|d| d.value),
        concurrency: header
            .concurrency
            .as_ref()
            .map_or(DEFAULT_CONCURRENCY, |c| c.value),
        on_failure: header
            .on_failure
            .as_ref()
            .map_or(OnFailure::default(), |o| o.value),
        params: params.into_iter().map(|(k, v)| (k, v.value)).collect(),
        steps,
        graph,
        allowed_signers: header
            .allowed_signers
            .as_ref()
            .map(|s| (s.value.clone(), s.span.clone())),
        signers: None,
        events: header.events.as_ref().map(|e| super::Events {
            url: e.url.value.clone(),
            on: e.on.clone(),
        }),
    })
}

fn build_graph(needs: &[Vec<usize>]) -> DiGraph<(), ()> {
    let edges = needs.iter().map(Vec::len).sum();
    let mut graph = DiGraph::with_capacity(needs.len(), edges);
    for _ in needs {
        graph.add_node(());
    }
    for (i, deps) in needs.iter().enumerate() {
        for &d in deps {
            graph.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
        }
    }
    graph
}

fn report_cycle(cycle: &[usize], steps: &[Step], raw: &RawWorkflow, diags: &mut Diagnostics) {
    let ids: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
    let mut path = ids.join(" -> ");
    path.push_str(" -> ");
    path.push_str(ids[0]);
    let mut diagnostic = Diagnostic::new(Code::Cycle, format!("dependency cycle: {path}"))
        .help("each arrow reads \"needs\" (explicitly, or through a ${steps.ID.outputs.KEY} reference); remove one of them");
    for (n, &i) in cycle.iter().enumerate() {
        let next = &steps[cycle[(n + 1) % cycle.len()]].id;
        // Point at the `needs` entry when the edge is explicit, else at the step.
        let raw_step = raw
            .steps
            .iter()
            .find(|s| s.id.as_ref().is_some_and(|id| id.value == steps[i].id));
        let span = raw_step
            .and_then(|s| {
                s.needs
                    .iter()
                    .find(|n| &n.value == next)
                    .map(|n| n.span.clone())
            })
            .unwrap_or_else(|| steps[i].span.clone());
        let label = format!("`{}` needs `{next}`", steps[i].id);
        diagnostic = if n == 0 {
            diagnostic.at(span, label)
        } else {
            diagnostic.also(span, label)
        };
    }
    diags.push(diagnostic);
}

/// What every stage of one compilation shares: the actions known, the parameters resolved,
/// and where problems go.
struct Compiler<'a> {
    registry: &'a Registry,
    params: &'a [(String, Spanned<ParamValue>)],
    diags: &'a mut Diagnostics,
}
