//! The deployment's config file (`consentry.toml`) and `consentry init`,
//! which writes one with fresh keys and a first governance entry.
//!
//! The config names where things are: listen address, public URL, data
//! folder, log origin, key files, vocabulary and rules. It never names
//! agencies: who they are, their keys, roles and upstreams come only from
//! governance-signed registry entries in the ledger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::deployment::{sign_event, Deployment};
use crate::participant::intake::IntakeLimits;
use crate::participant::session::SessionLimits;
use crate::quota::rate::Rate;
use crate::server::{HttpLimits, Settings};
use policy::{Event, GovernanceRules, Rules, Trust, Vocabulary, V1};

/// The config file `consentry init` writes.
pub const CONFIG_FILE: &str = "consentry.toml";

/// Where `/metrics` listens unless the config says otherwise: loopback, so
/// that only the machine's own scraper (or a tunnel to it) reads it.
pub const METRICS_LISTEN: &str = "127.0.0.1:9700";

fn default_metrics_listen() -> String {
    METRICS_LISTEN.into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path} is not a valid config: {err}")]
    Parse { path: PathBuf, err: String },
    #[error("{path} is not a base64 ed25519 key")]
    BadKey { path: PathBuf },
    #[error("{0} already exists: init never overwrites a deployment")]
    Exists(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: a secret key readable by group or others (mode {mode:o}); run chmod 600 on it, and consider it leaked if others could read it")]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("the governance key must be written outside the deployment folder {dir} (the server must never hold it): give --governance-key a path on removable media or the board member's own machine")]
    GovernanceKeyInside { dir: PathBuf },
    #[error("the deployment CA's key must be written outside the deployment folder {dir} (whoever holds it can issue certificates for the deployment's names): give --tls-ca-key a path on removable media, or leave it out to discard the key once the certificates are made")]
    CaKeyInside { dir: PathBuf },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Limits, with units in their names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub body_bytes_max: usize,
    pub header_bytes_max: usize,
    pub request_timeout_secs: u64,
    pub requests_in_flight_max: usize,
    pub requests_in_flight_per_source_max: usize,
    pub connections_max: usize,
    pub connections_per_address_max: usize,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub upstream_timeout_secs: u64,
    pub upstream_body_bytes_max: usize,
    /// Free space kept on the data disk: below it new work gets 503 (only
    /// revocations and cancelled key moves are still taken), rather than
    /// the log fail-stopping on a full disk. 0 turns the check off.
    pub disk_reserve_bytes: u64,
    pub requests_per_source_per_second: u32,
    pub requests_per_source_burst: u32,
    /// Reverse proxies and load balancers (addresses or CIDR blocks) whose
    /// `X-Forwarded-For` or `Forwarded` is believed for the limits per
    /// source. Empty: the TCP peer is the source.
    pub trusted_proxies: Vec<String>,
    /// Sign-in challenges waiting, in all and for one source; how fast one
    /// source may ask for them.
    pub challenges_max: usize,
    pub challenges_per_source_max: usize,
    pub challenges_per_source_per_minute: u32,
    pub challenges_per_source_burst_max: u32,
    /// Sign-in attempts one source may make.
    pub sign_ins_per_source_per_minute: u32,
    pub sign_ins_per_source_burst_max: u32,
    /// Live sessions, in all and of one participant (one more ends that
    /// participant's oldest).
    pub sessions_max: usize,
    pub sessions_per_participant_max: usize,
    /// Intakes waiting for their agency, in all and started from one
    /// source; how fast one source may start them.
    pub intakes_max: usize,
    pub intakes_per_source_max: usize,
    pub intakes_per_source_per_minute: u32,
    pub intakes_per_source_burst_max: u32,
    /// Sources each rate table follows at once.
    pub sources_tracked_max: usize,
    /// With TLS: the handshake's time, before HTTP starts.
    pub tls_handshake_timeout_secs: u64,
    /// With HTTP/2: requests open at once on one connection; resets a
    /// client may leave pending, and errors the server may reset, before
    /// its connection ends.
    pub http2_streams_max: u32,
    pub http2_resets_pending_max: usize,
    pub http2_error_resets_max: usize,
}

