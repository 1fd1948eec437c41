//! cm-proto messages over QUIC streams: length-prefixed CBOR frames.

use cm_proto::frame::encode_frame;
use cm_proto::{FrameDecoder, FrameError, Message};
use thiserror::Error;

/// Application error codes a connection is closed with (QUIC CONNECTION_CLOSE).
pub use cm_proto::session::code;

/// Why a stream could not deliver a message.
#[derive(Debug, Error)]
pub enum StreamError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("the stream ended in the middle of a frame")]
    Truncated,
}

/// Reads messages from a QUIC receive stream.
pub struct FramedRecv {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    received: u64,
}

impl FramedRecv {
    pub fn new(recv: quinn::RecvStream, limit: usize) -> Self {
        Self { recv, decoder: FrameDecoder::new(limit), buf: vec![0; 16 * 1024], received: 0 }
    }

    /// Bytes read from the stream so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next message; `None` when the peer finished the stream cleanly.
    pub async fn next(&mut self) -> Result<Option<Message>, StreamError> {
        loop {
            if let Some(msg) = self.decoder.next_message()? {
                return Ok(Some(msg));
            }
            match self.recv.read(&mut self.buf).await? {
                Some(n) => {
                    self.received += n as u64;
                    self.decoder.push(&self.buf[..n]);
                }
                None if self.decoder.buffered() == 0 => return Ok(None),
                None => return Err(StreamError::Truncated),
            }
        }
    }
}

/// Writes one message as a frame.
pub async fn send(send: &mut quinn::SendStream, msg: &Message) -> Result<(), StreamError> {
    let frame = encode_frame(msg)?;
    send.write_all(&frame).await?;
    Ok(())
}
