//! Compact JSON for the FHIR types: the same bytes as `serde_json::to_string`, written faster.
//!
//! A Bundle is mostly short strings that need no escaping (codes, systems, UUIDs, dates).
//! `serde_json` looks each byte up in its escape table; this writer checks eight bytes at a
//! time and copies the whole string when none needs escaping — strings of up to 32 bytes by
//! fixed-size moves ([`push_short`]) — which matters most inside the wasm sandbox (no SIMD,
//! an interruption check on every loop iteration, a copy of unknown length is a call out to
//! the host). Whatever is unusual — a string that needs escaping, a float, a map key that is
//! not a string — is handed to `serde_json` itself, and a construct this writer does not know
//! (bytes, exotic map keys) makes [`to_string`] serialize the whole value with `serde_json`
//! instead: the output never differs from `serde_json`'s (the tests compare them).

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::words::{ONES, any_word, short, word, zero_mask};

/// serde_json's marker for `RawValue` (written verbatim).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Compact JSON of `value`, byte for byte what `serde_json::to_string` gives (`""` when
/// `serde_json` fails too).
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = String::with_capacity(4096);
    match value.serialize(&mut Writer { out: &mut out }) {
        Ok(()) => out,
        Err(Unsupported) => serde_json::to_string(value).unwrap_or_default(),
    }
}

/// Something this writer leaves to `serde_json` (or an error `serde_json` would report too).
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

struct Writer<'a> {
    out: &'a mut String,
}

/// True when some byte of the word is a control character, `"` or `\\` (a byte ≥ 0x80, part
/// of a UTF-8 sequence, never is).
fn word_needs_escape(w: u64) -> bool {
    zero_mask(w & (ONES * 0xe0))
        | zero_mask(w ^ (ONES * u64::from(b'"')))
        | zero_mask(w ^ (ONES * u64::from(b'\\')))
        != 0
}

/// True when some byte of `s` is a control character, `"` or `\\`.
fn needs_escape(s: &str) -> bool {
    any_word(s.as_bytes(), word_needs_escape)
}

/// Longest string [`push_short`] takes.
const SHORT: usize = 32;

/// Appends `s` in quotes when it is at most [`SHORT`] bytes long and no byte of it needs
/// escaping; otherwise appends nothing and returns `false`.
///
/// Most strings of a Bundle are short (keys, codes, dates, UUIDs). Inside the sandbox a copy
/// of unknown length is a call out of the guest (`memory.copy`) that costs more than the copy
/// itself, and a byte loop pays an interruption check per byte; here every move has a fixed
/// size: the string is read as overlapping words (2, 4 or 8 bytes) which are checked and
/// written into a fixed buffer, appended whole, then cut to length.
#[inline(always)]
fn push_short(out: &mut String, s: &str) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    if n > SHORT {
        return false;
    }
    // `"`, the string, `"`, and quotes up to the end (cut off below).
    let mut buf = [b'"'; SHORT + 2];
    // The checked words hold bytes of `s` only (windows overlap), or spaces in place of the
    // missing bytes of a string shorter than 8.
    let plain = if n >= 8 {
        let mut plain = true;
        let mut put = |at: usize| {
            let w = word(b, at);
            plain &= !word_needs_escape(w);
            buf[1 + at..9 + at].copy_from_slice(&w.to_le_bytes());
        };
        // Windows at 0, 8, 16, 24, the last ones moved back to end at `n`.
        put(0);
        if n > 16 {
            put(8);
            put((n - 8).min(16));
        }
        put(n - 8);
        plain
    } else {
        // Zero above the string: those buffer bytes become the closing quote and whatever
        // follows it (cut off below); for the check they are spaces.
        let w = short(b);
        buf[1..9].copy_from_slice(&w.to_le_bytes());
        buf[1 + n] = b'"';
        !word_needs_escape(w | (u64::MAX << (8 * n)) & (ONES * u64::from(b' ')))
    };
    if !plain {
        return false;
    }
    let start = out.len();
    // SAFETY: `buf` holds `"`, every byte of `s` in order (the overlapping writes put the same
    // byte at the same place), `"`, then ASCII only (quotes, or zero bytes after a string
    // shorter than 8): valid UTF-8 as a whole and in every prefix that ends after `s`, so the
    // `String` holds valid UTF-8 after each of these statements. Nothing between them can
    // panic.
    let bytes = unsafe { out.as_mut_vec() };
    bytes.extend_from_slice(&buf);
    bytes.truncate(start + n + 2);
    true
}

