//! A small deployment for tests: agencies, participants, and helpers that
//! build correctly signed events.
#![allow(dead_code)]

use policy::explain::unix_from_civil;
use policy::*;

pub const GOV: &str = "gov-key";
pub const GW: &str = "gw-key";
pub const KEY: &str = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";

/// 1 April 2026, midnight UTC.
pub fn t0() -> i64 {
    unix_from_civil(2026, 4, 1)
}

pub const DAY: i64 = 86_400;

pub fn trust() -> Trust {
    Trust {
        governance_key_id: GOV.into(),
        governance_public_key: KEY.into(),
        gateway_key_id: GW.into(),
        gateway_public_key: KEY.into(),
        board: Vec::new(),
        quorum: 1,
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub fn agency_event(id: &str, name: &str, classes: &[&str], roles: &[Role]) -> Event {
    Event::AgencyEnrolled(AgencyEnrolled {
        v: V1,
        agency: id.into(),
        name: name.into(),
        key_id: format!("k-{id}"),
        public_key: KEY.into(),
        upstream: format!("http://127.0.0.1:9000/{id}"),
        upstream_client_certificate: false,
        classes: strings(classes),
        roles: roles.to_vec(),
        at: t0() - 100 * DAY,
    })
}

pub fn participant_event(id: &str) -> Event {
    Event::ParticipantEnrolled(ParticipantEnrolled {
        v: V1,
        participant: id.into(),
        key_id: format!("k-{id}"),
        public_key: KEY.into(),
        at: t0() - 50 * DAY,
        enrolled_by: ENROLLING_AGENCY.into(),
    })
}

/// The agencies every test world has.
pub const AGENCIES: [(&str, &str, &[&str]); 7] = [
    ("riverside-housing", "Riverside Housing", &["housing"]),
    ("eastside-housing", "Eastside Housing", &["housing"]),
    ("harbor-clinic", "Harbor Clinic", &["clinic", "treatment"]),
    ("hope-treatment", "Hope Treatment Center", &["treatment"]),
    ("county-court", "County Court", &["court"]),
    ("jobs-centre", "Jobs Centre", &["employment"]),
    ("er-general", "General Hospital ER", &["emergency"]),
];

#[derive(Clone)]
pub struct Grant {
    pub id: String,
    pub participant: String,
    pub holders: Parties,
    pub recipients: Parties,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub effective_at: i64,
    pub expires_at: Option<i64>,
}

impl Grant {
    /// harbor-clinic may disclose `categories` to riverside-housing for
    /// housing placement, for 90 days from t0.
    pub fn new(id: &str, participant: &str) -> Self {
        Grant {
            id: id.into(),
            participant: participant.into(),
            holders: Parties::agencies(&["harbor-clinic"]),
            recipients: Parties::agencies(&["riverside-housing"]),
            categories: strings(&["social.housing"]),
            purposes: strings(&["housing-placement"]),
            effective_at: t0(),
            expires_at: Some(t0() + 90 * DAY),
        }
    }
    pub fn holders(mut self, p: Parties) -> Self {
        self.holders = p;
        self
    }
    pub fn recipients(mut self, p: Parties) -> Self {
        self.recipients = p;
        self
    }
    pub fn categories(mut self, c: &[&str]) -> Self {
        self.categories = strings(c);
        self
    }
    pub fn purposes(mut self, p: &[&str]) -> Self {
        self.purposes = strings(p);
        self
    }
    pub fn between(mut self, effective_at: i64, expires_at: Option<i64>) -> Self {
        self.effective_at = effective_at;
        self.expires_at = expires_at;
        self
    }
    pub fn event(&self) -> Event {
        Event::ConsentGranted(ConsentGranted {
            v: V1,
            consent_id: self.id.clone(),
            participant: self.participant.clone(),
            holders: self.holders.clone(),
            recipients: self.recipients.clone(),
            categories: self.categories.clone(),
            purposes: self.purposes.clone(),
            effective_at: self.effective_at,
            expires_at: self.expires_at,
            signed_at: self.effective_at,
            language: Language::En,
        })
    }
}

pub fn revoke_event(consent: &str, participant: &str, assisted_by: Option<&str>) -> Event {
    Event::ConsentRevoked(ConsentRevoked {
        v: V1,
        consent_id: consent.into(),
        participant: participant.into(),
        at: t0() + DAY,
        assisted_by: assisted_by.map(str::to_owned),
    })
}

/// The agency whose intake co-signs every participant's enrolment.
pub const ENROLLING_AGENCY: &str = "harbor-clinic";

/// Who signs an event in a well-behaved deployment.
pub fn signers_of(event: &Event) -> Vec<String> {
    match event {
        Event::ParticipantEnrolled(e) => vec![e.key_id.clone(), format!("k-{}", e.enrolled_by)],
        Event::ParticipantKeyRotated(e) => {
            vec![e.key_id.clone(), format!("k-{}", e.assisted_by)]
        }
        other => vec![signer_of(other)],
    }
}

/// The one signer of an event that has one.
fn signer_of(event: &Event) -> String {
    match event {
        Event::GovernanceRules(_)
        | Event::AgencyEnrolled(_)
        | Event::AgencyKeyRotated(_)
        | Event::AgencyRetired(_)
        | Event::BoardChanged(_) => GOV.into(),
        Event::ParticipantEnrolled(e) => e.key_id.clone(),
        Event::ParticipantKeyRotated(e) => e.key_id.clone(),
        Event::GrievanceFiled(e) => format!("k-{}", e.participant),
        Event::GrievanceResolved(_) => GOV.into(),
        Event::ParticipantRotationCancelled(e) => format!("k-{}", e.participant),
        Event::ConsentGranted(e) => format!("k-{}", e.participant),
        Event::ConsentRevoked(e) => match &e.assisted_by {
            Some(a) => format!("k-{a}"),
            None => format!("k-{}", e.participant),
        },
        Event::AccessDecided(_)
        | Event::AccessRefused(_)
        | Event::AccessReleased(_)
        | Event::ParticipantNotice(_)
        | Event::ParticipantKeyActivated(_) => GW.into(),
    }
}

pub struct World {
    pub state: ConsentState,
    pub index: u64,
    /// Every event applied, in order: a replay starts from these.
    pub log: Vec<Event>,
}

impl World {
    pub fn empty() -> Self {
        World {
            state: ConsentState::new(trust()),
            index: 0,
            log: Vec::new(),
        }
    }

    /// The standard agencies (plus an auditor and a retired agency) and
    /// participants p1..p3.
    pub fn new() -> Self {
        let mut w = World::empty();
        for (id, name, classes) in AGENCIES {
            w.ok(agency_event(id, name, classes, &[Role::Agency]));
        }
        w.ok(agency_event("audit-co", "Audit Co", &[], &[Role::Auditor]));
        w.ok(agency_event(
            "old-shelter",
            "Old Shelter",
            &["housing"],
            &[Role::Agency],
        ));
        w.ok(Event::AgencyRetired(AgencyRetired {
            v: V1,
            agency: "old-shelter".into(),
            at: t0() - 10 * DAY,
        }));
        for p in ["p1", "p2", "p3"] {
            w.ok(participant_event(p));
        }
        w
    }

    /// Applies with the right signer.
    pub fn apply(&mut self, event: Event) -> Result<(), ApplyError> {
        let signers = signers_of(&event);
        let refs: Vec<&str> = signers.iter().map(String::as_str).collect();
        self.apply_signed(event, &refs)
    }

    pub fn apply_signed(&mut self, event: Event, signers: &[&str]) -> Result<(), ApplyError> {
        self.index += 1;
        self.state.apply(self.index, &event, signers)?;
        self.log.push(event);
        Ok(())
    }

    pub fn ok(&mut self, event: Event) {
        let kind = event.kind();
        if let Err(e) = self.apply(event) {
            panic!("applying {kind}: {e}");
        }
    }

    pub fn grant(&mut self, g: Grant) {
        self.ok(g.event());
    }

    pub fn revoke(&mut self, consent: &str, participant: &str) {
        self.ok(revoke_event(consent, participant, None));
    }

    pub fn rules(&mut self, version: u32, rules: Rules) {
        self.ok(Event::GovernanceRules(GovernanceRules {
            v: V1,
            version,
            vocabulary: Vocabulary::default_recovery(),
            rules,
            at: t0(),
        }));
    }

    pub fn decide(&self, req: &Request, at: i64) -> Decision {
        decide(&self.state, req, at)
    }
}

pub fn request(
    requester: &str,
    holder: &str,
    participant: &str,
    categories: &[&str],
    purpose: &str,
) -> Request {
    Request {
        requester: requester.into(),
        holder: holder.into(),
        participant: participant.into(),
        categories: strings(categories),
        purpose: purpose.into(),
    }
}

/// Default rules with some fields replaced, via TOML.
pub fn rules_with(forbidden: &[&str], allow_until_revoked: bool, days_max: u32) -> Rules {
    let forbidden: Vec<String> = forbidden.iter().map(|f| format!("{f:?}")).collect();
    let text = format!(
        "forbidden_purposes = [{}]\nconsent_duration_days_max = {days_max}\nallow_until_revoked = {allow_until_revoked}\nspecific_recipient_categories = [\"justice\", \"health.mental\"]\n[break_glass]\npurpose = \"medical-emergency\"\nclasses = [\"clinic\", \"emergency\"]\ncategories = [\"health.sud\"]\n",
        forbidden.join(", ")
    );
    Rules::from_toml(&text).expect("test rules")
}

/// The evidence of an RFC 9421-signed request with this digest.
pub fn rfc9421(digest: &str) -> Evidence {
    Evidence {
        method: EvidenceMethod::Rfc9421,
        digest: digest.into(),
    }
}
