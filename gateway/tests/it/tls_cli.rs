//! TLS from the command line, as an operator and its users run it: the
//! real binary on loopback. `consentry init --tls` makes a deployment CA,
//! the server's certificate and the gateway's client certificate (keys
//! owner-only, the CA's key outside the folder or nowhere); `serve` speaks
//! HTTPS and tells plain HTTP to use it; `request`, `participant`, `audit`
//! and `witness` trust what `--ca` names (or the demo folder's CA), refuse
//! another CA and the system's roots with one sentence naming `--ca`; and
//! plain HTTP beyond loopback is refused unless allowed out loud.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use gateway::tls::pki::{DeploymentCa, Host};

use crate::common;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_consentry")
}

/// How long one command may take before the test calls it hung.
const COMMAND_SECS_MAX: u64 = 60;

/// `consentry ARGS` with `env` set: its exit code and all it printed. A
/// command still running after [`COMMAND_SECS_MAX`] is killed and fails
/// the test (a client that retries forever instead of refusing).
fn run<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &OsStr)]) -> (i32, String) {
    let mut c = Command::new(bin());
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).to_string()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(COMMAND_SECS_MAX);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "consentry {:?} still running after {COMMAND_SECS_MAX} s",
                args.iter()
                    .map(|a| a.as_ref().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    (status.code().unwrap_or(-1), text)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Another deployment's CA for the same names: trusted by nobody here.
fn other_ca(dir: &Path) -> PathBuf {
    let hosts = Host::parse_list("localhost,127.0.0.1").unwrap();
    let ca = DeploymentCa::new("another", &hosts, now()).unwrap();
    let path = dir.join("other-ca.pem");
    ca.write_cert(&path).unwrap();
    path
}

/// A raw HTTP/1.1 request in clear: its status and body.
fn plain_http(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `consentry serve` on `config`, once it has said where it serves: the
/// server, the address bound and the public URL, and what it wrote to
/// standard error before that line (its warnings).
fn serve(config: &Path) -> (Server, String, String, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    // Every warning is written before the serving line; the rest of
    // standard error is left to the pipe.
    let warnings = read_available(stderr);
    let addr = line
        .split(" on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    let url = line
        .split("public url ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    (server, addr, url, warnings)
}

/// The lines a pipe holds until it is quiet for half a second; the pipe
/// is drained after that for as long as the server writes to it (a
/// closed pipe would fail its next warning).
fn read_available(pipe: std::process::ChildStderr) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        loop {
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let _ = tx.send(l);
                }
            }
        }
    });
    let mut out = String::new();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        out.push_str(&l);
    }
    out
}

/// A key of 32 `seed` bytes, in an owner-only file under `dir`.
fn key_file(dir: &Path, name: &str, seed: u8) -> (ed25519_dalek::SigningKey, PathBuf) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let path = dir.join(name);
    gateway::config::write_secret(&path, &key).unwrap();
    (key, path)
}

