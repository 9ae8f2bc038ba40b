//! The shape of drctl's log lines (SPEC §9a), for the subscriber the command line sets up:
//! scrubbed of each run's secrets ([`Scrubbed`], with the runs' spans marked by [`RunSpans`]),
//! and as flat JSON objects with `--json` ([`FlatJson`]).

mod json;
mod scrub;

pub use json::FlatJson;
pub use scrub::{RunSpans, Scrubbed};
