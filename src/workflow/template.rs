//! `${...}` references inside `with` strings: `${params.X}`, `${steps.ID.outputs.KEY}` and
//! `${env.NAME}`.

use std::fmt;

/// One piece of a string that may hold references.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text as written.
    Literal(String),
    /// `${params.NAME}`: replaced at compile time.
    Param(String),
    /// `${steps.ID.outputs.KEY}`: replaced at run time with a dependency's output.
    StepOutput {
        /// The step whose output is used.
        step: String,
        /// The output's name.
        key: String,
    },
    /// `${env.NAME}`: read from the environment at run time, never stored or printed.
    Env(String),
}

/// A string split into literal text and references. A parse error carries the byte range
/// of the bad `${...}` relative to the string and a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Template {
    /// The pieces, in order.
    pub segments: Vec<Segment>,
}

/// A malformed `${...}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte range within the string.
    pub range: std::ops::Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl Template {
    /// Splits `text` into literal text and references.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(pos) = rest.find("${") {
            literal.push_str(&rest[..pos]);
            let expr_start = offset + pos;
            let after = &rest[pos + 2..];
            let Some(close) = after.find('}') else {
                return Err(TemplateError {
                    range: expr_start..text.len(),
                    message: "`${` is never closed with `}`".into(),
                });
            };
            let expr = &after[..close];
            let range = expr_start..expr_start + close + 3;
            let segment = parse_expr(expr).map_err(|message| TemplateError {
                range: range.clone(),
                message,
            })?;
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(segment);
            let consumed = pos + 2 + close + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments })
    }

    /// A template of plain text.
    pub fn literal(text: impl Into<String>) -> Template {
        Template {
            segments: vec![Segment::Literal(text.into())],
        }
    }

    /// The text, when the template holds no reference.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Whether anything in it is only known at run time (step outputs or environment).
    pub fn is_runtime(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::StepOutput { .. } | Segment::Env(_)))
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_expr(expr: &str) -> Result<Segment, String> {
    let parts: Vec<&str> = expr.trim().split('.').collect();
    let expected = "expected `${params.NAME}`, `${steps.ID.outputs.KEY}` or `${env.NAME}`";
    match parts.as_slice() {
        ["params", name] if is_name(name) => Ok(Segment::Param((*name).to_string())),
        ["env", name] if is_name(name) => Ok(Segment::Env((*name).to_string())),
        ["steps", step, "outputs", key] if is_name(step) && is_name(key) => {
            Ok(Segment::StepOutput {
                step: (*step).to_string(),
                key: (*key).to_string(),
            })
        }
        ["steps", step, other, _] if is_name(step) => Err(format!(
            "`${{{expr}}}`: a step reference reads `outputs`, not `{other}`; {expected}"
        )),
        ["steps", _] | ["steps", _, _] => Err(format!(
            "`${{{expr}}}` is incomplete: a step reference reads `${{steps.ID.outputs.KEY}}`"
        )),
        [root, ..] if !["params", "env", "steps"].contains(root) => {
            let hint = crate::diagnostic::did_you_mean(root, ["params", "steps", "env"])
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Err(format!(
                "`${{{expr}}}`: unknown namespace `{root}`{hint}; {expected}"
            ))
        }
        _ => Err(format!(
            "`${{{expr}}}` is not a valid reference; {expected}"
        )),
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => f.write_str(s)?,
                Segment::Param(p) => write!(f, "${{params.{p}}}")?,
                Segment::StepOutput { step, key } => write!(f, "${{steps.{step}.outputs.{key}}}")?,
                Segment::Env(e) => write!(f, "${{env.{e}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_references() {
        let t = Template::parse("https://${params.host}/x?${steps.a.outputs.endpoint}${env.TOKEN}")
            .unwrap();
        assert_eq!(
            t.segments,
            vec![
                Segment::Literal("https://".into()),
                Segment::Param("host".into()),
                Segment::Literal("/x?".into()),
                Segment::StepOutput {
                    step: "a".into(),
                    key: "endpoint".into()
                },
                Segment::Env("TOKEN".into()),
            ]
        );
        assert_eq!(
            t.to_string(),
            "https://${params.host}/x?${steps.a.outputs.endpoint}${env.TOKEN}"
        );
    }

    #[test]
    fn reports_malformed_references_with_their_range() {
        let e = Template::parse("ab${param.x}").unwrap_err();
        assert_eq!(e.range, 2..12);
        assert!(e.message.contains("did you mean `params`"), "{}", e.message);
        assert!(
            Template::parse("${steps.a.output.b}")
                .unwrap_err()
                .message
                .contains("outputs")
        );
        assert!(
            Template::parse("x ${params.a")
                .unwrap_err()
                .message
                .contains("never closed")
        );
        assert!(Template::parse("${}").is_err());
    }

    #[test]
    fn plain_text_is_literal() {
        assert_eq!(
            Template::parse("a $ b {c}")
                .unwrap()
                .as_literal()
                .as_deref(),
            Some("a $ b {c}")
        );
        assert!(!Template::parse("${params.a}").unwrap().is_runtime());
        assert!(Template::parse("${env.A}").unwrap().is_runtime());
    }
}
