//! The trust of every client the gateway has: the CLI's (`--ca FILE`, else
//! the system's roots) and the upstream client's (a CA bundle, else the
//! system's roots, and the gateway's own client certificate for the
//! holders that ask for it). There is no way to turn verification off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;

use super::{pem, TlsError};

/// Which certificates a client trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Roots {
    /// The system's store (`/etc/ssl/certs`, or `SSL_CERT_FILE`).
    #[default]
    System,
    /// Only the CA certificates in this PEM file.
    File(PathBuf),
}

impl Roots {
    /// `--ca FILE` when given, else the system's.
    pub fn from_flag(ca: Option<&Path>) -> Self {
        match ca {
            Some(p) => Roots::File(p.into()),
            None => Roots::System,
        }
    }

    pub(crate) fn store(&self) -> Result<RootCertStore, TlsError> {
        let mut store = RootCertStore::empty();
        match self {
            Roots::File(path) => {
                for c in pem::certs(path)? {
                    store.add(c).map_err(|e| TlsError::Pem {
                        path: path.clone(),
                        what: format!("not a CA certificate: {e}"),
                    })?;
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found
                        .errors
                        .first()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "none found".into());
                    return Err(TlsError::NoSystemRoots(why));
                }
            }
        }
        Ok(store)
    }
}

/// A client certificate and its key: the gateway's mTLS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A rustls client config over `roots`, presenting `identity` when given,
/// speaking HTTP/1.1.
pub fn client_config(
    roots: &Roots,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    build(roots.store()?, identity)
}

fn build(
    store: RootCertStore,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(super::provider())
        .with_protocol_versions(super::VERSIONS)
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(store);
    let mut c = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = pem::certs(&id.cert)?;
            let key = pem::private_key(&id.key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Mismatch {
                    cert: id.cert.clone(),
                    key: id.key.clone(),
                    why: e.to_string(),
                })?
        }
    };
    c.alpn_protocols = vec![super::ALPN_HTTP1.to_vec()];
    Ok(c)
}

/// A connector for hyper's pooled client: `https://` over `config`,
/// `http://` as it is, each connect bounded by `connect_timeout`.
pub fn connector(
    mut config: rustls::ClientConfig,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    // hyper-rustls sets ALPN itself (none, for HTTP/1.1 alone: HTTP/1.1
    // is what a server assumes without it), and asserts (panics) that the
    // config came without one.
    config.alpn_protocols.clear();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    // hyper-rustls sees the scheme; the inner connector must let https by.
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// A client's config: over `roots` when it will speak `https`; for plain
/// `http://` alone, no trust store is read at all (the README's first
/// minute needs none).
pub fn config_for(https: bool, roots: &Roots) -> Result<rustls::ClientConfig, TlsError> {
    if https {
        client_config(roots, None)
    } else {
        build(RootCertStore::empty(), None)
    }
}

/// A pooled HTTP/1.1 client for the gateway at `url`: over TLS trusting
/// `roots` when it is `https://`; for `http://`, no trust store is read at
/// all (the README's first minute needs none).
pub fn client_for<B>(
    url: &str,
    roots: &Roots,
    pool_max_idle: usize,
    connect_timeout: Duration,
) -> Result<hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, B>, TlsError>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let config = config_for(https, roots)?;
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(pool_max_idle)
            .build(connector(config, connect_timeout)),
    )
}

/// The upstream client's config: as [`client_config`], except that a
/// machine without system roots still starts (its plain-HTTP upstreams
/// work; an `https://` one is refused as untrusted, with that reason).
pub fn upstream_config(
    roots: &Roots,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    match client_config(roots, identity) {
        Err(TlsError::NoSystemRoots(_)) => build(RootCertStore::empty(), identity),
        other => other,
    }
}

/// Why a failed exchange failed, when it was TLS: rustls's own error (an
/// unknown issuer, an expired certificate, a name that does not match),
/// found in the error's chain.
pub fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        // An io::Error's `source` skips the error it wraps (it is that
        // error's source): go into the wrapped one instead, as the
        // connector nests rustls's error two io::Errors deep.
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
