//! drctl: disaster-recovery orchestration.
//!
//! Operators write failover, restore and rollback procedures as TOML workflows. This library
//! reads them ([`workflow`]), checks their actions ([`actions`]), compiles them into a DAG
//! ([`dag`]), lints them ([`lint`]) and plans them ([`plan`]). The [`cli`] module is the
//! command line; the `drctl` binary only calls it.
//!
//! Data flows one way: file text → `workflow::RawWorkflow` → `dag::CompiledWorkflow` →
//! `plan::Plan` → text, JSON, DOT or Mermaid. Diagnostics ([`diagnostic`]) are collected along
//! the way and printed by the CLI, never by the library.

pub mod actions;
pub mod aws;
pub mod check;
pub mod cli;
pub mod control;
pub mod dag;
pub mod diagnostic;
pub mod engine;
pub mod evidence;
pub mod identity;
pub mod lint;
pub mod plan;
pub mod recovery;
pub mod report;
pub mod store;
pub mod synthetic;
pub mod time;
pub mod view;
pub mod workflow;
