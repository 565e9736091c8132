//! Decision latency and memory at deployment scale: 100,000 participants
//! holding 1,000,000 consents. Prints p50/p99 from per-call timings and
//! bytes per consent from a counting allocator, then runs criterion on our
//! `decide` and, side by side, on the same policy written for Cedar.

// Test and benchmark support: a failed unwrap is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The allocation count wraps the system allocator: a `GlobalAlloc` impl
// is unsafe by definition.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, PolicySet, Request as CedarRequest,
    RestrictedExpression,
};
use criterion::{criterion_group, Criterion};
use policy::*;

/// Counts live heap bytes so that memory per consent is measured, not guessed.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` unchanged; the counter is only
// bookkeeping on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PARTICIPANTS: usize = 100_000;
const CONSENTS: usize = 1_000_000;
const AGENCIES: usize = 200;
const REQUESTS: usize = 200_000;
const CEDAR_REQUESTS: usize = 20_000;
const DAY: i64 = 86_400;
const T0: i64 = 1_775_001_600;
const KEY: &str = "GwP2yLc9Q3nqXvV0v6zEuHh7I2w8Jx3rDqJ0zmsJq1U=";

const CLASSES: [&str; 7] = [
    "housing",
    "clinic",
    "treatment",
    "employment",
    "court",
    "peer-support",
    "emergency",
];
const CATEGORIES: [&str; 10] = [
    "health.sud",
    "health.sud.treatment",
    "health.sud.medication",
    "health.mental",
    "social.housing",
    "social.employment",
    "social.benefits",
    "social.peer-support",
    "justice.court-compliance",
    "social",
];
const PURPOSES: [&str; 6] = [
    "treatment",
    "care-coordination",
    "housing-placement",
    "employment-support",
    "payment",
    "medical-emergency",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn agency_id(i: usize) -> String {
    format!("agency-{i:03}")
}
fn agency_class(i: usize) -> &'static str {
    CLASSES[i % CLASSES.len()]
}
fn participant_id(i: usize) -> String {
    format!("p{i:06}")
}

struct World {
    state: ConsentState,
    /// The consents each participant granted, for building Cedar entities.
    grants: Vec<Vec<ConsentGranted>>,
    consent_bytes: usize,
    state_bytes: usize,
}