/// Quota limits that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuotaLimitsError {
    #[error("{0} must be above zero")]
    Zero(&'static str),
    #[error(
        "{share} ({share_max}) is above {all} ({all_max}): one owner could hold the whole store"
    )]
    ShareAboveStore {
        share: &'static str,
        share_max: usize,
        all: &'static str,
        all_max: usize,
    },
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let http = HttpLimits::default();
        let sessions = SessionLimits::default();
        let intakes = IntakeLimits::default();
        let agency = crate::agency::Limits::default();
        Self {
            body_bytes_max: http.body_bytes_max,
            header_bytes_max: http.header_bytes_max,
            request_timeout_secs: http.request_timeout.as_secs(),
            requests_in_flight_max: http.requests_in_flight_max,
            requests_in_flight_per_source_max: http.requests_in_flight_per_source_max,
            connections_max: http.connections_max,
            connections_per_address_max: http.connections_per_address_max,
            header_read_timeout_secs: http.header_read_timeout.as_secs(),
            idle_timeout_secs: http.idle_timeout.as_secs(),
            upstream_timeout_secs: agency.upstream_timeout.as_secs(),
            upstream_body_bytes_max: agency.upstream_body_bytes_max,
            disk_reserve_bytes: crate::deployment::DISK_RESERVE_BYTES_DEFAULT,
            requests_per_source_per_second: http.requests_per_source_per_second,
            requests_per_source_burst: http.requests_per_source_burst,
            trusted_proxies: Vec::new(),
            challenges_max: sessions.challenges_max,
            challenges_per_source_max: sessions.challenges_per_source_max,
            challenges_per_source_per_minute: sessions.challenge_rate.per_minute,
            challenges_per_source_burst_max: sessions.challenge_rate.burst_max,
            sign_ins_per_source_per_minute: sessions.sign_in_rate.per_minute,
            sign_ins_per_source_burst_max: sessions.sign_in_rate.burst_max,
            sessions_max: sessions.sessions_max,
            sessions_per_participant_max: sessions.sessions_per_participant_max,
            intakes_max: intakes.intakes_max,
            intakes_per_source_max: intakes.intakes_per_source_max,
            intakes_per_source_per_minute: intakes.intake_rate.per_minute,
            intakes_per_source_burst_max: intakes.intake_rate.burst_max,
            sources_tracked_max: sessions.sources_tracked_max,
            tls_handshake_timeout_secs: http.tls_handshake_timeout.as_secs(),
            http2_streams_max: http.http2_streams_max,
            http2_resets_pending_max: http.http2_resets_pending_max,
            http2_error_resets_max: http.http2_error_resets_max,
        }
    }
}

impl LimitsConfig {
    /// The HTTP limits, refused when they cannot work together.
    pub fn http(&self) -> Result<HttpLimits, ConfigError> {
        let limits = HttpLimits {
            body_bytes_max: self.body_bytes_max,
            header_bytes_max: self.header_bytes_max,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            requests_in_flight_max: self.requests_in_flight_max,
            requests_in_flight_per_source_max: self.requests_in_flight_per_source_max,
            connections_max: self.connections_max,
            connections_per_address_max: self.connections_per_address_max,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            requests_per_source_per_second: self.requests_per_source_per_second,
            requests_per_source_burst: self.requests_per_source_burst,
            trusted_proxies: std::sync::Arc::new(
                crate::source::TrustedProxies::parse(&self.trusted_proxies)
                    .map_err(|e| ConfigError::Invalid(format!("[limits]: trusted_proxies: {e}")))?,
            ),
            tls_handshake_timeout: Duration::from_secs(self.tls_handshake_timeout_secs),
            http2_streams_max: self.http2_streams_max,
            http2_resets_pending_max: self.http2_resets_pending_max,
            http2_error_resets_max: self.http2_error_resets_max,
        };
        limits
            .check()
            .map_err(|e| ConfigError::Invalid(format!("[limits]: {e}")))?;
        Ok(limits)
    }

    fn check_quotas(&self) -> Result<(), QuotaLimitsError> {
        let counts = [
            ("challenges_max", self.challenges_max),
            ("challenges_per_source_max", self.challenges_per_source_max),
            ("sessions_max", self.sessions_max),
            (
                "sessions_per_participant_max",
                self.sessions_per_participant_max,
            ),
            ("intakes_max", self.intakes_max),
            ("intakes_per_source_max", self.intakes_per_source_max),
            ("sources_tracked_max", self.sources_tracked_max),
        ];
        let rates = [
            (
                "challenges_per_source_per_minute",
                self.challenges_per_source_per_minute,
            ),
            (
                "challenges_per_source_burst_max",
                self.challenges_per_source_burst_max,
            ),
            (
                "sign_ins_per_source_per_minute",
                self.sign_ins_per_source_per_minute,
            ),
            (
                "sign_ins_per_source_burst_max",
                self.sign_ins_per_source_burst_max,
            ),
            (
                "intakes_per_source_per_minute",
                self.intakes_per_source_per_minute,
            ),
            (
                "intakes_per_source_burst_max",
                self.intakes_per_source_burst_max,
            ),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(QuotaLimitsError::Zero(name));
        }
        if let Some((name, _)) = rates.iter().find(|(_, n)| *n == 0) {
            return Err(QuotaLimitsError::Zero(name));
        }
        let shares = [
            (
                "challenges_per_source_max",
                self.challenges_per_source_max,
                "challenges_max",
                self.challenges_max,
            ),
            (
                "sessions_per_participant_max",
                self.sessions_per_participant_max,
                "sessions_max",
                self.sessions_max,
            ),
            (
                "intakes_per_source_max",
                self.intakes_per_source_max,
                "intakes_max",
                self.intakes_max,
            ),
        ];
        for (share, share_max, all, all_max) in shares {
            if share_max > all_max {
                return Err(QuotaLimitsError::ShareAboveStore {
                    share,
                    share_max,
                    all,
                    all_max,
                });
            }
        }
        Ok(())
    }

