//! `consentry audit report`: what the log says happened, for a community
//! advisory board, an ombudsperson or a regulator. Per agency and purpose,
//! requests allowed and denied; every emergency access; consents granted,
//! revoked and expired; how long after each revocation the first request
//! was denied; grievances and their status. As text, JSON, or one
//! self-contained HTML page with its charts drawn as inline SVG.
//!
//! Agencies are named. Participants appear only as pseudonyms, and only
//! when the auditor asks for them (`with_pseudonyms`); consent ids, which
//! link a person's entries together, likewise.

use std::collections::{BTreeMap, HashMap};

use ledger::Envelope;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use policy::{
    parse_event, AccessDecided, ConsentRevoked, ConsentState, Event, Language, Outcome, Reason,
    Trust,
};
use serde::Serialize;

use crate::bundle::{Bundle, BundleError};
use crate::tiles::TILE_WIDTH;

#[derive(Clone, Debug, Default, Serialize)]
pub struct AgencyPurpose {
    pub agency: String,
    pub name: String,
    pub purpose: String,
    pub allowed: u64,
    pub denied: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Emergency {
    pub index: u64,
    pub at: i64,
    pub requester: String,
    pub holder: String,
    pub released: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RevokeToDeny {
    pub revoked_index: u64,
    pub revoked_at: i64,
    /// The first request denied for the revocation, if any came.
    pub denied_index: Option<u64>,
    pub seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GrievanceRow {
    pub index: u64,
    pub reason: String,
    pub status: String,
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
}

/// A participant's key move cancelled by their current key: for the board
/// to look into (someone may have tried to take the key).
#[derive(Clone, Debug, Serialize)]
pub struct CancelledMove {
    /// The entry that asked for the move.
    pub requested_index: u64,
    pub requested_at: i64,
    pub cancelled_index: u64,
    pub cancelled_at: i64,
    /// The organisation that co-signed the request, by name.
    pub asked_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConsentCounts {
    pub granted: u64,
    pub revoked: u64,
    pub expired: u64,
    pub active: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub log: String,
    pub entries: u64,
    /// The time of the last entry: "now" for expiry.
    pub as_of: i64,
    pub requests: Vec<AgencyPurpose>,
    pub refused_unauthenticated: u64,
    pub emergencies: Vec<Emergency>,
    pub consents: ConsentCounts,
    pub revocations: Vec<RevokeToDeny>,
    pub grievances: Vec<GrievanceRow>,
    pub cancelled_key_moves: Vec<CancelledMove>,
    pub with_pseudonyms: bool,
}

struct PendingRevoke {
    row: usize,
    agencies: Vec<String>,
    classes: Vec<String>,
}

fn name_of(state: &ConsentState, id: &str) -> String {
    state
        .agency(id)
        .map_or_else(|| id.to_string(), |a| a.enrolled.name)
}

/// Reads every entry of `bundle` (check it with `verify` first: this
/// trusts what it reads) and counts.
pub fn report(bundle: &Bundle, with_pseudonyms: bool) -> Result<Report, BundleError> {
    let size = bundle.checkpoint.size;
    let mut counts = Counts::new(bundle.trust.clone(), with_pseudonyms);
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let tile = bundle.read_tile(n)?;
        for (i, env) in tile.envelopes.iter().enumerate() {
            counts.entry(n * TILE_WIDTH + i as u64, env);
        }
    }
    Ok(counts.finish(bundle.log_key.name(), size))
}

/// The counts so far, with the state replayed up to the entry read.
struct Counts {
    with_pseudonyms: bool,
    state: ConsentState,
    requests: BTreeMap<(String, String), AgencyPurpose>,
    refused: u64,
    emergencies: Vec<Emergency>,
    consents: ConsentCounts,
    /// Each consent's end, and whether it was revoked.
    ends: HashMap<String, (i64, bool)>,
    revocations: Vec<RevokeToDeny>,
    /// Revocations not yet followed by a denied request, by participant.
    pending: HashMap<String, Vec<PendingRevoke>>,
    /// The time of the latest entry so far.
    as_of: i64,
}

impl Counts {
    fn new(trust: Trust, with_pseudonyms: bool) -> Self {
        Self {
            with_pseudonyms,
            state: ConsentState::new(trust),
            requests: BTreeMap::new(),
            refused: 0,
            emergencies: Vec::new(),
            consents: ConsentCounts::default(),
            ends: HashMap::new(),
            revocations: Vec::new(),
            pending: HashMap::new(),
            as_of: 0,
        }
    }

    fn pseudonym(&self, p: &str) -> Option<String> {
        self.with_pseudonyms.then(|| p.to_string())
    }

    /// Counts the entry at `index`, then applies it.
    fn entry(&mut self, index: u64, env: &Envelope) {
        let Ok(event) = parse_event(&env.entry) else {
            return;
        };
        match &event {
            Event::AccessDecided(d) => self.decided(index, d),
            Event::AccessRefused(r) => {
                self.as_of = self.as_of.max(r.at);
                // Claimed key ids are never counted against the
                // organisation that holds them: a stranger can claim
                // any key id.
                self.refused += r.requests();
            }
            Event::ConsentGranted(g) => {
                self.as_of = self.as_of.max(g.signed_at);
                self.consents.granted += 1;
            }
            Event::ConsentRevoked(r) => self.revoked(index, r),
            _ => {}
        }
        let signers: Vec<&str> = env.signatures.iter().map(|s| s.key_id.as_str()).collect();
        let _ = self.state.apply(index, &event, &signers);
        if let Event::ConsentGranted(g) = &event {
            if let Some(c) = self.state.consent(&g.consent_id) {
                self.ends.insert(g.consent_id.clone(), (c.ends_at, false));
            }
        }
        if let Event::ConsentRevoked(r) = &event {
            if let Some(e) = self.ends.get_mut(&r.consent_id) {
                e.1 = true;
            }
        }
    }

    fn decided(&mut self, index: u64, d: &AccessDecided) {
        self.as_of = self.as_of.max(d.at);
        let state = &self.state;
        let row = self
            .requests
            .entry((d.requester.clone(), d.purpose.clone()))
            .or_insert_with(|| AgencyPurpose {
                agency: d.requester.clone(),
                name: name_of(state, &d.requester),
                purpose: d.purpose.clone(),
                ..Default::default()
            });
        match d.outcome {
            Outcome::Allow => row.allowed += 1,
            Outcome::Deny => row.denied += 1,
        }
        if d.break_glass {
            self.emergencies.push(Emergency {
                index,
                at: d.at,
                requester: name_of(&self.state, &d.requester),
                holder: name_of(&self.state, &d.holder),
                released: d.released.clone(),
                participant: self.pseudonym(&d.participant),
            });
        }
        if d.outcome == Outcome::Deny && d.reasons.contains(&Reason::ConsentRevoked) {
            self.first_denial(index, d);
        }
    }

    /// A request denied for a revoked consent: the first one after each
    /// pending revocation that covered its requester.
    fn first_denial(&mut self, index: u64, d: &AccessDecided) {
        let classes = self
            .state
            .agency(&d.requester)
            .map(|a| a.enrolled.classes)
            .unwrap_or_default();
        let Some(list) = self.pending.get_mut(&d.participant) else {
            return;
        };
        let revocations = &mut self.revocations;
        list.retain(|p| {
            let covers =
                p.agencies.contains(&d.requester) || p.classes.iter().any(|c| classes.contains(c));
            if covers {
                let r = &mut revocations[p.row];
                r.denied_index = Some(index);
                r.seconds = Some(d.at - r.revoked_at);
            }
            !covers
        });
    }

    fn revoked(&mut self, index: u64, r: &ConsentRevoked) {
        self.as_of = self.as_of.max(r.at);
        let Some(c) = self.state.consent(&r.consent_id) else {
            return;
        };
        if c.revocation.is_some() {
            return;
        }
        self.pending
            .entry(r.participant.clone())
            .or_default()
            .push(PendingRevoke {
                row: self.revocations.len(),
                agencies: c.granted.recipients.agencies.clone(),
                classes: c.granted.recipients.classes.clone(),
            });
        self.revocations.push(RevokeToDeny {
            revoked_index: index,
            revoked_at: r.at,
            denied_index: None,
            seconds: None,
            consent: self.with_pseudonyms.then(|| r.consent_id.clone()),
        });
    }

    fn finish(mut self, log: &str, entries: u64) -> Report {
        for (ends_at, revoked) in self.ends.values() {
            if *revoked {
                self.consents.revoked += 1;
            } else if *ends_at <= self.as_of {
                self.consents.expired += 1;
            } else {
                self.consents.active += 1;
            }
        }
        let grievances = self
            .state
            .grievances()
            .iter()
            .map(|g| GrievanceRow {
                index: g.filed_index,
                reason: g.filed.reason.sentence(Language::En).to_string(),
                status: if g.resolution.is_some() {
                    "answered"
                } else {
                    "open"
                }
                .to_string(),
                outcome: g
                    .resolution
                    .as_ref()
                    .map(|(r, _)| r.outcome.sentence(Language::En).to_string()),
                participant: self.pseudonym(&g.filed.participant),
            })
            .collect();
        let cancelled_key_moves = self
            .state
            .cancelled_rotations()
            .iter()
            .map(|c| CancelledMove {
                requested_index: c.rotation.index,
                requested_at: c.rotation.requested_at,
                cancelled_index: c.cancelled_index,
                cancelled_at: c.cancelled_at,
                asked_by: name_of(&self.state, &c.rotation.assisted_by),
                participant: self.pseudonym(&c.rotation.participant),
            })
            .collect();
        Report {
            log: log.to_string(),
            entries,
            as_of: self.as_of,
            requests: self.requests.into_values().collect(),
            refused_unauthenticated: self.refused,
            emergencies: self.emergencies,
            consents: self.consents,
            revocations: self.revocations,
            grievances,
            cancelled_key_moves,
            with_pseudonyms: self.with_pseudonyms,
        }
    }
}

fn when(at: i64) -> String {
    let (y, m, d) = policy::civil_date(at);
    let s = at.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60
    )
}

fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

pub fn text(r: &Report) -> String {
    let mut out = format!(
        "Audit report for {} ({} entries, as of {})\n\nRequests by agency and purpose\n",
        r.log,
        r.entries,
        when(r.as_of)
    );
    for a in &r.requests {
        out.push_str(&format!(
            "  {:<32} {:<22} allowed {:>7}  denied {:>7}\n",
            a.name, a.purpose, a.allowed, a.denied
        ));
    }
    out.push_str(&format!(
        "  unauthenticated requests refused: {}\n\nEmergency accesses ({})\n",
        r.refused_unauthenticated,
        r.emergencies.len()
    ));
    for e in &r.emergencies {
        out.push_str(&format!(
            "  #{} {} {} got {} from {}{}\n",
            e.index,
            when(e.at),
            e.requester,
            e.released.join(", "),
            e.holder,
            e.participant
                .as_deref()
                .map(|p| format!(" (participant {p})"))
                .unwrap_or_default()
        ));
    }
    let c = &r.consents;
    out.push_str(&format!(
        "\nConsents: {} granted, {} revoked, {} expired, {} active\n\nFrom each revocation to its first denied request\n",
        c.granted, c.revoked, c.expired, c.active
    ));
    for v in &r.revocations {
        out.push_str(&format!(
            "  revoked at #{} ({}){}: {}\n",
            v.revoked_index,
            when(v.revoked_at),
            v.consent
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            match (v.denied_index, v.seconds) {
                (Some(i), Some(s)) => format!("first denied at #{i}, {} later", duration(s)),
                _ => "no request since".to_string(),
            }
        ));
    }
    out.push_str(&format!("\nGrievances ({})\n", r.grievances.len()));
    for g in &r.grievances {
        out.push_str(&format!(
            "  #{} {}: {}{}\n",
            g.index,
            g.status,
            g.reason,
            g.outcome
                .as_deref()
                .map(|o| format!(" → {o}"))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "\nKey moves cancelled by the person's own key: for the board to look into ({})\n",
        r.cancelled_key_moves.len()
    ));
    for c in &r.cancelled_key_moves {
        out.push_str(&format!(
            "  asked at #{} ({}) by {}, cancelled at #{} ({}){}\n",
            c.requested_index,
            when(c.requested_at),
            c.asked_by,
            c.cancelled_index,
            when(c.cancelled_at),
            c.participant
                .as_deref()
                .map(|p| format!(" (participant {p})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// Horizontal bars, allowed and denied side by side, one row per agency
/// and purpose; each bar is labelled with its number, not colour alone.
fn bars(rows: &[AgencyPurpose]) -> Markup {
    let max = rows
        .iter()
        .map(|r| r.allowed.max(r.denied))
        .max()
        .unwrap_or(1)
        .max(1);
    let row_h = 52;
    let height = rows.len() * row_h + 10;
    // 320 units wide: on a 360 px phone a unit is about a pixel, so the
    // labels stay readable; the numbers sit beside the bars.
    let width_of = |n: u64| 4 + (n as f64 / max as f64 * 200.0) as u64;
    html! {
        svg class="chart" viewBox={ "0 0 320 " (height) } role="img"
            aria-label="Requests allowed and denied per agency and purpose" {
            @for (i, r) in rows.iter().enumerate() {
                @let y = i * row_h + 4;
                text x="0" y=(y + 12) class="label" { (r.name) " · " (r.purpose) }
                rect x="0" y=(y + 17) width=(width_of(r.allowed)) height="13" class="allowed" {}
                text x=(width_of(r.allowed) + 6) y=(y + 28) class="n" { (r.allowed) " allowed" }
                rect x="0" y=(y + 33) width=(width_of(r.denied)) height="13" class="denied" {}
                text x=(width_of(r.denied) + 6) y=(y + 44) class="n" { (r.denied) " denied" }
            }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#1a1a1a;line-height:1.5;max-width:48rem}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #c4c8cf}\
table{border-collapse:collapse;width:100%;font-size:.95rem}th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #e1e4e8;vertical-align:top}\
td.num,th.num{text-align:right}.chart{width:100%;height:auto}.chart .label{font-size:13px;fill:#1a1a1a}\
.chart .n{font-size:12px;fill:#1a1a1a}.chart .allowed{fill:#1d5e20}.chart .denied{fill:#a00000}\
.tiles{display:flex;flex-wrap:wrap;gap:.5rem}.tile{border:1px solid #8a9099;border-radius:4px;padding:.5rem .75rem;min-width:7rem}\
.tile strong{display:block;font-size:1.4rem}.emergency{border-left:6px double #a00000;padding-left:.5rem}\
.scroll{overflow-x:auto}@media (max-width:30rem){table{font-size:.85rem}th,td{padding:.25rem .2rem}}td{overflow-wrap:anywhere}";

pub fn html(r: &Report) -> String {
    let c = &r.consents;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Audit report · " (r.log) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "Audit report" }
                    p { "Log " code { (r.log) } ", " (r.entries) " entries, as of " (when(r.as_of)) "." }
                    p { "Agencies are named; participants "
                        @if r.with_pseudonyms { "appear by pseudonym only, as the auditor asked." }
                        @else { "do not appear." } }
                    h2 { "Requests by agency and purpose" }
                    (bars(&r.requests))
                    // A wide table scrolls inside its own region, which the
                    // keyboard can reach.
                    div class="scroll" tabindex="0" role="region" aria-label="Requests by agency and purpose, as a table" {
                        table {
                            thead { tr { th { "Agency" } th { "Purpose" } th class="num" { "Allowed" } th class="num" { "Denied" } } }
                            tbody {
                                @for a in &r.requests {
                                    tr { td { (a.name) } td { (a.purpose) } td class="num" { (a.allowed) } td class="num" { (a.denied) } }
                                }
                            }
                        }
                    }
                    p { "Unauthenticated requests refused: " (r.refused_unauthenticated) }
                    h2 { "Emergency accesses (" (r.emergencies.len()) ")" }
                    @if r.emergencies.is_empty() { p { "None." } }
                    ul {
                        @for e in &r.emergencies {
                            li class="emergency" {
                                "Entry #" (e.index) ", " (when(e.at)) ": " strong { (e.requester) } " got "
                                (e.released.join(", ")) " from " (e.holder)
                                @if let Some(p) = &e.participant { " (participant " code { (p) } ")" }
                            }
                        }
                    }
                    h2 { "Consents" }
                    div class="tiles" {
                        div class="tile" { strong { (c.granted) } "granted" }
                        div class="tile" { strong { (c.revoked) } "revoked" }
                        div class="tile" { strong { (c.expired) } "expired" }
                        div class="tile" { strong { (c.active) } "active" }
                    }
                    h2 { "From each revocation to its first denied request" }
                    @if r.revocations.is_empty() { p { "No consent was revoked." } }
                    div class="scroll" tabindex="0" role="region" aria-label="Revocations and their first denials" {
                        table {
                            thead { tr { th { "Revoked" } th { "First denied" } th class="num" { "After" } } }
                            tbody {
                                @for v in &r.revocations {
                                    tr {
                                        td { "#" (v.revoked_index) " " (when(v.revoked_at)) @if let Some(c) = &v.consent { " " code { (c) } } }
                                        td { @match v.denied_index { Some(i) => { "#" (i) }, None => "no request since" } }
                                        td class="num" { @if let Some(s) = v.seconds { (duration(s)) } }
                                    }
                                }
                            }
                        }
                    }
                    h2 { "Grievances (" (r.grievances.len()) ")" }
                    @if r.grievances.is_empty() { p { "None filed." } }
                    ul {
                        @for g in &r.grievances {
                            li { "Entry #" (g.index) ", " strong { (g.status) } ": " (g.reason)
                                @if let Some(o) = &g.outcome { " Answer: " (o) }
                                @if let Some(p) = &g.participant { " (participant " code { (p) } ")" } }
                        }
                    }
                    h2 { "Key moves cancelled by the person (" (r.cancelled_key_moves.len()) ")" }
                    p { "Each is a request to move a participant's key that their own key cancelled: someone may have tried to take it. The board looks into each." }
                    @if r.cancelled_key_moves.is_empty() { p { "None." } }
                    ul {
                        @for c in &r.cancelled_key_moves {
                            li { "Asked at entry #" (c.requested_index) " by " (c.asked_by) ", cancelled at entry #" (c.cancelled_index)
                                @if let Some(p) = &c.participant { " (participant " code { (p) } ")" } }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}
