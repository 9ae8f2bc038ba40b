//! Finding dependency cycles and spelling one out per knot (`a -> b -> c -> a`).

use std::collections::VecDeque;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// One cycle for every strongly connected group of steps that depend on each other, each as
/// the list of steps along it, every step needing the next and the last needing the first.
pub fn find_cycles(graph: &DiGraph<(), ()>, needs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut cycles = Vec::new();
    for component in tarjan_scc(graph) {
        let self_loop =
            component.len() == 1 && needs[component[0].index()].contains(&component[0].index());
        if component.len() < 2 && !self_loop {
            continue;
        }
        let members: Vec<usize> = component.iter().map(|n: &NodeIndex| n.index()).collect();
        let start = *members.iter().min().unwrap_or(&0);
        cycles.push(shortest_cycle_through(start, &members, needs));
    }
    cycles.sort();
    cycles
}

/// Breadth-first along `needs` inside the component, back to `start`.
fn shortest_cycle_through(start: usize, members: &[usize], needs: &[Vec<usize>]) -> Vec<usize> {
    let mut parent: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for &next in &needs[at] {
            if !members.contains(&next) {
                continue;
            }
            if next == start {
                let mut path = vec![at];
                let mut cur = at;
                while cur != start {
                    cur = parent[&cur];
                    path.push(cur);
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(next) {
                e.insert(at);
                queue.push_back(next);
            }
        }
    }
    vec![start]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(needs: &[Vec<usize>]) -> DiGraph<(), ()> {
        let mut g = DiGraph::new();
        for _ in needs {
            g.add_node(());
        }
        for (i, deps) in needs.iter().enumerate() {
            for &d in deps {
                g.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
            }
        }
        g
    }

    #[test]
    fn spells_out_a_three_cycle() {
        let needs = vec![vec![1], vec![2], vec![0], vec![]];
        assert_eq!(find_cycles(&graph(&needs), &needs), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn finds_self_loops_and_separate_knots() {
        let needs = vec![vec![0], vec![2], vec![1], vec![]];
        assert_eq!(
            find_cycles(&graph(&needs), &needs),
            vec![vec![0], vec![1, 2]]
        );
    }

    #[test]
    fn a_dag_has_none() {
        let needs = vec![vec![], vec![0], vec![0, 1]];
        assert!(find_cycles(&graph(&needs), &needs).is_empty());
    }
}
