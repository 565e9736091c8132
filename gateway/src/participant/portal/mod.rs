//! The participant's web portal: server-rendered pages in English and
//! Spanish, every string from a message catalog (`gateway/portal/messages`),
//! every asset served by the gateway itself, and a Content-Security-Policy
//! that allows no inline script. The pages read through the same session
//! as the API (its HttpOnly cookie); every change stays an entry the
//! participant's key signs, in the browser.
//!
//! Layout:
//! - this module: the layout, the catalogs, language, and the pages that
//!   only read (consents, timeline, sign-in, restore);
//! - [`act`]: the pages that end in a signature made in the browser
//!   (enrol, grant, revoke, grievance) and sign-out.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use policy::{ConsentStatus, Language};

use crate::participant::state::Participants;
use crate::problem::Problem;

pub mod act;

/// Items the timeline shows (and the browser checks) at once.
const TIMELINE_ITEMS: usize = 50;

/// The language cookie: the choice is remembered across visits.
pub const LANG_COOKIE: &str = "consentry_lang";

/// No inline script or style, nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const EN: &str = include_str!("../../../portal/messages/en.toml");
const ES: &str = include_str!("../../../portal/messages/es.toml");
const CSS: &str = include_str!("../../../portal/static/portal.css");
const JS: &str = include_str!("../../../portal/static/portal.js");
/// Unmodified npm releases (portal/vendor/README.md).
const QRCODE_JS: &str = include_str!("../../../portal/vendor/qrcode.js");
const NOBLE_JS: &str = include_str!("../../../portal/vendor/noble-ed25519.js");

/// One language's messages.
pub struct Catalog(BTreeMap<String, String>);

impl Catalog {
    fn parse(text: &str) -> Catalog {
        // The catalogs are part of the binary and checked by a test; an
        // unreadable one shows keys rather than stopping the gateway.
        Catalog(toml::from_str(text).unwrap_or_default())
    }

    /// The message for `key`, or the key itself, visibly, if missing.
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.get(key).map_or(key, String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

pub fn catalog(lang: Language) -> &'static Catalog {
    static CATALOGS: OnceLock<(Catalog, Catalog)> = OnceLock::new();
    let (en, es) = CATALOGS.get_or_init(|| (Catalog::parse(EN), Catalog::parse(ES)));
    match lang {
        Language::En => en,
        Language::Es => es,
    }
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Participants>: FromRef<S>,
{
    Router::new()
        .route("/portal", get(root))
        .route("/portal/", get(root))
        .route("/portal/static/portal.css", get(css))
        .route("/portal/static/portal.js", get(|| script(JS)))
        .route("/portal/static/vendor/qrcode.js", get(|| script(QRCODE_JS)))
        .route(
            "/portal/static/vendor/noble-ed25519.js",
            get(|| script(NOBLE_JS)),
        )
        .route("/portal/{lang}/restore", get(restore))
        .route("/portal/{lang}/", get(home))
        .route("/portal/{lang}/signin", get(signin))
        .route("/portal/{lang}/disclosures", get(disclosures))
        .merge(act::routes())
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The remembered language, else the browser's first choice, else English.
async fn root(headers: HeaderMap) -> Response {
    let lang = super::cookie(&headers, LANG_COOKIE)
        .and_then(Language::from_code)
        .unwrap_or_else(|| super::browser_language(&headers));
    Redirect::to(&format!("/portal/{}/", lang.code())).into_response()
}

async fn script(source: &'static str) -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                // Cheap phones on slow links: the scripts change only with
                // the binary, so a day's cache is safe.
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            source,
        )
            .into_response(),
    )
}

async fn css() -> Response {
    secure(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response())
}

/// A whole page. `session` is the form token of a signed-in session.
fn page(
    lang: Language,
    here: &str,
    title_key: &str,
    session: Option<&str>,
    main: Markup,
) -> Response {
    let t = catalog(lang);
    let other = match lang {
        Language::En => Language::Es,
        Language::Es => Language::En,
    };
    let body = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t.t(title_key)) " · " (t.t("site_name")) }
                link rel="stylesheet" href="/portal/static/portal.css";
                script src="/portal/static/portal.js" defer {}
            }
            body {
                a class="skip" href="#main" { (t.t("skip_to_content")) }
                header {
                    p class="site" { (t.t("site_name")) }
                    nav aria-label=(t.t("nav_label")) {
                        ul {
                            @if let Some(csrf) = session {
                                li { a href={ "/portal/" (lang.code()) "/" } aria-current=[(here.is_empty()).then_some("page")] { (t.t("nav_consents")) } }
                                li { a href={ "/portal/" (lang.code()) "/disclosures" } aria-current=[(here == "disclosures").then_some("page")] { (t.t("nav_disclosures")) } }
                                li { a href={ "/portal/" (lang.code()) "/grant" } aria-current=[(here == "grant").then_some("page")] { (t.t("nav_grant")) } }
                                li {
                                    form method="post" action={ "/portal/" (lang.code()) "/signout" } class="inline" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" class="link" { (t.t("nav_signout")) }
                                    }
                                }
                            } @else {
                                li { a href={ "/portal/" (lang.code()) "/signin" } aria-current=[(here == "signin").then_some("page")] { (t.t("nav_signin")) } }
                                li { a href={ "/portal/" (lang.code()) "/enrol" } aria-current=[(here == "enrol").then_some("page")] { (t.t("nav_enrol")) } }
                            }
                            li {
                                a href={ "/portal/" (other.code()) "/" (here) } lang=(other.code()) hreflang=(other.code()) {
                                    (t.t("switch_language"))
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (t.t(title_key)) }
                    // Shown by the script where the browser gives it no
                    // WebCrypto (an http:// address that is not this
                    // machine's): no key can be made or used there.
                    p id="insecure-context" class="error" role="alert" hidden { (t.t("insecure_context")) }
                    (main)
                }
            }
        }
    };
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/portal; SameSite=Strict; Max-Age=31536000",
        lang.code()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    secure(r)
}

