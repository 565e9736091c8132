//! The participant's side (`consentry participant …`, and the tests): sign
//! in with the key, read one's own pages, sign entries, and check every
//! proof the gateway sends against its signed checkpoint before believing
//! a word of it.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::Full;
use ledger::{Checkpoint, Envelope, NoteVerifier};
use serde_json::{json, Value};

use crate::client::{fetch, ClientError};

/// An answer: status and JSON body (a problem document when not 2xx).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a page's proofs do not hold.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the checkpoint does not verify under the log's key: {0}")]
    Checkpoint(String),
    #[error("item {0} carries no proof")]
    Missing(usize),
    #[error("the proof of entry {index} does not verify against the checkpoint: {reason}")]
    Inclusion { index: u64, reason: String },
    #[error("the checkpoint is not accepted: {0}")]
    Witnesses(String),
}

pub struct ParticipantClient {
    gateway: String,
    pub participant: String,
    key_id: String,
    key: SigningKey,
    token: Option<String>,
    http: crate::client::Http,
    pub timeout: Duration,
}

impl ParticipantClient {
    /// A client of `gateway` trusting the system's roots (for `https://`).
    pub fn new(
        gateway: &str,
        participant: &str,
        key_id: &str,
        key: SigningKey,
    ) -> Result<Self, ClientError> {
        Self::with_roots(
            gateway,
            participant,
            key_id,
            key,
            &crate::tls::Roots::System,
        )
    }

    /// A client of `gateway` trusting `roots` (`--ca FILE`).
    pub fn with_roots(
        gateway: &str,
        participant: &str,
        key_id: &str,
        key: SigningKey,
        roots: &crate::tls::Roots,
    ) -> Result<Self, ClientError> {
        let gateway = crate::client::gateway_url(gateway)?;
        Ok(Self {
            http: crate::client::http(&gateway, roots)?,
            gateway,
            participant: participant.to_string(),
            key_id: key_id.to_string(),
            key,
            token: None,
            timeout: Duration::from_secs(30),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Uses `token` as the session (e.g. to show an expired one is refused).
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    async fn exchange(&self, req: http::Request<Full<Bytes>>) -> Result<Answer, ClientError> {
        let (status, _, body) = fetch(&self.http, req, &self.gateway, self.timeout).await?;
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ClientError::Malformed(format!("not json: {e}")))?
        };
        Ok(Answer { status, body })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Request<Full<Bytes>>, ClientError> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.gateway));
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        b.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| ClientError::BadUrl(self.gateway.clone()))
    }

    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.exchange(self.request("GET", path, None)?).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, ClientError> {
        self.exchange(self.request("POST", path, Some(body.to_string().into_bytes()))?)
            .await
    }

    /// A challenge, signed; returns the sign-in answer without keeping it.
    pub async fn try_sign_in(&self, key: &SigningKey) -> Result<(Answer, String), ClientError> {
        let c = self
            .post_json(
                "/v1/participant/challenge",
                &json!({"participant": self.participant}),
            )
            .await?;
        let (Some(challenge), Some(message)) =
            (c.body["challenge"].as_str(), c.body["sign"].as_str())
        else {
            return Err(ClientError::Malformed(format!(
                "no challenge in the answer ({})",
                c.status
            )));
        };
        // Sign what we expect, not merely what we are told to: the message
        // must name this gateway and this person.
        let expected = super::session::signin_message(&self.origin(), &self.participant, challenge);
        if message != expected {
            return Err(ClientError::Malformed(
                "the gateway asked to sign something other than a sign-in for this gateway and person".into(),
            ));
        }
        let signature = B64.encode(key.sign(expected.as_bytes()).to_bytes());
        let a = self
            .post_json(
                "/v1/participant/session",
                &json!({"participant": self.participant, "challenge": challenge, "signature": signature}),
            )
            .await?;
        Ok((a, challenge.to_string()))
    }

    /// Signs in with the client's key and keeps the session.
    pub async fn sign_in(&mut self) -> Result<Answer, ClientError> {
        let (a, _) = self.try_sign_in(&self.key.clone()).await?;
        if a.ok() {
            self.token = a.body["token"].as_str().map(str::to_string);
        }
        Ok(a)
    }

    fn origin(&self) -> String {
        self.gateway.clone()
    }

    /// Signs `event` with the participant's key (plus `cosigners`) and
    /// posts it to `/v1/entries`.
    pub async fn submit(
        &self,
        event: &policy::Event,
        cosigners: &[(&str, &SigningKey)],
    ) -> Result<Answer, ClientError> {
        let bytes = event
            .to_json()
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let mut env = Envelope::sign(bytes, &self.key_id, &self.key);
        for (id, k) in cosigners {
            env.add_signature(id, k);
        }
        let req = self.request("POST", "/v1/entries", Some(env.to_json().into_bytes()))?;
        self.exchange(req).await
    }
}

