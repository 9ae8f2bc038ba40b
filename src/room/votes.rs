//! `POST /runs/RUN/votes`: a signed decision written by `drctl approve|reject --sign-only`,
//! posted as it is (or uploaded from the run page). The signature is the authority, not the
//! web client: the decision goes the one way every decision goes (`Session::decide`, to the
//! run's driver or recorded for it), where the machine checks it as for `drctl approve
//! --signed`. A refusal is answered in its own words, with a 4xx status.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::Room;
use crate::control::RunDecision;
use crate::identity::{Signed, StatementKind};
use crate::service::{CliError, exit};

/// Submits the signed decision in `body` on run `run`.
pub async fn submit(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
    body: String,
) -> (StatusCode, String) {
    let signed = match Signed::from_json(&body) {
        Ok(signed) => signed,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "this is not a signed decision (`drctl approve RUN STEP --key PATH --sign-only -o FILE` writes one): {e}\n"
                ),
            );
        }
    };
    let st = &signed.statement;
    if st.run_id != run {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "this signed decision is on run {}, not run {run}\n",
                st.run_id
            ),
        );
    }
    let said = format!(
        "{} {} `{}` of run {run}\n",
        st.name,
        if st.kind == StatementKind::Reject {
            "rejected"
        } else {
            "approved"
        },
        st.step.clone().unwrap_or_default()
    );
    let decision = RunDecision::Signed {
        signed: Box::new(signed),
    };
    let session = room.session.clone();
    let decided = tokio::task::spawn_blocking(move || session.decide(&decision))
        .await
        .map_err(|e| CliError::internal(e.to_string()))
        .and_then(|r| r);
    match decided {
        Ok(_) => (StatusCode::OK, said),
        Err(e) => (refused(&e), format!("{}{e}\n", e.detail().unwrap_or(""))),
    }
}

/// The status of a refused decision: the machine's refusal (exit 2) is the client's to mend
/// (403: the signature does not give this vote); drctl's own failure is 500.
fn refused(e: &CliError) -> StatusCode {
    match e.exit_code() {
        exit::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
        exit::INVALID_INPUT => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    }
}