impl Writer<'_> {
    // Inlined into each caller (keys, string values): ≈ 410 calls per 5-OBX Bundle, and inside
    // the sandbox each call costs a frame and an interruption check.
    #[inline(always)]
    fn string(&mut self, s: &str) -> Result<(), Unsupported> {
        if push_short(self.out, s) {
            return Ok(());
        }
        if s.len() <= SHORT || needs_escape(s) {
            // Rare (notes with line breaks, quotes): serde_json's own escaping.
            let quoted = serde_json::to_string(s).map_err(|_| Unsupported)?;
            self.out.push_str(&quoted);
        } else {
            self.out.push('"');
            self.out.push_str(s);
            self.out.push('"');
        }
        Ok(())
    }

    fn display(&mut self, v: impl fmt::Display) -> Result<(), Unsupported> {
        write!(self.out, "{v}").map_err(|_| Unsupported)
    }

    fn float(&mut self, v: impl Serialize) -> Result<(), Unsupported> {
        // serde_json's float text (ryu, `null` for NaN and infinities).
        let text = serde_json::to_string(&v).map_err(|_| Unsupported)?;
        self.out.push_str(&text);
        Ok(())
    }
}

/// A sequence, map or struct being written: `first` says whether a comma is due.
pub(crate) struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    /// Closing text: `]`, `}`, or `]}` / `}}` for enum variants.
    close: &'static str,
    /// Inside serde_json's `RawValue` struct.
    raw: bool,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.w.out.push(',');
        }
        self.first = false;
    }

    #[inline(always)]
    fn key(&mut self, key: &str) -> Result<(), Unsupported> {
        self.comma();
        self.w.string(key)?;
        self.w.out.push(':');
        Ok(())
    }

    fn end(self) -> Result<(), Unsupported> {
        self.w.out.push_str(self.close);
        Ok(())
    }
}

impl<'w, 'a> Writer<'a> {
    fn open(&'w mut self, open: &str, close: &'static str) -> Compound<'w, 'a> {
        self.out.push_str(open);
        Compound {
            w: self,
            first: true,
            close,
            raw: false,
        }
    }

    /// `{"variant":` then `open`; closed by `close` + `}`.
    fn variant(
        &'w mut self,
        variant: &str,
        open: &str,
        close: &'static str,
    ) -> Result<Compound<'w, 'a>, Unsupported> {
        self.out.push('{');
        self.string(variant)?;
        self.out.push(':');
        self.out.push_str(open);
        Ok(Compound {
            w: self,
            first: true,
            close,
            raw: false,
        })
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.string(v)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.out.push('{');
        self.string(variant)?;
        self.out.push(':');
        value.serialize(&mut *self)?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Unsupported> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w, 'a>, Unsupported> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Unsupported> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Unsupported> {
        self.variant(variant, "[", "]}")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Unsupported> {
        Ok(self.open("{", "}"))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Unsupported> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound {
                w: self,
                first: true,
                close: "",
                raw: true,
            });
        }
        Ok(self.open("{", "}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Unsupported> {
        self.variant(variant, "{", "}}")
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.comma();
        key.serialize(MapKey {
            w: &mut *self.w,
            verbatim: false,
        })?;
        self.w.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

/// The field of serde_json's `RawValue` struct (a FHIR [`Decimal`](super::Decimal): 15 of
/// the ≈ 200 fields of a 5-OBX Bundle, or a `RawValue`): raw JSON text, written verbatim, as
/// `serde_json` does (the `Decimal` or `RawValue` checked it when it was made). Out of line and marked cold, so that this stays out of
/// every struct's `serialize_field` and the common path of each is laid out straight (≈ 3 k
/// fewer guest instructions per message than without `#[cold]`).
#[cold]
#[inline(never)]
fn raw_value<T: Serialize + ?Sized>(
    w: &mut Writer<'_>,
    key: &'static str,
    value: &T,
) -> Result<(), Unsupported> {
    if key != RAW_VALUE_TOKEN {
        return Err(Unsupported);
    }
    value.serialize(MapKey { w, verbatim: true })
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    // Inlined into each struct's `Serialize` (one call per field otherwise).
    #[inline(always)]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if self.raw {
            return raw_value(self.w, key, value);
        }
        self.key(key)?;
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

/// Map keys: strings only (field names of flattened members); the rest is left to serde_json.
/// Also the text of a `RawValue` (`verbatim`), which is a string too.
struct MapKey<'w, 'a> {
    w: &'w mut Writer<'a>,
    /// The field of a `RawValue` instead: a string written as it is, nothing else taken.
    verbatim: bool,
}

impl ser::Serializer for MapKey<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        if self.verbatim {
            self.w.out.push_str(v);
            Ok(())
        } else {
            self.w.string(v)
        }
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        if self.verbatim {
            return Err(Unsupported);
        }
        self.w.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        if self.verbatim {
            return Err(Unsupported);
        }
        self.w.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_bool(self, _v: bool) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i8(self, _v: i8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i16(self, _v: i16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i32(self, _v: i32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i64(self, _v: i64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u8(self, _v: u8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u16(self, _v: u16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u32(self, _v: u32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u64(self, _v: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests;
