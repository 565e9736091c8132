//! The agency's side: sign a request with RFC 9421 and send it to a
//! gateway (`consentry request`), or post a signed entry to `/v1/entries`
//! (`consentry revoke`), or co-sign a participant's enrolment at intake
//! (`consentry intake`). Errors are one clear sentence each: a wrong key,
//! an unreachable gateway, a malformed answer.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Hyper;

use crate::httpsig::{self, Component, OwnedMessage, SignatureParams};
use crate::words::{CATEGORIES_HEADER, DECISION_HEADER, NOTICE_HEADER, PURPOSE_HEADER};

/// Largest answer the client reads.
pub const ANSWER_BYTES_MAX: usize = 16 * 1024 * 1024;
/// How long a request's signature is valid.
const SIGNATURE_LIFETIME_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the gateway url {0:?} is not usable (want https://host[:port], or http://host:port on this machine)")]
    BadUrl(String),
    #[error("the gateway at {url} is not trusted: {reason}; give the CA certificate that issued its certificate with --ca FILE (verification is never turned off)")]
    Untrusted { url: String, reason: String },
    #[error(
        "TLS with the gateway at {url} failed: {reason} (does it serve HTTPS at that address?)"
    )]
    TlsFailed { url: String, reason: String },
    // Not a `source` as well: the CLI prints the chain, and would say it
    // twice.
    #[error("the client's TLS: {0}")]
    Tls(crate::tls::TlsError),
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the gateway at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("the gateway's answer is malformed: {0}")]
    Malformed(String),
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

impl From<crate::tls::TlsError> for ClientError {
    fn from(e: crate::tls::TlsError) -> Self {
        ClientError::Tls(e)
    }
}

/// A failed handshake, read: a certificate refused, in words (which CA
/// the client trusts is the usual cause, not a signature gone bad), or
/// TLS itself failing.
fn tls_refused(e: &rustls::Error, url: &str) -> ClientError {
    use rustls::Error as R;
    match e {
        R::InvalidCertificate(_) => ClientError::Untrusted {
            url: url.to_string(),
            reason: untrusted_reason(e),
        },
        other => ClientError::TlsFailed {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

fn untrusted_reason(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as R};
    match e {
        R::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "its certificate is not issued by a CA this client trusts".into()
        }
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "its certificate has expired".into()
        }
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "its certificate is not valid yet (is this machine's clock right?)".into()
        }
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "its certificate is for another name than the URL's".into()
        }
        R::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            "its certificate is not a server's".into()
        }
        other => other.to_string(),
    }
}

/// One request for records.
#[derive(Clone, Debug)]
pub struct Ask {
    pub holder: String,
    pub participant: String,
    /// The FHIR path at the holder, e.g. `Observation` (query allowed).
    pub path: String,
    pub purpose: String,
    pub categories: Vec<String>,
}

/// What the gateway answered, read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub decision_id: Option<String>,
    pub index: Option<u64>,
    pub released: Vec<String>,
    pub notice: Option<String>,
    pub content_type: String,
    pub body: Bytes,
}

/// A signed request, ready to send (the bench pre-signs many).
#[derive(Clone, Debug)]
pub struct Signed {
    pub uri: String,
    pub headers: http::HeaderMap,
}

/// The clients' pooled HTTP/1.1 connection, TLS for `https://` gateways.
pub type Http = Hyper<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long a client waits to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client for the gateway at `gateway` (a checked URL), trusting
/// `roots` when it is `https://`.
pub(crate) fn http(gateway: &str, roots: &crate::tls::Roots) -> Result<Http, ClientError> {
    Ok(crate::tls::client::client_for(
        gateway,
        roots,
        64,
        CONNECT_TIMEOUT,
    )?)
}

pub struct AgencyClient {
    gateway: String,
    key_id: String,
    key: SigningKey,
    http: Http,
    pub timeout: Duration,
}

fn header(h: &mut http::HeaderMap, name: &'static str, value: &str) -> Result<(), ClientError> {
    let v = http::HeaderValue::from_str(value)
        .map_err(|_| ClientError::Sign(format!("{name} is not a valid header value")))?;
    h.insert(name, v);
    Ok(())
}

impl AgencyClient {
    /// A client of `gateway` trusting the system's roots (for `https://`).
    pub fn new(gateway: &str, key_id: &str, key: SigningKey) -> Result<Self, ClientError> {
        Self::with_roots(gateway, key_id, key, &crate::tls::Roots::System)
    }

