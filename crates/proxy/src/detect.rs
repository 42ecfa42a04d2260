//! Protocol detection: what a client speaks, from its first bytes, with a bounded wait.
//!
//! The decision needs at most 24 bytes (the HTTP/2 connection preface):
//! - `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` → HTTP/2 (prior knowledge, as gRPC clients send);
//! - an HTTP/1 method token followed by a space (`GET `, `POST `, ...) → HTTP/1;
//! - `0x16 0x03` (a TLS handshake record) → TLS;
//! - anything else → opaque TCP.
//!
//! A client that sends nothing within the timeout (a server-speaks-first protocol such as
//! MySQL or SMTP) is treated as opaque TCP once the timeout passes, so such ports cost one
//! timeout per connection unless declared `opaque`, which skips detection altogether. The
//! bytes read are never lost: [`Rewind`] replays them before the rest of the stream.
//!
//! Declare server-speaks-first ports `opaque` on both sides, e.g. a MySQL upstream:
//!
//! ```yaml
//! outbound:
//!   - listen: "127.0.0.1:3306"
//!     service: db.shop
//!     protocol: opaque        # no detection: the server's greeting flows at once
//!     endpoints:
//!       - {address: "10.0.0.7:15006", identity: "spiffe://cluster.local/ns/shop/sa/db"}
//! inbound:                    # in the database's own sidecar
//!   - {listen: "0.0.0.0:15006", port: 3306, forwardTo: "127.0.0.1:3306", protocol: opaque}
//! ```
//!
//! Between sidecars nothing is detected: the ALPN protocol of the mTLS handshake says
//! what follows (see [`crate::forward::alpn`]). Detection runs where a client of
//! unknown protocol connects: on outbound listeners, and on inbound listeners for
//! plaintext peers (PERMISSIVE mode).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// How long detection waits for a client's first bytes by default. Long enough for a
/// client on a busy host to send its first segment, short enough that a misdeclared
/// server-speaks-first port still connects (after this delay).
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/1 request methods recognised, each with the space that must follow it.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"CONNECT ",
    b"OPTIONS ",
    b"TRACE ",
    b"PATCH ",
];

/// A TLS record of type handshake (0x16), major version 3.
const TLS_RECORD: [u8; 2] = [0x16, 0x03];

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// A TLS ClientHello.
    Tls,
    /// Anything else.
    Tcp,
}

/// The verdict on a prefix of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// The prefix decides.
    Known(Protocol),
    /// The prefix is consistent with more than one answer; read more.
    NeedMore,
}

/// Classifies the first bytes of a stream; never needs more than [`H2_PREFACE`]`.len()`.
pub fn classify(prefix: &[u8]) -> Classified {
    if prefix.is_empty() {
        return Classified::NeedMore;
    }
    if prefix[0] == TLS_RECORD[0] {
        return match prefix.get(1) {
            None => Classified::NeedMore,
            Some(&b) if b == TLS_RECORD[1] => Classified::Known(Protocol::Tls),
            Some(_) => Classified::Known(Protocol::Tcp),
        };
    }
    let mut undecided = false;
    for candidate in std::iter::once(H2_PREFACE).chain(METHODS) {
        let n = prefix.len().min(candidate.len());
        if prefix[..n] != candidate[..n] {
            continue;
        }
        if n == candidate.len() {
            let protocol = if candidate == H2_PREFACE {
                Protocol::Http2
            } else {
                Protocol::Http1
            };
            return Classified::Known(protocol);
        }
        undecided = true;
    }
    if undecided {
        Classified::NeedMore
    } else {
        Classified::Known(Protocol::Tcp)
    }
}

/// Reads from `io` until [`classify`] decides, the peer stops sending (EOF), or `timeout`
/// passes; the last two mean [`Protocol::Tcp`]. Returns the verdict and the bytes read,
/// which the caller replays with [`Rewind`].
pub async fn detect<I>(io: &mut I, timeout: Duration) -> io::Result<(Protocol, Bytes)>
where
    I: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Classified::Known(p) = classify(&buf) {
            return Ok((p, buf.freeze()));
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok((Protocol::Tcp, buf.freeze())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// A stream that first yields bytes already read from it, then reads on.
#[derive(Debug)]
pub struct Rewind<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    /// `inner`, preceded by `prefix`.
    pub fn new(prefix: Bytes, inner: T) -> Self {
        Rewind { prefix, inner }
    }

    /// The underlying stream (the prefix, if unread, is lost).
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        assert_eq!(classify(H2_PREFACE), Classified::Known(Protocol::Http2));
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\n"),
            Classified::Known(Protocol::Http1)
        );
        assert_eq!(classify(b"PRI * HTTP/2"), Classified::NeedMore);
        assert_eq!(classify(b"PU"), Classified::NeedMore);
        assert_eq!(classify(b"PRX"), Classified::Known(Protocol::Tcp));
        assert_eq!(
            classify(&[0x16, 0x03, 0x01]),
            Classified::Known(Protocol::Tls)
        );
        assert_eq!(classify(&[0x16, 0x00]), Classified::Known(Protocol::Tcp));
        assert_eq!(classify(b"\x00\x01"), Classified::Known(Protocol::Tcp));
    }

    #[tokio::test]
    async fn rewind_replays_prefix_then_stream() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"GET / HTTP/1.1\r\n")
            .await
            .unwrap();
        drop(a);
        let mut b = b;
        let (p, prefix) = detect(&mut b, Duration::from_secs(5)).await.unwrap();
        assert_eq!(p, Protocol::Http1);
        let mut all = Vec::new();
        Rewind::new(prefix, b).read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_tcp_after_timeout() {
        let (_a, mut b) = tokio::io::duplex(64);
        let (p, prefix) = detect(&mut b, Duration::from_millis(100)).await.unwrap();
        assert_eq!(p, Protocol::Tcp);
        assert!(prefix.is_empty());
    }
}
