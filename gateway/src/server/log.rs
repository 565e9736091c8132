//! Health and the log's public read routes (checkpoint with cosignatures,
//! inclusion and consistency proofs); the log's part of `/metrics`, which
//! [`super::metrics_app`] serves.

use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::deployment::Deployment;
use crate::problem::Problem;

/// Health and the public auditor read routes, for [`super::app`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Deployment>: FromRef<S>,
{
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
}

fn bad_query(detail: String) -> Problem {
    Problem::Blank(StatusCode::BAD_REQUEST, detail)
}

async fn healthz(State(dep): State<Arc<Deployment>>) -> Result<Response, Problem> {
    // Ready only if the store answers and no write has failed.
    if !dep.is_healthy() {
        return Err(Problem::LogUnavailable(
            "a log write failed; the gateway must be restarted".into(),
        ));
    }
    let size = dep
        .log
        .store()
        .size()
        .map_err(|e| Problem::LogUnavailable(e.to_string()))?;
    Ok(Json(json!({"status": "ready", "log_size": size})).into_response())
}

/// The log's and the state's part of `/metrics`, in Prometheus text. It
/// counts participants and consents: for the operator's listener only.
pub fn render_metrics(dep: &Deployment) -> Result<String, crate::deployment::Stopped> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = dep.log.stats();
    let state = dep.state()?;
    Ok(format!(
        "# TYPE consentry_log_size gauge\nconsentry_log_size {}\n# TYPE consentry_log_batches_total counter\nconsentry_log_batches_total {}\n# TYPE consentry_log_entries_total counter\nconsentry_log_entries_total {}\n# TYPE consentry_log_batch_entries_last gauge\nconsentry_log_batch_entries_last {}\n# TYPE consentry_consents gauge\nconsentry_consents {}\n# TYPE consentry_participants gauge\nconsentry_participants {}\n",
        dep.log.size(),
        s.batches.load(Relaxed),
        s.entries.load(Relaxed),
        s.batch_entries_last.load(Relaxed),
        state.consent_count(),
        state.participant_count(),
    ) + &batch_histogram(s))
}

fn batch_histogram(s: &ledger::log::LogStats) -> String {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::from("# TYPE consentry_log_batch_entries histogram\n");
    for (b, le) in s
        .batch_entries_buckets
        .iter()
        .zip(ledger::log::BATCH_BUCKETS)
    {
        let _ = writeln!(
            out,
            "consentry_log_batch_entries_bucket{{le=\"{le}\"}} {}",
            b.load(Relaxed)
        );
    }
    let batches = s.batches.load(Relaxed);
    let _ = writeln!(
        out,
        "consentry_log_batch_entries_bucket{{le=\"+Inf\"}} {batches}\nconsentry_log_batch_entries_sum {}\nconsentry_log_batch_entries_count {batches}",
        s.entries.load(Relaxed)
    );
    out
}

async fn checkpoint(State(dep): State<Arc<Deployment>>) -> Result<Response, Problem> {
    let (note, _) = dep
        .log
        .checkpoint_with_cosignatures()
        .map_err(|e| Problem::LogUnavailable(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

async fn inclusion(
    State(dep): State<Arc<Deployment>>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("want ?index=N&size=M".into()).into_response();
    };
    match dep.log.inclusion_proof(q.index, q.size) {
        Ok(p) => Json(json!({"index": q.index, "size": q.size, "proof": p.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})).into_response(),
        Err(e) => bad_query(e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

async fn consistency(
    State(dep): State<Arc<Deployment>>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("want ?old=N&new=M".into()).into_response();
    };
    match dep.log.consistency_proof(q.old, q.new) {
        Ok(p) => Json(json!({"old": q.old, "new": q.new, "proof": p.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})).into_response(),
        Err(e) => bad_query(e.to_string()).into_response(),
    }
}