    /// A client of `gateway` trusting `roots` (`--ca FILE`).
    pub fn with_roots(
        gateway: &str,
        key_id: &str,
        key: SigningKey,
        roots: &crate::tls::Roots,
    ) -> Result<Self, ClientError> {
        let gateway = gateway_url(gateway)?;
        Ok(Self {
            http: http(&gateway, roots)?,
            gateway,
            key_id: key_id.to_string(),
            key,
            timeout: Duration::from_secs(30),
        })
    }

    /// Signs `ask` at `now` with a fresh nonce.
    pub fn sign(&self, ask: &Ask, now: i64) -> Result<Signed, ClientError> {
        let uri = format!(
            "{}/v1/records/{}/{}/{}",
            self.gateway,
            ask.holder,
            ask.participant,
            ask.path.trim_start_matches('/')
        );
        let mut headers = http::HeaderMap::new();
        header(&mut headers, PURPOSE_HEADER, &ask.purpose)?;
        header(&mut headers, CATEGORIES_HEADER, &ask.categories.join(", "))?;
        header(&mut headers, "accept", "application/fhir+json")?;
        self.sign_get(
            uri,
            headers,
            vec![
                Component::Method,
                Component::TargetUri,
                Component::field(PURPOSE_HEADER),
                Component::field(CATEGORIES_HEADER),
            ],
            now,
        )
    }

    /// Signs a GET of `uri` with `headers`, covering `components`, at
    /// `now`, with a fresh nonce.
    fn sign_get(
        &self,
        uri: String,
        mut headers: http::HeaderMap,
        components: Vec<Component>,
        now: i64,
    ) -> Result<Signed, ClientError> {
        let msg = OwnedMessage::from_parts("GET", &uri, &headers)
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let params = SignatureParams {
            expires: Some(now + SIGNATURE_LIFETIME_SECS),
            nonce: Some(httpsig::fresh_nonce()),
            include_alg: true,
            ..SignatureParams::new(components, now, &self.key_id)
        };
        let (input, sig) = httpsig::sign(&msg.view(&[]), &params, "sig1", &self.key)
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        header(&mut headers, "signature-input", &input)?;
        header(&mut headers, "signature", &sig)?;
        Ok(Signed { uri, headers })
    }

    /// A GET of `path` on the gateway, signed (RFC 9421: `@method`,
    /// `@target-uri`, created, expires, a fresh nonce) as an auditor's
    /// reads of the log's entries must be.
    pub async fn signed_get(&self, path: &str, now: i64) -> Result<Reply, ClientError> {
        let signed = self.sign_get(
            format!("{}{path}", self.gateway),
            http::HeaderMap::new(),
            vec![Component::Method, Component::TargetUri],
            now,
        )?;
        self.send(signed).await
    }

