//! `consentry bench`: the load generator of `bench/run.sh`.
//!
//! Every request carries a fresh signature and nonce, so requests are
//! **signed ahead** (on every core, before the clock starts) and then sent
//! over `connections` keep-alive connections, each connection one request
//! at a time. Three targets, the same sample record system behind each:
//! - `gateway`: agency requests (RFC 9421, the agency's key) through the
//!   whole agency path: signature check, decision, two durable log entries,
//!   forwarding, filtering;
//! - `direct`: the gateway's own forwarded request, signed with the
//!   gateway's key, sent straight to the record system;
//! - `proxy`: the same, sent through a reverse proxy (nginx) in front of it.
//!
//! Any target may be `https://`, verified against `--ca` (else the system's
//! roots). Connections are HTTP/1.1 and kept alive, so a run pays for one
//! TLS handshake per connection, not per request: what is measured is the
//! traffic, and [`Measured::opened`] says how many connections (and so
//! handshakes) it took.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::agency::forward::{sign_forward, Outgoing};
use crate::client::{AgencyClient, Ask};
use crate::tls::Roots;

/// How long one connect (TCP and TLS handshake) may take.
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// One request ready to send.
pub type Ready = (http::Uri, http::HeaderMap);

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("{0} is not a usable url")]
    BadUrl(String),
    #[error("the load generator's TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Signs `n` agency requests for the gateway, on every core.
pub fn presign_gateway(
    client: &AgencyClient,
    ask: &Ask,
    n: usize,
    now: i64,
) -> Result<Vec<Ready>, BenchError> {
    parallel(n, |_| {
        let s = client
            .sign(ask, now)
            .map_err(|e| BenchError::Sign(e.to_string()))?;
        let uri = s
            .uri
            .parse()
            .map_err(|_| BenchError::BadUrl(s.uri.clone()))?;
        Ok((uri, s.headers))
    })
}

/// Signs `n` agency requests for the gateway, taking the (agency, request)
/// pairs of `mix` in turn: the audit benchmark's traffic of allows,
/// denies and emergencies.
pub fn presign_mix(
    mix: &[(AgencyClient, Ask)],
    n: usize,
    now: i64,
) -> Result<Vec<Ready>, BenchError> {
    if mix.is_empty() {
        return Ok(Vec::new());
    }
    parallel(n, |i| {
        let (client, ask) = &mix[i % mix.len()];
        let s = client
            .sign(ask, now)
            .map_err(|e| BenchError::Sign(e.to_string()))?;
        let uri = s
            .uri
            .parse()
            .map_err(|_| BenchError::BadUrl(s.uri.clone()))?;
        Ok((uri, s.headers))
    })
}

/// Signs `n` forwarded requests for `sign_for` (the record system's own
/// URL, which its signature covers), to be sent to `send_to` (the same
/// system, or a proxy in front of it).
#[allow(clippy::too_many_arguments)]
pub fn presign_upstream(
    sign_for: &str,
    send_to: &str,
    participant: &str,
    released: &[String],
    key_id: &str,
    key: &ed25519_dalek::SigningKey,
    n: usize,
    now: i64,
) -> Result<Vec<Ready>, BenchError> {
    let send_to: http::Uri = send_to
        .parse()
        .map_err(|_| BenchError::BadUrl(send_to.to_string()))?;
    let authority = send_to
        .authority()
        .cloned()
        .ok_or_else(|| BenchError::BadUrl(send_to.to_string()))?;
    parallel(n, |i| {
        let decision = format!("d-bench-{i:012}");
        let (uri, headers) = sign_forward(
            &Outgoing {
                url: sign_for.to_string(),
                participant,
                decision_id: &decision,
                released,
                now,
            },
            key_id,
            key,
        )
        .map_err(|e| BenchError::Sign(e.to_string()))?;
        // The proxy's scheme too: nginx may take TLS in front of a
        // plain-HTTP record system.
        let mut parts = uri.into_parts();
        parts.scheme = send_to.scheme().cloned();
        parts.authority = Some(authority.clone());
        let uri = http::Uri::from_parts(parts).map_err(|e| BenchError::BadUrl(e.to_string()))?;
        Ok((uri, headers))
    })
}

