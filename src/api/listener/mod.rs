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
//!
//! This file holds the accept loop and a connection's life; `activity` its clocks (idle, head
//! and stall timeouts) and `service` each request (the request timeout, the probes-only slice).

mod activity;
mod service;

use crate::config::Limits;
use activity::{Activity, Expiry, Gated, Tracked};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use openssl::ssl::{Ssl, SslAcceptor};
use service::ConnService;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

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
