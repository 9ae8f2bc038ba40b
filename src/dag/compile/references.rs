//! References, and the dependencies they make. `${params.X}` is replaced by the parameter's
//! value at compile time; `${steps.X.outputs.Y}` is kept for the run and must name a step of
//! this workflow and an output its action produces; it adds an implicit `needs` on that step.
//! The explicit `needs` are resolved here too.

use std::collections::HashMap;

use super::Compiler;
use crate::actions::Arg;
use crate::diagnostic::{Code, Diagnostic, Span, did_you_mean};
use crate::workflow::{ParamValue, RawStep, Segment, Template};

/// A `${steps.ID.outputs.KEY}` found in a step's parameters, with where it was written.
pub(super) struct StepRef {
    step: String,
    key: String,
    span: Span,
}

impl Compiler<'_> {
    /// Parses a string's references and substitutes `${params.X}`. A string that is exactly
    /// one parameter reference takes the parameter's type (`ttl = "${params.ttl}"` stays an
    /// integer).
    pub(super) fn text(&mut self, text: &str, span: &Span, refs: &mut Vec<StepRef>) -> Option<Arg> {
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

    pub(super) fn needs(&mut self, s: &RawStep, ids: &HashMap<String, usize>) -> Vec<usize> {
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
    pub(super) fn check_ref_target(
        &mut self,
        r: &StepRef,
        ids: &HashMap<String, usize>,
    ) -> Option<usize> {
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
    pub(super) fn step_ref(
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
}
