//! One request on a connection: the router under the request timeout, or, in the reserved
//! slice, only the health probes and a fast `503 overloaded` for anything else.

use super::activity::{Activity, InFlight};
use crate::api::error::error_response;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Paths still served from the reserved slice when every regular slot is taken.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];
/// What an over-limit client is told to wait before it tries again, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// The router for one connection, with the request timeout and, in the reserved slice, only the
/// health probes.
#[derive(Clone)]
pub(super) struct ConnService {
    pub(super) app: Router,
    /// The client's address, for handlers that extract `ConnectInfo` (failed-login limits).
    pub(super) peer: SocketAddr,
    pub(super) activity: Arc<Activity>,
    pub(super) request_timeout: Duration,
    pub(super) probes_only: bool,
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
pub(super) enum Handled {
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
pub(super) struct Held {
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
