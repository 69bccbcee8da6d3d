//! Limits of the manager's HTTPS listener: at most [`ConnectionCaps::per_address`]
//! connections from one address and [`ConnectionCaps::total`] in all. A connection over
//! either cap still gets its TLS handshake and then one clear answer (`503` with
//! `Retry-After` and `Connection: close`, naming the cap) instead of the application.
//! The whole request header must arrive within [`HEADER_DEADLINE`] (hyper's header read
//! timeout, and the first request within the same time), so half-sent headers cannot
//! hold connections open.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The time a client has to send a whole request header (and its first request).
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// How many connections the listener holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    pub per_address: usize,
    pub total: usize,
}

impl Default for ConnectionCaps {
    fn default() -> Self {
        Self {
            per_address: 64,
            total: 1024,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerAddress,
    Total,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::PerAddress => {
                "Too many connections from your address: close some and retry in a few seconds.\n"
            }
            Self::Total => {
                "The management center has reached its connection limit: retry in a few seconds.\n"
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts open connections against [`ConnectionCaps`].
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    caps: ConnectionCaps,
    counts: Arc<Mutex<Counts>>,
}

/// An admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Place {
    address: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_address.get_mut(&self.address) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_address.remove(&self.address);
                }
            }
        }
    }
}

impl ConnectionLimiter {
    pub fn new(caps: ConnectionCaps) -> Self {
        Self {
            caps,
            counts: Arc::default(),
        }
    }

    /// A place for a connection from `address`, or why there is none.
    pub fn admit(&self, address: IpAddr) -> Result<Place, Refusal> {
        let Ok(mut counts) = self.counts.lock() else {
            return Err(Refusal::Total);
        };
        if counts.total >= self.caps.total {
            return Err(Refusal::Total);
        }
        let from_address = counts.per_address.entry(address).or_insert(0);
        if *from_address >= self.caps.per_address {
            return Err(Refusal::PerAddress);
        }
        *from_address += 1;
        counts.total += 1;
        Ok(Place {
            address,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for ConnectionLimiter {
    type Stream = Counted;
    type Service = Admission<S>;
    type Future = std::future::Ready<io::Result<(Counted, Admission<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = match stream.peer_addr() {
            Ok(peer) => self.admit(peer.ip()),
            Err(_) => Err(Refusal::Total),
        };
        std::future::ready(Ok(match admitted {
            Ok(place) => (
                Counted {
                    stream,
                    _place: Some(place),
                },
                Admission::Serve(service),
            ),
            Err(refusal) => {
                tracing::warn!(peer = ?stream.peer_addr().ok(), ?refusal, "connection refused: cap reached");
                (
                    Counted {
                        stream,
                        _place: None,
                    },
                    Admission::Refuse(refusal),
                )
            }
        }))
    }
}

/// A TCP stream that holds its connection's place while it lives.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    _place: Option<Place>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
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

/// The application, or the one answer of a refused connection.
#[derive(Debug, Clone)]
pub enum Admission<S> {
    Serve(S),
    Refuse(Refusal),
}

/// The answer of a connection over a cap.
pub fn refusal_response(refusal: Refusal) -> Response<Body> {
    let mut response = Response::new(Body::from(refusal.message()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::app::CONTENT_SECURITY_POLICY),
    );
    response
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, B> tower::Service<Request<B>> for Admission<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Serve(service) => service.poll_ready(cx),
            Self::Refuse(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self {
            Self::Serve(service) => Box::pin(service.call(request)),
            Self::Refuse(refusal) => {
                let response = refusal_response(*refusal);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_cap_and_others_still_get_in_until_the_total() {
        let limiter = ConnectionLimiter::new(ConnectionCaps {
            per_address: 2,
            total: 3,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limiter.admit(a).unwrap();
        let _second = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).unwrap_err(), Refusal::PerAddress);
        let _third = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).unwrap_err(), Refusal::Total);
        drop(first);
        limiter.admit(a).unwrap();
    }

    #[test]
    fn a_refused_connection_is_told_why_with_retry_after() {
        let response = refusal_response(Refusal::PerAddress);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
}
