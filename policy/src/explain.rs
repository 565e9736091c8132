//! Plain-language explanations for people: consent summaries, decision and
//! reason sentences, the participant's timeline of who asked for what, and
//! dates (with a small civil-calendar conversion, since policy reads no
//! clock and takes no date library).

use crate::decision::Decision;
use crate::event::{AccessDecided, AccessReleased, Event, NoticeKind, ParticipantNotice};
use crate::state::{ConsentState, ConsentView};
use crate::vocab::Kind;
use crate::words::{Language, Outcome, Reason};

const SECONDS_PER_DAY: i64 = 86_400;

/// The proleptic Gregorian (year, month 1-12, day 1-31) of a unix time, UTC.
/// Howard Hinnant's days-from-civil inverse, on whole days.
pub fn civil_date(unix_seconds: i64) -> (i64, u32, u32) {
    let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are provably in range (1..=31, 1..=12); the fallbacks are unreachable.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Unix seconds at midnight UTC of a civil date (the inverse of `civil_date`).
pub fn unix_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let day_of_year = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era - 719_468) * SECONDS_PER_DAY
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

/// "31 March 2027" / "31 de marzo de 2027".
pub fn format_date(unix_seconds: i64, language: Language) -> String {
    let (year, month, day) = civil_date(unix_seconds);
    let index = usize::try_from(month.saturating_sub(1)).unwrap_or(0);
    match language {
        Language::En => {
            let name = MONTHS_EN.get(index).copied().unwrap_or("?");
            format!("{day} {name} {year}")
        }
        Language::Es => {
            let name = MONTHS_ES.get(index).copied().unwrap_or("?");
            format!("{day} de {name} de {year}")
        }
    }
}

/// "a, b and c" / "a, b y c".
fn join_list(items: &[String], language: Language) -> String {
    let and = match language {
        Language::En => " and ",
        Language::Es => " y ",
    };
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{and}{last}", init.join(", ")),
    }
}

fn recipients_phrase(state: &ConsentState, consent: &ConsentView, language: Language) -> String {
    let mut names: Vec<String> = consent
        .granted
        .recipients
        .agencies
        .iter()
        .map(|id| {
            state
                .agency(id)
                .map(|a| a.enrolled.name)
                .unwrap_or_else(|| id.clone())
        })
        .collect();
    names.extend(consent.granted.recipients.classes.iter().map(|c| {
        state
            .vocabulary()
            .label(Kind::Class, c, language)
            .to_owned()
    }));
    let joined = join_list(&names, language);
    // A sentence starting with a class label ("any clinic") needs a capital.
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => joined,
    }
}

/// The plain-language summary of a consent a participant reads, e.g.
/// "Riverside Housing may see your housing status and your treatment
/// attendance, to place you in housing, until 31 March 2027."
pub fn consent_summary(state: &ConsentState, consent: &ConsentView, language: Language) -> String {
    let vocabulary = state.vocabulary();
    let who = recipients_phrase(state, consent, language);
    let what: Vec<String> = consent
        .granted
        .categories
        .iter()
        .map(|c| vocabulary.label(Kind::Category, c, language).to_owned())
        .collect();
    let why: Vec<String> = consent
        .granted
        .purposes
        .iter()
        .map(|p| vocabulary.label(Kind::Purpose, p, language).to_owned())
        .collect();
    let what = join_list(&what, language);
    let why = join_list(&why, language);
    let until = format_date(consent.ends_at, language);
    // An until-revoked consent still ends at the maximum duration; the
    // person must read that date too.
    match (language, consent.granted.expires_at) {
        (Language::En, Some(_)) => format!("{who} may see {what}, {why}, until {until}."),
        (Language::En, None) => format!(
            "{who} may see {what}, {why}, until you revoke it or until {until}, whichever comes first."
        ),
        (Language::Es, Some(_)) => format!("{who} puede ver {what}, {why}, hasta el {until}."),
        (Language::Es, None) => format!(
            "{who} puede ver {what}, {why}, hasta que usted la revoque o hasta el {until}, lo que ocurra primero."
        ),
    }
}

/// One sentence per reason, for the participant's view of a decision.
pub fn reason_sentence(reason: Reason, language: Language) -> &'static str {
    reason.sentence(language)
}

