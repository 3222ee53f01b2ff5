//! A response body fed through a channel: what a streamed invocation
//! writes reaches the client as it comes (hyper sends it chunked), and a
//! client that goes away closes the channel, which the writer sees.

use axum::body::Bytes;
use hyper::body::Frame;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Pieces a writer may queue before it waits for the client.
pub const QUEUED: usize = 8;

/// The body; the sender's end is the writer's.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

/// A body and the sender that writes it; the body ends when every sender
/// is dropped.
pub fn channel() -> (mpsc::Sender<Bytes>, axum::body::Body) {
    let (tx, rx) = mpsc::channel(QUEUED);
    (tx, axum::body::Body::new(ChannelBody(rx)))
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|b| Ok(Frame::data(b))))
    }
}
