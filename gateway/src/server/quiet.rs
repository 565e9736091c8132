//! HTTP/2's stand-in for HTTP/1.1's header-read timeout: a connection
//! with no request open for that long is closed. Bytes alone do not keep
//! it (a client can send a PING a minute and hold a slot for ever); an
//! open request does, until its answer's last byte is sent.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use tokio::time::Instant;

/// The requests open on one connection, and when the last one ended.
pub struct Requests {
    open: AtomicUsize,
    last_end: Mutex<Instant>,
}

impl Requests {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        })
    }

    /// Counts a request open until the returned value is dropped.
    pub fn open(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::SeqCst);
        Open(self.clone())
    }

    /// When the connection has been without a request for `quiet`, or
    /// `None` while one is open.
    pub fn quiet_until(&self, quiet: std::time::Duration) -> Option<Instant> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = *self.last_end.lock().unwrap_or_else(|p| p.into_inner());
        Some(last + quiet)
    }
}

/// One open request: dropped with its answer's body (sent, or abandoned).
pub struct Open(Arc<Requests>);

impl Drop for Open {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that holds its request open until it is dropped.
pub struct Held {
    body: Body,
    _open: Open,
}

impl Held {
    pub fn body(body: Body, open: Open) -> Body {
        Body::new(Held { body, _open: open })
    }
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
