//! The portal in real headless Chromium, driven over WebDriver: every page
//! there is, in both languages, at 360 px and 1280 px wide, has no serious
//! or critical axe-core violation and no sideways scrolling; the
//! participant's journeys work, over loopback and over HTTPS at a host
//! name with the deployment CA trusted in the browser's certificate store.
//!
//! The tools come from `scripts/test.sh` (Debian's `chromium`,
//! `chromium-driver` and `libnss3-tools` for certutil, axe-core from npm,
//! pinned by tests/browser). This test fails, never skips, when one is
//! missing.

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

/// chromedriver and the browsers it starts, with a HOME and a TMPDIR of
/// their own (their certificate store, profiles and sockets), all gone
/// when it drops: asked to shut down first, which quits its browsers (a
/// killed chromedriver leaves them running), then killed if it lingers.
struct Driver {
    child: Child,
    port: u16,
    /// Dropped after `drop` has stopped everything that writes in it.
    _home: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let asked = std::net::TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(
                s,
                "GET /shutdown HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nconnection: close\r\n\r\n",
                self.port
            )?;
            s.read_to_end(&mut Vec::new())
        });
        if asked.is_ok() {
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// chromedriver on a port it chooses (`--port=0`, read back from what
    /// it prints: a port found free here and bound later by chromedriver
    /// could be another test's by then), its HOME and TMPDIR `home`.
    /// chromedriver binds the port it chose for IPv6 on IPv4 too, and
    /// exits when another socket holds that one ("IPv4 port not
    /// available"): then it is started again, on another port; any other
    /// failure fails the test.
    fn start(home: tempfile::TempDir) -> Driver {
        const PORT_TAKEN_STARTS_MAX: usize = 5;
        let mut said = Vec::new();
        for _ in 0..PORT_TAKEN_STARTS_MAX {
            match Self::spawn(home.path()) {
                Ok((child, port)) => {
                    return Driver {
                        child,
                        port,
                        _home: home,
                    }
                }
                Err(lines) if lines.iter().any(|l| l.contains("port not available")) => {
                    said = lines;
                }
                Err(lines) => panic!("chromedriver stopped before it listened: {lines:?}"),
            }
        }
        panic!("chromedriver found its port taken {PORT_TAKEN_STARTS_MAX} times: {said:?}")
    }

    /// One start: the child and its port, or what it said before it
    /// stopped.
    fn spawn(home: &std::path::Path) -> Result<(std::process::Child, u16), Vec<String>> {
        use std::io::BufRead;
        let chromedriver = tool("CONSENTRY_CHROMEDRIVER", "/usr/bin/chromedriver");
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .env("HOME", home)
            .env("TMPDIR", home)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads on to the end, so that chromedriver never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            let mut said = Vec::new();
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, p)| p.trim_end_matches('.').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = tx.send(Ok(port));
                } else {
                    said.push(line);
                }
            }
            let _ = tx.send(Err(said));
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(port)) => Ok((child, port)),
            Ok(Err(said)) => {
                let _ = child.wait();
                Err(said)
            }
            Err(e) => panic!("chromedriver did not say where it listens: {e}"),
        }
    }
}

/// chromedriver and a headless Chromium session.
async fn browser() -> (Driver, Client) {
    browser_with(&[]).await
}

/// As [`browser`], with more Chromium arguments.
async fn browser_with(extra: &[&str]) -> (Driver, Client) {
    launch(extra, None).await
}

/// As [`browser_with`], the browser trusting the CA in `ca` (a PEM file)
/// to identify servers, as a device whose owner installed it would: in
/// its certificate store, not by ignoring certificate errors.
async fn browser_trusting(ca: &std::path::Path, extra: &[&str]) -> (Driver, Client) {
    launch(extra, Some(ca)).await
}

