//! A step's `with` table checked against its action's schema and turned into [`Args`]:
//! unknown, missing and ill-typed parameters reported, an approval's policy written out
//! rather than referenced, and the action's own checks run. Strings go to `references`,
//! which resolves what they refer to.

use std::collections::HashMap;

use super::Compiler;
use super::references::StepRef;
use crate::actions::{Action, Arg, Args, ParamType};
use crate::diagnostic::{Code, Diagnostic, Span, did_you_mean};
use crate::workflow::{Node, NodeKind, Spanned, Table, Template};

impl Compiler<'_> {
    /// Checks a `with` table against the action's schema and turns it into [`Args`].
    pub(super) fn args(
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
