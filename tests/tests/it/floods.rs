//! Floods of sign-in challenges and intakes from one address lock nobody
//! else out (issue 21, item 6): after one loopback address has asked for
//! 100,000 challenges (for p-0001, whose sign-in it wants to block) and
//! 20,000 intakes, another address still gets a challenge, signs in as
//! p-0001 and enrols a new participant at hope-clinic's intake; with the
//! default rates, and with the rates raised so that only the shares per
//! source hold the flood. And behind a reverse proxy, the forwarded
//! client is believed only from the configured proxy.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture;
use consentry_tests::net;
use ed25519_dalek::{Signer, SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Two more loopback source addresses: Linux routes all of 127.0.0.0/8 to
/// the loopback interface, so each is another peer to the gateway, and
/// nothing leaves the machine.
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const NEIGHBOUR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// What the review sent: 100,000 challenges filled the old store.
const CHALLENGE_FLOOD: usize = 100_000;
/// Twice what filled the old intake store.
const INTAKE_FLOOD: usize = 20_000;
/// Connections the flood uses at once, each with requests pipelined.
const FLOOD_CONNECTIONS: usize = 4;
const PIPELINE_DEPTH: usize = 250;

async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(source, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// One HTTP answer, as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn request(method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nhost: gateway\r\n");
    for (n, v) in extra {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    ));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn post_json(target: &str, body: &serde_json::Value) -> Vec<u8> {
    request("POST", target, &[], body.to_string().as_bytes())
}

/// Reads one answer from `s`, whose bytes so far are in `buf`.
async fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Answer {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection mid-answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let total = head_end + 4 + length;
    while buf.len() < total {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end + 4..total].to_vec();
    buf.drain(..total);
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `requests` pipelined on one kept-alive connection from `source`
/// and reads every answer.
async fn exchange(source: IpAddr, to: SocketAddr, requests: &[Vec<u8>]) -> Vec<Answer> {
    let mut s = connect_from(source, to).await;
    let mut buf = Vec::new();
    let mut answers = Vec::with_capacity(requests.len());
    for batch in requests.chunks(PIPELINE_DEPTH) {
        s.write_all(&batch.concat()).await.unwrap();
        for _ in batch {
            answers.push(read_answer(&mut s, &mut buf).await);
        }
    }
    answers
}

async fn one(source: IpAddr, to: SocketAddr, request: Vec<u8>) -> Answer {
    exchange(source, to, &[request]).await.remove(0)
}

/// `count` copies of `request` from `source`, over a few connections at
/// once: how many answers had each status, and one answer of each.
async fn flood(
    source: IpAddr,
    to: SocketAddr,
    request: Vec<u8>,
    count: usize,
) -> BTreeMap<u16, (usize, Answer)> {
    let per_connection = count / FLOOD_CONNECTIONS;
    let tasks: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|_| {
            let requests = vec![request.clone(); per_connection];
            tokio::spawn(async move { exchange(source, to, &requests).await })
        })
        .collect();
    let mut seen: BTreeMap<u16, (usize, Answer)> = BTreeMap::new();
    for t in tasks {
        for a in t.await.unwrap() {
            match seen.get_mut(&a.status) {
                Some((n, _)) => *n += 1,
                None => {
                    seen.insert(a.status, (1, a));
                }
            }
        }
    }
    seen
}

fn counts(seen: &BTreeMap<u16, (usize, Answer)>) -> String {
    seen.iter()
        .map(|(status, (n, a))| {
            format!(
                "{n} × {status} (retry-after {:?}, type {})",
                a.header("retry-after"),
                a.json()["type"]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Signs in as `participant` from `source`: the challenge, then the
/// session. Both answers.
async fn sign_in(
    source: IpAddr,
    to: SocketAddr,
    participant: &str,
    key: &SigningKey,
) -> (Answer, Option<Answer>) {
    let challenge = one(
        source,
        to,
        post_json(
            "/v1/participant/challenge",
            &serde_json::json!({"participant": participant}),
        ),
    )
    .await;
    if challenge.status != 200 {
        return (challenge, None);
    }
    let c = challenge.json();
    let signature = key.sign(c["sign"].as_str().unwrap().as_bytes());
    let session = one(
        source,
        to,
        post_json(
            "/v1/participant/session",
            &serde_json::json!({
                "participant": participant,
                "challenge": c["challenge"],
                "signature": B64.encode(signature.to_bytes()),
            }),
        ),
    )
    .await;
    (challenge, Some(session))
}

fn intake_request(key: &SigningKey) -> Vec<u8> {
    post_json(
        "/v1/participant/intakes",
        &serde_json::json!({
            "agency": "hope-clinic",
            "public_key": B64.encode(key.verifying_key().as_bytes()),
        }),
    )
}

/// What the flood left behind: each kind's answers by status.
struct Flooded {
    challenges: BTreeMap<u16, (usize, Answer)>,
    intakes: BTreeMap<u16, (usize, Answer)>,
}

/// The stranger at [`FLOODER`] asks for challenges in p-0001's name, then
/// starts intakes at hope-clinic, as fast as the gateway answers; then
/// p-0001 signs in from [`NEIGHBOUR`], and someone there enrols at
/// hope-clinic's intake, is confirmed by the clinic, and signs in.
async fn flood_then_the_neighbour_gets_in(net: &net::Net) -> Flooded {
    let p1 = fixture::participant_id(1);
    let p1_key = fixture::participant_key(1);

    let started = Instant::now();
    let challenges = flood(
        FLOODER,
        net.addr,
        post_json(
            "/v1/participant/challenge",
            &serde_json::json!({"participant": p1}),
        ),
        CHALLENGE_FLOOD,
    )
    .await;
    let challenges_took = started.elapsed();
    let flood_key = SigningKey::from_bytes(&[7; 32]);
    let started = Instant::now();
    let intakes = flood(FLOODER, net.addr, intake_request(&flood_key), INTAKE_FLOOD).await;
    let intakes_took = started.elapsed();
    println!(
        "flood of {CHALLENGE_FLOOD} challenges from {FLOODER} in {challenges_took:.1?}: {}",
        counts(&challenges)
    );
    println!(
        "flood of {INTAKE_FLOOD} intakes from {FLOODER} in {intakes_took:.1?}: {}",
        counts(&intakes)
    );

    // p-0001, from their own address, signs in.
    let (challenge, session) = sign_in(NEIGHBOUR, net.addr, &p1, &p1_key).await;
    println!(
        "{NEIGHBOUR}: challenge for {p1}: {} {}",
        challenge.status,
        String::from_utf8_lossy(&challenge.body)
    );
    // Someone else, from that address too, enrols at hope-clinic's intake.
    let new_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let started = one(NEIGHBOUR, net.addr, intake_request(&new_key)).await;
    println!(
        "{NEIGHBOUR}: intake at hope-clinic: {} {}",
        started.status,
        String::from_utf8_lossy(&started.body)
    );
    assert_eq!(challenge.status, 200, "the neighbour got no challenge");
    let session = session.unwrap();
    assert_eq!(
        session.status,
        200,
        "{}",
        String::from_utf8_lossy(&session.body)
    );
    let token = session.json()["token"].as_str().unwrap().to_string();
    let me = one(
        NEIGHBOUR,
        net.addr,
        request(
            "GET",
            "/v1/me",
            &[("authorization", &format!("Bearer {token}"))],
            b"",
        ),
    )
    .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["participant"], p1);

    assert_eq!(
        started.status, 201,
        "the neighbour could not start an intake"
    );
    let intake = started.json();
    let code = intake["intake"].as_str().unwrap().to_string();
    let entry = B64.decode(intake["entry"].as_str().unwrap()).unwrap();
    let signed = one(
        NEIGHBOUR,
        net.addr,
        post_json(
            &format!("/v1/participant/intakes/{code}/signature"),
            &serde_json::json!({"signature": B64.encode(new_key.sign(&entry).to_bytes())}),
        ),
    )
    .await;
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    // The clinic's staff confirm it with the agency's key.
    let clinic = gateway::client::AgencyClient::new(
        &format!("http://{}", net.addr),
        &net::agency_key_id("hope-clinic"),
        net::agency_key("hope-clinic"),
    )
    .unwrap();
    let (participant, reply) = clinic.confirm_intake(&code).await.unwrap();
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(Some(participant.as_str()), intake["participant"].as_str());
    // The new participant signs in, from the neighbour's address.
    let (challenge, session) = sign_in(NEIGHBOUR, net.addr, &participant, &new_key).await;
    assert_eq!(challenge.status, 200);
    assert_eq!(session.map(|s| s.status), Some(200));

    // What the gateway holds for the flooder is its share at most.
    let flooder = gateway::source::source_of(FLOODER);
    let (_, challenges_held) = net.state.participants.sessions.challenges_held(flooder);
    let (_, intakes_held) = net.state.participants.intakes.held(flooder);
    assert!(
        challenges_held
            <= net
                .state
                .participants
                .sessions
                .limits()
                .challenges_per_source_max
    );
    assert!(
        intakes_held
            <= net
                .state
                .participants
                .intakes
                .limits()
                .intakes_per_source_max
    );
    Flooded {
        challenges,
        intakes,
    }
}

/// Most of the flood was refused with a 429 problem of type `kind`, and a
/// time to come back.
fn refused_as(seen: &BTreeMap<u16, (usize, Answer)>, what: &str, kind: &str) -> usize {
    let (refused, answer) = seen
        .get(&429)
        .unwrap_or_else(|| panic!("no flooded {what} refused with 429: {}", counts(seen)));
    let total: usize = seen.values().map(|(n, _)| n).sum();
    assert!(
        *refused > total * 9 / 10,
        "most flooded {what} refused: {}",
        counts(seen)
    );
    assert_eq!(
        answer.json()["type"],
        format!("https://consentry.dev/problems/{kind}")
    );
    let retry: u64 = answer
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {answer:?}"));
    assert!(retry >= 1);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    total - refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_does_not_stop_another_from_signing_in_or_enrolling() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let flooded = flood_then_the_neighbour_gets_in(&net).await;
    // The rate per source stopped it: the flooder got its burst, no more
    // (the test's clock stands still, so nothing refilled).
    let sessions = gateway::participant::session::SessionLimits::default();
    let intakes = gateway::participant::intake::IntakeLimits::default();
    let served = refused_as(&flooded.challenges, "challenges", "rate-limited");
    assert_eq!(served, sessions.challenge_rate.burst_max as usize);
    let served = refused_as(&flooded.intakes, "intakes", "rate-limited");
    assert_eq!(served, intakes.intake_rate.burst_max as usize);

    // One participant signing in again and again keeps a few sessions,
    // their newest, and is never refused.
    let p1 = fixture::participant_id(1);
    let mut last = String::new();
    for _ in 0..sessions.sessions_per_participant_max + 4 {
        let (_, session) = sign_in(NEIGHBOUR, net.addr, &p1, &fixture::participant_key(1)).await;
        let session = session.unwrap();
        assert_eq!(session.status, 200);
        last = session.json()["token"].as_str().unwrap().to_string();
    }
    assert_eq!(
        net.state.participants.sessions.sessions_held(&p1).1,
        sessions.sessions_per_participant_max
    );
    let me = one(
        NEIGHBOUR,
        net.addr,
        request(
            "GET",
            "/v1/me",
            &[("authorization", &format!("Bearer {last}"))],
            b"",
        ),
    )
    .await;
    assert_eq!(me.status, 200);
    net.stop().await;
}

/// An operator who raised the rates (or a flood slow enough to pass them)
/// still cannot fill the stores from one address: its share is full and
/// refuses it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_rates_raised_the_flood_fills_only_its_own_share() {
    use gateway::participant::intake::IntakeLimits;
    use gateway::participant::session::SessionLimits;
    use gateway::quota::rate::Rate;
    let unlimited = Rate {
        burst_max: u32::MAX,
        per_minute: 60_000,
    };
    let dir = tempfile::tempdir().unwrap();
    let net = net::start_adjusted(
        dir.path(),
        gateway::server::HttpLimits::default(),
        std::time::Duration::from_secs(5),
        |g| {
            g.sessions = SessionLimits {
                challenge_rate: unlimited,
                sign_in_rate: unlimited,
                ..SessionLimits::default()
            };
            g.intakes = IntakeLimits {
                intake_rate: unlimited,
                ..IntakeLimits::default()
            };
        },
    )
    .await;
    let flooded = flood_then_the_neighbour_gets_in(&net).await;
    let served = refused_as(&flooded.challenges, "challenges", "too-many-waiting");
    assert_eq!(served, SessionLimits::default().challenges_per_source_max);
    let served = refused_as(&flooded.intakes, "intakes", "too-many-waiting");
    assert_eq!(served, IntakeLimits::default().intakes_per_source_max);
    net.stop().await;
}

/// Behind a reverse proxy: the forwarded client is the source only when
/// the connection comes from the configured proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_are_believed_only_from_the_trusted_proxy() {
    use gateway::participant::session::SessionLimits;
    use gateway::quota::rate::Rate;
    const PROXY: IpAddr = FLOODER;
    const BURST: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let net = net::start_adjusted(
        dir.path(),
        gateway::server::HttpLimits {
            trusted_proxies: std::sync::Arc::new(
                gateway::source::TrustedProxies::parse(&[PROXY.to_string()]).unwrap(),
            ),
            ..gateway::server::HttpLimits::default()
        },
        std::time::Duration::from_secs(5),
        |g| {
            g.sessions = SessionLimits {
                challenge_rate: Rate {
                    burst_max: BURST as u32,
                    per_minute: 1,
                },
                ..SessionLimits::default()
            };
        },
    )
    .await;
    let ask = |forwarded_for: Option<&str>| {
        let body = serde_json::json!({"participant": fixture::participant_id(1)}).to_string();
        match forwarded_for {
            Some(f) => request(
                "POST",
                "/v1/participant/challenge",
                &[("x-forwarded-for", f)],
                body.as_bytes(),
            ),
            None => request("POST", "/v1/participant/challenge", &[], body.as_bytes()),
        }
    };
    let statuses = |answers: Vec<Answer>| answers.iter().map(|a| a.status).collect::<Vec<_>>();
    let mut burst_then_refused = vec![200; BURST];
    burst_then_refused.push(429);

    // A client behind the proxy uses its own allowance...
    let client = vec![ask(Some("198.51.100.7")); BURST + 1];
    assert_eq!(
        statuses(exchange(PROXY, net.addr, &client).await),
        burst_then_refused
    );
    // ...and cannot get more by writing addresses of its own to the left
    // of the one the proxy appended.
    let spoofed = ask(Some("192.0.2.1, 198.51.100.7"));
    assert_eq!(one(PROXY, net.addr, spoofed).await.status, 429);
    // Another client behind the same proxy is not slowed, nor is the
    // proxy's own request.
    assert_eq!(
        one(PROXY, net.addr, ask(Some("198.51.100.8"))).await.status,
        200
    );
    assert_eq!(one(PROXY, net.addr, ask(None)).await.status, 200);

    // From anyone else the header is not believed: a new address in each
    // request does not give a new allowance.
    let forged: Vec<Vec<u8>> = (0..=BURST)
        .map(|i| ask(Some(&format!("203.0.113.{i}"))))
        .collect();
    assert_eq!(
        statuses(exchange(NEIGHBOUR, net.addr, &forged).await),
        burst_then_refused
    );

    let held = |ip: &str| {
        net.state
            .participants
            .sessions
            .challenges_held(ip.parse().unwrap())
            .1
    };
    assert_eq!(held("198.51.100.7"), BURST);
    assert_eq!(held("198.51.100.8"), 1);
    assert_eq!(held(&PROXY.to_string()), 1);
    assert_eq!(held(&NEIGHBOUR.to_string()), BURST);
    assert_eq!(held("203.0.113.0"), 0);
    net.stop().await;
}
