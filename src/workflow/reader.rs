//! Reads a workflow file into a [`RawWorkflow`], reporting every structural problem (syntax,
//! unknown and missing keys, wrong types, bad durations and names) in one pass.
//!
//! What the reader cannot check alone (actions, references, the graph) belongs to the
//! compiler. The reader never panics, whatever the bytes.

use std::time::Duration;

use toml::de::DeTable;

use super::duration::parse_duration;
use super::node::{Key, Node, NodeKind, Table, from_de_table};
use super::raw::{
    OnFailure, ParamValue, RawDefaults, RawEvents, RawHeader, RawParam, RawRetry, RawRollback,
    RawStep, RawWorkflow, RunEventKind, Spanned, WorkflowKind,
};
use super::template::{Segment, Template};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};

const TOP_KEYS: &[&str] = &["workflow", "params", "defaults", "steps"];
const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "kind",
    "description",
    "rto",
    "rpo",
    "concurrency",
    "on_failure",
    "allowed_signers",
    "events",
];
const EVENTS_KEYS: &[&str] = &["url", "on"];
const DEFAULTS_KEYS: &[&str] = &["timeout", "retry"];
const RETRY_KEYS: &[&str] = &["attempts", "initial", "max"];
/// The keys a step may have.
pub const STEP_KEYS: &[&str] = &[
    "id",
    "action",
    "with",
    "needs",
    "timeout",
    "retry",
    "rollback",
    "idempotent",
    "estimate",
    "marks",
    "measures",
    "when",
];
const ROLLBACK_KEYS: &[&str] = &["action", "with"];

