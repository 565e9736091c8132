//! `consentry demo`: a complete deployment on loopback, in one process: the
//! gateway on its embedded store, the two sample upstream record systems
//! (real HTTP servers that verify the gateway's signature), four sample
//! agencies with key files in the demo folder, two participants and a
//! consent, all as real signed ledger entries; and printed next steps that
//! work when pasted.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use ledger::NoteSigner;
use policy::{
    AgencyEnrolled, ConsentGranted, Event, Language, ParticipantEnrolled, Parties, Role, Trust, V1,
};

use crate::config::{load_or_create_key, trust_roots, write_trust, ConfigError, TRUST_FILE};
use crate::deployment::{sign_event, Deployment, SubmitError};

pub const ORIGIN: &str = "demo.consentry.local/log";

pub struct DemoKeys {
    pub governance: SigningKey,
    pub gateway: NoteSigner,
}

/// Why the demo could not be made or served.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{what}: {err}")]
    Io {
        what: String,
        #[source]
        err: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] ConfigError),
    #[error("the demo's log key: {0}")]
    Note(#[from] ledger::NoteError),
    #[error("opening the demo deployment: {0}")]
    Open(#[source] SubmitError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    State(#[from] crate::server::StateError),
    #[error("the demo's certificates: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("--listen {0} is not a loopback address: add --tls (and --tls-host NAME for a phone), so that nothing crosses the network in clear")]
    PlainBeyondLoopback(std::net::SocketAddr),
}

/// `demo --tls`: HTTPS on the demo's port, with a certificate for
/// `localhost`, 127.0.0.1 and `extra_hosts` from a demo CA whose
/// certificate is `keys/ca.pem` (its key is dropped once it has issued).
#[derive(Clone, Debug, Default)]
pub struct DemoTls {
    pub extra_hosts: Vec<crate::tls::pki::Host>,
}

/// The demo CA's certificate, for `--ca` and for a phone to trust.
pub const CA_FILE: &str = "keys/ca.pem";
const TLS_CERT_FILE: &str = "keys/tls.crt";
const TLS_KEY_FILE: &str = "keys/tls.key";
/// The names the certificate in `keys/tls.crt` is for: a re-run with the
/// same ones keeps it (a phone that trusts the CA goes on trusting it).
const TLS_HOSTS_FILE: &str = "keys/tls-hosts.txt";

/// The two sample record systems on `ports` (0: the system's choice), on
/// loopback whatever the gateway listens on: only the gateway reaches
/// them. Their URLs, as the registry has them.
async fn start_upstreams(
    ports: [u16; 2],
    gateway_public: ed25519_dalek::VerifyingKey,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Result<Vec<String>, DemoError> {
    use crate::upstream::{self, Holder};
    let mut urls = Vec::new();
    for (holder, port) in [Holder::TreatmentProgram, Holder::HousingAuthority]
        .into_iter()
        .zip(ports)
    {
        let addr = std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port);
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("binding the sample record system on {addr}")))?;
        let bound = l.local_addr().map_err(io("reading a bound address"))?;
        let origin = crate::origin::Origin::parse(&format!("http://{bound}")).map_err(|e| {
            DemoError::Io {
                what: "the sample record system's address".into(),
                err: std::io::Error::other(e),
            }
        })?;
        let router = upstream::router(holder, origin, gateway_public, clock.clone());
        tokio::spawn(upstream::serve(l, router, None));
        urls.push(format!("http://{bound}/fhir"));
    }
    Ok(urls)
}

/// How the demo serves: its certificate (with `--tls`) and its public
/// URL. The first extra name, when one is given, is the one a phone
/// uses: agencies and the portal must sign against the same address.
fn serving(
    dir: &Path,
    tls: Option<&DemoTls>,
    bound: std::net::SocketAddr,
    now: i64,
) -> Result<(Option<std::sync::Arc<crate::tls::ServerTls>>, String), DemoError> {
    use crate::tls::pki::Host;
    let Some(t) = tls else {
        return Ok((None, format!("http://{bound}")));
    };
    let mut hosts = vec![
        Host::Dns("localhost".into()),
        Host::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
    ];
    hosts.extend(t.extra_hosts.iter().cloned());
    let files = demo_certificate(dir, &hosts, now)?;
    let name = match t.extra_hosts.first() {
        Some(Host::Ip(std::net::IpAddr::V6(v6))) => format!("[{v6}]"),
        Some(h) => h.to_string(),
        None => "localhost".into(),
    };
    Ok((
        Some(crate::tls::ServerTls::load(files)?),
        format!("https://{name}:{}", bound.port()),
    ))
}

