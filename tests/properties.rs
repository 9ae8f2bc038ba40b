//! Property tests: the loader never panics on any input, and the schedule matches a
//! brute-force reference on random DAGs.

use std::time::Duration;

use drctl::actions::Registry;
use drctl::check::check_source;
use drctl::dag::{Schedule, longest_path, waves};
use drctl::diagnostic::{SourceFile, render_json, render_text};
use proptest::prelude::*;

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
