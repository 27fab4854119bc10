//! A connection's clocks: what it is doing, seen from its bytes and its requests, and when it
//! must go (idle, a request head too slow, a response its client does not read). The watchdog
//! that waits on these is [`Gated`], so that it costs nothing on the connection's own wake-ups.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A future polled only when its own waker was woken (or on the first poll): inside a `select!`
/// beside the connection, it costs nothing on the wake-ups that are the connection's.
pub(super) struct Gated<F> {
    inner: Pin<Box<F>>,
    flag: Arc<WakeFlag>,
}

struct WakeFlag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Gated<F> {
    pub(super) fn new(inner: F) -> Self {
        Gated {
            inner: Box::pin(inner),
            flag: Arc::new(WakeFlag {
                woken: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.flag.task.register(cx.waker());
        if !self.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(self.flag.clone());
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// What a connection is doing, as seen from its bytes and its requests.
pub(super) struct Activity(Mutex<ActivityState>);

struct ActivityState {
    /// Requests whose handler is running.
    in_flight: usize,
    /// When a byte last moved or a request began or ended.
    quiet_since: Instant,
    /// When the request head now awaited began: the connection's start, or the first byte read
    /// after the last request began.
    head_started: Option<Instant>,
}

pub(super) enum Expiry {
    /// Nothing in flight and nothing moved: ask the connection to close.
    Idle,
    /// A request head that did not finish in time: nothing to finish, drop it.
    SlowHead,
    /// A response that stopped moving (the client does not read): drop it.
    Stalled,
}

impl Activity {
    /// A new connection owes its first request head at once: it is not idle before it has asked
    /// for anything.
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Activity(Mutex::new(ActivityState {
            in_flight: 0,
            quiet_since: now,
            head_started: Some(now),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.lock();
        let now = Instant::now();
        s.quiet_since = now;
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(now);
        }
    }

    fn wrote(&self, n: usize) {
        if n > 0 {
            self.lock().quiet_since = Instant::now();
        }
    }

    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        let now = Instant::now();
        s.in_flight += 1;
        s.head_started = None;
        s.quiet_since = now;
        InFlight {
            activity: self.clone(),
            started: now,
        }
    }

    /// Resolves when the connection must go: idle for `idle` with nothing in flight, a request
    /// head arriving for longer than `head`, or a response that has not moved for `stall`.
    pub(super) async fn expired(&self, idle: Duration, head: Duration, stall: Duration) -> Expiry {
        loop {
            let wake = {
                let s = self.lock();
                let now = Instant::now();
                let deadline = match (s.head_started, s.in_flight) {
                    (Some(started), _) => (started + head, Expiry::SlowHead),
                    (None, 0) => (s.quiet_since + idle, Expiry::Idle),
                    (None, _) => (s.quiet_since + stall, Expiry::Stalled),
                };
                if now >= deadline.0 {
                    return deadline.1;
                }
                deadline.0
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// A request in flight, from its head until its response body is sent (or abandoned).
pub(super) struct InFlight {
    activity: Arc<Activity>,
    /// When the request began: its request timeout counts from here.
    pub(super) started: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.quiet_since = Instant::now();
    }
}

/// The connection's bytes, counted into its [`Activity`].
pub(super) struct Tracked<I> {
    pub(super) io: I,
    pub(super) activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.read(buf.filled().len() - before);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
