//! From a raw workflow to a [`CompiledWorkflow`]: parameters resolved, actions and their
//! parameters checked, references checked, `needs` resolved, cycles refused.
//!
//! Every problem is reported; compilation goes on after one so that a single run of
//! `drctl validate` shows them all.

use std::collections::HashMap;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};

use super::cycle::find_cycles;
use super::{Compensation, CompiledWorkflow, DEFAULT_CONCURRENCY, EstimateSource, Step, StepKind};
use crate::actions::{Action, Arg, Args, ParamType, Registry};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, Span, did_you_mean};
use crate::workflow::{
    NO_RETRY, Node, NodeKind, OnFailure, ParamValue, RawRetry, RawStep, RawWorkflow, Segment,
    Spanned, Table, Template, format_duration,
};

/// A `--param name=value` given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The parameter's name.
    pub name: String,
    /// The value as typed.
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok(Override {
                name: name.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("`{s}` is not of the form name=value")),
        }
    }
}

/// A `${steps.ID.outputs.KEY}` found in a step's parameters, with where it was written.
struct StepRef {
    step: String,
    key: String,
    span: Span,
}

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

fn resolve_params(
    raw: &RawWorkflow,
    overrides: &[Override],
    diags: &mut Diagnostics,
) -> Vec<(String, Spanned<ParamValue>)> {
    let mut params: Vec<(String, Spanned<ParamValue>)> = raw
        .params
        .iter()
        .map(|p| (p.name.value.clone(), p.value.clone()))
        .collect();
    for o in overrides {
        let Some((_, slot)) = params.iter_mut().find(|(k, _)| *k == o.name) else {
            let help = did_you_mean(&o.name, raw.params.iter().map(|p| p.name.value.as_str()))
                .unwrap_or_else(|| {
                    if raw.params.is_empty() {
                        "this workflow declares no parameters".into()
                    } else {
                        let names: Vec<_> =
                            raw.params.iter().map(|p| p.name.value.as_str()).collect();
                        format!("the workflow's parameters are: {}", names.join(", "))
                    }
                });
            diags.push(
                Diagnostic::new(
                    Code::BadOverride,
                    format!(
                        "--param {}: the workflow has no parameter `{}`",
                        o.name, o.name
                    ),
                )
                .help(help),
            );
            continue;
        };
        match convert_override(&slot.value, &o.value) {
            Ok(v) => slot.value = v,
            Err(expected) => diags.push(
                Diagnostic::new(
                    Code::BadOverride,
                    format!(
                        "--param {}={}: expected {expected}, like the default",
                        o.name, o.value
                    ),
                )
                .at(
                    slot.span.clone(),
                    "the default's type decides the override's",
                ),
            ),
        }
    }
    params
}

fn convert_override(default: &ParamValue, text: &str) -> Result<ParamValue, &'static str> {
    match default {
        ParamValue::String(_) => Ok(ParamValue::String(text.to_string())),
        ParamValue::Integer(_) => text
            .trim()
            .parse()
            .map(ParamValue::Integer)
            .map_err(|_| "an integer"),
        ParamValue::Float(_) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(ParamValue::Float)
            .ok_or("a number"),
        ParamValue::Bool(_) => match text.trim() {
            "true" => Ok(ParamValue::Bool(true)),
            "false" => Ok(ParamValue::Bool(false)),
            _ => Err("`true` or `false`"),
        },
    }
}

/// Maps each step id to its first index, reporting duplicates.
fn index_steps(steps: &[RawStep], diags: &mut Diagnostics) -> HashMap<String, usize> {
    let mut ids: HashMap<String, usize> = HashMap::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let Some(id) = &step.id else { continue };
        if let Some(&first) = ids.get(&id.value) {
            let first_span = steps[first].id.as_ref().map_or(0..0, |f| f.span.clone());
            diags.push(
                Diagnostic::new(
                    Code::DuplicateStep,
                    format!("two steps have the id `{}`", id.value),
                )
                .at(id.span.clone(), "used again here")
                .also(first_span, "first used here")
                .help("step ids must be unique: rename one of them"),
            );
        } else {
            ids.insert(id.value.clone(), i);
        }
    }
    ids
}

struct Compiler<'a> {
    registry: &'a Registry,
    params: &'a [(String, Spanned<ParamValue>)],
    diags: &'a mut Diagnostics,
}

