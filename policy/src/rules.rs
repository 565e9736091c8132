//! Governance rules: what stands above any consent.

use serde::{Deserialize, Serialize};

use crate::limits::{json_len, LIST_ITEMS_MAX, RULES_JSON_BYTES_MAX};
use crate::vocab::{code_covers, is_valid_code, Kind, Vocabulary};

/// The default rules, as shipped.
pub const DEFAULT_RULES_TOML: &str = include_str!("../defaults/rules.toml");

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a rule set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("rules are not valid toml: {0}")]
    Toml(String),
    #[error("malformed code {0:?} in the rules")]
    MalformedCode(String),
    #[error("the rules name {kind} code {code:?}, which the vocabulary does not list")]
    UnknownCode { kind: &'static str, code: String },
    #[error("a rules list has more than {max} items")]
    TooMany { max: usize },
    #[error(
        "the rules are {bytes} bytes as json, more than the {max} a governance entry may carry"
    )]
    TooLarge { bytes: usize, max: usize },
    #[error("the maximum consent duration must be between 1 and 36500 days")]
    BadDuration,
    #[error("the waiting period for a participant's new key must be between 1 and 720 hours")]
    BadRotationWait,
    #[error("the break-glass purpose {0:?} is itself forbidden")]
    BreakGlassForbidden(String),
}

/// Medical-emergency access without consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlass {
    /// The purpose a request must state (or a purpose under it).
    pub purpose: String,
    /// Agencies allowed to break the glass, by id.
    #[serde(default)]
    pub agencies: Vec<String>,
    /// Agency classes allowed to break the glass.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Categories (with everything under them) break-glass may release.
    #[serde(default)]
    pub categories: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesSpec {
    forbidden_purposes: Vec<String>,
    consent_duration_days_max: u32,
    allow_until_revoked: bool,
    #[serde(default)]
    specific_recipient_categories: Vec<String>,
    #[serde(default)]
    break_glass: Option<BreakGlass>,
    /// Rules written before this field existed get the default.
    #[serde(default = "default_rotation_wait_hours")]
    participant_key_rotation_wait_hours: u32,
}

/// How long a participant's new key waits before it becomes current, so
/// that the person has time to see the notice and cancel a move they did
/// not ask for.
pub const ROTATION_WAIT_HOURS_DEFAULT: u32 = 72;
const ROTATION_WAIT_HOURS_MAX: u32 = 720;

fn default_rotation_wait_hours() -> u32 {
    ROTATION_WAIT_HOURS_DEFAULT
}

/// Validated governance rules; same serialised shape in TOML and JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RulesSpec", into = "RulesSpec")]
pub struct Rules {
    forbidden_purposes: Vec<String>,
    consent_duration_days_max: u32,
    allow_until_revoked: bool,
    specific_recipient_categories: Vec<String>,
    break_glass: Option<BreakGlass>,
    participant_key_rotation_wait_hours: u32,
}

fn check_codes(codes: &[String]) -> Result<(), RulesError> {
    if codes.len() > LIST_ITEMS_MAX {
        return Err(RulesError::TooMany {
            max: LIST_ITEMS_MAX,
        });
    }
    match codes.iter().find(|c| !is_valid_code(c)) {
        Some(bad) => Err(RulesError::MalformedCode(bad.clone())),
        None => Ok(()),
    }
}

impl TryFrom<RulesSpec> for Rules {
    type Error = RulesError;
    fn try_from(spec: RulesSpec) -> Result<Self, Self::Error> {
        // As a whole, so that any rules accepted here fit in one ledger
        // entry with the vocabulary (see `limits`).
        let bytes = json_len(&spec).unwrap_or(usize::MAX);
        if bytes > RULES_JSON_BYTES_MAX {
            return Err(RulesError::TooLarge {
                bytes,
                max: RULES_JSON_BYTES_MAX,
            });
        }
        check_codes(&spec.forbidden_purposes)?;
        check_codes(&spec.specific_recipient_categories)?;
        if spec.consent_duration_days_max == 0 || spec.consent_duration_days_max > 36_500 {
            return Err(RulesError::BadDuration);
        }
        if spec.participant_key_rotation_wait_hours == 0
            || spec.participant_key_rotation_wait_hours > ROTATION_WAIT_HOURS_MAX
        {
            return Err(RulesError::BadRotationWait);
        }
        if let Some(bg) = &spec.break_glass {
            check_codes(std::slice::from_ref(&bg.purpose))?;
            check_codes(&bg.classes)?;
            check_codes(&bg.categories)?;
            if bg.agencies.len() > LIST_ITEMS_MAX {
                return Err(RulesError::TooMany {
                    max: LIST_ITEMS_MAX,
                });
            }
            let forbidden = spec
                .forbidden_purposes
                .iter()
                .any(|f| code_covers(f, &bg.purpose) || code_covers(&bg.purpose, f));
            if forbidden {
                return Err(RulesError::BreakGlassForbidden(bg.purpose.clone()));
            }
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        Ok(Rules {
            forbidden_purposes: sorted(spec.forbidden_purposes),
            consent_duration_days_max: spec.consent_duration_days_max,
            allow_until_revoked: spec.allow_until_revoked,
            specific_recipient_categories: sorted(spec.specific_recipient_categories),
            break_glass: spec.break_glass,
            participant_key_rotation_wait_hours: spec.participant_key_rotation_wait_hours,
        })
    }
}

impl From<Rules> for RulesSpec {
    fn from(r: Rules) -> Self {
        RulesSpec {
            forbidden_purposes: r.forbidden_purposes,
            consent_duration_days_max: r.consent_duration_days_max,
            allow_until_revoked: r.allow_until_revoked,
            specific_recipient_categories: r.specific_recipient_categories,
            break_glass: r.break_glass,
            participant_key_rotation_wait_hours: r.participant_key_rotation_wait_hours,
        }
    }
}

impl Rules {
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let spec: RulesSpec =
            toml::from_str(text).map_err(|e| RulesError::Toml(e.message().to_owned()))?;
        Rules::try_from(spec)
    }