fn build() -> World {
    let trust = Trust {
        governance_key_id: "gov".into(),
        governance_public_key: KEY.into(),
        gateway_key_id: "gw".into(),
        gateway_public_key: KEY.into(),
        board: Vec::new(),
        quorum: 1,
    };
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut state = ConsentState::new(trust);
    let mut index = 0u64;
    let mut apply = |state: &mut ConsentState, e: &Event, signers: &[&str]| {
        index += 1;
        state.apply(index, e, signers).expect("bench event applies");
    };
    for i in 0..AGENCIES {
        let e = Event::AgencyEnrolled(AgencyEnrolled {
            v: V1,
            agency: agency_id(i),
            name: format!("Agency {i}"),
            key_id: format!("k-{}", agency_id(i)),
            public_key: KEY.into(),
            upstream: format!("http://127.0.0.1:9000/{i}"),
            upstream_client_certificate: false,
            classes: vec![agency_class(i).into()],
            roles: vec![Role::Agency],
            at: T0,
        });
        apply(&mut state, &e, &["gov"]);
    }
    let intake = format!("k-{}", agency_id(0));
    for p in 0..PARTICIPANTS {
        let e = Event::ParticipantEnrolled(ParticipantEnrolled {
            v: V1,
            participant: participant_id(p),
            key_id: format!("k-{}", participant_id(p)),
            public_key: KEY.into(),
            at: T0,
            enrolled_by: agency_id(0),
        });
        apply(
            &mut state,
            &e,
            &[&format!("k-{}", participant_id(p)), &intake],
        );
    }
    // Measured before the bench's own copies of the consents exist.
    let registry_bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut grants: Vec<Vec<ConsentGranted>> = (0..PARTICIPANTS).map(|_| Vec::new()).collect();
    let mut specs = Vec::with_capacity(CONSENTS);
    for n in 0..CONSENTS {
        let p = n % PARTICIPANTS;
        let recipients = if rng.below(10) < 7 {
            Parties {
                agencies: vec![agency_id(rng.below(AGENCIES))],
                classes: vec![],
            }
        } else {
            Parties {
                agencies: vec![],
                classes: vec![CLASSES[rng.below(CLASSES.len())].into()],
            }
        };
        let holders = if rng.below(10) < 8 {
            Parties {
                agencies: vec![agency_id(rng.below(AGENCIES))],
                classes: vec![],
            }
        } else {
            Parties {
                agencies: vec![],
                classes: vec![CLASSES[rng.below(CLASSES.len())].into()],
            }
        };
        let mut categories = vec![CATEGORIES[rng.below(CATEGORIES.len())].to_owned()];
        if rng.below(2) == 0 {
            categories.push(CATEGORIES[rng.below(CATEGORIES.len())].to_owned());
        }
        categories.dedup();
        let effective_at = T0 - rng.below(200) as i64 * DAY;
        specs.push(ConsentGranted {
            v: V1,
            consent_id: format!("c{n:07}"),
            participant: participant_id(p),
            holders,
            recipients,
            categories,
            purposes: vec![PURPOSES[rng.below(PURPOSES.len() - 1)].to_owned()],
            effective_at,
            expires_at: Some(effective_at + (30 + rng.below(330) as i64) * DAY),
            signed_at: effective_at,
            language: Language::En,
        });
    }
    // Only the state's own growth is counted: the specs are kept for Cedar.
    let after_registry = LIVE_BYTES.load(Ordering::Relaxed);
    for spec in &specs {
        let signer = format!("k-{}", spec.participant);
        let e = Event::ConsentGranted(spec.clone());
        apply(&mut state, &e, &[&signer]);
    }
    // Revoke 5% so that decisions meet revoked consents too.
    for n in (0..CONSENTS).step_by(20) {
        let spec = &specs[n];
        let e = Event::ConsentRevoked(ConsentRevoked {
            v: V1,
            consent_id: spec.consent_id.clone(),
            participant: spec.participant.clone(),
            at: T0,
            assisted_by: None,
        });
        apply(&mut state, &e, &[&format!("k-{}", spec.participant)]);
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    for spec in specs {
        let p: usize = spec.participant[1..].parse().expect("participant number");
        grants[p].push(spec);
    }
    World {
        state,
        grants,
        consent_bytes: after - after_registry,
        state_bytes: registry_bytes + (after - after_registry),
    }
}

/// Half the requests mirror a real consent (so most allow), half are random.
fn requests(world: &World, n: usize, seed: u64) -> Vec<(Request, i64)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let p = rng.below(PARTICIPANTS);
            let at = T0 + rng.below(60) as i64 * DAY;
            let mirror = world.grants[p]
                .get(rng.below(12))
                .filter(|_| rng.below(2) == 0);
            let req = match mirror {
                Some(c) => Request {
                    requester: c
                        .recipients
                        .agencies
                        .first()
                        .cloned()
                        .unwrap_or_else(|| agency_id(rng.below(AGENCIES))),
                    holder: c
                        .holders
                        .agencies
                        .first()
                        .cloned()
                        .unwrap_or_else(|| agency_id(rng.below(AGENCIES))),
                    participant: c.participant.clone(),
                    categories: c.categories.clone(),
                    purpose: c.purposes[0].clone(),
                },
                None => Request {
                    requester: agency_id(rng.below(AGENCIES)),
                    holder: agency_id(rng.below(AGENCIES)),
                    participant: if rng.below(20) == 0 {
                        format!("x{p}")
                    } else {
                        participant_id(p)
                    },
                    categories: vec![
                        CATEGORIES[rng.below(CATEGORIES.len())].to_owned(),
                        CATEGORIES[rng.below(CATEGORIES.len())].to_owned(),
                    ],
                    purpose: PURPOSES[rng.below(PURPOSES.len())].to_owned(),
                },
            };
            (req, at)
        })
        .collect()
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

// ----- the same policy for Cedar ---------------------------------------------

