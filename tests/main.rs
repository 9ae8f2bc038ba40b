//! drctl's integration tests: one binary, a module per area. Most tests call the library;
//! `cli` runs the real binary for exit codes and what a user sees.

mod adversarial;
mod at_most_once;
mod aws;
mod aws_guarantees;
mod aws_mocks;
mod aws_services;
mod cli;
mod crash;
mod docs;
mod examples;
mod executor;
mod fixtures;
mod harness;
mod identity;
mod legacy;
mod observe;
mod properties;
mod reports;
mod robustness;
mod scheduling;
mod secrets;
mod serve;
mod signed;
mod store_contract;
mod support;
mod takeover;
