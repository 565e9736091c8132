//! End-to-end test helpers: a deterministic deployment (keys, registry,
//! participants) and signed consent events, so that a child process and its
//! parent build the same entries.

// Test support: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fixture {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ed25519_dalek::SigningKey;
    use gateway::deployment::{sign_event, Deployment, SubmitError};
    use ledger::{Envelope, NoteSigner};
    use policy::{
        AgencyEnrolled, ConsentGranted, ConsentRevoked, ConsentState, Event, Language,
        ParticipantEnrolled, Parties, Role, Trust, V1,
    };

    /// The fixed "now" of every fixture entry: tests inject time.
    pub const NOW: i64 = 1_800_000_000;
    pub const ORIGIN: &str = "fixture.consentry.test/log";
    pub const AGENCIES: [&str; 2] = ["hope-clinic", "riverside-housing"];

    pub fn governance() -> SigningKey {
        SigningKey::from_bytes(&[71; 32])
    }

    pub fn gateway() -> NoteSigner {
        NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[72; 32])).expect("valid origin")
    }

    pub fn trust() -> Trust {
        Trust {
            governance_key_id: "governance".into(),
            governance_public_key: B64.encode(governance().verifying_key().as_bytes()),
            gateway_key_id: "gateway".into(),
            gateway_public_key: B64.encode(gateway().signing_key().verifying_key().as_bytes()),
            board: Vec::new(),
            quorum: 1,
        }
    }

    fn seeded_key(tag: u8, i: u32) -> SigningKey {
        let mut seed = [tag; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        SigningKey::from_bytes(&seed)
    }

    pub fn agency_key(i: usize) -> SigningKey {
        seeded_key(73, i as u32)
    }

    pub fn participant_id(i: u32) -> String {
        format!("p-{i:04}")
    }

    pub fn participant_key(i: u32) -> SigningKey {
        seeded_key(74, i)
    }

    pub fn participant_key_id(i: u32) -> String {
        format!("{}:1", participant_id(i))
    }

    /// The registry and `participants` enrolled participants, as signed
    /// entries.
    pub fn registry(participants: u32) -> Result<Vec<Envelope>, SubmitError> {
        let mut out = Vec::new();
        for (i, id) in AGENCIES.iter().enumerate() {
            let e = Event::AgencyEnrolled(AgencyEnrolled {
                v: V1,
                agency: id.to_string(),
                name: id.replace('-', " "),
                key_id: format!("{id}:1"),
                public_key: B64.encode(agency_key(i).verifying_key().as_bytes()),
                upstream: format!("http://127.0.0.1:9/{id}"),
                upstream_client_certificate: false,
                classes: vec!["clinic".into()],
                roles: vec![Role::Agency],
                at: NOW,
            });
            out.push(sign_event(&e, "governance", &governance())?);
        }
        for p in 0..participants {
            out.push(enrolment(p, AGENCIES[0], &agency_key(0))?);
        }
        Ok(out)
    }

    /// Participant `p`'s enrolment at `agency`'s intake: signed by the
    /// participant's key, co-signed by the agency's (`{agency}:1`).
    pub fn enrolment(
        p: u32,
        agency: &str,
        agency_key: &SigningKey,
    ) -> Result<Envelope, SubmitError> {
        let e = Event::ParticipantEnrolled(ParticipantEnrolled {
            v: V1,
            participant: participant_id(p),
            key_id: participant_key_id(p),
            public_key: B64.encode(participant_key(p).verifying_key().as_bytes()),
            at: NOW,
            enrolled_by: agency.to_string(),
        });
        let mut env = sign_event(&e, &participant_key_id(p), &participant_key(p))?;
        env.add_signature(&format!("{agency}:1"), agency_key);
        Ok(env)
    }

    /// Exports the stopped fixture deployment whose data is in `data_dir`
    /// to the audit bundle folder `out`, and opens it with the fixture's
    /// trust roots and log key.
    pub fn export_bundle(
        data_dir: &std::path::Path,
        out: &std::path::Path,
    ) -> audit::bundle::Bundle {
        audit::export_dir(data_dir, &trust(), &gateway().verifier(), out, |_| {}).unwrap();
        audit::bundle::Bundle::open(out, None, None).unwrap()
    }

    /// Submits the registry to an empty deployment.
    pub async fn seed(dep: &Deployment, participants: u32) -> Result<(), SubmitError> {
        for env in registry(participants)? {
            dep.submit(env).await?;
        }
        Ok(())
    }

    /// Participant `p` lets the housing authority see two categories.
    pub fn grant(p: u32, consent_id: &str) -> Result<Envelope, SubmitError> {
        let e = Event::ConsentGranted(ConsentGranted {
            v: V1,
            consent_id: consent_id.into(),
            participant: participant_id(p),
            holders: Parties::agencies(&["hope-clinic"]),
            recipients: Parties::agencies(&["riverside-housing"]),
            categories: vec!["social.housing".into(), "health.sud.treatment".into()],
            purposes: vec!["housing-placement".into()],
            effective_at: NOW,
            expires_at: Some(NOW + 90 * 86_400),
            signed_at: NOW,
            language: Language::En,
        });
        sign_event(&e, &participant_key_id(p), &participant_key(p))
    }

    /// Participant `p` revokes one of their consents, on their own.
    pub fn revoke(p: u32, consent_id: &str) -> Result<Envelope, SubmitError> {
        let e = Event::ConsentRevoked(ConsentRevoked {
            v: V1,
            consent_id: consent_id.into(),
            participant: participant_id(p),
            at: NOW + 60,
            assisted_by: None,
        });
        sign_event(&e, &participant_key_id(p), &participant_key(p))
    }

    /// Every field the state exposes, in a canonical order, as text: two
    /// states with equal dumps agree on every registry key, agency,
    /// participant and consent (with its status), and on the counters.
    pub fn dump(state: &ConsentState, participants: u32) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "last_index {:?} rules_version {} consents {} participants {}",
            state.last_index(),
            state.rules_version(),
            state.consent_count(),
            state.participant_count()
        );
        let mut agencies = state.agencies();
        agencies.sort_by(|a, b| a.id().cmp(b.id()));
        for a in agencies {
            let _ = writeln!(out, "{a:?}");
            let _ = writeln!(out, "{:?}", state.key(&a.current_key_id));
        }
        for p in 0..participants {
            let id = participant_id(p);
            let _ = writeln!(out, "{id} key {:?}", state.participant_key_id(&id));
            let _ = writeln!(out, "{:?}", state.key(&participant_key_id(p)));
            let mut consents = state.consents_of(&id, NOW + 3600);
            consents.sort_by(|a, b| a.0.granted.consent_id.cmp(&b.0.granted.consent_id));
            for c in consents {
                let _ = writeln!(out, "{c:?}");
            }
        }
        out
    }
}

