//! Words more than one room speaks: the headers of the agency path and of
//! a forwarded request, and the code system records are labelled with.
//! It imports nothing, so that any room may use it without reaching into
//! another (the agency path and the sample record systems both sign and
//! check these headers).

/// The purpose an agency asks for, on its signed request.
pub const PURPOSE_HEADER: &str = "consentry-purpose";
/// The data categories an agency asks for, comma-separated.
pub const CATEGORIES_HEADER: &str = "consentry-categories";
/// On every answer: `<decision id>; index=<log index>`; on a forwarded
/// request, the decision it carries out.
pub const DECISION_HEADER: &str = "consentry-decision";
/// The 42 CFR §2.32 notice, on every answer that releases records.
pub const NOTICE_HEADER: &str = "consentry-redisclosure-notice";
/// On a forwarded request: whose records, as the gateway decided.
pub const PARTICIPANT_HEADER: &str = "consentry-participant";
/// On a forwarded request: the categories the decision releases.
pub const RELEASED_HEADER: &str = "consentry-released";
/// The key id the gateway signs forwarded requests with.
pub const GATEWAY_KEY_ID: &str = "gateway";
/// The code system a record's data category is labelled with.
pub const CATEGORY_SYSTEM: &str = "https://consentry.dev/fhir/CodeSystem/data-category";
