//! Record systems over TLS: the gateway trusts an upstream's certificate
//! only as its `[upstream_tls]` says (a CA bundle here), presents its own
//! client certificate only to the holders whose registry entry asks for
//! it, and a certificate it does not trust is a 502 with its reason,
//! logged as releasing nothing.

use std::net::SocketAddr;
use std::path::Path;

use consentry_tests::net::{self, Ask, Net};
use gateway::agency::UpstreamTls;
use gateway::tls::client::Identity;
use gateway::tls::pki::{DeploymentCa, Host, Usage, Validity, LEAF_DAYS};
use gateway::tls::{Roots, ServerTls, TlsFiles};
use gateway::upstream::{self, Holder};

// Certificates are checked on the machine's own clock, not the fixture's.
use crate::tls_server::real_now;

fn loopback() -> Vec<Host> {
    vec![
        Host::Dns("localhost".into()),
        Host::Ip("127.0.0.1".parse().unwrap()),
    ]
}

/// A CA, its certificate written to `dir/NAME-ca.pem`.
fn ca(dir: &Path, name: &str) -> (DeploymentCa, std::path::PathBuf) {
    let ca = DeploymentCa::new(name, &loopback(), real_now()).unwrap();
    let file = dir.join(format!("{name}-ca.pem"));
    ca.write_cert(&file).unwrap();
    (ca, file)
}

/// A certificate from `ca`, written as `dir/NAME.crt` and `.key`.
fn issue(ca: &DeploymentCa, dir: &Path, name: &str, usage: Usage, valid: Validity) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    ca.issue(usage, &loopback(), valid)
        .unwrap()
        .write(&files.cert, &files.key)
        .unwrap();
    files
}

fn valid_now() -> Validity {
    Validity {
        now: real_now(),
        days: LEAF_DAYS,
    }
}

/// The sample treatment program over HTTPS with `cert`; when `clients` is
/// given, it asks every client for a certificate that CA issued.
async fn tls_upstream(net: &Net, cert: TlsFiles, clients: Option<&Path>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let tls = ServerTls::load(cert).unwrap();
    let config = match clients {
        None => tls.config(false).unwrap(),
        Some(ca) => tls
            .config_verifying_clients(&Roots::File(ca.into()))
            .unwrap(),
    };
    let origin = gateway::origin::Origin::parse(&format!("https://{addr}")).unwrap();
    let key = consentry_tests::fixture::gateway()
        .signing_key()
        .verifying_key();
    let router = upstream::router(Holder::TreatmentProgram, origin, key, net.clock.clone());
    tokio::spawn(upstream::serve(l, router, Some(config)));
    addr
}

fn ask(holder: &str) -> Ask {
    Ask::new(
        "riverside-housing",
        holder,
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    )
}

/// What the log says of a refused release: its problem, and that no
/// byte was released.
fn released_nothing(net: &Net, answer: &net::Answer) -> String {
    let (id, _) = answer.decision();
    let released = net.entries_for("access.released", &id);
    assert_eq!(released.len(), 1, "one release entry for {id}");
    assert_eq!(released[0]["released_bytes"], 0);
    released[0]["problem"].as_str().unwrap().to_string()
}

struct Pki {
    dir: tempfile::TempDir,
    ca: DeploymentCa,
    ca_file: std::path::PathBuf,
    gateway_identity: Identity,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_file) = ca(dir.path(), "deployment");
    let id = issue(
        &ca,
        dir.path(),
        "gateway-client",
        Usage::Client,
        valid_now(),
    );
    Pki {
        gateway_identity: Identity {
            cert: id.cert,
            key: id.key,
        },
        dir,
        ca,
        ca_file,
    }
}