    /// A public GET of `path` on the gateway (checkpoint, hash tiles).
    pub async fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let req = http::Request::get(format!("{}{path}", self.gateway))
            .body(Full::new(Bytes::new()))
            .map_err(|_| ClientError::BadUrl(self.gateway.clone()))?;
        self.exchange(req).await
    }

    /// A POST of `body` as JSON to `path` (a witness's cosignature).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, ClientError> {
        let req = http::Request::post(format!("{}{path}", self.gateway))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|_| ClientError::BadUrl(self.gateway.clone()))?;
        self.exchange(req).await
    }

    /// Sends a signed request and reads the whole answer.
    pub async fn send(&self, signed: Signed) -> Result<Reply, ClientError> {
        let mut req = http::Request::get(&signed.uri);
        if let Some(h) = req.headers_mut() {
            *h = signed.headers;
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|_| ClientError::BadUrl(signed.uri.clone()))?;
        self.exchange(req).await
    }

    /// Signs and sends.
    pub async fn request(&self, ask: &Ask, now: i64) -> Result<Reply, ClientError> {
        let signed = self.sign(ask, now)?;
        self.send(signed).await
    }

    /// Posts a signed entry (its envelope JSON) to `/v1/entries`.
    pub async fn post_entry(&self, envelope_json: String) -> Result<Reply, ClientError> {
        let req = http::Request::post(format!("{}/v1/entries", self.gateway))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(envelope_json)))
            .map_err(|_| ClientError::BadUrl(self.gateway.clone()))?;
        self.exchange(req).await
    }

    /// Completes a participant's enrolment at this agency's intake: reads
    /// the intake by the code the person shows, checks it enrols someone
    /// here with the key that signed it, co-signs the same bytes with the
    /// agency's key and posts the entry. Returns the participant id and the
    /// gateway's answer.
    pub async fn confirm_intake(&self, code: &str) -> Result<(String, Reply), ClientError> {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let req = http::Request::get(format!("{}/v1/participant/intakes/{code}", self.gateway))
            .body(Full::new(Bytes::new()))
            .map_err(|_| ClientError::BadUrl(self.gateway.clone()))?;
        let got = self.exchange(req).await?;
        let intake: serde_json::Value = serde_json::from_slice(&got.body)
            .map_err(|e| ClientError::Malformed(format!("not json: {e}")))?;
        if got.status != 200 {
            return Err(ClientError::Malformed(format!(
                "intake {code}: {}",
                intake["detail"].as_str().unwrap_or("refused")
            )));
        }
        let field = |k: &str| {
            intake[k]
                .as_str()
                .and_then(|v| B64.decode(v).ok())
                .ok_or_else(|| ClientError::Malformed(format!("intake without {k}")))
        };
        let entry = field("entry")?;
        let signature: [u8; 64] = field("signature")
            .map_err(|_| ClientError::Malformed("the participant has not signed yet".into()))?
            .try_into()
            .map_err(|_| ClientError::Malformed("signature length".into()))?;
        // Co-sign only what this agency is asked to vouch for: an
        // enrolment here, signed by the key it enrols.
        let me = self.key_id.split(':').next().unwrap_or_default();
        let enrolled = match policy::parse_event(&entry) {
            Ok(policy::Event::ParticipantEnrolled(e)) => e,
            _ => {
                return Err(ClientError::Malformed(
                    "the intake is not an enrolment".into(),
                ))
            }
        };
        if enrolled.enrolled_by != me {
            return Err(ClientError::Malformed(format!(
                "the intake enrols at {}, not at {me}",
                enrolled.enrolled_by
            )));
        }
        let key = audit::decode_key(&enrolled.public_key)
            .ok_or_else(|| ClientError::Malformed("the enrolled key does not decode".into()))?;
        key.verify_strict(&entry, &ed25519_dalek::Signature::from_bytes(&signature))
            .map_err(|_| {
                ClientError::Malformed("the participant's signature does not verify".into())
            })?;
        let mut env = ledger::Envelope {
            entry,
            signatures: vec![ledger::EntrySignature {
                key_id: enrolled.key_id.clone(),
                signature,
            }],
        };
        env.add_signature(&self.key_id, &self.key);
        let reply = self.post_entry(env.to_json()).await?;
        Ok((enrolled.participant, reply))
    }

    async fn exchange(&self, req: http::Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        let (status, h, body) = fetch(&self.http, req, &self.gateway, self.timeout).await?;
        let text = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (decision_id, index) = match text(DECISION_HEADER) {
            Some(v) => {
                let (id, idx) = v
                    .split_once("; index=")
                    .ok_or_else(|| ClientError::Malformed(format!("decision header {v:?}")))?;
                let idx = idx
                    .parse()
                    .map_err(|_| ClientError::Malformed(format!("decision header {v:?}")))?;
                (Some(id.to_string()), Some(idx))
            }
            None => (None, None),
        };
        Ok(Reply {
            status,
            decision_id,
            index,
            released: text("consentry-released")
                .map(|v| v.split(',').map(|c| c.trim().to_string()).collect())
                .unwrap_or_default(),
            notice: text(NOTICE_HEADER),
            content_type: text("content-type").unwrap_or_default(),
            body,
        })
    }
}

/// A gateway's base URL, checked (`https://host[:port]` or
/// `http://host:port`) and without a trailing slash.
pub(crate) fn gateway_url(gateway: &str) -> Result<String, ClientError> {
    let gateway = gateway.trim_end_matches('/').to_string();
    let uri: http::Uri = gateway
        .parse()
        .map_err(|_| ClientError::BadUrl(gateway.clone()))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
    if !scheme_ok || uri.authority().is_none() {
        return Err(ClientError::BadUrl(gateway));
    }
    Ok(gateway)
}

/// Sends `req` to `gateway` and reads the whole answer (at most
/// [`ANSWER_BYTES_MAX`]) within `timeout`; every failure is one clear
/// error.
pub(crate) async fn fetch(
    http: &Http,
    req: http::Request<Full<Bytes>>,
    gateway: &str,
    timeout: Duration,
) -> Result<(u16, http::HeaderMap, Bytes), ClientError> {
    let exchange = async {
        let resp =
            http.request(req)
                .await
                .map_err(|e| match crate::tls::client::tls_failure(&e) {
                    Some(tls) => tls_refused(&tls, gateway),
                    None => ClientError::Unreachable {
                        url: gateway.to_string(),
                        reason: std::error::Error::source(&e)
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| e.to_string()),
                    },
                })?;
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = Limited::new(resp.into_body(), ANSWER_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))?
            .to_bytes();
        Ok::<_, ClientError>((status, h, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(gateway.to_string(), timeout))?
}

