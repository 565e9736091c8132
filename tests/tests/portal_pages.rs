//! The portal's pages over a real loopback gateway: language in the URL
//! and the `lang` attribute, remembered; strings from the catalogs; a
//! Content-Security-Policy without inline script; the consents page read
//! through the API's session cookie.

use consentry_tests::fixture::{self, NOW};
use consentry_tests::net;
use gateway::participant::client::ParticipantClient;
use gateway::participant::portal::{catalog, CSP};
use policy::Language;

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let raw = net::Raw {
        method: "GET".into(),
        target: path.into(),
        headers: cookie
            .map(|c| vec![("cookie".to_string(), c.to_string())])
            .unwrap_or_default(),
        body: Vec::new(),
    };
    let a = net::send(addr, &raw).await;
    (
        a.status,
        a.headers.clone(),
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_speak_the_chosen_language_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    for (lang, code) in [(Language::En, "en"), (Language::Es, "es")] {
        let (status, h, body) = get(net.addr, &format!("/portal/{code}/signin"), None).await;
        assert_eq!(status, 200);
        assert!(body.contains(&format!("<html lang=\"{code}\">")), "{body}");
        assert!(body.contains(catalog(lang).t("signin_intro")));
        assert_eq!(header(&h, "content-security-policy"), Some(CSP));
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        assert!(
            !body.contains("<script>") && !body.contains(" style="),
            "no inline script or style"
        );
        assert!(header(&h, "set-cookie")
            .unwrap()
            .starts_with(&format!("consentry_lang={code};")));
        // The label is tied to its field, the hint and error to the input.
        assert!(body.contains("<label for=\"participant\">"));
        assert!(body.contains("aria-describedby=\"participant-hint participant-error\""));
    }
    // The remembered language wins over the browser's.
    let raw = net::Raw {
        method: "GET".into(),
        target: "/portal".into(),
        headers: vec![
            ("cookie".into(), "consentry_lang=es".into()),
            ("accept-language".into(), "en-GB".into()),
        ],
        body: Vec::new(),
    };
    let a = net::send(net.addr, &raw).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/portal/es/"));
    let (status, _, _) = get(net.addr, "/portal/fr/signin", None).await;
    assert_eq!(status, 404);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consents_page_shows_cards_in_words_through_the_session_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    // p-0000 has consent c-housing (net::start).
    let mut me = ParticipantClient::new(
        &format!("http://{}", net.addr),
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    let cookie = format!("consentry_session={}", me.token().unwrap());
    let (status, _, body) = get(net.addr, "/portal/es/", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"consent-c-housing\""), "{body}");
    assert!(
        body.contains(catalog(Language::Es).t("status_active")),
        "{body}"
    );
    assert!(body.contains("puede ver"), "the Spanish sentence: {body}");
    // Without the session: the signed-out page, nothing of anyone's.
    let (_, _, body) = get(net.addr, "/portal/es/", None).await;
    assert!(!body.contains("c-housing"));
    assert!(body.contains(catalog(Language::Es).t("signed_out_title")));
    let _ = NOW;
    net.stop().await;
}
