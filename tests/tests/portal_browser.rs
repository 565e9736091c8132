//! The portal in real headless Chromium, driven over WebDriver: every page
//! there is, in both languages, at 360 px and 1280 px wide, has no serious
//! or critical axe-core violation and no sideways scrolling.
//!
//! The tools come from `scripts/test.sh` (Debian's `chromium` and
//! `chromium-driver`, axe-core from npm, pinned by tests/browser). This
//! test fails, never skips, when one is missing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consentry_tests::fixture;
use consentry_tests::net;
use fantoccini::{Client, ClientBuilder};
use gateway::participant::client::ParticipantClient;
use serde_json::{json, Value};

fn tool(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "{var}: {path} is missing; scripts/test.sh installs it"
    );
    path
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free loopback port, and a headless Chromium session.
async fn browser() -> (Driver, Client) {
    let chromedriver = tool("CONSENTRY_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = tool("CONSENTRY_CHROMIUM", "/usr/bin/chromium");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start: {last:?}");
}

/// axe-core's serious and critical violations on the loaded page.
async fn axe(c: &Client, source: &str) -> Vec<Value> {
    c.execute(source, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {resultTypes: ['violations']})\
               .then(r => done(JSON.stringify(r.violations)))\
               .catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e)}])));",
            vec![],
        )
        .await
        .unwrap();
    let all: Vec<Value> = serde_json::from_str(found.as_str().unwrap()).unwrap();
    all.into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_in_both_languages_at_phone_and_laptop_width() {
    let axe_source = std::fs::read_to_string(tool(
        "CONSENTRY_AXE_JS",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/browser/node_modules/axe-core/axe.min.js"
        ),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let me = ParticipantClient::new(
        &origin,
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();

    // Something to see: an allowed request and an emergency access.
    for (agency, purpose, categories) in [
        (
            "riverside-housing",
            "housing-placement",
            "health.sud.treatment",
        ),
        ("st-marys-er", "medical-emergency", "health.sud"),
    ] {
        let ask = net::Ask::new(
            agency,
            "hope-clinic",
            &fixture::participant_id(0),
            purpose,
            categories,
        );
        assert_eq!(net::ask(&net, &ask).await.status, 200, "{agency}");
    }

    let (_driver, c) = browser().await;
    let mut checked = 0;
    for signed_in in [false, true] {
        if signed_in {
            // Sign in from the browser itself, so that it holds the
            // HttpOnly session cookie: the test signs the challenge with
            // the participant's key, the page posts it.
            c.goto(&format!("{origin}/portal/en/signin")).await.unwrap();
            let ch = me
                .post_json(
                    "/v1/participant/challenge",
                    &json!({"participant": fixture::participant_id(0)}),
                )
                .await
                .unwrap();
            let message = ch.body["sign"].as_str().unwrap();
            let signature = {
                use base64::Engine;
                use ed25519_dalek::Signer;
                base64::engine::general_purpose::STANDARD.encode(
                    fixture::participant_key(0)
                        .sign(message.as_bytes())
                        .to_bytes(),
                )
            };
            let body = json!({
                "participant": fixture::participant_id(0),
                "challenge": ch.body["challenge"],
                "signature": signature,
            });
            let status = c
                .execute_async(
                    "const [body, done] = arguments;\
                     fetch('/v1/participant/session', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)})\
                       .then(r => done(r.status)).catch(e => done(String(e)));",
                    vec![body],
                )
                .await
                .unwrap();
            assert_eq!(status, json!(200));
        }
        for lang in ["en", "es"] {
            let pages: &[&str] = if signed_in {
                &["", "disclosures"]
            } else {
                &["", "signin", "restore"]
            };
            for page in pages {
                for width in [360u32, 1280] {
                    c.set_window_size(width, 900).await.unwrap();
                    let url = format!("{origin}/portal/{lang}/{page}");
                    c.goto(&url).await.unwrap();
                    let html_lang = c
                        .execute("return document.documentElement.lang;", vec![])
                        .await
                        .unwrap();
                    assert_eq!(html_lang, json!(lang), "{url}");
                    let bad = axe(&c, &axe_source).await;
                    assert!(
                        bad.is_empty(),
                        "{url} at {width} px: {}",
                        serde_json::to_string_pretty(&bad).unwrap()
                    );
                    let sideways = c
                        .execute(
                            "return document.documentElement.scrollWidth > window.innerWidth;",
                            vec![],
                        )
                        .await
                        .unwrap();
                    assert_eq!(
                        sideways,
                        json!(false),
                        "{url} scrolls sideways at {width} px"
                    );
                    let text = c.source().await.unwrap();
                    match (signed_in, *page) {
                        (true, "") => {
                            assert!(text.contains("consent-c-housing"), "{url}: the card")
                        }
                        (true, _) => {
                            let word = gateway::participant::portal::catalog(
                                policy::Language::from_code(lang).unwrap(),
                            )
                            .t("kind_emergency");
                            assert!(
                                text.contains("class=\"event emergency\"") && text.contains(word),
                                "{url}: the emergency, marked in words"
                            );
                        }
                        _ => {}
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 20);
    c.close().await.unwrap();
    net.stop().await;
}

/// A fresh browser profile: the key restored from the printed recovery
/// code (decoded, checked and imported in the page, never sent), then a
/// sign-in by the form, signed in the browser, lands on the consents. A
/// mistyped code is refused in words next to its field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_restored_from_the_recovery_code_signs_in_from_the_browser() {
    use fantoccini::Locator;
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let id = fixture::participant_id(0);
    let code = gateway::participant::recovery::encode(&fixture::participant_key(0).to_bytes());
    let (_driver, c) = browser().await;

    // Signing in before the key is here says so.
    c.goto(&format!("{origin}/portal/es/signin")).await.unwrap();
    c.find(Locator::Css("#participant"))
        .await
        .unwrap()
        .send_keys(&id)
        .await
        .unwrap();
    c.find(Locator::Css("#signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = wait_for(
        &c,
        "return !document.getElementById('participant-error').hidden;",
    )
    .await;
    assert!(shown, "no key on this device: the error is shown");

    // A typo in the code.
    c.goto(&format!("{origin}/portal/es/restore"))
        .await
        .unwrap();
    let mut typo = code.clone().into_bytes();
    typo[0] = if typo[0] == b'0' { b'1' } else { b'0' };
    c.find(Locator::Css("#participant"))
        .await
        .unwrap()
        .send_keys(&id)
        .await
        .unwrap();
    c.find(Locator::Css("#code"))
        .await
        .unwrap()
        .send_keys(std::str::from_utf8(&typo).unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("#restore button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        wait_for(&c, "return !document.getElementById('code-error').hidden;").await,
        "a mistyped code is refused"
    );
    // The right code, typed in lower case with spaces.
    let code_input = c.find(Locator::Css("#code")).await.unwrap();
    code_input.clear().await.unwrap();
    code_input
        .send_keys(&code.to_lowercase().replace('-', " "))
        .await
        .unwrap();
    c.find(Locator::Css("#restore button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        wait_for(&c, "return location.pathname === '/portal/es/signin';").await,
        "restored, on to sign in"
    );
    c.find(Locator::Css("#participant"))
        .await
        .unwrap()
        .send_keys(&id)
        .await
        .unwrap();
    c.find(Locator::Css("#signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        wait_for(&c, "return location.pathname === '/portal/es/' && !!document.getElementById('consent-c-housing');").await,
        "signed in: the consents page with the card"
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// Polls `script` (which returns a boolean) for up to ten seconds.
async fn wait_for(c: &Client, script: &str) -> bool {
    for _ in 0..100 {
        if let Ok(Value::Bool(true)) = c.execute(script, vec![]).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
