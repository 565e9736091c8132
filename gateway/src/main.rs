//! The `consentry` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod audit_cli;
mod participant_cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "consentry",
    about = "Consent ledger and data-sharing gateway for recovery services"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a complete deployment on loopback: gateway, sample record
    /// systems, agencies, participants, a consent (created on first run).
    Demo {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: SocketAddr,
        /// Start over: delete the demo folder first.
        #[arg(long)]
        fresh: bool,
        /// Also enrol three witnesses (keys in DIR/keys/witness-N.key, the
        /// 2-of-3 policy in DIR/keys/witnesses.txt) for `consentry witness`.
        #[arg(long)]
        witnesses: bool,
    },
    /// Ask for a participant's records, as an agency (RFC 9421-signed).
    Request {
        #[command(flatten)]
        who: Signer,
        /// The asking agency, with --dir.
        #[arg(long = "as")]
        agency: Option<String>,
        #[arg(long)]
        holder: String,
        #[arg(long)]
        participant: String,
        #[arg(long)]
        purpose: String,
        /// Comma-separated category codes.
        #[arg(long)]
        categories: String,
        /// The FHIR path at the holder.
        #[arg(long, default_value = "Observation")]
        path: String,
        /// Print the whole answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Confirm a participant's enrolment at this agency's intake: the
    /// person made their key in the portal (/portal/en/enrol) and shows
    /// the intake code; this co-signs it with the agency's key.
    Intake {
        #[command(flatten)]
        who: Signer,
        /// The enrolling agency, with --dir.
        #[arg(long = "as")]
        agency: Option<String>,
        /// The intake code the person shows, e.g. 7KQ2M-XW4PZ.
        #[arg(long)]
        code: String,
    },
    /// Revoke a consent, signed with the participant's own key.
    Revoke {
        #[command(flatten)]
        who: Signer,
        #[arg(long)]
        participant: String,
        #[arg(long)]
        consent: String,
    },
    /// Run a witness: cosign the gateway's checkpoints that extend the
    /// last one this witness cosigned; refuse (exit 2, and say why)
    /// anything else.
    Witness {
        #[arg(long)]
        gateway: String,
        /// The witness's key file (its organisation's enrolled key).
        #[arg(long)]
        key: PathBuf,
        /// The witness's name: its organisation's id in the registry.
        #[arg(long)]
        name: String,
        /// The log's verifier key (your own copy).
        #[arg(long)]
        vkey: PathBuf,
        /// Where the last cosigned checkpoint is kept (created if missing).
        #[arg(long)]
        state: PathBuf,
        /// Milliseconds between rounds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// One round, then exit.
        #[arg(long)]
        once: bool,
    },
    /// The auditor's side: export a bundle, verify it.
    Audit {
        #[command(subcommand)]
        cmd: audit_cli::AuditCmd,
    },
    /// The participant's side: enrol, restore, consents, disclosures,
    /// grant, revoke, export, grievance.
    Participant {
        #[command(subcommand)]
        cmd: participant_cli::ParticipantCmd,
    },
    /// Load generator for bench/run.sh: pre-signed requests, fresh nonces.
    Bench {
        /// A demo folder (keys).
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// gateway, mix (the audit benchmark's allows, denies and
        /// emergencies, through the gateway), direct or proxy.
        #[arg(long)]
        target: String,
        /// Where to send: the gateway, the record system, or the proxy.
        #[arg(long)]
        url: String,
        /// For direct and proxy: the record system's own base URL, which the
        /// gateway's signature covers.
        #[arg(long)]
        sign_for: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Requests per second (open loop); none: as fast as answered.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Read the log.
    Log {
        #[command(subcommand)]
        cmd: LogCmd,
    },
    /// Create a deployment in a folder: keys, config, first governance entry.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: String,
        /// Where /metrics is served, apart from the public routes.
        #[arg(long, default_value = gateway::config::METRICS_LISTEN)]
        metrics_listen: String,
        /// The log's origin line in checkpoints, e.g. your domain + /log.
        #[arg(long, default_value = "consentry.local/log")]
        origin: String,
        /// Where to write the governance key: outside --dir (removable
        /// media, or the board member's own machine), never on the server.
        #[arg(long)]
        governance_key: PathBuf,
    },
    /// Run a deployment from its config file (see `init`).
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Re-verify a stopped deployment's whole log (signatures, frames,
    /// hashes, checkpoint), read-only and with public keys only.
    Fsck {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Public trust roots (default: DIR/keys/trust.json).
        #[arg(long)]
        trust: Option<PathBuf>,
        /// The log's verifier key (default: DIR/keys/log.vkey).
        #[arg(long)]
        vkey: Option<PathBuf>,
    },
}