    /// The sign-in limits, refused when they cannot work.
    pub fn sessions(&self) -> Result<SessionLimits, ConfigError> {
        self.check_quotas().map_err(quota_invalid)?;
        Ok(SessionLimits {
            challenges_max: self.challenges_max,
            challenges_per_source_max: self.challenges_per_source_max,
            challenge_rate: Rate {
                burst_max: self.challenges_per_source_burst_max,
                per_minute: self.challenges_per_source_per_minute,
            },
            sign_in_rate: Rate {
                burst_max: self.sign_ins_per_source_burst_max,
                per_minute: self.sign_ins_per_source_per_minute,
            },
            sessions_max: self.sessions_max,
            sessions_per_participant_max: self.sessions_per_participant_max,
            sources_tracked_max: self.sources_tracked_max,
            ..SessionLimits::default()
        })
    }

    /// The intake limits, refused when they cannot work.
    pub fn intakes(&self) -> Result<IntakeLimits, ConfigError> {
        self.check_quotas().map_err(quota_invalid)?;
        Ok(IntakeLimits {
            intakes_max: self.intakes_max,
            intakes_per_source_max: self.intakes_per_source_max,
            intake_rate: Rate {
                burst_max: self.intakes_per_source_burst_max,
                per_minute: self.intakes_per_source_per_minute,
            },
            sources_tracked_max: self.sources_tracked_max,
            ..IntakeLimits::default()
        })
    }
}

fn quota_invalid(e: QuotaLimitsError) -> ConfigError {
    ConfigError::Invalid(format!("[limits]: {e}"))
}

/// `consentry.toml`. Relative paths are relative to the file's folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    /// Where `/metrics` is served, apart from the public routes: counts
    /// over time are for the operator. Loopback unless the operator says
    /// otherwise; a config written before this field had it gets
    /// [`METRICS_LISTEN`].
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: String,
    /// `scheme://host:port` agencies sign `@target-uri` against.
    pub public_url: String,
    pub data_dir: PathBuf,
    /// The log's origin line in checkpoints.
    pub origin: String,
    /// Private (owner-only): signs checkpoints, the gateway's entries and
    /// forwarded requests.
    pub gateway_key: PathBuf,
    /// Public: the governance key that signs registry and rules entries.
    pub trust: PathBuf,
    pub vocabulary: PathBuf,
    pub rules: PathBuf,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The witness policy (`witness KEY` lines, `quorum K`) the portal's
    /// "verified" mark checks checkpoints against; none: no witnesses.
    #[serde(default)]
    pub witness_policy: Option<PathBuf>,
    /// Plain HTTP on an address other than loopback: only when the
    /// operator says so (a private network behind a TLS proxy), with a
    /// warning at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
    /// The server's certificate: TLS is served here when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// How the gateway trusts record systems' certificates, and its own
    /// client certificate for the holders whose registry entry asks for it.
    #[serde(default, skip_serializing_if = "UpstreamTlsConfig::is_default")]
    pub upstream_tls: UpstreamTlsConfig,
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[tls]`: the server's certificate chain (leaf first) and its key, PEM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[upstream_tls]`: the CA bundle record systems' certificates are checked
/// against (none: the system's roots), and the gateway's client
/// certificate and key (its mTLS identity), both or neither.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// `http://` record systems beyond this machine (a private network):
    /// refused unless set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
}

