//! `GET /v1/sse`: a link's frames as server-sent events. The stream holds the link's receiving half
//! while it runs and hands it back when the client goes (a proxy that cuts long responses, say), so
//! the client can ask again and miss nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{SplitStream, Stream};
use tokio_tungstenite::tungstenite::Message;

use super::{Link, Links, Pipe, refuse};

/// A link's receiving half, lent to one event stream.
pub(super) struct Attached {
    links: Arc<Links>,
    link: Arc<Link>,
    ws: Option<SplitStream<Pipe>>,
    done: bool,
}

/// `GET /v1/sse`.
pub(super) async fn stream(State(links): State<Arc<Links>>, headers: HeaderMap) -> Response {
    let Some(link) = links.find(&headers) else {
        return refuse(StatusCode::NOT_FOUND, "no such link (it closed); connect again");
    };
    let Some(ws) = link.stream.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return refuse(StatusCode::CONFLICT, "this link is streaming to another request");
    };
    link.heard();
    let body = Body::from_stream(Attached { links, link, ws: Some(ws), done: false });
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

impl Attached {
    fn end(&mut self, code: u16, reason: &str) -> Poll<Option<Result<Bytes, std::convert::Infallible>>> {
        self.done = true;
        self.links.remove(&self.link);
        Poll::Ready(Some(Ok(close_event(code, reason))))
    }
}

impl Stream for Attached {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let Some(ws) = this.ws.as_mut() else { return Poll::Ready(None) };
        loop {
            return match ws.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(Message::Text(text)))) => {
                    this.link.heard();
                    // Frames are compact JSON: never a raw line break, so one `data:` line each.
                    Poll::Ready(Some(Ok(Bytes::from(format!("data: {}\n\n", text.as_str())))))
                }
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) =
                        frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    this.end(code, &reason)
                }
                Poll::Ready(Some(Ok(_))) => continue, // pings (answered by the pipe), binary
                Poll::Ready(Some(Err(_)) | None) => this.end(1006, "the connection broke"),
            };
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // The client went before the link closed: the next stream takes over where this one stopped.
        if !self.done
            && let Some(ws) = self.ws.take()
        {
            *self.link.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(ws);
            self.link.heard();
        }
    }
}
