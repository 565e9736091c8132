//! `consentry participant …`: the participant's command line. Readable
//! by default, `--json` for scripts. The key stays in its file (owner-only);
//! a profile beside it (`KEY.json`) says whose it is and which gateway and
//! log key to use. Every page read is checked against the signed
//! checkpoint before it is shown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Subcommand;
use ed25519_dalek::SigningKey;
use gateway::participant::client::{verify_page, ParticipantClient, Profile};
use gateway::participant::{new_participant_id, recovery};
use policy::{Event, Kind, Language, Parties, Vocabulary, V1};
use serde_json::{json, Value};

use gateway::tls::Roots;

use super::common::{demo_gateway, now, print_json, roots, split_list};

#[derive(Subcommand)]
pub enum ParticipantCmd {
    /// Enrol at an agency's intake: a new key (written owner-only to --key),
    /// a random pseudonymous id, the agency co-signing; prints the
    /// recovery code once.
    Enrol {
        #[command(flatten)]
        at: Where,
        /// The enrolling agency (its key co-signs: --agency-key, or the
        /// demo folder's).
        #[arg(long = "at")]
        agency: String,
        #[arg(long)]
        agency_key: Option<PathBuf>,
    },
    /// A new key for a lost or leaked one, at the agency that enrolled you,
    /// in person (it co-signs). The new key becomes current only after the
    /// rules' waiting period, unless the old key cancels it. Writes the
    /// new key to --key and prints its recovery code.
    Rotate {
        #[command(flatten)]
        at: Where,
        #[arg(long = "at")]
        agency: String,
        #[arg(long)]
        agency_key: Option<PathBuf>,
        #[arg(long)]
        participant: String,
        /// The current key id, e.g. p-…:1 (the new one is the next number).
        #[arg(long)]
        key_id: String,
    },
    /// Cancel a pending move to a new key, signed with the current key: the
    /// new key never becomes current, and the board is told.
    CancelRotation {
        #[command(flatten)]
        at: Where,
    },
    /// Restore the key on a new device from the recovery code.
    Restore {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        participant: String,
        /// The recovery code, as printed (spaces and case do not matter).
        #[arg(long)]
        code: String,
    },
    /// My consents, in plain words, each checked in the log.
    Consents {
        #[command(flatten)]
        at: Where,
    },
    /// Every decision about my records, newest first, each checked in the log.
    Disclosures {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Grant a consent built from vocabulary codes; shows the sentence
    /// first and signs only with --yes.
    Grant {
        #[command(flatten)]
        at: Where,
        /// Who may share (agency ids, comma-separated).
        #[arg(long)]
        holders: String,
        /// Who may receive (agency ids, comma-separated).
        #[arg(long)]
        recipients: String,
        #[arg(long)]
        categories: String,
        #[arg(long)]
        purposes: String,
        /// How long it lasts.
        #[arg(long, default_value_t = 180)]
        days: i64,
        #[arg(long)]
        yes: bool,
    },
    /// Take a consent back: effective on the very next request.
    Revoke {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        consent: String,
    },
    /// A consent as FHIR R4 Consent (default) or as a consent receipt.
    Export {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        consent: String,
        /// fhir or receipt.
        #[arg(long, default_value = "fhir")]
        format: String,
    },
    /// Dispute a decision (a reason code; see --help for the list), or
    /// with no --decision list my grievances and their answers.
    Grievance {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        decision: Option<String>,
        /// not-consented, wrong-purpose, wrong-recipient, too-much-released,
        /// emergency-not-justified, wrongly-denied, other.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Where the key, the gateway and the log key are.
#[derive(clap::Args)]
pub struct Where {
    /// The key file (its profile is KEY.json beside it).
    #[arg(long)]
    key: PathBuf,
    /// The gateway (default: the profile's, or the demo's with --dir).
    #[arg(long)]
    gateway: Option<String>,
    /// A demo folder: its gateway url and log key (and its CA, when the
    /// demo serves HTTPS).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The CA certificate(s) to trust for an https:// gateway (PEM;
    /// default: the profile's, DIR/keys/ca.pem with --dir, else the
    /// system's roots). Kept in the profile. Verification is never turned
    /// off.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The log's verifier key file (default: the profile's, or DIR/keys/log.vkey).
    #[arg(long)]
    vkey: Option<PathBuf>,
    /// Your witness policy (`witness KEY` lines, `quorum K`): pages are
    /// believed only against a checkpoint K of those witnesses cosigned.
    #[arg(long)]
    witnesses: Option<PathBuf>,
    /// en or es.
    #[arg(long, default_value = "en")]
    lang: String,
    #[arg(long)]
    json: bool,
}

fn profile_path(key: &Path) -> PathBuf {
    Profile::beside(key)
}

struct Resolved {
    gateway: String,
    roots: Roots,
    vkey: PathBuf,
    witnesses: Option<PathBuf>,
    lang: Language,
    json: bool,
}

impl Resolved {
    /// Checks a page's proofs, and with a witness policy its checkpoint's
    /// cosignatures, before anything of it is shown.
    fn check(&self, page: &Value) -> anyhow::Result<u64> {
        let key = log_key(&self.vkey)?;
        Ok(match &self.witnesses {
            None => verify_page(page, &key)?,
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                let policy = ledger::WitnessPolicy::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                gateway::participant::client::verify_page_witnessed(page, &key, &policy)?
            }
        })
    }
}

fn resolve(w: &Where, profile: Option<&Value>) -> anyhow::Result<Resolved> {
    let from_profile = |field: &str| profile.and_then(|p| p[field].as_str());
    let gateway = match (&w.gateway, &w.dir, from_profile("gateway")) {
        (Some(g), _, _) => g.clone(),
        (None, Some(d), _) => demo_gateway(d)?,
        (None, None, Some(g)) => g.to_string(),
        _ => bail!("name the gateway: --gateway URL (or --dir DEMO)"),
    };
    // The profile's CA goes with the profile's gateway only.
    let roots = match (&w.ca, &w.gateway, &w.dir, from_profile("ca")) {
        (None, None, None, Some(ca)) => Roots::File(ca.into()),
        _ => roots(w.ca.as_deref(), w.dir.as_deref(), &gateway),
    };
    let vkey = match (&w.vkey, &w.dir, profile.and_then(|p| p["vkey"].as_str())) {
        (Some(v), _, _) => v.clone(),
        (None, Some(d), _) => d.join("keys/log.vkey"),
        (None, None, Some(v)) => PathBuf::from(v),
        _ => bail!("name the log's key: --vkey FILE (or --dir DEMO)"),
    };
    let lang = Language::from_code(&w.lang).context("--lang is en or es")?;
    Ok(Resolved {
        gateway,
        roots,
        vkey,
        witnesses: w.witnesses.clone(),
        lang,
        json: w.json,
    })
}

fn log_key(path: &Path) -> anyhow::Result<ledger::NoteVerifier> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ledger::NoteVerifier::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The signed-in client for the key at `w.key`.
async fn signed_in(w: &Where) -> anyhow::Result<(ParticipantClient, Resolved)> {
    let profile: Value = serde_json::from_str(
        &std::fs::read_to_string(profile_path(&w.key)).with_context(|| {
            format!(
                "no profile beside {} (enrol or restore first)",
                w.key.display()
            )
        })?,
    )
    .context("the profile is not json")?;
    let r = resolve(w, Some(&profile))?;
    let key = gateway::config::read_key(&w.key)?;
    let (Some(id), Some(key_id)) = (profile["participant"].as_str(), profile["key_id"].as_str())
    else {
        bail!("the profile names no participant or key id");
    };
    let mut c = ParticipantClient::with_roots(&r.gateway, id, key_id, key, &r.roots)?;
    let a = c.sign_in().await?;
    if !a.ok() {
        bail!(
            "sign-in refused: {}",
            a.body["detail"].as_str().unwrap_or("no reason given")
        );
    }
    // Before anything else: a move of this person's key they may not have
    // asked for, while the current key can still cancel it.
    let me = c.get("/v1/me").await?;
    if let Some(p) = me.body.get("pending_rotation").filter(|p| !p.is_null()) {
        eprintln!(
            "WARNING: a move of your account to a new key ({}) was asked for at {}; it replaces your key at {} unless you cancel it now with `consentry participant cancel-rotation`. Until then nobody can grant in your name.",
            p["key_id"].as_str().unwrap_or("?"),
            p["assisted_by_name"].as_str().unwrap_or("?"),
            gateway::participant::portal::rfc3339(p["ready_at"].as_i64().unwrap_or(0)),
        );
    }
    Ok((c, r))
}

fn write_profile(key: &Path, id: &str, key_id: &str, r: &Resolved) -> anyhow::Result<()> {
    Profile {
        participant: id.to_string(),
        key_id: key_id.to_string(),
        gateway: r.gateway.clone(),
        vkey: r.vkey.clone(),
        // The trust given at enrolment, so that later commands need no --ca.
        ca: match &r.roots {
            Roots::File(ca) => Some(ca.clone()),
            Roots::System => None,
        },
    }
    .write_beside(key)
    .with_context(|| format!("writing {}", profile_path(key).display()))
}

fn print_code(id: &str, seed: &[u8; 32]) {
    println!("Your participant id: {id}");
    println!("Your recovery code (write it down, keep it safe, show it to no one):");
    println!();
    for line in recovery::encode(seed)
        .split('-')
        .collect::<Vec<_>>()
        .chunks(7)
    {
        println!("    {}", line.join("-"));
    }
    println!();
    println!("With the id and this code you can restore your key on a new device:");
    println!(
        "  consentry participant restore --participant {id} --code '…' --key FILE --gateway URL"
    );
}

/// A new key for `participant`, written owner-only to `at.key`, in the
/// entry `event` makes from its public key, co-signed by `agency` (in
/// person) and sent; the profile is written once it is accepted, the key
/// file removed if it is refused.
async fn new_key_entry(
    at: &Where,
    r: &Resolved,
    participant: &str,
    key_id: &str,
    agency: &str,
    agency_key: Option<PathBuf>,
    event: impl FnOnce(String) -> Event,
) -> anyhow::Result<(SigningKey, gateway::participant::client::Answer)> {
    let agency_key = match (agency_key, &at.dir) {
        (Some(k), _) => k,
        (None, Some(d)) => d.join(format!("keys/{agency}.key")),
        (None, None) => bail!("the agency co-signs: --agency-key FILE"),
    };
    let agency_key = gateway::config::read_key(&agency_key)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let c = ParticipantClient::with_roots(&r.gateway, participant, key_id, key.clone(), &r.roots)?;
    // The gateway reached, its certificate checked, before a key file
    // exists: else a refused certificate would leave a key behind that the
    // next try (with --ca) refuses to overwrite.
    c.get("/healthz").await?;
    gateway::config::write_secret(&at.key, &key)?;
    let e = event(B64.encode(key.verifying_key().as_bytes()));
    let a = c
        .submit(&e, &[(&format!("{agency}:1"), &agency_key)])
        .await?;
    if !a.ok() {
        let _ = std::fs::remove_file(&at.key);
        bail!("{}", problem_line(&a));
    }
    write_profile(&at.key, participant, key_id, r)?;
    Ok((key, a))
}

/// A page of `path`, its proofs checked, and the checkpoint's size; with
/// `--json` it is printed as it came and `None` is returned.
async fn checked_page(
    c: &ParticipantClient,
    r: &Resolved,
    path: &str,
) -> anyhow::Result<Option<(Value, u64)>> {
    let page = c.get(path).await?;
    if !page.ok() {
        bail!("{}", problem_line(&page));
    }
    let size = r.check(&page.body)?;
    if r.json {
        print_json(&page.body);
        return Ok(None);
    }
    Ok(Some((page.body, size)))
}

fn problem_line(a: &gateway::participant::client::Answer) -> String {
    format!(
        "refused ({}): {}",
        a.status,
        a.body["detail"].as_str().unwrap_or("no reason given")
    )
}

pub async fn run(cmd: ParticipantCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ParticipantCmd::Enrol {
            at,
            agency,
            agency_key,
        } => enrol(&at, &agency, agency_key).await,
        ParticipantCmd::Rotate {
            at,
            agency,
            agency_key,
            participant,
            key_id,
        } => rotate(&at, &agency, agency_key, &participant, &key_id).await,
        ParticipantCmd::CancelRotation { at } => cancel_rotation(&at).await,
        ParticipantCmd::Restore {
            at,
            participant,
            code,
        } => restore(&at, &participant, &code).await,
        ParticipantCmd::Consents { at } => consents(&at).await,
        ParticipantCmd::Disclosures { at, before, limit } => disclosures(&at, before, limit).await,
        ParticipantCmd::Grant {
            at,
            holders,
            recipients,
            categories,
            purposes,
            days,
            yes,
        } => {
            let consent = Consent {
                holders,
                recipients,
                categories: split_list(&categories),
                purposes: split_list(&purposes),
                days,
            };
            grant(&at, consent, yes).await
        }
        ParticipantCmd::Revoke { at, consent } => revoke(&at, &consent).await,
        ParticipantCmd::Export {
            at,
            consent,
            format,
        } => export(&at, &consent, &format).await,
        ParticipantCmd::Grievance {
            at,
            decision,
            reason,
        } => match decision {
            Some(decision) => file_grievance(&at, decision, reason.as_deref()).await,
            None => grievances(&at).await,
        },
    }
}

async fn enrol(at: &Where, agency: &str, agency_key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let now = now();
    let r = resolve(at, None)?;
    let id = new_participant_id();
    let key_id = format!("{id}:1");
    let (key, a) = new_key_entry(at, &r, &id, &key_id, agency, agency_key, |public_key| {
        Event::ParticipantEnrolled(policy::ParticipantEnrolled {
            v: V1,
            participant: id.clone(),
            key_id: key_id.clone(),
            public_key,
            at: now,
            enrolled_by: agency.to_string(),
        })
    })
    .await
    .context("enrolment")?;
    if r.json {
        print_json(
            &json!({"participant": id, "key_id": key_id, "index": a.body["index"], "recovery_code": recovery::encode(&key.to_bytes())}),
        );
    } else {
        println!("Enrolled at {agency} (log index {}).", a.body["index"]);
        print_code(&id, &key.to_bytes());
        println!(
            "Your key is in {} (readable by you only).",
            at.key.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(
    at: &Where,
    agency: &str,
    agency_key: Option<PathBuf>,
    participant: &str,
    key_id: &str,
) -> anyhow::Result<ExitCode> {
    let now = now();
    let r = resolve(at, None)?;
    let next = key_id
        .rsplit_once(':')
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .map_or(2, |n| n + 1);
    let new_id = format!("{participant}:{next}");
    let (key, a) = new_key_entry(
        at,
        &r,
        participant,
        &new_id,
        agency,
        agency_key,
        |public_key| {
            Event::ParticipantKeyRotated(policy::ParticipantKeyRotated {
                v: V1,
                participant: participant.to_string(),
                key_id: new_id.clone(),
                public_key,
                at: now,
                assisted_by: agency.to_string(),
            })
        },
    )
    .await
    .context("rotation")?;
    println!(
        "New key {new_id} in {} (log index {}). It becomes your key after the waiting period the rules set (72 hours by default), unless your old key cancels it; until then it can revoke but nobody can grant. You were sent a notice.",
        at.key.display(),
        a.body["index"]
    );
    print_code(participant, &key.to_bytes());
    Ok(ExitCode::SUCCESS)
}

async fn restore(at: &Where, participant: &str, code: &str) -> anyhow::Result<ExitCode> {
    let r = resolve(at, None)?;
    let seed = recovery::decode(code)?;
    let key = SigningKey::from_bytes(&seed);
    let mut c =
        ParticipantClient::with_roots(&r.gateway, participant, "unknown", key.clone(), &r.roots)?;
    let a = c.sign_in().await?;
    if !a.ok() {
        bail!("this code does not sign in as {participant}: it is not their current key");
    }
    let me = c.get("/v1/me").await?;
    let key_id = me.body["key_id"]
        .as_str()
        .context("no key id in /v1/me")?
        .to_string();
    gateway::config::write_secret(&at.key, &key)?;
    write_profile(&at.key, participant, &key_id, &r)?;
    println!(
        "Restored: {} signs as {participant} ({key_id}).",
        at.key.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn consents(at: &Where) -> anyhow::Result<ExitCode> {
    let (c, r) = signed_in(at).await?;
    let path = format!("/v1/me/consents?lang={}", r.lang.code());
    let Some((page, size)) = checked_page(&c, &r, &path).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("{}", say(Line::NoConsents, r.lang));
    }
    for i in items {
        println!(
            "{} [{}] {}",
            i["consent_id"].as_str().unwrap_or(""),
            i["status"].as_str().unwrap_or(""),
            i["summary"].as_str().unwrap_or("")
        );
    }
    println!("{}", say(Line::Checked(size), r.lang));
    Ok(ExitCode::SUCCESS)
}

async fn disclosures(at: &Where, before: Option<u64>, limit: usize) -> anyhow::Result<ExitCode> {
    let (c, r) = signed_in(at).await?;
    let mut path = format!("/v1/me/disclosures?lang={}&limit={limit}", r.lang.code());
    if let Some(b) = before {
        path.push_str(&format!("&before={b}"));
    }
    let Some((page, size)) = checked_page(&c, &r, &path).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("{}", say(Line::NoDisclosures, r.lang));
    }
    for i in items {
        let mark = if i["kind"] == "emergency" { "!! " } else { "" };
        println!(
            "#{} {}: {mark}{}",
            i["proof"]["index"],
            policy::format_date(i["at"].as_i64().unwrap_or(0), r.lang),
            i["text"].as_str().unwrap_or("")
        );
    }
    if let Some(n) = page["next_before"].as_u64() {
        println!("{}", say(Line::Older(n), r.lang));
    }
    println!("{}", say(Line::Checked(size), r.lang));
    Ok(ExitCode::SUCCESS)
}

/// What the reading commands say around their items, which come in the
/// person's language from the gateway: so do these lines.
enum Line {
    NoConsents,
    NoDisclosures,
    /// The index to page on from.
    Older(u64),
    /// The checkpoint's size.
    Checked(u64),
}

fn say(line: Line, lang: Language) -> String {
    match (line, lang) {
        (Line::NoConsents, Language::En) => "You have no consents.".into(),
        (Line::NoConsents, Language::Es) => "No tiene consentimientos.".into(),
        (Line::NoDisclosures, Language::En) => "Nobody has asked for your records.".into(),
        (Line::NoDisclosures, Language::Es) => "Nadie ha pedido sus expedientes.".into(),
        (Line::Older(n), Language::En) => format!("(older: --before {n})"),
        (Line::Older(n), Language::Es) => format!("(más antiguas: --before {n})"),
        (Line::Checked(n), Language::En) => {
            format!("(every item checked against the signed checkpoint of {n} entries)")
        }
        (Line::Checked(n), Language::Es) => {
            format!("(cada elemento comprobado con el punto de control firmado del registro, de {n} entradas)")
        }
    }
}

/// A consent as asked for on the command line: the parties as typed (ids,
/// comma-separated), the codes split.
struct Consent {
    holders: String,
    recipients: String,
    categories: Vec<String>,
    purposes: Vec<String>,
    days: i64,
}

/// The sentence is shown first; nothing is signed without `yes` (exit 2).
async fn grant(at: &Where, consent: Consent, yes: bool) -> anyhow::Result<ExitCode> {
    let now = now();
    let lang = Language::from_code(&at.lang).context("--lang is en or es")?;
    check_codes(&consent)?;
    let (c, _) = signed_in(at).await?;
    let names = agency_names(&c).await?;
    println!("{}", grant_sentence(&consent, &names, lang, now));
    if !yes {
        println!("Nothing signed. Add --yes to sign and send this consent.");
        return Ok(ExitCode::from(2));
    }
    let consent_id = format!("c-{}", &new_participant_id()[2..14]);
    let e = Event::ConsentGranted(policy::ConsentGranted {
        v: V1,
        consent_id: consent_id.clone(),
        participant: c.participant.clone(),
        holders: Parties {
            agencies: split_list(&consent.holders),
            classes: Vec::new(),
        },
        recipients: Parties {
            agencies: split_list(&consent.recipients),
            classes: Vec::new(),
        },
        categories: consent.categories,
        purposes: consent.purposes,
        effective_at: now,
        expires_at: Some(now + consent.days * 86_400),
        signed_at: now,
        language: lang,
    });
    let a = c.submit(&e, &[]).await?;
    if !a.ok() {
        bail!("{}", problem_line(&a));
    }
    println!("Granted {consent_id} (log index {}).", a.body["index"]);
    Ok(ExitCode::SUCCESS)
}

/// Refuses a code that is not the vocabulary's before anything is asked
/// of the gateway.
fn check_codes(consent: &Consent) -> anyhow::Result<()> {
    let vocab = Vocabulary::default_recovery();
    for c in &consent.categories {
        if !vocab.contains(Kind::Category, c) {
            bail!("{c:?} is not a data category");
        }
    }
    for p in &consent.purposes {
        if !vocab.contains(Kind::Purpose, p) {
            bail!("{p:?} is not a purpose");
        }
    }
    Ok(())
}

/// The registry's names of the agencies a consent may name, by id.
async fn agency_names(c: &ParticipantClient) -> anyhow::Result<HashMap<String, String>> {
    let a = c.get("/v1/me/agencies").await?;
    if !a.ok() {
        bail!("{}", problem_line(&a));
    }
    Ok(a.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["agency"].as_str()?.into(), i["name"].as_str()?.into())))
        .collect())
}

/// The consent in the person's language, its agencies by the registry's
/// names as every other page shows them (an id the registry does not
/// offer stays as typed: the gateway refuses it when it is sent).
fn grant_sentence(
    consent: &Consent,
    names: &HashMap<String, String>,
    lang: Language,
    now: i64,
) -> String {
    let vocab = Vocabulary::default_recovery();
    let label = |k: Kind, c: &String| vocab.label(k, c, lang).to_string();
    let what: Vec<String> = consent
        .categories
        .iter()
        .map(|c| label(Kind::Category, c))
        .collect();
    let why: Vec<String> = consent
        .purposes
        .iter()
        .map(|p| label(Kind::Purpose, p))
        .collect();
    let until = policy::format_date(now + consent.days * 86_400, lang);
    let named = |list: &str| -> Vec<String> {
        split_list(list)
            .into_iter()
            .map(|id| names.get(&id).cloned().unwrap_or(id))
            .collect()
    };
    let (holders, recipients) = (named(&consent.holders), named(&consent.recipients));
    let (what, why) = (what.join(", "), why.join(", "));
    let many = holders.len() > 1;
    let (holders, recipients) = (join_names(&holders, lang), join_names(&recipients, lang));
    match lang {
        Language::En => format!("{holders} may give {recipients} {what}, {why}, until {until}."),
        Language::Es => {
            let verb = if many { "pueden" } else { "puede" };
            format!("{holders} {verb} dar a {recipients} {what}, {why}, hasta el {until}.")
        }
    }
}

/// "A, B and C" ("A, B y C").
fn join_names(names: &[String], lang: Language) -> String {
    let and = match lang {
        Language::En => " and ",
        Language::Es => " y ",
    };
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{and}{last}", init.join(", ")),
    }
}

