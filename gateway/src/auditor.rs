//! The log for auditors and mirrors, as C2SP `tlog-tiles` under the prefix
//! `/v1/log` (whose checkpoint is `/v1/log/checkpoint`):
//!
//! - `GET /v1/log/tile/<L>/<N>[.p/<W>]`: hash tiles, public like the
//!   checkpoint and proofs (hashes say nothing about anyone);
//! - `GET /v1/log/tile/entries/<N>[.p/<W>]` and
//!   `GET /v1/log/signatures/<N>[.p/<W>]`: the entries and their
//!   signatures, for enrolled auditors only: entries are pseudonymous but
//!   sensitive, so each request carries an RFC 9421 signature (`@method`,
//!   `@target-uri`, created, expires, a fresh nonce) by the current key of
//!   an organisation enrolled with the `auditor` role.
//!
//! - `POST /v1/log/cosignatures` `{"size", "cosignature"}`: a witness's
//!   C2SP `tlog-cosignature` line for a kept checkpoint; the witness is an
//!   organisation enrolled (governance-signed) with the `witness` role,
//!   named in the line by its id, checked against its current key.
//!
//! Full tiles never change and are cached long; partial ones briefly.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use policy::Role;
use serde_json::{json, Value};

use crate::agency::Gateway;
use crate::httpsig::VerifyPolicy;
use crate::problem::problem;
use audit::tiles::{self, TILE_WIDTH};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/log/tile/{*path}", get(tile))
        .route("/v1/log/signatures/{*path}", get(signatures))
        .route("/v1/log/cosignatures", axum::routing::post(cosignature))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignatureBody {
    size: u64,
    cosignature: String,
}

fn refused(status: StatusCode, kind: &str, detail: &str) -> Response {
    problem(status, kind, detail, Value::Null)
}

/// A witness's cosignature of the kept checkpoint at `size`.
async fn cosignature(State(g): State<Arc<Gateway>>, body: axum::body::Bytes) -> Response {
    let Ok(b) = serde_json::from_slice::<CosignatureBody>(&body) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "want {\"size\", \"cosignature\"}",
        );
    };
    let Ok(sig) = ledger::note::parse_sig_line(b.cosignature.trim_end()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "malformed-cosignature",
            "not a signed-note signature line",
        );
    };
    let witness = {
        let state = g.dep.state.read().unwrap_or_else(|p| p.into_inner());
        state
            .agency(&sig.name)
            .filter(|a| !a.retired && a.enrolled.roles.contains(&Role::Witness))
            .and_then(|a| state.key(&a.current_key_id))
            .and_then(|k| audit::decode_key(&k.public_key))
            .and_then(|k| ledger::CosignatureVerifier::from_key(&sig.name, k).ok())
    };
    let Some(witness) = witness else {
        return refused(
            StatusCode::FORBIDDEN,
            "not-a-witness",
            "the line is not signed by an enrolled witness",
        );
    };
    let dep = g.dep.clone();
    let line = b.cosignature;
    let added =
        tokio::task::spawn_blocking(move || dep.log.add_cosignature(b.size, &line, &witness)).await;
    match added {
        Ok(Ok(ts)) => axum::Json(json!({"size": b.size, "timestamp": ts})).into_response(),
        Ok(Err(ledger::LogError::UnknownCheckpoint { size })) => refused(
            StatusCode::NOT_FOUND,
            "no-such-checkpoint",
            &format!("no kept checkpoint of size {size}"),
        ),
        Ok(Err(e)) => refused(StatusCode::BAD_REQUEST, "bad-cosignature", &e.to_string()),
        Err(_) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "log-unavailable",
            "the cosignature could not be stored",
        ),
    }
}

fn not_found(detail: &str) -> Response {
    problem(StatusCode::NOT_FOUND, "no-such-tile", detail, Value::Null)
}

fn octets(bytes: Vec<u8>, full: bool) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if full {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=5"
        }),
    );
    r
}

/// `<N>[.p/<W>]` within a tree of `size` leaves at tile level 0: the tile
/// index and width, if that tile exists.
fn entry_tile(rest: &str, size: u64) -> Option<(u64, u64)> {
    let (n, w) = tiles::parse_tile_index(rest)?;
    let end = n.checked_mul(TILE_WIDTH)?.checked_add(w)?;
    (end <= size).then_some((n, w))
}

async fn tile(State(g): State<Arc<Gateway>>, Path(path): Path<String>, req: Request) -> Response {
    if let Some(rest) = path.strip_prefix("entries/") {
        return bundle(&g, rest, req, false).await;
    }
    let Some((level, rest)) = path.split_once('/') else {
        return not_found("want tile/<L>/<N>[.p/<W>]");
    };
    let level: Option<u8> = level
        .parse()
        .ok()
        .filter(|l: &u8| *l < 8 && l.to_string() == level);
    let (Some(level), Some((n, w))) = (level, tiles::parse_tile_index(rest)) else {
        return not_found("want tile/<L>/<N>[.p/<W>] with L from 0 to 7");
    };
    let dep = g.dep.clone();
    let hashes = tokio::task::spawn_blocking(move || dep.log.tile(level, n, w)).await;
    match hashes {
        Ok(Ok(hs)) => octets(hs.concat(), w == TILE_WIDTH),
        _ => not_found("the tree has no such tile yet"),
    }
}

async fn signatures(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    bundle(&g, &path, req, true).await
}

/// An entry bundle or its signatures, for an authenticated auditor.
async fn bundle(g: &Arc<Gateway>, rest: &str, req: Request, signatures: bool) -> Response {
    let (parts, _) = req.into_parts();
    let now = g.clock.now();
    // An auditor's reads are not logged: a signature a gateway process
    // before this one could have accepted is refused.
    if let Err(reason) = g.authenticate(
        &parts,
        &[],
        now,
        Role::Auditor,
        &VerifyPolicy::auditor(),
        crate::agency::replay::Digests::NotLogged,
    ) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "entries are for enrolled auditors: sign the request (RFC 9421) with an auditor key",
            json!({ "reason": reason }),
        );
    }
    let size = g.dep.log.size();
    let Some((n, w)) = entry_tile(rest, size) else {
        return not_found("the log has no such entry bundle yet");
    };
    let dep = g.dep.clone();
    let read = tokio::task::spawn_blocking(move || {
        (n * TILE_WIDTH..n * TILE_WIDTH + w)
            .map(|i| dep.log.entry(i).ok().flatten())
            .collect::<Option<Vec<_>>>()
    })
    .await;
    let Ok(Some(envs)) = read else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "log-unavailable",
            "the entries cannot be read right now",
            Value::Null,
        );
    };
    let bytes = if signatures {
        tiles::encode_signatures(envs.iter().map(|e| e.signatures.as_slice()))
    } else {
        match tiles::encode_entries(n * TILE_WIDTH, envs.iter().map(|e| e.entry.as_slice())) {
            Ok(b) => b,
            Err(e) => {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "entry-too-long",
                    &e.to_string(),
                    Value::Null,
                )
            }
        }
    };
    octets(bytes, w == TILE_WIDTH)
}
