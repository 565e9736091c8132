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
    let a = net::ask(
        &net,
        &net::Ask::new(
            "riverside-housing",
            "hope-clinic",
            &fixture::participant_id(0),
            "housing-placement",
            "health.sud.treatment",
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = net::ask(
        &net,
        &net::Ask::new(
            "st-marys-er",
            "hope-clinic",
            &fixture::participant_id(0),
            "medical-emergency",
            "health.sud",
        ),
    )
    .await;
    assert_eq!(a.status, 200);

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
                &["", "signin"]
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
    assert_eq!(checked, 16);
    c.close().await.unwrap();
    net.stop().await;
}