/// Default retry policy when neither the step nor `[defaults]` gives one: a single attempt.
pub const NO_RETRY: RawRetry = RawRetry {
    attempts: 1,
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// Parses and reads `source`. Returns `None` when the TOML itself does not parse (the syntax
/// errors are in `diags`); otherwise a raw workflow with whatever could be read, and every
/// problem found in `diags`.
pub fn read_workflow(source: &SourceFile, diags: &mut Diagnostics) -> Option<RawWorkflow> {
    let (doc, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            diags.push(
                Diagnostic::new(
                    Code::TomlSyntax,
                    format!("invalid TOML: {}", first_line(error.message())),
                )
                .at(span, "here"),
            );
        }
        return None;
    }
    let root = from_de_table(doc.get_ref());
    let mut reader = Reader { source, diags };
    Some(reader.workflow(&root))
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

struct Reader<'a> {
    source: &'a SourceFile,
    diags: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn workflow(&mut self, root: &Table) -> RawWorkflow {
        self.unknown_keys(root, TOP_KEYS, "at the top level of a workflow");
        let mut raw = RawWorkflow::default();
        match root.get("workflow") {
            Some(node) => {
                if let Some(table) = self.table(node, "workflow") {
                    raw.header = self.header(table, node.span.clone());
                }
            }
            None => self.diags.push(
                Diagnostic::new(Code::MissingKey, "the `[workflow]` table is missing")
                    .at(0..0, "expected `[workflow]` with `name` and `kind`")
                    .help("start the file with:\n[workflow]\nname = \"my-failover\"\nkind = \"failover\""),
            ),
        }
        if let Some(node) = root.get("params")
            && let Some(table) = self.table(node, "params")
        {
            raw.params = self.params(table);
        }
        if let Some(node) = root.get("defaults")
            && let Some(table) = self.table(node, "defaults")
        {
            raw.defaults = self.defaults(table);
        }
        match root.get("steps") {
            Some(Node {
                kind: NodeKind::Array(items),
                span,
            }) => {
                if items.is_empty() {
                    self.diags.push(
                        Diagnostic::new(Code::MissingKey, "a workflow needs at least one step")
                            .at(span.clone(), "no steps here"),
                    );
                }
                for (index, item) in items.iter().enumerate() {
                    let context = format!("steps[{index}]");
                    if let Some(table) = self.table(item, &context) {
                        raw.steps.push(self.step(table, self.head(&item.span)));
                    }
                }
            }
            Some(other) => self.diags.push(
                Diagnostic::new(
                    Code::WrongType,
                    format!(
                        "`steps` must be an array of tables, found {}",
                        other.kind.type_name()
                    ),
                )
                .at(other.span.clone(), "not an array of tables")
                .help("write each step under its own `[[steps]]` header"),
            ),
            None => self.diags.push(
                Diagnostic::new(Code::MissingKey, "the workflow has no steps")
                    .at(0..0, "no `[[steps]]` in this file")
                    .help("add at least one step:\n[[steps]]\nid = \"check\"\naction = \"noop\""),
            ),
        }
        raw
    }

    /// The first line of a span: where to point "missing key" diagnostics for a table.
    fn head(&self, span: &Span) -> Span {
        let text = &self.source.text;
        let start = span.start.min(text.len());
        let end = text[start..span.end.clamp(start, text.len())]
            .find('\n')
            .map_or(span.end, |i| start + i);
        start..end.max(start)
    }

    fn header(&mut self, table: &Table, span: Span) -> RawHeader {
        self.unknown_keys(table, WORKFLOW_KEYS, "in `[workflow]`");
        let head = self.head(&span);
        let mut header = RawHeader {
            span: head.clone(),
            ..RawHeader::default()
        };
        header.name = self.required_string(table, "name", &head, "`[workflow]`");
        if let Some(name) = &header.name {
            self.check_name(name, "workflow name");
        }
        header.kind = self
            .required_string(table, "kind", &head, "`[workflow]`")
            .and_then(|kind| {
                self.enumerated(&kind, WorkflowKind::NAMES, "kind", WorkflowKind::from_name)
            });
        header.description = self.string(table, "description").map(|s| s.value);
        header.rto = self.duration(table, "rto");
        header.rpo = self.duration(table, "rpo");
        if let Some(node) = table.get("concurrency")
            && let Some(n) = self.integer(node, "concurrency")
        {
            match u32::try_from(n) {
                Ok(n) if n >= 1 => header.concurrency = Some(Spanned::new(n, node.span.clone())),
                _ => self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("`concurrency` must be at least 1, found {n}"),
                    )
                    .at(node.span.clone(), "must be a positive integer"),
                ),
            }
        }
        header.on_failure = self.string(table, "on_failure").and_then(|s| {
            self.enumerated(&s, OnFailure::NAMES, "on_failure", OnFailure::from_name)
        });
        header.allowed_signers = self.string(table, "allowed_signers");
        header.events = table.get("events").and_then(|node| self.events(node));
        header
    }

    /// `events = { url = "...", on = [...] }`: every name known, the url a webhook.
    fn events(&mut self, node: &Node) -> Option<RawEvents> {
        let table = self.table(node, "events")?;
        self.unknown_keys(table, EVENTS_KEYS, "in `events`");
        let url = self.required_string(table, "url", &node.span, "`events`");
        let mut on = Vec::new();
        match table.get("on") {
            Some(list) => {
                for name in self.string_list(list, "on") {
                    if let Some(kind) = self.enumerated(
                        &name,
                        RunEventKind::NAMES,
                        "events.on",
                        RunEventKind::from_name,
                    ) && !on.contains(&kind.value)
                    {
                        on.push(kind.value);
                    }
                }
            }
            None => on.extend_from_slice(RunEventKind::ALL),
        }
        let url = self.webhook(url?)?;
        Some(RawEvents { url, on })
    }

    /// The events webhook: text and `${env.NAME}` (read when the run starts, never stored),
    /// shaped like an http(s) URL as far as the file tells.
    fn webhook(&mut self, url: Spanned<String>) -> Option<Spanned<Template>> {
        let template = match Template::parse(&url.value) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(Code::BadTemplate, format!("events `url`: {}", e.message))
                        .at(url.span.clone(), "bad reference"),
                );
                return None;
            }
        };
        let help = "write the webhook, or read it from the environment when the run starts: url = \"${env.SLACK_WEBHOOK}\"";
        if template
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Param(_) | Segment::StepOutput { .. }))
        {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    "the events `url` may hold only text and `${env.NAME}`",
                )
                .at(url.span.clone(), "not known when the run starts")
                .help(help),
            );
            return None;
        }
        let shape = match (template.as_literal(), template.segments.first()) {
            (Some(text), _) => webhook_shape(&text),
            (None, Some(Segment::Literal(start)))
                if !start.starts_with("https://") && !start.starts_with("http://") =>
            {
                Err("it must start with https:// or http://".into())
            }
            _ => Ok(()),
        };
        if let Err(why) = shape {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("the events `url` is not a webhook URL: {why}"),
                )
                .at(url.span.clone(), "not an http(s) URL")
                .help(help),
            );
            return None;
        }
        Some(Spanned::new(template, url.span))
    }

    fn params(&mut self, table: &Table) -> Vec<RawParam> {
        let mut params = Vec::new();
        for (key, node) in &table.entries {
            let value = match &node.kind {
                NodeKind::String(s) => ParamValue::String(s.clone()),
                NodeKind::Integer(i) => ParamValue::Integer(*i),
                NodeKind::Float(f) if f.is_finite() => ParamValue::Float(*f),
                NodeKind::Bool(b) => ParamValue::Bool(*b),
                other => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::WrongType,
                            format!(
                                "parameter `{}` must be a string, integer, float or boolean, found {}",
                                key.name,
                                other.type_name()
                            ),
                        )
                        .at(node.span.clone(), "not a scalar"),
                    );
                    continue;
                }
            };
            if !is_param_name(&key.name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "parameter name `{}` may only hold letters, digits, `_` and `-`",
                            key.name
                        ),
                    )
                    .at(key.span.clone(), "invalid parameter name"),
                );
                continue;
            }
            params.push(RawParam {
                name: Spanned::new(key.name.clone(), key.span.clone()),
                value: Spanned::new(value, node.span.clone()),
            });
        }
        params
    }

    fn defaults(&mut self, table: &Table) -> RawDefaults {
        self.unknown_keys(table, DEFAULTS_KEYS, "in `[defaults]`");
        RawDefaults {
            timeout: self.duration(table, "timeout").map(|d| d.value),
            retry: table.get("retry").and_then(|node| self.retry(node)),
        }
    }

    fn retry(&mut self, node: &Node) -> Option<RawRetry> {
        let table = self.table(node, "retry")?;
        self.unknown_keys(table, RETRY_KEYS, "in `retry`");
        let head = node.span.clone();
        let attempts = match table.get("attempts") {
            Some(n) => {
                let value = self.integer(n, "attempts")?;
                match u32::try_from(value) {
                    Ok(a) if (1..=100).contains(&a) => a,
                    _ => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::InvalidValue,
                                format!("`attempts` must be between 1 and 100, found {value}"),
                            )
                            .at(n.span.clone(), "out of range")
                            .help("`attempts` counts the first try: 1 means no retry"),
                        );
                        return None;
                    }
                }
            }
            None => {
                self.missing(&head, "attempts", "`retry`");
                return None;
            }
        };
        let initial = self
            .duration(table, "initial")
            .map_or(NO_RETRY.initial, |d| d.value);
        let max = self
            .duration(table, "max")
            .map_or(NO_RETRY.max.max(initial), |d| d.value);
        if max < initial {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    "`retry.max` is shorter than `retry.initial`",
                )
                .at(head, "max < initial"),
            );
        }
        Some(RawRetry {
            attempts,
            initial,
            max,
        })
    }

    fn step(&mut self, table: &Table, head: Span) -> RawStep {
        self.unknown_keys(table, STEP_KEYS, "in a step");
        let mut step = RawStep {
            span: head.clone(),
            ..RawStep::default()
        };
        step.id = self.required_string(table, "id", &head, "a step");
        if let Some(id) = &step.id {
            self.check_name(id, "step id");
        }
        step.action = self.required_string(table, "action", &head, "a step");
        step.with = table.get("with").and_then(|node| {
            self.table(node, "with")
                .map(|t| Spanned::new(t.clone(), node.span.clone()))
        });
        if let Some(node) = table.get("needs") {
            step.needs = self.string_list(node, "needs");
        }
        step.timeout = self.duration(table, "timeout").map(|d| d.value);
        step.retry = table.get("retry").and_then(|node| self.retry(node));
        step.rollback = table.get("rollback").and_then(|node| self.rollback(node));
        step.idempotent = table
            .get("idempotent")
            .and_then(|node| self.boolean(node, "idempotent"));
        step.estimate = self.duration(table, "estimate").map(|d| d.value);
        if let Some(marks) = self.string(table, "marks") {
            if marks.value == "recovered" {
                step.marks_recovered = Some(marks.span);
            } else {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "`marks` can only be \"recovered\", found \"{}\"",
                            marks.value
                        ),
                    )
                    .at(marks.span, "unknown marker")
                    .help("`marks = \"recovered\"` stops the RTO clock when this step succeeds"),
                );
            }
        }
        if let Some(measures) = self.string(table, "measures") {
            if measures.value == "rpo" {
                step.measures_rpo = Some(measures.span);
            } else {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`measures` can only be \"rpo\", found \"{}\"", measures.value))
                        .at(measures.span, "unknown measure")
                        .help("`measures = \"rpo\"` takes this step's `rpo_seconds` output as the achieved RPO"),
                );
            }
        }
        if let Some(key) = table.key("when") {
            self.diags.push(
                Diagnostic::new(Code::Unsupported, "`when` (conditional steps) is not supported yet")
                    .at(key.span.clone(), "reserved for a later version")
                    .help("remove `when`: drctl refuses to guess, a condition silently ignored could run a step you meant to skip"),
            );
        }
        step
    }

    fn rollback(&mut self, node: &Node) -> Option<RawRollback> {
        let table = self.table(node, "rollback")?;
        self.unknown_keys(table, ROLLBACK_KEYS, "in `rollback`");
        let action = self.required_string(table, "action", &node.span, "`rollback`");
        let with = table.get("with").and_then(|w| {
            self.table(w, "with")
                .map(|t| Spanned::new(t.clone(), w.span.clone()))
        });
        Some(RawRollback {
            span: node.span.clone(),
            action,
            with,
        })
    }

    // ---- small typed readers; each reports its own problem and returns None on it ----

    fn unknown_keys(&mut self, table: &Table, allowed: &[&str], context: &str) {
        for (key, _) in &table.entries {
            if !allowed.contains(&key.name.as_str()) {
                self.unknown_key(key, allowed, context);
            }
        }
    }

    fn unknown_key(&mut self, key: &Key, allowed: &[&str], context: &str) {
        let help = did_you_mean(&key.name, allowed.iter().copied())
            .unwrap_or_else(|| format!("known keys {context}: {}", allowed.join(", ")));
        self.diags.push(
            Diagnostic::new(
                Code::UnknownKey,
                format!("unknown key `{}` {context}", key.name),
            )
            .at(key.span.clone(), "unknown key")
            .help(help),
        );
    }

    fn missing(&mut self, head: &Span, key: &str, context: &str) {
        self.diags.push(
            Diagnostic::new(
                Code::MissingKey,
                format!("{context} is missing the required key `{key}`"),
            )
            .at(head.clone(), format!("`{key}` is missing here")),
        );
    }

    fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        self.diags.push(
            Diagnostic::new(
                Code::WrongType,
                format!(
                    "`{what}` must be {expected}, found {}",
                    node.kind.type_name()
                ),
            )
            .at(node.span.clone(), format!("expected {expected}")),
        );
    }

    fn table<'t>(&mut self, node: &'t Node, what: &str) -> Option<&'t Table> {
        let table = node.as_table();
        if table.is_none() {
            self.wrong_type(node, what, "a table");
        }
        table
    }

    fn string(&mut self, table: &Table, key: &str) -> Option<Spanned<String>> {
        let node = table.get(key)?;
        match &node.kind {
            NodeKind::String(s) => Some(Spanned::new(s.clone(), node.span.clone())),
            _ => {
                self.wrong_type(node, key, "a string");
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &Table,
        key: &str,
        head: &Span,
        context: &str,
    ) -> Option<Spanned<String>> {
        if table.get(key).is_none() {
            self.missing(head, key, context);
            return None;
        }
        self.string(table, key)
    }

    fn integer(&mut self, node: &Node, what: &str) -> Option<i64> {
        if let NodeKind::Integer(i) = node.kind {
            Some(i)
        } else {
            self.wrong_type(node, what, "an integer");
            None
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        if let NodeKind::Bool(b) = node.kind {
            Some(b)
        } else {
            self.wrong_type(node, what, "`true` or `false`");
            None
        }
    }

    fn duration(&mut self, table: &Table, key: &str) -> Option<Spanned<Duration>> {
        let node = table.get(key)?;
        let NodeKind::String(text) = &node.kind else {
            self.wrong_type(node, key, "a duration string such as \"90s\"");
            return None;
        };
        match parse_duration(text) {
            Ok(d) => Some(Spanned::new(d, node.span.clone())),
            Err(why) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadDuration,
                        format!("`{key}` is not a valid duration: {why}"),
                    )
                    .at(node.span.clone(), "bad duration")
                    .help("durations look like `250ms`, `90s`, `15m`, `1h30m` or `2h`"),
                );
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        let NodeKind::Array(items) = &node.kind else {
            self.wrong_type(node, what, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                NodeKind::String(s) => out.push(Spanned::new(s.clone(), item.span.clone())),
                _ => self.wrong_type(item, what, "an array of strings"),
            }
        }
        out
    }

    fn enumerated<T>(
        &mut self,
        value: &Spanned<String>,
        names: &[&str],
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<Spanned<T>> {
        if let Some(v) = parse(&value.value) {
            return Some(Spanned::new(v, value.span.clone()));
        }
        let help = did_you_mean(&value.value, names.iter().copied())
            .unwrap_or_else(|| format!("use one of: {}", names.join(", ")));
        self.diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "`{what}` must be one of {}, found \"{}\"",
                    names.join(", "),
                    value.value
                ),
            )
            .at(value.span.clone(), "not allowed here")
            .help(help),
        );
        None
    }

    fn check_name(&mut self, name: &Spanned<String>, what: &str) {
        if !is_identifier(&name.value) {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!(
                        "{what} \"{}\" may only hold lowercase letters, digits and `-`",
                        name.value
                    ),
                )
                .at(name.span.clone(), "must match [a-z0-9-]+")
                .maybe_help(
                    suggest_identifier(&name.value).map(|s| format!("for example \"{s}\"")),
                ),
            );
        }
    }
}

/// Whether `url` looks like a webhook drctl can post to: `http(s)://HOST...`, no spaces. The
/// reason names no part of the URL (at run time it may be a secret).
pub fn webhook_shape(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("it must start with https:// or http://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("it names no host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it holds spaces or control characters".into());
    }
    Ok(())
}

/// Whether `s` matches `[a-z0-9-]+` (workflow names and step ids).
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn suggest_identifier(s: &str) -> Option<String> {
    let fixed: String = s
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    (is_identifier(&fixed) && fixed != s).then_some(fixed)
}

fn is_param_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
