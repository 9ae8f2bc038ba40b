//! What a person signs: a decision on an approval, or the start of a run.
//!
//! The signed bytes are [`Statement::to_bytes`]: compact JSON with the fields in the order of
//! the struct, every field present (`null` when absent). The same statement always gives the
//! same bytes, so a verifier rebuilds them from the fields instead of trusting a byte string
//! shipped beside the signature.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::IdentityError;

/// What the signer declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// A vote to approve an approval step.
    Approve,
    /// A vote to reject an approval step.
    Reject,
    /// The start of a run, signed by the person who starts it.
    StartRun,
    /// A resume with another version of the run's workflow (`resume
    /// --allow-changed-workflow`), signed by the person who resumes: `digest` is the new one.
    ChangeWorkflow,
    /// Where a run's journal ends, signed by the process that drives the run (in the
    /// namespace [`super::JOURNAL_NAMESPACE`]): the entries up to [`Statement::head`] are
    /// the ones it recorded.
    JournalAnchor,
}

/// A place in a run's journal: the number of entries up to it and the hash of the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Entries in the journal up to this place.
    pub len: u64,
    /// The hash of entry `len - 1` (the journal's genesis hash when `len` is 0).
    pub hash: String,
}

/// A signed-for statement. Field order is part of the signed format: do not reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// What is declared.
    pub kind: StatementKind,
    /// The run the statement is about.
    pub run_id: String,
    /// The approval step (`None` for [`StatementKind::StartRun`]).
    pub step: Option<String>,
    /// The approval round the vote is for (`None` for [`StatementKind::StartRun`]).
    pub round: Option<u32>,
    /// Who declares it: the principal the allowed-signers file must tie to the signing key.
    pub name: String,
    /// The comment of the decision, if any.
    pub comment: Option<String>,
    /// The digest of the run's workflow (and captured allowed signers) the signer saw.
    pub digest: String,
    /// When it was signed, RFC 3339 in UTC (see [`format_time`]).
    pub at: String,
    /// The journal head the signer was shown (a vote) or signs for (a journal anchor).
    /// Absent from statements signed before heads existed, whose bytes are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
}

impl Statement {
    /// The exact bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement of strings and numbers always serializes")
    }

    /// The signing time, parsed.
    pub fn time(&self) -> Result<DateTime<Utc>, IdentityError> {
        DateTime::parse_from_rfc3339(&self.at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| IdentityError::BadTime {
                at: self.at.clone(),
            })
    }
}

/// Formats a time the way [`Statement::at`] holds it: RFC 3339, UTC, whole seconds
/// (`2026-03-01T12:00:00Z`).
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_compact_json_in_field_order() {
        let statement = Statement {
            kind: StatementKind::StartRun,
            run_id: "r-1".to_owned(),
            step: None,
            round: None,
            name: "alice".to_owned(),
            comment: None,
            digest: "sha256:ab".to_owned(),
            at: "2026-03-01T12:00:00Z".to_owned(),
            head: None,
        };
        assert_eq!(
            String::from_utf8(statement.to_bytes()).unwrap(),
            r#"{"kind":"start_run","run_id":"r-1","step":null,"round":null,"name":"alice","comment":null,"digest":"sha256:ab","at":"2026-03-01T12:00:00Z"}"#
        );
        let vote = Statement {
            kind: StatementKind::Approve,
            step: Some("gate".to_owned()),
            round: Some(2),
            comment: Some("ok \"go\"".to_owned()),
            ..statement
        };
        let bytes = vote.to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"kind":"approve","run_id":"r-1","step":"gate","round":2,"name":"alice","comment":"ok \"go\"","digest":"sha256:ab","at":"2026-03-01T12:00:00Z"}"#
        );
        let back: Statement = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, vote);
        assert_eq!(back.to_bytes(), bytes);
        let seen = Statement {
            head: Some(Head {
                len: 3,
                hash: "ab12".to_owned(),
            }),
            ..vote
        };
        assert!(
            String::from_utf8(seen.to_bytes())
                .unwrap()
                .ends_with(r#""at":"2026-03-01T12:00:00Z","head":{"len":3,"hash":"ab12"}}"#)
        );
    }

    #[test]
    fn time_is_rfc3339() {
        let mut statement: Statement = serde_json::from_str(
            r#"{"kind":"reject","run_id":"r","step":"s","round":1,"name":"n","comment":null,"digest":"d","at":"2026-03-01T12:00:00Z"}"#,
        )
        .unwrap();
        let time = statement.time().unwrap();
        assert_eq!(format_time(time), "2026-03-01T12:00:00Z");
        statement.at = "yesterday".to_owned();
        assert!(matches!(
            statement.time(),
            Err(IdentityError::BadTime { .. })
        ));
    }
}
