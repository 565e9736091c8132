//! The vocabulary: hierarchical codes for data categories, purposes and
//! agency classes, each with an English and a Spanish label.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::limits::{
    json_len, CODE_BYTES_MAX, LABEL_BYTES_MAX, VOCABULARY_JSON_BYTES_MAX, VOCABULARY_TERMS_MAX,
};
use crate::words::Language;

/// The default vocabulary for recovery services, as shipped.
pub const DEFAULT_VOCABULARY_TOML: &str = include_str!("../defaults/vocabulary.toml");

/// Which list of the vocabulary a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Category,
    Purpose,
    Class,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Category => "category",
            Kind::Purpose => "purpose",
            Kind::Class => "class",
        }
    }
}

/// Why a vocabulary (or a code in it) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabularyError {
    #[error("vocabulary is not valid toml: {0}")]
    Toml(String),
    #[error("malformed {kind} code {code:?}: lowercase letters, digits and '-', dot-separated")]
    MalformedCode { kind: &'static str, code: String },
    #[error("{kind} code {code:?} is listed twice")]
    Duplicate { kind: &'static str, code: String },
    #[error("{kind} code {code:?} has no listed parent {parent:?}")]
    MissingParent {
        kind: &'static str,
        code: String,
        parent: String,
    },
    #[error(
        "{kind} code {code:?} has an empty or oversized label, or one with control characters"
    )]
    BadLabel { kind: &'static str, code: String },
    #[error("too many {kind} codes (at most {max})")]
    TooMany { kind: &'static str, max: usize },
    #[error(
        "the vocabulary is {bytes} bytes as json, more than the {max} a governance entry may carry"
    )]
    TooLarge { bytes: usize, max: usize },
}

/// A code with its plain-language labels; the serialised form of one term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub code: String,
    pub en: String,
    pub es: String,
}

