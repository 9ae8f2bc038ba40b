//! Property tests: the loader, the control protocol and the store's record decoding never
//! panic on any input, the schedule matches a brute-force reference on random DAGs, and no
//! form of a secret is left in any text a step may produce.

use std::time::Duration;

use drctl::actions::Registry;
use drctl::check::check_source;
use drctl::dag::{Schedule, longest_path, waves};
use drctl::diagnostic::{SourceFile, render_json, render_text};
use drctl::engine::Redactor;
use drctl::store::{MemoryStore, Store, decode_bundle};
use proptest::prelude::*;

use crate::secrets::{forms_of, json_escaped};

fn check_never_panics(text: String) {
    let checked = check_source(
        SourceFile::new("fuzz.toml", text),
        &Registry::builtin(),
        &[],
    );
    // Rendering walks every span: it must not panic either.
    let _ = render_text(&checked.source, &checked.diagnostics, false);
    let _ = render_json(&checked.source, &checked.diagnostics);
}

const VALID: &str = include_str!("fixtures/valid/spec-example.toml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_never_panics(String::from_utf8_lossy(&bytes).into_owned());
    }

    /// Mutations of a valid workflow reach far deeper than random bytes: they keep most of
    /// the structure and break one thing at a time.
    #[test]
    fn mutated_workflows_never_panic(edits in proptest::collection::vec((any::<usize>(), 0u8..4, ".{0,12}"), 1..6)) {
        let mut text = VALID.to_string();
        for (pos, kind, insert) in edits {
            let mut at = pos % (text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            match kind {
                0 => text.insert_str(at, &insert),
                1 => { let end = (at + insert.len().max(1)).min(text.len()); let mut end = end; while !text.is_char_boundary(end) { end += 1; } text.replace_range(at..end, ""); }
                2 => text.insert_str(at, "${"),
                _ => text.insert_str(at, "\n[[steps]]\nid = \"x\"\n"),
            }
        }
        check_never_panics(text);
    }

    #[test]
    fn arbitrary_request_lines_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = drctl::control::parse_request(&bytes);
    }

    /// Requests that are almost right: a valid one with a few bytes changed.
    #[test]
    fn mutated_requests_never_panic(edits in proptest::collection::vec((any::<usize>(), ".{0,8}"), 1..4)) {
        let line = mutate(r#"{"v":2,"op":"decide","kind":"vote","run":"r1","step":"gate","by":"bob","decision":"approve","comment":"go"}"#, &edits);
        let _ = drctl::control::parse_request(line.as_bytes());
    }

    #[test]
    fn arbitrary_store_records_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(commit) = decode_bundle("r1", &bytes) {
            read_everything(&commit);
        }
    }

    /// A stored bundle with a few bytes changed decodes to an error, or to records that every
    /// view and report can read without panicking.
    #[test]
    fn mutated_store_records_never_panic(edits in proptest::collection::vec((any::<usize>(), ".{0,8}"), 1..4)) {
        let bytes = mutate(BUNDLE, &edits);
        if let Ok(commit) = decode_bundle("r1", bytes.as_bytes()) {
            read_everything(&commit);
        }
    }

    #[test]
    fn schedule_matches_brute_force((needs, weights, shuffle) in random_dag()) {
        // Relabel nodes so the input is not in topological order.
        let n = needs.len();
        let mut label = vec![0; n];
        for (new, &old) in shuffle.iter().enumerate() { label[old] = new; }
        let mut relabeled: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut w = vec![Duration::ZERO; n];
        for old in 0..n {
            relabeled[label[old]] = needs[old].iter().map(|&d| label[d]).collect();
            w[label[old]] = Duration::from_secs(weights[old]);
        }
        let refs: Vec<&[usize]> = relabeled.iter().map(Vec::as_slice).collect();

        prop_assert_eq!(waves(&refs), brute_waves(&relabeled));

        let (path, total) = longest_path(&refs, &w, None);
        prop_assert_eq!(total, brute_longest(&relabeled, &w, None));
        assert_valid_path(&relabeled, &w, &path, total);

        for end in 0..n {
            let (path, total) = longest_path(&refs, &w, Some(end));
            prop_assert_eq!(total, brute_longest(&relabeled, &w, Some(end)));
            prop_assert_eq!(path.last().copied(), Some(end));
            assert_valid_path(&relabeled, &w, &path, total);
        }
        let schedule = Schedule::compute(&refs, &w, None);
        prop_assert_eq!(schedule.predicted_rto, schedule.makespan);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A secret (newlines, quotes, backslashes, unicode, whitespace around it) put in
    /// arbitrary text as it is, JSON-escaped once to three times, quoted for a shell, or line
    /// by line among other text: once scrubbed, no form of it is left (nor any of its lines of
    /// 4 characters or more), and its placeholder stands where it was.
    #[test]
    fn no_form_of_a_secret_survives_scrubbing(
        secret in secret(),
        text in ".{0,16}",
        pieces in proptest::collection::vec((0u8..6, ".{0,16}"), 1..5),
    ) {
        let mut text = text;
        for (how, filler) in &pieces {
            match how {
                0 => text.push_str(&secret),
                depth @ 1..=3 => {
                    let escaped = (0..*depth).fold(secret.clone(), |t, _| json_escaped(&t));
                    text.push_str(&format!("{{\"out\":\"{escaped}\"}}"));
                }
                4 => text.push_str(&format!("+ echo '{}'", secret.replace('\'', r"'\''"))),
                _ => {
                    for line in secret.lines() {
                        text.push_str(line);
                        text.push_str(filler);
                    }
                }
            }
            text.push_str(filler);
        }
        let scrubbed = Redactor::new([("S", secret.as_str())]).scrub(&text);
        for form in forms_of(&secret) {
            prop_assert!(
                !scrubbed.contains(&form),
                "{:?} is left of {:?} in {:?} (from {:?})", form, secret, scrubbed, text
            );
        }
        // Redacted, not dropped (lines of under 4 characters alone are not a form of it).
        let whole = pieces.iter().any(|(how, _)| *how < 5);
        if whole {
            prop_assert!(scrubbed.contains("${env.S}"), "{:?}", scrubbed);
        }
    }
}

