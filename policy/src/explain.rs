//! Plain-language explanations for people: consent summaries, decision and
//! reason sentences, and dates (with a small civil-calendar conversion, since
//! policy reads no clock and takes no date library).

use crate::decision::Decision;
use crate::state::{ConsentState, ConsentView};
use crate::vocab::Kind;
use crate::words::{Language, Reason};

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
