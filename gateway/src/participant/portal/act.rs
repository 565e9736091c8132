//! The portal's pages that end in a signature: enrol (at an agency's
//! intake), grant, revoke and file a grievance; and signing out.
//!
//! The server prepares the exact entry (it owns the clock and the
//! vocabulary) and shows it as a sentence; the form also carries the
//! fields the sentence was made from (`Shown`). The browser checks that
//! the entry is exactly those fields, nothing more, the participant's own,
//! of the kind the page says and dated now by its own clock; only then it
//! signs it with the key only it holds, and posts it to `/v1/entries`. A
//! session alone can change nothing, so a stolen cookie grants no consent.
//!
//! Forms posted with the session cookie carry a token bound to the session
//! (`csrf`), on top of the cookie's SameSite=Strict.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use maud::{html, Markup};
use policy::{
    ConsentGranted, ConsentRevoked, ConsentStatus, ConsentView, Event, GrievanceFiled,
    GrievanceReason, Kind, Language, Parties, V1,
};
use sha2::{Digest, Sha256};

use super::{catalog, language, log_anchor, not_found, page, stopped};
use crate::participant::state::Participants;

/// Most values one form may post (checkboxes and fields together).
const FORM_PAIRS_MAX: usize = 256;
/// The durations a consent may be given for, in days.
const DURATIONS_DAYS: [i64; 4] = [30, 90, 180, 365];

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Participants>: FromRef<S>,
{
    Router::new()
        .route("/portal/{lang}/enrol", get(enrol))
        .route("/portal/{lang}/grant", get(grant_form).post(grant_preview))
        .route("/portal/{lang}/revoke/{id}", get(revoke_confirm))
        .route(
            "/portal/{lang}/cancel-rotation",
            get(cancel_rotation_confirm),
        )
        .route(
            "/portal/{lang}/grievance/{decision}",
            get(grievance_form).post(grievance_preview),
        )
        .route("/portal/{lang}/signout", post(sign_out))
}

/// The form token of a session: a hash of its (HttpOnly) token, so a page
/// of another origin can neither read nor forge it.
pub fn csrf_of(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"consentry-csrf-v1\n");
    h.update(session_token.as_bytes());
    B64URL.encode(h.finalize())
}

/// The signed-in participant and the session's form token.
pub fn session(g: &Participants, headers: &HeaderMap) -> Option<(String, String)> {
    let token = crate::participant::token_of(g, headers)?;
    let me = crate::participant::live_session(g, &token).ok().flatten()?;
    Some((me, csrf_of(&token)))
}

/// A posted form's pairs, bounded; repeated names (checkboxes) kept.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .take(FORM_PAIRS_MAX)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    values(pairs, name).into_iter().next()
}

/// The language of a page that needs a session, the participant and the
/// session's form token; else the answer: no such page, or to sign-in.
pub(super) fn signed_in_page(
    g: &Participants,
    code: &str,
    headers: &HeaderMap,
) -> Result<(Language, String, String), Box<Response>> {
    let lang = language(code).ok_or_else(|| Box::new(not_found()))?;
    let (me, csrf) = session(g, headers).ok_or_else(|| {
        Box::new(Redirect::to(&format!("/portal/{}/signin", lang.code())).into_response())
    })?;
    Ok((lang, me, csrf))
}

/// A form posted by a signed-in page: its language, the participant, the
/// session's token and the form's pairs; else the answer (no such page, to
/// sign-in, or an expired form refused).
#[allow(clippy::type_complexity)]
fn posted_form(
    g: &Participants,
    code: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Language, String, String, Vec<(String, String)>), Box<Response>> {
    let (lang, me, csrf) = signed_in_page(g, code, headers)?;
    let pairs = form(body);
    if !csrf_ok(&pairs, &csrf) {
        return Err(Box::new(expired_form(lang, &csrf)));
    }
    Ok((lang, me, csrf, pairs))
}

