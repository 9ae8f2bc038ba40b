//! Lints: findings about a valid workflow that is probably not what its author meant. They are
//! warnings; `--deny-warnings` makes them fail validation.

use petgraph::unionfind::UnionFind;

use crate::actions::{Effect, Registry};
use crate::dag::CompiledWorkflow;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::workflow::{Node, NodeKind, RawWorkflow, format_duration};

/// Runs every lint on a compiled workflow. `raw` supplies the places to point at.
pub fn lint(raw: &RawWorkflow, workflow: &CompiledWorkflow, registry: &Registry) -> Diagnostics {
    let mut diags = Diagnostics::default();
    irreversible_without_approval(workflow, registry, &mut diags);
    disconnected(workflow, &mut diags);
    objectives(raw, workflow, &mut diags);
    unauthenticated_approvals(raw, workflow, &mut diags);
    references_in_shell_scripts(raw, &mut diags);
    diags
}

/// The shells whose `-c` takes a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash"];

/// `${params.X}` or `${steps.X...}` written inside the script of `sh -c SCRIPT` is substituted
/// into the script's text: a value holding a quote or `$(...)` becomes shell code. Through
/// `env`, the shell reads it as data (SPEC §5.8.10).
fn references_in_shell_scripts(raw: &RawWorkflow, diags: &mut Diagnostics) {
    for step in &raw.steps {
        let calls = std::iter::once((step.action.as_ref(), step.with.as_ref())).chain(
            step.rollback
                .iter()
                .map(|r| (r.action.as_ref(), r.with.as_ref())),
        );
        for (action, with) in calls {
            if action.is_none_or(|a| a.value != "shell") {
                continue;
            }
            let Some(script) = with.and_then(|w| shell_script(&w.value)) else {
                continue;
            };
            let NodeKind::String(text) = &script.kind else {
                continue;
            };
            let Some(start) = ["${params.", "${steps."]
                .into_iter()
                .filter_map(|r| text.find(r))
                .min()
            else {
                continue;
            };
            let reference = text[start..]
                .find('}')
                .map_or(&text[start..], |end| &text[start..=start + end]);
            let id = step.id.as_ref().map_or("?", |i| i.value.as_str());
            diags.push(
                Diagnostic::new(
                    Code::ReferenceInShellScript,
                    format!(
                        "step `{id}` pastes `{reference}` into a shell script: a value holding a quote, `;` or `$(...)` runs as shell code"
                    ),
                )
                .at(script.span.clone(), "substituted into the script's text")
                .help(format!("pass the value through the step's environment and quote the variable in the script: env = {{ VALUE = \"{reference}\" }} and \"$VALUE\" in the script")),
            );
        }
    }
}

/// The script of an `argv` like `["sh", "-c", SCRIPT, ...]` (or `bash -o pipefail -euc
/// SCRIPT`).
fn shell_script(with: &crate::workflow::Table) -> Option<&Node> {
    let NodeKind::Array(argv) = &with.get("argv")?.kind else {
        return None;
    };
    let program = text(argv.first()?)?;
    let name = program.rsplit('/').next().unwrap_or(program);
    if !SHELLS.contains(&name) {
        return None;
    }
    // Options up to the one holding `c`; the script follows it.
    let mut rest = argv[1..].iter();
    while let Some(arg) = rest.next() {
        let flag = text(arg)?;
        if flag == "-o" || flag == "+o" {
            rest.next();
            continue;
        }
        if !(flag.starts_with('-') || flag.starts_with('+')) || flag == "--" {
            return None;
        }
        if flag.starts_with('-') && !flag.starts_with("--") && flag.contains('c') {
            return rest.next();
        }
    }
    None
}

