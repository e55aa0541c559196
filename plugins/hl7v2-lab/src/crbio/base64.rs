//! Standard base64 (RFC 4648 §4) decoding of an ED payload.

/// Decodes base64, ignoring whitespace; padding is optional. The error says what is wrong and at
/// which character of the text.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    let mut count = 0usize;
    for (i, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            count += 1;
            continue;
        }
        if padding > 0 {
            return Err(format!("base64 data after the padding (character {i})"));
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not a base64 character at character {i}")),
        };
        count += 1;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone sextet cannot encode a byte: the text was cut.
    if padding > 2 || (count - padding) % 4 == 1 {
        return Err("truncated base64 data".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn rfc4648_vectors_whitespace_and_errors() {
        for (b64, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9v\r\nYmFy", "foobar"),
            ("Zm9vYg", "foob"),
        ] {
            assert_eq!(decode(b64).unwrap(), plain.as_bytes(), "{b64}");
        }
        assert!(decode("Zm9vY").unwrap_err().contains("truncated"));
        assert!(decode("Zm9v*mFy").unwrap_err().contains("character 4"));
        assert!(
            decode("Zg==Zg==")
                .unwrap_err()
                .contains("after the padding")
        );
    }
}