impl UpstreamTlsConfig {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// How the public listener serves, as the config allows it.
#[derive(Debug)]
pub enum Serving {
    /// TLS here, with this certificate.
    Tls(crate::tls::TlsFiles),
    /// Plain HTTP; `warning` when it is on more than loopback.
    Plain { warning: Option<String> },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.into(),
            err,
        })?;
        let mut c: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            err: e.to_string(),
        })?;
        c.base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(c)
    }

    /// A path from the file, resolved against the file's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub fn gateway_signing_key(&self) -> Result<SigningKey, ConfigError> {
        read_key(&self.path(&self.gateway_key))
    }

    /// What the server is built with, from this file: the public URL (as
    /// bound, for a config that listens on port 0), the limits of the
    /// agency path, of sign-ins and of intakes, and the witness policy.
    pub fn settings(&self, public_url: &str) -> Result<Settings, ConfigError> {
        let witness_policy = match &self.witness_policy {
            None => None,
            Some(p) => {
                let path = self.path(p);
                let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Read {
                    path: path.clone(),
                    err,
                })?;
                let policy =
                    ledger::WitnessPolicy::parse(&text).map_err(|e| ConfigError::Parse {
                        path,
                        err: e.to_string(),
                    })?;
                Some(policy)
            }
        };
        Ok(Settings {
            public_url: public_url.to_string(),
            agency: crate::agency::Limits {
                upstream_timeout: std::time::Duration::from_secs(self.limits.upstream_timeout_secs),
                upstream_body_bytes_max: self.limits.upstream_body_bytes_max,
                ..crate::agency::Limits::default()
            },
            sessions: self.limits.sessions()?,
            intakes: self.limits.intakes()?,
            witness_policy,
            upstream_tls: self.upstream_tls()?,
        })
    }

    /// Secure by default: TLS here needs an `https://` public URL; plain
    /// HTTP only on a loopback address (a reverse proxy on this machine,
    /// or the README's first minute), or with `allow_plain_http = true`.
    pub fn serving(&self, listen: std::net::SocketAddr) -> Result<Serving, ConfigError> {
        let https = self.public_url.starts_with("https://");
        if let Some(t) = &self.tls {
            if !https {
                return Err(ConfigError::Invalid(format!(
                    "[tls] is set but public_url {:?} is not https://: agencies would sign a URL that is not the one served",
                    self.public_url
                )));
            }
            return Ok(Serving::Tls(crate::tls::TlsFiles {
                cert: self.path(&t.cert),
                key: self.path(&t.key),
            }));
        }
        if listen.ip().is_loopback() {
            return Ok(Serving::Plain { warning: None });
        }
        if !self.allow_plain_http {
            return Err(ConfigError::Invalid(format!(
                "listen {listen} is not a loopback address and there is no [tls]: records and session cookies would cross the network in clear. Give [tls] cert and key (consentry init --tls HOST makes a pilot's), or listen on 127.0.0.1 behind a TLS proxy, or set allow_plain_http = true if a TLS proxy elsewhere is the only way in"
            )));
        }
        Ok(Serving::Plain {
            warning: Some(format!(
                "warning: serving plain HTTP on {listen} (allow_plain_http = true): only a TLS proxy in front of it must reach this address"
            )),
        })
    }

    /// The upstream client's trust and identity, paths resolved.
    pub fn upstream_tls(&self) -> Result<crate::agency::UpstreamTls, ConfigError> {
        let u = &self.upstream_tls;
        let identity = match (&u.client_cert, &u.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(crate::tls::client::Identity {
                cert: self.path(cert),
                key: self.path(key),
            }),
            _ => {
                return Err(ConfigError::Invalid(
                    "[upstream_tls]: give client_cert and client_key together, or neither".into(),
                ))
            }
        };
        Ok(crate::agency::UpstreamTls {
            roots: crate::tls::Roots::from_flag(u.ca.as_ref().map(|p| self.path(p)).as_deref()),
            identity,
            allow_plain_http: u.allow_plain_http,
        })
    }

    pub fn trust(&self) -> Result<Trust, ConfigError> {
        let path = self.path(&self.trust);
        read_trust(&path)
    }
}

/// Reads a base64 Ed25519 seed, from a file only its owner can read: a
/// key anyone else on the machine could read is no longer a secret.
pub fn read_key(path: &Path) -> Result<SigningKey, ConfigError> {
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|err| ConfigError::Read {
            path: path.into(),
            err,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::KeyReadable {
                path: path.into(),
                mode,
            });
        }
    }
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.into(),
        err,
    })?;
    let raw: [u8; 32] = B64
        .decode(text.trim())
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| ConfigError::BadKey { path: path.into() })?;
    Ok(SigningKey::from_bytes(&raw))
}

/// The key at `path`, created (owner-only) if there is none yet.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, ConfigError> {
    if path.exists() {
        return read_key(path);
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(path, &key)?;
    Ok(key)
}