/// A secret of at least 4 characters that are not whitespace, among them anything a value
/// read from a file or a vault may hold: newlines (LF or CRLF), tabs, quotes, backslashes,
/// punctuation, letters beyond ASCII, whitespace around it. Not `$`, `{`, `}` nor `.`: the
/// placeholder `${env.S}` is made of them, and a secret that is a piece of it would be found
/// there by chance.
fn secret() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9]{1,4}",
        1 => Just("\n".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just(" ".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\"".to_string()),
        1 => Just("'".to_string()),
        1 => Just("\\".to_string()),
        1 => "[!#%&()*+,/:;<=>?@^_|~-]",
        1 => "[é中ß😀\u{301}]",
    ];
    (
        "[ \t\n]{0,2}",
        proptest::collection::vec(piece, 2..12),
        "[ \t\r\n]{0,2}",
    )
        .prop_map(|(before, pieces, after)| format!("{before}{}{after}", pieces.concat()))
        .prop_filter("at least 4 characters that are not whitespace", |s| {
            s.chars().filter(|c| !c.is_whitespace()).count() >= 4
        })
}

/// A random DAG on up to 9 nodes: node i may need any of 0..i; weights 0..10 s; and a
/// permutation to hide the order.
fn random_dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<u64>, Vec<usize>)> {
    (1usize..9).prop_flat_map(|n| {
        let needs = (0..n)
            .map(|i| {
                proptest::collection::btree_set(0..i.max(1), 0..=i.min(3))
                    .prop_map(move |s| s.into_iter().filter(|&d| d < i).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>();
        let weights = proptest::collection::vec(0u64..10, n);
        let shuffle = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        (needs, weights, shuffle)
    })
}

/// Wave = number of edges on the longest chain of needs leading to the node, by recursion.
fn brute_waves(needs: &[Vec<usize>]) -> Vec<usize> {
    fn depth(i: usize, needs: &[Vec<usize>]) -> usize {
        needs[i]
            .iter()
            .map(|&d| depth(d, needs) + 1)
            .max()
            .unwrap_or(0)
    }
    (0..needs.len()).map(|i| depth(i, needs)).collect()
}

/// Enumerates every path (walking needs backwards from each possible end) and keeps the
/// heaviest.
fn brute_longest(needs: &[Vec<usize>], w: &[Duration], end: Option<usize>) -> Duration {
    fn heaviest_ending_at(i: usize, needs: &[Vec<usize>], w: &[Duration]) -> Duration {
        let mut best = Duration::ZERO;
        for &d in &needs[i] {
            best = best.max(heaviest_ending_at(d, needs, w));
        }
        best + w[i]
    }
    match end {
        Some(e) => heaviest_ending_at(e, needs, w),
        None => (0..needs.len())
            .map(|i| heaviest_ending_at(i, needs, w))
            .max()
            .unwrap_or_default(),
    }
}

fn assert_valid_path(needs: &[Vec<usize>], w: &[Duration], path: &[usize], total: Duration) {
    assert!(!path.is_empty());
    assert!(
        needs[path[0]].is_empty(),
        "the critical path starts at a step that needs nothing"
    );
    for pair in path.windows(2) {
        assert!(
            needs[pair[1]].contains(&pair[0]),
            "{path:?} is not a chain of needs"
        );
    }
    assert_eq!(path.iter().map(|&i| w[i]).sum::<Duration>(), total);
}

/// A stored bundle as a run's first commit writes it.
const BUNDLE: &str = r#"{"run":{"run_id":"r1","workflow":"w","mode":"run","status":"running","initiator":"alice","digest":"d","workflow_file":"w.toml","overrides":["t=1s"],"started_at":"2026-01-01T00:00:00Z","finished_at":null,"journal_len":2,"last_hash":"h","pid":42},"steps":[{"run_id":"r1","step":"a","status":"succeeded","attempts":[{"n":1,"started_at":"2026-01-01T00:00:00Z","finished_at":"2026-01-01T00:00:05Z","outcome":"succeeded","error":null}],"outputs":{"x":1},"error":null}],"journal":[{"seq":0,"at":"2026-01-01T00:00:00Z","event":{"type":"run_started","workflow":"w","mode":"run","by":"alice"},"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"h0"},{"seq":1,"at":"2026-01-01T00:00:05Z","event":{"type":"step_succeeded","step":"a","attempt":1,"outputs":{"x":1}},"prev":"h0","hash":"h"}]}"#;

/// The workflow the bundle's run started with.
const BUNDLE_SOURCE: &str = "[workflow]\nname = \"w\"\nkind = \"failover\"\nrto = \"1m\"\n\n[params]\nt = \"1s\"\n\n[[steps]]\nid = \"a\"\naction = \"wait\"\nwith = { duration = \"${params.t}\" }\n";

fn mutate(text: &str, edits: &[(usize, String)]) -> String {
    let mut text = text.to_string();
    for (pos, insert) in edits {
        let mut at = pos % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + insert.len()).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        text.replace_range(at..end, insert);
    }
    text
}

/// Stores what was decoded and reads it back every way the commands do.
fn read_everything(commit: &drctl::store::Commit) {
    let store = MemoryStore::new();
    let mut commit = commit.clone();
    commit.source = Some(BUNDLE_SOURCE.to_string());
    let run_id = commit
        .run
        .as_ref()
        .map_or_else(|| "r1".to_string(), |r| r.run_id.clone());
    store.commit(&run_id, &commit).unwrap();
    let _ = drctl::view::run_lines(&store, &[]);
    let _ = drctl::view::status_view(&store, &run_id, &[]);
    let _ = drctl::report::build(&store, &run_id);
    if let Some(run) = &commit.run {
        let _ = drctl::report::history(&store, &run.workflow);
        let _ = drctl::report::step_medians(&store, &run.workflow);
    }
}

#[test]
fn the_sample_bundle_decodes() {
    // The mutation tests start from a bundle that reads: otherwise they would test nothing.
    let commit = decode_bundle("r1", BUNDLE.as_bytes()).expect("the sample bundle decodes");
    assert_eq!(commit.journal.len(), 2);
    read_everything(&commit);
}