    /// The rules in force before any `governance.rules` entry.
    pub fn default_recovery() -> Self {
        match Rules::from_toml(DEFAULT_RULES_TOML) {
            Ok(r) => r,
            // Covered by a test; the fallback still forbids nothing it
            // should allow: no break-glass, short consents.
            Err(_) => Rules {
                forbidden_purposes: Vec::new(),
                consent_duration_days_max: 1,
                allow_until_revoked: false,
                specific_recipient_categories: Vec::new(),
                break_glass: None,
                participant_key_rotation_wait_hours: ROTATION_WAIT_HOURS_DEFAULT,
            },
        }
    }

    /// How long a requested participant key rotation waits, on the
    /// gateway's clock, before the gateway may activate it.
    pub fn participant_key_rotation_wait_seconds(&self) -> i64 {
        i64::from(self.participant_key_rotation_wait_hours) * 3600
    }

    /// Checks that every code the rules name is in `vocabulary`.
    pub fn validate(&self, vocabulary: &Vocabulary) -> Result<(), RulesError> {
        let need = |kind: Kind, code: &String| {
            if vocabulary.contains(kind, code) {
                Ok(())
            } else {
                Err(RulesError::UnknownCode {
                    kind: kind.as_str(),
                    code: code.clone(),
                })
            }
        };
        for p in &self.forbidden_purposes {
            need(Kind::Purpose, p)?;
        }
        for c in &self.specific_recipient_categories {
            need(Kind::Category, c)?;
        }
        if let Some(bg) = &self.break_glass {
            need(Kind::Purpose, &bg.purpose)?;
            for c in &bg.classes {
                need(Kind::Class, c)?;
            }
            for c in &bg.categories {
                need(Kind::Category, c)?;
            }
        }
        Ok(())
    }

    /// True if no consent may authorise `purpose` (it is, or is under, a
    /// forbidden purpose).
    pub fn is_forbidden(&self, purpose: &str) -> bool {
        self.forbidden_purposes
            .iter()
            .any(|f| code_covers(f, purpose))
    }

    /// True if `category` may only be released under a consent that names
    /// the recipient agency itself.
    pub fn needs_specific_recipient(&self, category: &str) -> bool {
        self.specific_recipient_categories
            .iter()
            .any(|c| code_covers(c, category))
    }

    /// True if a category needing a named recipient lies strictly under
    /// `category`: releasing `category` whole would release it too.
    pub fn has_specific_recipient_below(&self, category: &str) -> bool {
        self.specific_recipient_categories
            .iter()
            .any(|c| c != category && code_covers(category, c))
    }

    pub fn forbidden_purposes(&self) -> &[String] {
        &self.forbidden_purposes
    }

    pub fn specific_recipient_categories(&self) -> &[String] {
        &self.specific_recipient_categories
    }

    pub fn consent_duration_days_max(&self) -> u32 {
        self.consent_duration_days_max
    }

    pub fn consent_duration_seconds_max(&self) -> i64 {
        i64::from(self.consent_duration_days_max) * SECONDS_PER_DAY
    }

    pub fn allow_until_revoked(&self) -> bool {
        self.allow_until_revoked
    }

    pub fn break_glass(&self) -> Option<&BreakGlass> {
        self.break_glass.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_parse_and_fit_default_vocabulary() {
        let r = Rules::from_toml(DEFAULT_RULES_TOML).unwrap();
        r.validate(&Vocabulary::default_recovery()).unwrap();
        assert!(r.is_forbidden("criminal-investigation"));
        assert!(r.needs_specific_recipient("justice.court-compliance"));
        assert!(!r.needs_specific_recipient("social.housing"));
        assert!(r.has_specific_recipient_below("health"));
        assert!(!r.has_specific_recipient_below("health.mental"));
        assert!(!r.has_specific_recipient_below("health.sud"));
        assert_eq!(r, Rules::default_recovery());
    }

    #[test]
    fn break_glass_cannot_be_forbidden() {
        let text = "forbidden_purposes = [\"x\"]\nconsent_duration_days_max = 1\nallow_until_revoked = false\n[break_glass]\npurpose = \"x\"\n";
        assert!(matches!(
            Rules::from_toml(text),
            Err(RulesError::BreakGlassForbidden(_))
        ));
    }
}
