//! The flags of the top-level commands, one struct per command. The help
//! line of each command is the doc comment on its variant in `main.rs`,
//! so these structs carry none of their own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// Start over: delete the demo folder first.
    #[arg(long)]
    pub fresh: bool,
    /// Also enrol three witnesses (keys in DIR/keys/witness-N.key, the
    /// 2-of-3 policy in DIR/keys/witnesses.txt) for `consentry witness`.
    #[arg(long)]
    pub witnesses: bool,
    /// Serve HTTPS, with a certificate for localhost and 127.0.0.1 from a
    /// demo CA whose certificate is DIR/keys/ca.pem.
    #[arg(long)]
    pub tls: bool,
    /// Also put NAME (this machine's LAN name, say) in the certificate,
    /// and serve at https://NAME:PORT, to try the portal from a phone that
    /// trusts DIR/keys/ca.pem; implies --tls. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub tls_host: Vec<String>,
}

#[derive(Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub who: Signer,
    /// The asking agency, with --dir.
    #[arg(long = "as")]
    pub agency: Option<String>,
    #[arg(long)]
    pub holder: String,
    #[arg(long)]
    pub participant: String,
    #[arg(long)]
    pub purpose: String,
    /// Comma-separated category codes.
    #[arg(long)]
    pub categories: String,
    /// The FHIR path at the holder.
    #[arg(long, default_value = "Observation")]
    pub path: String,
    /// Print the whole answer as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct IntakeArgs {
    #[command(flatten)]
    pub who: Signer,
    /// The enrolling agency, with --dir.
    #[arg(long = "as")]
    pub agency: Option<String>,
    /// The intake code the person shows, e.g. 7KQ2M-XW4PZ.
    #[arg(long)]
    pub code: String,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub who: Signer,
    #[arg(long)]
    pub participant: String,
    #[arg(long)]
    pub consent: String,
}

#[derive(Args)]
pub struct WitnessArgs {
    #[arg(long)]
    pub gateway: String,
    /// The witness's key file (its organisation's enrolled key).
    #[arg(long)]
    pub key: PathBuf,
    /// The witness's name: its organisation's id in the registry.
    #[arg(long)]
    pub name: String,
    /// The log's verifier key (your own copy).
    #[arg(long)]
    pub vkey: PathBuf,
    /// Where the last cosigned checkpoint is kept (created if missing).
    #[arg(long)]
    pub state: PathBuf,
    /// The CA certificate(s) to trust for an https:// gateway (PEM);
    /// default: the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Milliseconds between rounds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// One round, then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// A demo folder (keys).
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// gateway, mix (the audit benchmark's allows, denies and
    /// emergencies, through the gateway), direct or proxy.
    #[arg(long)]
    pub target: String,
    /// Where to send: the gateway, the record system, or the proxy.
    #[arg(long)]
    pub url: String,
    /// For direct and proxy: the record system's own base URL, which the
    /// gateway's signature covers.
    #[arg(long)]
    pub sign_for: Option<String>,
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Requests per second (open loop); none: as fast as answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The CA certificate(s) an `https://` target is verified against
    /// (PEM); else the system's roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum LogCmd {
    /// The recent entries in plain words (works while the gateway runs).
    Tail {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: String,
    /// Where /metrics is served, apart from the public routes.
    #[arg(long, default_value = gateway::config::METRICS_LISTEN)]
    pub metrics_listen: String,
    /// The log's origin line in checkpoints, e.g. your domain + /log.
    #[arg(long, default_value = "consentry.local/log")]
    pub origin: String,
    /// Where to write the governance key: outside --dir (removable
    /// media, or the board member's own machine), never on the server.
    #[arg(long)]
    pub governance_key: PathBuf,
    /// Serve HTTPS: a deployment CA constrained to these names and
    /// addresses (comma-separated; the first is the public URL's), its
    /// server certificate, and the gateway's client certificate for
    /// record systems. For pilots: real deployments use a real certificate.
    #[arg(long, value_name = "HOST[,HOST...]")]
    pub tls: Option<String>,
    /// Keep the deployment CA's private key here (owner-only, outside
    /// --dir) to issue again later; without it the key is discarded once
    /// the certificates are made.
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub tls_ca_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Args)]
pub struct FsckArgs {
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// Public trust roots (default: DIR/keys/trust.json).
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// The log's verifier key (default: DIR/keys/log.vkey).
    #[arg(long)]
    pub vkey: Option<PathBuf>,
}

/// Who signs and where to send: explicit flags, or a demo folder.
#[derive(Args)]
pub struct Signer {
    /// A demo folder: the key is DIR/keys/WHO.key and the gateway the one
    /// the demo serves.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub gateway: Option<String>,
    #[arg(long)]
    pub key: Option<PathBuf>,
    #[arg(long)]
    pub key_id: Option<String>,
    /// The CA certificate(s) to trust for an https:// gateway (PEM);
    /// default: DIR/keys/ca.pem with --dir when the demo serves HTTPS,
    /// else the system's roots. Verification is never turned off.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}