/// A short account of a decision for the participant: what was shared (or
/// not) and why.
pub fn decision_summary(state: &ConsentState, decision: &Decision, language: Language) -> String {
    let vocabulary = state.vocabulary();
    let labels = |codes: &[String]| -> String {
        let l: Vec<String> = codes
            .iter()
            .map(|c| vocabulary.label(Kind::Category, c, language).to_owned())
            .collect();
        join_list(&l, language)
    };
    let mut out = match (decision, language) {
        (Decision::Allow(a), Language::En) => format!("Shared: {}.", labels(a.released())),
        (Decision::Allow(a), Language::Es) => format!("Se compartió: {}.", labels(a.released())),
        (Decision::Deny(_), Language::En) => "Nothing was shared.".to_owned(),
        (Decision::Deny(_), Language::Es) => "No se compartió nada.".to_owned(),
    };
    for reason in decision.reasons() {
        out.push(' ');
        out.push_str(reason.sentence(language));
    }
    out
}

/// An agency's enrolled name, or its id if the registry does not know it.
fn agency_name(state: &ConsentState, id: &str) -> String {
    state
        .agency(id)
        .map_or_else(|| id.to_owned(), |a| a.enrolled.name)
}

/// A decision, release or notice in the participant's words, undated (each
/// reader shows the time its own way), with its kind: `allowed`, `denied`,
/// `emergency`, `released` or `notice`. `asked_by` names the agency behind
/// a decision id, when the reader knows it, so that a release or a notice
/// names an agency rather than an id nobody can read. `None` for any other
/// event: the timeline shows only these.
pub fn timeline_sentence(
    state: &ConsentState,
    event: &Event,
    language: Language,
    asked_by: impl Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    match event {
        Event::AccessDecided(e) => Some(decided_sentence(state, e, language)),
        Event::AccessReleased(e) => Some((
            "released",
            released_sentence(state, e, language, asked_by(&e.decision_id)),
        )),
        Event::ParticipantNotice(e) => Some(("notice", notice_sentence(e, language, asked_by))),
        _ => None,
    }
}