fn language(code: &str) -> Option<Language> {
    Language::from_code(code)
}

fn not_found() -> Response {
    secure(Problem::Blank(StatusCode::NOT_FOUND, "no such page".into()).into_response())
}

/// The consent state cannot be read (the deployment stopped): no page can
/// be shown truthfully.
fn stopped() -> Response {
    secure(Problem::from(crate::deployment::Stopped).into_response())
}

fn status_key(s: ConsentStatus) -> &'static str {
    match s {
        ConsentStatus::Active => "status_active",
        ConsentStatus::NotYetEffective => "status_not_yet_effective",
        ConsentStatus::Expired => "status_expired",
        ConsentStatus::Revoked => "status_revoked",
    }
}

#[derive(serde::Deserialize, Default)]
struct HomeQuery {
    granted: Option<String>,
    revoked: Option<String>,
    grievance: Option<String>,
    rotation: Option<String>,
}

impl HomeQuery {
    /// The message key of what the person just did, if they came back
    /// from doing it.
    fn note(&self) -> Option<&'static str> {
        [
            (&self.granted, "granted_note"),
            (&self.revoked, "revoked_note"),
            (&self.grievance, "grievance_note"),
            (&self.rotation, "rotation_cancelled_note"),
        ]
        .into_iter()
        .find_map(|(q, key)| q.is_some().then_some(key))
    }
}

/// Signed out: how to sign in, enrol or restore a key.
fn signed_out(lang: Language) -> Response {
    let t = catalog(lang);
    let main = html! {
        h2 { (t.t("signed_out_title")) }
        p { (t.t("signed_out_body")) }
        ul {
            li { a href={ "/portal/" (lang.code()) "/signin" } { (t.t("nav_signin")) } }
            li { a href={ "/portal/" (lang.code()) "/enrol" } { (t.t("nav_enrol")) } }
            li { a href={ "/portal/" (lang.code()) "/restore" } { (t.t("nav_restore")) } }
        }
    };
    page(lang, "", "site_name", None, main)
}