/// The demo's certificate for `hosts`: kept from the last run when it was
/// for the same names, else a new CA and certificate.
fn demo_certificate(
    dir: &Path,
    hosts: &[crate::tls::pki::Host],
    now: i64,
) -> Result<crate::tls::TlsFiles, DemoError> {
    use crate::tls::pki::{DeploymentCa, Usage, Validity, LEAF_DAYS};
    let files = crate::tls::TlsFiles {
        cert: dir.join(TLS_CERT_FILE),
        key: dir.join(TLS_KEY_FILE),
    };
    let names = hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let same = std::fs::read_to_string(dir.join(TLS_HOSTS_FILE))
        .ok()
        .as_deref()
        == Some(names.as_str())
        && files.cert.exists()
        && files.key.exists()
        && dir.join(CA_FILE).exists();
    if same {
        return Ok(files);
    }
    for f in [CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TLS_HOSTS_FILE] {
        match std::fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {f}"))(e))
            }
            _ => {}
        }
    }
    let ca = DeploymentCa::new("Consentry demo", hosts, now)?;
    ca.write_cert(&dir.join(CA_FILE))?;
    ca.issue(
        Usage::Server,
        hosts,
        Validity {
            now,
            days: LEAF_DAYS,
        },
    )?
    .write(&files.cert, &files.key)?;
    std::fs::write(dir.join(TLS_HOSTS_FILE), &names)
        .map_err(io("writing the certificate's names"))?;
    Ok(files)
}

/// An I/O error with what was being done.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |err| DemoError::Io { what, err }
}

pub fn keys(dir: &Path) -> Result<DemoKeys, DemoError> {
    std::fs::create_dir_all(dir.join("keys")).map_err(io("making the demo's keys folder"))?;
    let governance = load_or_create_key(&dir.join("keys/governance.key"))?;
    let gateway = NoteSigner::new(ORIGIN, load_or_create_key(&dir.join("keys/gateway.key"))?)?;
    std::fs::write(
        dir.join("keys/log.vkey"),
        format!("{}\n", gateway.verifier()),
    )
    .map_err(io("writing keys/log.vkey"))?;
    let k = DemoKeys {
        governance,
        gateway,
    };
    write_trust(&dir.join(TRUST_FILE), &trust(&k))?;
    Ok(k)
}

pub fn trust(k: &DemoKeys) -> Trust {
    trust_roots(&k.governance, k.gateway.signing_key())
}

/// (id, name, classes, upstream path)
const AGENCIES: &[(&str, &str, &[&str])] = &[
    (
        "hope-clinic",
        "Hope Recovery Clinic",
        &["clinic", "treatment"],
    ),
    ("riverside-housing", "Riverside Housing", &["housing"]),
    ("northside-jobs", "Northside Job Centre", &["employment"]),
    ("county-court", "County Recovery Court", &["court"]),
];

/// Where the sample agencies' record systems answer.
pub struct Upstreams {
    pub treatment_program: String,
    pub housing_authority: String,
}

impl Upstreams {
    /// No record system at all (tests of the log alone).
    pub fn nowhere() -> Self {
        Self {
            treatment_program: "http://127.0.0.1:9/fhir".into(),
            housing_authority: "http://127.0.0.1:9/fhir".into(),
        }
    }

    fn of(&self, agency: &str) -> String {
        match agency {
            "hope-clinic" => self.treatment_program.clone(),
            "riverside-housing" => self.housing_authority.clone(),
            // The job centre and the court run no sample record system.
            _ => "http://127.0.0.1:9/fhir".into(),
        }
    }
}

/// The sample consent: p-0001 lets Riverside Housing see treatment
/// attendance and peer support from Hope Recovery Clinic, for housing.
pub const DEMO_CONSENT: &str = "c-demo-0001";

