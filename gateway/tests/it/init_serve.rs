//! `consentry init` then `consentry serve`, as an operator runs them: the
//! real binary, a real socket on loopback. The private keys are owner-only,
//! the first entry is the governance-signed rules, agencies come from
//! signed entries posted to `/v1/entries` (never from the config), and a
//! bad entry is refused with a problem document while the server keeps
//! serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
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

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn init_then_serve_takes_signed_entries_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let offline = tempfile::tempdir().unwrap();
    let governance_key = offline.path().join("governance.key");
    let bin = env!("CARGO_BIN_EXE_consentry");
    // The governance key is never written into the server's folder.
    let inside = Command::new(bin)
        .args(["init", "--dir"])
        .arg(dir.path())
        .arg("--governance-key")
        .arg(dir.path().join("keys/governance.key"))
        .output()
        .unwrap();
    assert!(!inside.status.success());
    assert!(
        String::from_utf8_lossy(&inside.stderr).contains("outside the deployment folder"),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let out = Command::new(bin)
        .args(["init", "--dir"])
        .arg(dir.path())
        .arg("--governance-key")
        .arg(&governance_key)
        .args(["--listen", "127.0.0.1:0", "--origin", "init.test/log"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("keys/governance.key").exists());
    for key in [governance_key.clone(), dir.path().join("keys/gateway.key")] {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key:?} is readable by its owner only");
    }
    let config = std::fs::read_to_string(dir.path().join("consentry.toml")).unwrap();
    let keys: Vec<String> = toml::from_str::<toml::Table>(&config)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "data_dir",
            "gateway_key",
            "limits",
            "listen",
            "metrics_listen",
            "origin",
            "public_url",
            "rules",
            "trust",
            "vocabulary"
        ],
        "the config names places and keys, never agencies"
    );
    // The log's folder and file are the owner's only.
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path().join("data")), 0o700);
    assert_eq!(mode(dir.path().join("data/entries")), 0o600);
    // A secret key others could read is refused, and nothing starts.
    let gw_key = dir.path().join("keys/gateway.key");
    std::fs::set_permissions(&gw_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = Command::new(bin)
        .args(["serve", "--config"])
        .arg(dir.path().join("consentry.toml"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("readable by group or others"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    std::fs::set_permissions(&gw_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // init refuses to overwrite.
    let again = Command::new(bin)
        .args(["init", "--dir"])
        .arg(dir.path())
        .arg("--governance-key")
        .arg(offline.path().join("other.key"))
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(dir.path().join("consentry.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let addr = line
        .split(" on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();

    let (status, body) = http(&addr, "GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"log_size\":1"),
        "the governance rules entry: {body}"
    );
    // Metrics on the operator's listener only.
    let metrics = line
        .split("metrics on http://")
        .nth(1)
        .and_then(|r| r.trim().strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    let (status, body) = http(&metrics, "GET", "/metrics", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("consentry_log_size 1"), "{body}");
    assert_eq!(http(&addr, "GET", "/metrics", "").0, 404);

    // An agency enrolment signed by the governance key.
    let governance = {
        let text = std::fs::read_to_string(&governance_key).unwrap();
        let raw: [u8; 32] = B64.decode(text.trim()).unwrap().try_into().unwrap();
        ed25519_dalek::SigningKey::from_bytes(&raw)
    };
    let agency = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let enrol = policy::Event::AgencyEnrolled(policy::AgencyEnrolled {
        v: policy::V1,
        agency: "hope-clinic".into(),
        name: "Hope Recovery Clinic".into(),
        key_id: "hope-clinic:1".into(),
        public_key: B64.encode(agency.verifying_key().as_bytes()),
        upstream: "http://127.0.0.1:9/fhir".into(),
        upstream_client_certificate: false,
        classes: vec!["clinic".into()],
        roles: vec![policy::Role::Agency],
        at: 1_800_000_000,
    });
    let good = gateway::deployment::sign_event(&enrol, "governance", &governance).unwrap();
    let (status, body) = http(&addr, "POST", "/v1/entries", &good.to_json());
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"index\":1"), "{body}");

    // The same enrolment signed by the agency itself: refused, and the
    // answer is a problem document.
    let forged = gateway::deployment::sign_event(&enrol, "hope-clinic:1", &agency).unwrap();
    let (status, body) = http(&addr, "POST", "/v1/entries", &forged.to_json());
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.contains("\"status\":"), "{body}");
    let (status, _) = http(&addr, "POST", "/v1/entries", "{not json");
    assert_eq!(status, 400);
    let (status, body) = http(&addr, "GET", "/healthz", "");
    assert_eq!(status, 200, "still serving: {body}");
    assert!(
        body.contains("\"log_size\":2"),
        "nothing refused was written: {body}"
    );
    drop(server);
}
