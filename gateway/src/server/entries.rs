//! `POST /v1/entries`: the one write route for entries others sign
//! (participants, agencies, the board).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::deployment::{Deployment, SubmitError};
use crate::problem::Problem;

/// `POST /v1/entries`: one signed entry (the envelope's JSON form). The
/// signatures are the authority; a refusal is answered as
/// [`Problem`]'s `From<SubmitError>` says.
pub(super) async fn post_entry(
    State(dep): State<Arc<Deployment>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let env =
        ledger::Envelope::from_json(&body).map_err(|e| Problem::MalformedEntry(e.to_string()))?;
    match dep.submit(env).await {
        Ok(index) => Ok((
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "index": index }).to_string(),
        )
            .into_response()),
        // Revoking what is already revoked changes nothing and is no
        // error for the person: a clear no-op answer, nothing appended.
        Err(SubmitError::Policy(policy::ApplyError::AlreadyRevoked(id))) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "noop": true,
                "status": "already-revoked",
                "consent_id": id,
                "detail": "this consent was already revoked; nothing changed",
            })
            .to_string(),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