impl<'a> Compiler<'a> {
    fn step(
        &mut self,
        raw: &RawWorkflow,
        s: &RawStep,
        ids: &HashMap<String, usize>,
    ) -> (Option<Step>, Vec<StepRef>) {
        let mut refs = Vec::new();
        let action = s.action.as_ref().and_then(|a| self.action(a));
        let args = match (action, &s.with) {
            (Some(action), with) => self.args(action, with.as_ref(), &s.span, &mut refs),
            (None, _) => None,
        };
        let rollback = s.rollback.as_ref().and_then(|r| {
            let action = r.action.as_ref().and_then(|a| self.action(a))?;
            // A compensation may read any step's outputs, its own step's included; it adds no
            // dependency, because it runs after the step it undoes.
            let mut rollback_refs = Vec::new();
            let args = self.args(action, r.with.as_ref(), &r.span, &mut rollback_refs)?;
            for reference in &rollback_refs {
                self.check_ref_target(reference, ids);
            }
            Some(Compensation {
                action: action.spec().name.to_string(),
                args,
            })
        });
        let (Some(id), Some(action), Some(args)) = (&s.id, action, args) else {
            return (None, refs);
        };
        let Some((timeout, retry)) = self.timing(raw, s, action, &args) else {
            return (None, refs);
        };
        let hint = action.duration_hint(&args);
        let (estimate, estimate_source) = match (s.estimate, hint) {
            (Some(e), _) => (Some(e), EstimateSource::Declared),
            (None, Some(h)) => (Some(h), EstimateSource::Action),
            (None, None) => (None, EstimateSource::None),
        };
        let step = Step {
            id: id.value.clone(),
            action: action.spec().name.to_string(),
            kind: if action.spec().name == "approval" {
                StepKind::Approval
            } else {
                StepKind::Action
            },
            effect: action.spec().effect,
            probe: action.has_probe(),
            executable: action.executable(),
            args,
            needs: Vec::new(),
            timeout,
            retry,
            rollback,
            idempotent: s.idempotent.unwrap_or(action.spec().idempotent),
            estimate,
            estimate_source,
            marks_recovered: s.marks_recovered.is_some(),
            measures_rpo: s.measures_rpo.is_some(),
            span: s.span.clone(),
        };
        (Some(step), refs)
    }

