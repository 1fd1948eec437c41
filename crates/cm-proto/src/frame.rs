//! Length-prefixed framing: a 4-byte big-endian length, then that many bytes of
//! one CBOR message.
//!
//! [`FrameDecoder`] is fed whatever bytes arrive and hands back whole messages.
//! It refuses a length above its limit before buffering the body, so a peer
//! cannot make it allocate more than the limit.

use thiserror::Error;

use crate::wire::{decode, encode, Message, WireError};

/// Largest frame body accepted by default: a snapshot of a big host is a few
/// tens of kilobytes, so 1 MiB leaves room without inviting abuse.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

const PREFIX: usize = 4;

/// Why a frame could not be produced or read.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("empty frame")]
    Empty,
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Encodes `msg` as one frame: length prefix plus CBOR body.
pub fn encode_frame(msg: &Message) -> Result<Vec<u8>, FrameError> {
    let body = encode(msg)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len: body.len(), limit: MAX_FRAME_BYTES });
    }
    let mut out = Vec::with_capacity(PREFIX + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Incremental frame reader for a byte stream.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    limit: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that refuses frame bodies longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), limit }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    ///
    /// After an error the stream is out of sync; the caller closes it.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let Some(prefix) = self.buf.get(..PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("prefix is 4 bytes")) as usize;
        if len > self.limit {
            return Err(FrameError::TooLarge { len, limit: self.limit });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if self.buf.len() < PREFIX + len {
            return Ok(None);
        }
        let msg = decode(&self.buf[PREFIX..PREFIX + len]);
        self.buf.drain(..PREFIX + len);
        Ok(Some(msg?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reason: &str) -> Message {
        Message::Refused { reason: reason.into() }
    }

    #[test]
    fn frames_split_at_every_byte_still_decode() {
        let mut stream = encode_frame(&refused("a")).unwrap();
        stream.extend(encode_frame(&refused("b")).unwrap());
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for byte in &stream {
            dec.push(std::slice::from_ref(byte));
            while let Some(msg) = dec.next_message().unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(got, vec![refused("a"), refused("b")]);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut dec = FrameDecoder::new(16);
        dec.push(&17u32.to_be_bytes());
        assert!(matches!(dec.next_message(), Err(FrameError::TooLarge { len: 17, limit: 16 })));
        let mut dec = FrameDecoder::default();
        dec.push(&u32::MAX.to_be_bytes());
        assert!(matches!(dec.next_message(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn malformed_body_and_empty_frame_are_errors() {
        let mut dec = FrameDecoder::default();
        dec.push(&[0, 0, 0, 3, 0xff, 0xfe, 0xfd]);
        assert!(matches!(dec.next_message(), Err(FrameError::Wire(_))));
        let mut dec = FrameDecoder::default();
        dec.push(&[0, 0, 0, 0]);
        assert!(matches!(dec.next_message(), Err(FrameError::Empty)));
    }
}
