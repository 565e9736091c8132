//! Forwarding an allowed request to the holder's upstream, signed by the
//! gateway (RFC 9421) so that the upstream can trust it, carrying the
//! participant, the decision id and the released categories. Nothing of the
//! agency's own request travels but the FHIR path and query: its signature
//! headers are never copied.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::httpsig::{self, OwnedMessage, SignatureParams};
use crate::words::{DECISION_HEADER, PARTICIPANT_HEADER, RELEASED_HEADER};

/// Why the upstream gave nothing to release.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the holder's upstream url is not usable: {0}")]
    BadUrl(String),
    #[error("the holder's upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the holder's upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the holder's upstream answered more than {0} bytes")]
    TooLarge(usize),
    #[error("cannot sign the forwarded request: {0}")]
    Sign(String),
    #[error("the holder's upstream certificate is not trusted: {0}")]
    Untrusted(String),
    #[error("the holder's upstream certificate has expired or is not yet valid: {0}")]
    Expired(String),
    #[error("the holder's upstream certificate is for another name: {0}")]
    WrongName(String),
    #[error("TLS with the holder's upstream failed: {0}")]
    Tls(String),
    #[error("the holder's upstream asks for the gateway's client certificate, and none is configured ([upstream_tls] client_cert and client_key)")]
    NoClientCertificate,
    #[error("the holder's upstream {0} is plain HTTP beyond this machine: records would cross the network in clear (enrol it at https://, or set [upstream_tls] allow_plain_http = true for a private network)")]
    PlainHttp(String),
    #[error("the holder's upstream {0} asks for the gateway's client certificate over plain HTTP, where none can be presented: enrol it at https://")]
    PlainHttpWithClientCertificate(String),
}

impl ForwardError {
    /// A reason code for the log and the problem document.
    pub fn code(&self) -> &'static str {
        match self {
            ForwardError::BadUrl(_) => "upstream-bad-url",
            ForwardError::Unreachable(_) => "upstream-unreachable",
            ForwardError::Timeout(_) => "upstream-timeout",
            ForwardError::TooLarge(_) => "upstream-too-large",
            ForwardError::Sign(_) => "upstream-sign-failed",
            ForwardError::Untrusted(_) => "upstream-certificate-untrusted",
            ForwardError::Expired(_) => "upstream-certificate-expired",
            ForwardError::WrongName(_) => "upstream-certificate-wrong-name",
            ForwardError::Tls(_) => "upstream-tls-failed",
            ForwardError::NoClientCertificate => "upstream-client-certificate-unconfigured",
            ForwardError::PlainHttp(_) => "upstream-plain-http",
            ForwardError::PlainHttpWithClientCertificate(_) => {
                "upstream-plain-http-with-client-certificate"
            }
        }
    }

    /// A failed exchange, read: a certificate refused is said as such, not
    /// as an upstream that could not be reached.
    fn from_client(e: &hyper_util::client::legacy::Error) -> Self {
        use rustls::{CertificateError as C, Error as R};
        match crate::tls::client::tls_failure(e) {
            None => ForwardError::Unreachable(e.to_string()),
            Some(r) => {
                let words = r.to_string();
                match r {
                    R::InvalidCertificate(C::UnknownIssuer | C::BadSignature)
                    | R::InvalidCertificate(C::InvalidPurpose) => ForwardError::Untrusted(words),
                    R::InvalidCertificate(
                        C::Expired | C::ExpiredContext { .. } | C::NotValidYet,
                    )
                    | R::InvalidCertificate(C::NotValidYetContext { .. }) => {
                        ForwardError::Expired(words)
                    }
                    R::InvalidCertificate(
                        C::NotValidForName | C::NotValidForNameContext { .. },
                    ) => ForwardError::WrongName(words),
                    R::InvalidCertificate(_) => ForwardError::Untrusted(words),
                    _ => ForwardError::Tls(words),
                }
            }
        }
    }
}

/// How the gateway trusts record systems over TLS: whose certificates,
/// and its own client certificate (mTLS) for the holders that ask for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub roots: crate::tls::Roots,
    pub identity: Option<crate::tls::client::Identity>,
    /// `http://` upstreams beyond loopback: only when the operator says
    /// so (a private network between the gateway and its record systems).
    pub allow_plain_http: bool,
}

/// Whether `uri` may be sent to as it is: `https://` always; `http://`
/// only to this machine (the sample record systems, a TLS proxy beside
/// the gateway) or where the operator allowed it, and never to a holder
/// that asks for the gateway's client certificate, which plain HTTP
/// cannot carry.
fn may_send(uri: &http::Uri, identify: bool, allow_plain_http: bool) -> Result<(), ForwardError> {
    if uri.scheme_str() == Some("https") {
        return Ok(());
    }
    let shown = || {
        format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        )
    };
    if identify {
        return Err(ForwardError::PlainHttpWithClientCertificate(shown()));
    }
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_plain_http {
        Ok(())
    } else {
        Err(ForwardError::PlainHttp(shown()))
    }
}

/// The upstream's answer, whole.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// What one forwarded request carries.
pub struct Outgoing<'a> {
    pub url: String,
    pub participant: &'a str,
    pub decision_id: &'a str,
    pub released: &'a [String],
    pub now: i64,
}

type Upstream = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The gateway's HTTP client for upstreams, with its limits: one pool that
/// presents no certificate, and one that presents the gateway's, used only
/// for the holders whose entry asks for it (a holder that does not learn
/// nothing it need not).
pub struct Forwarder {
    client: Upstream,
    with_identity: Option<Upstream>,
    allow_plain_http: bool,
    key_id: String,
    key: ed25519_dalek::SigningKey,
    pub timeout: Duration,
    pub body_bytes_max: usize,
}

