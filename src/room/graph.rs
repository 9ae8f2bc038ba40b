//! A run's DAG laid out by waves, for the page to draw as inline SVG: a column per wave, a
//! node per step (its status as `drctl status` names it), an edge per need, the critical path
//! marked. Geometry only: the SVG itself is written by `pages.rs`.

use std::collections::{HashMap, HashSet};

use crate::dag::CompiledWorkflow;
use crate::view::StatusView;

/// A node's width and height, and the room between columns and between rows.
pub const NODE_W: u32 = 160;
/// A node's height.
pub const NODE_H: u32 = 34;
const GAP_X: u32 = 56;
const GAP_Y: u32 = 14;
const MARGIN: u32 = 8;

/// A step drawn.
#[derive(Debug, Clone)]
pub struct Node {
    /// The step id.
    pub id: String,
    /// Its action.
    pub action: String,
    /// Its status.
    pub status: String,
    /// Where its box's top left corner is.
    pub x: u32,
    /// Where its box's top left corner is.
    pub y: u32,
    /// On the critical path.
    pub critical: bool,
    /// An approval.
    pub approval: bool,
}

/// A need drawn: from the needed step's right side to the needing step's left side.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Start.
    pub from: (u32, u32),
    /// End.
    pub to: (u32, u32),
    /// Both ends on the critical path, one after the other.
    pub critical: bool,
}

/// The laid-out DAG.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The steps, in the workflow's order.
    pub nodes: Vec<Node>,
    /// The needs.
    pub edges: Vec<Edge>,
    /// The drawing's size.
    pub width: u32,
    /// The drawing's size.
    pub height: u32,
}

impl Graph {
    /// Lays `workflow` out by waves, each step with its status in `status`.
    pub fn layout(workflow: &CompiledWorkflow, status: &StatusView) -> Graph {
        let schedule = workflow.schedule();
        let statuses: HashMap<&str, &str> = status
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.status.as_str()))
            .collect();
        let critical: HashSet<usize> = schedule.critical_path.iter().copied().collect();
        let next_on_path: HashSet<(usize, usize)> = schedule
            .critical_path
            .windows(2)
            .map(|w| (w[0], w[1]))
            .collect();
        let mut rows: HashMap<usize, u32> = HashMap::new();
        let (mut width, mut height) = (0, 0);
        let nodes: Vec<Node> = workflow
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let wave = u32::try_from(schedule.waves[i]).unwrap_or(u32::MAX / 2);
                let row = rows.entry(schedule.waves[i]).or_insert(0);
                let x = MARGIN + wave.saturating_mul(NODE_W + GAP_X);
                let y = MARGIN + *row * (NODE_H + GAP_Y);
                *row += 1;
                width = width.max(x + NODE_W + MARGIN);
                height = height.max(y + NODE_H + MARGIN);
                Node {
                    id: step.id.clone(),
                    action: step.action.clone(),
                    status: statuses
                        .get(step.id.as_str())
                        .map_or("pending", |s| s)
                        .to_string(),
                    x,
                    y,
                    critical: critical.contains(&i),
                    approval: step.is_approval(),
                }
            })
            .collect();
        let edges = workflow
            .steps
            .iter()
            .enumerate()
            .flat_map(|(i, step)| step.needs.iter().map(move |&need| (need, i)))
            .map(|(from, to)| Edge {
                from: (nodes[from].x + NODE_W, nodes[from].y + NODE_H / 2),
                to: (nodes[to].x, nodes[to].y + NODE_H / 2),
                critical: next_on_path.contains(&(from, to)),
            })
            .collect();
        Graph {
            nodes,
            edges,
            width,
            height,
        }
    }
}
