//! HL7 v2 escapes: `unescape` on arbitrary text with arbitrary (valid) delimiters must not
//! panic, and `escape` then `unescape` must give back the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_plugin_sdk::hl7::{Delimiters, Message, escape};

fuzz_target!(|data: &[u8]| {
    // First 6 bytes choose the delimiters (through the parser, so they are always a valid
    // set: distinct, not letters/digits); the rest is the text.
    let (head, rest) = data.split_at(data.len().min(6));
    let delims = delimiters(head);
    let text = String::from_utf8_lossy(rest);

    let _ = escape::unescape(&text, &delims);

    let escaped = escape::escape(&text, &delims);
    let back = escape::unescape(&escaped, &delims);
    assert_eq!(back, text, "escape/unescape round trip with {delims:?}");
});

fn delimiters(head: &[u8]) -> Delimiters {
    let mut msh = b"MSH".to_vec();
    msh.extend_from_slice(head);
    msh.extend_from_slice(b"|X\r");
    Message::parse(&msh).map_or(Delimiters::STANDARD, |m| *m.delimiters())
}
