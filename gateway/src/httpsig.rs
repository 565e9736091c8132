//! HTTP Message Signatures (RFC 9421), Ed25519 only, and Content-Digest
//! (RFC 9530), SHA-256 (SHA-512 is also checked when present).
//!
//! Agencies sign each request they send through the gateway. The gateway
//! builds a [`MessageView`] of the request it received (method, absolute
//! target URI, header lines, body) and calls [`verify`], which parses the
//! `Signature-Input` and `Signature` fields, applies a [`VerifyPolicy`]
//! (required covered components, `created`/`expires` window, nonce,
//! algorithm) and checks the Ed25519 signature over the signature base
//! (RFC 9421 §2.5). Success yields a [`Verified`] witness, which only
//! [`verify`] can construct, carrying the key id, nonce, times, covered
//! components and a `request_digest` that binds the signature base to the
//! signature bytes for the audit log. Replays are refused by passing the
//! witness's key id and nonce to a [`NonceCache`] afterwards.
//!
//! Signing ([`sign`]) is the mirror image, for tests, tooling and any
//! outgoing signed request.
//!
//! Every parser here is bounded ([`HEADER_BYTES_MAX`], [`SIGNATURES_MAX`],
//! [`COMPONENTS_MAX`], [`PARAMS_MAX`]) and returns a typed
//! [`HttpSigError`] on any input instead of panicking.

mod nonce;
mod sf;

pub use nonce::{NonceCache, Replay};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sf::{BareItem, Item, Member};
use sha2::{Digest as _, Sha256, Sha512};

/// Largest accepted `Signature-Input`, `Signature` or `Content-Digest`
/// field value (all lines combined), in bytes.
pub const HEADER_BYTES_MAX: usize = 8 * 1024;
/// Most covered components one signature may list.
pub const COMPONENTS_MAX: usize = 16;
/// Most signatures (dictionary members) one request may carry.
pub const SIGNATURES_MAX: usize = 4;
/// Most parameters on one signature (or item).
pub const PARAMS_MAX: usize = 16;
/// Upper bound on the clock skew a [`VerifyPolicy`] may allow; larger
/// values are clamped to this.
pub const SKEW_SECS_MAX: i64 = 300;
/// Longest accepted nonce, in bytes.
pub const NONCE_BYTES_MAX: usize = 256;
/// Default (and recommended maximum) signature lifetime, `expires - created`.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 300;
/// The only algorithm supported, as named in the HTTP Signature Algorithms
/// registry.
pub const ALG_ED25519: &str = "ed25519";

