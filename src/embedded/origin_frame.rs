//! ORIGIN injection for the HTTP/2 shell: the h2 crate cannot send an ORIGIN frame (RFC 8336),
//! so the TLS stream it writes to is wrapped, and the frame is slipped in right after the
//! server's first frame. The h2 crate stays in charge of everything else.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use misdirect_core::wire;

/// The server's side of an HTTP/2 connection as the h2 crate writes it, with extra bytes (an
/// ORIGIN frame) slipped in right after the first frame, the server's SETTINGS: RFC 8336
/// Appendix B asks for ORIGIN as early as possible, and the h2 crate cannot send it.
pub(super) struct InjectAfterFirstFrame<S> {
    inner: S,
    first: wire::h2::FirstFrame,
    /// The bytes to slip in and how many went out; `None` once done.
    pending: Option<(Vec<u8>, usize)>,
    first_done: bool,
}

impl<S> InjectAfterFirstFrame<S> {
    pub(super) fn new(inner: S, bytes: Vec<u8>) -> Self {
        Self {
            inner,
            first: wire::h2::FirstFrame::default(),
            pending: Some((bytes, 0)),
            first_done: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> InjectAfterFirstFrame<S> {
    /// Writes out the injected bytes once the first frame is through.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.first_done {
            return Poll::Ready(Ok(()));
        }
        while let Some((bytes, offset)) = &mut self.pending {
            if *offset == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*offset..]) {
                Poll::Ready(Ok(written)) => *offset += written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InjectAfterFirstFrame<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InjectAfterFirstFrame<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(error)) = this.poll_pending(cx) {
            return Poll::Ready(Err(error));
        }
        if this.pending.is_some() && this.first_done {
            return Poll::Pending;
        }
        if this.first_done {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let within = this.first.within_first_frame(buf);
        match Pin::new(&mut this.inner).poll_write(cx, &buf[..within]) {
            Poll::Ready(Ok(written)) => {
                if this.first.passed(&buf[..written]) {
                    this.first_done = true;
                }
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