/// The trust roots of a deployment: its governance and gateway keys.
pub fn trust_roots(governance: &SigningKey, gateway: &SigningKey) -> Trust {
    Trust {
        governance_key_id: "governance".into(),
        governance_public_key: B64.encode(governance.verifying_key().as_bytes()),
        gateway_key_id: "gateway".into(),
        gateway_public_key: B64.encode(gateway.verifying_key().as_bytes()),
        board: Vec::new(),
        quorum: 1,
    }
}

/// The public trust roots' file in a deployment folder, for tools that
/// must not read private keys.
pub const TRUST_FILE: &str = "keys/trust.json";

pub fn write_trust(path: &Path, t: &Trust) -> Result<(), ConfigError> {
    write(path, &format!("{}\n", audit::bundle::trust_json(t)))
}

/// Reads the public trust roots written by [`write_trust`].
pub fn read_trust(path: &Path) -> Result<Trust, ConfigError> {
    let text = std::fs::read(path).map_err(|err| ConfigError::Read {
        path: path.into(),
        err,
    })?;
    audit::bundle::parse_trust(&text).map_err(|err| ConfigError::Parse {
        path: path.into(),
        err,
    })
}

/// Writes a new secret, readable by the owner only; never overwrites.
pub fn write_secret(path: &Path, key: &SigningKey) -> Result<(), ConfigError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let werr = |err| ConfigError::Write {
        path: path.into(),
        err,
    };
    let mut f = opts.open(path).map_err(werr)?;
    writeln!(f, "{}", B64.encode(key.to_bytes())).map_err(werr)?;
    f.sync_all().map_err(werr)
}

fn write(path: &Path, text: &str) -> Result<(), ConfigError> {
    std::fs::write(path, text).map_err(|err| ConfigError::Write {
        path: path.into(),
        err,
    })
}

/// What `consentry init` made.
pub struct Initialised {
    pub config: PathBuf,
    pub governance_key: PathBuf,
    pub log_size: u64,
    /// With `--tls`: the certificates and keys.
    pub tls: Option<TlsMade>,
}

/// `consentry init --tls`: the names and addresses the deployment CA is
/// constrained to and its certificates are for (the first one is the
/// public URL's), and where to keep the CA's key, if anywhere.
#[derive(Clone, Debug)]
pub struct InitTls {
    pub hosts: Vec<crate::tls::pki::Host>,
    pub ca_key: Option<PathBuf>,
}

/// The files `consentry init --tls` wrote, for the operator.
#[derive(Clone, Debug)]
pub struct TlsMade {
    pub public_url: String,
    /// Public: what clients (`--ca`), phones and record systems trust.
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Where the CA's key was written; none: it was discarded.
    pub ca_key: Option<PathBuf>,
}

const INIT_CA_FILE: &str = "keys/ca.pem";
const INIT_TLS_CERT: &str = "keys/tls.crt";
const INIT_TLS_KEY: &str = "keys/tls.key";
const INIT_CLIENT_CERT: &str = "keys/gateway-client.crt";
const INIT_CLIENT_KEY: &str = "keys/gateway-client.key";

/// The deployment CA and what it issued, in memory: made before anything
/// is written, so that a failure leaves no half a deployment.
struct PendingTls {
    ca: crate::tls::pki::DeploymentCa,
    server: crate::tls::pki::Issued,
    client: crate::tls::pki::Issued,
    public_url: String,
    ca_key: Option<PathBuf>,
}

impl PendingTls {
    /// Checks where the CA's key would go, then makes the CA and its two
    /// certificates for `t.hosts`.
    fn new(dir: &Path, t: &InitTls, listen: &str, now: i64) -> Result<Self, ConfigError> {
        use crate::tls::pki::{DeploymentCa, Host, Usage, Validity, LEAF_DAYS};
        let first = t
            .hosts
            .first()
            .ok_or_else(|| ConfigError::Invalid("--tls names no host".into()))?;
        if let Some(k) = &t.ca_key {
            if is_inside(k, dir) {
                return Err(ConfigError::CaKeyInside { dir: dir.into() });
            }
            if k.exists() {
                return Err(ConfigError::Exists(k.clone()));
            }
            // Checked now, not found missing after the other keys exist.
            match k.parent() {
                Some(p) if !p.as_os_str().is_empty() && !p.is_dir() => {
                    return Err(ConfigError::Invalid(format!(
                        "--tls-ca-key: the folder {} does not exist",
                        p.display()
                    )))
                }
                _ => {}
            }
        }
        let port = listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .ok_or_else(|| ConfigError::Invalid(format!("--listen {listen:?} has no port")))?;
        let host = match first {
            Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            h => h.to_string(),
        };
        let ca = DeploymentCa::new(&first.to_string(), &t.hosts, now)?;
        let valid = Validity {
            now,
            days: LEAF_DAYS,
        };
        Ok(Self {
            server: ca.issue(Usage::Server, &t.hosts, valid)?,
            client: ca.issue(Usage::Client, &t.hosts, valid)?,
            ca,
            public_url: format!("https://{host}:{port}"),
            ca_key: t.ca_key.clone(),
        })
    }

