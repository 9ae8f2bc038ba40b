//! Secrets stay secret, in every form (SPEC §5.8.4, §5.8.8). A run reads `${env.NAME}` at run
//! time; whatever any of its steps produces (outputs, such as a shell step's `stdout_tail`,
//! error messages, a probe's or a compensation's answer) is scrubbed of every such value the
//! workflow reads anywhere, before it becomes an engine input: the value never reaches the
//! journal, the store, the terminal, the reports or the control socket, and reads
//! `${env.NAME}` there instead. A step that never names the secret is scrubbed of it too: it
//! inherits the environment and can print it.
//!
//! A value is looked for in every form a step or a log line may give it ([`forms`]): as read,
//! without the whitespace or newline around it, line by line, and escaped (JSON at depths 1 to
//! 3, shell quoting, Rust's `{:?}`).
//!
//! While a run is driven, its redactor is also registered with the process's [`Redactors`],
//! so that the log writer replaces its secrets in the lines about the run, and in the lines
//! about no run at all; the registration ends with the run ([`Registered`]).

mod runs;

pub use runs::{Redactors, Registered};

use std::collections::HashSet;

use aho_corasick::AhoCorasick;
use serde_json::Value;

use crate::actions::{Arg, Args, Outputs};
use crate::dag::CompiledWorkflow;
use crate::workflow::{Segment, Template};

/// A line of a multi-line secret is a form of it from this many characters (trimmed): a
/// shorter one would be found by chance in ordinary text.
const MIN_LINE_CHARS: usize = 4;

/// JSON escapes a value may be under: a string in a JSON document (depth 1), that document in
/// a string of a JSON log line (2), and once more for a log line quoting such a line (3).
const JSON_DEPTH: usize = 3;

/// The secrets of a run, and what to show in their place.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// (value as read, placeholder), each once.
    secrets: Vec<(String, String)>,
    /// Finds every form of every secret; `None` when there is no secret.
    matcher: Option<Matcher>,
}

/// Every form of every secret, and the placeholder of each.
#[derive(Debug, Clone)]
struct Matcher {
    finder: Finder,
    /// The placeholder of each form, by pattern index.
    placeholders: Vec<String>,
    /// The length of each form, by pattern index: the longest form found wins a place.
    lengths: Vec<usize>,
}

/// How the forms are found in a text.
#[derive(Debug, Clone)]
enum Finder {
    /// All at once, in one pass.
    Automaton(AhoCorasick),
    /// Each in turn: only when the forms outgrow the automaton's limits, far beyond any
    /// environment's size. Slower, never weaker.
    EachInTurn(Vec<String>),
}

impl Matcher {
    /// Every place a form is found in `text`: (start, end, form), overlaps included.
    fn find(&self, text: &str) -> Vec<(usize, usize, usize)> {
        match &self.finder {
            Finder::Automaton(forms) => forms
                .find_overlapping_iter(text)
                .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
                .collect(),
            Finder::EachInTurn(forms) => forms
                .iter()
                .enumerate()
                .flat_map(|(i, form)| {
                    text.match_indices(form.as_str())
                        .map(move |(start, found)| (start, start + found.len(), i))
                })
                .collect(),
        }
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Redactor {
    /// A redactor with nothing to hide.
    const EMPTY: Self = Self {
        secrets: Vec::new(),
        matcher: None,
    };

    /// The redactor of `(NAME, value)` pairs: `value` is shown as `${env.NAME}`. Empty values
    /// are nothing to hide.
    pub fn new<N: AsRef<str>, V: Into<String>>(secrets: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut redactor = Self::EMPTY;
        redactor.add(
            secrets
                .into_iter()
                .map(|(name, value)| (value.into(), placeholder(name.as_ref()))),
        );
        redactor
    }

    /// The redactor of a run of `workflow`: every `${env.NAME}` it reads anywhere (every
    /// step's parameters, every rollback's, the `events` url), with the value it has now. An
    /// unset variable is nothing to hide.
    pub fn for_workflow(workflow: &CompiledWorkflow) -> Self {
        let mut names = Vec::new();
        for step in &workflow.steps {
            env_names_in_args(&step.args, &mut names);
            if let Some(rollback) = &step.rollback {
                env_names_in_args(&rollback.args, &mut names);
            }
        }
        if let Some(events) = &workflow.events {
            env_names_in(&events.url, &mut names);
        }
        names.sort();
        names.dedup();
        Self::new(
            names
                .into_iter()
                .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value))),
        )
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The redactor of every secret of every one of `redactors`.
    pub fn union<'a>(redactors: impl IntoIterator<Item = &'a Redactor>) -> Self {
        let mut union = Self::EMPTY;
        union.add(
            redactors
                .into_iter()
                .flat_map(|redactor| redactor.secrets.iter().cloned()),
        );
        union
    }

    /// `text` with every form of every secret replaced by its placeholder. Where forms
    /// overlap (one secret inside another, a line of a secret and the whole of it), the
    /// whole stretch they cover is replaced, by the placeholder of the longest, so that no
    /// part of either is left.
    pub fn scrub(&self, text: &str) -> String {
        let Some(matcher) = &self.matcher else {
            return text.to_string();
        };
        let mut found = matcher.find(text);
        if found.is_empty() {
            return text.to_string();
        }
        found.sort_unstable_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut out = String::with_capacity(text.len());
        let mut written = 0;
        let mut stretch: Option<(usize, usize, usize)> = None;
        for (start, end, form) in found {
            match &mut stretch {
                Some((_, stretch_end, longest)) if start < *stretch_end => {
                    *stretch_end = (*stretch_end).max(end);
                    if matcher.lengths[form] > matcher.lengths[*longest] {
                        *longest = form;
                    }
                }
                _ => {
                    if let Some((s, e, longest)) = stretch.replace((start, end, form)) {
                        out.push_str(&text[written..s]);
                        out.push_str(&matcher.placeholders[longest]);
                        written = e;
                    }
                }
            }
        }
        if let Some((s, e, longest)) = stretch {
            out.push_str(&text[written..s]);
            out.push_str(&matcher.placeholders[longest]);
            written = e;
        }
        out.push_str(&text[written..]);
        out
    }

    /// Every string in `outputs` scrubbed, keys included.
    pub fn scrub_outputs(&self, outputs: Outputs) -> Outputs {
        if self.is_empty() {
            return outputs;
        }
        outputs
            .into_iter()
            .map(|(k, v)| (self.scrub(&k), self.scrub_value(v)))
            .collect()
    }

    fn scrub_value(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.scrub(&s)),
            Value::Array(items) => items.into_iter().map(|v| self.scrub_value(v)).collect(),
            Value::Object(map) => Value::Object(self.scrub_outputs(map)),
            other => other,
        }
    }

    /// Adds `(value, placeholder)` secrets not already there, and finds their forms.
    fn add(&mut self, secrets: impl IntoIterator<Item = (String, String)>) {
        let before = self.secrets.len();
        for (value, placeholder) in secrets {
            if !value.is_empty() && !self.secrets.iter().any(|(v, _)| *v == value) {
                self.secrets.push((value, placeholder));
            }
        }
        if self.secrets.len() == before {
            return;
        }
        let mut patterns: Vec<(String, &str)> = Vec::new();
        let mut seen = HashSet::new();
        for (value, placeholder) in &self.secrets {
            for form in forms(value) {
                if seen.insert(form.clone()) {
                    patterns.push((form, placeholder));
                }
            }
        }
        let finder = match AhoCorasick::new(patterns.iter().map(|(form, _)| form)) {
            Ok(automaton) => Finder::Automaton(automaton),
            Err(_) => Finder::EachInTurn(patterns.iter().map(|(form, _)| form.clone()).collect()),
        };
        self.matcher = Some(Matcher {
            finder,
            placeholders: patterns.iter().map(|(_, p)| (*p).to_string()).collect(),
            lengths: patterns.iter().map(|(form, _)| form.len()).collect(),
        });
    }
}

