//! RFC 9457 problem documents: the one shape of every error answer, from
//! the gateway and from the sample record systems alike.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

fn document(status: StatusCode, kind: &str, detail: &str, extra: serde_json::Value) -> Response {
    let mut body = serde_json::json!({
        "type": kind,
        "title": status.canonical_reason(),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(b), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// A problem of type `https://consentry.dev/problems/{kind}`, with any
/// `extra` members (an object) added.
pub fn problem(status: StatusCode, kind: &str, detail: &str, extra: serde_json::Value) -> Response {
    document(
        status,
        &format!("https://consentry.dev/problems/{kind}"),
        detail,
        extra,
    )
}

/// A problem of type `about:blank`: the status says it all.
pub fn blank(status: StatusCode, detail: &str) -> Response {
    document(status, "about:blank", detail, serde_json::Value::Null)
}