    /// Writes the certificates (public) and keys (owner-only) under `dir`
    /// and the CA's key where asked; the CA's key is then dropped.
    fn write(self, dir: &Path) -> Result<TlsMade, ConfigError> {
        let made = TlsMade {
            public_url: self.public_url,
            ca_cert: dir.join(INIT_CA_FILE),
            server_cert: dir.join(INIT_TLS_CERT),
            server_key: dir.join(INIT_TLS_KEY),
            client_cert: dir.join(INIT_CLIENT_CERT),
            client_key: dir.join(INIT_CLIENT_KEY),
            ca_key: self.ca_key,
        };
        if let Some(k) = &made.ca_key {
            self.ca.write_key(k)?;
        }
        self.ca.write_cert(&made.ca_cert)?;
        self.server.write(&made.server_cert, &made.server_key)?;
        self.client.write(&made.client_cert, &made.client_key)?;
        Ok(made)
    }
}

/// Creates a deployment in `dir`: keys (private ones owner-only), public
/// trust roots, the default vocabulary and rules as editable files, the
/// config, and a first governance-signed `governance.rules` entry; with
/// `tls`, a deployment CA, the server's certificate and the gateway's
/// client certificate, and a config that serves HTTPS.
pub async fn init(
    dir: &Path,
    governance_path: &Path,
    listen: &str,
    metrics_listen: &str,
    origin: &str,
    tls: Option<&InitTls>,
    now: i64,
) -> Result<Initialised, ConfigError> {
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(ConfigError::Exists(config_path));
    }
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).map_err(|err| ConfigError::Write {
        path: keys.clone(),
        err,
    })?;
    if is_inside(governance_path, dir) {
        return Err(ConfigError::GovernanceKeyInside { dir: dir.into() });
    }
    if governance_path.exists() {
        return Err(ConfigError::Exists(governance_path.into()));
    }
    let tls = tls
        .map(|t| PendingTls::new(dir, t, listen, now))
        .transpose()?;
    let governance = SigningKey::generate(&mut rand::rngs::OsRng);
    let gateway = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(governance_path, &governance)?;
    write_secret(&keys.join("gateway.key"), &gateway)?;
    let signer = ledger::NoteSigner::new(origin, gateway.clone())
        .map_err(|e| ConfigError::Invalid(format!("origin {origin:?}: {e}")))?;
    write(&keys.join("log.vkey"), &format!("{}\n", signer.verifier()))?;
    let trust = trust_roots(&governance, &gateway);
    write_trust(&dir.join(TRUST_FILE), &trust)?;
    write(
        &dir.join("vocabulary.toml"),
        policy::vocab::DEFAULT_VOCABULARY_TOML,
    )?;
    write(&dir.join("rules.toml"), policy::rules::DEFAULT_RULES_TOML)?;
    let tls = tls.map(|t| t.write(dir)).transpose()?;
    let config = Config {
        listen: listen.into(),
        metrics_listen: metrics_listen.into(),
        public_url: match &tls {
            Some(t) => t.public_url.clone(),
            None => format!("http://{listen}"),
        },
        data_dir: "data".into(),
        origin: origin.into(),
        gateway_key: "keys/gateway.key".into(),
        trust: "keys/trust.json".into(),
        vocabulary: "vocabulary.toml".into(),
        rules: "rules.toml".into(),
        limits: LimitsConfig::default(),
        witness_policy: None,
        allow_plain_http: false,
        tls: tls.as_ref().map(|_| TlsConfig {
            cert: INIT_TLS_CERT.into(),
            key: INIT_TLS_KEY.into(),
        }),
        upstream_tls: match &tls {
            Some(_) => UpstreamTlsConfig {
                ca: None,
                client_cert: Some(INIT_CLIENT_CERT.into()),
                client_key: Some(INIT_CLIENT_KEY.into()),
                allow_plain_http: false,
            },
            None => UpstreamTlsConfig::default(),
        },
        base: dir.into(),
    };
    let vocabulary = Vocabulary::from_toml(policy::vocab::DEFAULT_VOCABULARY_TOML)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let rules = Rules::from_toml(policy::rules::DEFAULT_RULES_TOML)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let dep = Deployment::open(&config.path(&config.data_dir), signer, trust)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let first = Event::GovernanceRules(GovernanceRules {
        v: V1,
        version: 1,
        vocabulary,
        rules,
        at: now,
    });
    let env = sign_event(&first, "governance", &governance)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    dep.submit(env)
        .await
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    dep.log
        .publish_checkpoint()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let log_size = dep.log.size();
    dep.close();
    let text = toml::to_string_pretty(&config).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    write(
        &config_path,
        &format!("# consentry deployment config, written by `consentry init`.\n# Agencies are not configured here: enrol them with governance-signed\n# entries (POST /v1/entries).\n\n{text}"),
    )?;
    Ok(Initialised {
        config: config_path,
        governance_key: governance_path.into(),
        log_size,
        tls,
    })
}