/// A whole deployment on loopback: the gateway (its real `app`) and the two
/// sample upstream record systems, each on its own port, with an injected
/// clock; and an agency-side client that signs with RFC 9421.
pub mod net {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ed25519_dalek::SigningKey;
    use gateway::clock::ManualClock;
    use gateway::deployment::{sign_event, Deployment};
    use gateway::httpsig::{self, Component, OwnedMessage, SignatureParams};
    use gateway::server::{app, metrics_app, AppState, HttpLimits, Settings};
    use gateway::upstream::{self, Holder};
    use ledger::Envelope;
    use policy::{AgencyEnrolled, ConsentGranted, Event, Language, Parties, Role, V1};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::fixture::{self, NOW};

    /// (id, classes, which sample upstream it runs, if any)
    pub const AGENCIES: &[(&str, &[&str], Option<Holder>)] = &[
        (
            "hope-clinic",
            &["clinic", "treatment"],
            Some(Holder::TreatmentProgram),
        ),
        (
            "riverside-housing",
            &["housing"],
            Some(Holder::HousingAuthority),
        ),
        ("northside-jobs", &["employment"], None),
        ("st-marys-er", &["emergency"], None),
        ("old-shelter", &["housing"], None),
    ];
    pub const PARTICIPANTS: u32 = 4;

    pub fn agency_key(id: &str) -> SigningKey {
        let i = AGENCIES
            .iter()
            .position(|a| a.0 == id)
            .expect("a fixture agency");
        SigningKey::from_bytes(&[80 + i as u8; 32])
    }

    pub fn agency_key_id(id: &str) -> String {
        format!("{id}:1")
    }

