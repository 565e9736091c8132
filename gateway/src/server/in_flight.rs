//! Requests in flight per source: a turn held from the moment a request
//! arrives until its handler has answered, so that no one source (a few
//! HTTP/2 connections each carrying many streams) can take every turn of
//! the global limit and make everyone else wait.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// The count per source; a source with none has no entry, so the table
/// holds at most one entry per request in flight.
pub struct InFlight {
    per_source: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One request's turn; given back when dropped, whatever ended it.
struct Turn {
    table: Arc<InFlight>,
    source: IpAddr,
}

impl InFlight {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            per_source: Mutex::new(HashMap::new()),
            max,
        })
    }

    fn take(self: &Arc<Self>, source: IpAddr) -> Option<Turn> {
        // A poisoned table still holds whole counts.
        let mut t = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(source).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Turn {
            table: self.clone(),
            source,
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut t = self
            .table
            .per_source
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.source);
            }
        }
    }
}

/// Serves `req` within its source's share, or refuses it at once (429).
/// The source is the TCP peer, never a header: this runs before anything
/// of the request is read.
pub async fn per_source(table: Arc<InFlight>, req: Request, next: Next) -> Response {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
    else {
        return next.run(req).await;
    };
    let Some(turn) = table.take(crate::source::source_of(peer.ip())) else {
        return Problem::TooManyWaiting {
            detail: format!(
                "this address has {} requests in flight, as many as one source may",
                table.max
            ),
            retry_after_secs: 1,
        }
        .into_response();
    };
    let answer = next.run(req).await;
    drop(turn);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_share_and_gets_its_turns_back() {
        let t = InFlight::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = t.take(a).unwrap();
        let _second = t.take(a).unwrap();
        assert!(t.take(a).is_none(), "a third turn for one source");
        assert!(t.take(b).is_some(), "another source waits behind it");
        drop(first);
        assert!(t.take(a).is_some(), "a turn given back");
    }

    #[test]
    fn the_table_forgets_a_source_with_nothing_in_flight() {
        let t = InFlight::new(4);
        for i in 0..100u8 {
            let _ = t.take(IpAddr::from([10, 0, 0, i]));
        }
        assert!(t.per_source.lock().unwrap().is_empty());
    }
}
