//! End-to-end test helpers: a deterministic deployment (keys, registry,
//! participants) and signed consent events, so that a child process and its
//! parent build the same entries.

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
                classes: vec!["clinic".into()],
                roles: vec![Role::Agency],
                at: NOW,
            });
            out.push(sign_event(&e, "governance", &governance())?);
        }
        for p in 0..participants {
            let e = Event::ParticipantEnrolled(ParticipantEnrolled {
                v: V1,
                participant: participant_id(p),
                key_id: participant_key_id(p),
                public_key: B64.encode(participant_key(p).verifying_key().as_bytes()),
                at: NOW,
            });
            out.push(sign_event(&e, &participant_key_id(p), &participant_key(p))?);
        }
        Ok(out)
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
