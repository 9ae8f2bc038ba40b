//! drctl: disaster-recovery orchestration.
//!
//! Operators write failover, restore and rollback procedures as TOML workflows. This library
//! reads them ([`workflow`]), checks their actions ([`actions`]), compiles them into a DAG
//! ([`dag`]), lints them ([`lint`]) and plans them ([`plan`]); the durable executor
//! ([`engine`]) runs them on a [`store`], and the read side ([`view`], [`report`]) shows where
//! runs stand and how they went. The [`cli`] module is the command line; the `drctl` binary
//! only calls it.
//!
//! Data flows one way: file text → `workflow::RawWorkflow` → `dag::CompiledWorkflow` →
//! `plan::Plan` for review, or → `engine::Run` (inputs → events, journaled → effects) → the
//! store → `view::StatusView` and `report::Report`. Diagnostics ([`diagnostic`]) are collected
//! along the way and printed by the CLI, never by the library. docs/architecture.md is the
//! map.

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
pub mod logs;
pub mod notify;
pub mod plan;
pub mod recovery;
pub mod report;
pub mod room;
pub mod service;
pub mod store;
pub mod stored;
pub mod synthetic;
pub mod time;
pub mod view;
pub mod workflow;