    /// The step's timeout and retry policy. An action with its own timeout (an approval) takes
    /// neither from the step nor from `[defaults]`; an action that takes a set time (a `wait`)
    /// must fit in its timeout, or it could never succeed.
    fn timing(
        &mut self,
        raw: &RawWorkflow,
        s: &RawStep,
        action: &dyn Action,
        args: &Args,
    ) -> Option<(Option<Duration>, RawRetry)> {
        let name = action.spec().name;
        if let Some(own) = action.own_timeout(args) {
            if s.timeout.is_some() || s.retry.is_some() {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("`{name}` steps take their timeout from `with.timeout` and are never retried"),
                    )
                    .at(s.span.clone(), "remove `timeout` and `retry` from this step")
                    .help("set the time to wait for a decision with `with = { timeout = \"30m\", ... }`"),
                );
                return None;
            }
            return Some((Some(own), NO_RETRY));
        }
        let (timeout, from) = match (s.timeout, raw.defaults.timeout) {
            (Some(t), _) => (Some(t), "the step's `timeout`"),
            (None, Some(t)) => (Some(t), "`[defaults]`"),
            (None, None) => (None, ""),
        };
        if let (Some(t), Some(takes)) = (timeout, action.duration_hint(args))
            && takes >= t
        {
            self.diags.push(
                Diagnostic::new(
                    Code::BadParam,
                    format!(
                        "this `{name}` takes {} but its timeout is {} (from {from}): it could never succeed",
                        format_duration(takes),
                        format_duration(t)
                    ),
                )
                .at(s.span.clone(), "always times out")
                .help("give the step a longer `timeout` than its duration"),
            );
            return None;
        }
        Some((timeout, s.retry.or(raw.defaults.retry).unwrap_or(NO_RETRY)))
    }

    fn action(&mut self, name: &Spanned<String>) -> Option<&'a dyn Action> {
        let registry: &'a Registry = self.registry;
        if let Some(action) = registry.get(&name.value) {
            return Some(action);
        }
        let help = did_you_mean(&name.value, registry.names()).unwrap_or_else(|| {
            format!(
                "known actions: {}",
                registry.names().collect::<Vec<_>>().join(", ")
            )
        });
        self.diags.push(
            Diagnostic::new(
                Code::UnknownAction,
                format!("unknown action `{}`", name.value),
            )
            .at(name.span.clone(), "no such action")
            .help(help),
        );
        None
    }

    /// Checks a `with` table against the action's schema and turns it into [`Args`].
    fn args(
        &mut self,
        action: &dyn Action,
        with: Option<&Spanned<Table>>,
        owner: &Span,
        refs: &mut Vec<StepRef>,
    ) -> Option<Args> {
        let spec = action.spec();
        let empty = Table::default();
        let (table, table_span) =
            with.map_or((&empty, owner.clone()), |w| (&w.value, w.span.clone()));
        let mut ok = true;
        let mut args = Args::default();
        let mut spans: HashMap<&str, Span> = HashMap::new();
        for (key, node) in &table.entries {
            let Some(param) = spec.params.iter().find(|p| p.name == key.name) else {
                ok = false;
                let help = did_you_mean(&key.name, spec.params.iter().map(|p| p.name))
                    .unwrap_or_else(|| {
                        if spec.params.is_empty() {
                            format!("`{}` takes no parameters", spec.name)
                        } else {
                            format!(
                                "`{}` takes: {}",
                                spec.name,
                                spec.params
                                    .iter()
                                    .map(|p| p.name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    });
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownParam,
                        format!("`{}` has no parameter `{}`", spec.name, key.name),
                    )
                    .at(key.span.clone(), "unknown parameter")
                    .help(help),
                );
                continue;
            };
            if param.literal && !self.written_out(spec.name, param.name, node) {
                ok = false;
                continue;
            }
            let Some(arg) = self.arg(node, refs) else {
                ok = false;
                continue;
            };
            if let Err(why) = param.ty.check(&arg) {
                ok = false;
                self.diags.push(
                    Diagnostic::new(
                        type_error_code(param.ty),
                        format!("`{}` of `{}`: {why}", param.name, spec.name),
                    )
                    .at(
                        node.span.clone(),
                        format!("expected {}", param.ty.describe()),
                    )
                    .help(param.doc),
                );
                continue;
            }
            spans.insert(param.name, node.span.clone());
            args.entries.push((param.name.to_string(), arg));
        }
        for param in spec.params.iter().filter(|p| p.required) {
            if table.get(param.name).is_none() {
                ok = false;
                self.diags.push(
                    Diagnostic::new(
                        Code::MissingParam,
                        format!(
                            "`{}` needs the parameter `{}` ({})",
                            spec.name, param.name, param.doc
                        ),
                    )
                    .at(table_span.clone(), format!("`{}` is missing", param.name))
                    .help(format!(
                        "add `{} = ...` ({}) to `with`",
                        param.name,
                        param.ty.describe()
                    )),
                );
            }
        }
        if !ok {
            return None;
        }
        let problems = action.check(&args);
        for problem in &problems {
            let span = problem
                .param
                .and_then(|p| spans.get(p).cloned())
                .unwrap_or_else(|| table_span.clone());
            self.diags.push(
                Diagnostic::new(
                    Code::BadParam,
                    format!("`{}`: {}", spec.name, problem.message),
                )
                .at(span, "here"),
            );
        }
        problems.is_empty().then_some(args)
    }

    /// Checks that a parameter that must be written out (an approval's policy) holds no
    /// `${...}` reference, reporting the first one found.
    fn written_out(&mut self, action: &str, param: &str, node: &Node) -> bool {
        let Some(reference) = first_reference(node) else {
            return true;
        };
        self.diags.push(
            Diagnostic::new(
                Code::ReferenceInPolicy,
                format!(
                    "`{param}` of `{action}` must be written out: it is part of the approval's policy, which no `--param`, environment or step output may change"
                ),
            )
            .at(reference.clone(), "a reference here")
            .help("write the value itself (`quorum = 2`, `timeout = \"30m\"`, `approvers = [\"sre-lead\"]`); only `message` may hold references"),
        );
        false
    }

    fn arg(&mut self, node: &Node, refs: &mut Vec<StepRef>) -> Option<Arg> {
        Some(match &node.kind {
            NodeKind::String(text) => return self.text(text, &node.span, refs),
            NodeKind::Integer(i) => Arg::Integer(*i),
            NodeKind::Float(f) => Arg::Float(*f),
            NodeKind::Bool(b) => Arg::Bool(*b),
            NodeKind::Datetime(d) => Arg::Text(Template::literal(d.clone())),
            NodeKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.arg(item, refs) {
                        Some(a) => out.push(a),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Arg::List(out)
            }
            NodeKind::Table(table) => {
                let mut out = Vec::with_capacity(table.entries.len());
                let mut ok = true;
                for (k, v) in &table.entries {
                    match self.arg(v, refs) {
                        Some(a) => out.push((k.name.clone(), a)),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Arg::Map(out)
            }
        })
    }

    /// Parses a string's references and substitutes `${params.X}`. A string that is exactly
    /// one parameter reference takes the parameter's type (`ttl = "${params.ttl}"` stays an
    /// integer).
    fn text(&mut self, text: &str, span: &Span, refs: &mut Vec<StepRef>) -> Option<Arg> {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(Code::BadTemplate, e.message)
                        .at(span.clone(), "malformed reference")
                        .help("references read `${params.NAME}`, `${steps.ID.outputs.KEY}` or `${env.NAME}`"),
                );
                return None;
            }
        };
        if let [Segment::Param(name)] = template.segments.as_slice() {
            let value = self.param(name, span)?;
            return Some(match value {
                ParamValue::String(s) => Arg::Text(Template::literal(s)),
                ParamValue::Integer(i) => Arg::Integer(i),
                ParamValue::Float(f) => Arg::Float(f),
                ParamValue::Bool(b) => Arg::Bool(b),
            });
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(template.segments.len());
        let mut ok = true;
        for segment in template.segments {
            let segment = match segment {
                Segment::Param(name) => match self.param(&name, span) {
                    Some(v) => Segment::Literal(v.to_string()),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                Segment::StepOutput { step, key } => {
                    refs.push(StepRef {
                        step: step.clone(),
                        key: key.clone(),
                        span: span.clone(),
                    });
                    Segment::StepOutput { step, key }
                }
                other => other,
            };
            // Keep adjacent literal text in one piece.
            if let (Segment::Literal(new), Some(Segment::Literal(prev))) =
                (&segment, segments.last_mut())
            {
                prev.push_str(new);
            } else {
                segments.push(segment);
            }
        }
        ok.then_some(Arg::Text(Template { segments }))
    }

    fn param(&mut self, name: &str, span: &Span) -> Option<ParamValue> {
        if let Some((_, value)) = self.params.iter().find(|(k, _)| k == name) {
            return Some(value.value.clone());
        }
        let help =
            did_you_mean(name, self.params.iter().map(|(k, _)| k.as_str())).unwrap_or_else(|| {
                if self.params.is_empty() {
                    "declare it under `[params]`".into()
                } else {
                    let names: Vec<_> = self.params.iter().map(|(k, _)| k.as_str()).collect();
                    format!("declared parameters: {}", names.join(", "))
                }
            });
        self.diags.push(
            Diagnostic::new(
                Code::UnknownParamRef,
                format!("`${{params.{name}}}` names no parameter"),
            )
            .at(span.clone(), format!("`{name}` is not in `[params]`"))
            .help(help),
        );
        None
    }

    fn needs(&mut self, s: &RawStep, ids: &HashMap<String, usize>) -> Vec<usize> {
        let mut out = Vec::with_capacity(s.needs.len());
        for need in &s.needs {
            match ids.get(&need.value) {
                Some(&i) => out.push(i),
                None => {
                    let help = did_you_mean(&need.value, ids.keys().map(String::as_str))
                        .unwrap_or_else(|| {
                            "`needs` lists the ids of other steps of this workflow".into()
                        });
                    self.diags.push(
                        Diagnostic::new(
                            Code::UnknownNeeds,
                            format!("`needs` names an unknown step `{}`", need.value),
                        )
                        .at(need.span.clone(), "no step has this id")
                        .help(help),
                    );
                }
            }
        }
        out
    }

    /// Reports a reference to an unknown step; returns the step's index when it exists.
    fn check_ref_target(&mut self, r: &StepRef, ids: &HashMap<String, usize>) -> Option<usize> {
        if let Some(&i) = ids.get(&r.step) {
            return Some(i);
        }
        let help = did_you_mean(&r.step, ids.keys().map(String::as_str))
            .unwrap_or_else(|| "a reference names the id of a step of this workflow".into());
        self.diags.push(
            Diagnostic::new(
                Code::UnknownStepRef,
                format!(
                    "`${{steps.{}.outputs.{}}}` names an unknown step `{}`",
                    r.step, r.key, r.step
                ),
            )
            .at(r.span.clone(), "no step has this id")
            .help(help),
        );
        None
    }

    /// Checks a reference in a step's `with`; returns the implicit dependency it adds.
    fn step_ref(
        &mut self,
        r: &StepRef,
        raw: &[RawStep],
        ids: &HashMap<String, usize>,
    ) -> Option<usize> {
        let target = self.check_ref_target(r, ids)?;
        // The target's action decides its outputs; when the action is unknown, that is already
        // reported, and the output cannot be checked.
        let action_name = raw[target].action.as_ref()?.value.as_str();
        let action = self.registry.get(action_name)?;
        let outputs = action.spec().outputs;
        if !outputs.contains(&r.key.as_str()) {
            let help = did_you_mean(&r.key, outputs.iter().copied()).unwrap_or_else(|| {
                if outputs.is_empty() {
                    format!("`{action_name}` produces no outputs")
                } else {
                    format!("`{action_name}` outputs: {}", outputs.join(", "))
                }
            });
            self.diags.push(
                Diagnostic::new(
                    Code::UnknownOutputRef,
                    format!(
                        "step `{}` ({action_name}) has no output `{}`",
                        r.step, r.key
                    ),
                )
                .at(r.span.clone(), "unknown output")
                .help(help),
            );
        }
        Some(target)
    }

    fn markers(&mut self, raw: &RawWorkflow) {
        let recovered: Vec<&Span> = raw
            .steps
            .iter()
            .filter_map(|s| s.marks_recovered.as_ref())
            .collect();
        for extra in recovered.iter().skip(1) {
            self.diags.push(
                Diagnostic::new(Code::DuplicateRecovered, "more than one step is marked `recovered`")
                    .at((*extra).clone(), "marked again here")
                    .also(recovered[0].clone(), "first marked here")
                    .help("the RTO clock stops at one step: keep the marker on the step that proves service is back"),
            );
        }
        let measuring: Vec<&RawStep> = raw
            .steps
            .iter()
            .filter(|s| s.measures_rpo.is_some())
            .collect();
        for (n, step) in measuring.iter().enumerate() {
            let span = step.measures_rpo.clone().unwrap_or_default();
            if n > 0 {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadMeasures,
                        "more than one step has `measures = \"rpo\"`",
                    )
                    .at(span.clone(), "measured again here")
                    .also(
                        measuring[0].measures_rpo.clone().unwrap_or_default(),
                        "first measured here",
                    ),
                );
            }
            if let Some(action) = step
                .action
                .as_ref()
                .and_then(|a| self.registry.get(&a.value))
                && !action.spec().outputs.contains(&"rpo_seconds")
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadMeasures,
                        format!("`{}` cannot measure RPO: it has no `rpo_seconds` output", action.spec().name),
                    )
                    .at(span, "this action does not measure data loss")
                    .help("RPO is measured by rds.replica_lag, rds.restore_point_in_time or rds.restore_from_snapshot"),
                );
            }
        }
    }
}

/// The code of a value that does not have its parameter's type: durations have their own.
fn type_error_code(ty: ParamType) -> Code {
    if ty == ParamType::Duration {
        Code::BadDuration
    } else {
        Code::BadParam
    }
}

/// The span of the first string in `node` (or in its arrays and tables) that holds a `${`.
fn first_reference(node: &Node) -> Option<&Span> {
    match &node.kind {
        NodeKind::String(text) => text.contains("${").then_some(&node.span),
        NodeKind::Array(items) => items.iter().find_map(first_reference),
        NodeKind::Table(table) => table.entries.iter().find_map(|(_, v)| first_reference(v)),
        _ => None,
    }
}