/// Who signs and where to send: explicit flags, or a demo folder.
#[derive(clap::Args)]
struct Signer {
    /// A demo folder: the key is DIR/keys/WHO.key and the gateway the one
    /// the demo serves.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    gateway: Option<String>,
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    key_id: Option<String>,
}

#[derive(Subcommand)]
enum LogCmd {
    /// The recent entries in plain words (works while the gateway runs).
    Tail {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Errors end the process with one line, never a backtrace.
fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Cli::parse().cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cmd {
        Cmd::Audit { cmd } => audit_cli::run(cmd).await,
        Cmd::Witness {
            gateway: url,
            key,
            name,
            vkey,
            state,
            interval_ms,
            once,
        } => {
            use gateway::witness::{round, Round, StateFile};
            let key = gateway::config::read_key(&key)?;
            let cosigner = ledger::Cosigner::new(&name, key.clone())?;
            let log_key = ledger::NoteVerifier::parse(
                std::fs::read_to_string(&vkey)
                    .with_context(|| format!("reading {}", vkey.display()))?
                    .trim(),
            )?;
            let client = gateway::client::AgencyClient::new(&url, &format!("{name}:witness"), key)?;
            let state = StateFile::new(&state);
            loop {
                match round(&client, &log_key, &cosigner, &state, now() as u64).await {
                    Ok(Round::Cosigned(size)) => {
                        println!("cosigned the checkpoint of {size} entries")
                    }
                    Ok(Round::Unchanged(_)) => {}
                    Ok(Round::Refused(why)) => {
                        eprintln!("REFUSED, nothing cosigned: {why}");
                        return Ok(ExitCode::from(2));
                    }
                    // The gateway down or slow: try again next round; the
                    // state is unchanged unless a cosignature was made.
                    Err(e) => eprintln!("witness: {e}"),
                }
                if once {
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
            }
        }
        Cmd::Participant { cmd } => participant_cli::run(cmd).await,
        Cmd::Demo {
            dir,
            listen,
            fresh,
            witnesses,
        } => {
            gateway::demo::run(&dir, listen, fresh, witnesses).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Request {
            who,
            agency,
            holder,
            participant,
            purpose,
            categories,
            path,
            json,
        } => {
            let (gw, key, key_id) = identity(who, agency.as_deref())?;
            let client = gateway::client::AgencyClient::new(&gw, &key_id, key)?;
            let ask = gateway::client::Ask {
                holder,
                participant,
                path,
                purpose,
                categories: categories
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
            };
            let reply = client.request(&ask, now()).await?;
            if json {
                let body: serde_json::Value = serde_json::from_slice(&reply.body)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&reply.body).into());
                println!(
                    "{}",
                    serde_json::json!({
                        "status": reply.status,
                        "decision_id": reply.decision_id,
                        "log_index": reply.index,
                        "released": reply.released,
                        "notice": reply.notice,
                        "body": body,
                    })
                );
            } else {
                print!("{}", gateway::client::describe(&reply));
            }
            Ok(if reply.status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Cmd::Intake { who, agency, code } => {
            let (gw, key, key_id) = identity(who, agency.as_deref())?;
            let client = gateway::client::AgencyClient::new(&gw, &key_id, key)?;
            let (participant, reply) = client.confirm_intake(&code).await?;
            if reply.status == 201 {
                println!("Enrolled {participant}: they can sign in now.");
                Ok(ExitCode::SUCCESS)
            } else {
                print!("{}", gateway::client::describe(&reply));
                Ok(ExitCode::FAILURE)
            }
        }
        Cmd::Revoke {
            who,
            participant,
            consent,
        } => {
            let (gw, key, key_id) = identity(who, Some(&participant))?;
            let event = policy::Event::ConsentRevoked(policy::ConsentRevoked {
                v: policy::V1,
                consent_id: consent.clone(),
                participant: participant.clone(),
                at: now(),
                assisted_by: None,
            });
            let env = gateway::deployment::sign_event(&event, &key_id, &key)?;
            let client = gateway::client::AgencyClient::new(&gw, &key_id, key)?;
            let reply = client.post_entry(env.to_json()).await?;
            if reply.status == 201 {
                let index = serde_json::from_slice::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|v| v["index"].as_u64());
                println!(
                    "{participant} revoked consent {consent}: log entry #{}",
                    index.map_or("?".into(), |i| i.to_string())
                );
                Ok(ExitCode::SUCCESS)
            } else {
                print!("{}", gateway::client::describe(&reply));
                Ok(ExitCode::from(2))
            }
        }
        Cmd::Bench {
            dir,
            target,
            url,
            sign_for,
            requests,
            connections,
            rate,
        } => {
            let categories = vec![
                "health.sud.treatment".to_string(),
                "social.peer-support".to_string(),
            ];
            // A demo agency's client, with its key from the demo folder.
            let demo_agency = |agency: &str| -> anyhow::Result<gateway::client::AgencyClient> {
                let (_, key, key_id) = identity(
                    Signer {
                        dir: Some(dir.clone()),
                        gateway: Some(url.clone()),
                        key: None,
                        key_id: None,
                    },
                    Some(agency),
                )?;
                Ok(gateway::client::AgencyClient::new(&url, &key_id, key)?)
            };
            let ready = match target.as_str() {
                "gateway" => {
                    let client = demo_agency("riverside-housing")?;
                    let ask = gateway::client::Ask {
                        holder: "hope-clinic".into(),
                        participant: "p-0001".into(),
                        path: "Observation".into(),
                        purpose: "housing-placement".into(),
                        categories,
                    };
                    gateway::bench::presign_gateway(&client, &ask, requests, now())?
                }
                "mix" => {
                    // Allowed (p-0001 consented to Riverside Housing),
                    // denied (no consent; wrong purpose), and emergencies
                    // (Hope Recovery Clinic, a clinic, under break-glass).
                    let ask = |holder: &str, participant: &str, purpose: &str, cats: &[&str]| {
                        gateway::client::Ask {
                            holder: holder.into(),
                            participant: participant.into(),
                            path: "Observation".into(),
                            purpose: purpose.into(),
                            categories: cats.iter().map(|c| c.to_string()).collect(),
                        }
                    };
                    let allowed = ask(
                        "hope-clinic",
                        "p-0001",
                        "housing-placement",
                        &["health.sud.treatment", "social.peer-support"],
                    );
                    // A quarter each, so that no agency outruns its nonce
                    // cache (100,000 nonces kept 90 s: about 1,100
                    // requests a second per agency).
                    let plan = [
                        ("riverside-housing", allowed.clone()),
                        ("riverside-housing", allowed),
                        (
                            "northside-jobs",
                            ask(
                                "hope-clinic",
                                "p-0001",
                                "employment-support",
                                &["social.employment"],
                            ),
                        ),
                        (
                            "northside-jobs",
                            ask(
                                "hope-clinic",
                                "p-0002",
                                "employment-support",
                                &["social.employment"],
                            ),
                        ),
                        (
                            "county-court",
                            ask(
                                "hope-clinic",
                                "p-0002",
                                "care-coordination",
                                &["health.sud.treatment"],
                            ),
                        ),
                        (
                            "county-court",
                            ask(
                                "hope-clinic",
                                "p-0001",
                                "care-coordination",
                                &["health.sud.treatment"],
                            ),
                        ),
                        (
                            "hope-clinic",
                            ask(
                                "riverside-housing",
                                "p-0001",
                                "medical-emergency",
                                &["health.sud"],
                            ),
                        ),
                        (
                            "hope-clinic",
                            ask(
                                "riverside-housing",
                                "p-0002",
                                "medical-emergency",
                                &["health.sud"],
                            ),
                        ),
                    ];
                    let mut mix = Vec::new();
                    for (agency, a) in plan {
                        mix.push((demo_agency(agency)?, a));
                    }
                    gateway::bench::presign_mix(&mix, requests, now())?
                }
                "direct" | "proxy" => {
                    let key = gateway::config::read_key(&dir.join("keys/gateway.key"))?;
                    let base = sign_for.unwrap_or_else(|| url.clone());
                    let base = base.trim_end_matches('/');
                    gateway::bench::presign_upstream(
                        &format!("{base}/Observation"),
                        &url,
                        "p-0001",
                        &categories,
                        gateway::upstream::GATEWAY_KEY_ID,
                        &key,
                        requests,
                        now(),
                    )?
                }
                other => anyhow::bail!("unknown target {other:?}: gateway, mix, direct or proxy"),
            };
            let m = gateway::bench::run(ready, connections, rate).await;
            println!(
                "{target}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} sent, {} ok, statuses {:?}, {connections} connections{}",
                m.per_sec(),
                m.p50.as_secs_f64() * 1e3,
                m.p99.as_secs_f64() * 1e3,
                m.sent,
                m.ok(),
                m.statuses,
                rate.map(|r| format!(", offered {r:.0}/s")).unwrap_or_default()
            );
            // In the mix, a denial is an answer too; anything else
            // (a 5xx, a dropped connection) fails the run.
            let answered = if target == "mix" {
                m.statuses
                    .iter()
                    .filter(|(s, _)| matches!(**s, 200 | 403))
                    .map(|(_, n)| *n)
                    .sum::<usize>()
            } else {
                m.ok()
            };
            Ok(if answered == m.sent {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Cmd::Log {
            cmd: LogCmd::Tail { dir, lines },
        } => {
            for line in gateway::logview::tail(&dir.join("data"), lines)? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Init {
            dir,
            listen,
            metrics_listen,
            origin,
            governance_key,
        } => {
            let done = gateway::config::init(
                &dir,
                &governance_key,
                &listen,
                &metrics_listen,
                &origin,
                now(),
            )
            .await?;
            println!(
                "created a deployment in {}: config {}, log of {} entry",
                dir.display(),
                done.config.display(),
                done.log_size
            );
            println!(
                "the governance key is {}: it signs agency enrolments and rules. Keep it offline (a USB stick in the board's safe, or the board member's own machine), never on the server; copy it nowhere else",
                done.governance_key.display()
            );
            println!(
                "run it: cargo run --release --bin consentry -- serve --config {}",
                done.config.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { config } => {
            serve(&config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Fsck { dir, trust, vkey } => {
            // Public keys only, and a read-only store: a check never needs a
            // secret and never changes what it checks.
            let trust = gateway::config::read_trust(
                &trust.unwrap_or_else(|| dir.join(gateway::config::TRUST_FILE)),
            )?;
            let vkey_path = vkey.unwrap_or_else(|| dir.join("keys/log.vkey"));
            let vkey = ledger::NoteVerifier::parse(
                std::fs::read_to_string(&vkey_path)
                    .with_context(|| format!("reading {}", vkey_path.display()))?
                    .trim(),
            )?;
            let report = audit::fsck_dir(&dir.join("data"), trust, &vkey)?;
            let size = report.size;
            println!(
                "ok: {size} entries verified, checkpoint at size {}",
                report.checkpoint_size
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The gateway URL, key and key id to act with: explicit flags, or those
/// of `who` in a demo folder.
fn identity(
    signer: Signer,
    who: Option<&str>,
) -> anyhow::Result<(String, ed25519_dalek::SigningKey, String)> {
    let Signer {
        dir,
        gateway,
        key,
        key_id,
    } = signer;
    let dir = dir.as_deref();
    let gateway = match (gateway, dir) {
        (Some(g), _) => g,
        (None, Some(d)) => std::fs::read_to_string(d.join(gateway::demo::GATEWAY_URL_FILE))
            .with_context(|| {
                format!(
                    "no gateway url in {} (is the demo running?); pass --gateway",
                    d.display()
                )
            })?
            .trim()
            .to_string(),
        (None, None) => "http://127.0.0.1:8700".into(),
    };
    let key_path = match (key, dir, who) {
        (Some(k), _, _) => k,
        (None, Some(d), Some(w)) => d.join(format!("keys/{w}.key")),
        _ => anyhow::bail!("name a key: --key FILE (or --dir DEMO with --as AGENCY)"),
    };
    let key = gateway::config::read_key(&key_path)?;
    let key_id = match (key_id, who) {
        (Some(k), _) => k,
        (None, Some(w)) => format!("{w}:1"),
        (None, None) => anyhow::bail!("name the key id: --key-id ID"),
    };
    Ok((gateway, key, key_id))
}

/// `consentry serve`: one process, the embedded store, no outside service.
async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    use gateway::config::Config;
    let c = Config::load(path)?;
    // Before anything is opened: limits that cannot work together are a
    // mistake in the file, not a reason to hold the store.
    let limits = c.limits.http()?;
    c.limits.sessions()?;
    c.limits.intakes()?;
    let key = c.gateway_signing_key()?;
    let signer = ledger::NoteSigner::new(&c.origin, key.clone())?;
    let dep = Arc::new(
        gateway::deployment::Deployment::open(&c.path(&c.data_dir), signer, c.trust()?)
            .context("opening the deployment")?,
    );
    dep.set_disk_reserve(c.limits.disk_reserve_bytes);
    // The files are the editable source; the ledger's governance entry is
    // what is in force. Say so when they differ.
    {
        let state = dep.state()?;
        let vocabulary = std::fs::read_to_string(c.path(&c.vocabulary))
            .ok()
            .and_then(|t| policy::Vocabulary::from_toml(&t).ok());
        let rules = std::fs::read_to_string(c.path(&c.rules))
            .ok()
            .and_then(|t| policy::Rules::from_toml(&t).ok());
        if vocabulary.as_ref() != Some(state.vocabulary()) || rules.as_ref() != Some(state.rules())
        {
            eprintln!(
                "note: {} or {} differ from the rules in force (version {}); they take effect only when a governance-signed governance.rules entry is submitted",
                c.vocabulary.display(),
                c.rules.display(),
                state.rules_version()
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(&c.listen)
        .await
        .with_context(|| format!("binding {}", c.listen))?;
    let bound = listener.local_addr()?;
    // A config may listen on port 0 (tests): agencies then sign against
    // the port actually bound.
    let public_url = match c.public_url.strip_suffix(":0") {
        Some(base) => format!("{base}:{}", bound.port()),
        None => c.public_url.clone(),
    };
    let state = gateway::server::AppState::new(
        dep.clone(),
        Arc::new(gateway::clock::SystemClock),
        key,
        c.settings(&public_url)?,
    )?;
    let metrics_listener = tokio::net::TcpListener::bind(&c.metrics_listen)
        .await
        .with_context(|| format!("binding {} for /metrics", c.metrics_listen))?;
    let metrics_bound = metrics_listener.local_addr()?;
    println!(
        "consentry serving log {} ({} entries) on {bound}, public url {public_url}, metrics on http://{metrics_bound}/metrics",
        c.origin,
        dep.log.size()
    );
    gateway::server::serve_until_interrupted(listener, metrics_listener, state, &limits).await?;
    Ok(())
}
