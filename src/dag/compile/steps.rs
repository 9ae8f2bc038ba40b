//! One step compiled: its id among the others, its action, its arguments (through `args`),
//! its rollback, its timeout and retry policy, and the `recovered` and `measures = "rpo"`
//! markers, of which a workflow has at most one each. Dependencies are added afterwards, in
//! `references`, once every step's action is known.

use std::collections::HashMap;
use std::time::Duration;

use super::Compiler;
use super::references::StepRef;
use crate::actions::{Action, Args, Registry};
use crate::dag::{ApprovalPolicy, Compensation, EstimateSource, Step, StepKind};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, Span, did_you_mean};
use crate::workflow::{NO_RETRY, RawRetry, RawStep, RawWorkflow, Spanned, format_duration};

/// Maps each step id to its first index, reporting duplicates.
pub(super) fn index_steps(steps: &[RawStep], diags: &mut Diagnostics) -> HashMap<String, usize> {
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

impl<'a> Compiler<'a> {
    pub(super) fn step(
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
            kind: if std::ptr::eq(action.spec(), &raw const crate::actions::APPROVAL) {
                StepKind::Approval(Box::new(ApprovalPolicy::from_args(&args)))
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

    pub(super) fn markers(&mut self, raw: &RawWorkflow) {
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
