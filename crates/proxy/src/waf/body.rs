//! Holding a body back for inspection: the frames read so far are kept, and then handed
//! on in order, followed by whatever of the body was not read ([`Replay`]). The bytes the
//! next hop sees are exactly the bytes that arrived, trailers included.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::forward::{Body, BoxError};

/// The start of a body, read until it ended or passed a limit.
pub(crate) struct Buffered {
    /// The frames read, in order.
    pub(crate) frames: VecDeque<Frame<Bytes>>,
    /// Data bytes read.
    pub(crate) bytes: u64,
    /// Whether the body ended within the limit (false: more may follow).
    pub(crate) complete: bool,
    /// The error that ended reading, if the body failed.
    pub(crate) error: Option<BoxError>,
}

impl Buffered {
    /// The data read, at most `limit` bytes of it, in order: what the firewall inspects.
    pub(crate) fn data(&self, limit: u64) -> impl Iterator<Item = &[u8]> {
        let mut left = usize::try_from(limit).unwrap_or(usize::MAX);
        self.frames.iter().filter_map(move |f| {
            let data = f.data_ref()?;
            let take = data.len().min(left);
            left -= take;
            (take > 0).then(|| &data[..take])
        })
    }
}

/// Reads frames of `body` until it ends, fails, or more than `limit` data bytes are held.
pub(crate) async fn buffer(body: &mut Body, limit: u64) -> Buffered {
    let mut out = Buffered {
        frames: VecDeque::new(),
        bytes: 0,
        complete: false,
        error: None,
    };
    while out.bytes <= limit {
        match body.frame().await {
            None => {
                out.complete = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    out.bytes += data.len() as u64;
                }
                let trailers = frame.is_trailers();
                out.frames.push_back(frame);
                if trailers {
                    out.complete = true;
                    break;
                }
            }
            Some(Err(e)) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// The buffered frames, then the rest of the body (or the error that ended reading).
pub(crate) struct Replay {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<BoxError>,
    rest: Option<Body>,
}

impl Replay {
    /// Replays `buffered`, then continues with `rest` unless the body already ended.
    pub(crate) fn new(buffered: Buffered, rest: Body) -> Replay {
        let done = buffered.complete || buffered.error.is_some();
        Replay {
            frames: buffered.frames,
            error: buffered.error,
            rest: (!done).then_some(rest),
        }
    }
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = self.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        match &self.rest {
            None => SizeHint::with_exact(held),
            Some(rest) => {
                let r = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(r.lower() + held);
                if let Some(upper) = r.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::boxed;
    use http_body_util::StreamBody;
    use proptest::prelude::*;

    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
        boxed(StreamBody::new(futures_stream(frames.collect())))
    }

    fn futures_stream(
        items: Vec<Result<Frame<Bytes>, BoxError>>,
    ) -> impl tokio_stream::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send {
        tokio_stream::iter(items)
    }

    async fn collect(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    proptest! {
        /// Whatever the chunking and the limit, the replayed body is the original body,
        /// and the inspected part is its first `limit` bytes.
        #[test]
        fn replay_returns_every_byte_and_inspects_a_prefix(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8),
            limit in 0u64..80,
        ) {
            let all: Vec<u8> = chunks.concat();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (inspected, complete, replayed) = rt.block_on(async {
                let mut body = chunked(chunks);
                let buffered = buffer(&mut body, limit).await;
                let inspected: Vec<u8> = buffered.data(limit).flatten().copied().collect();
                let complete = buffered.complete;
                let replayed = collect(boxed(Replay::new(buffered, body))).await;
                (inspected, complete, replayed)
            });
            prop_assert_eq!(&replayed, &all);
            let n = all.len().min(usize::try_from(limit).unwrap());
            prop_assert_eq!(&inspected[..], &all[..n]);
            if (all.len() as u64) <= limit {
                prop_assert!(complete);
            }
        }
    }
}
