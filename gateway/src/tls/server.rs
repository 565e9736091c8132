//! The server's certificate: read from its PEM files, served to every new
//! handshake, and replaced when the files change or on SIGHUP. A
//! connection keeps the certificate it was made with, so a rotation drops
//! nothing; files that do not load (a half-copied pair, a key that does
//! not match) leave the certificate in service as it was.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{pem, TlsError};

/// Where the server's certificate chain and key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the files hold, hashed: a change is a new certificate to load.
/// Their contents, not their times: a renewal written within the same
/// clock tick as the last (file times are coarse) is still seen, and
/// reading two small files every few seconds costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp([u8; 32]);

impl Stamp {
    fn of(files: &TlsFiles) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for p in [&files.cert, &files.key] {
            // An unreadable file hashes as empty: the load then says why.
            let bytes = std::fs::read(p).unwrap_or_default();
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(&bytes);
        }
        Stamp(h.finalize().into())
    }
}

struct Served {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
}

/// The certificate in service, and where it came from.
pub struct ServerTls {
    files: TlsFiles,
    provider: Arc<rustls::crypto::CryptoProvider>,
    served: RwLock<Served>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    Unchanged,
    Replaced,
}

impl ServerTls {
    /// Loads the pair, or says precisely why it cannot serve.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = super::provider();
        let stamp = Stamp::of(&files);
        let key = certified(&files, &provider)?;
        Ok(Arc::new(Self {
            files,
            provider,
            served: RwLock::new(Served { key, stamp }),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The rustls config every connection is accepted with: this
    /// certificate resolver, TLS 1.3 and 1.2, HTTP/2 offered by ALPN when
    /// `http2`, else HTTP/1.1 only.
    pub fn config(self: &Arc<Self>, http2: bool) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut c = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(super::VERSIONS)
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        c.alpn_protocols = if http2 {
            vec![super::ALPN_H2.to_vec(), super::ALPN_HTTP1.to_vec()]
        } else {
            vec![super::ALPN_HTTP1.to_vec()]
        };
        Ok(Arc::new(c))
    }

    /// As [`Self::config`] over HTTP/1.1, and a client must present a
    /// certificate that `clients` issued: a record system that asks for
    /// the gateway's mTLS identity.
    pub fn config_verifying_clients(
        self: &Arc<Self>,
        clients: &super::Roots,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(clients.store()?),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
        let mut c = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(super::VERSIONS)
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.clone());
        c.alpn_protocols = vec![super::ALPN_HTTP1.to_vec()];
        Ok(Arc::new(c))
    }

    /// The chain served now, leaf first (tests and logs compare it).
    pub fn chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.current().cert.clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        // A poisoned lock still holds a whole Arc: nothing half-written.
        match self.served.read() {
            Ok(s) => s.key.clone(),
            Err(p) => p.into_inner().key.clone(),
        }
    }

    /// Loads the files again if they changed since the last load (or
    /// always, when `force`: a SIGHUP). On an error the certificate in
    /// service stays, and the next call tries again.
    pub fn reload(&self, force: bool) -> Result<Reloaded, TlsError> {
        let stamp = Stamp::of(&self.files);
        let last = match self.served.read() {
            Ok(s) => s.stamp,
            Err(p) => p.into_inner().stamp,
        };
        if !force && stamp == last {
            return Ok(Reloaded::Unchanged);
        }
        let key = certified(&self.files, &self.provider)?;
        let mut served = match self.served.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *served = Served { key, stamp };
        Ok(Reloaded::Replaced)
    }

    /// Reloads on SIGHUP and whenever the files change (looked at every
    /// `every`), for as long as the server runs; says what happened on
    /// standard error, for the operator.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).ok();
        let mut last_refusal: Option<String> = None;
        loop {
            let force = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                Some(()) = async {
                    match hangups.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
            };
            match self.reload(force) {
                Ok(Reloaded::Unchanged) => {}
                Ok(Reloaded::Replaced) => {
                    last_refusal = None;
                    eprintln!(
                        "tls: serving the certificate now in {}",
                        self.files.cert.display()
                    )
                }
                // Said once, not at every look: the files stay as they
                // are until someone fixes them.
                Err(e) => {
                    let said = e.to_string();
                    if force || last_refusal.as_deref() != Some(said.as_str()) {
                        eprintln!("tls: kept the certificate in service: {said}");
                        last_refusal = Some(said);
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for ServerTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn certified(
    files: &TlsFiles,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = pem::certs(&files.cert)?;
    let key = pem::private_key(&files.key)?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            why: e.to_string(),
        })
}

/// A connection whose first byte was already read (to tell TLS from plain
/// HTTP): it is read again first, then the rest as it comes.
pub struct Replayed<I> {
    first: Option<u8>,
    io: I,
}

impl<I> Replayed<I> {
    pub fn new(first: u8, io: I) -> Self {
        Self {
            first: Some(first),
            io,
        }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Replayed<I> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(b) = this.first {
            if buf.remaining() > 0 {
                buf.put_slice(&[b]);
                this.first = None;
            }
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Replayed<I> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