/// True if `path` would be inside `dir` (resolving what exists of both).
fn is_inside(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| -> PathBuf {
        let absolute = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // The file does not exist yet: resolve its folder.
        match (absolute.parent(), absolute.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent)
                .map(|p| p.join(name))
                .unwrap_or(absolute.clone()),
            _ => absolute,
        }
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    resolve(path).starts_with(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE_METRICS_LISTEN: &str = r#"
listen = "0.0.0.0:8700"
public_url = "https://gateway.example"
data_dir = "data"
origin = "gateway.example/log"
gateway_key = "keys/gateway.key"
trust = "keys/trust.json"
vocabulary = "vocabulary.toml"
rules = "rules.toml"
"#;

    #[test]
    fn a_config_from_before_metrics_listen_serves_metrics_on_loopback() {
        let c: Config = toml::from_str(BEFORE_METRICS_LISTEN).unwrap();
        assert_eq!(c.metrics_listen, METRICS_LISTEN);
        let at: std::net::SocketAddr = c.metrics_listen.parse().unwrap();
        assert!(at.ip().is_loopback());
        // And its limits are the defaults, which work together.
        assert!(c.limits.http().is_ok());
        assert_eq!(c.limits.sessions().unwrap(), SessionLimits::default());
        assert_eq!(c.limits.intakes().unwrap(), IntakeLimits::default());
        assert!(c.limits.http().unwrap().trusted_proxies.is_empty());
    }

    /// The first error `extra` in `[limits]` makes, from whichever of the
    /// limits reads it.
    fn refused(extra: &str, read: impl Fn(&LimitsConfig) -> Option<ConfigError>) -> String {
        let text = format!("{BEFORE_METRICS_LISTEN}\n[limits]\n{extra}\n");
        let c: Config = toml::from_str(&text).unwrap();
        read(&c.limits)
            .unwrap_or_else(|| panic!("{extra} accepted"))
            .to_string()
    }

    #[test]
    fn trusted_proxies_are_read_and_checked() {
        let text = format!(
            "{BEFORE_METRICS_LISTEN}\n[limits]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"
        );
        let c: Config = toml::from_str(&text).unwrap();
        let http = c.limits.http().unwrap();
        assert!(http.trusted_proxies.contains("10.9.9.9".parse().unwrap()));
        assert!(http.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(!http.trusted_proxies.contains("127.0.0.2".parse().unwrap()));
        let http = |l: &LimitsConfig| l.http().err();
        assert!(refused("trusted_proxies = [\"10.1.2.3/8\"]", http).contains("10.0.0.0/8"));
        assert!(refused("trusted_proxies = [\"proxy.example\"]", http).contains("proxy.example"));
    }

    #[test]
    fn quotas_are_read_and_checked() {
        let text = format!(
            "{BEFORE_METRICS_LISTEN}\n[limits]\nchallenges_per_source_max = 20\nintakes_per_source_per_minute = 5\n"
        );
        let c: Config = toml::from_str(&text).unwrap();
        assert_eq!(c.limits.sessions().unwrap().challenges_per_source_max, 20);
        assert_eq!(c.limits.intakes().unwrap().intake_rate.per_minute, 5);
        let sessions = |l: &LimitsConfig| l.sessions().err();
        let intakes = |l: &LimitsConfig| l.intakes().err();
        assert!(refused("sign_ins_per_source_per_minute = 0", sessions)
            .contains("sign_ins_per_source_per_minute must be above zero"));
        assert!(refused("intakes_per_source_burst_max = 0", intakes)
            .contains("intakes_per_source_burst_max"));
        assert!(refused(
            "challenges_max = 10\nchallenges_per_source_max = 11",
            sessions
        )
        .contains("challenges_per_source_max (11) is above challenges_max (10)"));
    }

    /// Who may serve what: plain HTTP on loopback only unless the file
    /// says otherwise, TLS only under an https public URL.
    #[test]
    fn plain_http_is_served_on_loopback_only_unless_allowed() {
        let base = BEFORE_METRICS_LISTEN.replace("https://gateway.example", "URL");
        // Top-level keys before the file, tables after it.
        let serving = |url: &str, top: &str, table: &str, listen: &str| {
            let text = format!("{top}\n{}\n{table}", base.replace("URL", url));
            let c: Config = toml::from_str(&text).unwrap();
            match c.serving(listen.parse().unwrap()) {
                Ok(Serving::Tls(_)) => "tls".to_string(),
                Ok(Serving::Plain { warning: None }) => "plain".to_string(),
                Ok(Serving::Plain { warning: Some(_) }) => "plain, warned".to_string(),
                Err(e) => format!("refused: {e}"),
            }
        };
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"";
        let allow = "allow_plain_http = true";
        let table = [
            ("http://127.0.0.1:8700", "", "", "127.0.0.1:8700", "plain"),
            ("http://[::1]:8700", "", "", "[::1]:8700", "plain"),
            ("https://gw.example", "", "", "127.0.0.1:8700", "plain"),
            ("http://10.0.0.5:8700", "", "", "0.0.0.0:8700", "refused"),
            ("https://gw.example", "", "", "10.0.0.5:8700", "refused"),
            (
                "http://10.0.0.5:8700",
                allow,
                "",
                "0.0.0.0:8700",
                "plain, warned",
            ),
            ("https://gw.example", "", tls, "0.0.0.0:443", "tls"),
            ("http://gw.example", "", tls, "0.0.0.0:443", "refused"),
        ];
        for (url, top, tables, listen, want) in table {
            let got = serving(url, top, tables, listen);
            assert!(
                got.starts_with(want),
                "{url} {top:?} {tables:?} on {listen}: {got}"
            );
        }
    }

    #[test]
    fn the_gateways_client_certificate_comes_with_its_key() {
        let text =
            format!("{BEFORE_METRICS_LISTEN}\n[upstream_tls]\nclient_cert = \"keys/c.pem\"\n");
        let c: Config = toml::from_str(&text).unwrap();
        let err = c.upstream_tls().unwrap_err().to_string();
        assert!(err.contains("client_cert and client_key together"), "{err}");
        let c: Config = toml::from_str(BEFORE_METRICS_LISTEN).unwrap();
        assert_eq!(
            c.upstream_tls().unwrap(),
            crate::agency::UpstreamTls::default()
        );
    }

    #[test]
    fn init_tls_serves_at_the_first_name_on_the_listen_port() {
        let dir = tempfile::tempdir().unwrap();
        // As init has made it by then.
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let tls = |hosts: &str, ca_key: Option<PathBuf>| InitTls {
            hosts: crate::tls::pki::Host::parse_list(hosts).unwrap(),
            ca_key,
        };
        let url = |hosts: &str, listen: &str| {
            PendingTls::new(dir.path(), &tls(hosts, None), listen, 1_800_000_000)
                .map(|p| p.public_url)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            url("Gateway.Example,10.0.0.5", "0.0.0.0:8700").unwrap(),
            "https://gateway.example:8700"
        );
        assert_eq!(url("::1", "[::1]:8443").unwrap(), "https://[::1]:8443");
        assert!(url("gateway.example", "gateway.example")
            .unwrap_err()
            .contains("no port"));
        let inside = PendingTls::new(
            dir.path(),
            &tls("gateway.example", Some(dir.path().join("keys/ca.key"))),
            "0.0.0.0:8700",
            1_800_000_000,
        );
        assert!(matches!(inside, Err(ConfigError::CaKeyInside { .. })));
        let nowhere = PendingTls::new(
            dir.path(),
            &tls("gateway.example", Some("/no/such/folder/ca.key".into())),
            "0.0.0.0:8700",
            1_800_000_000,
        );
        assert!(matches!(nowhere, Err(ConfigError::Invalid(e)) if e.contains("does not exist")));
    }

    #[test]
    fn limits_that_cannot_work_together_are_refused_at_load() {
        let text = format!("{BEFORE_METRICS_LISTEN}\n[limits]\nidle_timeout_secs = 5\n");
        let c: Config = toml::from_str(&text).unwrap();
        let err = c.limits.http().unwrap_err().to_string();
        assert!(err.contains("idle_timeout"), "{err}");
    }
}
