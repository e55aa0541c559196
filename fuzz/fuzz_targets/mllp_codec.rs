//! MLLP framing: the codec fed arbitrary bytes in arbitrary read sizes must yield the same
//! frames as when fed the whole stream at once, never a frame over the limit, and never panic;
//! each frame's header is then sniffed for the ACK as the listener does.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use passerelle::ingest::mllp::{MllpCodec, MllpError, ack};
use tokio_util::codec::Decoder;

const LIMIT: usize = 256;

fuzz_target!(|data: &[u8]| {
    // First byte: the read size (1..=64), the rest: the stream.
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 64) + 1;

    let whole = decode(stream, stream.len().max(1));
    let pieces = decode(stream, chunk);
    // The framing does not depend on how the bytes arrive, as long as no frame is too large
    // (the limit is checked on what is buffered, which depends on the read size).
    if !whole.iter().chain(&pieces).any(Result::is_err) {
        assert_eq!(whole, pieces, "read size {chunk}");
    }
    for frame in whole.iter().flatten() {
        assert!(frame.len() <= LIMIT, "frame of {} bytes", frame.len());
        assert!(!frame.contains(&0x0b) && !frame.contains(&0x1c));
        let _ = ack::sniff(frame, None);
        let _ = ack::sniff(frame, Some("8859/1"));
    }
});

/// Decodes `stream` read `chunk` bytes at a time, then EOF. An error ends the stream (the
/// listener closes the connection).
fn decode(stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>> {
    let mut codec = MllpCodec::new(LIMIT);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e @ MllpError::FrameTooLarge { .. }) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
                Err(e) => panic!("I/O error from a byte codec: {e}"),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e.to_string()));
                break;
            }
        }
    }
    out
}