/// Posts a governance-signed enrolment of `agency` with `roles`, over
/// HTTPS trusting `ca`.
fn enrol(
    url: &str,
    ca: &Path,
    governance: &ed25519_dalek::SigningKey,
    agency: &str,
    key: &ed25519_dalek::SigningKey,
    roles: Vec<policy::Role>,
) {
    let e = policy::Event::AgencyEnrolled(policy::AgencyEnrolled {
        v: policy::V1,
        agency: agency.into(),
        name: format!("{agency} (test)"),
        key_id: format!("{agency}:1"),
        public_key: B64.encode(key.verifying_key().as_bytes()),
        upstream: "http://127.0.0.1:9/fhir".into(),
        upstream_client_certificate: false,
        classes: vec!["clinic".into()],
        roles,
        at: now(),
    });
    let env = gateway::deployment::sign_event(&e, "governance", governance).unwrap();
    let roots = gateway::tls::Roots::File(ca.into());
    let c =
        gateway::client::AgencyClient::with_roots(url, "governance", governance.clone(), &roots)
            .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(c.post_entry(env.to_json())).unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// What `init --tls` is asked and refuses, what it writes, and the
/// config it writes: HTTPS at the first name, the gateway's client
/// certificate for record systems.
fn init_tls(dir: &Path, offline: &Path) -> PathBuf {
    let d = dir.to_str().unwrap();
    let gov = offline.join("governance.key");
    let g = gov.to_str().unwrap();
    let common_args = [
        "init",
        "--dir",
        d,
        "--governance-key",
        g,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--tls",
        "localhost,127.0.0.1",
    ];
    // The CA's key, like the governance key, never inside the folder.
    let inside = dir.join("keys/ca.key");
    let mut args = common_args.to_vec();
    args.extend(["--tls-ca-key", inside.to_str().unwrap()]);
    let (code, out) = run(&args, &[]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("outside the deployment folder"), "{out}");
    assert!(out.contains("--tls-ca-key"), "{out}");
    assert!(!inside.exists() && !gov.exists(), "nothing was written");
    // A CA key to keep, outside.
    let ca_key = offline.join("ca.key");
    let mut args = common_args.to_vec();
    args.extend(["--tls-ca-key", ca_key.to_str().unwrap()]);
    let (code, out) = run(&args, &[]);
    assert_eq!(code, 0, "{out}");
    for said in ["keys/ca.pem", "--ca", "pilots only", "https://localhost:0"] {
        assert!(out.contains(said), "init says {said:?}: {out}");
    }
    let keys = dir.join("keys");
    for secret in [
        keys.join("tls.key"),
        keys.join("gateway-client.key"),
        keys.join("gateway.key"),
        ca_key.clone(),
        gov,
    ] {
        assert_eq!(mode(&secret), 0o600, "{secret:?} is its owner's only");
    }
    for public in ["ca.pem", "tls.crt", "gateway-client.crt"] {
        assert_eq!(mode(&keys.join(public)), 0o644, "{public} is public");
    }
    assert!(
        std::fs::read_to_string(&ca_key)
            .unwrap()
            .contains("PRIVATE KEY"),
        "the CA's key was kept where asked"
    );
    let config = dir.join("consentry.toml");
    let c: toml::Table = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(c["public_url"].as_str(), Some("https://localhost:0"));
    assert_eq!(c["tls"]["cert"].as_str(), Some("keys/tls.crt"));
    assert_eq!(c["tls"]["key"].as_str(), Some("keys/tls.key"));
    assert_eq!(
        c["upstream_tls"]["client_cert"].as_str(),
        Some("keys/gateway-client.crt")
    );
    assert_eq!(
        c["upstream_tls"]["client_key"].as_str(),
        Some("keys/gateway-client.key")
    );
    assert!(c.get("allow_plain_http").is_none());
    config
}

#[test]
fn init_tls_serves_https_and_every_client_checks_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let offline = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deployment");
    let config = init_tls(&dir, offline.path());
    let (server, addr, url, _) = serve(&config);
    // The gateway started at this second or before.
    let started_by = now();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let ca = dir.join("keys/ca.pem");
    let wrong = other_ca(tmp.path());

    // Plain HTTP on the TLS port: told to use https.
    let (status, body) = plain_http(&addr, "/healthz");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"type\":\"https-required\""), "{body}");
    assert!(body.contains(&url), "names the address to use: {body}");

    let governance = gateway::config::read_key(&offline.path().join("governance.key")).unwrap();
    let (clinic, clinic_key) = key_file(tmp.path(), "clinic.key", 5);
    enrol(
        &url,
        &ca,
        &governance,
        "hope-clinic",
        &clinic,
        vec![policy::Role::Agency],
    );

    // An agency's signed request over HTTPS: the signature covers the
    // https @target-uri, so the gateway decides (and logs) it.
    let request = |ca: Option<&Path>, env: &[(&str, &OsStr)]| {
        let mut args = vec![
            "request",
            "--gateway",
            url.as_str(),
            "--key",
            clinic_key.to_str().unwrap(),
            "--key-id",
            "hope-clinic:1",
            "--holder",
            "hope-clinic",
            "--participant",
            "p-0001",
            "--purpose",
            "housing-placement",
            "--categories",
            "health.sud.treatment",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if let Some(ca) = ca {
            args.extend(["--ca".into(), ca.to_str().unwrap().into()]);
        }
        run(&args, env)
    };
    let (code, out) = request(Some(&ca), &[]);
    assert_eq!(code, 2, "a decision, not an error: {out}");
    assert!(out.starts_with("403 Forbidden  decision d-"), "{out}");

    // Another CA's certificate: refused by the client, in one sentence.
    let (code, out) = request(Some(&wrong), &[]);
    assert_eq!(code, 1, "{out}");
    assert_untrusted(&out, &url);
    // No --ca: the system's roots, which do not hold the deployment's CA
    // (here a store of one other CA, so that the machine's own store
    // cannot decide the outcome)...
    let (code, out) = request(None, &[("SSL_CERT_FILE", wrong.as_os_str())]);
    assert_eq!(code, 1, "{out}");
    assert_untrusted(&out, &url);
    // ...and the machine's own store, whatever it holds (none at all is
    // refused too, naming --ca).
    let (code, out) = request(None, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--ca"), "{out}");

    participant_over_https(tmp.path(), &url, &dir, &clinic_key, &wrong);
    audit_over_https(tmp.path(), &url, &dir, &governance, &wrong, started_by);
    drop(server);
}

fn assert_untrusted(out: &str, url: &str) {
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(
        out.starts_with(&format!("error: the gateway at {url} is not trusted: its certificate is not issued by a CA this client trusts; give the CA certificate that issued its certificate with --ca FILE")),
        "{out}"
    );
}

/// A participant enrols over HTTPS with `--ca` (kept in the profile, so
/// the next command needs none) and reads their checked pages; another CA
/// named on the command line is refused.
fn participant_over_https(tmp: &Path, url: &str, dir: &Path, clinic_key: &Path, wrong: &Path) {
    let key = tmp.join("participant.key");
    let k = key.to_str().unwrap();
    let ca = dir.join("keys/ca.pem");
    let vkey = dir.join("keys/log.vkey");
    let enrol = |ca: &Path| {
        run(
            &[
                "participant",
                "enrol",
                "--gateway",
                url,
                "--vkey",
                vkey.to_str().unwrap(),
                "--ca",
                ca.to_str().unwrap(),
                "--at",
                "hope-clinic",
                "--agency-key",
                clinic_key.to_str().unwrap(),
                "--key",
                k,
            ],
            &[],
        )
    };
    // A refused certificate leaves no key behind to block the next try.
    let (code, out) = enrol(wrong);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted") && out.contains("--ca"), "{out}");
    assert!(!key.exists(), "no key was made");
    let (code, out) = enrol(&ca);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Enrolled at hope-clinic"), "{out}");
    let (code, out) = run(&["participant", "consents", "--key", k], &[]);
    assert_eq!(code, 0, "the profile keeps the CA: {out}");
    assert!(out.contains("You have no consents."), "{out}");
    assert!(
        out.contains("checked against the signed checkpoint"),
        "{out}"
    );
    let (code, out) = run(
        &[
            "participant",
            "disclosures",
            "--key",
            k,
            "--gateway",
            url,
            "--ca",
            wrong.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted") && out.contains("--ca"), "{out}");
}

/// An auditor mirrors and verifies the log over HTTPS with `--ca`; with
/// another CA nothing is fetched.
fn audit_over_https(
    tmp: &Path,
    url: &str,
    dir: &Path,
    governance: &ed25519_dalek::SigningKey,
    wrong: &Path,
    started_by: i64,
) {
    let (auditor, auditor_key) = key_file(tmp, "auditor.key", 7);
    let ca = dir.join("keys/ca.pem");
    enrol(
        url,
        &ca,
        governance,
        "board",
        &auditor,
        vec![policy::Role::Auditor],
    );
    // An auditor's reads are not logged, so the gateway refuses any
    // signature created within its skew (30 s) of its start, which a
    // process before it could have accepted: wait that out.
    while now() <= started_by + 31 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let verify = |ca: &Path, mirror: &Path| {
        run(
            &[
                "audit",
                "verify",
                mirror.to_str().unwrap(),
                "--gateway",
                url,
                "--key",
                auditor_key.to_str().unwrap(),
                "--key-id",
                "board:1",
                "--trust",
                dir.join("keys/trust.json").to_str().unwrap(),
                "--vkey",
                dir.join("keys/log.vkey").to_str().unwrap(),
                "--ca",
                ca.to_str().unwrap(),
            ],
            &[],
        )
    };
    let refused = tmp.join("mirror-refused");
    let (code, out) = verify(wrong, &refused);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted") && out.contains("--ca"), "{out}");
    assert!(!refused.exists(), "nothing fetched");
    let (code, out) = verify(&ca, &tmp.join("mirror"));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
}

/// The demo over HTTPS: `--dir` trusts the demo's own CA (the folder
/// named is the trust given); a witness needs `--ca` and stops, nonzero,
/// without it.
#[test]
fn demo_tls_commands_trust_the_demo_ca_and_a_witness_takes_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (_demo, printed) = common::demo_with(&dir, &["--tls", "--witnesses"]);
    let url = std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE)).unwrap();
    let url = url.trim();
    assert!(url.starts_with("https://localhost:"), "{printed:?}");
    let d = dir.to_str().unwrap();
    let (code, out) = run(
        &[
            "request",
            "--dir",
            d,
            "--as",
            "riverside-housing",
            "--holder",
            "hope-clinic",
            "--participant",
            "p-0001",
            "--purpose",
            "housing-placement",
            "--categories",
            "health.sud.treatment,social.peer-support",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("200 OK"), "{out}");
    let key = tmp.path().join("p.key");
    let k = key.to_str().unwrap();
    let (code, out) = run(
        &[
            "participant",
            "enrol",
            "--dir",
            d,
            "--at",
            "hope-clinic",
            "--key",
            k,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["participant", "disclosures", "--key", k], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nobody has asked for your records."), "{out}");

    // The system's store: one other CA.
    let system = other_ca(tmp.path());
    // The demo's own participant: its profile names the demo CA, so
    // nothing more than the key is needed, whatever the system trusts.
    let (code, out) = run(
        &[
            "participant",
            "consents",
            "--key",
            dir.join("keys/p-0001.key").to_str().unwrap(),
        ],
        &[("SSL_CERT_FILE", system.as_os_str())],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("c-demo-0001 [active]"), "{out}");
    let witness = |ca: Option<&Path>| {
        let mut args = vec![
            "witness".to_string(),
            "--gateway".into(),
            url.into(),
            "--name".into(),
            "witness-1".into(),
            "--key".into(),
            dir.join("keys/witness-1.key").to_str().unwrap().into(),
            "--vkey".into(),
            dir.join("keys/log.vkey").to_str().unwrap().into(),
            "--state".into(),
            tmp.path().join("w1.json").to_str().unwrap().into(),
        ];
        if let Some(ca) = ca {
            args.extend(["--ca".into(), ca.to_str().unwrap().into(), "--once".into()]);
        }
        // Without --ca and without --once: it must stop by itself.
        run(&args, &[("SSL_CERT_FILE", system.as_os_str())])
    };
    let (code, out) = witness(None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted") && out.contains("--ca"), "{out}");
    let (code, out) = witness(Some(&dir.join(gateway::demo::CA_FILE)));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cosigned the checkpoint"), "{out}");
}

/// Plain HTTP beyond loopback: refused with the way out, or served with
/// a warning when the operator says so.
#[test]
fn serve_refuses_plain_http_beyond_loopback_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deployment");
    let gov = tmp.path().join("governance.key");
    let (code, out) = run(
        &[
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--governance-key",
            gov.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let config = dir.join("consentry.toml");
    let c = config.to_str().unwrap();
    let (code, out) = run(&["serve", "--config", c], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not a loopback address and there is no [tls]"),
        "{out}"
    );
    assert!(out.contains("consentry init --tls HOST"), "{out}");
    // Top-level keys go before the first table.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("allow_plain_http = true\n{text}")).unwrap();
    let (_server, addr, url, warnings) = serve(&config);
    assert!(url.starts_with("http://"), "{url}");
    assert!(
        warnings.contains("warning: serving plain HTTP on 0.0.0.0:"),
        "{warnings}"
    );
    let port = addr.rsplit_once(':').unwrap().1;
    let (status, body) = plain_http(&format!("127.0.0.1:{port}"), "/healthz");
    assert_eq!(status, 200, "{body}");
}
