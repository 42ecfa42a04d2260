//! Keeping a request replayable for retries. The head is cloned up front; the body is
//! streamed to the first try as it arrives (never held back: a streaming client may wait
//! for the response before it finishes) while a copy is kept up to the buffer limit. A
//! retry can replay the request only if the first try read the whole body and it fit.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body_util::StreamBody;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::forward::{Body, BoxError, boxed};
use crate::resilience::policy::Retries;

/// The parts of a request head a retry needs.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

/// The copy of the body a [`Tee`] keeps.
#[derive(Default)]
struct Copy {
    frames: Vec<Frame<Bytes>>,
    size: usize,
    limit: usize,
    /// Too large, or the body failed: no replay.
    spoiled: bool,
    complete: bool,
}

/// What a retry needs to send the request again.
pub(super) struct Replay {
    /// `None`: the request must not be retried once sent.
    head: Option<Head>,
    /// A gRPC call kept only for its listed `grpc-status` conditions: its method (POST)
    /// does not allow other retries, but a listed status says the server refused it.
    grpc_only: bool,
    /// `None`: the body was empty.
    copy: Option<Arc<Mutex<Copy>>>,
}

/// Whether a method may be sent twice without changing the outcome (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Replay {
    /// Prepares `req` for possible retries; returns the request to send first.
    pub(super) fn new(req: Request<Body>, policy: &Retries) -> (Replay, Request<Body>) {
        let never = Replay {
            head: None,
            grpc_only: false,
            copy: None,
        };
        let by_method = policy.non_idempotent || idempotent(req.method());
        let grpc_only = !by_method
            && !policy.on.grpc_statuses.is_empty()
            && crate::respond::is_grpc(req.headers());
        let allowed = policy.attempts > 0 && (by_method || grpc_only);
        let too_big = req.body().size_hint().lower() > policy.buffer_bytes as u64;
        if !allowed || too_big {
            return (never, req);
        }
        let (parts, body) = req.into_parts();
        let head = Some(Head {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        });
        if body.is_end_stream() {
            return (
                Replay {
                    head,
                    grpc_only,
                    copy: None,
                },
                Request::from_parts(parts, body),
            );
        }
        let copy = Arc::new(Mutex::new(Copy {
            limit: policy.buffer_bytes,
            ..Copy::default()
        }));
        let tee = boxed(Tee {
            inner: body,
            copy: Arc::clone(&copy),
        });
        let replay = Replay {
            head,
            grpc_only,
            copy: Some(copy),
        };
        (replay, Request::from_parts(parts, tee))
    }

    /// Whether only a listed `grpc-status` may retry this request.
    pub(super) fn grpc_only(&self) -> bool {
        self.grpc_only
    }

    /// Whether [`Replay::again`] can rebuild the request now.
    pub(super) fn ready(&self) -> bool {
        self.head.is_some()
            && self.copy.as_ref().is_none_or(|c| {
                let c = c.lock().unwrap_or_else(PoisonError::into_inner);
                c.complete && !c.spoiled
            })
    }

    /// The request once more, when [`Replay::ready`].
    pub(super) fn again(&self) -> Option<Request<Body>> {
        if !self.ready() {
            return None;
        }
        let head = self.head.as_ref()?;
        let body = match &self.copy {
            None => crate::forward::full(Bytes::new()),
            Some(copy) => {
                let c = copy.lock().unwrap_or_else(PoisonError::into_inner);
                let frames: Vec<Result<Frame<Bytes>, BoxError>> =
                    c.frames.iter().map(|f| Ok(clone_frame(f))).collect();
                boxed(StreamBody::new(tokio_stream::iter(frames)))
            }
        };
        let mut req = Request::new(body);
        *req.method_mut() = head.method.clone();
        *req.uri_mut() = head.uri.clone();
        *req.version_mut() = head.version;
        *req.headers_mut() = head.headers.clone();
        Some(req)
    }
}

fn clone_frame(f: &Frame<Bytes>) -> Frame<Bytes> {
    match (f.data_ref(), f.trailers_ref()) {
        (Some(data), _) => Frame::data(data.clone()),
        (None, Some(trailers)) => Frame::trailers(trailers.clone()),
        (None, None) => Frame::data(Bytes::new()),
    }
}

/// Passes a body through, keeping a copy of its frames up to the limit.
struct Tee {
    inner: Body,
    copy: Arc<Mutex<Copy>>,
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_pending() {
            return polled;
        }
        let mut c = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        match &polled {
            Poll::Ready(Some(Ok(frame))) if !c.spoiled => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if c.size + len > c.limit {
                    // Too large to replay: stop copying, keep streaming.
                    c.spoiled = true;
                    c.frames = Vec::new();
                } else {
                    c.size += len;
                    c.frames.push(clone_frame(frame));
                }
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(_))) => c.spoiled = true,
            Poll::Ready(None) | Poll::Pending => c.complete = true,
        }
        drop(c);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::forward::full;

    fn request(method: Method, body: &'static str) -> Request<Body> {
        let mut req = Request::new(full(body));
        *req.method_mut() = method;
        req
    }

    #[tokio::test]
    async fn a_read_body_within_the_limit_is_replayed() {
        let (replay, first) = Replay::new(request(Method::PUT, "hello"), &Retries::default());
        assert!(!replay.ready(), "not read yet");
        let sent = first.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        let again = replay.again().expect("replayable");
        assert_eq!(again.method(), Method::PUT);
        assert_eq!(
            again.into_body().collect().await.unwrap().to_bytes(),
            "hello"
        );
    }

    #[tokio::test]
    async fn large_bodies_and_post_are_not_replayed() {
        let small = Retries {
            buffer_bytes: 3,
            ..Retries::default()
        };
        let (replay, first) = Replay::new(request(Method::PUT, "hello"), &small);
        assert!(!replay.ready());
        let _ = first.into_body().collect().await;
        assert!(!replay.ready());
        let (replay, _) = Replay::new(request(Method::POST, ""), &Retries::default());
        assert!(!replay.ready(), "POST needs nonIdempotent");
        let any = Retries {
            non_idempotent: true,
            ..Retries::default()
        };
        let (replay, _) = Replay::new(request(Method::POST, ""), &any);
        assert!(replay.ready(), "an empty body needs no reading");
    }
}
