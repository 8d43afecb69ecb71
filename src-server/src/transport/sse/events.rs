//! `GET /v1/sse`: a link's frames as server-sent events. The stream holds the link's queue while it
//! runs and hands it back when the client goes (a proxy that cuts long responses, say), so the client
//! can ask again and miss nothing. A comment goes out every heartbeat, so that a client that is gone
//! shows as a failed write, and a proxy does not cut the response for being idle.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use tokio::sync::mpsc;

use super::{Item, Link, Links};
use crate::transport::api_error::ApiError;

/// A link's queue, lent to one event stream.
pub(super) struct Attached {
    links: Arc<Links>,
    link: Arc<Link>,
    frames: Option<mpsc::Receiver<Item>>,
    beat: tokio::time::Interval,
    done: bool,
}

/// `GET /v1/sse`.
pub(super) async fn stream(State(links): State<Arc<Links>>, headers: HeaderMap) -> Response {
    let Some(link) = links.find(&headers) else {
        return ApiError::NotFound("no such link (it closed); connect again".into()).into_response();
    };
    let Some(frames) = link.frames.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return ApiError::Conflict("this link is streaming to another request").into_response();
    };
    link.heard();
    let every = links.host.timing.heartbeat.max(std::time::Duration::from_secs(1));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let body = Body::from_stream(Attached { links, link, frames: Some(frames), beat, done: false });
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    // Proxies that buffer responses (nginx) would hold the frames back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// The event that ends a stream: the close code and reason, as a WebSocket's close frame says them.
fn close_event(code: u16, reason: &str) -> Bytes {
    let data = serde_json::json!({ "code": code, "reason": reason });
    Bytes::from(format!("event: close\ndata: {data}\n\n"))
}

type Next = Poll<Option<Result<Bytes, std::convert::Infallible>>>;

impl Attached {
    fn end(&mut self, code: u16, reason: &str) -> Next {
        self.done = true;
        self.links.remove(&self.link);
        Poll::Ready(Some(Ok(close_event(code, reason))))
    }
}

impl Stream for Attached {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Next {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let Some(frames) = this.frames.as_mut() else { return Poll::Ready(None) };
        match frames.poll_recv(cx) {
            // Frames are compact JSON: never a raw line break, so one `data:` line each.
            Poll::Ready(Some(Item::Frame(text))) => {
                return Poll::Ready(Some(Ok(Bytes::from(format!("data: {}\n\n", text.as_str())))));
            }
            Poll::Ready(Some(Item::Close(code, reason))) => return this.end(code, &reason),
            // The link was ended (its client went quiet): as a broken connection.
            Poll::Ready(None) => return this.end(1006, "the connection was lost"),
            Poll::Pending => {}
        }
        match this.beat.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b": beat\n\n")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // The client went before the link closed: the next stream takes over where this one stopped.
        if !self.done
            && let Some(frames) = self.frames.take()
        {
            *self.link.frames.lock().unwrap_or_else(|p| p.into_inner()) = Some(frames);
            self.link.heard();
        }
    }
}
