//! Property tests against an independent, string-based model of the rules.

use crate::common;

use common::*;
use policy::vocab::code_covers;
use policy::*;
use proptest::prelude::*;

const AGENCY_IDS: [&str; 6] = [
    "riverside-housing",
    "eastside-housing",
    "harbor-clinic",
    "hope-treatment",
    "county-court",
    "er-general",
];
const CLASSES: [&str; 5] = ["housing", "clinic", "treatment", "court", "emergency"];
const CATEGORIES: [&str; 8] = [
    "health",
    "health.sud",
    "health.sud.treatment",
    "health.sud.medication",
    "health.mental",
    "social.housing",
    "justice.court-compliance",
    "social",
];
const PURPOSES: [&str; 4] = [
    "treatment",
    "housing-placement",
    "care-coordination",
    "medical-emergency",
];
const PARTICIPANTS: [&str; 3] = ["p1", "p2", "p3"];

fn subset<'a>(pool: &'a [&'a str], mask: u16) -> Vec<&'a str> {
    pool.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect()
}

#[derive(Clone, Debug)]
struct GrantSpec {
    participant: usize,
    holder_agencies: u16,
    holder_classes: u16,
    recipient_agencies: u16,
    recipient_classes: u16,
    categories: u16,
    purposes: u16,
    effective_day: i64,
    length_days: Option<i64>,
}

fn grant_spec() -> impl Strategy<Value = GrantSpec> {
    (
        0..PARTICIPANTS.len(),
        (0u16..64, 0u16..32, 0u16..64, 0u16..32),
        1u16..256,
        1u16..16,
        -5i64..5,
        prop::option::of(1i64..30),
    )
        .prop_map(
            |(participant, (ha, hc, ra, rc), categories, purposes, effective_day, length_days)| {
                GrantSpec {
                    participant,
                    // Both party lists must name someone.
                    holder_agencies: if ha == 0 && hc == 0 { 1 } else { ha },
                    holder_classes: hc,
                    recipient_agencies: if ra == 0 && rc == 0 { 1 } else { ra },
                    recipient_classes: rc,
                    categories,
                    purposes,
                    effective_day,
                    length_days,
                }
            },
        )
}

impl GrantSpec {
    fn grant(&self, id: &str) -> Grant {
        let agencies = |m| Parties {
            agencies: strings(&subset(&AGENCY_IDS, m)),
            classes: Vec::new(),
        };
        let mut holders = agencies(self.holder_agencies);
        holders.classes = strings(&subset(&CLASSES, self.holder_classes));
        let mut recipients = agencies(self.recipient_agencies);
        recipients.classes = strings(&subset(&CLASSES, self.recipient_classes));
        let effective_at = t0() + self.effective_day * DAY;
        Grant::new(id, PARTICIPANTS[self.participant])
            .holders(holders)
            .recipients(recipients)
            .categories(&subset(&CATEGORIES, self.categories))
            .purposes(&subset(&PURPOSES, self.purposes))
            .between(
                effective_at,
                self.length_days.map(|d| effective_at + d * DAY),
            )
    }
}

#[derive(Clone, Debug)]
struct ReqSpec {
    requester: usize,
    holder: usize,
    participant: usize,
    categories: u16,
    purpose: usize,
    day: i64,
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    (
        0..AGENCY_IDS.len(),
        0..AGENCY_IDS.len(),
        0..4usize,
        1u16..256,
        0..PURPOSES.len(),
        -6i64..40,
    )
        .prop_map(
            |(requester, holder, participant, categories, purpose, day)| ReqSpec {
                requester,
                holder,
                participant,
                categories,
                purpose,
                day,
            },
        )
}

impl ReqSpec {
    fn request(&self) -> Request {
        // Index 3 is a participant nobody enrolled.
        let participant = PARTICIPANTS
            .get(self.participant)
            .copied()
            .unwrap_or("p-unknown");
        request(
            AGENCY_IDS[self.requester],
            AGENCY_IDS[self.holder],
            participant,
            &subset(&CATEGORIES, self.categories),
            PURPOSES[self.purpose],
        )
    }
    fn at(&self) -> i64 {
        t0() + self.day * DAY + (self.day * 7919) % DAY
    }
}

/// The model: does this consent (as the portal shows it) release this
/// category of this request whole at `at`? Written from the rules' text, on
/// strings. `by_class_ok` says whether naming the requester only through
/// its class is enough.
fn model_covers_with(
    state: &ConsentState,
    c: &ConsentView,
    req: &Request,
    category: &str,
    at: i64,
    by_class_ok: bool,
) -> bool {
    let requester = state.agency(&req.requester).unwrap();
    let holder = state.agency(&req.holder).unwrap();
    let named = c.granted.recipients.agencies.contains(&req.requester);
    let by_class = requester
        .enrolled
        .classes
        .iter()
        .any(|k| c.granted.recipients.classes.contains(k));
    let recipient_ok = named || (by_class && by_class_ok);
    let holder_ok = c.granted.holders.agencies.contains(&req.holder)
        || holder
            .enrolled
            .classes
            .iter()
            .any(|k| c.granted.holders.classes.contains(k));
    c.granted.participant == req.participant
        && recipient_ok
        && holder_ok
        && c.granted
            .categories
            .iter()
            .any(|g| code_covers(g, category))
        && c.granted
            .purposes
            .iter()
            .any(|g| code_covers(g, &req.purpose))
        && c.revocation.is_none()
        && c.granted.effective_at <= at
        && at
            < c.granted
                .expires_at
                .unwrap_or(c.granted.effective_at + state.rules().consent_duration_seconds_max())
}

/// Categories needing a named recipient at or strictly under `category`.
fn restricted_at_or_below(state: &ConsentState, category: &str) -> (bool, bool) {
    let specific = state.rules().specific_recipient_categories();
    let at = specific.iter().any(|r| code_covers(r, category));
    let below = specific
        .iter()
        .any(|r| r != category && code_covers(category, r));
    (at, below)
}

/// A consent releases a category whole if it covers it and, when a
/// category needing a named recipient is at or under it, names the
/// requester itself.
fn model_covers(
    state: &ConsentState,
    c: &ConsentView,
    req: &Request,
    category: &str,
    at: i64,
) -> bool {
    let (restricted, below) = restricted_at_or_below(state, category);
    model_covers_with(state, c, req, category, at, !restricted && !below)
}

/// What the model releases for one requested category, with how: `None`
/// for break-glass, else a consent covering each released code. A category
/// that a class consent would release, but with a restricted category
/// under it, releases its sub-categories (per the vocabulary) instead,
/// each by the same rule, without break-glass.
fn model_release(
    state: &ConsentState,
    consents: &[ConsentView],
    req: &Request,
    category: &str,
    at: i64,
    top: bool,
) -> Vec<(String, bool)> {
    if consents
        .iter()
        .any(|c| model_covers(state, c, req, category, at))
    {
        return vec![(category.to_owned(), true)];
    }
    if top && model_break_glass(state, req, category) {
        return vec![(category.to_owned(), false)];
    }
    let (restricted, below) = restricted_at_or_below(state, category);
    let partial = !restricted
        && below
        && consents
            .iter()
            .any(|c| model_covers_with(state, c, req, category, at, true));
    if !partial {
        return Vec::new();
    }
    let prefix = format!("{category}.");
    state
        .vocabulary()
        .terms(Kind::Category)
        .filter(|t| {
            t.code
                .strip_prefix(&prefix)
                .is_some_and(|rest| !rest.contains('.'))
        })
        .flat_map(|t| model_release(state, consents, req, &t.code, at, false))
        .collect()
}

fn model_break_glass(state: &ConsentState, req: &Request, category: &str) -> bool {
    let Some(bg) = state.rules().break_glass() else {
        return false;
    };
    let requester = state.agency(&req.requester).unwrap();
    code_covers(&bg.purpose, &req.purpose)
        && (bg.agencies.contains(&req.requester)
            || requester
                .enrolled
                .classes
                .iter()
                .any(|k| bg.classes.contains(k)))
        && bg.categories.iter().any(|c| code_covers(c, category))
}

fn all_consents(state: &ConsentState, at: i64) -> Vec<ConsentView> {
    PARTICIPANTS
        .iter()
        .flat_map(|p| state.consents_of(p, at))
        .map(|(c, _)| c)
        .collect()
}

fn build(grants: &[GrantSpec], revokes: &[usize]) -> World {
    let mut w = World::new();
    for (i, g) in grants.iter().enumerate() {
        w.grant(g.grant(&format!("c{i:03}")));
    }
    for &r in revokes {
        if let Some(g) = grants.get(r % grants.len().max(1)) {
            let id = format!("c{:03}", r % grants.len());
            let _ = w.apply(revoke_event(&id, PARTICIPANTS[g.participant], None));
        }
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Exactly the categories the model says are covered (or break-glass
    /// permits, flagged) are released; every consent relied on covers.
    #[test]
    fn no_allow_without_an_active_covering_consent(
        grants in prop::collection::vec(grant_spec(), 0..12),
        revokes in prop::collection::vec(0usize..12, 0..4),
        reqs in prop::collection::vec(req_spec(), 1..12),
    ) {
        let w = build(&grants, &revokes);
        let consents = all_consents(&w.state, 0);
        for spec in &reqs {
            let req = spec.request();
            let at = spec.at();
            let d = w.decide(&req, at);
            let mut expected = Vec::new();
            let mut via_consent = false;
            let mut via_glass = false;
            for cat in &req.categories {
                for (code, by_consent) in model_release(&w.state, &consents, &req, cat, at, true) {
                    expected.push(code);
                    via_consent |= by_consent;
                    via_glass |= !by_consent;
                }
            }
            expected.sort();
            expected.dedup();
            prop_assert_eq!(d.released(), &expected[..]);
            prop_assert_eq!(d.is_allow(), !expected.is_empty());
            prop_assert_eq!(d.break_glass(), via_glass);
            prop_assert_eq!(!d.consents().is_empty(), via_consent);
            for id in d.consents() {
                let c = consents.iter().find(|c| &c.granted.consent_id == id).unwrap();
                prop_assert!(d.released().iter().any(|cat| model_covers(&w.state, c, &req, cat, at)));
            }
        }
    }

    /// After a revoke, no request relies on that consent, and a request that
    /// only it covered is denied.
    #[test]
    fn a_revoke_makes_later_requests_on_that_consent_deny(
        grant in grant_spec(),
        others in prop::collection::vec(grant_spec(), 0..6),
        reqs in prop::collection::vec(req_spec(), 1..10),
    ) {
        let mut w = World::new();
        let target = grant.grant("target");
        w.grant(target.clone());
        for (i, g) in others.iter().enumerate() {
            w.grant(g.grant(&format!("o{i}")));
        }
        // A request the target consent covers exactly, while it is active.
        let exact = Request {
            requester: target.recipients.agencies.first().cloned()
                .unwrap_or_else(|| "riverside-housing".into()),
            holder: target.holders.agencies.first().cloned()
                .unwrap_or_else(|| "harbor-clinic".into()),
            participant: target.participant.clone(),
            categories: target.categories.clone(),
            purpose: target.purposes[0].clone(),
        };
        w.revoke("target", &target.participant);
        let mut all: Vec<(Request, i64)> = reqs.iter().map(|s| (s.request(), s.at())).collect();
        all.push((exact, target.effective_at));
        let others_consents: Vec<ConsentView> = all_consents(&w.state, 0)
            .into_iter().filter(|c| c.granted.consent_id != "target").collect();
        for (req, at) in all {
            let d = w.decide(&req, at);
            prop_assert!(!d.consents().iter().any(|c| c == "target"));
            let still_covered = req.categories.iter().any(|cat| {
                !model_release(&w.state, &others_consents, &req, cat, at, true).is_empty()
            });
            if !still_covered {
                prop_assert!(!d.is_allow());
            }
        }
    }

    /// Replaying the log (as JSON bytes, parsed again) reproduces every
    /// decision, and each recorded decision passes `replay_check`.
    #[test]
    fn replaying_the_same_events_gives_the_same_decisions(
        grants in prop::collection::vec(grant_spec(), 0..10),
        revokes in prop::collection::vec(0usize..10, 0..4),
        reqs in prop::collection::vec(req_spec(), 1..10),
    ) {
        let live = build(&grants, &revokes);
        let mut replay = ConsentState::new(trust());
        for (i, event) in live.log.iter().enumerate() {
            let bytes = event.to_json().unwrap();
            let parsed = parse_event(&bytes).unwrap();
            let signers = signers_of(&parsed);
            let refs: Vec<&str> = signers.iter().map(String::as_str).collect();
            replay.apply(i as u64 + 1, &parsed, &refs).unwrap();
        }
        for (n, spec) in reqs.iter().enumerate() {
            let req = spec.request();
            let a = decide(&live.state, &req, spec.at());
            let b = decide(&replay, &req, spec.at());
            prop_assert_eq!(&a, &b);
            let logged = access_decided(&a, &req, spec.at(), &format!("d{n}"), rfc9421("digest"), None).unwrap();
            let bytes = Event::AccessDecided(logged).to_json().unwrap();
            let Event::AccessDecided(parsed) = parse_event(&bytes).unwrap() else {
                panic!("not an access.decided");
            };
            prop_assert_eq!(replay_check(&replay, &parsed), Ok(()));
        }
    }

    /// Granting the same consents in another order changes no decision.
    #[test]
    fn decisions_do_not_depend_on_the_order_of_unrelated_consents(
        grants in prop::collection::vec(grant_spec(), 1..12),
        seed in any::<u64>(),
        reqs in prop::collection::vec(req_spec(), 1..10),
    ) {
        let named: Vec<Grant> = grants.iter().enumerate()
            .map(|(i, g)| g.grant(&format!("c{i:03}"))).collect();
        let mut shuffled = named.clone();
        // A deterministic Fisher-Yates driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut a = World::new();
        let mut b = World::new();
        for g in named { a.grant(g); }
        for g in shuffled { b.grant(g); }
        for spec in &reqs {
            let req = spec.request();
            prop_assert_eq!(a.decide(&req, spec.at()), b.decide(&req, spec.at()));
        }
    }

    /// Whatever the strings, decide answers (never panics) and an unknown
    /// participant looks like one without consent.
    #[test]
    fn decide_is_total(
        requester in "[a-z-]{0,20}",
        holder in "[a-z-]{0,20}",
        participant in "[a-z0-9]{0,5}",
        categories in prop::collection::vec("[a-z.]{0,12}", 0..70),
        purpose in "[a-z-]{0,20}",
        at in any::<i64>(),
    ) {
        let mut w = World::new();
        w.grant(Grant::new("c1", "p1"));
        let req = Request { requester, holder, participant, categories, purpose };
        let d = w.decide(&req, at);
        prop_assert_eq!(d.is_allow(), !d.released().is_empty());
        let mut no_one = req.clone();
        no_one.participant = "zz-nobody".into();
        let mut no_consent = req.clone();
        no_consent.participant = "p3".into();
        prop_assert_eq!(w.decide(&no_one, at).agency_view(), w.decide(&no_consent, at).agency_view());
    }

    /// Arbitrary bytes never make the parser panic.
    #[test]
    fn parse_event_is_total(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }
}