    /// Requests of every kind through the real gateway, for the auditor's
    /// tests: allowed (with releases), denied, an emergency, a consent
    /// granted by its participant, used, revoked, then denied; and an
    /// unauthenticated request, refused.
    pub async fn every_kind_of_traffic(net: &Net) {
        let request = |agency: &str, participant: u32, purpose: &str, categories: &str| {
            Ask::new(
                agency,
                "hope-clinic",
                &fixture::participant_id(participant),
                purpose,
                categories,
            )
        };
        let housing = request(
            "riverside-housing",
            0,
            "housing-placement",
            "health.sud.treatment",
        );
        for _ in 0..3 {
            assert_eq!(ask(net, &housing).await.status, 200);
        }
        let jobs_p1 = request(
            "northside-jobs",
            1,
            "employment-support",
            "social.employment",
        );
        assert_eq!(ask(net, &jobs_p1).await.status, 403);
        let er = request("st-marys-er", 2, "medical-emergency", "health.sud");
        assert_eq!(ask(net, &er).await.status, 200);
        let origin = format!("http://{}", net.addr);
        let me = gateway::participant::client::ParticipantClient::new(
            &origin,
            &fixture::participant_id(3),
            &fixture::participant_key_id(3),
            fixture::participant_key(3),
        )
        .unwrap();
        let now = net.clock_now();
        let grant = Event::ConsentGranted(policy::ConsentGranted {
            v: V1,
            consent_id: "c-jobs".into(),
            participant: fixture::participant_id(3),
            holders: policy::Parties {
                agencies: vec!["hope-clinic".into()],
                classes: vec![],
            },
            recipients: policy::Parties {
                agencies: vec!["northside-jobs".into()],
                classes: vec![],
            },
            categories: vec!["social.peer-support".into()],
            purposes: vec!["employment-support".into()],
            effective_at: now,
            expires_at: Some(now + 30 * 86_400),
            signed_at: now,
            language: policy::Language::Es,
        });
        assert_eq!(me.submit(&grant, &[]).await.unwrap().status, 201);
        let jobs = request(
            "northside-jobs",
            3,
            "employment-support",
            "social.peer-support",
        );
        assert_eq!(ask(net, &jobs).await.status, 200);
        net.clock.advance(90);
        let revoke = Event::ConsentRevoked(policy::ConsentRevoked {
            v: V1,
            consent_id: "c-jobs".into(),
            participant: fixture::participant_id(3),
            at: net.clock_now(),
            assisted_by: None,
        });
        assert_eq!(me.submit(&revoke, &[]).await.unwrap().status, 201);
        net.clock.advance(30);
        assert_eq!(ask(net, &jobs).await.status, 403);
        // An unauthenticated request, logged as refused.
        let mut bad = sign(
            net.addr,
            &housing,
            &agency_key("old-shelter"),
            net.clock_now(),
        );
        bad.headers.retain(|(n, _)| n != "signature");
        bad.headers.push(("signature".into(), "sig1=:AAAA:".into()));
        assert_eq!(send(net.addr, &bad).await.status, 401);
        // Refusals reach the log as summaries.
        assert_eq!(net.state.agency.flush_refusals().await.unwrap().len(), 1);
    }

    /// The auditor [`enrol_auditor`] enrols: an organisation with the
    /// `auditor` role only.
    pub const AUDITOR: &str = "community-board";

    pub fn auditor_key() -> SigningKey {
        SigningKey::from_bytes(&[99; 32])
    }

