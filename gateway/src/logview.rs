//! `consentry log tail`: the recent entries in plain words, for a person
//! watching a deployment. Names come from the registry entries in the log
//! itself; nothing of record content is in the log, so none is shown.
//!
//! It reads the entry segment without a lock, even while the gateway runs:
//! frames are never rewritten, and one still being written is skipped. It is
//! a viewer: it checks frame checksums but not signatures (`consentry fsck`
//! and the auditor's verifier do that).

use std::collections::HashMap;
use std::path::Path;

use ledger::segment::Segment;
use ledger::Envelope;
use policy::{parse_event, Event, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum LogViewError {
    #[error("cannot read the log in {0}: {1}")]
    Store(String, ledger::StoreError),
    #[error("entry {0} is unreadable: {1}")]
    Entry(u64, String),
}

/// `HH:MM:SS` (UTC) of a unix time.
fn clock(at: i64) -> String {
    let s = at.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// The last `n` entries of the store in `data_dir`, one line each.
pub fn tail(data_dir: &Path, n: usize) -> Result<Vec<String>, LogViewError> {
    let path = data_dir.join(ledger::store::SEGMENT_FILE);
    let shown = path.display().to_string();
    let mut seg =
        Segment::open_snapshot(&path).map_err(|e| LogViewError::Store(shown.clone(), e))?;
    let scan = seg
        .recover(0, 0)
        .map_err(|e| LogViewError::Store(shown.clone(), e))?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::with_capacity(scan.records.len());
    for (i, pos) in scan.records.iter().enumerate() {
        let i = i as u64;
        let rec = seg
            .read(*pos)
            .map_err(|e| LogViewError::Entry(i, e.to_string()))?;
        let env = Envelope::decode(&rec).map_err(|e| LogViewError::Entry(i, e.to_string()))?;
        let line = match parse_event(&env.entry) {
            Ok(event) => {
                if let Event::AgencyEnrolled(e) = &event {
                    names.insert(e.agency.clone(), e.name.clone());
                }
                describe(i, &event, &names)
            }
            Err(e) => format!("#{i} an entry this version cannot read ({e})"),
        };
        lines.push(line);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

fn describe(i: u64, event: &Event, names: &HashMap<String, String>) -> String {
    let name = |id: &str| match names.get(id) {
        Some(n) => format!("{n} ({id})"),
        None => id.to_string(),
    };
    let at = clock(event.at());
    let what = match event {
        Event::GovernanceRules(e) => format!("governance set rules version {}", e.version),
        Event::AgencyEnrolled(e) => format!("governance enrolled {}", name(&e.agency)),
        Event::AgencyKeyRotated(e) => {
            format!("{} rotated its key to {}", name(&e.agency), e.key_id)
        }
        Event::AgencyRetired(e) => format!("governance retired {}", name(&e.agency)),
        Event::BoardChanged(e) => format!(
            "the board changed: added [{}], removed [{}], quorum {}",
            e.add
                .iter()
                .map(|m| m.key_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            e.remove.join(", "),
            e.quorum
        ),
        Event::ParticipantEnrolled(e) => format!(
            "participant {} enrolled at {}",
            e.participant,
            name(&e.enrolled_by)
        ),
        Event::ParticipantKeyRotated(e) => format!(
            "{}'s move to a new key {} was requested (in person at {}); it waits, and the person is told",
            e.participant,
            e.key_id,
            name(&e.assisted_by)
        ),
        Event::GrievanceFiled(e) => format!(
            "{} filed grievance {} about {}: {}",
            e.participant,
            e.grievance_id,
            e.decision_id,
            e.reason.code()
        ),
        Event::GrievanceResolved(e) => format!(
            "governance resolved grievance {}: {}",
            e.grievance_id,
            e.outcome.code()
        ),
        Event::ConsentGranted(e) => format!(
            "{} granted consent {}: {} may receive {} from {} for {}",
            e.participant,
            e.consent_id,
            parties(&e.recipients, &name),
            list(&e.categories),
            parties(&e.holders, &name),
            list(&e.purposes)
        ),
        Event::ConsentRevoked(e) => match &e.assisted_by {
            Some(a) => format!(
                "{} revoked consent {} (assisted by {})",
                e.participant,
                e.consent_id,
                name(a)
            ),
            None => format!("{} revoked consent {}", e.participant, e.consent_id),
        },
        Event::AccessDecided(e) => decided(e, &name),
        Event::AccessReleased(e) => released(e),
        Event::AccessRefused(e) => refused(e),
        Event::ParticipantNotice(e) => format!(
            "notice for {}: {}{}",
            e.participant,
            e.kind,
            match (&e.decision_id, e.entry_index) {
                (Some(d), _) => format!(" (decision {d})"),
                (None, Some(i)) => format!(" (entry #{i})"),
                (None, None) => String::new(),
            }
        ),
        Event::ParticipantKeyActivated(e) => format!(
            "{}'s new key {} is now current (rotation #{})",
            e.participant, e.key_id, e.rotation_index
        ),
        Event::ParticipantRotationCancelled(e) => format!(
            "{} cancelled the move to key {} with their current key",
            e.participant, e.key_id
        ),
    };
    format!("{at} #{i} {what}")
}

/// Who asked whom for what, and the outcome with its codes.
fn decided(e: &policy::AccessDecided, name: &dyn Fn(&str) -> String) -> String {
    let outcome = match e.outcome {
        Outcome::Allow if e.break_glass => format!(
            "EMERGENCY access allowed for {} without consent",
            list(&e.released)
        ),
        Outcome::Allow => format!(
            "allowed {} (consent {})",
            list(&e.released),
            list(&e.consents)
        ),
        Outcome::Deny => format!(
            "denied ({})",
            e.reasons
                .iter()
                .map(|r| r.code())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "{} asked {} for {}'s {} for {}: {outcome}",
        name(&e.requester),
        name(&e.holder),
        e.participant,
        list(&e.categories),
        e.purpose
    )
}

/// How many records left and their hash's start, or why nothing did.
fn released(e: &policy::AccessReleased) -> String {
    match &e.problem {
        Some(p) => format!("released nothing for {} ({p})", e.decision_id),
        None => {
            let kept: u32 = e.kept.iter().map(|c| c.count).sum();
            let dropped: Vec<String> = e
                .dropped
                .iter()
                .map(|c| format!("{} {}", c.count, c.category))
                .collect();
            format!(
                "released {kept} record(s) for {}, sha256 {}…; withheld {}",
                e.decision_id,
                e.released_sha256.get(..12).unwrap_or(""),
                list(&dropped)
            )
        }
    }
}

/// A refused request, or a summary of unauthenticated ones with the key
/// ids they claimed (claims, never verified).
fn refused(e: &policy::AccessRefused) -> String {
    match (&e.verified_key_id, e.count) {
        (Some(k), _) => format!(
            "refused a request signed by {k} before deciding it ({})",
            e.reason
        ),
        (None, Some(n)) => format!(
            "refused {n} unauthenticated request(s) since {} ({}){}",
            clock(e.from.unwrap_or(e.at)),
            e.reason,
            if e.claimed.is_empty() {
                String::new()
            } else {
                format!(
                    "; key ids claimed, not verified: {}",
                    e.claimed
                        .iter()
                        .map(|c| format!("{} x{}", c.key_id, c.count))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        (None, None) => format!(
            "refused an unauthenticated request ({}){}",
            e.reason,
            e.claimed_key_id
                .as_deref()
                .map(|k| format!(", claimed key {k} (not verified)"))
                .unwrap_or_default()
        ),
    }
}

fn parties(p: &policy::Parties, name: &dyn Fn(&str) -> String) -> String {
    let mut all: Vec<String> = p.agencies.iter().map(|a| name(a)).collect();
    all.extend(p.classes.iter().map(|c| format!("any {c}")));
    list(&all)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(super::clock(1_800_000_000), "08:00:00");
        assert_eq!(super::clock(59), "00:00:59");
    }
}
