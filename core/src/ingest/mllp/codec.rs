//! The MLLP framing: `0x0B` + message + `0x1C 0x0D`.
//!
//! Decoding rules:
//! - A frame may arrive in pieces over many reads, and one read may hold several frames.
//! - Bytes outside a frame (whitespace between frames, garbage) are skipped, with a debug log
//!   (a lone CR/LF is skipped silently).
//! - The frame ends at the first `0x1C` (which HL7 text never contains); the `0x0D` after it is
//!   consumed when present. Accepting a bare `0x1C` costs nothing and avoids hanging on senders
//!   that omit the CR.
//! - A `0x0B` inside a frame means the sender gave up the frame and started a new one: the
//!   partial frame is dropped (warning) and the new one starts.
//! - A frame larger than `max_frame_bytes` is an error as soon as the buffered part of the frame
//!   passes the limit (nothing is buffered beyond the limit plus one read).

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Start of block.
pub const SB: u8 = 0x0B;
/// End of block.
pub const EB: u8 = 0x1C;
/// Carriage return after the end of block.
pub const CR: u8 = 0x0D;

/// Wraps a message in an MLLP frame (one buffer, for one write).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(SB);
    out.extend_from_slice(message);
    out.extend_from_slice(&[EB, CR]);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    #[error("MLLP frame larger than {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Decoder of MLLP frames; yields the message bytes (without the framing).
#[derive(Debug)]
pub struct MllpCodec {
    max_frame: usize,
    /// A start byte has been consumed; `buf` holds the frame so far.
    in_frame: bool,
    /// How much of the current frame has already been searched for the end byte.
    scanned: usize,
}

impl MllpCodec {
    pub fn new(max_frame_bytes: usize) -> Self {
        MllpCodec {
            max_frame: max_frame_bytes,
            in_frame: false,
            scanned: 0,
        }
    }

    /// True while a frame has started but not ended.
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Skips bytes outside a frame up to the next start byte; true when a frame started.
    fn find_start(&mut self, buf: &mut BytesMut) -> bool {
        match buf.iter().position(|&b| b == SB) {
            Some(i) => {
                skipped(&buf[..i]);
                buf.advance(i + 1);
                self.in_frame = true;
                self.scanned = 0;
                true
            }
            None => {
                skipped(buf);
                buf.clear();
                false
            }
        }
    }
}

fn skipped(bytes: &[u8]) {
    if bytes.is_empty() || (bytes.len() <= 2 && bytes.iter().all(|b| matches!(b, b'\r' | b'\n'))) {
        return;
    }
    tracing::debug!(bytes = bytes.len(), "MLLP: skipped bytes outside a frame");
}

impl Decoder for MllpCodec {
    type Item = Vec<u8>;
    type Error = MllpError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, MllpError> {
        loop {
            if !self.in_frame && !self.find_start(buf) {
                return Ok(None);
            }
            let rest = &buf[self.scanned..];
            match rest.iter().position(|&b| b == EB || b == SB) {
                Some(i) if rest[i] == SB => {
                    let end = self.scanned + i;
                    tracing::warn!(
                        bytes = end,
                        "MLLP: frame restarted before its end; partial frame dropped"
                    );
                    buf.advance(end + 1);
                    self.scanned = 0;
                    continue;
                }
                Some(i) => {
                    let end = self.scanned + i;
                    if end > self.max_frame {
                        return Err(self.too_large());
                    }
                    let message = buf.split_to(end).to_vec();
                    buf.advance(1);
                    if buf.first() == Some(&CR) {
                        buf.advance(1);
                    }
                    self.in_frame = false;
                    self.scanned = 0;
                    return Ok(Some(message));
                }
                None => {
                    self.scanned = buf.len();
                    if buf.len() > self.max_frame {
                        return Err(self.too_large());
                    }
                    // Room for the rest of a typical message, within the limit.
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, MllpError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if self.in_frame && !buf.is_empty() {
            tracing::debug!(
                bytes = buf.len(),
                "MLLP: connection closed in the middle of a frame"
            );
        }
        buf.clear();
        self.in_frame = false;
        self.scanned = 0;
        Ok(None)
    }
}

impl MllpCodec {
    fn too_large(&mut self) -> MllpError {
        self.in_frame = false;
        self.scanned = 0;
        MllpError::FrameTooLarge {
            limit: self.max_frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut MllpCodec, buf: &mut BytesMut) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = codec.decode(buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn partial_frames_byte_by_byte() {
        let mut codec = MllpCodec::new(1024);
        let mut wire = frame(b"MSH|^~\\&|A\rPID|1");
        wire.extend(frame(b"MSH|^~\\&|B"));
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for (k, b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let frames = decode_all(&mut codec, &mut buf);
            if !frames.is_empty() {
                // A frame is complete exactly when its end byte arrives.
                assert_eq!(wire[k], EB, "frame emitted at byte {k}");
            }
            got.extend(frames);
        }
        assert_eq!(
            got,
            vec![b"MSH|^~\\&|A\rPID|1".to_vec(), b"MSH|^~\\&|B".to_vec()]
        );
        assert!(buf.is_empty());
        assert!(!codec.in_frame());
    }

    #[test]
    fn three_frames_in_one_buffer() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::new();
        for m in ["MSH|1", "MSH|2", "MSH|3"] {
            buf.extend_from_slice(&frame(m.as_bytes()));
        }
        let got = decode_all(&mut codec, &mut buf);
        assert_eq!(
            got,
            vec![b"MSH|1".to_vec(), b"MSH|2".to_vec(), b"MSH|3".to_vec()]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_outside_frames_is_skipped() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b"garbage \r\n\x00\xff"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty(), "garbage is not kept");
        buf.extend_from_slice(b"more junk");
        buf.extend_from_slice(&frame(b"MSH|1"));
        buf.extend_from_slice(b"\r\n  ");
        buf.extend_from_slice(&frame(b"MSH|2"));
        buf.extend_from_slice(b"tail");
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![b"MSH|1".to_vec(), b"MSH|2".to_vec()]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn bare_end_byte_and_restart() {
        let mut codec = MllpCodec::new(1024);
        // No CR after 0x1C, then a frame abandoned by a new start byte.
        let mut buf = BytesMut::from(&b"\x0bMSH|1\x1c\x0bMSH|lost\x0bMSH|2\x1c\r"[..]);
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![b"MSH|1".to_vec(), b"MSH|2".to_vec()]
        );
    }

    #[test]
    fn oversized_frame_fails_before_its_end() {
        let mut codec = MllpCodec::new(10);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"\x0bMSH|123456");
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            None,
            "10 bytes: at the limit"
        );
        buf.extend_from_slice(b"7");
        assert!(matches!(
            codec.decode(&mut buf),
            Err(MllpError::FrameTooLarge { limit: 10 })
        ));

        // A complete frame over the limit fails too; one at the limit passes.
        let mut codec = MllpCodec::new(10);
        let mut buf = BytesMut::from(&frame(b"0123456789")[..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(b"0123456789".to_vec())
        );
        let mut buf = BytesMut::from(&frame(b"0123456789A")[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(MllpError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn eof_mid_frame_is_not_an_error() {
        let mut codec = MllpCodec::new(100);
        let mut buf = BytesMut::from(&b"\x0bMSH|partial"[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }
}
