//! Connection limits below HTTP: at most `connections_max` connections
//! open at once (the next accept waits until one closes), at most
//! `connections_per_address_max` of them from one source (the peer
//! address grouped by [`crate::source::source_of`]; more are closed as
//! soon as they are accepted), and [`Watched`], which notes when
//! bytes last moved so that a silent connection can be closed. Bounded
//! connections, not only bounded requests, so that idle sockets cannot
//! exhaust the process, and one source cannot take every slot.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub struct LimitedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
}

/// Open connections by source. Every entry stands for at least one open
/// connection, each holding a global slot, so the map never has more than
/// `connections_max` entries.
struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn take(self: &Arc<Self>, peer: IpAddr) -> Option<AddressSlot> {
        let key = crate::source::source_of(peer);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

/// One connection's place in its source's count, given back on drop.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl LimitedListener {
    pub fn new(
        inner: TcpListener,
        connections_max: usize,
        connections_per_address_max: usize,
    ) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(connections_max.max(1))),
            per_address: Arc::new(PerAddress {
                max: connections_per_address_max.max(1),
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The next connection within both limits. Waits while every slot is
    /// taken; a connection from a source already at its limit is closed at
    /// once, before a byte of it is read, and never waits for a slot:
    /// held, it would hold a slot of its own.
    pub async fn accept(&mut self) -> (Limited, SocketAddr) {
        loop {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let Some(address) = self.per_address.take(peer.ip()) else {
                        drop(stream);
                        continue;
                    };
                    return (
                        Limited {
                            stream,
                            _slot: slot,
                            _address: address,
                        },
                        peer,
                    );
                }
                // Out of descriptors and the like: back off briefly rather
                // than spin, as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that gives its slots back when it closes.
pub struct Limited {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _address: AddressSlot,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// When bytes last moved on a connection, either way.
pub struct Activity {
    start: Instant,
    /// Nanoseconds after `start`.
    last_nanos: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_nanos: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.store(nanos, Relaxed);
    }

    pub fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last_nanos.load(Relaxed))
    }
}

/// A connection that notes in its [`Activity`] each time bytes are read
/// or written. A wait for bytes that never come is not activity.
pub struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpSocket;

    async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::from((source, 0))).unwrap();
        s.connect(to).await.unwrap()
    }

    /// Waits for the peer to close `s` (end of stream or a reset). The
    /// timeout only bounds a failing test.
    async fn closed_by_peer(s: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_connection_past_the_limit_waits_for_a_slot() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut l = LimitedListener::new(tcp, 1, 1);
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let (first, _) = l.accept().await;
        // The second connection is queued by the kernel, but not taken
        // while the first holds the only slot.
        let mut second = Box::pin(l.accept());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..50 {
            tokio::task::yield_now().await;
            assert!(second.as_mut().poll(&mut cx).is_pending());
        }
        drop(first);
        let (_second, _) = second.await;
    }

    #[tokio::test]
    async fn one_address_past_its_limit_does_not_stop_another() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut l = LimitedListener::new(tcp, 16, 2);
        let _a1 = connect_from([127, 0, 0, 1], addr).await;
        let _a2 = connect_from([127, 0, 0, 1], addr).await;
        let (held1, p1) = l.accept().await;
        let (_held2, p2) = l.accept().await;
        assert_eq!(
            (p1.ip(), p2.ip()),
            ([127, 0, 0, 1].into(), [127, 0, 0, 1].into())
        );
        // The kernel queues the third connection from .1 before the one
        // from .2: the listener closes the third and returns the fourth.
        let mut a3 = connect_from([127, 0, 0, 1], addr).await;
        let _b1 = connect_from([127, 0, 0, 2], addr).await;
        let (_b, pb) = l.accept().await;
        assert_eq!(pb.ip(), IpAddr::from([127, 0, 0, 2]));
        assert!(closed_by_peer(&mut a3).await, "over its limit: closed");
        // A closed connection gives its source's place back.
        drop(held1);
        let _a4 = connect_from([127, 0, 0, 1], addr).await;
        let (_a, pa) = l.accept().await;
        assert_eq!(pa.ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            l.per_address
                .open
                .lock()
                .unwrap()
                .get(&IpAddr::from([127, 0, 0, 1])),
            Some(&2)
        );
    }

    #[test]
    fn the_address_table_forgets_a_source_with_nothing_open() {
        let t = Arc::new(PerAddress {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = t.take(ip).unwrap();
        let b = t.take(ip).unwrap();
        assert!(t.take(ip).is_none());
        drop(a);
        let c = t.take(ip).unwrap();
        drop((b, c));
        assert!(t.open.lock().unwrap().is_empty());
    }
}