/// Chromium on Linux keeps the certificates its user trusts in the NSS
/// database `$HOME/.pki/nssdb`; `ca` is added there, trusted for servers.
fn trust_in_nssdb(home: &std::path::Path, ca: &std::path::Path) {
    let certutil = tool("CONSENTRY_CERTUTIL", "/usr/bin/certutil");
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let ca = ca.to_str().unwrap();
    for args in [
        vec!["-d", &db, "-N", "--empty-password"],
        vec![
            "-d",
            &db,
            "-A",
            "-n",
            "Consentry test CA",
            "-t",
            "C,,",
            "-i",
            ca,
        ],
    ] {
        let out = Command::new(&certutil).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn launch(extra: &[&str], ca: Option<&std::path::Path>) -> (Driver, Client) {
    let chromium = tool("CONSENTRY_CHROMIUM", "/usr/bin/chromium");
    let home = tempfile::tempdir().unwrap();
    if let Some(ca) = ca {
        trust_in_nssdb(home.path(), ca);
    }
    let driver = Driver::start(home);
    let args: Vec<&str> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    let mut caps = serde_json::Map::new();
    // Said, not left to the default: no test here passes by a
    // certificate error being waved through.
    caps.insert("acceptInsecureCerts".into(), json!(false));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": args
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("no browser session: {e}"));
    device_clock_at_fixture_now(&c).await;
    (driver, c)
}

/// The fixture gateway's clock stands at `fixture::NOW`, not today; the
/// portal refuses to sign an entry dated minutes away from the device's
/// clock, so this browser's `Date.now` is set to the gateway's time (and
/// runs on from there), before any page's script runs.
async fn device_clock_at_fixture_now(c: &Client) {
    let source = format!(
        "(() => {{ const real = Date.now.bind(Date); const offset = {} - real(); Date.now = () => real() + offset; }})();",
        fixture::NOW * 1000
    );
    c.issue_cmd(Cdp(json!({
        "cmd": "Page.addScriptToEvaluateOnNewDocument",
        "params": {"source": source},
    })))
    .await
    .unwrap();
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
    let mut decision = String::new();
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
        let a = net::ask(&net, &ask).await;
        assert_eq!(a.status, 200, "{agency}");
        decision = a.decision().0;
    }

    let (_driver, c) = browser().await;
    let mut checked = 0;
    for signed_in in [false, true] {
        if signed_in {
            sign_in_as_fixture(&c, &me, &origin).await;
        }
        for lang in ["en", "es"] {
            let pages: Vec<Page> = if signed_in {
                vec![
                    Page::Path(""),
                    Page::Path("disclosures"),
                    Page::Path("grant"),
                    Page::GrantWithErrors,
                    Page::GrantReview,
                    Page::Path("revoke/c-housing"),
                    Page::Grievance(decision.clone()),
                    Page::GrievanceReview(decision.clone()),
                ]
            } else {
                vec![
                    Page::Path(""),
                    Page::Path("signin"),
                    Page::Path("restore"),
                    Page::Path("enrol"),
                    Page::Enrolled,
                ]
            };
            for page in &pages {
                for width in [360u32, 1280] {
                    c.set_window_size(width, 900).await.unwrap();
                    let url = page.open(&c, &origin, lang).await;
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
                    // A language switch on every page, to the same page.
                    let other = if lang == "en" { "es" } else { "en" };
                    let switch = c
                        .execute(
                            "return [...document.querySelectorAll('nav a[hreflang]')].map(a => a.getAttribute('hreflang'));",
                            vec![],
                        )
                        .await
                        .unwrap();
                    assert_eq!(switch, json!([other]), "{url}: the language switch");
                    let text = c.source().await.unwrap();
                    match (signed_in, page) {
                        (true, Page::Path("")) => {
                            assert!(text.contains("consent-c-housing"), "{url}: the card")
                        }
                        (true, Page::Path("disclosures")) => {
                            let word = gateway::participant::portal::catalog(
                                policy::Language::from_code(lang).unwrap(),
                            )
                            .t("kind_emergency");
                            assert!(
                                text.contains("class=\"event emergency\"") && text.contains(word),
                                "{url}: the emergency, marked in words"
                            );
                            // Highlighted by its frame as well as in words.
                            let frame = c
                                .execute(
                                    "return getComputedStyle(document.querySelector('.event.emergency')).borderTopStyle;",
                                    vec![],
                                )
                                .await
                                .unwrap();
                            assert_eq!(frame, json!("double"), "{url}: the emergency's frame");
                            assert!(
                                wait_for(&c, "return document.querySelectorAll('.proof[data-state=verified]').length >= 2 && !document.querySelector('.proof[data-state=failed]');").await,
                                "{url}: every item verified in the browser"
                            );
                        }
                        _ => {}
                    }
                    screenshot(&c, &format!("{lang}-{}-{width}", page.name())).await;
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 52);
    c.close().await.unwrap();
    net.stop().await;
}

/// Signs in from the browser itself, so that it holds the HttpOnly
/// session cookie: the test signs the challenge with the fixture
/// participant's key, the page posts it.
async fn sign_in_as_fixture(c: &Client, me: &ParticipantClient, origin: &str) {
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

/// A page of the portal, or a state of one reached through its form.
enum Page {
    Path(&'static str),
    /// The enrol page after "make my key": code, id and QR shown.
    Enrolled,
    /// The grant form posted empty: the errors, tied to their fields.
    GrantWithErrors,
    /// The grant form filled in: the sentence to sign.
    GrantReview,
    Grievance(String),
    GrievanceReview(String),
}

impl Page {
    fn name(&self) -> String {
        match self {
            Page::Path("") => "home".into(),
            Page::Path(p) => p.replace('/', "-"),
            Page::Enrolled => "enrolled".into(),
            Page::GrantWithErrors => "grant-errors".into(),
            Page::GrantReview => "grant-review".into(),
            Page::Grievance(_) => "grievance".into(),
            Page::GrievanceReview(_) => "grievance-review".into(),
        }
    }

    /// Opens the page in `lang`; returns its URL.
    async fn open(&self, c: &Client, origin: &str, lang: &str) -> String {
        let base = format!("{origin}/portal/{lang}");
        let click = |css: &'static str| async move { activate(c, css, Drive::Pointer).await };
        match self {
            Page::Path(p) => {
                let url = format!("{base}/{p}");
                c.goto(&url).await.unwrap();
                url
            }
            Page::Enrolled => {
                c.goto(&format!("{base}/enrol")).await.unwrap();
                choose(c, "#agency", "hope-clinic", Drive::Pointer).await;
                click("#enrol button[type=submit]").await;
                assert!(wait_for(c, "return !document.getElementById('enrolled').hidden;").await);
                format!("{base}/enrol (done)")
            }
            Page::GrantWithErrors => {
                c.goto(&format!("{base}/grant")).await.unwrap();
                click("#grant button[type=submit]").await;
                assert!(wait_for(c, "return !!document.getElementById('errors');").await);
                format!("{base}/grant (errors)")
            }
            Page::GrantReview => {
                c.goto(&format!("{base}/grant")).await.unwrap();
                for css in [
                    "input[name=recipient][value='northside-jobs']",
                    "input[name=holder][value='hope-clinic']",
                    "input[name=category][value='social.peer-support']",
                    "input[name=purpose][value='employment-support']",
                ] {
                    click(css).await;
                }
                click("#grant button[type=submit]").await;
                assert!(wait_for(c, "return !!document.getElementById('sign-entry');").await);
                format!("{base}/grant (review)")
            }
            Page::Grievance(d) => {
                let url = format!("{base}/grievance/{d}");
                c.goto(&url).await.unwrap();
                url
            }
            Page::GrievanceReview(d) => {
                c.goto(&format!("{base}/grievance/{d}")).await.unwrap();
                click("#reason-4").await;
                click("#grievance button[type=submit]").await;
                assert!(wait_for(c, "return !!document.getElementById('sign-entry');").await);
                format!("{base}/grievance/{d} (review)")
            }
        }
    }
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
    type_into(&c, "#participant", &id, Drive::Pointer).await;
    activate(&c, "#signin button", Drive::Pointer).await;
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
    type_into(&c, "#participant", &id, Drive::Pointer).await;
    type_into(
        &c,
        "#code",
        std::str::from_utf8(&typo).unwrap(),
        Drive::Pointer,
    )
    .await;
    activate(&c, "#restore button", Drive::Pointer).await;
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
    activate(&c, "#restore button", Drive::Pointer).await;
    assert!(
        wait_for(&c, "return location.pathname === '/portal/es/signin';").await,
        "restored, on to sign in"
    );
    type_into(&c, "#participant", &id, Drive::Pointer).await;
    activate(&c, "#signin button", Drive::Pointer).await;
    assert!(
        wait_for(&c, "return location.pathname === '/portal/es/' && !!document.getElementById('consent-c-housing');").await,
        "signed in: the consents page with the card"
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// Polls `script` (which returns a boolean) for up to twenty seconds.
async fn wait_for(c: &Client, script: &str) -> bool {
    for _ in 0..200 {
        if let Ok(Value::Bool(true)) = c.execute(script, vec![]).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// How the flow is driven: by pointer (WebDriver clicks and typing into
/// elements), or by keyboard only (Tab to each control, Enter or Space to
/// use it, typing into whatever has focus).
#[derive(Clone, Copy, PartialEq)]
enum Drive {
    Pointer,
    Keyboard,
}

async fn press(c: &Client, key: char) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let a = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(a).await.unwrap();
}

/// Tabs forward until `css` has focus; the keyboard must reach it.
async fn tab_to(c: &Client, css: &str) {
    let check = format!(
        "return !!document.activeElement && document.activeElement.matches({});",
        serde_json::to_string(css).unwrap()
    );
    for _ in 0..300 {
        if c.execute(&check, vec![]).await.unwrap() == json!(true) {
            // Focus must be visible where it lands (WCAG 2.4.7).
            let outline = c
                .execute(
                    "const s = getComputedStyle(document.activeElement); return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(outline, json!(true), "focus is visible on {css}");
            return;
        }
        press(c, fantoccini::key::Key::Tab.into()).await;
    }
    panic!("the keyboard never reaches {css}");
}

async fn activate(c: &Client, css: &str, drive: Drive) {
    match drive {
        Drive::Pointer => c
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap(),
        Drive::Keyboard => {
            // A radio group is one tab stop; the arrows move within it.
            let radio_group = c
                .execute(
                    "const e = document.querySelector(arguments[0]); return e && e.type === 'radio' ? e.name : null;",
                    vec![json!(css)],
                )
                .await
                .unwrap();
            if let Some(name) = radio_group.as_str() {
                tab_to(c, &format!("input[name='{name}']")).await;
                let check = format!(
                    "return document.activeElement.matches({});",
                    serde_json::to_string(css).unwrap()
                );
                for _ in 0..20 {
                    if c.execute(&check, vec![]).await.unwrap() == json!(true) {
                        press(c, ' ').await;
                        return;
                    }
                    press(c, fantoccini::key::Key::Down.into()).await;
                }
                panic!("the arrows never reach {css}");
            }
            tab_to(c, css).await;
            let kind = c
                .execute("return document.activeElement.type || '';", vec![])
                .await
                .unwrap();
            let key = if matches!(kind.as_str(), Some("checkbox" | "radio")) {
                ' '
            } else {
                fantoccini::key::Key::Enter.into()
            };
            press(c, key).await;
        }
    }
}

async fn type_into(c: &Client, css: &str, text: &str, drive: Drive) {
    match drive {
        Drive::Pointer => c
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap(),
        Drive::Keyboard => {
            tab_to(c, css).await;
            for ch in text.chars() {
                press(c, ch).await;
            }
        }
    }
}

async fn choose(c: &Client, css: &str, value: &str, drive: Drive) {
    match drive {
        Drive::Pointer => c
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap(),
        Drive::Keyboard => {
            tab_to(c, css).await;
            let check = format!(
                "return document.activeElement.value === {};",
                serde_json::to_string(value).unwrap()
            );
            for _ in 0..50 {
                if c.execute(&check, vec![]).await.unwrap() == json!(true) {
                    return;
                }
                press(c, fantoccini::key::Key::Down.into()).await;
            }
            panic!("the keyboard cannot choose {value} in {css}");
        }
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(fantoccini::Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The eight steps of issue 14, in Spanish, against the real gateway and
/// record systems: enrol with a key made in this browser (recovery code
/// shown, as text and QR), the agency co-signs the intake; sign in; grant
/// a consent; an agency request is allowed; it appears in the timeline,
/// verified in the browser; revoke with one confirmation; the next request
/// is denied; the denial appears in the timeline, verified too.
async fn eight_steps(drive: Drive) {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let (_driver, c) = browser().await;
    let agency = gateway::client::AgencyClient::new(
        &origin,
        &net::agency_key_id("hope-clinic"),
        net::agency_key("hope-clinic"),
    )
    .unwrap();
    let (participant, consent) =
        enrol_sign_in_and_grant(&c, &net, &origin, &agency, drive, drive_name(drive)).await;

    // 4. An agency request through the gateway is allowed.
    let ask = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &participant,
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(net::ask(&net, &ask).await.status, 200, "allowed");

    // 5. It is in the timeline, verified by the browser.
    activate(&c, "a[href='/portal/es/disclosures']", drive).await;
    assert!(
        wait_for(&c, "return document.querySelectorAll('.event.allowed .proof[data-state=verified]').length === 1;").await,
        "the allowed request is listed and verified in the browser"
    );

    // 6. Revoke, with one confirmation; the card says so at once.
    activate(&c, "a[href='/portal/es/']", drive).await;
    assert!(wait_for(&c, "return location.pathname === '/portal/es/';").await);
    activate(&c, &format!("a[href='/portal/es/revoke/{consent}']"), drive).await;
    assert!(wait_for(&c, "return !!document.getElementById('sign-entry');").await);
    activate(&c, "#sign-entry button[type=submit]", drive).await;
    assert!(
        wait_for(&c, "return location.search.startsWith('?revoked=');").await,
        "revoked"
    );
    let card = text_of(&c, &format!("#consent-{consent}")).await;
    assert!(card.contains("Revocado"), "the card says revoked: {card}");

    // 7. The next request is denied.
    assert_eq!(
        net::ask(&net, &ask).await.status,
        403,
        "denied after revoke"
    );

    // 8. The denial is in the timeline, verified too.
    activate(&c, "a[href='/portal/es/disclosures']", drive).await;
    assert!(
        wait_for(&c, "return document.querySelectorAll('.event.denied .proof[data-state=verified]').length === 1 && document.querySelectorAll('.proof[data-state=failed]').length === 0;").await,
        "the denial is listed and verified"
    );
    let summary = text_of(&c, "#verify-summary").await;
    assert!(summary.contains("verificada"), "{summary}");
    screenshot(&c, &format!("flow-{}-timeline-360", drive_name(drive))).await;

    // A grievance on the denial: a reason from the list, shown, signed.
    activate(&c, ".event.denied a[href*='/grievance/']", drive).await;
    assert!(wait_for(&c, "return !!document.getElementById('grievance');").await);
    activate(&c, "input[name=reason][value='wrongly-denied']", drive).await;
    activate(&c, "#grievance button[type=submit]", drive).await;
    assert!(wait_for(&c, "return !!document.getElementById('sign-entry');").await);
    activate(&c, "#sign-entry button[type=submit]", drive).await;
    assert!(
        wait_for(&c, "return location.search === '?grievance=filed';").await,
        "grievance filed"
    );
    let grievances = text_of(&c, "#grievances + ul").await;
    assert!(
        grievances.contains("mi atención se retrasó") && grievances.contains("Abierta"),
        "the grievance is listed, open: {grievances}"
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// Steps 1 to 3 of [`eight_steps`], in Spanish, the portal at `portal`:
/// enrol with a key made in this browser (`agency` co-signs the intake),
/// sign in, grant a consent and download it. The participant's id and the
/// consent's; screenshots named by `label`.
async fn enrol_sign_in_and_grant(
    c: &Client,
    net: &net::Net,
    portal: &str,
    agency: &gateway::client::AgencyClient,
    drive: Drive,
    label: &str,
) -> (String, String) {
    c.set_window_size(360, 800).await.unwrap();
    let participant = enrol(c, net, portal, agency, drive, label).await;

    // 2. Sign in.
    activate(c, "#to-signin", drive).await;
    assert!(wait_for(c, "return location.pathname === '/portal/es/signin';").await);
    type_into(c, "#participant", &participant, drive).await;
    activate(c, "#signin button[type=submit]", drive).await;
    assert!(
        wait_for(c, "return location.pathname === '/portal/es/';").await,
        "signed in"
    );

    // 3. Grant, in Spanish: the sentence is shown before signing.
    activate(c, "a[href='/portal/es/grant']", drive).await;
    assert!(wait_for(c, "return location.pathname === '/portal/es/grant';").await);
    for css in [
        "input[name=recipient][value='riverside-housing']",
        "input[name=holder][value='hope-clinic']",
        "input[name=category][value='health.sud.treatment']",
        "input[name=purpose][value='housing-placement']",
    ] {
        activate(c, css, drive).await;
    }
    activate(c, "#grant button[type=submit]", drive).await;
    assert!(wait_for(c, "return !!document.getElementById('sign-entry');").await);
    let sentence = text_of(c, ".sentence").await;
    assert!(
        sentence.contains("puede ver") && sentence.contains("Riverside"),
        "the consent in Spanish words: {sentence}"
    );
    screenshot(c, &format!("flow-{}-grant-review-360", label)).await;
    activate(c, "#sign-entry button[type=submit]", drive).await;
    assert!(
        wait_for(c, "return location.pathname === '/portal/es/' && location.search.startsWith('?granted=');").await,
        "granted"
    );
    let consent = c
        .execute(
            "return new URLSearchParams(location.search).get('granted');",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let card = text_of(c, &format!("#consent-{consent}")).await;
    assert!(card.contains("Vigente"), "the card says active: {card}");
    // Its downloads work with the session cookie alone.
    let exported = c
        .execute_async(
            "const [id, done] = arguments;\
             Promise.all([\
               fetch(document.querySelector(`#consent-${id} a[download$='-fhir.json']`).href).then(r => r.json()),\
               fetch(document.querySelector(`#consent-${id} a[download$='-receipt.json']`).href).then(r => r.json()),\
             ]).then(([f, r]) => done([f.resourceType, f.status, r.consent_state || null]), e => done(String(e)));",
            vec![json!(consent)],
        )
        .await
        .unwrap();
    assert_eq!(exported[0], json!("Consent"), "FHIR download: {exported}");
    assert_eq!(exported[1], json!("active"), "FHIR download: {exported}");
    assert!(!exported[2].is_null(), "receipt download: {exported}");

    (participant, consent)
}

/// Step 1: enrol with a key made in this browser, `agency` co-signing
/// the intake; the participant's id.
async fn enrol(
    c: &Client,
    net: &net::Net,
    portal: &str,
    agency: &gateway::client::AgencyClient,
    drive: Drive,
    label: &str,
) -> String {
    // 1. Enrol: the key is made here; the code is shown once.
    c.goto(&format!("{portal}/portal/es/enrol")).await.unwrap();
    choose(c, "#agency", "hope-clinic", drive).await;
    activate(c, "#enrol button[type=submit]", drive).await;
    assert!(
        wait_for(c, "return !document.getElementById('enrolled').hidden;").await,
        "the enrolment result is shown"
    );
    let intake = text_of(c, "#intake-code").await;
    let participant = text_of(c, "#participant-id").await;
    let code = text_of(c, "#recovery-code").await;
    assert!(
        participant.starts_with("p-") && participant.len() == 28,
        "{participant}"
    );
    let seed = gateway::participant::recovery::decode(&code)
        .unwrap_or_else(|e| panic!("the recovery code {code:?} decodes: {e}"));
    let qr_modules = c
        .execute(
            "const p = document.querySelector('#recovery-qr svg path'); return p ? p.getAttribute('d').split('M').length - 1 : 0;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        qr_modules.as_u64().unwrap() > 100,
        "a QR code is drawn: {qr_modules}"
    );
    screenshot(c, &format!("flow-{}-enrolled-360", label)).await;

    // The staff member confirms with the agency's key.
    let (enrolled, reply) = agency.confirm_intake(&intake).await.unwrap();
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(enrolled, participant);
    assert!(
        wait_for(c, "return !document.getElementById('to-signin').hidden;").await,
        "the page learns the enrolment is done"
    );
    // The enrolled key is the one whose seed the code shows.
    let key_id = {
        let state = net.dep.state().unwrap();
        let kid = state.participant_key_id(&participant).unwrap().to_string();
        let public = state.key(&kid).unwrap().public_key;
        let from_code = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        use base64::Engine;
        assert_eq!(
            public,
            base64::engine::general_purpose::STANDARD.encode(from_code.as_bytes()),
            "the recovery code restores the enrolled key"
        );
        kid
    };
    assert_eq!(key_id, format!("{participant}:1"));
    participant
}

fn drive_name(d: Drive) -> &'static str {
    match d {
        Drive::Pointer => "pointer",
        Drive::Keyboard => "keyboard",
    }
}

/// Writes a PNG of the page under target/portal-screenshots (an artifact,
/// not committed).
async fn screenshot(c: &Client, name: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/portal-screenshots");
    std::fs::create_dir_all(dir).unwrap();
    // The whole page, not only the first screenful.
    let (width, height) = c.get_window_size().await.unwrap();
    let full = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(height);
    c.set_window_size(width as u32, full.clamp(400, 6000) as u32 + 120)
        .await
        .unwrap();
    let png = c.screenshot().await.unwrap();
    c.set_window_size(width as u32, height as u32)
        .await
        .unwrap();
    assert!(png.len() > 1000, "a real screenshot of {name}");
    std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eight_steps_in_spanish() {
    eight_steps(Drive::Pointer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eight_steps_by_keyboard_only() {
    eight_steps(Drive::Keyboard).await;
}

/// chromedriver's `goog/cdp/execute`: a Chrome DevTools command.
#[derive(Debug)]
struct Cdp(Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// Makes every page of this browser look like one whose WebCrypto has no
/// Ed25519 (older phones' browsers): each Ed25519 operation rejects as
/// such a browser's does, before the page's own scripts run.
async fn without_webcrypto_ed25519(c: &Client) {
    let source = r#"
        (() => {
          const subtle = crypto.subtle;
          const at = { generateKey: 0, importKey: 2, sign: 0, verify: 0 };
          for (const [m, i] of Object.entries(at)) {
            const original = subtle[m].bind(subtle);
            subtle[m] = (...args) => {
              const alg = args[i];
              const name = typeof alg === 'string' ? alg : alg && alg.name;
              if (name === 'Ed25519') {
                return Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'));
              }
              return original(...args);
            };
          }
        })();
    "#;
    c.issue_cmd(Cdp(json!({
        "cmd": "Page.addScriptToEvaluateOnNewDocument",
        "params": {"source": source},
    })))
    .await
    .unwrap();
}

/// A browser without WebCrypto Ed25519: the portal falls back to the
/// audited @noble/ed25519 the gateway serves. The key is restored from the
/// recovery code, signs in, and the timeline's marks verify, all with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_webcrypto_ed25519_the_served_library_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let id = fixture::participant_id(0);
    let ask = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &id,
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    let code = gateway::participant::recovery::encode(&fixture::participant_key(0).to_bytes());
    let (_driver, c) = browser().await;
    without_webcrypto_ed25519(&c).await;

    c.goto(&format!("{origin}/portal/en/restore"))
        .await
        .unwrap();
    let native = c
        .execute_async(
            "const done = arguments[0]; crypto.subtle.generateKey({name: 'Ed25519'}, false, ['sign']).then(() => done(true), () => done(false));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(native, json!(false), "the page sees no WebCrypto Ed25519");
    type_into(&c, "#participant", &id, Drive::Pointer).await;
    type_into(&c, "#code", &code, Drive::Pointer).await;
    activate(&c, "#restore button", Drive::Pointer).await;
    assert!(wait_for(&c, "return location.pathname === '/portal/en/signin';").await);
    type_into(&c, "#participant", &id, Drive::Pointer).await;
    activate(&c, "#signin button", Drive::Pointer).await;
    assert!(
        wait_for(&c, "return location.pathname === '/portal/en/';").await,
        "signed in with a signature made by the served library"
    );
    c.goto(&format!("{origin}/portal/en/disclosures"))
        .await
        .unwrap();
    let verified = wait_for(
        &c,
        "return document.querySelectorAll('.proof[data-state=verified]').length >= 1 && !document.querySelector('.proof:not([data-state=verified])');",
    )
    .await;
    let why = c
        .execute(
            "return (document.getElementById('timeline').dataset.error || '') + ' / ' + [...document.querySelectorAll('.proof')].map(p => p.dataset.state).join() + ' / ' + document.getElementById('verify-summary').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        verified,
        "the checkpoint's signature verified by the served library ({why})"
    );
    let loaded = c
        .execute(
            "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/portal/static/vendor/noble-ed25519.js'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(loaded, json!(true), "the fallback library was loaded");
    c.close().await.unwrap();
    net.stop().await;
}

/// The auditor's HTML report, one self-contained file, in Chromium: no
/// serious or critical axe violation, no sideways scrolling on a phone;
/// screenshots at 360 and 1280 px under target/portal-screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_report_reads_on_a_phone() {
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
    net::every_kind_of_traffic(&net).await;
    net.stop().await;
    let b = consentry_tests::fixture::export_bundle(
        &dir.path().join("data"),
        &dir.path().join("bundle"),
    );
    let r = audit::report::report(&b, false).unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, audit::report::html(&r)).unwrap();

    let (_driver, c) = browser().await;
    for width in [360u32, 1280] {
        c.set_window_size(width, 900).await.unwrap();
        c.goto(&format!("file://{}", page.display())).await.unwrap();
        let bad = axe(&c, &axe_source).await;
        assert!(
            bad.is_empty(),
            "{}",
            serde_json::to_string_pretty(&bad).unwrap()
        );
        let sideways = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(sideways, json!(false), "scrolls sideways at {width} px");
        let bars = c
            .execute(
                "return document.querySelectorAll('svg.chart rect').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            bars,
            json!(2 * r.requests.len()),
            "a bar each for allowed and denied"
        );
        screenshot(&c, &format!("audit-report-{width}")).await;
    }
    c.close().await.unwrap();
}

/// With a witness policy, the timeline's "verified" mark waits for the
/// quorum: before the witnesses cosign, every item says too few witnesses
/// confirmed it; after two of three did, every item is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_mark_waits_for_the_witness_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    for i in 1..=3 {
        net::enrol_witness(&net, i).await;
    }
    net.state
        .participants
        .set_witness_policy(Some(net::witness_policy(2)));
    let ask = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    net.dep.log.publish_checkpoint().unwrap();
    let origin = format!("http://{}", net.addr);
    let me = ParticipantClient::new(
        &origin,
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();
    let (_driver, c) = browser().await;
    sign_in_as_fixture(&c, &me, &origin).await;
    let word =
        gateway::participant::portal::catalog(policy::Language::En).t("verify_few_witnesses");
    c.goto(&format!("{origin}/portal/en/disclosures"))
        .await
        .unwrap();
    let waiting = format!(
        "return document.querySelectorAll('.proof').length > 0 && [...document.querySelectorAll('.proof')].every(p => p.dataset.state === 'failed' && p.textContent === {});",
        serde_json::to_string(word).unwrap()
    );
    assert!(
        wait_for(&c, &waiting).await,
        "not verified: too few witnesses"
    );

    for i in 1..=2 {
        assert!(matches!(
            net::witness_round(&net, i, dir.path()).await,
            gateway::witness::Round::Cosigned(_)
        ));
    }
    c.goto(&format!("{origin}/portal/en/disclosures"))
        .await
        .unwrap();
    assert!(
        wait_for(&c, "return document.querySelectorAll('.proof').length > 0 && [...document.querySelectorAll('.proof')].every(p => p.dataset.state === 'verified');").await,
        "verified once two of three witnesses cosigned"
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// Puts the fixture participant's key in this browser from its recovery
/// code (the restore page) and signs in by the form.
async fn restore_and_sign_in(c: &Client, origin: &str, lang: &str) {
    let id = fixture::participant_id(0);
    let code = gateway::participant::recovery::encode(&fixture::participant_key(0).to_bytes());
    c.goto(&format!("{origin}/portal/{lang}/restore"))
        .await
        .unwrap();
    type_into(c, "#participant", &id, Drive::Pointer).await;
    type_into(c, "#code", &code, Drive::Pointer).await;
    activate(c, "#restore button", Drive::Pointer).await;
    assert!(
        wait_for(
            c,
            &format!("return location.pathname === '/portal/{lang}/signin';")
        )
        .await
    );
    type_into(c, "#participant", &id, Drive::Pointer).await;
    activate(c, "#signin button", Drive::Pointer).await;
    assert!(
        wait_for(
            c,
            &format!("return location.pathname === '/portal/{lang}/';")
        )
        .await,
        "signed in"
    );
}

/// The log's key is kept in the browser the first time it is used here.
/// When the same origin later serves another log key (here: the gateway
/// restarted with a new key, over the same browser profile), nothing is
/// marked verified, each item says the key changed, and a warning says
/// what to do; in both languages. The new gateway's checkpoint and proofs
/// are themselves valid under the key it serves: only the pin refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_key_other_than_the_one_kept_here_verifies_nothing_and_warns() {
    let axe_source = std::fs::read_to_string(tool(
        "CONSENTRY_AXE_JS",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/browser/node_modules/axe-core/axe.min.js"
        ),
    ))
    .unwrap();
    let ask = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    let first = tempfile::tempdir().unwrap();
    let net = net::start(first.path()).await;
    let addr = net.addr;
    let origin = format!("http://{addr}");
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    let (_driver, c) = browser().await;
    restore_and_sign_in(&c, &origin, "en").await;
    c.goto(&format!("{origin}/portal/en/disclosures"))
        .await
        .unwrap();
    let all_verified = "return document.querySelectorAll('.proof').length > 0 && [...document.querySelectorAll('.proof')].every(p => p.dataset.state === 'verified') && (document.getElementById('log-changed') || {hidden: true}).hidden;";
    assert!(
        wait_for(&c, all_verified).await,
        "verified under the key kept at first use"
    );
    net.stop().await;

    // Another gateway, another log key, the same origin.
    let second = tempfile::tempdir().unwrap();
    let other = ledger::NoteSigner::new(
        fixture::ORIGIN,
        ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
    )
    .unwrap();
    let net = net::start_elsewhere(second.path(), other, Some(addr)).await;
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    let me = ParticipantClient::new(
        &origin,
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();
    sign_in_as_fixture(&c, &me, &origin).await;
    for lang in ["en", "es"] {
        let t = gateway::participant::portal::catalog(if lang == "en" {
            policy::Language::En
        } else {
            policy::Language::Es
        });
        c.goto(&format!("{origin}/portal/{lang}/disclosures"))
            .await
            .unwrap();
        let changed = format!(
            "return document.querySelectorAll('.proof').length > 0 && [...document.querySelectorAll('.proof')].every(p => p.dataset.state === 'failed' && p.textContent === {}) && !document.getElementById('log-changed').hidden;",
            serde_json::to_string(t.t("verify_key_changed")).unwrap()
        );
        let warned = wait_for(&c, &changed).await;
        let why = c
            .execute(
                "const t = document.getElementById('timeline'); const w = document.getElementById('log-changed'); return (t && t.dataset.error || '') + ' / ' + [...document.querySelectorAll('.proof')].map(p => p.dataset.state + ':' + p.textContent).join() + ' / warning ' + (w ? (w.hidden ? 'hidden' : 'shown') : 'absent');",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            warned,
            "{lang}: the key changed: nothing verified, the warning shown ({why})"
        );
        let warning = text_of(&c, "#log-changed").await;
        assert!(
            warning.contains(t.t("log_changed_title")),
            "{lang}: {warning}"
        );
        // The warning itself reads on a phone and a laptop.
        for width in [360u32, 1280] {
            c.set_window_size(width, 900).await.unwrap();
            let bad = axe(&c, &axe_source).await;
            assert!(
                bad.is_empty(),
                "{lang} warning at {width} px: {}",
                serde_json::to_string_pretty(&bad).unwrap()
            );
        }
    }
    c.close().await.unwrap();
    net.stop().await;
}

/// The browser signs only the entry the page shows: an entry changed
/// under the page (here by the test, as a compromised script or a
/// tampering proxy would) to another consent, or given a field the page
/// does not show, is refused in words, and nothing reaches the log; the
/// entry as prepared is then signed and appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_other_than_the_page_shows_is_not_signed() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let origin = format!("http://{}", net.addr);
    let (_driver, c) = browser().await;
    restore_and_sign_in(&c, &origin, "en").await;
    Page::GrantReview.open(&c, &origin, "en").await;
    let prepared = c
        .execute(
            "return document.getElementById('sign-entry').dataset.entry;",
            vec![],
        )
        .await
        .unwrap();
    let tampers = [
        (
            "another consent",
            "e.recipients.agencies = ['riverside-housing']; e.categories = ['health.sud.treatment']; e.purposes = ['housing-placement'];",
        ),
        ("a field not shown", "e.note = 'also everything';"),
        ("another consent id", "e.consent_id = 'c-housing';"),
    ];
    for (what, change) in tampers {
        let size = net.dep.log.size();
        let script = format!(
            "const f = document.getElementById('sign-entry');\
             const e = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(arguments[0]), ch => ch.charCodeAt(0))));\
             {change}\
             const bytes = new TextEncoder().encode(JSON.stringify(e));\
             let s = ''; bytes.forEach(b => {{ s += String.fromCharCode(b); }});\
             f.dataset.entry = btoa(s);"
        );
        c.execute(&script, vec![prepared.clone()]).await.unwrap();
        activate(&c, "#sign-entry button[type=submit]", Drive::Pointer).await;
        let refused = wait_for(
            &c,
            "const m = document.getElementById('sign-mismatch'); return !!m && !m.hidden;",
        )
        .await;
        // Give a signed post, if one were sent, time to land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let here = c
            .execute("return location.pathname;", vec![])
            .await
            .unwrap();
        assert!(
            refused,
            "{what}: refused and told (on {here}, log {} -> {})",
            size,
            net.dep.log.size()
        );
        assert_eq!(here, json!("/portal/en/grant"), "{what}: still on the page");
        assert_eq!(net.dep.log.size(), size, "{what}: nothing appended");
        let detail = text_of(&c, "#sign-mismatch").await;
        assert!(!detail.is_empty(), "{what}: says why");
    }
    // The entry as the server prepared it, matching the page, signs.
    let size = net.dep.log.size();
    c.execute(
        "document.getElementById('sign-entry').dataset.entry = arguments[0];",
        vec![prepared],
    )
    .await
    .unwrap();
    activate(&c, "#sign-entry button[type=submit]", Drive::Pointer).await;
    assert!(
        wait_for(&c, "return location.search.startsWith('?granted=');").await,
        "the shown entry is signed"
    );
    assert_eq!(net.dep.log.size(), size + 1, "and appended");
    c.close().await.unwrap();
    net.stop().await;
}

/// Over plain HTTP at a host name that is not this machine's, a browser
/// gives the page no WebCrypto: the portal says so, in the page's
/// language, and turns its buttons off, instead of a "Make my key" that
/// does nothing. At the machine's own address (a secure context) the
/// message stays hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_address_says_so_instead_of_a_dead_button() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let port = net.addr.port();
    // The name resolves to loopback inside this browser only.
    let (_driver, c) = browser_with(&["--host-resolver-rules=MAP consentry.test 127.0.0.1"]).await;
    let hidden = "return document.getElementById('insecure-context').hidden";
    let shown = "return document.getElementById('insecure-context').hidden === false";
    let buttons_off = "const b = [...document.querySelectorAll('main button')]; \
                       return b.length > 0 && b.every(x => x.disabled)";
    for (lang, words) in [
        ("en", "must start with https://"),
        ("es", "debe empezar con https://"),
    ] {
        c.goto(&format!("http://consentry.test:{port}/portal/{lang}/enrol"))
            .await
            .unwrap();
        assert!(
            wait_for(&c, shown).await,
            "{lang}: no insecure-context message"
        );
        let text = text_of(&c, "#insecure-context").await;
        assert!(text.contains(words), "{lang}: {text}");
        assert!(wait_for(&c, buttons_off).await, "{lang}: a button still on");
    }
    c.goto(&format!("http://127.0.0.1:{port}/portal/en/enrol"))
        .await
        .unwrap();
    assert!(wait_for(&c, "return document.readyState === 'complete'").await);
    assert_eq!(
        c.execute(hidden, vec![]).await.unwrap(),
        Value::Bool(true),
        "the machine's own address is a secure context"
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// Over HTTPS at a name that is not this machine's (`consentry.test`,
/// mapped to loopback in the browser), the deployment CA trusted as a
/// participant's device would trust it (in the browser's certificate
/// store; certificate errors are not waved through): the page is a secure
/// context and the enrolment, sign-in and grant of [`eight_steps`] work as
/// on loopback; the session cookie is `__Host-` and `Secure`; HSTS is sent
/// and kept (the plain-HTTP address, answered "use https" before, is
/// upgraded by the browser after). A browser trusting another CA for the
/// same names gets the certificate error, not the portal: the trust comes
/// from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_at_a_host_name_the_portal_enrols_signs_in_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = crate::tls_server::pki(dir.path());
    let tls = gateway::tls::ServerTls::load(files).unwrap();
    let net = net::start_tls(dir.path(), tls, "consentry.test", |_| {}).await;
    let port = net.addr.port();
    let portal = format!("https://consentry.test:{port}");
    assert_eq!(net.public_url, portal);
    let map = "--host-resolver-rules=MAP consentry.test 127.0.0.1";
    let page_text = "return document.readyState === 'complete' ? document.body.innerText : null";

    // Another CA for the same names, trusted the same way.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    gateway::tls::pki::DeploymentCa::new(
        "other",
        &crate::tls_server::hosts(),
        crate::tls_server::real_now(),
    )
    .unwrap()
    .write_cert(&other_ca)
    .unwrap();
    {
        let (_driver, c) = browser_trusting(&other_ca, &[map]).await;
        c.goto(&format!("{portal}/portal/es/enrol")).await.unwrap();
        let text = loaded_text(&c, page_text).await;
        assert!(
            text.contains("ERR_CERT_AUTHORITY_INVALID"),
            "another CA's browser: the certificate error, not the portal: {text}"
        );
        let portal_here = c
            .execute("return !!document.getElementById('enrol');", vec![])
            .await
            .unwrap();
        assert_eq!(portal_here, json!(false), "no portal behind the error");
        c.close().await.unwrap();
    }

    let (_driver, c) = browser_trusting(&ca, &[map]).await;
    // Before any visit over https, the plain-HTTP address reaches the TLS
    // port as plain HTTP and is told to use https.
    let plain = format!("http://consentry.test:{port}/portal/es/");
    c.goto(&plain).await.unwrap();
    let text = loaded_text(&c, page_text).await;
    assert!(text.contains("https-required"), "{text}");
    c.goto(&format!("{portal}/portal/es/")).await.unwrap();
    let text = loaded_text(&c, page_text).await;
    let secure = c
        .execute(
            "return [window.isSecureContext, location.origin, !!document.querySelector('main')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        secure,
        json!([true, portal, true]),
        "the portal, trusted: {text}"
    );

    let agency = gateway::client::AgencyClient::with_roots(
        &format!("https://127.0.0.1:{port}"),
        &net::agency_key_id("hope-clinic"),
        net::agency_key("hope-clinic"),
        &gateway::tls::Roots::File(ca.clone()),
    )
    .unwrap();
    let (_, consent) =
        enrol_sign_in_and_grant(&c, &net, &portal, &agency, Drive::Pointer, "https").await;
    let secure = c
        .execute(
            "return [window.isSecureContext, location.origin, document.getElementById('insecure-context').hidden];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        secure,
        json!([true, portal, true]),
        "a secure context, no warning"
    );

    let cookies = c.get_all_cookies().await.unwrap();
    let session: Vec<_> = cookies
        .iter()
        .filter(|k| k.name().contains("consentry_session"))
        .collect();
    assert_eq!(session.len(), 1, "one session cookie: {cookies:?}");
    let k = session[0];
    assert_eq!(k.name(), gateway::participant::SESSION_COOKIE_HOST);
    assert!(k.name().starts_with("__Host-"), "{k:?}");
    assert_eq!(
        (k.secure(), k.http_only(), k.path()),
        (Some(true), Some(true), Some("/")),
        "{k:?}"
    );

    let hsts = c
        .execute_async(
            "const done = arguments[0]; fetch('/portal/es/').then(r => done(r.headers.get('strict-transport-security')), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hsts, json!(gateway::server::HSTS));
    // Kept: the same plain-HTTP address now goes to https in the browser.
    c.goto(&plain).await.unwrap();
    assert!(
        wait_for(
            &c,
            &format!(
                "return location.href === {} && !!document.getElementById('consent-{consent}');",
                serde_json::to_string(&format!("{portal}/portal/es/")).unwrap()
            )
        )
        .await,
        "the browser upgraded the plain-HTTP address: {}",
        loaded_text(&c, "return location.href + ' ' + document.body.innerText").await
    );
    c.close().await.unwrap();
    net.stop().await;
}

/// What `script` returns once it returns a string (polled for up to twenty
/// seconds).
async fn loaded_text(c: &Client, script: &str) -> String {
    for _ in 0..200 {
        if let Ok(Value::String(s)) = c.execute(script, vec![]).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never loaded");
}