async fn cancel_rotation(at: &Where) -> anyhow::Result<ExitCode> {
    let now = now();
    let (c, _) = signed_in(at).await?;
    let me = c.get("/v1/me").await?;
    let Some(key_id) = me.body["pending_rotation"]["key_id"].as_str() else {
        println!("No move to a new key is pending; nothing changed.");
        return Ok(ExitCode::SUCCESS);
    };
    let e = Event::ParticipantRotationCancelled(policy::ParticipantRotationCancelled {
        v: V1,
        participant: c.participant.clone(),
        key_id: key_id.to_string(),
        at: now,
    });
    let a = c.submit(&e, &[]).await?;
    if a.status != 201 {
        bail!("{}", problem_line(&a));
    }
    println!(
        "Cancelled the move to {key_id} (log index {}): your key stays yours, and the board is told.",
        a.body["index"]
    );
    Ok(ExitCode::SUCCESS)
}

async fn revoke(at: &Where, consent: &str) -> anyhow::Result<ExitCode> {
    let now = now();
    let (c, _) = signed_in(at).await?;
    let e = Event::ConsentRevoked(policy::ConsentRevoked {
        v: V1,
        consent_id: consent.to_string(),
        participant: c.participant.clone(),
        at: now,
        assisted_by: None,
    });
    let a = c.submit(&e, &[]).await?;
    match (a.status, a.body["noop"].as_bool()) {
        (200, Some(true)) => println!("{consent} was already revoked; nothing changed."),
        (201, _) => println!(
            "Revoked {consent} (log index {}): the next request is denied.",
            a.body["index"]
        ),
        _ => bail!("{}", problem_line(&a)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(at: &Where, consent: &str, format: &str) -> anyhow::Result<ExitCode> {
    let (c, r) = signed_in(at).await?;
    let what = match format {
        "fhir" => "fhir",
        "receipt" => "receipt",
        _ => bail!("--format is fhir or receipt"),
    };
    let a = c
        .get(&format!(
            "/v1/me/consents/{consent}/{what}?lang={}",
            r.lang.code()
        ))
        .await?;
    if !a.ok() {
        bail!("{}", problem_line(&a));
    }
    println!("{:#}", a.body);
    Ok(ExitCode::SUCCESS)
}

/// A grievance about `decision`; a missing reason is `other`.
async fn file_grievance(
    at: &Where,
    decision: String,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = now();
    let (c, r) = signed_in(at).await?;
    let reason = reason.unwrap_or("other");
    let reason = policy::GrievanceReason::from_code(reason)
        .with_context(|| format!("{reason:?} is not a grievance reason"))?;
    let id = format!("g-{}", &new_participant_id()[2..14]);
    let e = Event::GrievanceFiled(policy::GrievanceFiled {
        v: V1,
        grievance_id: id.clone(),
        participant: c.participant.clone(),
        decision_id: decision,
        reason,
        at: now,
    });
    let a = c.submit(&e, &[]).await?;
    if !a.ok() {
        bail!("{}", problem_line(&a));
    }
    println!("Filed {id}: {}", reason.sentence(r.lang));
    Ok(ExitCode::SUCCESS)
}

async fn grievances(at: &Where) -> anyhow::Result<ExitCode> {
    let (c, r) = signed_in(at).await?;
    let g = c
        .get(&format!("/v1/me/grievances?lang={}", r.lang.code()))
        .await?;
    if r.json {
        print_json(&g.body);
        return Ok(ExitCode::SUCCESS);
    }
    for i in g.body["items"].as_array().cloned().unwrap_or_default() {
        println!(
            "{} about {}: {} [{}] {}",
            i["grievance_id"].as_str().unwrap_or(""),
            i["decision_id"].as_str().unwrap_or(""),
            i["reason_text"].as_str().unwrap_or(""),
            i["status"].as_str().unwrap_or(""),
            i["outcome_text"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