/// A posted form whose token is not this session's: refused, nothing done.
fn expired_form(lang: Language, csrf: &str) -> Response {
    let t = catalog(lang);
    let main = html! {
        p class="error" role="alert" { (t.t("form_expired")) }
        p { a href={ "/portal/" (lang.code()) "/" } { (t.t("nav_consents")) } }
    };
    let mut r = page(lang, "", "form_expired_title", Some(csrf), main);
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

fn csrf_ok(pairs: &[(String, String)], csrf: &str) -> bool {
    first(pairs, "csrf").is_some_and(|c| {
        // Equal length is public; compare every byte regardless.
        c.len() == csrf.len()
            && c.bytes()
                .zip(csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The fields a sentence was made from, as the form's data attributes:
/// portal.js signs only an entry that is exactly these (and `v`, `type`,
/// the participant and times near the device's clock), so the entry
/// cannot say more, or other, than the page.
#[derive(Default)]
struct Shown {
    consent_id: Option<String>,
    /// Agency ids, space-separated, in the entry's order.
    holders: Option<String>,
    recipients: Option<String>,
    categories: Option<String>,
    purposes: Option<String>,
    expires_at: Option<i64>,
    language: Option<&'static str>,
    grievance_id: Option<String>,
    decision_id: Option<String>,
    reason: Option<&'static str>,
    /// The pending key a cancelled rotation names (not the signer's).
    rotation_key_id: Option<String>,
}

/// What the browser signs, shown as a sentence first. `kind` is the entry
/// type the page promises; the script refuses to sign anything else.
struct ToSign<'a> {
    sentence: Markup,
    shown: Shown,
    entry: &'a [u8],
    kind: &'a str,
    key_id: &'a str,
    participant: &'a str,
    done: String,
    button_key: &'a str,
    back: String,
}

/// The page that shows `s` and signs it in the browser.
fn sign_page(lang: Language, here: &str, title_key: &str, csrf: &str, s: &ToSign) -> Response {
    let t = catalog(lang);
    let f = &s.shown;
    let main = html! {
        div class="sentence" { (s.sentence) }
        form id="sign-entry" action="#" data-entry=(B64.encode(s.entry)) data-kind=(s.kind)
            data-key-id=(s.key_id) data-participant=(s.participant) data-done=(s.done)
            data-consent-id=[f.consent_id.as_deref()] data-holders=[f.holders.as_deref()]
            data-recipients=[f.recipients.as_deref()] data-categories=[f.categories.as_deref()]
            data-purposes=[f.purposes.as_deref()] data-expires-at=[f.expires_at]
            data-language=[f.language] data-grievance-id=[f.grievance_id.as_deref()]
            data-decision-id=[f.decision_id.as_deref()] data-reason=[f.reason]
            data-rotation-key-id=[f.rotation_key_id.as_deref()] {
            p class="hint" { (t.t("sign_explain")) }
            p id="sign-nokey" class="error" role="alert" hidden { (t.t("sign_no_key")) }
            p id="sign-mismatch" class="error" role="alert" hidden { (t.t("sign_mismatch")) " " span class="detail" {} }
            p id="sign-error" class="error" role="alert" hidden { (t.t("sign_refused")) " " span class="detail" {} }
            div class="actions" {
                button type="submit" { (t.t(s.button_key)) }
                a href=(s.back) { (t.t("cancel")) }
            }
        }
        noscript { p class="error" { (t.t("signin_needs_js")) } }
    };
    page(lang, here, title_key, Some(csrf), main)
}

fn key_id_of(g: &Participants, me: &str) -> Option<String> {
    let state = g.dep.state().ok()?;
    state.participant_key_id(me).map(str::to_string)
}

/// Enrolment at an agency's intake: the key is made here, in the browser;
/// the staff member co-signs with the agency's key (`consentry intake`).
async fn enrol(State(g): State<Arc<Participants>>, Path(code): Path<String>) -> Response {
    let Some(lang) = language(&code) else {
        return not_found();
    };
    let t = catalog(lang);
    let agencies = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        super::super::agency_choices(&state)
    };
    let main = html! {
        p id="enrol-intro" { (t.t("enrol_intro")) }
        form id="enrol" action="#" novalidate {
            div class="field" {
                label for="agency" { (t.t("enrol_agency_label")) }
                p id="agency-hint" class="hint" { (t.t("enrol_agency_hint")) }
                select id="agency" name="agency" required aria-describedby="agency-hint agency-error" {
                    option value="" { (t.t("enrol_agency_choose")) }
                    @for (id, name) in &agencies {
                        option value=(id) { (name) }
                    }
                }
                p id="agency-error" class="error" role="alert" hidden { (t.t("enrol_agency_error")) }
            }
            p id="enrol-refused" class="error" role="alert" hidden { (t.t("enrol_refused")) }
            button type="submit" { (t.t("enrol_button")) }
        }
        section id="enrolled" hidden aria-labelledby="enrolled-title" {
            h2 id="enrolled-title" tabindex="-1" { (t.t("enrol_done_title")) }
            p { (t.t("enrol_show_code")) }
            p class="intake-code" { strong id="intake-code" {} }
            p id="intake-status" role="status" data-waiting=(t.t("enrol_waiting"))
                data-enrolled=(t.t("enrol_enrolled")) data-expired=(t.t("enrol_expired")) {}
            h3 { (t.t("enrol_id_title")) }
            p { (t.t("enrol_id_body")) }
            p class="participant-id" { strong id="participant-id" {} }
            h3 { (t.t("enrol_code_title")) }
            p { (t.t("enrol_code_body")) }
            p class="recovery-code" { code id="recovery-code" {} }
            figure id="recovery-qr" data-label=(t.t("enrol_qr_label")) {
                figcaption { (t.t("enrol_qr_caption")) }
            }
            div class="actions" {
                button type="button" id="print" { (t.t("enrol_print")) }
                a id="to-signin" href={ "/portal/" (lang.code()) "/signin" } hidden { (t.t("nav_signin")) }
            }
        }
        noscript { p class="error" { (t.t("signin_needs_js")) } }
        (log_anchor(&g))
        script src="/portal/static/vendor/qrcode.js" defer {}
    };
    page(lang, "enrol", "enrol_title", None, main)
}

struct GrantChoice<'a> {
    recipients: Vec<&'a str>,
    holders: Vec<&'a str>,
    categories: Vec<&'a str>,
    purposes: Vec<&'a str>,
    days: Option<i64>,
}

/// The field errors of a grant form, as message keys by field.
type FieldErrors = Vec<(&'static str, &'static str)>;

fn grant_page(
    g: &Participants,
    lang: Language,
    csrf: &str,
    chosen: &GrantChoice,
    errors: &FieldErrors,
    refused: Option<String>,
) -> Response {
    let t = catalog(lang);
    let (agencies, categories, purposes, days_max) = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        let vocab = state.vocabulary();
        let agencies = super::super::agency_choices(&state);
        let terms = |k: Kind| -> Vec<(String, String)> {
            vocab
                .terms(k)
                .map(|term| (term.code.clone(), term.label(lang).to_string()))
                .collect()
        };
        let purposes: Vec<(String, String)> = terms(Kind::Purpose)
            .into_iter()
            .filter(|(c, _)| !state.rules().is_forbidden(c))
            .collect();
        (
            agencies,
            terms(Kind::Category),
            purposes,
            i64::from(state.rules().consent_duration_days_max()),
        )
    };
    let error_of = |field: &str| errors.iter().find(|(f, _)| *f == field).map(|(_, k)| *k);
    let group = |name: &'static str,
                 legend: &str,
                 hint: &str,
                 options: &[(String, String)],
                 chosen: &[&str]|
     -> Markup {
        let err = error_of(name);
        html! {
            fieldset id={ "field-" (name) } aria-describedby={ (name) "-hint" @if err.is_some() { " " (name) "-error" } }
                aria-invalid=[err.map(|_| "true")] {
                legend { (legend) }
                p id={ (name) "-hint" } class="hint" { (hint) }
                @if let Some(k) = err {
                    p id={ (name) "-error" } class="error" { (t.t(k)) }
                }
                ul class="choices" {
                    @for (i, (code, label)) in options.iter().enumerate() {
                        // Narrower categories sit under the broader one.
                        li class={ "depth-" (code.matches('.').count().min(3)) } {
                            input type="checkbox" id={ (name) "-" (i) } name=(name) value=(code)
                                checked[chosen.contains(&code.as_str())];
                            label for={ (name) "-" (i) } { (label) }
                        }
                    }
                }
            }
        }
    };
    let main = html! {
        @if !errors.is_empty() || refused.is_some() {
            div class="error-summary" role="alert" tabindex="-1" id="errors" {
                h2 { (t.t("form_has_errors")) }
                ul {
                    @for (field, key) in errors {
                        li { a href={ "#field-" (field) } { (t.t(key)) } }
                    }
                    @if let Some(r) = &refused {
                        li { (t.t("grant_refused")) " " (r) }
                    }
                }
            }
        }
        p { (t.t("grant_intro")) }
        form id="grant" method="post" action={ "/portal/" (lang.code()) "/grant" } {
            (csrf_field(csrf))
            (group("recipient", t.t("grant_recipients"), t.t("grant_recipients_hint"), &agencies, &chosen.recipients))
            (group("holder", t.t("grant_holders"), t.t("grant_holders_hint"), &agencies, &chosen.holders))
            (group("category", t.t("grant_categories"), t.t("grant_categories_hint"), &categories, &chosen.categories))
            (group("purpose", t.t("grant_purposes"), t.t("grant_purposes_hint"), &purposes, &chosen.purposes))
            div class="field" {
                label for="days" { (t.t("grant_days")) }
                select id="days" name="days" {
                    @for d in DURATIONS_DAYS.iter().filter(|d| **d <= days_max) {
                        option value=(d) selected[chosen.days == Some(*d)] {
                            (t.t("grant_days_option").replace("{n}", &d.to_string()))
                        }
                    }
                }
            }
            button type="submit" { (t.t("grant_review")) }
        }
    };
    page(lang, "grant", "grant_title", Some(csrf), main)
}

async fn grant_form(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (lang, _, csrf) = match signed_in_page(&g, &code, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let none = GrantChoice {
        recipients: Vec::new(),
        holders: Vec::new(),
        categories: Vec::new(),
        purposes: Vec::new(),
        days: Some(90),
    };
    grant_page(&g, lang, &csrf, &none, &Vec::new(), None)
}

/// The grant the form describes, made now, for `days`.
fn granted_of(
    me: &str,
    chosen: &GrantChoice,
    days: i64,
    now: i64,
    lang: Language,
) -> ConsentGranted {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ConsentGranted {
        v: V1,
        consent_id: format!("c-{}", &super::super::new_participant_id()[2..14]),
        participant: me.to_owned(),
        holders: Parties {
            agencies: owned(&chosen.holders),
            classes: Vec::new(),
        },
        recipients: Parties {
            agencies: owned(&chosen.recipients),
            classes: Vec::new(),
        },
        categories: owned(&chosen.categories),
        purposes: owned(&chosen.purposes),
        effective_at: now,
        expires_at: Some(now + days * 86_400),
        signed_at: now,
        language: lang,
    }
}

/// The grant's summary in the person's words, and its holders' names.
fn in_words(
    state: &policy::ConsentState,
    granted: &ConsentGranted,
    ends_at: i64,
    lang: Language,
) -> (String, Vec<String>) {
    let holders: Vec<String> = granted
        .holders
        .agencies
        .iter()
        .map(|a| {
            state
                .agency(a)
                .map_or_else(|| a.clone(), |x| x.enrolled.name)
        })
        .collect();
    let view = ConsentView {
        ends_at,
        granted: granted.clone(),
        granted_index: 0,
        revocation: None,
    };
    (policy::consent_summary(state, &view, lang), holders)
}

/// Checks the form, prepares the entry and shows it as a sentence to sign.
async fn grant_preview(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, me, csrf, pairs) = match posted_form(&g, &code, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let chosen = GrantChoice {
        recipients: values(&pairs, "recipient"),
        holders: values(&pairs, "holder"),
        categories: values(&pairs, "category"),
        purposes: values(&pairs, "purpose"),
        days: first(&pairs, "days").and_then(|d| d.parse().ok()),
    };
    let mut errors: FieldErrors = Vec::new();
    for (field, list, key) in [
        ("recipient", &chosen.recipients, "grant_recipients_error"),
        ("holder", &chosen.holders, "grant_holders_error"),
        ("category", &chosen.categories, "grant_categories_error"),
        ("purpose", &chosen.purposes, "grant_purposes_error"),
    ] {
        if list.is_empty() {
            errors.push((field, key));
        }
    }
    let Some(key_id) = key_id_of(&g, &me) else {
        return not_found();
    };
    let days = chosen
        .days
        .filter(|d| DURATIONS_DAYS.contains(d))
        .unwrap_or(90);
    if !errors.is_empty() {
        return grant_page(&g, lang, &csrf, &chosen, &errors, None);
    }
    let now = g.clock.now();
    let granted = granted_of(&me, &chosen, days, now, lang);
    let event = Event::ConsentGranted(granted.clone());
    // The rules are checked before the person signs: a grant they would
    // be refused is explained here, in their language, next to the form.
    let checked = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        state
            .check(&event, &[key_id.as_str()])
            .map(|()| in_words(&state, &granted, now + days * 86_400, lang))
    };
    let (summary, holders) = match checked {
        Ok(s) => s,
        Err(e) => return grant_page(&g, lang, &csrf, &chosen, &errors, Some(e.to_string())),
    };
    let Ok(entry) = event.to_json() else {
        return grant_page(&g, lang, &csrf, &chosen, &errors, None);
    };
    let t = catalog(lang);
    let words = |v: &[String]| Some(v.join(" "));
    sign_page(
        lang,
        "grant",
        "grant_review_title",
        &csrf,
        &ToSign {
            sentence: html! {
                p class="summary" { (summary) }
                p { (t.t("grant_from")) " " (holders.join(", ")) }
            },
            shown: Shown {
                consent_id: Some(granted.consent_id.clone()),
                holders: words(&granted.holders.agencies),
                recipients: words(&granted.recipients.agencies),
                categories: words(&granted.categories),
                purposes: words(&granted.purposes),
                expires_at: granted.expires_at,
                language: Some(lang.code()),
                ..Shown::default()
            },
            entry: &entry,
            kind: "consent.granted",
            key_id: &key_id,
            participant: &me,
            done: format!("/portal/{}/?granted={}", lang.code(), granted.consent_id),
            button_key: "grant_sign",
            back: format!("/portal/{}/grant", lang.code()),
        },
    )
}

/// One confirmation: the consent in words, and a button that signs its
/// revocation.
async fn revoke_confirm(
    State(g): State<Arc<Participants>>,
    Path((code, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (lang, me, csrf) = match signed_in_page(&g, &code, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let t = catalog(lang);
    let now = g.clock.now();
    let found = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        state
            .consent(&id)
            .filter(|v| v.granted.participant == me)
            .map(|v| (v.status(now), policy::consent_summary(&state, &v, lang)))
    };
    let (Some((status, summary)), Some(key_id)) = (found, key_id_of(&g, &me)) else {
        return not_found();
    };
    if status == ConsentStatus::Revoked {
        let main = html! {
            p class="summary" { (summary) }
            p role="status" { (t.t("revoke_already")) }
            p { a href={ "/portal/" (lang.code()) "/" } { (t.t("nav_consents")) } }
        };
        return page(lang, "", "revoke_title", Some(&csrf), main);
    }
    let event = Event::ConsentRevoked(ConsentRevoked {
        v: V1,
        consent_id: id.clone(),
        participant: me.clone(),
        at: now,
        assisted_by: None,
    });
    let Ok(entry) = event.to_json() else {
        return not_found();
    };
    sign_page(
        lang,
        "",
        "revoke_title",
        &csrf,
        &ToSign {
            sentence: html! {
                p class="summary" { (summary) }
                p { strong { (t.t("revoke_question")) } }
                p { (t.t("revoke_effect")) }
            },
            shown: Shown {
                consent_id: Some(id.clone()),
                ..Shown::default()
            },
            entry: &entry,
            kind: "consent.revoked",
            key_id: &key_id,
            participant: &me,
            done: format!("/portal/{}/?revoked={id}#consent-{id}", lang.code()),
            button_key: "revoke_sign",
            back: format!("/portal/{}/#consent-{id}", lang.code()),
        },
    )
}

/// Cancels a pending move to a new key, signed in the browser by the
/// person's current key (the only key that may).
async fn cancel_rotation_confirm(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (lang, me, csrf) = match signed_in_page(&g, &code, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let t = catalog(lang);
    let pending = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        state.pending_rotation(&me)
    };
    let (Some(pending), Some(key_id)) = (pending, key_id_of(&g, &me)) else {
        let main = html! {
            p role="status" { (t.t("rotation_none")) }
            p { a href={ "/portal/" (lang.code()) "/" } { (t.t("nav_consents")) } }
        };
        return page(lang, "", "rotation_title", Some(&csrf), main);
    };
    let event = Event::ParticipantRotationCancelled(policy::ParticipantRotationCancelled {
        v: V1,
        participant: me.clone(),
        key_id: pending.key_id.clone(),
        at: g.clock.now(),
    });
    let Ok(entry) = event.to_json() else {
        return not_found();
    };
    sign_page(
        lang,
        "",
        "rotation_title",
        &csrf,
        &ToSign {
            sentence: html! {
                p { strong { (t.t("rotation_question")) } }
                p { (t.t("rotation_effect")) }
            },
            shown: Shown {
                rotation_key_id: Some(pending.key_id),
                ..Shown::default()
            },
            entry: &entry,
            kind: "participant.rotation_cancelled",
            key_id: &key_id,
            participant: &me,
            done: format!("/portal/{}/?rotation=cancelled", lang.code()),
            button_key: "rotation_sign",
            back: format!("/portal/{}/", lang.code()),
        },
    )
}

/// The decision, in the participant's words, if it is about them.
fn own_decision(g: &Participants, me: &str, decision: &str, lang: Language) -> Option<String> {
    let items =
        crate::participant::recent_disclosures(g, me, lang, crate::participant::PAGE_ITEMS_MAX)?;
    items
        .into_iter()
        .find(|d| d.decision_id.as_deref() == Some(decision))
        .map(|d| d.text)
}

fn grievance_page(
    lang: Language,
    csrf: &str,
    decision: &str,
    about: &str,
    missing: bool,
) -> Response {
    let t = catalog(lang);
    let main = html! {
        @if missing {
            div class="error-summary" role="alert" tabindex="-1" id="errors" {
                h2 { (t.t("form_has_errors")) }
                ul { li { a href="#field-reason" { (t.t("grievance_reason_error")) } } }
            }
        }
        p { (t.t("grievance_intro")) }
        blockquote { p { (about) } }
        form id="grievance" method="post" action={ "/portal/" (lang.code()) "/grievance/" (decision) } {
            (csrf_field(csrf))
            fieldset id="field-reason" aria-describedby={ "reason-hint" @if missing { " reason-error" } }
                aria-invalid=[missing.then_some("true")] {
                legend { (t.t("grievance_reason")) }
                p id="reason-hint" class="hint" { (t.t("grievance_reason_hint")) }
                @if missing { p id="reason-error" class="error" { (t.t("grievance_reason_error")) } }
                ul class="choices" {
                    @for (i, r) in GrievanceReason::ALL.iter().enumerate() {
                        li {
                            input type="radio" id={ "reason-" (i) } name="reason" value=(r.code());
                            label for={ "reason-" (i) } { (r.sentence(lang)) }
                        }
                    }
                }
            }
            button type="submit" { (t.t("grievance_review")) }
        }
    };
    page(lang, "disclosures", "grievance_title", Some(csrf), main)
}

async fn grievance_form(
    State(g): State<Arc<Participants>>,
    Path((code, decision)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (lang, me, csrf) = match signed_in_page(&g, &code, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match own_decision(&g, &me, &decision, lang) {
        Some(about) => grievance_page(lang, &csrf, &decision, &about, false),
        None => not_found(),
    }
}

async fn grievance_preview(
    State(g): State<Arc<Participants>>,
    Path((code, decision)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, me, csrf, pairs) = match posted_form(&g, &code, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (Some(about), Some(key_id)) = (own_decision(&g, &me, &decision, lang), key_id_of(&g, &me))
    else {
        return not_found();
    };
    let Some(reason) = first(&pairs, "reason").and_then(GrievanceReason::from_code) else {
        return grievance_page(lang, &csrf, &decision, &about, true);
    };
    let grievance_id = format!("g-{}", &super::super::new_participant_id()[2..14]);
    let event = Event::GrievanceFiled(GrievanceFiled {
        v: V1,
        grievance_id: grievance_id.clone(),
        participant: me.clone(),
        decision_id: decision.clone(),
        reason,
        at: g.clock.now(),
    });
    let Ok(entry) = event.to_json() else {
        return not_found();
    };
    let t = catalog(lang);
    sign_page(
        lang,
        "disclosures",
        "grievance_title",
        &csrf,
        &ToSign {
            sentence: html! {
                blockquote { p { (about) } }
                p { (t.t("grievance_your_reason")) " " strong { (reason.sentence(lang)) } }
                p { (t.t("grievance_effect")) }
            },
            shown: Shown {
                grievance_id: Some(grievance_id),
                decision_id: Some(decision.clone()),
                reason: Some(reason.code()),
                ..Shown::default()
            },
            entry: &entry,
            kind: "grievance.filed",
            key_id: &key_id,
            participant: &me,
            done: format!("/portal/{}/?grievance=filed#grievances", lang.code()),
            button_key: "grievance_sign",
            back: format!("/portal/{}/disclosures", lang.code()),
        },
    )
}

/// Ends the session (a form post with the session's token).
async fn sign_out(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(lang) = language(&code) else {
        return not_found();
    };
    if let (Some((_, csrf)), Some(token)) = (
        session(&g, &headers),
        crate::participant::token_of(&g, &headers),
    ) {
        if !csrf_ok(&form(&body), &csrf) {
            return expired_form(lang, &csrf);
        }
        g.sessions.close(&token);
    }
    let mut r = Redirect::to(&format!("/portal/{}/", lang.code())).into_response();
    r.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        crate::participant::cleared_session_cookie(&g),
    );
    r
}