fn text(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Without an allowed-signers file an approver is whoever types the name (SPEC §5.9).
fn unauthenticated_approvals(
    raw: &RawWorkflow,
    workflow: &CompiledWorkflow,
    diags: &mut Diagnostics,
) {
    if workflow.allowed_signers.is_some() {
        return;
    }
    let approvals: Vec<&str> = workflow
        .steps
        .iter()
        .filter(|s| s.is_approval())
        .map(|s| s.id.as_str())
        .collect();
    if approvals.is_empty() {
        return;
    }
    diags.push(
        Diagnostic::new(
            Code::UnauthenticatedApprovals,
            format!(
                "approvals are not authenticated: anyone can vote on {} under any approver's name",
                approvals
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .at(raw.header.span.clone(), "no `allowed_signers` in `[workflow]`")
        .help("name an OpenSSH allowed-signers file: allowed_signers = \"approvers.allowed_signers\", and approve with --key"),
    );
}

/// A step that changes something for good, with no compensation, must come after a human
/// said yes: `drctl run` would otherwise do it unattended.
fn irreversible_without_approval(
    workflow: &CompiledWorkflow,
    registry: &Registry,
    diags: &mut Diagnostics,
) {
    let is_approval: Vec<bool> = workflow
        .steps
        .iter()
        .map(crate::dag::Step::is_approval)
        .collect();
    // Steps are not in topological order in the file; walk the waves instead.
    let schedule_waves = crate::dag::waves(
        &workflow
            .steps
            .iter()
            .map(|s| s.needs.as_slice())
            .collect::<Vec<_>>(),
    );
    let mut order: Vec<usize> = (0..workflow.steps.len()).collect();
    order.sort_by_key(|&i| schedule_waves[i]);
    let mut approved = vec![false; workflow.steps.len()];
    for &i in &order {
        approved[i] = workflow.steps[i]
            .needs
            .iter()
            .any(|&d| is_approval[d] || approved[d]);
    }
    for (i, step) in workflow.steps.iter().enumerate() {
        let Some(action) = registry.get(&step.action) else {
            continue;
        };
        if action.spec().effect == Effect::Irreversible && step.rollback.is_none() && !approved[i] {
            diags.push(
                Diagnostic::new(
                    Code::IrreversibleWithoutApproval,
                    format!(
                        "step `{}` ({}) cannot be undone and no approval comes before it",
                        step.id, step.action
                    ),
                )
                .at(step.span.clone(), "runs without anyone saying yes")
                .help("add an `approval` step to its `needs` (directly or earlier in the chain), or give it a `rollback`"),
            );
        }
    }
}

/// Steps in a group of their own, joined to the rest by no `needs`: they run at once, in
/// parallel with everything, which in a runbook is usually a forgotten `needs`.
fn disconnected(workflow: &CompiledWorkflow, diags: &mut Diagnostics) {
    let n = workflow.steps.len();
    if n < 2 {
        return;
    }
    let mut groups = UnionFind::<usize>::new(n);
    for (i, step) in workflow.steps.iter().enumerate() {
        for &d in &step.needs {
            groups.union(i, d);
        }
    }
    let labels = groups.into_labeling();
    let mut sizes = std::collections::HashMap::<usize, usize>::new();
    for &label in &labels {
        *sizes.entry(label).or_default() += 1;
    }
    if sizes.len() < 2 {
        return;
    }
    // The main flow is the one that recovers the service, or else the largest.
    let main = workflow.recovered_step().map_or_else(
        || {
            let mut best = labels[0];
            for (&label, &size) in &sizes {
                if size > sizes[&best] || (size == sizes[&best] && label < best) {
                    best = label;
                }
            }
            best
        },
        |r| labels[r],
    );
    let mut reported = std::collections::HashSet::new();
    for (i, step) in workflow.steps.iter().enumerate() {
        if labels[i] == main || !reported.insert(labels[i]) {
            continue;
        }
        let members: Vec<&str> = (0..n)
            .filter(|&j| labels[j] == labels[i])
            .map(|j| workflow.steps[j].id.as_str())
            .collect();
        let what = if members.len() == 1 {
            format!(
                "step `{}` is not connected to the rest of the workflow",
                step.id
            )
        } else {
            format!(
                "steps {} are not connected to the rest of the workflow",
                quote_list(&members)
            )
        };
        diags.push(
            Diagnostic::new(Code::Disconnected, what)
                .at(step.span.clone(), "nothing leads here from the main flow, and it leads nowhere")
                .help("it will start at once, in parallel with everything else; add the `needs` it was meant to have"),
        );
    }
}

fn quote_list(ids: &[&str]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn objectives(raw: &RawWorkflow, workflow: &CompiledWorkflow, diags: &mut Diagnostics) {
    if let Some(rto) = &raw.header.rto {
        let schedule = workflow.schedule();
        if schedule.predicted_rto > rto.value {
            let path: Vec<&str> = schedule
                .critical_path
                .iter()
                .map(|&i| workflow.steps[i].id.as_str())
                .collect();
            diags.push(
                Diagnostic::new(
                    Code::EstimateExceedsRto,
                    format!(
                        "the estimates add up to {} on the critical path, over the RTO objective of {}",
                        format_duration(schedule.predicted_rto),
                        format_duration(rto.value)
                    ),
                )
                .at(rto.span.clone(), "objective")
                .help(format!("critical path: {}; shorten it or revisit the objective", path.join(" -> "))),
            );
        }
        if workflow.recovered_step().is_none() {
            diags.push(
                Diagnostic::new(Code::RtoWithoutRecoveredMarker, "an RTO objective is set but no step is marked `recovered`")
                    .at(rto.span.clone(), "the clock would stop only when the whole run ends")
                    .help("add `marks = \"recovered\"` to the step that proves service is back (a health check)"),
            );
        }
    }
    if let Some(rpo) = &raw.header.rpo
        && !workflow.steps.iter().any(|s| s.measures_rpo)
    {
        diags.push(
            Diagnostic::new(Code::RpoWithoutMeasure, "an RPO objective is set but no step measures it")
                .at(rpo.span.clone(), "nothing will measure this")
                .help("add `measures = \"rpo\"` to an rds.replica_lag, rds.restore_point_in_time or rds.restore_from_snapshot step"),
        );
    }
}