fn parallel(
    n: usize,
    make: impl Fn(usize) -> Result<Ready, BenchError> + Sync,
) -> Result<Vec<Ready>, BenchError> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let per = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|lo| {
                let make = &make;
                s.spawn(move || {
                    (lo..(lo + per).min(n))
                        .map(make)
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| BenchError::Sign("a signing thread failed".into()))??,
            );
        }
        Ok(out)
    })
}

/// What one run measured.
#[derive(Debug)]
pub struct Measured {
    pub sent: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub secs: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Connections opened (each a TLS handshake over `https://`): the
    /// run's `connections` when every one was kept alive throughout.
    pub opened: usize,
    /// Why the first request that got no answer got none.
    pub failure: Option<String>,
}

impl Measured {
    pub fn per_sec(&self) -> f64 {
        self.sent as f64 / self.secs
    }

    pub fn ok(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Sends every request over `connections` connections, each one request
/// at a time, and measures. With a `rate` (requests/s), request `i` is due
/// at `i / rate` seconds and its latency counts from then (queueing
/// included, so a slow server cannot hide its backlog). Status 0 counts a
/// request that got no answer. `https://` targets are verified against
/// `roots`; for plain `http://` none are read.
pub async fn run(
    requests: Vec<Ready>,
    connections: usize,
    rate: Option<f64>,
    roots: &Roots,
) -> Result<Measured, BenchError> {
    let https = requests
        .iter()
        .any(|(u, _)| u.scheme_str() == Some("https"));
    let config = crate::tls::client::config_for(https, roots)?;
    let opened = Arc::new(AtomicUsize::new(0));
    let connector = {
        let inner =
            crate::tls::client::connector(config, Duration::from_secs(CONNECT_TIMEOUT_SECS));
        let opened = opened.clone();
        tower::service_fn(move |uri: http::Uri| {
            opened.fetch_add(1, Ordering::Relaxed);
            tower::ServiceExt::oneshot(inner.clone(), uri)
        })
    };
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build::<_, Empty<Bytes>>(connector);
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let failure = Arc::new(std::sync::OnceLock::new());
    let start = Instant::now();
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (client, requests, next) = (client.clone(), requests.clone(), next.clone());
            let failure = failure.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((uri, headers)) = requests.get(i) else {
                        break;
                    };
                    let mut req = http::Request::get(uri.clone());
                    if let Some(h) = req.headers_mut() {
                        *h = headers.clone();
                    }
                    let Ok(req) = req.body(Empty::new()) else {
                        seen.push((0u16, Duration::ZERO));
                        continue;
                    };
                    let t = match rate {
                        Some(r) if r > 0.0 => {
                            let due = start + Duration::from_secs_f64(i as f64 / r);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        _ => Instant::now(),
                    };
                    let status = match client.request(req).await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            // Read the whole body: the answer is what costs.
                            match resp.into_body().collect().await {
                                Ok(_) => status,
                                Err(_) => 0,
                            }
                        }
                        Err(e) => {
                            failure.get_or_init(|| why(&e));
                            0
                        }
                    };
                    seen.push((status, t.elapsed()));
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap_or_default());
    }
    let secs = start.elapsed().as_secs_f64();
    let mut statuses = BTreeMap::new();
    for (s, _) in &all {
        *statuses.entry(*s).or_insert(0) += 1;
    }
    let mut lat: Vec<Duration> = all.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(Measured {
        sent: all.len(),
        statuses,
        secs,
        p50: pct(0.5),
        p99: pct(0.99),
        opened: opened.load(Ordering::Relaxed),
        failure: failure.get().cloned(),
    })
}

/// Why a request got no answer: TLS's own reason when it was TLS (an
/// unknown issuer: the CA not given with `--ca`), else the error's chain.
fn why(e: &hyper_util::client::legacy::Error) -> String {
    if let Some(t) = crate::tls::client::tls_failure(e) {
        return format!("TLS: {t}");
    }
    let mut out = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push_str(&format!(": {s}"));
        next = s.source();
    }
    out
}