/// Each consent is a Cedar entity; a request is evaluated per (category,
/// consent of that participant). Covered: recipient by agency or class (the
/// class membership is the agency's entity parent), specific-recipient
/// categories, holder by agency or class, category and purpose hierarchy
/// (entity parents), validity window, revocation, forbidden purposes, and
/// break-glass. Not covered: reason codes, the agency's view, choosing the
/// consent relied on; Cedar has no index, so it is given the participant's
/// consents (every one of them, as it cannot select by recipient).
const CEDAR_POLICY: &str = r#"
permit(principal, action == Action::"disclose", resource is Consent)
when {
  resource.participant == context.participant &&
  !resource.revoked &&
  resource.effective_at <= context.at && context.at < resource.expires_at &&
  context.category in resource.categories &&
  context.purpose in resource.purposes &&
  context.holder in resource.holders &&
  (resource.recipients.contains(principal) ||
   (principal in resource.recipient_classes &&
    !(context.category in [Category::"justice", Category::"health.mental"])))
};
permit(principal, action == Action::"disclose", resource)
when {
  (principal in Class::"clinic" || principal in Class::"emergency") &&
  context.purpose in Purpose::"medical-emergency" &&
  context.category in Category::"health.sud"
};
forbid(principal, action, resource)
when {
  context.purpose in [Purpose::"criminal-investigation", Purpose::"prosecution", Purpose::"immigration-enforcement"]
};
"#;

fn uid(kind: &str, id: &str) -> serde_json::Value {
    serde_json::json!({"__entity": {"type": kind, "id": id}})
}