/// What a participant's key file needs beside it (`KEY.json`): whose key
/// it is and which gateway, log key and CA to use, so that every later
/// command needs only `--key`. `consentry participant enrol` and
/// `restore` write one, and so does the demo for its own participants.
#[derive(Clone, Debug)]
pub struct Profile {
    pub participant: String,
    pub key_id: String,
    pub gateway: String,
    pub vkey: std::path::PathBuf,
    /// The CA trusted at enrolment (`--ca`, or the demo's); none: the
    /// system's roots.
    pub ca: Option<std::path::PathBuf>,
}

impl Profile {
    /// Where the profile of the key in `key` is.
    pub fn beside(key: &std::path::Path) -> std::path::PathBuf {
        let mut p = key.as_os_str().to_owned();
        p.push(".json");
        std::path::PathBuf::from(p)
    }

    /// Writes the profile beside `key`, its paths absolute so that it
    /// holds from any folder.
    pub fn write_beside(&self, key: &std::path::Path) -> std::io::Result<()> {
        // JSON holds text: a path that is not UTF-8 is refused, not mangled.
        let absolute = |p: &std::path::Path| {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
            p.to_str().map(str::to_string).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is not UTF-8", p.display()),
                )
            })
        };
        let mut text = json!({
            "participant": self.participant,
            "key_id": self.key_id,
            "gateway": self.gateway,
            "vkey": absolute(&self.vkey)?,
        });
        if let Some(ca) = &self.ca {
            text["ca"] = json!(absolute(ca)?);
        }
        std::fs::write(Self::beside(key), format!("{text:#}\n"))
    }
}

/// [`verify_page`], and then the checkpoint must carry the cosignatures
/// of `witnesses`' quorum: a checkpoint too few trusted witnesses saw may
/// be one of several histories shown to different people.
pub fn verify_page_witnessed(
    page: &Value,
    log_key: &NoteVerifier,
    witnesses: &ledger::WitnessPolicy,
) -> Result<u64, ProofError> {
    let size = verify_page(page, log_key)?;
    witnesses
        .check(page["checkpoint"].as_str().unwrap_or_default())
        .map_err(|e| ProofError::Witnesses(e.to_string()))?;
    Ok(size)
}

/// Checks a page from `/v1/me/consents` or `/v1/me/disclosures`: the
/// checkpoint under the log's key, then every item's entry in it. Returns
/// the checkpoint's size.
pub fn verify_page(page: &Value, log_key: &NoteVerifier) -> Result<u64, ProofError> {
    let note = page["checkpoint"].as_str().unwrap_or_default();
    // Cosignature lines after the log's own are for witnesses; the log's
    // signature is what this checks.
    let cp = Checkpoint::open(note, log_key).map_err(|e| ProofError::Checkpoint(e.to_string()))?;
    let empty = Vec::new();
    for (n, item) in page["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let proofs: Vec<&Value> = if item.get("grant").is_some() {
            let mut v = vec![&item["grant"]];
            if let Some(p) = item["revocation"].get("proof") {
                v.push(p);
            }
            v
        } else {
            vec![&item["proof"]]
        };
        for p in proofs {
            verify_item(p, &cp).map_err(|e| match e {
                None => ProofError::Missing(n),
                Some(e) => e,
            })?;
        }
    }
    Ok(cp.size)
}

fn verify_item(p: &Value, cp: &Checkpoint) -> Result<(), Option<ProofError>> {
    let index = p["index"].as_u64().ok_or(None)?;
    let entry = p["entry"]
        .as_str()
        .and_then(|e| B64.decode(e).ok())
        .ok_or(None)?;
    let hashes: Option<Vec<ledger::Hash>> = p["inclusion"]
        .as_array()
        .ok_or(None)?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|h| B64.decode(h).ok())
                .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        })
        .collect();
    let hashes = hashes.ok_or(None)?;
    let leaf = ledger::merkle::leaf_hash(&entry);
    ledger::merkle::verify_inclusion(&leaf, index, cp.size, &hashes, &cp.root).map_err(|e| {
        Some(ProofError::Inclusion {
            index,
            reason: e.to_string(),
        })
    })
}