impl Term {
    pub fn label(&self, language: Language) -> &str {
        match language {
            Language::En => &self.en,
            Language::Es => &self.es,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularySpec {
    categories: Vec<Term>,
    purposes: Vec<Term>,
    classes: Vec<Term>,
}

/// A validated vocabulary. It serialises to the same shape it is read
/// from (TOML or JSON), so a `governance.rules` entry can carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabularySpec", into = "VocabularySpec")]
pub struct Vocabulary {
    categories: BTreeMap<String, Term>,
    purposes: BTreeMap<String, Term>,
    classes: BTreeMap<String, Term>,
}

/// True if `code` is well formed: dot-separated segments of `[a-z0-9-]`,
/// each starting with a letter or digit.
pub fn is_valid_code(code: &str) -> bool {
    if code.is_empty() || code.len() > CODE_BYTES_MAX {
        return false;
    }
    code.split('.').all(|segment| {
        let mut bytes = segment.bytes();
        match bytes.next() {
            Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
            _ => return false,
        }
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The parent of a dotted code (`health.sud` for `health.sud.treatment`).
pub fn parent_code(code: &str) -> Option<&str> {
    code.rfind('.').and_then(|dot| code.get(..dot))
}

/// True if a grant of `granted` covers `requested`: the same code or one of
/// its ancestors. Never the reverse: a child does not cover its parent.
pub fn code_covers(granted: &str, requested: &str) -> bool {
    match requested.strip_prefix(granted) {
        Some("") => true,
        Some(rest) => rest.starts_with('.'),
        None => false,
    }
}

fn build_list(kind: Kind, terms: Vec<Term>) -> Result<BTreeMap<String, Term>, VocabularyError> {
    let kind_name = kind.as_str();
    if terms.len() > VOCABULARY_TERMS_MAX {
        return Err(VocabularyError::TooMany {
            kind: kind_name,
            max: VOCABULARY_TERMS_MAX,
        });
    }
    let mut map = BTreeMap::new();
    for term in terms {
        if !is_valid_code(&term.code) {
            return Err(VocabularyError::MalformedCode {
                kind: kind_name,
                code: term.code,
            });
        }
        // Labels are phrases for people; a control character is never one.
        let label_ok = |l: &str| {
            !l.trim().is_empty() && l.len() <= LABEL_BYTES_MAX && !l.chars().any(char::is_control)
        };
        if !label_ok(&term.en) || !label_ok(&term.es) {
            return Err(VocabularyError::BadLabel {
                kind: kind_name,
                code: term.code,
            });
        }
        if map.contains_key(&term.code) {
            return Err(VocabularyError::Duplicate {
                kind: kind_name,
                code: term.code,
            });
        }
        map.insert(term.code.clone(), term);
    }
    // Checked after collecting so that terms may be listed in any order.
    for code in map.keys() {
        if let Some(parent) = parent_code(code) {
            if !map.contains_key(parent) {
                return Err(VocabularyError::MissingParent {
                    kind: kind_name,
                    code: code.clone(),
                    parent: parent.to_owned(),
                });
            }
        }
    }
    Ok(map)
}

impl TryFrom<VocabularySpec> for Vocabulary {
    type Error = VocabularyError;
    fn try_from(spec: VocabularySpec) -> Result<Self, Self::Error> {
        // Checked first and as a whole, so that any vocabulary accepted here
        // fits in one ledger entry with the rules (see `limits`).
        let bytes = json_len(&spec).unwrap_or(usize::MAX);
        if bytes > VOCABULARY_JSON_BYTES_MAX {
            return Err(VocabularyError::TooLarge {
                bytes,
                max: VOCABULARY_JSON_BYTES_MAX,
            });
        }
        Ok(Vocabulary {
            categories: build_list(Kind::Category, spec.categories)?,
            purposes: build_list(Kind::Purpose, spec.purposes)?,
            classes: build_list(Kind::Class, spec.classes)?,
        })
    }
}

impl From<Vocabulary> for VocabularySpec {
    fn from(v: Vocabulary) -> Self {
        VocabularySpec {
            categories: v.categories.into_values().collect(),
            purposes: v.purposes.into_values().collect(),
            classes: v.classes.into_values().collect(),
        }
    }
}

impl Vocabulary {
    /// Reads a vocabulary from TOML (`[[categories]]`, `[[purposes]]`,
    /// `[[classes]]` tables of `code`, `en`, `es`).
    pub fn from_toml(text: &str) -> Result<Self, VocabularyError> {
        let spec: VocabularySpec =
            toml::from_str(text).map_err(|e| VocabularyError::Toml(e.message().to_owned()))?;
        Vocabulary::try_from(spec)
    }

    /// The vocabulary in force before any `governance.rules` entry.
    pub fn default_recovery() -> Self {
        match Vocabulary::from_toml(DEFAULT_VOCABULARY_TOML) {
            Ok(v) => v,
            // The shipped file is covered by a test; an empty vocabulary
            // would make every request deny, which is the safe failure.
            Err(_) => Vocabulary::empty(),
        }
    }

    /// A vocabulary with no codes: everything is unknown, so everything denies.
    pub fn empty() -> Self {
        Vocabulary {
            categories: BTreeMap::new(),
            purposes: BTreeMap::new(),
            classes: BTreeMap::new(),
        }
    }

    fn list(&self, kind: Kind) -> &BTreeMap<String, Term> {
        match kind {
            Kind::Category => &self.categories,
            Kind::Purpose => &self.purposes,
            Kind::Class => &self.classes,
        }
    }

    pub fn contains(&self, kind: Kind, code: &str) -> bool {
        self.list(kind).contains_key(code)
    }

    pub fn term(&self, kind: Kind, code: &str) -> Option<&Term> {
        self.list(kind).get(code)
    }

    /// The label of a code, or the code itself when the vocabulary no longer
    /// lists it (a consent may outlive a vocabulary change).
    pub fn label<'a>(&'a self, kind: Kind, code: &'a str, language: Language) -> &'a str {
        self.term(kind, code)
            .map(|t| t.label(language))
            .unwrap_or(code)
    }

    /// The codes directly under `code` (one more segment), sorted.
    pub fn children(&self, kind: Kind, code: &str) -> Vec<&str> {
        let prefix = format!("{code}.");
        self.list(kind)
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(&prefix))
            .filter(|k| {
                k.get(prefix.len()..)
                    .is_some_and(|rest| !rest.contains('.'))
            })
            .collect()
    }

    /// Terms of one kind, sorted by code.
    pub fn terms(&self, kind: Kind) -> impl Iterator<Item = &Term> {
        self.list(kind).values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_vocabulary_parses() {
        let v = Vocabulary::from_toml(DEFAULT_VOCABULARY_TOML).unwrap();
        assert!(v.contains(Kind::Category, "health.sud.treatment"));
        assert!(v.contains(Kind::Purpose, "housing-placement"));
        assert!(v.contains(Kind::Class, "housing"));
        assert_eq!(v, Vocabulary::default_recovery());
    }

    #[test]
    fn covers_is_prefix_on_segment_boundary() {
        assert!(code_covers("health", "health.sud.treatment"));
        assert!(code_covers("health.sud", "health.sud"));
        assert!(!code_covers("health.sud.treatment", "health.sud"));
        assert!(!code_covers("health.s", "health.sud"));
    }

    #[test]
    fn children_are_one_segment_down() {
        let v = Vocabulary::default_recovery();
        assert_eq!(
            v.children(Kind::Category, "health"),
            vec!["health.mental", "health.sud"]
        );
        assert_eq!(
            v.children(Kind::Category, "health.sud"),
            vec!["health.sud.medication", "health.sud.treatment"]
        );
        assert!(v
            .children(Kind::Category, "health.sud.treatment")
            .is_empty());
        assert!(v.children(Kind::Category, "heal").is_empty());
    }

    #[test]
    fn missing_parent_is_refused() {
        let text =
            "categories = [{code = \"a.b\", en = \"x\", es = \"y\"}]\npurposes = []\nclasses = []";
        assert!(matches!(
            Vocabulary::from_toml(text),
            Err(VocabularyError::MissingParent { .. })
        ));
    }

    #[test]
    fn labels_are_phrases_without_control_characters() {
        let text = "categories = [{code = \"a\", en = \"x\\u0007\", es = \"y\"}]\npurposes = []\nclasses = []";
        assert!(matches!(
            Vocabulary::from_toml(text),
            Err(VocabularyError::BadLabel { .. })
        ));
    }

    #[test]
    fn json_round_trip() {
        let v = Vocabulary::default_recovery();
        let json = serde_json::to_string(&v).unwrap();
        let back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(v, back);
    }
}
