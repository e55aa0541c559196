//! The few fields of a Bundle that the host checks, read from JSON that `serde_json` has
//! already validated (`RawValue::from_string`), without parsing it a second time.
//!
//! A plugin's Bundle used to be parsed twice: once into a struct of its head fields, once more
//! by `RawValue::from_string`, which validates again (≈ 6 µs of the 55 µs of a 5-OBX
//! `Plugin::adapt`). Here the one validating pass is `serde_json`'s, and this reader only
//! skips over the valid text to the fields it wants. It is stricter than a JSON parser on
//! purpose: a checked key written with escapes or given twice is refused, so what the host
//! checked is what any consumer reads.

/// The checked fields.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BundleHead<'a> {
    /// Raw text of `resourceType` (without quotes; escapes left as written).
    pub resource_type: Option<&'a str>,
    /// Raw text of `type`.
    pub bundle_type: Option<&'a str>,
    /// Per entry: the raw `resource.resourceType`, `None` when the entry has no resource or the
    /// resource no `resourceType`.
    pub entries: Vec<Option<&'a str>>,
}

/// Reads the head of `json`, which must be valid JSON. `Err` says what is wrong.
pub(super) fn read(json: &str) -> Result<BundleHead<'_>, String> {
    let mut s = Scanner {
        b: json.as_bytes(),
        i: 0,
    };
    let mut head = BundleHead {
        resource_type: None,
        bundle_type: None,
        entries: Vec::new(),
    };
    let mut seen_entry = false;
    s.object(|s, key| match key {
        "resourceType" => set_once(&mut head.resource_type, s.string_value()?, key),
        "type" => set_once(&mut head.bundle_type, s.string_value()?, key),
        "entry" => {
            if std::mem::replace(&mut seen_entry, true) {
                return Err("bundle has \"entry\" twice".into());
            }
            s.entries(&mut head.entries)
        }
        _ => s.skip_value(),
    })?;
    Ok(head)
}

fn set_once<'a>(slot: &mut Option<&'a str>, value: &'a str, key: &str) -> Result<(), String> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(format!("\"{key}\" is given twice")),
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    /// A string's raw text (escapes as written); the scanner is past its closing quote.
    fn string(&mut self) -> Result<&'a str, String> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match self.b.get(self.i) {
                Some(b'"') => break,
                Some(b'\\') => self.i += 2,
                Some(_) => self.i += 1,
                None => return Err("unterminated string".into()),
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i.min(self.b.len())])
            .map_err(|_| "string is not UTF-8".to_string())?;
        self.i += 1;
        Ok(text)
    }

    fn string_value(&mut self) -> Result<&'a str, String> {
        if self.peek() != Some(b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.string()
    }

    /// `{ "key": value, ... }`, calling `field` on each key with the scanner before the value.
    fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &str) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }

    /// `"entry": [ { "resource": { "resourceType": ... } }, ... ]`
    fn entries(&mut self, out: &mut Vec<Option<&'a str>>) -> Result<(), String> {
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let mut resource_type = None;
            let mut seen_resource = false;
            if self.peek() != Some(b'{') {
                return Err(format!("bundle entry {} is not an object", out.len()));
            }
            self.object(|s, key| match key {
                "resource" => {
                    if std::mem::replace(&mut seen_resource, true) {
                        return Err("\"resource\" is given twice".into());
                    }
                    if s.peek() != Some(b'{') {
                        return Err("\"resource\" is not an object".into());
                    }
                    s.object(|s, key| match key {
                        "resourceType" => set_once(&mut resource_type, s.string_value()?, key),
                        _ => s.skip_value(),
                    })
                }
                _ => s.skip_value(),
            })
            .map_err(|e| format!("bundle entry {}: {e}", out.len()))?;
            out.push(resource_type);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
            }
        }
    }

    /// Skips one value (valid JSON: strings are skipped with their escapes, containers by
    /// depth).
    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.b.get(self.i) {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                        None => return Err("unterminated container".into()),
                    }
                    self.i += 1;
                }
            }
            Some(_) => {
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Ok(())
            }
            None => Err("unexpected end".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_and_skips_everything_else() {
        let json = r#" { "id" : "x", "meta": {"tag": [{"code": "a\"}b"}, 1.5e3, null, true]},
            "type":"collection", "resourceType" :"Bundle",
            "entry": [ {"fullUrl": "urn:uuid:1", "resource": {"note": [{"text": "]}\\"}], "resourceType": "Patient"}},
                       {"resource": {"id": "2"}}, {"search": {}} , {} ],
            "total": 3 } "#;
        let head = read(json).unwrap();
        assert_eq!(
            head,
            BundleHead {
                resource_type: Some("Bundle"),
                bundle_type: Some("collection"),
                entries: vec![Some("Patient"), None, None, None],
            }
        );
        assert_eq!(
            read(r#"{"resourceType":"Bundle","entry":[]}"#).unwrap(),
            BundleHead {
                resource_type: Some("Bundle"),
                bundle_type: None,
                entries: vec![]
            }
        );
    }

    #[test]
    fn duplicate_or_mistyped_checked_keys_are_refused() {
        for bad in [
            r#"{"resourceType":"Bundle","resourceType":"Patient"}"#,
            r#"{"type":"collection","type":"document"}"#,
            r#"{"entry":[],"entry":[]}"#,
            r#"{"entry":[{"resource":{"resourceType":"A","resourceType":"B"}}]}"#,
            r#"{"entry":[{"resource":{},"resource":{}}]}"#,
            r#"{"resourceType":1}"#,
            r#"{"entry":{}}"#,
            r#"{"entry":[1]}"#,
            r#"{"entry":[{"resource":[]}]}"#,
            r#"[]"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