async fn gateway_trusting(dir: &Path, pki: &Pki, identity: bool) -> Net {
    let tls = UpstreamTls {
        roots: Roots::File(pki.ca_file.clone()),
        identity: identity.then(|| pki.gateway_identity.clone()),
        allow_plain_http: false,
    };
    net::start_adjusted(
        dir,
        gateway::server::HttpLimits::default(),
        std::time::Duration::from_secs(5),
        move |s| s.upstream_tls = tls,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_a_certificate_from_the_deployment_ca_is_reached() {
    let data = tempfile::tempdir().unwrap();
    let pki = pki();
    let net = gateway_trusting(data.path(), &pki, false).await;
    let cert = issue(
        &pki.ca,
        pki.dir.path(),
        "clinic",
        Usage::Server,
        valid_now(),
    );
    let addr = tls_upstream(&net, cert, None).await;
    net::holder_at(
        &net,
        "harbor-clinic",
        &format!("https://{addr}/fhir"),
        false,
    )
    .await;
    let a = net::ask(&net, &ask("harbor-clinic")).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(!a.json()["entry"].as_array().unwrap().is_empty());
    net.stop().await;
}

/// Who may be trusted: a certificate from another CA, one expired, and
/// one for another name are each refused with their own reason, and the
/// log says nothing was released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_expired_or_misnamed_upstream_is_a_502_that_releases_nothing() {
    let data = tempfile::tempdir().unwrap();
    let pki = pki();
    let net = gateway_trusting(data.path(), &pki, false).await;
    let (stranger, _) = ca(pki.dir.path(), "stranger");
    let expired = Validity {
        now: real_now() - 30 * 86_400,
        days: 1,
    };
    let misnamed = {
        let files = TlsFiles {
            cert: pki.dir.path().join("misnamed.crt"),
            key: pki.dir.path().join("misnamed.key"),
        };
        // Inside the CA's constraints, but not the address dialled.
        pki.ca
            .issue(Usage::Server, &[Host::Dns("localhost".into())], valid_now())
            .unwrap()
            .write(&files.cert, &files.key)
            .unwrap();
        files
    };
    let cases = [
        (
            "untrusted",
            issue(&stranger, pki.dir.path(), "s", Usage::Server, valid_now()),
            "upstream-certificate-untrusted",
        ),
        (
            "expired",
            issue(&pki.ca, pki.dir.path(), "old", Usage::Server, expired),
            "upstream-certificate-expired",
        ),
        ("misnamed", misnamed, "upstream-certificate-wrong-name"),
        (
            "a client certificate as a server's",
            issue(&pki.ca, pki.dir.path(), "c", Usage::Client, valid_now()),
            "upstream-certificate-untrusted",
        ),
    ];
    for (i, (case, cert, reason)) in cases.into_iter().enumerate() {
        let addr = tls_upstream(&net, cert, None).await;
        let holder = format!("holder-{i}");
        net::holder_at(&net, &holder, &format!("https://{addr}/fhir"), false).await;
        let a = net::ask(&net, &ask(&holder)).await;
        let body = String::from_utf8_lossy(&a.body).to_string();
        assert_eq!(a.status, 502, "{case}: {body}");
        assert!(body.contains(reason), "{case}: {body}");
        assert!(!body.contains("attendance"), "{case}: {body}");
        assert_eq!(released_nothing(&net, &a), reason, "{case}");
    }
    net.stop().await;
}

/// The gateway's client certificate: presented to the holder whose entry
/// asks for it, and to no other; a holder that asks when none is
/// configured is refused before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_requires_the_gateways_client_certificate() {
    let data = tempfile::tempdir().unwrap();
    let pki = pki();
    let net = gateway_trusting(data.path(), &pki, true).await;
    let cert = issue(&pki.ca, pki.dir.path(), "mtls", Usage::Server, valid_now());
    let addr = tls_upstream(&net, cert, Some(&pki.ca_file)).await;
    let url = format!("https://{addr}/fhir");
    net::holder_at(&net, "asks", &url, true).await;
    net::holder_at(&net, "forgot-to-ask", &url, false).await;
    let a = net::ask(&net, &ask("asks")).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let a = net::ask(&net, &ask("forgot-to-ask")).await;
    assert_eq!(a.status, 502);
    assert_eq!(released_nothing(&net, &a), "upstream-tls-failed");
    net.stop().await;

    let data = tempfile::tempdir().unwrap();
    let net = gateway_trusting(data.path(), &pki, false).await;
    net::holder_at(&net, "asks", &url, true).await;
    let a = net::ask(&net, &ask("asks")).await;
    assert_eq!(a.status, 502);
    assert_eq!(
        released_nothing(&net, &a),
        "upstream-client-certificate-unconfigured"
    );
    net.stop().await;
}
