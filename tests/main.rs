//! drctl's integration tests: one binary, a module per area. Most tests call the library;
//! `cli` runs the real binary for exit codes and what a user sees.

mod aws;
mod aws_mocks;
mod cli;
mod crash;
mod docs;
mod examples;
mod executor;
mod fixtures;
mod harness;
mod properties;
mod reports;
mod robustness;
mod scheduling;
