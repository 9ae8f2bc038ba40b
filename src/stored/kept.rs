//! The last few recorded texts compiled, kept. Every reader of a run (each `drctl status`, a
//! report, a page of the incident room, a scrape of its metrics) compiles the run's text
//! again, and for a large workflow most of that is parsing its TOML. Compiling reads nothing
//! but the text, the file's name (for the diagnostics), the run's overrides and the actions
//! known, so the same four give the same result every time: it is kept, and handed out as a
//! copy (a reader may change its copy, such as the signers a run captured).

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::actions::Registry;
use crate::check::Checked;
use crate::dag::Override;

/// How many compiled texts are kept (the runs most read lately).
const KEPT: usize = 8;

/// What a compile depends on.
#[derive(PartialEq)]
struct Key {
    /// Each action known, by name and by the address of its spec (the same action of the
    /// same build has the same spec, another action another one).
    actions: Vec<(&'static str, usize)>,
    file: String,
    source: String,
    overrides: Vec<Override>,
}

/// The texts compiled, the oldest first.
type Kept = VecDeque<(Key, Arc<Checked>)>;

static KEPT_COMPILED: LazyLock<Mutex<Kept>> = LazyLock::new(Mutex::default);

/// What `compile` gives for `source` (named `file`, with `overrides` and `registry`'s
/// actions): kept from an earlier call with the same four, or compiled now and kept.
pub fn compiled(
    registry: &Registry,
    (file, source): (&str, &str),
    overrides: &[Override],
    compile: impl FnOnce() -> Checked,
) -> Checked {
    let key = Key {
        actions: registry
            .iter()
            .map(|a| {
                let spec = a.spec();
                (spec.name, std::ptr::from_ref(spec) as usize)
            })
            .collect(),
        file: file.to_string(),
        source: source.to_string(),
        overrides: overrides.to_vec(),
    };
    let lock = || KEPT_COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, checked)) = lock().iter().find(|(k, _)| *k == key) {
        return Checked::clone(checked);
    }
    // Compiled outside the lock: another reader is not held up meanwhile.
    let checked = Arc::new(compile());
    let mut kept = lock();
    if !kept.iter().any(|(k, _)| *k == key) {
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back((key, Arc::clone(&checked)));
    }
    Checked::clone(&checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    fn compile(source: &str, overrides: &[Override]) -> Checked {
        crate::check::compile_source(
            SourceFile::new("kept.toml", source),
            &Registry::builtin(),
            overrides,
        )
    }

    #[test]
    fn a_text_compiled_again_gives_what_it_gave_and_another_text_or_override_its_own() {
        let text = "[workflow]\nname = \"kept\"\nkind = \"failover\"\n\n[params]\nhold = \"1s\"\n\n[[steps]]\nid = \"hold\"\naction = \"noop\"\nwith = { duration = \"${params.hold}\" }\n";
        let registry = Registry::builtin();
        let digest = |c: &Checked| crate::engine::digest(c.workflow.as_ref().unwrap());
        let compiles = std::cell::Cell::new(0);
        let get = |source: &str, overrides: &[Override]| {
            compiled(&registry, ("kept.toml", source), overrides, || {
                compiles.set(compiles.get() + 1);
                compile(source, overrides)
            })
        };
        let first = get(text, &[]);
        let again = get(text, &[]);
        assert_eq!(digest(&first), digest(&again));
        assert_eq!(digest(&again), digest(&compile(text, &[])));
        let other: Override = "hold=2s".parse().unwrap();
        let overridden = get(text, std::slice::from_ref(&other));
        assert_ne!(digest(&overridden), digest(&first));
        let changed = text.replace("\"kept\"", "\"kept-too\"");
        let renamed = get(&changed, &[]);
        assert_ne!(digest(&renamed), digest(&first));
        assert_eq!(
            compiles.get(),
            3,
            "the same text and overrides are compiled once"
        );
    }
}