/// The governance entry that enrols organisation `id` with one role.
fn enrolment(
    id: &str,
    name: &str,
    key: &ed25519_dalek::SigningKey,
    upstream: &str,
    classes: &[&str],
    role: Role,
    now: i64,
) -> Event {
    Event::AgencyEnrolled(AgencyEnrolled {
        v: V1,
        agency: id.to_string(),
        name: name.to_string(),
        key_id: format!("{id}:1"),
        public_key: B64.encode(key.verifying_key().as_bytes()),
        upstream: upstream.to_string(),
        upstream_client_certificate: false,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        roles: vec![role],
        at: now,
    })
}

/// Seeds an empty deployment with the sample registry, participants and
/// consent. Does nothing if the log already has entries.
pub async fn seed(
    dep: &Deployment,
    dir: &Path,
    k: &DemoKeys,
    now: i64,
    upstreams: &Upstreams,
) -> Result<Vec<PathBuf>, SeedError> {
    if dep.log.size() > 0 {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for (id, name, classes) in AGENCIES {
        let path = dir.join(format!("keys/{id}.key"));
        let key = load_or_create_key(&path)?;
        written.push(path);
        let e = enrolment(
            id,
            name,
            &key,
            &upstreams.of(id),
            classes,
            Role::Agency,
            now,
        );
        dep.submit(sign_event(&e, "governance", &k.governance)?)
            .await?;
    }
    for p in PARTICIPANTS {
        let path = dir.join(format!("keys/{p}.key"));
        let key = load_or_create_key(&path)?;
        written.push(path);
        let key_id = format!("{p}:1");
        let e = Event::ParticipantEnrolled(ParticipantEnrolled {
            v: V1,
            participant: p.into(),
            key_id: key_id.clone(),
            public_key: B64.encode(key.verifying_key().as_bytes()),
            at: now,
            enrolled_by: "hope-clinic".into(),
        });
        // Enrolled at Hope Recovery Clinic's intake: the clinic co-signs.
        let clinic = load_or_create_key(&dir.join("keys/hope-clinic.key"))?;
        let mut env = sign_event(&e, &key_id, &key)?;
        env.add_signature("hope-clinic:1", &clinic);
        dep.submit(env).await?;
        if p == "p-0001" {
            let c = Event::ConsentGranted(ConsentGranted {
                v: V1,
                consent_id: DEMO_CONSENT.into(),
                participant: p.into(),
                holders: Parties::agencies(&["hope-clinic"]),
                recipients: Parties::agencies(&["riverside-housing"]),
                categories: vec!["health.sud.treatment".into(), "social.peer-support".into()],
                purposes: vec!["housing-placement".into()],
                effective_at: now,
                expires_at: Some(now + 180 * 86_400),
                signed_at: now,
                language: Language::En,
            });
            dep.submit(sign_event(&c, &key_id, &key)?).await?;
        }
    }
    dep.log.publish_checkpoint().map_err(SubmitError::from)?;
    Ok(written)
}

/// The demo's participants, their keys in `keys/p-000N.key`.
pub const PARTICIPANTS: [&str; 2] = ["p-0001", "p-0002"];

/// A profile beside each demo participant's key (as `participant enrol`
/// writes for a person), naming the gateway as served now and, under
/// `--tls`, the demo CA: so that `consentry participant … --key
/// DIR/keys/p-0001.key` works. Rewritten at every start, since the
/// address may change; the key files hold each participant's first key.
fn write_profiles(dir: &Path, url: &str, tls: bool) -> Result<(), DemoError> {
    for p in PARTICIPANTS {
        let key = dir.join(format!("keys/{p}.key"));
        if !key.exists() {
            continue;
        }
        crate::participant::client::Profile {
            participant: p.into(),
            key_id: format!("{p}:1"),
            gateway: url.into(),
            vkey: dir.join("keys/log.vkey"),
            ca: tls.then(|| dir.join(CA_FILE)),
        }
        .write_beside(&key)
        .map_err(io(format!("writing the profile of {p}")))?;
    }
    Ok(())
}

/// The demo's witnesses (`consentry demo --witnesses`): organisations
/// enrolled with the `witness` role, their keys in `keys/witness-N.key`.
pub const WITNESSES: &[(&str, &str)] = &[
    ("witness-1", "Community Advisory Board"),
    ("witness-2", "Legal Aid Clinic"),
    ("witness-3", "Peer Recovery Network"),
];

/// Where the demo writes its witness policy: the three witnesses, 2 of 3.
pub const WITNESS_POLICY_FILE: &str = "keys/witnesses.txt";

/// Enrols the demo's witnesses (once) and writes the witness policy.
pub async fn enrol_witnesses(
    dep: &Deployment,
    dir: &Path,
    k: &DemoKeys,
    now: i64,
) -> Result<(), SeedError> {
    let mut policy = String::from("# The demo's witnesses; a checkpoint counts with 2 of 3.\n");
    for (id, name) in WITNESSES {
        let key = load_or_create_key(&dir.join(format!("keys/{id}.key")))?;
        let enrolled = {
            let state = dep.state()?;
            state.agency(id).is_some()
        };
        if !enrolled {
            let e = enrolment(
                id,
                name,
                &key,
                "http://127.0.0.1:9/none",
                &[],
                Role::Witness,
                now,
            );
            dep.submit(sign_event(&e, "governance", &k.governance)?)
                .await?;
        }
        let verifier =
            ledger::CosignatureVerifier::from_key(id, key.verifying_key()).map_err(|e| {
                SeedError::Key(ConfigError::Parse {
                    path: dir.join(WITNESS_POLICY_FILE),
                    err: e.to_string(),
                })
            })?;
        policy.push_str(&format!("witness {verifier}\n"));
    }
    policy.push_str("quorum 2\n");
    std::fs::write(dir.join(WITNESS_POLICY_FILE), policy).map_err(|err| {
        SeedError::Key(ConfigError::Read {
            path: dir.join(WITNESS_POLICY_FILE),
            err,
        })
    })?;
    dep.log.publish_checkpoint().map_err(SubmitError::from)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("demo key: {0}")]
    Key(#[from] ConfigError),
    #[error(transparent)]
    Stopped(#[from] crate::deployment::Stopped),
}

/// The gateway's address as the demo last served it, for `consentry
/// request --dir`.
pub const GATEWAY_URL_FILE: &str = "gateway.url";

/// Runs the demo in `dir` until Ctrl-C. The upstreams listen next to the
/// gateway (port + 1 and + 2), so that a re-run finds them where the
/// registry says, and `/metrics` on loopback at port + 3; with port 0
/// (tests) every port is the system's choice.
pub async fn run(
    dir: &Path,
    listen: std::net::SocketAddr,
    fresh: bool,
    witnesses: bool,
    tls: Option<DemoTls>,
) -> Result<(), DemoError> {
    use std::sync::Arc;

    if fresh && dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(format!("removing {}", dir.display())))?;
    }
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(DemoError::PlainBeyondLoopback(listen));
    }
    let keys = keys(dir)?;
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::SystemClock);
    let next = |d: u16| {
        let mut a = listen;
        if listen.port() != 0 {
            a.set_port(listen.port() + d);
        }
        a
    };
    let upstream_urls = start_upstreams(
        [next(1).port(), next(2).port()],
        keys.gateway.signing_key().verifying_key(),
        clock.clone(),
    )
    .await?;
    let dep = Arc::new(
        Deployment::open(&dir.join("data"), keys.gateway.clone(), trust(&keys))
            .map_err(DemoError::Open)?,
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(io(format!("binding {listen}")))?;
    let bound = listener
        .local_addr()
        .map_err(io("reading a bound address"))?;
    // Metrics next to the upstreams, on loopback whatever `listen` is.
    let metrics_at =
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), next(3).port());
    let metrics_listener = tokio::net::TcpListener::bind(metrics_at)
        .await
        .map_err(io(format!("binding {metrics_at} for /metrics")))?;
    let metrics_bound = metrics_listener
        .local_addr()
        .map_err(io("reading a bound address"))?;
    let metrics_url = format!("http://{metrics_bound}/metrics");
    let written = seed(
        &dep,
        dir,
        &keys,
        clock.now(),
        &Upstreams {
            treatment_program: upstream_urls[0].clone(),
            housing_authority: upstream_urls[1].clone(),
        },
    )
    .await?;
    if witnesses {
        enrol_witnesses(&dep, dir, &keys, clock.now()).await?;
    }
    let (server_tls, url) = serving(dir, tls.as_ref(), bound, clock.now())?;
    std::fs::write(dir.join(GATEWAY_URL_FILE), format!("{url}\n"))
        .map_err(io(format!("writing {GATEWAY_URL_FILE}")))?;
    write_profiles(dir, &url, server_tls.is_some())?;
    let witness_policy = match witnesses {
        true => {
            let text = std::fs::read_to_string(dir.join(WITNESS_POLICY_FILE))
                .map_err(io(format!("reading {WITNESS_POLICY_FILE}")))?;
            Some(ledger::WitnessPolicy::parse(&text)?)
        }
        false => None,
    };
    let state = crate::server::AppState::new(
        dep.clone(),
        clock,
        keys.gateway.signing_key().clone(),
        crate::server::Settings {
            witness_policy,
            ..crate::server::Settings::new(&url)
        },
    )?;
    print!(
        "{}",
        walkthrough(
            dir,
            &url,
            &metrics_url,
            dep.log.size(),
            &upstream_urls,
            written.len()
        )
    );
    crate::server::serve_until_interrupted(
        listener,
        metrics_listener,
        state,
        &crate::server::HttpLimits::default(),
        server_tls,
    )
    .await
    .map_err(io("serving the demo"))
}