/// How long a forwarded request's signature is valid.
const SIGNATURE_LIFETIME_SECS: i64 = 60;

impl Forwarder {
    pub fn new(
        key_id: String,
        key: ed25519_dalek::SigningKey,
        timeout: Duration,
        body_bytes_max: usize,
        tls: &UpstreamTls,
    ) -> Result<Self, crate::tls::TlsError> {
        let pool = |identity: Option<&crate::tls::client::Identity>| {
            let config = crate::tls::client::upstream_config(&tls.roots, identity)?;
            Ok::<_, crate::tls::TlsError>(
                Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1024)
                    .build(crate::tls::client::connector(config, timeout)),
            )
        };
        let client = pool(None)?;
        let with_identity = match &tls.identity {
            Some(id) => Some(pool(Some(id))?),
            None => None,
        };
        Ok(Self {
            client,
            with_identity,
            allow_plain_http: tls.allow_plain_http,
            key_id,
            key,
            timeout,
            body_bytes_max,
        })
    }

    /// Sends the signed GET and reads the whole answer within the limits,
    /// presenting the gateway's client certificate when `identify`.
    pub async fn get(&self, out: &Outgoing<'_>, identify: bool) -> Result<Answer, ForwardError> {
        let (uri, headers) = sign_forward(out, &self.key_id, &self.key)?;
        may_send(&uri, identify, self.allow_plain_http)?;
        let client = match (identify, &self.with_identity) {
            (false, _) => &self.client,
            (true, Some(c)) => c,
            (true, None) => return Err(ForwardError::NoClientCertificate),
        };
        let mut req = http::Request::get(uri);
        if let Some(h) = req.headers_mut() {
            *h = headers;
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| ForwardError::BadUrl(e.to_string()))?;
        let exchange = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| ForwardError::from_client(&e))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), self.body_bytes_max)
                .collect()
                .await
                .map_err(|_| ForwardError::TooLarge(self.body_bytes_max))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ForwardError::Timeout(self.timeout))?
    }
}

/// Builds and signs (RFC 9421, the gateway's key) the GET the gateway
/// sends to a holder's upstream. Public so that a benchmark can pre-sign
/// the requests it sends straight to an upstream.
pub fn sign_forward(
    out: &Outgoing<'_>,
    key_id: &str,
    key: &ed25519_dalek::SigningKey,
) -> Result<(http::Uri, http::HeaderMap), ForwardError> {
    let uri: http::Uri = out
        .url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ForwardError::BadUrl(e.to_string()))?;
    if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
        return Err(ForwardError::BadUrl(out.url.clone()));
    }
    let mut headers = http::HeaderMap::new();
    let set = |h: &mut http::HeaderMap, name: &'static str, value: &str| {
        http::HeaderValue::from_str(value)
            .map(|v| {
                h.insert(name, v);
            })
            .map_err(|e| ForwardError::Sign(e.to_string()))
    };
    set(&mut headers, PARTICIPANT_HEADER, out.participant)?;
    set(&mut headers, DECISION_HEADER, out.decision_id)?;
    set(&mut headers, RELEASED_HEADER, &out.released.join(", "))?;
    set(&mut headers, "accept", "application/fhir+json")?;
    let msg = OwnedMessage::from_parts("GET", &out.url, &headers)
        .map_err(|e| ForwardError::Sign(e.to_string()))?;
    let params = SignatureParams {
        expires: Some(out.now + SIGNATURE_LIFETIME_SECS),
        nonce: Some(httpsig::fresh_nonce()),
        include_alg: true,
        ..SignatureParams::new(
            httpsig::VerifyPolicy::forwarded().required_components,
            out.now,
            key_id,
        )
    };
    let (input, sig) = httpsig::sign(&msg.view(&[]), &params, "consentry", key)
        .map_err(|e| ForwardError::Sign(e.to_string()))?;
    set(&mut headers, "signature-input", &input)?;
    set(&mut headers, "signature", &sig)?;
    Ok((uri, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the gateway may send in clear: this machine only, unless the
    /// operator allowed a private network; never to a holder that asks
    /// for the client certificate.
    #[test]
    fn plain_http_goes_to_this_machine_only() {
        let table = [
            ("https://records.example/fhir", false, false, None),
            ("https://records.example/fhir", true, false, None),
            ("http://127.0.0.1:9/fhir", false, false, None),
            ("http://[::1]:9/fhir", false, false, None),
            ("http://localhost:9/fhir", false, false, None),
            (
                "http://records.example/fhir",
                false,
                false,
                Some("upstream-plain-http"),
            ),
            (
                "http://10.0.0.5/fhir",
                false,
                false,
                Some("upstream-plain-http"),
            ),
            (
                "http://127.0.0.1.example/fhir",
                false,
                false,
                Some("upstream-plain-http"),
            ),
            ("http://records.example/fhir", false, true, None),
            (
                "http://127.0.0.1:9/fhir",
                true,
                true,
                Some("upstream-plain-http-with-client-certificate"),
            ),
        ];
        for (url, identify, allow, want) in table {
            let uri: http::Uri = url.parse().unwrap();
            let got = may_send(&uri, identify, allow).err().map(|e| e.code());
            assert_eq!(got, want, "{url} identify={identify} allow={allow}");
        }
    }
}