/// The reply in words, for a person at a terminal.
pub fn describe(reply: &Reply) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let reason = http::StatusCode::from_u16(reply.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let _ = write!(out, "{} {reason}", reply.status);
    if let (Some(id), Some(i)) = (&reply.decision_id, reply.index) {
        let _ = write!(out, "  decision {id} (log entry #{i})");
    }
    out.push('\n');
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status == 200 {
        let _ = writeln!(out, "released: {}", reply.released.join(", "));
        let entries = json["entry"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "records ({}):", entries.len());
        for e in entries {
            let r = &e["resource"];
            let div = r["text"]["div"].as_str().unwrap_or_default();
            let text = strip_tags(div);
            let _ = writeln!(
                out,
                "  {} {}: {}",
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?"),
                text
            );
        }
        if let Some(n) = &reply.notice {
            let _ = writeln!(out, "notice: {n}");
        }
    } else if reply.content_type.starts_with("application/problem+json") {
        let reasons: Vec<String> = json["reasons"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{}", json["detail"].as_str().unwrap_or_default());
        if !reasons.is_empty() {
            let _ = writeln!(out, "reasons: {}", reasons.join(", "));
        }
        if let Some(r) = json["reason"].as_str() {
            let _ = writeln!(out, "reason: {r}");
        }
        if let Some(i) = json["index"].as_u64() {
            let _ = writeln!(out, "log entry #{i}");
        }
    } else {
        let _ = writeln!(out, "{}", String::from_utf8_lossy(&reply.body).trim());
    }
    out
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Mirrors the gateway's log into `dir` as an audit bundle (the layout of
/// `audit::bundle`): the checkpoint, then every entry bundle, signature
/// bundle and level-0 hash tile it covers, fetched as an auditor. Full
/// tiles already in `dir` are kept (they never change). The auditor's own
/// `trust` and `log_key` are written beside them: nothing fetched is
/// trusted until `audit::verify` has checked it. Returns the size.
pub async fn mirror_log(
    client: &AgencyClient,
    dir: &std::path::Path,
    trust: &policy::Trust,
    log_key: &ledger::NoteVerifier,
    now: impl Fn() -> i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, ClientError> {
    use audit::bundle::{trust_json, CHECKPOINT_FILE, TRUST_FILE, VKEY_FILE};
    use audit::tiles::{tile_path, TILE_WIDTH};
    let write = |rel: &str, bytes: &[u8]| -> Result<(), ClientError> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ClientError::Malformed(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&p, bytes)
            .map_err(|e| ClientError::Malformed(format!("{}: {e}", p.display())))
    };
    let cp = client.get("/v1/log/checkpoint").await?;
    if cp.status != 200 {
        return Err(ClientError::Malformed(format!(
            "checkpoint: status {}",
            cp.status
        )));
    }
    let note = String::from_utf8(cp.body.to_vec())
        .map_err(|_| ClientError::Malformed("the checkpoint is not UTF-8".into()))?;
    // Opened here only to learn the size; the verifier opens it again.
    let size = ledger::Checkpoint::open(&note, log_key)
        .map_err(|e| ClientError::Malformed(format!("the checkpoint does not verify: {e}")))?
        .size;
    let tiles = size.div_ceil(TILE_WIDTH);
    for n in 0..tiles {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
        for (kind, signed) in [
            ("tile/entries", true),
            ("signatures", true),
            ("tile/0", false),
        ] {
            let rel = tile_path(kind, n, width);
            if width == TILE_WIDTH && dir.join(&rel).exists() {
                continue;
            }
            let path = format!("/v1/log/{rel}");
            let r = if signed {
                client.signed_get(&path, now()).await?
            } else {
                client.get(&path).await?
            };
            if r.status != 200 {
                let detail = serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v["detail"].as_str().map(str::to_string))
                    .unwrap_or_default();
                return Err(ClientError::Malformed(format!(
                    "{path}: status {} {detail}",
                    r.status
                )));
            }
            write(&rel, &r.body)?;
        }
        progress(((n + 1) * TILE_WIDTH).min(size), size);
    }
    write(CHECKPOINT_FILE, note.as_bytes())?;
    write(VKEY_FILE, format!("{log_key}\n").as_bytes())?;
    write(TRUST_FILE, trust_json(trust).as_bytes())?;
    Ok(size)
}
