//! RFC 9457 problem documents: the one shape of every error answer, from
//! the gateway and from the sample record systems alike.
//!
//! Every error a handler gives is a [`Problem`]: the one place where a
//! kind is paired with its status (as rustls maps its one `Error` to the
//! wire in one place), so that no two routes answer the same trouble two
//! ways. A refusal that must not tell one reason from another (a
//! participant's entry refused by someone else, a sign-in, an agency's
//! deny) is one variant with one body: the enum cannot reopen an oracle
//! that the routes closed.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::deployment::{Stopped, SubmitError};

/// Every error answer, by what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// 400: a body or query that is not what the route takes.
    MalformedRequest(String),
    /// 400: a signed entry that is not one (bad JSON, bad encoding).
    MalformedEntry(String),
    /// 400: an entry that is not a consentry event.
    NotAnEvent(String),
    /// 400: an authenticated request that asks for something the agency
    /// path does not forward; `reason` is the grammar's code.
    BadAsk {
        reason: &'static str,
        detail: String,
    },
    /// 400: not a signed-note signature line.
    MalformedCosignature,
    /// 400: a cosignature the log refused.
    BadCosignature(String),
    /// 400: an intake's signature does not verify.
    BadIntakeSignature,
    /// 400: an intake names an agency that cannot enrol participants.
    UnknownAgency,
    /// 401: a route that needs a live session.
    NotSignedIn,
    /// 401: one answer for every failed sign-in.
    SignInRefused,
    /// 401: an entry's signature does not verify under a key the registry
    /// holds (an unknown key and a bad signature alike).
    SignatureInvalid,
    /// 401: an RFC 9421 signature not accepted; `reason` is its code.
    Unauthenticated {
        detail: &'static str,
        reason: &'static str,
    },
    /// 403: an entry refused because its signer may not make it: one body
    /// for every such refusal of a participant's entry.
    NotAuthorised(String),
    /// 403: a sign-in that is not JSON from the gateway's own pages.
    CrossSiteSignIn,
    /// 403: a cosignature not from an enrolled witness.
    NotAWitness,
    /// 403: the agency's deny, with only the agency's view of why.
    Denied {
        reasons: Value,
    },
    /// 404: a consent that is not the caller's is answered as one that
    /// does not exist.
    NoSuchConsent,
    NoSuchIntake,
    NoSuchTile(String),
    NoSuchCheckpoint {
        size: u64,
    },
    /// 404: no such route.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408.
    Timeout,
    /// 413.
    BodyTooLarge,
    /// 422: an entry the rules refuse, with any detail members.
    RefusedByPolicy {
        detail: String,
        extra: Value,
    },
    /// 422: an entry whose stated time is too far from the gateway's clock.
    ClockSkew(String),
    /// 429: a source over the route's rate.
    TooManyRequests,
    /// 429: a source over its rate for one kind of work.
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    /// 429: a source with as many waiting as it may hold.
    TooManyWaiting {
        detail: String,
        retry_after_secs: u64,
    },
    /// 431.
    HeadersTooLarge {
        bytes: usize,
        max: usize,
    },
    /// 500: an entry longer than a tile may carry.
    EntryTooLong(String),
    /// 502 or 504: the holder's record system gave nothing releasable.
    Upstream {
        status: StatusCode,
        reason: Value,
    },
    /// 503: the log cannot be written or read; nothing was released.
    LogUnavailable(String),
    /// 503: the data disk is below its reserve.
    DiskReserve(String),
    /// 503: a store full for everyone.
    Busy {
        detail: String,
        retry_after_secs: u64,
    },
    /// Any other error status, said in words (the axum rejections the
    /// layers do not name).
    Other(StatusCode),
    /// `about:blank`: the status says it all. For the sample record
    /// systems and pages a person reads.
    Blank(StatusCode, String),
}