    /// The key of witness number `i` (see [`enrol_witness`]).
    pub fn witness_key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[110 + i; 32])
    }

    pub fn witness_id(i: u8) -> String {
        format!("witness-{i}")
    }

    /// Enrols witness `i` (an organisation with the `witness` role only,
    /// governance-signed).
    pub async fn enrol_witness(net: &Net, i: u8) {
        enrol_organisation(
            net,
            &witness_id(i),
            &format!("Witness {i}"),
            &witness_key(i),
            Role::Witness,
        )
        .await;
    }

    /// Enrols an organisation with one role and no record system.
    async fn enrol_organisation(net: &Net, id: &str, name: &str, key: &SigningKey, role: Role) {
        let e = Event::AgencyEnrolled(AgencyEnrolled {
            v: V1,
            agency: id.to_string(),
            name: name.to_string(),
            key_id: agency_key_id(id),
            public_key: B64.encode(key.verifying_key().as_bytes()),
            upstream: "http://127.0.0.1:9/none".into(),
            upstream_client_certificate: false,
            classes: vec![],
            roles: vec![role],
            at: NOW,
        });
        net.dep
            .submit(sign_event(&e, "governance", &fixture::governance()).unwrap())
            .await
            .unwrap();
    }

    /// A policy trusting witnesses 1 to 3, `quorum` of them required.
    pub fn witness_policy(quorum: usize) -> ledger::WitnessPolicy {
        let lines: Vec<String> = (1..=3)
            .map(|i| {
                let c = ledger::Cosigner::new(&witness_id(i), witness_key(i)).unwrap();
                format!("witness {}", c.verifier())
            })
            .collect();
        ledger::WitnessPolicy::parse(&format!("{}\nquorum {quorum}\n", lines.join("\n"))).unwrap()
    }

    /// One round of witness `i` against `net`, its state in `dir`.
    pub async fn witness_round(net: &Net, i: u8, dir: &std::path::Path) -> gateway::witness::Round {
        let c = gateway::client::AgencyClient::new(
            &format!("http://{}", net.addr),
            "w:1",
            witness_key(i),
        )
        .unwrap();
        gateway::witness::round(
            &c,
            &fixture::gateway().verifier(),
            &ledger::Cosigner::new(&witness_id(i), witness_key(i)).unwrap(),
            &gateway::witness::StateFile::new(&dir.join(format!("witness-{i}.json"))),
            net.clock_now() as u64,
        )
        .await
        .unwrap()
    }

    /// Enrols [`AUDITOR`] (governance-signed), for the tests that read the
    /// log's entries as an auditor.
    pub async fn enrol_auditor(net: &Net) {
        enrol_organisation(
            net,
            AUDITOR,
            "Community advisory board",
            &auditor_key(),
            Role::Auditor,
        )
        .await;
    }

    pub struct Net {
        pub dep: Arc<Deployment>,
        /// The server's state: the agency path, the participants' part.
        pub state: AppState,
        pub clock: Arc<ManualClock>,
        pub addr: SocketAddr,
        /// The gateway's configured public URL, which agencies sign
        /// against: `http://{addr}` of the first start, kept by
        /// [`Net::restart`] (a restarted gateway listens elsewhere).
        pub public_url: String,
        /// The operator's listener: `/metrics`.
        pub metrics_addr: SocketAddr,
        pub upstreams: Vec<(String, SocketAddr)>,
        dir: std::path::PathBuf,
        limits: HttpLimits,
        upstream_timeout: Duration,
        stop: tokio::sync::watch::Sender<bool>,
        servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
        tls: Option<Arc<gateway::tls::ServerTls>>,
    }

    /// How long before [`NOW`] the fixture's first gateway starts: a real
    /// gateway has been up a while by the time it is asked, and the
    /// gateway refuses signatures that a process before it could have
    /// accepted (those created up to its clock skew after its start) when
    /// it cannot know whether they were; see `Gateway::authenticate`.
    pub const UPTIME_AT_NOW: i64 = 60;

    async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    /// Starts the upstreams and the gateway on a fresh deployment in `dir`,
    /// with the registry, the participants and consent `c-housing` (p-0000
    /// lets riverside-housing see treatment attendance and peer support
    /// from hope-clinic, for housing placement, until NOW + 30 days).
    pub async fn start(dir: &std::path::Path) -> Net {
        start_with(dir, HttpLimits::default(), Duration::from_secs(5)).await
    }

    pub async fn start_with(
        dir: &std::path::Path,
        limits: HttpLimits,
        upstream_timeout: Duration,
    ) -> Net {
        start_adjusted(dir, limits, upstream_timeout, |_| {}).await
    }

    /// As [`start_with`], with `adjust` run on the gateway's settings
    /// before it is built (its sign-in and intake limits, say).
    pub async fn start_adjusted(
        dir: &std::path::Path,
        limits: HttpLimits,
        upstream_timeout: Duration,
        adjust: impl FnOnce(&mut Settings),
    ) -> Net {
        start_keyed(
            dir,
            limits,
            upstream_timeout,
            adjust,
            fixture::gateway(),
            None,
            None,
        )
        .await
    }

    /// As [`start`], with another gateway and log key (`signer`, trusted
    /// in its place) and, if `at` is given, on that address: the same
    /// origin as a stopped gateway, to a browser whose storage outlives it.
    pub async fn start_elsewhere(
        dir: &std::path::Path,
        signer: ledger::NoteSigner,
        at: Option<SocketAddr>,
    ) -> Net {
        start_keyed(
            dir,
            HttpLimits::default(),
            Duration::from_secs(5),
            |_| {},
            signer,
            at,
            None,
        )
        .await
    }

    /// As [`start_adjusted`], serving HTTPS with `tls` (TLS then HTTP/1.1
    /// or HTTP/2, as `consentry serve` does), its public URL
    /// `https://{host}:{port}`.
    pub async fn start_tls(
        dir: &std::path::Path,
        tls: Arc<gateway::tls::ServerTls>,
        host: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> Net {
        start_tls_with(dir, tls, host, HttpLimits::default(), adjust).await
    }

    /// As [`start_tls`], within `limits`.
    pub async fn start_tls_with(
        dir: &std::path::Path,
        tls: Arc<gateway::tls::ServerTls>,
        host: &str,
        limits: HttpLimits,
        adjust: impl FnOnce(&mut Settings),
    ) -> Net {
        start_keyed(
            dir,
            limits,
            Duration::from_secs(5),
            adjust,
            fixture::gateway(),
            None,
            Some((tls, host.to_string())),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_keyed(
        dir: &std::path::Path,
        limits: HttpLimits,
        upstream_timeout: Duration,
        adjust: impl FnOnce(&mut Settings),
        signer: ledger::NoteSigner,
        at: Option<SocketAddr>,
        tls: Option<(Arc<gateway::tls::ServerTls>, String)>,
    ) -> Net {
        let clock = Arc::new(ManualClock::new(NOW));
        let gw_key = signer.signing_key().clone();
        let trust = policy::Trust {
            gateway_public_key: B64.encode(gw_key.verifying_key().as_bytes()),
            board: Vec::new(),
            quorum: 1,
            ..fixture::trust()
        };
        let mut upstreams = Vec::new();
        for (id, _, holder) in AGENCIES {
            if let Some(h) = holder {
                let (l, a) = bind().await;
                let origin = gateway::origin::Origin::parse(&format!("http://{a}")).unwrap();
                let r = upstream::router(*h, origin, gw_key.verifying_key(), clock.clone());
                tokio::spawn(upstream::serve(l, r, None));
                upstreams.push((id.to_string(), a));
            }
        }
        let dep = Arc::new(Deployment::open(&dir.join("data"), signer, trust).unwrap());
        for (i, (id, classes, _)) in AGENCIES.iter().enumerate() {
            let upstream = upstreams
                .iter()
                .find(|(u, _)| u == id)
                .map(|(_, a)| format!("http://{a}/fhir"))
                .unwrap_or_else(|| "http://127.0.0.1:9/none".into());
            let e = Event::AgencyEnrolled(AgencyEnrolled {
                v: V1,
                agency: id.to_string(),
                name: id.replace('-', " "),
                key_id: agency_key_id(id),
                public_key: B64.encode(agency_key(id).verifying_key().as_bytes()),
                upstream,
                upstream_client_certificate: false,
                classes: classes.iter().map(|c| c.to_string()).collect(),
                roles: vec![Role::Agency],
                at: NOW,
            });
            let _ = i;
            dep.submit(sign_event(&e, "governance", &fixture::governance()).unwrap())
                .await
                .unwrap();
        }
        for p in 0..PARTICIPANTS {
            let env = fixture::enrolment(p, "hope-clinic", &agency_key("hope-clinic")).unwrap();
            dep.submit(env).await.unwrap();
        }
        dep.submit(consent(
            0,
            "c-housing",
            &["health.sud.treatment", "social.peer-support"],
            NOW + 30 * 86_400,
        ))
        .await
        .unwrap();
        let (l, addr) = match at {
            Some(a) => (tokio::net::TcpListener::bind(a).await.unwrap(), a),
            None => bind().await,
        };
        clock.set(NOW - UPTIME_AT_NOW);
        let net = serve(
            Opened {
                dir: dir.to_path_buf(),
                dep,
                clock: clock.clone(),
                upstreams,
                public_url: match &tls {
                    None => format!("http://{addr}"),
                    Some((_, host)) => format!("https://{host}:{}", addr.port()),
                },
                limits,
                upstream_timeout,
                key: gw_key,
                tls: tls.map(|(t, _)| t),
            },
            l,
            adjust,
        )
        .await;
        clock.set(NOW);
        net
    }

    /// An opened deployment and what its gateway is configured with.
    struct Opened {
        dir: std::path::PathBuf,
        dep: Arc<Deployment>,
        clock: Arc<ManualClock>,
        upstreams: Vec<(String, SocketAddr)>,
        public_url: String,
        limits: HttpLimits,
        upstream_timeout: Duration,
        /// The gateway's (and the log's) key.
        key: ed25519_dalek::SigningKey,
        /// HTTPS on the public listener, with this certificate.
        tls: Option<Arc<gateway::tls::ServerTls>>,
    }

    /// Starts the gateway (its app on `l`, `/metrics` on a listener of
    /// its own) on an opened deployment, `adjust` run on it first.
    async fn serve(
        o: Opened,
        l: tokio::net::TcpListener,
        adjust: impl FnOnce(&mut Settings),
    ) -> Net {
        let Opened {
            dir,
            dep,
            clock,
            upstreams,
            public_url,
            limits,
            upstream_timeout,
            key: gw_key,
            tls,
        } = o;
        let addr = l.local_addr().unwrap();
        let mut settings = Settings::new(&public_url);
        settings.agency.upstream_timeout = upstream_timeout;
        settings.agency.upstream_body_bytes_max = 1 << 20;
        adjust(&mut settings);
        let state = AppState::new(dep.clone(), clock.clone(), gw_key, settings).unwrap();
        let (metrics_l, metrics_addr) = bind().await;
        let (stop, _) = tokio::sync::watch::channel(false);
        let servers = [
            (l, app(state.clone(), &limits), tls.clone()),
            (metrics_l, metrics_app(state.clone()), None),
        ]
        .into_iter()
        .map(|(l, router, tls)| {
            let mut stopped = stop.subscribe();
            let limits = limits.clone();
            let public_url = public_url.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                match tls {
                    None => gateway::server::run(l, &limits, router, stopped).await,
                    Some(tls) => {
                        gateway::server::run_tls(l, &limits, router, tls, &public_url, stopped)
                            .await
                    }
                }
            })
        })
        .collect();
        Net {
            dep,
            state,
            clock,
            addr,
            public_url,
            metrics_addr,
            upstreams,
            dir,
            limits,
            upstream_timeout,
            tls,
            stop,
            servers,
        }
    }

    /// Participant `p` lets riverside-housing see `categories` held by
    /// hope-clinic, for housing placement, until `expires_at`.
    pub fn consent(p: u32, id: &str, categories: &[&str], expires_at: i64) -> Envelope {
        let e = Event::ConsentGranted(ConsentGranted {
            v: V1,
            consent_id: id.into(),
            participant: fixture::participant_id(p),
            holders: Parties::agencies(&["hope-clinic"]),
            recipients: Parties::agencies(&["riverside-housing"]),
            categories: categories.iter().map(|c| c.to_string()).collect(),
            purposes: vec!["housing-placement".into()],
            effective_at: NOW,
            expires_at: Some(expires_at),
            signed_at: NOW,
            language: Language::En,
        });
        sign_event(
            &e,
            &fixture::participant_key_id(p),
            &fixture::participant_key(p),
        )
        .unwrap()
    }

    /// What a fake record system saw: each request's path and query.
    pub type Seen = Arc<std::sync::Mutex<Vec<String>>>;

    /// A record system that answers every request with `answer(path and
    /// query, the participant the gateway named)`, verifying nothing: for
    /// tests of what the gateway sends and what it lets through.
    pub async fn fake_upstream(answer: fn(&str, &str) -> serde_json::Value) -> (SocketAddr, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let log = log.clone();
            async move {
                let target = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(target.clone());
                let participant = req
                    .headers()
                    .get(gateway::upstream::PARTICIPANT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (
                    [("content-type", "application/fhir+json")],
                    answer(&target, &participant).to_string(),
                )
            }
        });
        let (l, addr) = bind().await;
        tokio::spawn(async move { axum::serve(l, app).await });
        (addr, seen)
    }

    /// A FHIR resource of `participant` (by pseudonym) labelled `label`.
    pub fn labelled(kind: &str, id: &str, participant: &str, label: &str) -> serde_json::Value {
        serde_json::json!({
            "resourceType": kind,
            "id": id,
            "meta": {"security": [{"system": gateway::agency::filter::CATEGORY_SYSTEM, "code": label}]},
            "subject": {"identifier": {"system": "https://consentry.dev/participant", "value": participant}},
        })
    }

    /// Enrols `holder` (agency role) with its record system at `addr`, and
    /// lets riverside-housing receive p-0000's treatment records from it
    /// for housing placement (consent `c-{holder}`).
    pub async fn holder_with_consent(net: &Net, holder: &str, addr: SocketAddr) {
        holder_at(net, holder, &format!("http://{addr}/fhir"), false).await
    }

    /// As [`holder_with_consent`], the holder's record system at `upstream`,
    /// asking for the gateway's client certificate when `client_cert`.
    pub async fn holder_at(net: &Net, holder: &str, upstream: &str, client_cert: bool) {
        let e = Event::AgencyEnrolled(AgencyEnrolled {
            v: V1,
            agency: holder.into(),
            name: holder.into(),
            key_id: format!("{holder}:1"),
            public_key: B64.encode(SigningKey::from_bytes(&[23; 32]).verifying_key().as_bytes()),
            upstream: upstream.into(),
            upstream_client_certificate: client_cert,
            classes: vec!["clinic".into()],
            roles: vec![Role::Agency],
            at: NOW,
        });
        net.dep
            .submit(sign_event(&e, "governance", &fixture::governance()).unwrap())
            .await
            .unwrap();
        let grant = Event::ConsentGranted(policy::ConsentGranted {
            v: V1,
            consent_id: format!("c-{holder}"),
            participant: fixture::participant_id(0),
            holders: policy::Parties::agencies(&[holder]),
            recipients: policy::Parties::agencies(&["riverside-housing"]),
            categories: vec!["health.sud.treatment".into()],
            purposes: vec!["housing-placement".into()],
            effective_at: NOW,
            expires_at: Some(NOW + 86_400),
            signed_at: NOW,
            language: policy::Language::En,
        });
        net.dep
            .submit(
                sign_event(
                    &grant,
                    &fixture::participant_key_id(0),
                    &fixture::participant_key(0),
                )
                .unwrap(),
            )
            .await
            .unwrap();
    }

    /// One agency request, before signing.
    #[derive(Clone, Debug)]
    pub struct Ask {
        pub agency: String,
        pub holder: String,
        pub participant: String,
        pub path: String,
        pub purpose: String,
        pub categories: String,
        pub body: Vec<u8>,
    }

    impl Ask {
        pub fn new(
            agency: &str,
            holder: &str,
            participant: &str,
            purpose: &str,
            categories: &str,
        ) -> Self {
            Self {
                agency: agency.into(),
                holder: holder.into(),
                participant: participant.into(),
                path: "Observation".into(),
                purpose: purpose.into(),
                categories: categories.into(),
                body: Vec::new(),
            }
        }

        pub fn target(&self) -> String {
            format!(
                "/v1/records/{}/{}/{}",
                self.holder, self.participant, self.path
            )
        }
    }

    /// The raw request: method, target, header lines (signed) and body.
    #[derive(Clone, Debug)]
    pub struct Raw {
        pub method: String,
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    /// Signs `ask` as its agency with RFC 9421, at `now`, with a fresh
    /// nonce, for the gateway at `net_addr` (`http://{net_addr}`).
    pub fn sign(net_addr: SocketAddr, ask: &Ask, key: &SigningKey, now: i64) -> Raw {
        sign_for(&format!("http://{net_addr}"), ask, key, now)
    }

    /// Signs `ask` for the gateway whose public URL is `origin`
    /// (`scheme://authority`).
    pub fn sign_for(origin: &str, ask: &Ask, key: &SigningKey, now: i64) -> Raw {
        sign_as(origin, ask, key, &agency_key_id(&ask.agency), now)
    }

    /// As [`sign_for`], under the key id `key_id` (a rotated key's).
    pub fn sign_as(origin: &str, ask: &Ask, key: &SigningKey, key_id: &str, now: i64) -> Raw {
        let mut headers = vec![
            ("consentry-purpose".to_string(), ask.purpose.clone()),
            ("consentry-categories".to_string(), ask.categories.clone()),
        ];
        let mut components = vec![
            Component::Method,
            Component::TargetUri,
            Component::field("consentry-purpose"),
            Component::field("consentry-categories"),
        ];
        if !ask.body.is_empty() {
            headers.push((
                "content-digest".into(),
                httpsig::content_digest_sha256(&ask.body),
            ));
            components.push(Component::field("content-digest"));
        }
        let msg = OwnedMessage {
            method: "GET".into(),
            target_uri: format!("{origin}{}", ask.target()),
            headers: headers.clone(),
        };
        let mut nonce = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let params = SignatureParams {
            expires: Some(now + 60),
            nonce: Some(B64.encode(nonce)),
            include_alg: true,
            ..SignatureParams::new(components, now, key_id)
        };
        let (input, sig) = httpsig::sign(&msg.view(&ask.body), &params, "sig1", key).unwrap();
        headers.push(("signature-input".into(), input));
        headers.push(("signature".into(), sig));
        Raw {
            method: "GET".into(),
            target: ask.target(),
            headers,
            body: ask.body.clone(),
        }
    }

    /// An HTTP answer.
    #[derive(Debug)]
    pub struct Answer {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Answer {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
        }
        /// The decision id and its log index from `Consentry-Decision`.
        pub fn decision(&self) -> (String, u64) {
            let v = self
                .header("consentry-decision")
                .expect("a decision header");
            let (id, idx) = v.split_once("; index=").unwrap();
            (id.to_string(), idx.parse().unwrap())
        }
    }

    /// Sends `raw` over a fresh connection and reads the whole answer.
    pub async fn send(addr: SocketAddr, raw: &Raw) -> Answer {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut text = format!(
            "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
            raw.method, raw.target
        );
        for (n, v) in &raw.headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str(&format!("content-length: {}\r\n\r\n", raw.body.len()));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&raw.body);
        // A refused oversized request may close before it is all written.
        let _ = s.write_all(&bytes).await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        parse(&buf)
    }

    fn parse(buf: &[u8]) -> Answer {
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = buf[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
            b = &b[eol + 2 + n + 2..];
        }
        out
    }

    /// Signs and sends `ask` at the net's clock.
    pub async fn ask(net: &Net, ask: &Ask) -> Answer {
        let raw = sign_for(
            &net.public_url,
            ask,
            &agency_key(&ask.agency),
            net.clock_now(),
        );
        send(net.addr, &raw).await
    }

    impl Net {
        /// A real restart: stops this gateway and closes its deployment
        /// (as [`Net::stop`]), then opens the same data directory again
        /// (replaying the log, seeding nothing) and starts a new gateway
        /// on it at the clock's present time, with the same public URL,
        /// upstreams and HTTP limits (not what `start_adjusted` changed),
        /// on a new listener.
        pub async fn restart(self) -> Net {
            let dir = self.dir.clone();
            let clock = self.clock.clone();
            let upstreams = self.upstreams.clone();
            let public_url = self.public_url.clone();
            let limits = self.limits.clone();
            let upstream_timeout = self.upstream_timeout;
            let self_tls = self.tls.clone();
            self.stop().await;
            let dep = Arc::new(
                Deployment::open(&dir.join("data"), fixture::gateway(), fixture::trust()).unwrap(),
            );
            let (l, _) = bind().await;
            serve(
                Opened {
                    dir,
                    dep,
                    clock,
                    upstreams,
                    public_url,
                    limits,
                    upstream_timeout,
                    key: fixture::gateway().signing_key().clone(),
                    tls: self_tls,
                },
                l,
                |_| {},
            )
            .await
        }

        /// Stops the gateway, publishes a final checkpoint and closes the
        /// deployment, releasing its store for an outside check.
        pub async fn stop(self) {
            self.stop.send_replace(true);
            for server in self.servers {
                server.await.unwrap().unwrap();
            }
            self.dep.log.publish_checkpoint().unwrap();
            let Net { dep, state, .. } = self;
            drop(state);
            match Arc::try_unwrap(dep) {
                Ok(dep) => dep.close(),
                Err(_) => panic!("the deployment is still shared after the server stopped"),
            }
        }

        pub fn clock_now(&self) -> i64 {
            use gateway::clock::Clock;
            self.clock.now()
        }

        /// The log entry at `index`, as JSON.
        pub fn entry(&self, index: u64) -> serde_json::Value {
            let e = self.dep.log.entry(index).unwrap().expect("a durable entry");
            serde_json::from_slice(&e.entry).unwrap()
        }

        /// Every entry of `kind` naming `decision_id`.
        pub fn entries_for(&self, kind: &str, decision_id: &str) -> Vec<serde_json::Value> {
            (0..self.dep.log.size())
                .map(|i| self.entry(i))
                .filter(|e| e["type"] == kind && e["decision_id"] == decision_id)
                .collect()
        }
    }
}
