//! Open client connections: when each last moved bytes, whether it is serving a
//! request, the idle timeout, and the cap that sheds the longest-idle ones first.
//!
//! hyper's header timer starts at a request's first byte, so a connection that never
//! sends one (or stays silent between keep-alive requests) would be held forever, and
//! enough of them exhaust the process's descriptors. Every connection is registered
//! here; its task closes it once it has been idle for the timeout, or at once when a
//! newer connection needs its place under the cap.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Every open connection, under a cap.
pub(crate) struct Conns {
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    cap: usize,
    idle: Duration,
    epoch: Instant,
}

/// One connection's activity, shared by its socket, its requests and its task.
pub(crate) struct Slot {
    id: u64,
    /// Requests whose response has not been sent whole yet.
    in_flight: AtomicUsize,
    /// Milliseconds since [`Conns::epoch`] of the last byte moved or request finished.
    last_active: AtomicU64,
    /// Wakes the connection's task when the cap needs its place.
    shed: Notify,
    epoch: Instant,
}

impl Conns {
    pub(crate) fn new(cap: usize, idle: Duration) -> Arc<Conns> {
        Arc::new(Conns {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            cap,
            idle,
            epoch: Instant::now(),
        })
    }

    /// Register a new connection. At the cap, the connection idle the longest is told
    /// to close to make room; if every one is serving a request, the newcomer is refused
    /// (`None`) rather than let the process run out of descriptors.
    pub(crate) fn admit(&self) -> Option<Arc<Slot>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.cap && !Self::shed_locked(&mut open) {
            return None;
        }
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(0),
            shed: Notify::new(),
            epoch: self.epoch,
        });
        slot.touch();
        open.insert(slot.id, slot.clone());
        Some(slot)
    }

    /// Close the connection idle the longest, if any is idle (for the accept loop when
    /// the process is out of descriptors anyway).
    pub(crate) fn shed_one(&self) -> bool {
        Self::shed_locked(&mut self.open.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn shed_locked(open: &mut HashMap<u64, Arc<Slot>>) -> bool {
        let oldest = open
            .values()
            .filter(|s| s.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|s| s.last_active.load(Ordering::Relaxed))
            .map(|s| s.id);
        let Some(slot) = oldest.and_then(|id| open.remove(&id)) else {
            return false;
        };
        slot.shed.notify_one();
        true
    }

    /// Forget a connection that has closed.
    fn remove(&self, slot: &Slot) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&slot.id);
    }

    /// Drive `conn` (the connection's HTTP future) until it ends, is shed, or has been
    /// idle for the timeout; dropping it closes the socket.
    pub(crate) async fn run<F: std::future::Future>(
        &self,
        slot: &Slot,
        conn: F,
    ) -> Closed<F::Output> {
        let closed = self.race(slot, conn).await;
        self.remove(slot);
        closed
    }

    async fn race<F: std::future::Future>(&self, slot: &Slot, conn: F) -> Closed<F::Output> {
        let mut conn = std::pin::pin!(conn);
        loop {
            let deadline = tokio::time::Instant::from_std(slot.last_active_at() + self.idle);
            tokio::select! {
                ended = &mut conn => return Closed::Ended(ended),
                () = slot.shed.notified() => return Closed::Shed,
                () = tokio::time::sleep_until(deadline) => {
                    // Activity since the timer was set moves the deadline; a request being
                    // served (a long copy, a slow disk) is never idle.
                    if slot.idle() && slot.last_active_at() + self.idle <= Instant::now() {
                        return Closed::Idle;
                    }
                }
            }
        }
    }
}

/// Why a connection's task ended.
pub(crate) enum Closed<T> {
    /// hyper finished with the connection (the client closed it, or an error).
    Ended(T),
    /// Nothing moved and no request ran for the idle timeout.
    Idle,
    /// A newer connection needed its place under the cap.
    Shed,
}

impl Slot {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_active.store(ms, Ordering::Relaxed);
    }

    fn last_active_at(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_active.load(Ordering::Relaxed))
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Mark a request in flight until the returned guard drops (with its response body).
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

/// A request in flight on a connection; the idle clock restarts when it drops.
pub(crate) struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request marked in flight until it is sent whole
/// (or abandoned), so a long download is never taken for an idle connection.
pub(crate) struct Tracked<B> {
    inner: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, busy: Busy) -> Tracked<B> {
        Tracked { inner, _busy: busy }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that records on its [`Slot`] when bytes last moved either way.
pub(crate) struct Watched<T> {
    inner: T,
    slot: Arc<Slot>,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, slot: Arc<Slot>) -> Watched<T> {
        Watched { inner, slot }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.slot.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.slot.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn the_cap_sheds_the_longest_idle_and_refuses_when_all_are_busy() {
        let conns = Conns::new(2, Duration::from_secs(30));
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        // `a` moved bytes after `b`: `b` has been idle the longest.
        a.last_active.store(10, Ordering::Relaxed);
        b.last_active.store(5, Ordering::Relaxed);
        let _c = conns.admit().unwrap();
        assert!(!conns.open.lock().unwrap().contains_key(&b.id));
        assert!(conns.open.lock().unwrap().contains_key(&a.id));
        // `b` was told to close.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let notified = b.shed.notified();
        let mut notified = std::pin::pin!(notified);
        assert!(notified.as_mut().poll(&mut cx).is_ready());

        let _busy_a = a.busy();
        let c = conns
            .open
            .lock()
            .unwrap()
            .values()
            .find(|s| s.id != a.id)
            .cloned()
            .unwrap();
        let _busy_c = c.busy();
        assert!(
            conns.admit().is_none(),
            "every connection is serving a request"
        );
    }
}
