//! Reading a request's body without letting strangers hold the server's memory (issue 22, finding 1).
//!
//! A body is read only after what can be checked without it has been (the bearer, the link), and
//! then under three bounds: the route's own cap (a few frames, not a megabyte), a deadline for the
//! whole body (a trickle of a byte a second is not a request in progress), and a budget of bytes
//! for all the bodies being read at once, in all and per address, reserved before the first byte is
//! read. A client that declares more than the route takes is refused before reading; one over the
//! budget is told to try again. Every refusal closes the connection, so a half-sent body is never
//! drained at the client's pace.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::api_error::ApiError;
use crate::engine::rate::address_bucket;

/// Bytes of request bodies held at once, in all.
pub const BUDGET_IN_ALL: usize = 8 << 20;
/// Bytes of request bodies held at once for one address (an IPv6 /64 counts as one).
pub const BUDGET_PER_ADDRESS: usize = 512 << 10;

/// The bytes reserved for the bodies being read now.
#[derive(Debug)]
pub struct Budget {
    in_all: usize,
    per_address: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    in_all: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It is (or says it is) over the route's cap: 413.
    TooLarge,
    /// It did not arrive whole in time: 408.
    TooSlow,
    /// Too many bodies are being read now, from this address or in all: 503, try again.
    Busy,
    /// It broke off: 400.
    Broken,
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::TooLarge => ApiError::TooLarge("the request body is over this route's limit".into()),
            Refused::TooSlow => ApiError::Timeout("the request body did not arrive in time"),
            Refused::Busy => {
                ApiError::Unavailable { why: "too many requests at once; try again", close: true }
            }
            Refused::Broken => ApiError::BadRequest("the request body broke off".into()),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut res = ApiError::from(self).into_response();
        // What is left of the body is not read: the connection ends with the answer.
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    }
}

/// Bytes reserved for one body; given back when dropped.
struct Reservation<'a> {
    budget: &'a Budget,
    addr: IpAddr,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut held = self.budget.lock();
        held.in_all = held.in_all.saturating_sub(self.bytes);
        if let Some(n) = held.by_address.get_mut(&self.addr) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                held.by_address.remove(&self.addr);
            }
        }
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::new(BUDGET_IN_ALL, BUDGET_PER_ADDRESS)
    }
}

impl Budget {
    /// A budget of `in_all` bytes, at most `per_address` of them for one address.
    pub fn new(in_all: usize, per_address: usize) -> Budget {
        Budget { in_all, per_address: per_address.min(in_all), held: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes held now for bodies being read (for tests and metrics).
    pub fn held(&self) -> usize {
        self.lock().in_all
    }

    fn reserve(&self, addr: IpAddr, bytes: usize) -> Option<Reservation<'_>> {
        let addr = address_bucket(addr);
        let mut held = self.lock();
        let here = held.by_address.get(&addr).copied().unwrap_or(0);
        if held.in_all + bytes > self.in_all || here + bytes > self.per_address {
            return None;
        }
        held.in_all += bytes;
        *held.by_address.entry(addr).or_default() += bytes;
        Some(Reservation { budget: self, addr, bytes })
    }

    /// Reads `body` whole: at most `cap` bytes, within `deadline`, holding bytes of this budget for
    /// `addr` meanwhile (the declared length when there is one, else the cap).
    pub async fn read(
        &self,
        addr: IpAddr,
        headers: &HeaderMap,
        body: Body,
        cap: usize,
        deadline: Duration,
    ) -> Result<Bytes, Refused> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()));
        let expected = match declared {
            Some(None) => return Err(Refused::Broken),
            Some(Some(n)) if n > cap => return Err(Refused::TooLarge),
            Some(Some(0)) => return Ok(Bytes::new()),
            Some(Some(n)) => n,
            None => cap,
        };
        let _reserved = self.reserve(addr, expected).ok_or(Refused::Busy)?;
        let collect = async {
            let mut body = http_body_util::Limited::new(body, expected);
            let mut out = Vec::with_capacity(expected.min(16 << 10));
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        Refused::TooLarge
                    } else {
                        Refused::Broken
                    }
                })?;
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Ok(Bytes::from(out))
        };
        tokio::time::timeout(deadline, collect).await.map_err(|_| Refused::TooSlow)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(len: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(len) = len {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_str(len).unwrap());
        }
        h
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test]
    async fn a_body_is_read_whole_within_its_cap() {
        let budget = Budget::new(1000, 100);
        let read = budget.read(A, &headers(Some("5")), Body::from("hello"), 10, Duration::from_secs(1)).await;
        assert_eq!(read.unwrap(), Bytes::from("hello"));
        assert_eq!(budget.held(), 0, "the reservation is given back");
        let over = budget
            .read(A, &headers(Some("11")), Body::from("x".repeat(11)), 10, Duration::from_secs(1))
            .await;
        assert_eq!(over, Err(Refused::TooLarge), "declared over the cap: refused unread");
        let lying =
            budget.read(A, &headers(None), Body::from("x".repeat(11)), 10, Duration::from_secs(1)).await;
        assert_eq!(lying, Err(Refused::TooLarge), "no length, more than the cap");
    }

    /// Bodies that trickle in hold their bytes only until the deadline, and while they are held an
    /// address cannot take more than its share, nor all addresses more than the whole.
    #[tokio::test(start_paused = true)]
    async fn half_sent_bodies_hold_a_bounded_share_for_a_bounded_time() {
        let budget = std::sync::Arc::new(Budget::new(150, 100));
        let (_tx, stalled) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let stalled = Body::from_stream(tokio_stream_of(stalled));
        let b = budget.clone();
        let first = tokio::spawn(async move {
            b.read(A, &headers(Some("80")), stalled, 100, Duration::from_secs(10)).await
        });
        tokio::task::yield_now().await;
        assert_eq!(budget.held(), 80);
        let second = budget
            .read(A, &headers(Some("30")), Body::from("x".repeat(30)), 100, Duration::from_secs(1))
            .await;
        assert_eq!(second, Err(Refused::Busy), "the address's share is held");
        let other = budget
            .read(B, &headers(Some("80")), Body::from("x".repeat(80)), 100, Duration::from_secs(1))
            .await;
        assert_eq!(other, Err(Refused::Busy), "the whole budget is held");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(first.await.unwrap(), Err(Refused::TooSlow));
        assert_eq!(budget.held(), 0);
    }

    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
