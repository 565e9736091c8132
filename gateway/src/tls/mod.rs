//! TLS through rustls, for every side of the gateway: the server's
//! certificate, reloaded without a restart ([`server`]); the trust of the
//! gateway's own clients, its upstream client and the CLI ([`client`]); and
//! the name-constrained deployment CA that `consentry init --tls` and
//! `consentry demo --tls` make for pilots and tests ([`pki`]).
//!
//! Imports no other room. One profile for all of it: TLS 1.3 and 1.2 only,
//! with the cipher suites of Mozilla's "intermediate" configuration that
//! rustls implements (it has no DHE and no CBC suites at all).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::cipher_suite as suite;
use rustls::crypto::CryptoProvider;

pub mod client;
mod pem;
pub mod pki;
pub mod server;

pub use client::{client_config, Roots};
pub use server::{ServerTls, TlsFiles};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("{path}: a private key readable by group or others (mode {mode:o}); run chmod 600 on it, and consider it leaked if others could read it")]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("{0} already exists: certificates are never overwritten")]
    Exists(PathBuf),
    #[error("the certificate {cert} does not go with the key {key}: {why}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("no trust roots: the system has none readable ({0}); give a CA file with --ca")]
    NoSystemRoots(String),
    #[error("{0:?} is not a host name or an IP address for a certificate")]
    BadHost(String),
    #[error("making a certificate: {0}")]
    Issue(String),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Mozilla's "intermediate" suites (v5.7) that rustls has, in Mozilla's
/// order.
static INTERMEDIATE_SUITES: &[rustls::SupportedCipherSuite] = &[
    suite::TLS13_AES_128_GCM_SHA256,
    suite::TLS13_AES_256_GCM_SHA384,
    suite::TLS13_CHACHA20_POLY1305_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// TLS 1.3 and 1.2; nothing older.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// aws-lc-rs with the intermediate suites: every config here is built on
/// it, never on a process-wide default that another crate could set.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: INTERMEDIATE_SUITES.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    })
}

/// The ALPN names the server offers, HTTP/2 first.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