/// Signed in: the consents as plain-language cards, each with its status
/// in words, its downloads and its revoke; the grievances filed. Signed
/// out: how to sign in or enrol.
async fn home(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    q: axum::extract::Query<HomeQuery>,
) -> Response {
    let Some(lang) = language(&code) else {
        return not_found();
    };
    let t = catalog(lang);
    let Some((me, csrf)) = act::session(&g, &headers) else {
        return signed_out(lang);
    };
    let now = g.clock.now();
    let (cards, grievances, rotation) = {
        let Ok(state) = g.dep.state() else {
            return stopped();
        };
        let rotation = state.pending_rotation(&me).map(|r| {
            let by = state
                .agency(&r.assisted_by)
                .map_or(r.assisted_by.clone(), |a| a.enrolled.name);
            (by, r.ready_at)
        });
        let cards: Vec<(String, ConsentStatus, String)> = state
            .consents_of(&me, now)
            .into_iter()
            .map(|(v, s)| {
                let summary = policy::consent_summary(&state, &v, lang);
                (v.granted.consent_id, s, summary)
            })
            .collect();
        let grievances: Vec<(String, &'static str, bool)> = state
            .grievances_of(&me)
            .into_iter()
            .map(|v| {
                (
                    v.filed.grievance_id,
                    v.filed.reason.sentence(lang),
                    v.resolution.is_some(),
                )
            })
            .collect();
        (cards, grievances, rotation)
    };
    let note = q.note();
    let main = html! {
        // First, before anything else: a move of the key the person may
        // not have asked for, while they can still cancel it.
        @if let Some((by, ready_at)) = &rotation {
            section class="alert" role="alert" aria-labelledby="rotation-h" {
                h2 id="rotation-h" { (t.t("rotation_banner_title")) }
                p { (t.t("rotation_banner_by")) " " strong { (by) } ". " (t.t("rotation_banner_when")) " " time datetime=(rfc3339(*ready_at)) { (date_time(*ready_at, lang)) } "." }
                p { (t.t("rotation_banner_effect")) }
                p { a class="button" href={ "/portal/" (lang.code()) "/cancel-rotation" } { (t.t("rotation_cancel_link")) } }
            }
        }
        @if let Some(k) = note {
            p class="note" role="status" { (t.t(k)) }
        }
        p { a href={ "/portal/" (lang.code()) "/grant" } { (t.t("grant_new")) } }
        @if cards.is_empty() {
            p { (t.t("consents_empty")) }
        } @else {
            ul class="cards" {
                @for (id, status, summary) in &cards {
                    li class={ "card " (status.code()) } id={ "consent-" (id) } {
                        p class="summary" { (summary) }
                        p class="status" {
                            span class="label" { (t.t("consents_status_label")) ": " }
                            // The status is said in words, never by colour alone.
                            strong { (t.t(status_key(*status))) }
                        }
                        ul class="card-actions" {
                            @if matches!(status, ConsentStatus::Active | ConsentStatus::NotYetEffective) {
                                li { a href={ "/portal/" (lang.code()) "/revoke/" (id) } { (t.t("revoke_link")) span class="visually-hidden" { " " (id) } } }
                            }
                            li { a href={ "/v1/me/consents/" (id) "/fhir" } download={ (id) "-fhir.json" } { (t.t("export_fhir")) span class="visually-hidden" { " " (id) } } }
                            li { a href={ "/v1/me/consents/" (id) "/receipt?lang=" (lang.code()) } download={ (id) "-receipt.json" } { (t.t("export_receipt")) span class="visually-hidden" { " " (id) } } }
                        }
                    }
                }
            }
        }
        h2 id="grievances" { (t.t("grievances_title")) }
        @if grievances.is_empty() {
            p { (t.t("grievances_empty")) }
        } @else {
            ul class="cards" {
                @for (id, reason, resolved) in &grievances {
                    li class="card" {
                        p { (reason) }
                        p class="status" {
                            span class="label" { (t.t("consents_status_label")) ": " }
                            strong { (t.t(if *resolved { "grievance_resolved" } else { "grievance_open" })) }
                            span class="meta" { " (" (id) ")" }
                        }
                    }
                }
            }
        }
    };
    page(lang, "", "consents_title", Some(&csrf), main)
}

pub fn rfc3339(at: i64) -> String {
    let (y, m, d) = policy::civil_date(at);
    let s = at.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A date and time in the participant's language, in UTC.
fn date_time(at: i64, lang: Language) -> String {
    let s = at.rem_euclid(86_400);
    format!(
        "{}, {:02}:{:02} UTC",
        policy::format_date(at, lang),
        s / 3600,
        s / 60 % 60
    )
}

fn kind_key(kind: &str) -> &'static str {
    match kind {
        "allowed" => "kind_allowed",
        "denied" => "kind_denied",
        "emergency" => "kind_emergency",
        "released" => "kind_released",
        _ => "kind_notice",
    }
}

/// The timeline: every decision about the participant, newest first; an
/// emergency access is marked in words and by its frame, never colour alone.
async fn disclosures(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (lang, me, csrf) = match act::signed_in_page(&g, &code, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let t = catalog(lang);
    let items = super::recent_disclosures(&g, &me, lang, TIMELINE_ITEMS);
    let (log_key, witness_keys, quorum) = log_trust(&g);
    // The browser checks each item itself (portal.js): it fetches the
    // proofs, verifies the checkpoint under the log's key and each entry's
    // inclusion, and only then writes the "verified" mark. The keys served
    // here are compared with the ones it kept at first use on this device
    // (`log_anchor`): a page cannot vouch for itself.
    let main = html! {
        @match &items {
            None => p class="error" role="alert" { (t.t("disclosures_unavailable")) },
            Some(items) if items.is_empty() => p { (t.t("disclosures_empty")) },
            Some(items) => {
                div id="log-changed" class="error-summary" role="alert" tabindex="-1" hidden {
                    h2 { (t.t("log_changed_title")) }
                    p { (t.t("log_changed_body")) }
                    p { (t.t("log_changed_what")) }
                }
                p id="verify-summary" role="status" class="hint" { (t.t("verify_pending_all")) }
                ol class="timeline" id="timeline" data-log-key=(log_key)
                    data-witnesses=[witness_keys] data-quorum=[quorum]
                    data-few-witnesses=(t.t("verify_few_witnesses"))
                    data-key-changed=(t.t("verify_key_changed"))
                    data-limit=(TIMELINE_ITEMS)
                    data-verified=(t.t("verify_ok")) data-failed=(t.t("verify_failed"))
                    data-all-verified=(t.t("verify_all_ok")) data-some-failed=(t.t("verify_some_failed")) {
                    @for item in items {
                        li class={ "event " (item.kind) } data-index=(item.index) {
                            p class="kind" { strong { (t.t(kind_key(item.kind))) } }
                            p { (item.text) }
                            p class="meta" {
                                // UTC on the server; portal.js shows it in
                                // the device's own time zone.
                                time datetime=(rfc3339(item.at)) { (date_time(item.at, lang)) }
                                " · " (t.t("entry_number")) " #" (item.index)
                            }
                            p class="proof" data-state="pending" { (t.t("verify_pending")) }
                            @if let Some(d) = &item.decision_id {
                                p { a href={ "/portal/" (lang.code()) "/grievance/" (d) } { (t.t("grievance_link")) span class="visually-hidden" { " #" (item.index) } } }
                            }
                        }
                    }
                }
            },
        }
    };
    page(lang, "disclosures", "disclosures_title", Some(&csrf), main)
}

/// The log's verifier key, and the witness policy's keys (space-separated)
/// and quorum, as the browser checks checkpoints with them.
fn log_trust(g: &Participants) -> (String, Option<String>, Option<usize>) {
    let log_key = g.dep.log.verifier().to_string();
    // With a witness policy, the browser also wants its quorum of
    // cosignatures before it marks anything verified.
    let witnesses = g.witness_policy();
    let witness_keys = witnesses.as_ref().map(|p| {
        p.witnesses
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    });
    (log_key, witness_keys, witnesses.map(|p| p.quorum))
}

/// The log's keys on the pages where a key comes to this device (enrol,
/// restore, sign-in): portal.js keeps them there, once, and later trusts
/// only them for the timeline's "verified" marks (trust on first use).
pub(super) fn log_anchor(g: &Participants) -> Markup {
    let (log_key, witness_keys, quorum) = log_trust(g);
    html! {
        div id="log-anchor" hidden data-log-key=(log_key)
            data-witnesses=[witness_keys] data-quorum=[quorum] {}
    }
}

/// The participant id field, its label and hint.
fn participant_input(t: &Catalog, described_by: &str) -> Markup {
    html! {
        label for="participant" { (t.t("signin_id_label")) }
        p id="participant-hint" class="hint" { (t.t("signin_id_hint")) }
        input id="participant" name="participant" type="text" autocomplete="username"
            spellcheck="false" autocapitalize="none" required
            aria-describedby=(described_by);
    }
}

#[derive(serde::Deserialize, Default)]
struct SigninQuery {
    restored: Option<u8>,
}

async fn signin(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    q: axum::extract::Query<SigninQuery>,
) -> Response {
    let Some(lang) = language(&code) else {
        return not_found();
    };
    let t = catalog(lang);
    let main = html! {
        @if q.restored.is_some() {
            p class="note" role="status" { (t.t("restored_note")) }
        }
        p { (t.t("signin_intro")) }
        form id="signin" method="post" action="/v1/participant/session" novalidate {
            div class="field" {
                (participant_input(t, "participant-hint participant-error"))
                p id="participant-error" class="error" role="alert" hidden { (t.t("signin_no_key")) }
                p id="signin-refused" class="error" role="alert" hidden { (t.t("signin_refused")) }
            }
            button type="submit" { (t.t("signin_button")) }
        }
        p { a href={ "/portal/" (lang.code()) "/restore" } { (t.t("nav_restore")) } }
        noscript { p class="error" { (t.t("signin_needs_js")) } }
        (log_anchor(&g))
    };
    page(lang, "signin", "signin_title", None, main)
}

/// Restore the key from the recovery code: decoded, checked and imported
/// (non-extractable) in the browser; the code is never sent.
async fn restore(State(g): State<Arc<Participants>>, Path(code): Path<String>) -> Response {
    let Some(lang) = language(&code) else {
        return not_found();
    };
    let t = catalog(lang);
    let main = html! {
        p { (t.t("restore_intro")) }
        form id="restore" action="#" novalidate {
            div class="field" { (participant_input(t, "participant-hint")) }
            div class="field" {
                label for="code" { (t.t("restore_code_label")) }
                p id="code-hint" class="hint" { (t.t("restore_code_hint")) }
                input id="code" name="code" type="text" autocomplete="off" spellcheck="false"
                    autocapitalize="characters" required aria-describedby="code-hint code-error";
                p id="code-error" class="error" role="alert" hidden { (t.t("restore_code_error")) }
            }
            button type="submit" { (t.t("restore_button")) }
        }
        noscript { p class="error" { (t.t("signin_needs_js")) } }
        (log_anchor(&g))
    };
    page(lang, "restore", "restore_title", None, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_libraries_are_the_npm_releases() {
        // scripts/test.sh installs the pinned releases (tests/browser);
        // without them this fails rather than passes.
        let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/node_modules");
        for (ours, release) in [
            (QRCODE_JS, "qrcode-generator/dist/qrcode.js"),
            (NOBLE_JS, "@noble/ed25519/index.js"),
        ] {
            let path = format!("{modules}/{release}");
            let theirs = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/test.sh (npm ci)"));
            assert!(ours == theirs, "portal/vendor differs from {release}");
        }
    }

    #[test]
    fn both_catalogs_have_the_same_keys_and_every_key_used_exists() {
        let en: Vec<&str> = catalog(Language::En).keys().collect();
        let es: Vec<&str> = catalog(Language::Es).keys().collect();
        assert!(!en.is_empty(), "the English catalog parses");
        assert_eq!(en, es, "the same keys in both languages");
        // Every t("…") in this file names a key the catalogs have.
        let src = concat!(include_str!("mod.rs"), include_str!("act.rs"));
        let mut rest = src;
        let mut used = 0;
        while let Some(i) = rest.find("t.t(\"") {
            let after = &rest[i + 5..];
            let key = &after[..after.find('"').unwrap()];
            assert!(en.contains(&key), "unknown message key {key:?}");
            used += 1;
            rest = after;
        }
        assert!(used > 10, "found the keys used ({used})");
        // Keys passed around as values ("grant_recipients_error"): every
        // literal shaped like a key names one.
        for literal in src.split('"').skip(1).step_by(2) {
            // Cookie names are not messages.
            let key_shaped = literal.contains('_')
                && !literal.starts_with("consentry_")
                && literal
                    .split('_')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
            if key_shaped {
                assert!(en.contains(&literal), "unknown message key {literal:?}");
            }
        }
        for key in [
            "status_active",
            "status_not_yet_effective",
            "status_expired",
            "status_revoked",
            "kind_allowed",
            "kind_denied",
            "kind_emergency",
            "kind_released",
            "kind_notice",
        ] {
            assert!(en.contains(&key));
        }
    }
}
