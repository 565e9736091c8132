//! The limits of the HTTP surface, per listener, and the check that they
//! can work together (refused at load, never found out under load).

use std::sync::Arc;
use std::time::Duration;

/// The limits of the HTTP surface, per listener.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub body_bytes_max: usize,
    /// All header names and values of one request together.
    pub header_bytes_max: usize,
    /// A whole request, from its first byte to its answer.
    pub request_timeout: Duration,
    /// Requests served at once; more wait for a turn.
    pub requests_in_flight_max: usize,
    /// Requests in flight (served or waiting for a turn) from one source
    /// (its TCP peer: an IPv4 address, an IPv6 /64); more are refused at
    /// once. HTTP/1.1 holds one per connection, HTTP/2 up to
    /// `http2_streams_max`: without this, a few HTTP/2 connections from
    /// one address could take every turn. Behind a reverse proxy every
    /// request comes from the proxy: raise this to `requests_in_flight_max`.
    pub requests_in_flight_per_source_max: usize,
    /// Connections held open at once; more wait to be accepted.
    pub connections_max: usize,
    /// Connections held open at once from one source (an IPv4 address, an
    /// IPv6 /64); more are closed as soon as they are accepted. Well below
    /// `connections_max`, so that no one source can hold every slot; above
    /// what one well-behaved client opens (the load benchmark: 64, the
    /// tests: 200 at once). Behind a reverse proxy every connection comes
    /// from the proxy: raise this to `connections_max` there, and limit
    /// per client in the proxy.
    pub connections_per_address_max: usize,
    /// From a connection's first byte, or the end of its last answer, to
    /// the end of the next request's headers. Also how long a kept-alive
    /// connection may wait for its next request.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moved either way for this long is
    /// closed: a client that stopped reading its answer, or stopped
    /// sending its body. Longer than `request_timeout`, so that no request
    /// being worked on is ever cut.
    pub idle_timeout: Duration,
    /// Requests per second one source (peer address) may send, on
    /// average; more get 429 before any work is done or counted. Above
    /// what one busy agency's gateway client sends (the load benchmark:
    /// about 4,300/s from one address); behind a reverse proxy, limit per
    /// client in the proxy.
    pub requests_per_source_per_second: u32,
    /// The burst one source may send above that rate.
    pub requests_per_source_burst: u32,
    /// Peers whose `X-Forwarded-For` or `Forwarded` says which client a
    /// request is from, for the limits per source ([`crate::source`]).
    /// None by default: the TCP peer is the source.
    pub trusted_proxies: Arc<crate::source::TrustedProxies>,
    /// With TLS: from a connection's accept to the end of its handshake,
    /// before HTTP and its timers start.
    pub tls_handshake_timeout: Duration,
    /// With HTTP/2 (TLS, by ALPN): requests open at once on one connection.
    pub http2_streams_max: u32,
    /// With HTTP/2: streams a client opened and reset before they were
    /// served, held at once; more end the connection (the rapid-reset
    /// flood, CVE-2023-44487).
    pub http2_resets_pending_max: usize,
    /// With HTTP/2: streams the server had to reset for a client's errors;
    /// more end the connection.
    pub http2_error_resets_max: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 64 * 1024,
            header_bytes_max: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            requests_in_flight_max: 1024,
            requests_in_flight_per_source_max: 256,
            connections_max: 2048,
            connections_per_address_max: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            requests_per_source_per_second: 10_000,
            requests_per_source_burst: 20_000,
            trusted_proxies: Arc::default(),
            tls_handshake_timeout: Duration::from_secs(10),
            http2_streams_max: 100,
            http2_resets_pending_max: 20,
            http2_error_resets_max: 256,
        }
    }
}

/// Limits that cannot work together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("{0} must be above zero")]
    Zero(&'static str),
    #[error("connections_per_address_max ({per_address}) is above connections_max ({max})")]
    PerAddressAboveMax { per_address: usize, max: usize },
    #[error(
        "requests_in_flight_per_source_max ({per_source}) is above requests_in_flight_max ({max})"
    )]
    PerSourceAboveMax { per_source: usize, max: usize },
    #[error("idle_timeout ({idle:?}) must be longer than request_timeout ({request:?}), or a request being answered could be cut")]
    IdleNotAboveRequest { idle: Duration, request: Duration },
}

impl HttpLimits {
    pub fn check(&self) -> Result<(), LimitsError> {
        let counts = [
            ("body_bytes_max", self.body_bytes_max),
            ("header_bytes_max", self.header_bytes_max),
            ("requests_in_flight_max", self.requests_in_flight_max),
            (
                "requests_in_flight_per_source_max",
                self.requests_in_flight_per_source_max,
            ),
            ("connections_max", self.connections_max),
            (
                "requests_per_source_per_second",
                self.requests_per_source_per_second as usize,
            ),
            (
                "requests_per_source_burst",
                self.requests_per_source_burst as usize,
            ),
            (
                "connections_per_address_max",
                self.connections_per_address_max,
            ),
            ("http2_streams_max", self.http2_streams_max as usize),
            ("http2_resets_pending_max", self.http2_resets_pending_max),
            ("http2_error_resets_max", self.http2_error_resets_max),
        ];
        let times = [
            ("request_timeout", self.request_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(LimitsError::Zero(name));
        }
        if let Some((name, _)) = times.iter().find(|(_, d)| d.is_zero()) {
            return Err(LimitsError::Zero(name));
        }
        if self.connections_per_address_max > self.connections_max {
            return Err(LimitsError::PerAddressAboveMax {
                per_address: self.connections_per_address_max,
                max: self.connections_max,
            });
        }
        if self.requests_in_flight_per_source_max > self.requests_in_flight_max {
            return Err(LimitsError::PerSourceAboveMax {
                per_source: self.requests_in_flight_per_source_max,
                max: self.requests_in_flight_max,
            });
        }
        if self.idle_timeout <= self.request_timeout {
            return Err(LimitsError::IdleNotAboveRequest {
                idle: self.idle_timeout,
                request: self.request_timeout,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_work_together() {
        assert_eq!(HttpLimits::default().check(), Ok(()));
    }

    #[test]
    fn limits_that_cannot_work_together_are_refused() {
        let with = |edit: fn(&mut HttpLimits)| {
            let mut l = HttpLimits::default();
            edit(&mut l);
            l.check()
        };
        assert_eq!(
            with(|l| l.header_read_timeout = Duration::ZERO),
            Err(LimitsError::Zero("header_read_timeout"))
        );
        assert_eq!(
            with(|l| l.connections_per_address_max = 0),
            Err(LimitsError::Zero("connections_per_address_max"))
        );
        assert_eq!(
            with(|l| l.connections_per_address_max = l.connections_max + 1),
            Err(LimitsError::PerAddressAboveMax {
                per_address: 2049,
                max: 2048
            })
        );
        assert!(matches!(
            with(|l| l.idle_timeout = l.request_timeout),
            Err(LimitsError::IdleNotAboveRequest { .. })
        ));
    }
}
