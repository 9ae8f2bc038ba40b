//! The report as `JUnit` XML: one test case per step, so a CI system shows a drill as tests.
//! Failed steps are failures, skipped and never-run steps are skipped, and an RTO or RPO
//! objective not met is a failed test case of its own.

use std::fmt::Write;

use super::model::{Objective, Report, human};

fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn objective_case(out: &mut String, suite: &str, name: &str, o: &Objective) -> (usize, usize) {
    let Some(objective) = o.objective_seconds else {
        return (0, 0);
    };
    let time = o.achieved_seconds.unwrap_or(0.0);
    let _ = write!(
        out,
        "    <testcase classname=\"{suite}.objectives\" name=\"{name} within {}\" time=\"{time:.3}\"",
        human(objective)
    );
    match o.met {
        Some(true) => {
            out.push_str("/>\n");
            (1, 0)
        }
        _ => {
            let achieved = o
                .achieved_seconds
                .map_or_else(|| "not reached".to_string(), human);
            let _ = write!(
                out,
                ">\n      <failure message=\"{name} {achieved} against an objective of {}\"/>\n    </testcase>\n",
                human(objective)
            );
            (1, 1)
        }
    }
}

/// Renders the report as a `JUnit` XML document.
pub fn junit(r: &Report) -> String {
    let suite = escape(&r.workflow);
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for s in &r.steps {
        tests += 1;
        let time = s.duration_seconds.unwrap_or(0.0);
        let _ = write!(
            cases,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"{time:.3}\"",
            escape(&s.id)
        );
        match s.status.as_str() {
            "succeeded" | "rolled_back" => cases.push_str("/>\n"),
            "failed" | "unknown" => {
                failures += 1;
                let message = s.error.clone().unwrap_or_else(|| s.status.clone());
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(message.lines().next().unwrap_or_default()),
                    escape(&s.action),
                    escape(&message)
                );
            }
            other => {
                skipped += 1;
                let _ = write!(
                    cases,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    escape(other)
                );
            }
        }
    }
    for (name, o) in [("RTO", &r.rto), ("RPO", &r.rpo)] {
        let (t, f) = objective_case(&mut cases, &suite, name, o);
        tests += t;
        failures += f;
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: f64 = r
        .rto
        .achieved_seconds
        .unwrap_or_else(|| r.steps.iter().filter_map(|s| s.duration_seconds).sum());
    let _ = writeln!(
        out,
        "<testsuites name=\"drctl\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\" timestamp=\"{}\">",
        escape(&r.started_at)
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"run_id\" value=\"{}\"/>\n      <property name=\"mode\" value=\"{}\"/>\n      <property name=\"status\" value=\"{}\"/>\n    </properties>",
        escape(&r.run_id),
        escape(&r.mode),
        escape(&r.status)
    );
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
