//! The accept loop: every connection, plain or TLS, is served under the same [`Limits`].
//!
//! - A connection holds one of `max_connections` slots. When they are all taken, a connection is
//!   still accepted into a small reserved slice in which only `/healthz` and `/readyz` are served
//!   and every other request gets a fast `503 overloaded` (one request, then the connection is
//!   closed); when that slice is full too, a new connection is closed at once. Nobody waits in a
//!   queue.
//! - The TLS handshake, a new connection's first request head (from the accept, or the end of
//!   the handshake) and each later request head (from its first byte) must finish within the
//!   header-read timeout; a keep-alive connection that stays silent between requests is closed
//!   after the idle timeout; a handler that runs past the request timeout is dropped and the
//!   client gets `503 timeout`.
//! - A response that does not move for the request and idle timeouts together (its client does
//!   not read) is dropped, and so is a connection asked to close (idle, or the server is
//!   stopping) that has not closed within one more header-read timeout.

use super::error::error_response;
use crate::config::Limits;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use openssl::ssl::{Ssl, SslAcceptor};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Paths still served from the reserved slice when every regular slot is taken.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];
/// What an over-limit client is told to wait before it tries again, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// Serve `app` on `listener` until `stop` turns true, then stop accepting, let in-flight requests
/// finish (a request cannot outlive the request timeout) and return.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<SslAcceptor>>,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let reserved = Arc::new(Semaphore::new(limits.reserved_connections()));
    let shared = Arc::new(Shared {
        app,
        limits,
        tls,
        stop: stop.clone(),
    });
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning on the error.
                if !is_connection_error(&e) {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let (permit, probes_only) = match regular.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: answering 503 overloaded, then closing new connections"
                    );
                }
                match reserved.clone().try_acquire_owned() {
                    Ok(p) => (p, true),
                    // Closing costs nothing; keeping it waiting would cost a descriptor.
                    Err(_) => continue,
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            shared.connection(tcp, peer, probes_only).await;
        });
    }
    drop(listener);
    // Every connection holds a permit until it is gone: having them all back means every
    // connection finished. Connections bound their own shutdown; this bound is a backstop.
    let all = async {
        let _ = regular.acquire_many(permits(limits.max_connections)).await;
        let _ = reserved
            .acquire_many(permits(limits.reserved_connections()))
            .await;
    };
    let grace = limits.request_timeout + 2 * limits.header_read_timeout;
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!("connections still open at shutdown were dropped");
    }
    Ok(())
}

