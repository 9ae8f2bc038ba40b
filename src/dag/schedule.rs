//! Execution waves and the critical path of a DAG, as pure functions over the `needs` lists
//! and per-step durations, so they can be checked against a brute-force reference.

use std::time::Duration;

/// The wave of every step: 0 for steps that need nothing, else one more than the latest wave
/// among the steps it needs. Steps of a wave can run together once the earlier waves are done.
///
/// `needs` must describe an acyclic graph (the compiler guarantees it).
pub fn waves(needs: &[&[usize]]) -> Vec<usize> {
    let order = topological_order(needs);
    let mut wave = vec![0; needs.len()];
    for &i in &order {
        wave[i] = needs[i].iter().map(|&d| wave[d] + 1).max().unwrap_or(0);
    }
    wave
}

/// The heaviest path (sum of node weights) through the DAG, ending at `end` when given, else
/// anywhere. Returns the path from its first step to its last and its total. Ties go to the
/// lowest step index, so the answer is deterministic.
pub fn longest_path(
    needs: &[&[usize]],
    weights: &[Duration],
    end: Option<usize>,
) -> (Vec<usize>, Duration) {
    if needs.is_empty() {
        return (Vec::new(), Duration::ZERO);
    }
    let order = topological_order(needs);
    let mut finish = vec![Duration::ZERO; needs.len()];
    let mut via: Vec<Option<usize>> = vec![None; needs.len()];
    for &i in &order {
        let mut best: Option<usize> = None;
        for &d in needs[i] {
            if best.is_none_or(|b| finish[d] > finish[b] || (finish[d] == finish[b] && d < b)) {
                best = Some(d);
            }
        }
        via[i] = best;
        finish[i] = weights[i] + best.map_or(Duration::ZERO, |b| finish[b]);
    }
    let last = end.unwrap_or_else(|| {
        (0..needs.len())
            .max_by(|&a, &b| finish[a].cmp(&finish[b]).then(b.cmp(&a)))
            .unwrap_or(0)
    });
    let mut path = vec![last];
    while let Some(prev) = via[*path.last().unwrap_or(&last)] {
        path.push(prev);
    }
    path.reverse();
    (path, finish[last])
}

/// Kahn's algorithm; on a cyclic input the steps in cycles are left out.
fn topological_order(needs: &[&[usize]]) -> Vec<usize> {
    let n = needs.len();
    let mut pending: Vec<usize> = needs.iter().map(|d| d.len()).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, deps) in needs.iter().enumerate() {
        for &d in *deps {
            dependants[d].push(i);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &j in &dependants[i] {
            pending[j] -= 1;
            if pending[j] == 0 {
                order.push(j);
            }
        }
    }
    order
}

/// The schedule plan shows: waves, the critical path and the predicted RTO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Wave of each step.
    pub waves: Vec<usize>,
    /// The path that decides the predicted RTO: the heaviest path to the `recovered` step, or
    /// through the whole workflow when there is none.
    pub critical_path: Vec<usize>,
    /// Its length: the predicted RTO.
    pub predicted_rto: Duration,
    /// The heaviest path through the whole workflow: the predicted run time.
    pub makespan: Duration,
}

impl Schedule {
    /// Computes the schedule of a DAG given as `needs` lists and step durations.
    pub fn compute(needs: &[&[usize]], weights: &[Duration], recovered: Option<usize>) -> Schedule {
        let (critical_path, predicted_rto) = longest_path(needs, weights, recovered);
        let makespan = if recovered.is_some() {
            longest_path(needs, weights, None).1
        } else {
            predicted_rto
        };
        Schedule {
            waves: waves(needs),
            critical_path,
            predicted_rto,
            makespan,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&s| Duration::from_secs(s)).collect()
    }

    #[test]
    fn diamond() {
        // 0 -> {1, 2} -> 3
        let needs: Vec<&[usize]> = vec![&[], &[0], &[0], &[1, 2]];
        assert_eq!(waves(&needs), vec![0, 1, 1, 2]);
        let (path, total) = longest_path(&needs, &secs(&[1, 5, 2, 1]), None);
        assert_eq!(path, vec![0, 1, 3]);
        assert_eq!(total, Duration::from_secs(7));
    }

    #[test]
    fn path_to_a_given_end() {
        let needs: Vec<&[usize]> = vec![&[], &[0], &[0]];
        let (path, total) = longest_path(&needs, &secs(&[1, 10, 2]), Some(2));
        assert_eq!(path, vec![0, 2]);
        assert_eq!(total, Duration::from_secs(3));
    }
}