/// Category labels, comma-separated, in the order given.
fn category_labels(state: &ConsentState, codes: &[String], language: Language) -> String {
    codes
        .iter()
        .map(|c| state.vocabulary().label(Kind::Category, c, language))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decided_sentence(
    state: &ConsentState,
    e: &AccessDecided,
    lang: Language,
) -> (&'static str, String) {
    let cats = |codes: &[String]| category_labels(state, codes, lang);
    let who = agency_name(state, &e.requester);
    let from = agency_name(state, &e.holder);
    let why = state.vocabulary().label(Kind::Purpose, &e.purpose, lang);
    let reasons = e
        .reasons
        .iter()
        .map(|r| r.sentence(lang))
        .collect::<Vec<_>>()
        .join(" ");
    let kind = match (e.outcome, e.break_glass) {
        (Outcome::Allow, true) => "emergency",
        (Outcome::Allow, false) => "allowed",
        (Outcome::Deny, _) => "denied",
    };
    let text = match (lang, kind) {
        (Language::En, "emergency") => format!(
            "EMERGENCY — {who} got {} from {from} without your consent, {why}. {reasons}",
            cats(&e.released)
        ),
        (Language::Es, "emergency") => format!(
            "EMERGENCIA — {who} obtuvo {} de {from} sin su consentimiento, {why}. {reasons}",
            cats(&e.released)
        ),
        (Language::En, "allowed") => format!(
            "{who} asked {from} for {}, {why}: allowed ({}).",
            cats(&e.categories),
            cats(&e.released)
        ),
        (Language::Es, "allowed") => format!(
            "{who} pidió a {from} {}, {why}: permitido ({}).",
            cats(&e.categories),
            cats(&e.released)
        ),
        (Language::En, _) => format!(
            "{who} asked {from} for {}, {why}: denied. {reasons}",
            cats(&e.categories)
        ),
        (Language::Es, _) => format!(
            "{who} pidió a {from} {}, {why}: denegado. {reasons}",
            cats(&e.categories)
        ),
    };
    (kind, text)
}

/// What left, by category and count, and how many records were withheld;
/// `who` is the agency that asked, when known.
fn released_sentence(
    state: &ConsentState,
    e: &AccessReleased,
    lang: Language,
    who: Option<String>,
) -> String {
    let dropped: u32 = e.dropped.iter().map(|c| c.count).sum();
    let sent = e
        .kept
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                state.vocabulary().label(Kind::Category, &c.category, lang),
                c.count
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    match (lang, who, sent.is_empty()) {
        (Language::En, Some(who), false) => {
            format!("sent to {who}: {sent}. {dropped} other record(s) withheld.")
        }
        (Language::En, None, false) => format!(
            "sent for request {}: {sent}. {dropped} other record(s) withheld.",
            e.decision_id
        ),
        (Language::En, _, true) => format!("nothing was sent ({dropped} record(s) withheld)."),
        (Language::Es, Some(who), false) => {
            format!("enviado a {who}: {sent}. {dropped} registro(s) más retenidos.")
        }
        (Language::Es, None, false) => format!(
            "enviado por la petición {}: {sent}. {dropped} registro(s) más retenidos.",
            e.decision_id
        ),
        (Language::Es, _, true) => format!("no se envió nada ({dropped} registro(s) retenidos)."),
    }
}

/// What a notice tells the person, in their language. `asked_by` names
/// the agency behind a decision, when the page knows it.
pub fn notice_sentence(
    e: &ParticipantNotice,
    lang: Language,
    asked_by: impl Fn(&str) -> Option<String>,
) -> String {
    let decision = e.decision_id.as_deref().unwrap_or("");
    let who = e.decision_id.as_deref().and_then(asked_by);
    match (NoticeKind::from_code(&e.kind), lang, who) {
        (Some(NoticeKind::KeyRotationRequested), Language::En, _) => "notice — someone asked to move your account to a new key. If it was not you, cancel it now: sign in with your current key and press \"Cancel the move\", or ask the board. Until it is settled nobody can grant a consent in your name; you can still revoke.".to_string(),
        (Some(NoticeKind::KeyRotationRequested), Language::Es, _) => "aviso — alguien pidió pasar su cuenta a una llave nueva. Si no fue usted, cancélelo ya: entre con su llave actual y pulse \"Cancelar el cambio\", o avise a la junta. Mientras tanto nadie puede dar un consentimiento en su nombre; usted sí puede revocar.".to_string(),
        (Some(NoticeKind::KeyRotationCancelled), Language::En, _) => "notice — the move to a new key was cancelled with your current key. The board has been told.".to_string(),
        (Some(NoticeKind::KeyRotationCancelled), Language::Es, _) => "aviso — el cambio a una llave nueva se canceló con su llave actual. Se avisó a la junta.".to_string(),
        (Some(NoticeKind::KeyRotationActivated), Language::En, _) => "notice — your new key is now your key; the old one no longer works.".to_string(),
        (Some(NoticeKind::KeyRotationActivated), Language::Es, _) => "aviso — su llave nueva ya es su llave; la anterior ya no sirve.".to_string(),
        (_, Language::En, Some(who)) => format!(
            "notice — {who} reached your records in an emergency. You are told because the rules require it, and you may file a grievance."
        ),
        (_, Language::En, None) => format!(
            "notice — your records were reached in an emergency (request {decision})."
        ),
        (_, Language::Es, Some(who)) => format!(
            "aviso — {who} accedió a sus expedientes en una emergencia. Se le avisa porque las reglas lo exigen, y puede presentar una queja."
        ),
        (_, Language::Es, None) => format!(
            "aviso — se accedió a sus expedientes en una emergencia (petición {decision})."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        let t = unix_from_civil(2027, 3, 31);
        assert_eq!(civil_date(t), (2027, 3, 31));
        assert_eq!(civil_date(t + 86_399), (2027, 3, 31));
        assert_eq!(format_date(t, Language::En), "31 March 2027");
        assert_eq!(format_date(t, Language::Es), "31 de marzo de 2027");
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        let mut day = unix_from_civil(1600, 1, 1);
        let end = unix_from_civil(2500, 1, 1);
        while day < end {
            let (y, m, d) = civil_date(day);
            assert_eq!(unix_from_civil(y, m, d), day);
            day += 86_400 * 7;
        }
    }
}