fn permits(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Errors that concern one connection only (the peer went away during accept).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

struct Shared {
    app: Router,
    limits: Limits,
    tls: Option<Arc<SslAcceptor>>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    async fn connection(&self, tcp: TcpStream, peer: SocketAddr, probes_only: bool) {
        let limits = self.limits;
        match &self.tls {
            None => self.serve(tcp, peer, probes_only).await,
            Some(acceptor) => {
                let mut stream = match Ssl::new(acceptor.context())
                    .and_then(|ssl| tokio_openssl::SslStream::new(ssl, tcp))
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS set-up failed");
                        return;
                    }
                };
                let handshake = tokio::time::timeout(
                    limits.header_read_timeout,
                    Pin::new(&mut stream).accept(),
                )
                .await;
                match handshake {
                    Ok(Ok(())) => self.serve(stream, peer, probes_only).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve<I>(&self, io: I, peer: SocketAddr, probes_only: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.limits;
        let activity = Arc::new(Activity::new());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // Ours runs from a request's first byte, not from the end of the last response, so
            // that an idle keep-alive connection is governed by the idle timeout instead.
            .header_read_timeout(None)
            .keep_alive(!probes_only);
        builder.http2().timer(TokioTimer::new());
        let service = ConnService {
            app: self.app.clone(),
            peer,
            activity: activity.clone(),
            request_timeout: limits.request_timeout,
            probes_only,
        };
        let io = TokioIo::new(Tracked {
            io,
            activity: activity.clone(),
        });
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = if probes_only {
            limits.header_read_timeout
        } else {
            limits.idle_timeout
        };
        // A handler ends by the request timeout; a response that then does not move for the idle
        // timeout is not being read.
        let stall = limits.request_timeout + limits.idle_timeout;
        let mut stop = self.stop.clone();
        // The watchdog and the stop signal are polled only when they were woken themselves, not
        // each time a request's bytes wake the connection.
        let watch = Gated::new(async {
            tokio::select! {
                verdict = activity.expired(idle, limits.header_read_timeout, stall) => Some(verdict),
                _ = stop.wait_for(|s| *s) => None,
            }
        });
        tokio::pin!(watch);
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            verdict = watch => match verdict {
                Some(Expiry::SlowHead | Expiry::Stalled) => return,
                // Idle, or the server is stopping: ask the connection to close.
                Some(Expiry::Idle) | None => conn.as_mut().graceful_shutdown(),
            },
        }
        if let Ok(Err(e)) = tokio::time::timeout(limits.header_read_timeout, conn).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// A future polled only when its own waker was woken (or on the first poll): inside a `select!`
/// beside the connection, it costs nothing on the wake-ups that are the connection's.
struct Gated<F> {
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
    fn new(inner: F) -> Self {
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
struct Activity(Mutex<ActivityState>);

struct ActivityState {
    /// Requests whose handler is running.
    in_flight: usize,
    /// When a byte last moved or a request began or ended.
    quiet_since: Instant,
    /// When the request head now awaited began: the connection's start, or the first byte read
    /// after the last request began.
    head_started: Option<Instant>,
}

enum Expiry {
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
    fn new() -> Self {
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

    fn begin(self: &Arc<Self>) -> InFlight {
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
    async fn expired(&self, idle: Duration, head: Duration, stall: Duration) -> Expiry {
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
struct InFlight {
    activity: Arc<Activity>,
    /// When the request began: its request timeout counts from here.
    started: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.quiet_since = Instant::now();
    }
}

/// The connection's bytes, counted into its [`Activity`].
struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
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

/// The router for one connection, with the request timeout and, in the reserved slice, only the
/// health probes.
#[derive(Clone)]
struct ConnService {
    app: Router,
    /// The client's address, for handlers that extract `ConnectInfo` (failed-login limits).
    peer: SocketAddr,
    activity: Arc<Activity>,
    request_timeout: Duration,
    probes_only: bool,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Held>;
    type Error = Infallible;
    type Future = Handled;

    fn call(&self, mut request: Request<Incoming>) -> Handled {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let in_flight = self.activity.begin();
        if self.probes_only && !PROBES.contains(&request.uri().path()) {
            drop(in_flight);
            return Handled::Answered(Some(overloaded()));
        }
        let mut app = self.app.clone();
        Handled::Routing {
            route: tower_service::Service::call(&mut app, request),
            in_flight: Some(in_flight),
            limit: self.request_timeout,
            deadline: None,
        }
    }
}

/// The response to one request: the router's, or `503 timeout` when the handler runs past the
/// request timeout. The timer is started only if the handler does not answer at its first poll
/// (most do not wait for anything), and counts from the request's start.
// The large variant is the one nearly every request takes: boxing it would cost an allocation
// per request, which is what this type is for avoiding.
#[allow(clippy::large_enum_variant)]
enum Handled {
    Answered(Option<Response>),
    Routing {
        route: RouteFuture<Infallible>,
        in_flight: Option<InFlight>,
        limit: Duration,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl Future for Handled {
    type Output = Result<Response<Held>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Handled::Answered(response) => {
                let response = response.take().unwrap_or_else(gone);
                Poll::Ready(Ok(response.map(Held::free)))
            }
            Handled::Routing {
                route,
                in_flight,
                limit,
                deadline,
            } => {
                if let Poll::Ready(handled) = Pin::new(route).poll(cx) {
                    let held = in_flight.take();
                    return Poll::Ready(match handled {
                        Ok(response) => Ok(response.map(|body| Held { body, _held: held })),
                        Err(never) => match never {},
                    });
                }
                let started = in_flight.as_ref().map_or_else(Instant::now, |f| f.started);
                let timer = deadline.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until((started + *limit).into()))
                });
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The handler is dropped with this future; the request is no longer in flight.
                *in_flight = None;
                Poll::Ready(Ok(timed_out(*limit).map(Held::free)))
            }
        }
    }
}

/// A response body that keeps its request in flight until it has been sent or dropped.
struct Held {
    body: Body,
    _held: Option<InFlight>,
}

impl Held {
    fn free(body: Body) -> Self {
        Held { body, _held: None }
    }
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A future polled again after it answered: hyper does not do that, but answer something.
fn gone() -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see the server log",
    )
}

fn overloaded() -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the server is at its connection limit; try again shortly",
    );
    let headers = response.headers_mut();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn timed_out(limit: Duration) -> Response {
    tracing::warn!(
        limit_secs = limit.as_secs_f64(),
        "request exceeded the request timeout"
    );
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        &format!(
            "the request did not complete within {} s; it may still take effect, so check \
             before repeating it",
            limit.as_secs()
        ),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}
