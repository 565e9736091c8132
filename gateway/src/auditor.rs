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

use axum::extract::{FromRef, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use policy::Role;
use serde_json::json;

use crate::agency::{AuthFailure, Gateway};
use crate::httpsig::VerifyPolicy;
use crate::problem::Problem;
use audit::tiles::{self, TILE_WIDTH};

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Gateway>: FromRef<S>,
{
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

/// A witness's cosignature of the kept checkpoint at `size`.
async fn cosignature(
    State(g): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let Ok(b) = serde_json::from_slice::<CosignatureBody>(&body) else {
        return Err(Problem::MalformedRequest(
            "want {\"size\", \"cosignature\"}".into(),
        ));
    };
    let Ok(sig) = ledger::note::parse_sig_line(b.cosignature.trim_end()) else {
        return Err(Problem::MalformedCosignature);
    };
    let witness = {
        let state = g.dep.state()?;
        state
            .agency(&sig.name)
            .filter(|a| !a.retired && a.enrolled.roles.contains(&Role::Witness))
            .and_then(|a| state.key(&a.current_key_id))
            .and_then(|k| audit::decode_key(&k.public_key))
            .and_then(|k| ledger::CosignatureVerifier::from_key(&sig.name, k).ok())
    };
    let Some(witness) = witness else {
        return Err(Problem::NotAWitness);
    };
    let dep = g.dep.clone();
    let line = b.cosignature;
    let added =
        tokio::task::spawn_blocking(move || dep.log.add_cosignature(b.size, &line, &witness)).await;
    match added {
        Ok(Ok(ts)) => Ok(axum::Json(json!({"size": b.size, "timestamp": ts})).into_response()),
        Ok(Err(ledger::LogError::UnknownCheckpoint { size })) => {
            Err(Problem::NoSuchCheckpoint { size })
        }
        Ok(Err(e)) => Err(Problem::BadCosignature(e.to_string())),
        Err(_) => Err(Problem::LogUnavailable(
            "the cosignature could not be stored".into(),
        )),
    }
}

fn not_found(detail: &str) -> Problem {
    Problem::NoSuchTile(detail.into())
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

async fn tile(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    if let Some(rest) = path.strip_prefix("entries/") {
        return bundle(&g, rest, req, false).await;
    }
    let Some((level, rest)) = path.split_once('/') else {
        return Err(not_found("want tile/<L>/<N>[.p/<W>]"));
    };
    let level: Option<u8> = level
        .parse()
        .ok()
        .filter(|l: &u8| *l < 8 && l.to_string() == level);
    let (Some(level), Some((n, w))) = (level, tiles::parse_tile_index(rest)) else {
        return Err(not_found("want tile/<L>/<N>[.p/<W>] with L from 0 to 7"));
    };
    let dep = g.dep.clone();
    let hashes = tokio::task::spawn_blocking(move || dep.log.tile(level, n, w)).await;
    match hashes {
        Ok(Ok(hs)) => Ok(octets(hs.concat(), w == TILE_WIDTH)),
        _ => Err(not_found("the tree has no such tile yet")),
    }
}

async fn signatures(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    bundle(&g, &path, req, true).await
}

/// An entry bundle or its signatures, for an authenticated auditor.
async fn bundle(
    g: &Arc<Gateway>,
    rest: &str,
    req: Request,
    signatures: bool,
) -> Result<Response, Problem> {
    let (parts, _) = req.into_parts();
    let now = g.clock.now();
    // An auditor's reads are not logged: a signature a gateway process
    // before this one could have accepted is refused.
    let authenticated = g.authenticate(
        &parts,
        &[],
        now,
        Role::Auditor,
        &VerifyPolicy::auditor(),
        crate::agency::replay::Digests::NotLogged,
    );
    match authenticated {
        Ok(_) => {}
        Err(AuthFailure::Stopped(e)) => return Err(e.into()),
        Err(AuthFailure::Refused(reason)) => return Err(Problem::Unauthenticated {
            detail:
                "entries are for enrolled auditors: sign the request (RFC 9421) with an auditor key",
            reason,
        }),
    }
    let size = g.dep.log.size();
    let Some((n, w)) = entry_tile(rest, size) else {
        return Err(not_found("the log has no such entry bundle yet"));
    };
    let dep = g.dep.clone();
    let read = tokio::task::spawn_blocking(move || {
        (n * TILE_WIDTH..n * TILE_WIDTH + w)
            .map(|i| dep.log.entry(i).ok().flatten())
            .collect::<Option<Vec<_>>>()
    })
    .await;
    let Ok(Some(envs)) = read else {
        return Err(Problem::LogUnavailable(
            "the entries cannot be read right now".into(),
        ));
    };
    let bytes = if signatures {
        tiles::encode_signatures(envs.iter().map(|e| e.signatures.as_slice()))
    } else {
        tiles::encode_entries(n * TILE_WIDTH, envs.iter().map(|e| e.entry.as_slice()))
            .map_err(|e| Problem::EntryTooLong(e.to_string()))?
    };
    Ok(octets(bytes, w == TILE_WIDTH))
}