/// What the demo prints: where things are, and commands that work pasted.
pub fn walkthrough(
    dir: &Path,
    url: &str,
    metrics_url: &str,
    size: u64,
    upstreams: &[String],
    keys_written: usize,
) -> String {
    let d = dir.display();
    let c = "cargo run --release --bin consentry --";
    let ask = |participant: &str| {
        format!(
            "{c} request --dir {d} --as riverside-housing --holder hope-clinic --participant {participant} --purpose housing-placement --categories health.sud.treatment,social.peer-support"
        )
    };
    let mut out = format!(
        "consentry demo: gateway {url}, log {ORIGIN} with {size} entries, data in {d}/data\n\
         sample record systems: Hope Recovery Clinic at {}, Riverside Housing at {}\n\
         metrics (for the operator, on loopback only): {metrics_url}\n",
        upstreams.first().map(String::as_str).unwrap_or("?"),
        upstreams.get(1).map(String::as_str).unwrap_or("?"),
    );
    if keys_written > 0 {
        out.push_str(&format!(
            "wrote {keys_written} sample keys under {d}/keys\n"
        ));
    }
    if url.starts_with("https://") {
        out.push_str(&format!(
            "HTTPS with a demo certificate from the demo CA {d}/{CA_FILE}: the commands below trust it through --dir.\n\
             To try the portal from a phone, install {d}/{CA_FILE} on the phone as a trusted certificate: for a pilot only (a real deployment uses a real certificate; see README).\n"
        ));
    }
    out.push_str(&format!(
        "\nIn another terminal:\n\
         \n1. Riverside Housing asks Hope Recovery Clinic for p-0001's treatment attendance and peer support (p-0001 consented): allowed\n   {}\n\
         \n2. The same for p-0002, who gave no consent: denied\n   {}\n\
         \n3. p-0001 revokes the consent, with their own key\n   {c} revoke --dir {d} --participant p-0001 --consent {DEMO_CONSENT}\n\
         \n4. Step 1 again: now denied\n   {}\n\
         \n5. The log in plain words\n   {c} log tail --dir {d}\n\
         \nThe participant's portal, in English and Spanish: {url}/portal/\n   \
         Enrol there (the key is made in your browser), then confirm the intake code as the clinic's staff:\n   \
         {c} intake --dir {d} --as hope-clinic --code CODE\n\
         \nStop with Ctrl-C; then `{c} fsck --dir {d}` re-verifies the whole log.\n",
        ask("p-0001"),
        ask("p-0002"),
        ask("p-0001"),
    ));
    out
}