/// Errors from signing, verifying and Content-Digest checking. The
/// `Display` text is precise, lowercase and safe to show to the agency
/// that sent the request; [`HttpSigError::code`] is a stable short code
/// for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpSigError {
    #[error("missing signature-input header")]
    MissingSignatureInput,
    #[error("missing signature header")]
    MissingSignature,
    #[error("{0} header too large (max {HEADER_BYTES_MAX} bytes)")]
    HeaderTooLarge(&'static str),
    #[error("malformed signature-input header: {0}")]
    MalformedSignatureInput(&'static str),
    #[error("malformed signature header: {0}")]
    MalformedSignature(&'static str),
    #[error("too many signatures (max {SIGNATURES_MAX})")]
    TooManySignatures,
    #[error("too many covered components (max {COMPONENTS_MAX})")]
    TooManyComponents,
    #[error("too many signature parameters (max {PARAMS_MAX})")]
    TooManyParameters,
    #[error("invalid signature label")]
    InvalidLabel,
    #[error("no signature-input labelled {0}")]
    LabelNotFound(String),
    #[error("no signature labelled {0}")]
    SignatureNotFound(String),
    #[error("invalid component identifier: {0}")]
    InvalidComponent(String),
    #[error("unsupported covered component: {0}")]
    UnsupportedComponent(String),
    #[error("duplicate covered component: {0}")]
    DuplicateComponent(String),
    #[error("missing signature parameter: {0}")]
    MissingParameter(&'static str),
    #[error("invalid signature parameter: {0}")]
    InvalidParameter(&'static str),
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("unknown key id")]
    UnknownKeyId,
    #[error("signature expired")]
    Expired,
    #[error("signature created in the future")]
    CreatedInFuture,
    #[error("signature lifetime too long")]
    LifetimeTooLong,
    #[error("signature tag not accepted")]
    TagMismatch,
    #[error("covered component missing: {0}")]
    RequiredComponentNotCovered(String),
    #[error("covered component not present in request: {0}")]
    ComponentAbsent(String),
    #[error("invalid value for component: {0}")]
    InvalidComponentValue(String),
    #[error("header value is not valid utf-8: {0}")]
    HeaderNotText(String),
    #[error("invalid target uri: {0}")]
    InvalidTargetUri(&'static str),
    #[error("the request line names another scheme or authority than this gateway's; sign for, and send to, the gateway's public URL")]
    ForeignAuthority,
    #[error("invalid method")]
    InvalidMethod,
    #[error("signature does not verify")]
    SignatureInvalid,
    #[error("missing content-digest header")]
    MissingContentDigest,
    #[error("malformed content-digest header: {0}")]
    MalformedContentDigest(&'static str),
    #[error("content-digest has no sha-256 digest")]
    UnsupportedDigestAlgorithm,
    #[error("content-digest does not match body")]
    ContentDigestMismatch,
}

impl HttpSigError {
    /// A stable, kebab-case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        use HttpSigError::*;
        match self {
            MissingSignatureInput => "missing-signature-input",
            MissingSignature => "missing-signature",
            HeaderTooLarge(_) => "header-too-large",
            MalformedSignatureInput(_) => "malformed-signature-input",
            MalformedSignature(_) => "malformed-signature",
            TooManySignatures => "too-many-signatures",
            TooManyComponents => "too-many-components",
            TooManyParameters => "too-many-parameters",
            InvalidLabel => "invalid-label",
            LabelNotFound(_) => "label-not-found",
            SignatureNotFound(_) => "signature-not-found",
            InvalidComponent(_) => "invalid-component",
            UnsupportedComponent(_) => "unsupported-component",
            DuplicateComponent(_) => "duplicate-component",
            MissingParameter(_) => "missing-parameter",
            InvalidParameter(_) => "invalid-parameter",
            UnsupportedAlgorithm(_) => "unsupported-algorithm",
            UnknownKeyId => "unknown-key-id",
            Expired => "signature-expired",
            CreatedInFuture => "created-in-future",
            LifetimeTooLong => "lifetime-too-long",
            TagMismatch => "tag-mismatch",
            RequiredComponentNotCovered(_) => "component-not-covered",
            ComponentAbsent(_) => "component-absent",
            InvalidComponentValue(_) => "invalid-component-value",
            HeaderNotText(_) => "header-not-text",
            InvalidTargetUri(_) => "invalid-target-uri",
            ForeignAuthority => "foreign-target-authority",
            InvalidMethod => "invalid-method",
            SignatureInvalid => "signature-invalid",
            MissingContentDigest => "missing-content-digest",
            MalformedContentDigest(_) => "malformed-content-digest",
            UnsupportedDigestAlgorithm => "unsupported-digest-algorithm",
            ContentDigestMismatch => "content-digest-mismatch",
        }
    }
}

// ---------------------------------------------------------------------------
// Components
// ---------------------------------------------------------------------------

/// A covered component (RFC 9421 §2): a derived component or an HTTP
/// field named in lowercase. Component parameters (`;sf`, `;key`, `;bs`,
/// `;req`, `;tr`, `;name`) are not supported and are refused on input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Component {
    /// `@method`: the request method, as sent (case-sensitive).
    Method,
    /// `@target-uri`: the absolute target URI.
    TargetUri,
    /// `@authority`: lowercased host\[:port\], default port removed.
    Authority,
    /// `@scheme`: lowercased scheme.
    Scheme,
    /// `@request-target`: path and query.
    RequestTarget,
    /// `@path`: absolute path (`/` if empty).
    Path,
    /// `@query`: `?` and the query (just `?` if there is none).
    Query,
    /// An HTTP field by its lowercase name. Build it with
    /// [`Component::field`], which lowercases.
    Field(String),
}

impl Component {
    /// The component for HTTP field `name` (lowercased).
    pub fn field(name: &str) -> Self {
        Component::Field(name.to_ascii_lowercase())
    }

    /// Parses a component name as it appears in `Signature-Input`:
    /// a derived component (`@method`, ...) or a lowercase field name.
    pub fn parse(name: &str) -> Result<Self, HttpSigError> {
        let c = match name {
            "@method" => Component::Method,
            "@target-uri" => Component::TargetUri,
            "@authority" => Component::Authority,
            "@scheme" => Component::Scheme,
            "@request-target" => Component::RequestTarget,
            "@path" => Component::Path,
            "@query" => Component::Query,
            n if n.starts_with('@') => {
                return Err(HttpSigError::UnsupportedComponent(printable(n)))
            }
            n => Component::Field(n.to_owned()),
        };
        c.validate()?;
        Ok(c)
    }

    /// The component name as written in the signature base.
    pub fn name(&self) -> &str {
        match self {
            Component::Method => "@method",
            Component::TargetUri => "@target-uri",
            Component::Authority => "@authority",
            Component::Scheme => "@scheme",
            Component::RequestTarget => "@request-target",
            Component::Path => "@path",
            Component::Query => "@query",
            Component::Field(n) => n,
        }
    }

    fn validate(&self) -> Result<(), HttpSigError> {
        if let Component::Field(n) = self {
            let ok = !n.is_empty() && n.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase());
            if !ok {
                return Err(HttpSigError::InvalidComponent(printable(n)));
            }
            if n == "signature" || n == "signature-input" {
                // Covering the signature fields themselves is meaningless
                // for a single signature and circular in general.
                return Err(HttpSigError::UnsupportedComponent(n.clone()));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bounded, printable rendering of untrusted text for error messages.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

// ---------------------------------------------------------------------------
// The message
// ---------------------------------------------------------------------------

/// A read-only view of an HTTP request, independent of any HTTP library.
///
/// `target_uri` must be absolute (`scheme://authority/path?query`, no
/// fragment, no userinfo). `headers` are the field lines in order; names
/// are matched case-insensitively, and several lines of one field are
/// combined with `", "` after trimming each. `body` is the complete body
/// (empty if none); it is only used for Content-Digest.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    pub method: &'a str,
    pub target_uri: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// An owned request description built from `http` types, to borrow a
/// [`MessageView`] from. See [`OwnedMessage::from_http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    pub method: String,
    pub target_uri: String,
    pub headers: Vec<(String, String)>,
}

impl OwnedMessage {
    /// From an `http` (1.x) request's method, URI and headers, as axum
    /// and hyper provide them.
    ///
    /// A server passes the `authority` it is configured with (its public
    /// URL's): the target URI is then always `scheme://authority` + path
    /// and query, whatever the request line or `Host` says. A request
    /// line in absolute form (RFC 9112 §3.2.2) is accepted only when it
    /// names that same scheme and authority (compared as RFC 9421 derives
    /// `@authority`: lowercase, default port removed), and refused with
    /// [`HttpSigError::ForeignAuthority`] otherwise: a signature made for
    /// another gateway must never verify here because the request line
    /// repeats that gateway's name.
    ///
    /// With `authority` `None` (an outgoing client request, or a tool that
    /// knows no better) an absolute `uri` is used as is and an
    /// origin-form one is completed from the `Host` header.
    ///
    /// Header values that are not UTF-8 are refused with
    /// [`HttpSigError::HeaderNotText`].
    pub fn from_http(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        scheme: &str,
        authority: Option<&str>,
    ) -> Result<Self, HttpSigError> {
        let headers = headers_from_http(headers)?;
        let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let target_uri = match (authority, uri.scheme_str(), uri.authority()) {
            (Some(ours), s, a) => {
                if s.is_some() || a.is_some() {
                    let named = format!("{}://{}/", s.unwrap_or(""), a.map_or("", |a| a.as_str()));
                    let configured = format!("{scheme}://{ours}/");
                    let same = match (parse_target_uri(&named), parse_target_uri(&configured)) {
                        (Ok(n), Ok(c)) => n.scheme == c.scheme && n.authority == c.authority,
                        _ => false,
                    };
                    if !same {
                        return Err(HttpSigError::ForeignAuthority);
                    }
                }
                format!("{scheme}://{ours}{pq}")
            }
            (None, Some(s), Some(a)) => format!("{s}://{a}{pq}"),
            (None, _, _) => {
                let host = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.trim().to_owned())
                    .ok_or(HttpSigError::InvalidTargetUri("no authority"))?;
                format!("{scheme}://{host}{pq}")
            }
        };
        Ok(OwnedMessage {
            method: method.as_str().to_owned(),
            target_uri,
            headers,
        })
    }

    /// From a method, an absolute target URI (e.g. a reqwest `Url` as a
    /// string) and an `http` header map.
    pub fn from_parts(
        method: &str,
        target_uri: &str,
        headers: &http::HeaderMap,
    ) -> Result<Self, HttpSigError> {
        Ok(OwnedMessage {
            method: method.to_owned(),
            target_uri: target_uri.to_owned(),
            headers: headers_from_http(headers)?,
        })
    }

    /// A view of this message with the given body.
    pub fn view<'a>(&'a self, body: &'a [u8]) -> MessageView<'a> {
        MessageView {
            method: &self.method,
            target_uri: &self.target_uri,
            headers: &self.headers,
            body,
        }
    }
}

/// Copies an `http` header map into field lines, in order.
pub fn headers_from_http(map: &http::HeaderMap) -> Result<Vec<(String, String)>, HttpSigError> {
    map.iter()
        .map(|(name, value)| {
            let v = std::str::from_utf8(value.as_bytes())
                .map_err(|_| HttpSigError::HeaderNotText(name.as_str().to_owned()))?;
            Ok((name.as_str().to_owned(), v.to_owned()))
        })
        .collect()
}

impl<'a> MessageView<'a> {
    /// Combined value of all lines of field `name` (RFC 9421 §2.1), or
    /// `None` if the field is absent. Fails if a value holds a control
    /// character other than HTAB, which could forge lines in the base.
    fn field(&self, name: &str) -> Result<Option<String>, HttpSigError> {
        let mut out: Option<String> = None;
        for (n, v) in self.headers {
            if !n.eq_ignore_ascii_case(name) {
                continue;
            }
            if v.chars().any(|c| c.is_control() && c != '\t') {
                return Err(HttpSigError::InvalidComponentValue(name.to_owned()));
            }
            let v = v.trim_matches([' ', '\t']);
            match &mut out {
                None => out = Some(v.to_owned()),
                Some(acc) => {
                    acc.push_str(", ");
                    acc.push_str(v);
                }
            }
        }
        Ok(out)
    }

    /// Like [`MessageView::field`] but refuses values over
    /// [`HEADER_BYTES_MAX`] before allocating them.
    fn bounded_field(&self, name: &'static str) -> Result<Option<String>, HttpSigError> {
        let total: usize = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.len().saturating_add(2))
            .fold(0usize, usize::saturating_add);
        if total > HEADER_BYTES_MAX.saturating_add(2) {
            return Err(HttpSigError::HeaderTooLarge(name));
        }
        let v = self.field(name)?;
        if v.as_ref().is_some_and(|v| v.len() > HEADER_BYTES_MAX) {
            return Err(HttpSigError::HeaderTooLarge(name));
        }
        Ok(v)
    }
}

/// The parts of an absolute target URI that derived components use.
struct TargetUri<'a> {
    scheme: String,
    authority: String,
    path: &'a str,
    query: Option<&'a str>,
}

fn parse_target_uri(uri: &str) -> Result<TargetUri<'_>, HttpSigError> {
    use HttpSigError::InvalidTargetUri as Bad;
    if uri.is_empty() || uri.len() > 8 * 1024 {
        return Err(Bad("bad length"));
    }
    if !uri.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Bad("invalid character"));
    }
    if uri.contains('#') {
        return Err(Bad("fragment not allowed"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or(Bad("not absolute"))?;
    let mut sb = scheme.bytes();
    let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    if !scheme_ok {
        return Err(Bad("invalid scheme"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(auth_end);
    if authority.is_empty() {
        return Err(Bad("empty authority"));
    }
    if authority.contains('@') {
        return Err(Bad("userinfo not allowed"));
    }
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(port) = default_port {
        if let Some(host) = authority.strip_suffix(port) {
            // Not a bare IPv6 literal such as "[::80" (malformed anyway).
            if !host.is_empty() && (!host.starts_with('[') || host.ends_with(']')) {
                authority = host.to_owned();
            }
        }
    }
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok(TargetUri {
        scheme,
        authority,
        path,
        query,
    })
}

fn component_value(msg: &MessageView<'_>, c: &Component) -> Result<String, HttpSigError> {
    let derived = |f: &dyn Fn(TargetUri<'_>) -> String| -> Result<String, HttpSigError> {
        parse_target_uri(msg.target_uri).map(f)
    };
    match c {
        Component::Method => {
            if msg.method.is_empty() || !msg.method.bytes().all(is_tchar) {
                return Err(HttpSigError::InvalidMethod);
            }
            Ok(msg.method.to_owned())
        }
        Component::TargetUri => {
            parse_target_uri(msg.target_uri)?;
            Ok(msg.target_uri.to_owned())
        }
        Component::Authority => derived(&|t| t.authority),
        Component::Scheme => derived(&|t| t.scheme),
        Component::Path => derived(&|t| t.path.to_owned()),
        Component::Query => derived(&|t| format!("?{}", t.query.unwrap_or(""))),
        Component::RequestTarget => derived(&|t| match t.query {
            Some(q) => format!("{}?{}", t.path, q),
            None => t.path.to_owned(),
        }),
        Component::Field(name) => msg
            .field(name)?
            .ok_or_else(|| HttpSigError::ComponentAbsent(name.clone())),
    }
}

/// Builds the signature base (RFC 9421 §2.5) for `components`, ending in
/// the `@signature-params` line whose value is `params_value`.
fn build_base(
    msg: &MessageView<'_>,
    components: &[Component],
    params_value: &str,
) -> Result<String, HttpSigError> {
    if components.len() > COMPONENTS_MAX {
        return Err(HttpSigError::TooManyComponents);
    }
    let mut base = String::new();
    for (i, c) in components.iter().enumerate() {
        c.validate()?;
        if components[..i].contains(c) {
            return Err(HttpSigError::DuplicateComponent(c.name().to_owned()));
        }
        let value = component_value(msg, c)?;
        base.push('"');
        base.push_str(c.name());
        base.push_str("\": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_value);
    Ok(base)
}

// ---------------------------------------------------------------------------
// Signature parameters, signing
// ---------------------------------------------------------------------------

/// What a signature covers and its metadata (RFC 9421 §2.3), as a signer
/// chooses it. Serialized in the order components, `created`, `expires`,
/// `nonce`, `alg`, `keyid`, `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub components: Vec<Component>,
    /// Creation time, unix seconds.
    pub created: i64,
    /// Expiry time, unix seconds.
    pub expires: Option<i64>,
    pub nonce: Option<String>,
    pub keyid: String,
    /// Emit `alg="ed25519"`. Optional for the verifier (an absent `alg`
    /// is accepted since all keys are Ed25519).
    pub include_alg: bool,
    pub tag: Option<String>,
}

impl SignatureParams {
    /// Parameters with just components, `created` and `keyid`.
    pub fn new(components: Vec<Component>, created: i64, keyid: impl Into<String>) -> Self {
        SignatureParams {
            components,
            created,
            expires: None,
            nonce: None,
            keyid: keyid.into(),
            include_alg: false,
            tag: None,
        }
    }

    fn sf_params(&self) -> Result<sf::Params, HttpSigError> {
        let string = |name: &'static str, s: &str| -> Result<BareItem, HttpSigError> {
            if sf::is_sf_string(s) {
                Ok(BareItem::String(s.to_owned()))
            } else {
                Err(HttpSigError::InvalidParameter(name))
            }
        };
        let int = |name: &'static str, i: i64| -> Result<BareItem, HttpSigError> {
            if i.unsigned_abs() <= 999_999_999_999_999 {
                Ok(BareItem::Integer(i))
            } else {
                Err(HttpSigError::InvalidParameter(name))
            }
        };
        let mut p = vec![("created".to_owned(), int("created", self.created)?)];
        if let Some(e) = self.expires {
            p.push(("expires".to_owned(), int("expires", e)?));
        }
        if let Some(n) = &self.nonce {
            p.push(("nonce".to_owned(), string("nonce", n)?));
        }
        if self.include_alg {
            p.push(("alg".to_owned(), BareItem::String(ALG_ED25519.to_owned())));
        }
        p.push(("keyid".to_owned(), string("keyid", &self.keyid)?));
        if let Some(t) = &self.tag {
            p.push(("tag".to_owned(), string("tag", t)?));
        }
        Ok(p)
    }

    fn sf_items(&self) -> Result<Vec<Item>, HttpSigError> {
        if self.components.len() > COMPONENTS_MAX {
            return Err(HttpSigError::TooManyComponents);
        }
        self.components
            .iter()
            .map(|c| {
                c.validate()?;
                Ok(Item {
                    bare: BareItem::String(c.name().to_owned()),
                    params: Vec::new(),
                })
            })
            .collect()
    }

    /// The `@signature-params` value, which is also the `Signature-Input`
    /// member value: `("@method" ...);created=...;keyid="..."`.
    pub fn serialize(&self) -> Result<String, HttpSigError> {
        let mut out = String::new();
        sf::serialize_inner_list(&self.sf_items()?, &self.sf_params()?, &mut out);
        Ok(out)
    }
}

/// The signature base (RFC 9421 §2.5) for `msg` under `params`.
/// Fails if a covered component is absent from the message or invalid.
pub fn signature_base(
    msg: &MessageView<'_>,
    params: &SignatureParams,
) -> Result<String, HttpSigError> {
    build_base(msg, &params.components, &params.serialize()?)
}

/// Signs `msg` and returns the `(Signature-Input, Signature)` field values
/// for the given label, e.g. `sig1=("@method" ...);created=...` and
/// `sig1=:base64:`. The caller adds both headers to the request.
pub fn sign(
    msg: &MessageView<'_>,
    params: &SignatureParams,
    label: &str,
    key: &SigningKey,
) -> Result<(String, String), HttpSigError> {
    if !sf::is_key(label) {
        return Err(HttpSigError::InvalidLabel);
    }
    let params_value = params.serialize()?;
    let base = build_base(msg, &params.components, &params_value)?;
    let signature = key.sign(base.as_bytes());
    let input = format!("{label}={params_value}");
    let sig = format!("{label}=:{}:", STANDARD.encode(signature.to_bytes()));
    Ok((input, sig))
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// Which signature of a request to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPolicy<'a> {
    /// The signature with exactly this label.
    Exact(&'a str),
    /// The first member of `Signature-Input`.
    First,
}

/// What [`verify`] demands beyond a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Components that must be covered.
    pub required_components: Vec<Component>,
    /// When the body is non-empty, `content-digest` must be covered (it is
    /// always checked against the body when covered).
    pub require_content_digest_with_body: bool,
    pub require_created: bool,
    pub require_expires: bool,
    pub require_nonce: bool,
    /// Shortest accepted nonce, in bytes (when a nonce is present).
    pub min_nonce_len: usize,
    /// Allowed clock difference, clamped to `0..=SKEW_SECS_MAX`.
    pub max_skew_secs: i64,
    /// Longest accepted `expires - created`; also, with `created`, the
    /// oldest accepted signature (`now - created`). `None`: unlimited
    /// (only for interoperability tests).
    pub max_lifetime_secs: Option<i64>,
    /// If set, the `tag` parameter must equal it.
    pub required_tag: Option<String>,
}

impl VerifyPolicy {
    /// Strict defaults: `created`, `expires` and a nonce of at least 16
    /// bytes required, 30 s skew, 300 s lifetime, `content-digest` covered
    /// whenever there is a body, plus `required_components`.
    pub fn strict(required_components: Vec<Component>) -> Self {
        VerifyPolicy {
            required_components,
            require_content_digest_with_body: true,
            require_created: true,
            require_expires: true,
            require_nonce: true,
            min_nonce_len: 16,
            max_skew_secs: 30,
            max_lifetime_secs: Some(DEFAULT_MAX_LIFETIME_SECS),
            required_tag: None,
        }
    }

    /// The gateway's policy for agency requests: [`VerifyPolicy::strict`]
    /// requiring `@method`, `@target-uri` (which names the holder, the
    /// participant and the FHIR path), `consentry-purpose` and
    /// `consentry-categories` (and `content-digest` when there is a body).
    pub fn gateway() -> Self {
        VerifyPolicy::strict(vec![
            Component::Method,
            Component::TargetUri,
            Component::field(crate::words::PURPOSE_HEADER),
            Component::field(crate::words::CATEGORIES_HEADER),
        ])
    }

    /// What the gateway must cover when it forwards a request to a
    /// holder: the holder checks it with this policy.
    pub fn forwarded() -> Self {
        VerifyPolicy::strict(vec![
            Component::Method,
            Component::TargetUri,
            Component::field(crate::words::PARTICIPANT_HEADER),
            Component::field(crate::words::DECISION_HEADER),
            Component::field(crate::words::RELEASED_HEADER),
        ])
    }

    /// An auditor's read of the log's entries: strict, covering the method
    /// and the whole target URI (the tile asked for).
    pub fn auditor() -> Self {
        VerifyPolicy::strict(vec![Component::Method, Component::TargetUri])
    }

    /// Lenient settings for checking RFC examples: nothing required but a
    /// key id, no lifetime limit.
    pub fn permissive() -> Self {
        VerifyPolicy {
            required_components: Vec::new(),
            require_content_digest_with_body: false,
            require_created: false,
            require_expires: false,
            require_nonce: false,
            min_nonce_len: 0,
            max_skew_secs: SKEW_SECS_MAX,
            max_lifetime_secs: None,
            required_tag: None,
        }
    }
}

/// Proof that a request's signature verified under a policy. Only
/// [`verify`] constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    label: String,
    keyid: String,
    nonce: Option<String>,
    created: Option<i64>,
    expires: Option<i64>,
    tag: Option<String>,
    components: Vec<Component>,
    signature_base: String,
    request_digest: String,
}

impl Verified {
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn keyid(&self) -> &str {
        &self.keyid
    }
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
    pub fn created(&self) -> Option<i64> {
        self.created
    }
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn components(&self) -> &[Component] {
        &self.components
    }
    /// The exact signature base that was verified.
    pub fn signature_base(&self) -> &str {
        &self.signature_base
    }
    /// Lowercase hex SHA-256 of the signature base bytes followed by the
    /// 64 signature bytes: a commitment to exactly what the agency signed,
    /// for the audit log.
    pub fn request_digest(&self) -> &str {
        &self.request_digest
    }
}

/// Parameters of one received signature, in received order.
struct ParsedParams {
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<String>,
    alg: Option<String>,
    keyid: Option<String>,
    tag: Option<String>,
}

fn parse_params(params: &sf::Params) -> Result<ParsedParams, HttpSigError> {
    use HttpSigError::InvalidParameter as Bad;
    let mut p = ParsedParams {
        created: None,
        expires: None,
        nonce: None,
        alg: None,
        keyid: None,
        tag: None,
    };
    for (k, v) in params {
        match (k.as_str(), v) {
            ("created", BareItem::Integer(i)) => p.created = Some(*i),
            ("created", _) => return Err(Bad("created")),
            ("expires", BareItem::Integer(i)) => p.expires = Some(*i),
            ("expires", _) => return Err(Bad("expires")),
            ("nonce", BareItem::String(s)) => p.nonce = Some(s.clone()),
            ("nonce", _) => return Err(Bad("nonce")),
            ("alg", BareItem::String(s)) => p.alg = Some(s.clone()),
            ("alg", _) => return Err(Bad("alg")),
            ("keyid", BareItem::String(s)) => p.keyid = Some(s.clone()),
            ("keyid", _) => return Err(Bad("keyid")),
            ("tag", BareItem::String(s)) => p.tag = Some(s.clone()),
            ("tag", _) => return Err(Bad("tag")),
            // Extension parameters are covered by the signature (they are
            // in the @signature-params line) and otherwise ignored.
            _ => {}
        }
    }
    Ok(p)
}

fn sf_limits() -> sf::Limits {
    sf::Limits {
        members: SIGNATURES_MAX,
        inner_items: COMPONENTS_MAX,
        params: PARAMS_MAX,
    }
}

fn map_sf_err(e: sf::SfError, malformed: fn(&'static str) -> HttpSigError) -> HttpSigError {
    match e {
        sf::SfError::Syntax(s) => malformed(s),
        sf::SfError::TooManyMembers => HttpSigError::TooManySignatures,
        sf::SfError::TooManyItems => HttpSigError::TooManyComponents,
        sf::SfError::TooManyParams => HttpSigError::TooManyParameters,
    }
}

fn check_times(p: &ParsedParams, now: i64, policy: &VerifyPolicy) -> Result<(), HttpSigError> {
    let skew = i128::from(policy.max_skew_secs.clamp(0, SKEW_SECS_MAX));
    let now = i128::from(now);
    let lifetime = policy.max_lifetime_secs.map(|l| i128::from(l.max(0)));
    let created = p.created.map(i128::from);
    let expires = p.expires.map(i128::from);
    if let Some(c) = created {
        if c > now + skew {
            return Err(HttpSigError::CreatedInFuture);
        }
    }
    if let (Some(c), Some(e)) = (created, expires) {
        if e < c {
            return Err(HttpSigError::InvalidParameter("expires"));
        }
        if lifetime.is_some_and(|l| e - c > l) {
            return Err(HttpSigError::LifetimeTooLong);
        }
    }
    if let Some(e) = expires {
        if now > e + skew {
            return Err(HttpSigError::Expired);
        }
        if created.is_none() && lifetime.is_some_and(|l| e - now > l + skew) {
            return Err(HttpSigError::LifetimeTooLong);
        }
    }
    if let (Some(c), Some(l)) = (created, lifetime) {
        if now - c > l + skew {
            return Err(HttpSigError::Expired);
        }
    }
    Ok(())
}

/// The signature the label names, its covered items and parameters, and
/// its 64 bytes.
#[allow(clippy::type_complexity)]
fn chosen<'a>(
    inputs: &'a sf::Dictionary,
    sigs: &'a sf::Dictionary,
    label: LabelPolicy<'_>,
) -> Result<(&'a String, &'a [Item], &'a sf::Params, [u8; 64]), HttpSigError> {
    let (label, member) = match label {
        LabelPolicy::Exact(l) => inputs
            .iter()
            .find(|(k, _)| k == l)
            .ok_or_else(|| HttpSigError::LabelNotFound(printable(l)))?,
        LabelPolicy::First => inputs
            .first()
            .ok_or(HttpSigError::MalformedSignatureInput("empty"))?,
    };
    let (items, raw_params) = match member {
        Member::InnerList(items, params) => (items, params),
        Member::Item(_) => {
            return Err(HttpSigError::MalformedSignatureInput(
                "signature input is not an inner list",
            ))
        }
    };
    let sig_bytes = match sigs.iter().find(|(k, _)| k == label) {
        Some((
            _,
            Member::Item(Item {
                bare: BareItem::Bytes(b),
                ..
            }),
        )) => b,
        Some(_) => {
            return Err(HttpSigError::MalformedSignature(
                "signature is not a byte sequence",
            ))
        }
        None => return Err(HttpSigError::SignatureNotFound(label.clone())),
    };
    let sig_array: [u8; 64] = sig_bytes
        .as_slice()
        .try_into()
        .map_err(|_| HttpSigError::MalformedSignature("signature is not 64 bytes"))?;
    Ok((label, items, raw_params, sig_array))
}

/// The covered components, each named once, without parameters.
fn covered(items: &[Item]) -> Result<Vec<Component>, HttpSigError> {
    let mut components = Vec::with_capacity(items.len());
    for item in items {
        let name = match &item.bare {
            BareItem::String(s) => s,
            _ => {
                return Err(HttpSigError::MalformedSignatureInput(
                    "component identifier is not a string",
                ))
            }
        };
        if !item.params.is_empty() {
            return Err(HttpSigError::UnsupportedComponent(printable(name)));
        }
        let c = Component::parse(name)?;
        if components.contains(&c) {
            return Err(HttpSigError::DuplicateComponent(printable(name)));
        }
        components.push(c);
    }
    Ok(components)
}

/// What `policy` asks of the parameters and the covered components.
fn check_params(
    p: &ParsedParams,
    components: &[Component],
    now: i64,
    policy: &VerifyPolicy,
) -> Result<(), HttpSigError> {
    if let Some(alg) = &p.alg {
        if alg != ALG_ED25519 {
            return Err(HttpSigError::UnsupportedAlgorithm(printable(alg)));
        }
    }
    if policy.require_created && p.created.is_none() {
        return Err(HttpSigError::MissingParameter("created"));
    }
    if policy.require_expires && p.expires.is_none() {
        return Err(HttpSigError::MissingParameter("expires"));
    }
    check_times(p, now, policy)?;
    match &p.nonce {
        None if policy.require_nonce => return Err(HttpSigError::MissingParameter("nonce")),
        Some(n) if n.len() < policy.min_nonce_len || n.len() > NONCE_BYTES_MAX => {
            return Err(HttpSigError::InvalidParameter("nonce"))
        }
        _ => {}
    }
    if let Some(required) = &policy.required_tag {
        if p.tag.as_ref() != Some(required) {
            return Err(HttpSigError::TagMismatch);
        }
    }
    for c in &policy.required_components {
        if !components.contains(c) {
            return Err(HttpSigError::RequiredComponentNotCovered(
                c.name().to_owned(),
            ));
        }
    }
    Ok(())
}

/// Verifies one signature of `msg` (RFC 9421 §3.2) under `policy`.
///
/// `key_lookup` maps a `keyid` to the agency's Ed25519 public key; `now`
/// is the current unix time. On success, pass the witness's key id and
/// nonce (with its expiry) to a [`NonceCache`] to refuse replays.
pub fn verify<F>(
    msg: &MessageView<'_>,
    label: LabelPolicy<'_>,
    key_lookup: F,
    now: i64,
    policy: &VerifyPolicy,
) -> Result<Verified, HttpSigError>
where
    F: Fn(&str) -> Option<VerifyingKey>,
{
    let input_raw = msg
        .bounded_field("signature-input")?
        .ok_or(HttpSigError::MissingSignatureInput)?;
    let sig_raw = msg
        .bounded_field("signature")?
        .ok_or(HttpSigError::MissingSignature)?;
    let inputs = sf::parse_dictionary(&input_raw, sf_limits())
        .map_err(|e| map_sf_err(e, HttpSigError::MalformedSignatureInput))?;
    let sigs = sf::parse_dictionary(&sig_raw, sf_limits())
        .map_err(|e| map_sf_err(e, HttpSigError::MalformedSignature))?;

    let (label, items, raw_params, sig_array) = chosen(&inputs, &sigs, label)?;
    let components = covered(items)?;
    let p = parse_params(raw_params)?;
    let keyid = p
        .keyid
        .clone()
        .ok_or(HttpSigError::MissingParameter("keyid"))?;
    check_params(&p, &components, now, policy)?;
    let digest_component = Component::field("content-digest");
    let covers_digest = components.contains(&digest_component);
    if policy.require_content_digest_with_body && !msg.body.is_empty() && !covers_digest {
        return Err(HttpSigError::RequiredComponentNotCovered(
            "content-digest".to_owned(),
        ));
    }

    // The key, the base, the signature. An unknown key id costs the same
    // work as a known one (the base is built and a signature verified,
    // against a key nobody holds), so that the time of a refusal does not
    // tell which key ids are enrolled.
    let key = key_lookup(&keyid);
    let mut params_value = String::new();
    sf::serialize_inner_list(items, raw_params, &mut params_value);
    let base = build_base(msg, &components, &params_value);
    let signature = Signature::from_bytes(&sig_array);
    let verifies = match &base {
        Ok(base) => verify_or_dummy(key.as_ref(), base.as_bytes(), &signature),
        Err(_) => false,
    };
    if key.is_none() {
        return Err(HttpSigError::UnknownKeyId);
    }
    let base = base?;
    if !verifies {
        return Err(HttpSigError::SignatureInvalid);
    }

    if covers_digest {
        let value = msg
            .bounded_field("content-digest")?
            .ok_or(HttpSigError::MissingContentDigest)?;
        check_content_digest(&value, msg.body)?;
    }

    let mut h = Sha256::new();
    h.update(base.as_bytes());
    h.update(sig_array);
    let request_digest = hex(&h.finalize());

    Ok(Verified {
        label: label.clone(),
        keyid,
        nonce: p.nonce,
        created: p.created,
        expires: p.expires,
        tag: p.tag,
        components,
        signature_base: base,
        request_digest,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Verifies `signature` over `message` under `key`, or, when there is no
/// key (an unknown key id, participant or organisation), under a key that
/// nobody holds, and answers false: the same work either way, so that how
/// long a refusal takes does not tell whether an id is enrolled. Every
/// signature check of an outsider's request goes through here (httpsig
/// [`verify`], `Deployment::submit`, the participant's sign-in).
pub fn verify_or_dummy(key: Option<&VerifyingKey>, message: &[u8], signature: &Signature) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|n| n.set(n.get() + 1));
    match key {
        Some(k) => k.verify_strict(message, signature).is_ok(),
        None => {
            // The result is discarded, but computed: `black_box` keeps the
            // optimiser from dropping the call whose cost is the point.
            let _ = std::hint::black_box(unheld_key().verify_strict(message, signature));
            false
        }
    }
}

/// A key nobody holds: drawn at random once per process, its secret half
/// dropped at once, so that no signature can ever verify under it (and
/// nothing could be let in if a caller forgot to discard the result).
/// What an unknown id is checked against.
pub fn unheld_key() -> &'static VerifyingKey {
    static KEY: std::sync::OnceLock<VerifyingKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(&mut rand::rngs::OsRng).verifying_key())
}

#[cfg(test)]
thread_local! {
    /// Signature checks [`verify_or_dummy`] made on this thread: a test
    /// counts them to show an unknown id costs one, like a known one.
    static VERIFICATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The signature checks [`verify_or_dummy`] made on this thread so far.
#[cfg(test)]
pub(crate) fn verifications() -> usize {
    VERIFICATIONS.with(std::cell::Cell::get)
}

/// A fresh nonce for a signature: 16 random bytes, base64.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    STANDARD.encode(b)
}

// ---------------------------------------------------------------------------
// Content-Digest (RFC 9530)
// ---------------------------------------------------------------------------

/// The `Content-Digest` field value for `body`: `sha-256=:<base64>:`.
pub fn content_digest_sha256(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// Checks a `Content-Digest` field value against `body`. A `sha-256`
/// digest is required; a `sha-512` digest, if also present, must match
/// too; other algorithms are ignored.
pub fn check_content_digest(header_value: &str, body: &[u8]) -> Result<(), HttpSigError> {
    use HttpSigError::MalformedContentDigest as Bad;
    if header_value.len() > HEADER_BYTES_MAX {
        return Err(HttpSigError::HeaderTooLarge("content-digest"));
    }
    let limits = sf::Limits {
        members: 8,
        inner_items: 0,
        params: 8,
    };
    let dict = sf::parse_dictionary(header_value, limits).map_err(|e| match e {
        sf::SfError::Syntax(s) => Bad(s),
        sf::SfError::TooManyMembers => Bad("too many digests"),
        sf::SfError::TooManyItems | sf::SfError::TooManyParams => Bad("unexpected parameters"),
    })?;
    let digest_of = |alg: &str| -> Result<Option<&Vec<u8>>, HttpSigError> {
        match dict.iter().find(|(k, _)| k == alg) {
            None => Ok(None),
            Some((
                _,
                Member::Item(Item {
                    bare: BareItem::Bytes(b),
                    ..
                }),
            )) => Ok(Some(b)),
            Some(_) => Err(Bad("digest is not a byte sequence")),
        }
    };
    let sha256 = digest_of("sha-256")?.ok_or(HttpSigError::UnsupportedDigestAlgorithm)?;
    if sha256.as_slice() != Sha256::digest(body).as_slice() {
        return Err(HttpSigError::ContentDigestMismatch);
    }
    if let Some(sha512) = digest_of("sha-512")? {
        if sha512.as_slice() != Sha512::digest(body).as_slice() {
            return Err(HttpSigError::ContentDigestMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
