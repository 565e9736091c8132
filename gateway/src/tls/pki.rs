//! A deployment CA for pilots and tests: one self-signed root, constrained
//! to the deployment's own host names and addresses (RFC 5280 name
//! constraints), so that a phone or a record system that trusts it trusts
//! it for nothing else; and the server and client certificates it issues.
//! Real deployments use a real certificate (README).

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};

use super::{pem, TlsError};

/// A name a certificate is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Dns(String),
    Ip(IpAddr),
}

impl Host {
    /// An IP address, or a DNS name of letters, digits, `-` and `.`.
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let t = text.trim();
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if t.is_empty() || t.len() > 253 || !t.split('.').all(label_ok) {
            return Err(TlsError::BadHost(text.into()));
        }
        Ok(Host::Dns(t.to_ascii_lowercase()))
    }

    /// A comma-separated list, as `--tls HOST[,HOST…]` takes it.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, TlsError> {
        let hosts = text
            .split(',')
            .filter(|h| !h.trim().is_empty())
            .map(Host::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err(TlsError::BadHost(text.into()));
        }
        Ok(hosts)
    }

    fn san(&self) -> Result<SanType, TlsError> {
        match self {
            Host::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            Host::Dns(d) => d
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| TlsError::BadHost(d.clone())),
        }
    }

    fn subtree(&self) -> GeneralSubtree {
        match self {
            Host::Dns(d) => GeneralSubtree::DnsName(d.clone()),
            Host::Ip(ip) => {
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*ip, bits))
            }
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Dns(d) => f.write_str(d),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (the gateway, a record system).
    Server,
    /// A TLS client (the gateway's mTLS identity towards record systems).
    Client,
}

/// A certificate and its private key, as PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes both, the key owner-only; never over existing files.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        pem::write_new(key, &self.key_pem, true)?;
        pem::write_new(cert, &self.cert_pem, false)
    }
}

/// Validity, on the injected clock: from an hour before `now` (clocks
/// disagree) to `days` after it.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub now: i64,
    pub days: i64,
}

impl Validity {
    fn apply(&self, p: &mut CertificateParams) -> Result<(), TlsError> {
        let at = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| TlsError::Issue(format!("a validity date: {e}")))
        };
        p.not_before = at(self.now - 3600)?;
        p.not_after = at(self.now + self.days * 86_400)?;
        Ok(())
    }
}

/// The deployment's root: its certificate and, while it issues, its key.
pub struct DeploymentCa {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

/// How long the CA is valid: a pilot's length, not a real root's.
pub const CA_DAYS: i64 = 825;
/// How long a server or client certificate is valid: within Mozilla's
/// intermediate profile's 366 days.
pub const LEAF_DAYS: i64 = 365;

impl DeploymentCa {
    /// A new CA named for `deployment`, constrained to `hosts`.
    pub fn new(deployment: &str, hosts: &[Host], now: i64) -> Result<Self, TlsError> {
        if hosts.is_empty() {
            // rcgen would leave the constraints out: a root for everything.
            return Err(TlsError::BadHost(String::new()));
        }
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{deployment} deployment CA"));
        dn.push(
            DnType::OrganizationName,
            "Consentry pilot (not a public CA)",
        );
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.name_constraints = Some(constraints(hosts));
        Validity { now, days: CA_DAYS }.apply(&mut p)?;
        let key = KeyPair::generate().map_err(issue)?;
        let cert = p.self_signed(&key).map_err(issue)?;
        Ok(Self {
            params: p,
            key,
            cert_pem: cert.pem(),
        })
    }

    /// The root's certificate: what clients, phones and record systems
    /// trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root's private key, for an operator who keeps it (offline) to
    /// issue again; else it is dropped with this value.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for `hosts`, issued by this root.
    pub fn issue(&self, usage: Usage, hosts: &[Host], valid: Validity) -> Result<Issued, TlsError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(first) = hosts.first() {
            dn.push(DnType::CommonName, first.to_string());
        }
        p.distinguished_name = dn;
        p.subject_alt_names = hosts.iter().map(Host::san).collect::<Result<_, _>>()?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        p.use_authority_key_identifier_extension = true;
        valid.apply(&mut p)?;
        let key = KeyPair::generate().map_err(issue)?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).map_err(issue)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the root's certificate (public).
    pub fn write_cert(&self, path: &Path) -> Result<(), TlsError> {
        pem::write_new(path, &self.cert_pem, false)
    }

    /// Writes the root's key, owner-only: outside the server's folder.
    pub fn write_key(&self, path: &Path) -> Result<(), TlsError> {
        pem::write_new(path, &self.key_pem(), true)
    }
}

/// Permitted: exactly `hosts`. A kind of name none of them is would be
/// unconstrained (RFC 5280 constrains only the kinds it lists): with no
/// address, every address is excluded; with no DNS name, DNS names are
/// held to the reserved `.invalid`.
fn constraints(hosts: &[Host]) -> NameConstraints {
    let mut permitted: Vec<GeneralSubtree> = hosts.iter().map(Host::subtree).collect();
    let mut excluded = Vec::new();
    if !hosts.iter().any(|h| matches!(h, Host::Ip(_))) {
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
            [0; 4], 0,
        )));
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
            [0; 16], 0,
        )));
    }
    if !hosts.iter().any(|h| matches!(h, Host::Dns(_))) {
        permitted.push(GeneralSubtree::DnsName("invalid".into()));
    }
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    }
}

fn issue(e: rcgen::Error) -> TlsError {
    TlsError::Issue(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_or_addresses() {
        assert_eq!(
            Host::parse_list("Gateway.County.example, 10.0.0.5").unwrap(),
            vec![
                Host::Dns("gateway.county.example".into()),
                Host::Ip("10.0.0.5".parse().unwrap())
            ]
        );
        for bad in ["", "a b", "-x.example", "x..example", "x/y", ","] {
            assert!(Host::parse_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_ca_for_no_host_is_refused_and_unlisted_kinds_are_closed() {
        assert!(DeploymentCa::new("x", &[], 0).is_err());
        let only_dns = constraints(&[Host::Dns("gw.example".into())]);
        assert_eq!(
            only_dns.excluded_subtrees.len(),
            2,
            "every address excluded"
        );
        let only_ip = constraints(&[Host::Ip("10.0.0.5".parse().unwrap())]);
        assert!(only_ip
            .permitted_subtrees
            .contains(&GeneralSubtree::DnsName("invalid".into())));
        assert!(only_ip.excluded_subtrees.is_empty());
    }
}