fn cedar_entities(world: &World, participants: &[usize]) -> Entities {
    let mut out = Vec::new();
    let vocabulary = world.state.vocabulary();
    for (kind, list) in [
        ("Category", Kind::Category),
        ("Purpose", Kind::Purpose),
        ("Class", Kind::Class),
    ] {
        for term in vocabulary.terms(list) {
            let parents: Vec<_> = policy::vocab::parent_code(&term.code)
                .map(|p| serde_json::json!({"type": kind, "id": p}))
                .into_iter()
                .collect();
            out.push(serde_json::json!({"uid": {"type": kind, "id": term.code}, "attrs": {}, "parents": parents}));
        }
    }
    for i in 0..AGENCIES {
        out.push(serde_json::json!({
            "uid": {"type": "Agency", "id": agency_id(i)},
            "attrs": {},
            "parents": [{"type": "Class", "id": agency_class(i)}],
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for &p in participants {
        if !seen.insert(p) {
            continue;
        }
        for c in &world.grants[p] {
            let revoked = world
                .state
                .consent(&c.consent_id)
                .is_some_and(|v| v.revocation.is_some());
            let holders: Vec<_> = c
                .holders
                .agencies
                .iter()
                .map(|a| uid("Agency", a))
                .chain(c.holders.classes.iter().map(|k| uid("Class", k)))
                .collect();
            out.push(serde_json::json!({
                "uid": {"type": "Consent", "id": c.consent_id},
                "attrs": {
                    "participant": uid("Participant", &c.participant),
                    "revoked": revoked,
                    "effective_at": c.effective_at,
                    "expires_at": c.expires_at.unwrap_or(i64::MAX),
                    "categories": c.categories.iter().map(|k| uid("Category", k)).collect::<Vec<_>>(),
                    "purposes": c.purposes.iter().map(|k| uid("Purpose", k)).collect::<Vec<_>>(),
                    "holders": holders,
                    "recipients": c.recipients.agencies.iter().map(|a| uid("Agency", a)).collect::<Vec<_>>(),
                    "recipient_classes": c.recipients.classes.iter().map(|k| uid("Class", k)).collect::<Vec<_>>(),
                },
                "parents": [],
            }));
        }
    }
    Entities::from_json_value(serde_json::Value::Array(out), None).expect("cedar entities")
}

struct Cedar {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    action: EntityUid,
    /// Consent entity uids per participant index.
    consents: HashMap<String, Vec<EntityUid>>,
    none: EntityUid,
}

fn entity(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!(
        "{kind}::{}",
        serde_json::Value::String(id.to_owned())
    ))
    .expect("uid")
}

impl Cedar {
    fn new(world: &World, reqs: &[(Request, i64)]) -> Cedar {
        let participants: Vec<usize> = reqs
            .iter()
            .filter_map(|(r, _)| r.participant.strip_prefix('p')?.parse().ok())
            .collect();
        let consents = participants
            .iter()
            .map(|&p| {
                (
                    participant_id(p),
                    world.grants[p]
                        .iter()
                        .map(|c| entity("Consent", &c.consent_id))
                        .collect(),
                )
            })
            .collect();
        Cedar {
            policies: PolicySet::from_str(CEDAR_POLICY).expect("cedar policy"),
            entities: cedar_entities(world, &participants),
            authorizer: Authorizer::new(),
            action: entity("Action", "disclose"),
            consents,
            none: entity("Consent", "none"),
        }
    }

    /// The released categories, as Cedar decides them.
    fn decide(&self, req: &Request, at: i64) -> Vec<String> {
        let principal = entity("Agency", &req.requester);
        let consents = self
            .consents
            .get(&req.participant)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let resources = if consents.is_empty() {
            std::slice::from_ref(&self.none)
        } else {
            consents
        };
        let mut released = Vec::new();
        for category in &req.categories {
            let context = Context::from_pairs([
                (
                    "participant".to_owned(),
                    RestrictedExpression::new_entity_uid(entity("Participant", &req.participant)),
                ),
                (
                    "holder".to_owned(),
                    RestrictedExpression::new_entity_uid(entity("Agency", &req.holder)),
                ),
                (
                    "category".to_owned(),
                    RestrictedExpression::new_entity_uid(entity("Category", category)),
                ),
                (
                    "purpose".to_owned(),
                    RestrictedExpression::new_entity_uid(entity("Purpose", &req.purpose)),
                ),
                ("at".to_owned(), RestrictedExpression::new_long(at)),
            ])
            .expect("context");
            let allowed = resources.iter().any(|resource| {
                let request = CedarRequest::new(
                    principal.clone(),
                    self.action.clone(),
                    resource.clone(),
                    context.clone(),
                    None,
                )
                .expect("request");
                self.authorizer
                    .is_authorized(&request, &self.policies, &self.entities)
                    .decision()
                    == cedar_policy::Decision::Allow
            });
            if allowed {
                released.push(category.clone());
            }
        }
        released.sort();
        released.dedup();
        released
    }
}

fn report_and_bench(c: &mut Criterion) {
    let started = Instant::now();
    let world = build();
    println!(
        "built {} consents for {} participants in {:.1?}",
        world.state.consent_count(),
        world.state.participant_count(),
        started.elapsed()
    );
    println!(
        "memory: {:.1} bytes/consent for consents alone; {:.1} bytes/consent for the whole state (registry, participants, keys)",
        world.consent_bytes as f64 / CONSENTS as f64,
        world.state_bytes as f64 / CONSENTS as f64,
    );

    let reqs = requests(&world, REQUESTS, 42);
    let mut timings = Vec::with_capacity(reqs.len());
    let mut allowed = 0usize;
    for (req, at) in &reqs {
        let start = Instant::now();
        let d = decide(&world.state, black_box(req), *at);
        timings.push(start.elapsed().as_nanos() as u64);
        allowed += usize::from(d.is_allow());
    }
    timings.sort_unstable();
    println!(
        "policy::decide over {} requests ({} allowed): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        reqs.len(),
        allowed,
        percentile(&timings, 0.50),
        percentile(&timings, 0.99),
        percentile(&timings, 0.999),
        timings.last().copied().unwrap_or(0),
    );

    let cedar_reqs: Vec<(Request, i64)> = reqs.iter().take(CEDAR_REQUESTS).cloned().collect();
    let cedar = Cedar::new(&world, &cedar_reqs);
    let mut agree = 0usize;
    let mut cedar_timings = Vec::with_capacity(cedar_reqs.len());
    for (req, at) in &cedar_reqs {
        let start = Instant::now();
        let released = cedar.decide(black_box(req), *at);
        cedar_timings.push(start.elapsed().as_nanos() as u64);
        agree += usize::from(released == decide(&world.state, req, *at).released());
    }
    cedar_timings.sort_unstable();
    println!(
        "cedar over {} of the same requests: p50 {} ns, p99 {} ns; released sets agree on {}/{}",
        cedar_reqs.len(),
        percentile(&cedar_timings, 0.50),
        percentile(&cedar_timings, 0.99),
        agree,
        cedar_reqs.len(),
    );
    println!(
        "ratio policy/cedar: p50 {:.3}, p99 {:.3}",
        percentile(&timings, 0.50) as f64 / percentile(&cedar_timings, 0.50) as f64,
        percentile(&timings, 0.99) as f64 / percentile(&cedar_timings, 0.99) as f64,
    );

    let mut group = c.benchmark_group("decide");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    group.bench_function("policy", |b| {
        b.iter(|| {
            let (req, at) = &cedar_reqs[i % cedar_reqs.len()];
            i += 1;
            decide(&world.state, black_box(req), *at)
        })
    });
    let mut j = 0usize;
    group.bench_function("cedar", |b| {
        b.iter(|| {
            let (req, at) = &cedar_reqs[j % cedar_reqs.len()];
            j += 1;
            cedar.decide(black_box(req), *at)
        })
    });
    group.finish();
}

criterion_group!(benches, report_and_bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
