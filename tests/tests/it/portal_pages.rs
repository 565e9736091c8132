//! The portal's pages over a real loopback gateway: language in the URL
//! and the `lang` attribute, remembered; strings from the catalogs; a
//! Content-Security-Policy without inline script; the consents page read
//! through the API's session cookie.

use consentry_tests::fixture::{self, NOW};
use consentry_tests::net;
use gateway::participant::client::ParticipantClient;
use gateway::participant::portal::{catalog, CSP};
use policy::Language;

/// One request over loopback, with the session cookie when given.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[u8]>,
) -> net::Answer {
    let mut headers = Vec::new();
    if let Some(c) = cookie {
        headers.push(("cookie".to_string(), c.to_string()));
    }
    if form.is_some() {
        headers.push((
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    let raw = net::Raw {
        method: method.into(),
        target: path.into(),
        headers,
        body: form.unwrap_or_default().to_vec(),
    };
    net::send(addr, &raw).await
}

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let a = request(addr, "GET", path, cookie, None).await;
    (
        a.status,
        a.headers.clone(),
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

/// The fixture's participant p-0000, signed in.
async fn signed_in(net: &net::Net) -> ParticipantClient {
    let mut me = ParticipantClient::new(
        &format!("http://{}", net.addr),
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    me
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
    let me = signed_in(&net).await;
    let cookie = format!("consentry_session={}", me.token().unwrap());
    let (status, _, body) = get(net.addr, "/portal/es/", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"consent-c-housing\""), "{body}");
    assert!(
        body.contains(catalog(Language::Es).t("status_active")),
        "{body}"
    );
    assert!(body.contains("puede ver"), "the Spanish sentence: {body}");
    // The timeline dates each item in the page's language, as a machine-
    // readable <time> too (the browser shows it in its own time zone).
    let ask = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    let (_, _, body) = get(net.addr, "/portal/es/disclosures", Some(&cookie)).await;
    let date = policy::format_date(NOW, Language::Es);
    assert!(
        body.contains("<time datetime=\"2027-") && body.contains(&format!("{date}, ")),
        "{body}"
    );
    // Without the session: the signed-out page, nothing of anyone's.
    let (_, _, body) = get(net.addr, "/portal/es/", None).await;
    assert!(!body.contains("c-housing"));
    assert!(body.contains(catalog(Language::Es).t("signed_out_title")));
    net.stop().await;
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    cookie: Option<&str>,
    form: &[u8],
) -> net::Answer {
    request(addr, "POST", path, cookie, Some(form)).await
}

/// A form posted with the session cookie but without the session's token
/// (as another site's page would post it) is refused and changes nothing;
/// with the token, the grant form leads to the sentence to sign, and the
/// server never signs it itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_token_and_sign_nothing_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let me = signed_in(&net).await;
    let token = me.token().unwrap().to_string();
    let cookie = format!("consentry_session={token}");
    let csrf = gateway::participant::portal::act::csrf_of(&token);
    let (_, _, page) = get(net.addr, "/portal/en/grant", Some(&cookie)).await;
    assert!(
        page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "the form carries the session's token"
    );
    let size = net.dep.log.size();
    let form = "recipient=riverside-housing&holder=hope-clinic&category=social.housing&purpose=housing-placement&days=30";
    for bad in ["", "&csrf=forged", "&csrf="] {
        let a = post(
            net.addr,
            "/portal/en/grant",
            Some(&cookie),
            format!("{form}{bad}").as_bytes(),
        )
        .await;
        assert_eq!(a.status, 403, "refused without the token ({bad:?})");
        let body = String::from_utf8_lossy(&a.body);
        assert!(
            body.contains(catalog(Language::En).t("form_expired")),
            "{body}"
        );
    }
    // Sign-out without the token is refused too; the session lives on.
    let a = post(net.addr, "/portal/en/signout", Some(&cookie), b"").await;
    assert_eq!(a.status, 403);
    assert_eq!(me.get("/v1/me").await.unwrap().status, 200);

    let a = post(
        net.addr,
        "/portal/en/grant",
        Some(&cookie),
        format!("{form}&csrf={csrf}").as_bytes(),
    )
    .await;
    assert_eq!(a.status, 200);
    let body = String::from_utf8_lossy(&a.body);
    assert!(body.contains("id=\"sign-entry\""), "{body}");
    assert!(
        body.contains("Riverside housing may see your housing status, to place you in housing"),
        "the sentence before signing: {body}"
    );
    assert_eq!(
        net.dep.log.size(),
        size,
        "nothing logged without a signature"
    );

    // An empty choice is explained next to each field.
    let a = post(
        net.addr,
        "/portal/en/grant",
        Some(&cookie),
        format!("days=30&csrf={csrf}").as_bytes(),
    )
    .await;
    let body = String::from_utf8_lossy(&a.body);
    for key in [
        "grant_recipients_error",
        "grant_holders_error",
        "grant_categories_error",
        "grant_purposes_error",
    ] {
        assert!(body.contains(catalog(Language::En).t(key)), "{key}");
    }
    assert!(body.contains("aria-describedby=\"recipient-hint recipient-error\""));

    // With the token, sign-out ends the session.
    let a = post(
        net.addr,
        "/portal/en/signout",
        Some(&cookie),
        format!("csrf={csrf}").as_bytes(),
    )
    .await;
    assert_eq!(a.status, 303);
    assert_eq!(me.get("/v1/me").await.unwrap().status, 401);
    net.stop().await;
}

/// Enrolment by intake over the API: each malformed or wrong step is
/// refused with its reason; only the named agency's key completes it; an
/// unfinished intake expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_enrols_only_with_the_persons_signature_and_the_named_agency() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ed25519_dalek::Signer;
    use gateway::client::AgencyClient;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let json_post = |path: String, body: serde_json::Value| {
        let raw = net::Raw {
            method: "POST".into(),
            target: path,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        };
        let addr = net.addr;
        async move { net::send(addr, &raw).await }
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let public = B64.encode(key.verifying_key().as_bytes());

    // Refusals, each with its reason.
    let a = json_post(
        "/v1/participant/intakes".into(),
        json!({"agency": "nobody", "public_key": public}),
    )
    .await;
    assert_eq!(
        (
            a.status,
            a.json()["type"]
                .as_str()
                .unwrap()
                .ends_with("unknown-agency")
        ),
        (400, true)
    );
    let a = json_post(
        "/v1/participant/intakes".into(),
        json!({"agency": "hope-clinic", "public_key": "AAAA"}),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.json()["detail"].as_str().unwrap().contains("public_key"));

    let started = json_post(
        "/v1/participant/intakes".into(),
        json!({"agency": "hope-clinic", "public_key": public}),
    )
    .await;
    assert_eq!(started.status, 201);
    let s = started.json();
    let code = s["intake"].as_str().unwrap().to_string();
    let participant = s["participant"].as_str().unwrap().to_string();
    let entry = B64.decode(s["entry"].as_str().unwrap()).unwrap();

    let hope = AgencyClient::new(
        &origin,
        &net::agency_key_id("hope-clinic"),
        net::agency_key("hope-clinic"),
    )
    .unwrap();
    // Not signed by the person yet: nothing to co-sign.
    let e = hope.confirm_intake(&code).await.unwrap_err().to_string();
    assert!(e.contains("not signed yet"), "{e}");

    // A signature by another key is refused.
    let path = format!("/v1/participant/intakes/{code}/signature");
    let other = ed25519_dalek::SigningKey::from_bytes(&[43; 32]);
    let a = json_post(
        path.clone(),
        json!({"signature": B64.encode(other.sign(&entry).to_bytes())}),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.json()["type"]
        .as_str()
        .unwrap()
        .ends_with("bad-signature"));
    let a = json_post(
        path,
        json!({"signature": B64.encode(key.sign(&entry).to_bytes())}),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.json());

    // Another agency cannot complete it, however it tries.
    let riverside = AgencyClient::new(
        &origin,
        &net::agency_key_id("riverside-housing"),
        net::agency_key("riverside-housing"),
    )
    .unwrap();
    let e = riverside
        .confirm_intake(&code)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("enrols at hope-clinic"), "{e}");
    assert!(!net.dep.state().unwrap().participant_exists(&participant));

    // The named agency does; the code may be typed in lower case.
    let (who, reply) = hope.confirm_intake(&code.to_lowercase()).await.unwrap();
    assert_eq!((who.as_str(), reply.status), (participant.as_str(), 201));
    let shown = net::send(
        net.addr,
        &net::Raw {
            method: "GET".into(),
            target: format!("/v1/participant/intakes/{code}"),
            headers: Vec::new(),
            body: Vec::new(),
        },
    )
    .await;
    assert_eq!(shown.json()["status"], "enrolled");
    // The person signs in with the key made for the intake.
    let mut them =
        ParticipantClient::new(&origin, &participant, &format!("{participant}:1"), key).unwrap();
    assert_eq!(them.sign_in().await.unwrap().status, 200);

    // An intake nobody finishes ends after fifteen minutes.
    let late = json_post(
        "/v1/participant/intakes".into(),
        json!({"agency": "hope-clinic", "public_key": B64.encode(other.verifying_key().as_bytes())}),
    )
    .await;
    let late_code = late.json()["intake"].as_str().unwrap().to_string();
    net.clock.advance(15 * 60);
    let gone = net::send(
        net.addr,
        &net::Raw {
            method: "GET".into(),
            target: format!("/v1/participant/intakes/{late_code}"),
            headers: Vec::new(),
            body: Vec::new(),
        },
    )
    .await;
    assert_eq!(gone.status, 404);
    net.stop().await;
}
