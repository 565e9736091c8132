//! PEM files: certificate chains and private keys, read with rustls's own
//! types; a private key only from a file its owner alone can read.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Every certificate in `path`, in order; at least one.
pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |what: String| TlsError::Pem {
        path: path.into(),
        what,
    };
    let text = std::fs::read(path).map_err(|err| TlsError::Read {
        path: path.into(),
        err,
    })?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The private key in `path` (PKCS#8, SEC1 or PKCS#1), refused when group
/// or others can read the file. The mode is read from the file opened,
/// not from its name, so that the file checked is the file read.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let rerr = |err| TlsError::Read {
        path: path.into(),
        err,
    };
    let mut f = std::fs::File::open(path).map_err(rerr)?;
    let mode = f.metadata().map_err(rerr)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyReadable {
            path: path.into(),
            mode,
        });
    }
    let mut text = Vec::new();
    f.read_to_end(&mut text).map_err(rerr)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| TlsError::Pem {
        path: path.into(),
        what: format!("not a PEM private key: {e}"),
    })
}

/// Writes a new file (never over an old one), owner-only when `secret`,
/// synced before it returns.
pub(crate) fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, if secret { 0o600 } else { 0o644 });
    let werr = |err: std::io::Error| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            TlsError::Exists(path.into())
        } else {
            TlsError::Write {
                path: path.into(),
                err,
            }
        }
    };
    let mut f = opts.open(path).map_err(werr)?;
    f.write_all(text.as_bytes()).map_err(werr)?;
    f.sync_all().map_err(werr)
}