/// What `${env.NAME}` reads as where its value would be.
fn placeholder(name: &str) -> String {
    format!("${{env.{name}}}")
}

/// Every form `value` may take in what a step or a log line produces: the value, the value
/// without surrounding whitespace or newlines, each line of it ([`MIN_LINE_CHARS`] or more,
/// trimmed); and each of these quoted for a shell (single quotes as `sh -x` and `shlex`
/// write them, backslashes as `printf %q` does, inside double quotes), as Rust's `{:?}`
/// writes it, and JSON-escaped up to [`JSON_DEPTH`] times (as serde writes it, and with
/// `\uXXXX` for what is not ASCII, as Python does). Each once, none empty.
fn forms(value: &str) -> Vec<String> {
    let mut bases = vec![value, value.trim()];
    bases.extend(
        value
            .lines()
            .map(str::trim)
            .filter(|line| line.chars().count() >= MIN_LINE_CHARS),
    );
    let mut out: Vec<String> = Vec::new();
    let mut push = |form: String| {
        if !form.is_empty() && !out.contains(&form) {
            out.push(form);
        }
    };
    for base in bases {
        for quoted in [
            base.to_string(),
            base.replace('\'', r"'\''"),
            base.replace('\'', r#"'"'"'"#),
            backslashed(base),
            double_quoted(base),
            debug_escaped(base),
        ] {
            for ascii in [false, true] {
                let mut form = quoted.clone();
                for _ in 0..JSON_DEPTH {
                    form = json_escaped(&form, ascii);
                    push(form.clone());
                }
            }
            push(quoted);
        }
    }
    out
}

/// `text` as a JSON string holds it, without the quotes; with `ascii`, what is not ASCII as
/// `\uXXXX` (surrogate pairs beyond the first plane).
fn json_escaped(text: &str, ascii: bool) -> String {
    let quoted = Value::String(text.to_string()).to_string();
    let inner = &quoted[1..quoted.len() - 1];
    if !ascii || inner.is_ascii() {
        return inner.to_string();
    }
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `text` with shell metacharacters escaped by a backslash, as bash's `printf %q` writes a
/// line (`~` and `#` only at the start, where they mean something).
fn backslashed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if " '\"\\$`,!&|;()<>{}[]*?^".contains(c) || (i == 0 && (c == '~' || c == '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as it is written between double quotes in a shell.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as Rust's `{:?}` writes it (a log field recorded with `?`), without the quotes.
fn debug_escaped(text: &str) -> String {
    let quoted = format!("{text:?}");
    quoted[1..quoted.len() - 1].to_string()
}

fn env_names_in_args(args: &Args, out: &mut Vec<String>) {
    for (_, arg) in &args.entries {
        env_names_in_arg(arg, out);
    }
}

fn env_names_in_arg(arg: &Arg, out: &mut Vec<String>) {
    match arg {
        Arg::Text(t) => env_names_in(t, out),
        Arg::List(items) => items.iter().for_each(|i| env_names_in_arg(i, out)),
        Arg::Map(entries) => entries.iter().for_each(|(_, v)| env_names_in_arg(v, out)),
        Arg::Integer(_) | Arg::Float(_) | Arg::Bool(_) => {}
    }
}

fn env_names_in(template: &Template, out: &mut Vec<String>) {
    for segment in &template.segments {
        if let Segment::Env(name) = segment {
            out.push(name.clone());
        }
    }
}

#[cfg(test)]
mod tests;
