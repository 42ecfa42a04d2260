//! Body wrappers that count bytes as they stream past (nothing is buffered) and report
//! once a response has been fully sent or abandoned.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::{Body, BoxError};

/// Counts the data bytes of a request body into a shared counter.
pub(crate) struct Counting {
    inner: Body,
    counter: Arc<AtomicU64>,
}

impl Counting {
    /// Wraps `inner`; read the count from `counter` at any time.
    pub(crate) fn new(inner: Body, counter: Arc<AtomicU64>) -> Self {
        Counting { inner, counter }
    }
}

impl HttpBody for Counting {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What to do once a response body has ended (or was dropped unfinished), given the data
/// bytes sent.
pub(crate) type OnEnd = Box<dyn FnOnce(u64) + Send>;

/// Counts the data bytes of a response body and calls its [`OnEnd`] exactly once: at the
/// end of the stream, or when hyper drops the body (client gone, connection reset).
pub(crate) struct Tracked {
    inner: Body,
    sent: u64,
    on_end: Option<OnEnd>,
}

impl Tracked {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Body, on_end: OnEnd) -> Self {
        Tracked {
            inner,
            sent: 0,
            on_end: Some(on_end),
        }
    }

    fn end(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.sent);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.end();
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