impl Problem {
    pub fn status(&self) -> StatusCode {
        use Problem::*;
        match self {
            MalformedRequest(_)
            | MalformedEntry(_)
            | NotAnEvent(_)
            | BadAsk { .. }
            | MalformedCosignature
            | BadCosignature(_)
            | BadIntakeSignature
            | UnknownAgency => StatusCode::BAD_REQUEST,
            NotSignedIn | SignInRefused | SignatureInvalid | Unauthenticated { .. } => {
                StatusCode::UNAUTHORIZED
            }
            NotAuthorised(_) | CrossSiteSignIn | NotAWitness | Denied { .. } => {
                StatusCode::FORBIDDEN
            }
            NoSuchConsent | NoSuchIntake | NoSuchTile(_) | NoSuchCheckpoint { .. } | NotFound => {
                StatusCode::NOT_FOUND
            }
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Timeout => StatusCode::REQUEST_TIMEOUT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RefusedByPolicy { .. } | ClockSkew(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TooManyRequests | RateLimited { .. } | TooManyWaiting { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            EntryTooLong(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream { status, .. } => *status,
            LogUnavailable(_) | DiskReserve(_) | Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Other(status) | Blank(status, _) => *status,
        }
    }

    /// The problem type's last segment (`https://consentry.dev/problems/…`);
    /// `None` for `about:blank`.
    pub fn kind(&self) -> Option<&'static str> {
        use Problem::*;
        Some(match self {
            MalformedRequest(_) => "malformed-request",
            MalformedEntry(_) => "malformed-entry",
            NotAnEvent(_) => "not-an-event",
            BadAsk { reason, .. } => reason,
            MalformedCosignature => "malformed-cosignature",
            BadCosignature(_) => "bad-cosignature",
            BadIntakeSignature => "bad-signature",
            UnknownAgency => "unknown-agency",
            NotSignedIn => "not-signed-in",
            SignInRefused => "sign-in-refused",
            SignatureInvalid => "signature-invalid",
            Unauthenticated { .. } => "unauthenticated",
            NotAuthorised(_) => "not-authorised",
            CrossSiteSignIn => "cross-site-sign-in",
            NotAWitness => "not-a-witness",
            Denied { .. } => "denied",
            NoSuchConsent => "no-such-consent",
            NoSuchIntake => "no-such-intake",
            NoSuchTile(_) => "no-such-tile",
            NoSuchCheckpoint { .. } => "no-such-checkpoint",
            NotFound => "not-found",
            MethodNotAllowed => "method-not-allowed",
            Timeout => "timeout",
            BodyTooLarge => "body-too-large",
            RefusedByPolicy { .. } => "refused-by-policy",
            ClockSkew(_) => "clock-skew",
            TooManyRequests => "too-many-requests",
            RateLimited { .. } => "rate-limited",
            TooManyWaiting { .. } => "too-many-waiting",
            HeadersTooLarge { .. } => "headers-too-large",
            EntryTooLong(_) => "entry-too-long",
            Upstream { .. } => "upstream",
            LogUnavailable(_) => "log-unavailable",
            DiskReserve(_) => "disk-reserve",
            Busy { .. } => "busy",
            Other(_) => "error",
            Blank(..) => return None,
        })
    }

    fn detail(&self) -> String {
        use Problem::*;
        match self {
            MalformedRequest(d)
            | MalformedEntry(d)
            | NotAnEvent(d)
            | BadCosignature(d)
            | NotAuthorised(d)
            | NoSuchTile(d)
            | ClockSkew(d)
            | EntryTooLong(d)
            | LogUnavailable(d)
            | DiskReserve(d)
            | Blank(_, d) => d.clone(),
            BadAsk { detail, .. }
            | RefusedByPolicy { detail, .. }
            | RateLimited { detail, .. }
            | TooManyWaiting { detail, .. }
            | Busy { detail, .. } => detail.clone(),
            Unauthenticated { detail, .. } => (*detail).into(),
            MalformedCosignature => "not a signed-note signature line".into(),
            BadIntakeSignature => {
                "the signature does not verify under the key this intake enrols".into()
            }
            UnknownAgency => "that agency cannot enrol participants".into(),
            NotSignedIn => "sign in first: this needs a live session".into(),
            SignInRefused => {
                "the signature, the challenge or the id was not accepted; ask for a new challenge"
                    .into()
            }
            SignatureInvalid => "a signature does not verify under a key the registry holds".into(),
            CrossSiteSignIn => {
                "sign-in takes application/json from this gateway's own pages only".into()
            }
            NotAWitness => "the line is not signed by an enrolled witness".into(),
            Denied { .. } => {
                "this request is not covered by a consent the gateway can act on".into()
            }
            NoSuchConsent => "you have no consent with that id".into(),
            NoSuchIntake => "no intake has that code, or it expired; start again".into(),
            NoSuchCheckpoint { size } => format!("no kept checkpoint of size {size}"),
            NotFound => "no such route".into(),
            MethodNotAllowed => "this route does not take that method".into(),
            Timeout => "the request took longer than the limit".into(),
            BodyTooLarge => "the request body is over the limit".into(),
            TooManyRequests => {
                "this source sent more requests than its rate allows; wait as Retry-After says"
                    .into()
            }
            HeadersTooLarge { bytes, max } => {
                format!("the request's headers are {bytes} bytes, over the limit of {max}")
            }
            Upstream { .. } => {
                "the holder's record system gave nothing that could be released".into()
            }
            Other(_) => "the request could not be served".into(),
        }
    }

    /// Members beyond the standard ones.
    fn extra(&self) -> Value {
        use Problem::*;
        match self {
            Unauthenticated { reason, .. } => json!({ "reason": reason }),
            Denied { reasons } => json!({ "reasons": reasons }),
            Upstream { reason, .. } => json!({ "reason": reason }),
            RefusedByPolicy { extra, .. } => extra.clone(),
            RateLimited {
                retry_after_secs, ..
            }
            | TooManyWaiting {
                retry_after_secs, ..
            }
            | Busy {
                retry_after_secs, ..
            } => json!({ "retry_after_secs": retry_after_secs }),
            _ => Value::Null,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Problem::RateLimited {
                retry_after_secs, ..
            }
            | Problem::TooManyWaiting {
                retry_after_secs, ..
            }
            | Problem::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = match self.kind() {
            Some(k) => format!("https://consentry.dev/problems/{k}"),
            None => "about:blank".into(),
        };
        let mut r = document(status, &kind, &self.detail(), self.extra());
        if let Some(retry) = self.retry_after_secs() {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        }
        r
    }
}

fn document(status: StatusCode, kind: &str, detail: &str, extra: Value) -> Response {
    let mut body = json!({
        "type": kind,
        "title": status.canonical_reason(),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

impl From<Stopped> for Problem {
    fn from(e: Stopped) -> Self {
        Problem::LogUnavailable(e.to_string())
    }
}

/// How `POST /v1/entries` answers a refused entry. A refusal never tells
/// anyone but the participant whether a participant is enrolled: an
/// unknown key and a bad signature get the same answer, and `policy` gives
/// one error for every refusal of a participant's entry by someone else.
impl From<SubmitError> for Problem {
    fn from(e: SubmitError) -> Self {
        use ledger::EntryError;
        use policy::ApplyError;
        match e {
            SubmitError::Entry(EntryError::UnknownKey(_) | EntryError::BadSignature(_)) => {
                Problem::SignatureInvalid
            }
            SubmitError::Entry(other) => Problem::MalformedEntry(other.to_string()),
            SubmitError::Parse(p) => Problem::NotAnEvent(p.to_string()),
            SubmitError::Policy(ApplyError::NotAuthorised | ApplyError::EnrolmentRefused) => {
                Problem::NotAuthorised(e.to_string())
            }
            SubmitError::Policy(ApplyError::ForbiddenPurpose { purpose, language }) => {
                let reason = policy::Reason::PurposeForbidden;
                Problem::RefusedByPolicy {
                    detail: reason.sentence(language).into(),
                    extra: json!({
                        "reason": reason.code(),
                        "purpose": purpose,
                        "language": language.code(),
                    }),
                }
            }
            SubmitError::Policy(p) => Problem::RefusedByPolicy {
                detail: p.to_string(),
                extra: Value::Null,
            },
            SubmitError::DiskReserve { .. } => Problem::DiskReserve(e.to_string()),
            SubmitError::Skew { .. } => Problem::ClockSkew(e.to_string()),
            SubmitError::Log(_)
            | SubmitError::Stopped
            | SubmitError::Poisoned(_)
            | SubmitError::Busy
            | SubmitError::Replay(_)
            | SubmitError::NoGatewayKey
            | SubmitError::BadTrust(_) => Problem::LogUnavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(p: Problem) -> (StatusCode, Value, Option<HeaderValue>) {
        let r = p.into_response();
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).cloned();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), retry)
    }

    #[tokio::test]
    async fn a_problem_is_one_document_with_its_status_kind_and_members() {
        let (status, v, retry) = body(Problem::Unauthenticated {
            detail: "the request's signature was not accepted",
            reason: "expired",
        })
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(v["type"], "https://consentry.dev/problems/unauthenticated");
        assert_eq!(v["status"], 401);
        assert_eq!(v["title"], "Unauthorized");
        assert_eq!(v["reason"], "expired");
        assert!(retry.is_none());

        let (status, v, retry) = body(Problem::RateLimited {
            detail: "slow down".into(),
            retry_after_secs: 7,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(v["retry_after_secs"], 7);
        assert_eq!(retry, Some(HeaderValue::from(7)));

        let (_, v, _) = body(Problem::Blank(StatusCode::NOT_FOUND, "no such page".into())).await;
        assert_eq!(v["type"], "about:blank");
    }

    /// The refusals that are uniform on purpose have no field a caller
    /// could fill with the reason: one body each, whoever is refused.
    #[tokio::test]
    async fn the_uniform_refusals_have_one_body() {
        for p in [
            Problem::SignInRefused,
            Problem::SignatureInvalid,
            Problem::NoSuchConsent,
        ] {
            let (a, b) = (body(p.clone()).await, body(p).await);
            assert_eq!(a.1, b.1);
        }
    }
}
