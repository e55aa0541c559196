//! The parsed message and its zero-copy views: segments, fields, repetitions, components,
//! subcomponents.

mod field;
mod parse;
mod segment;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use super::charset::Charset;
use super::{Delimiters, Path};

pub use field::{Component, Field, Repetition, Subcomponent};
pub use segment::Segment;

/// A parsed HL7 v2 message: the text decoded once into a `String`, plus an index of segment
/// and field boundaries. Everything else is read lazily as `&str` views into that text.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
///
/// let msg = Message::parse(
///     b"MSH|^~\\&|LAB|CHU|||20240131123000+0100||ORU^R01^ORU_R01|MSG001|P|2.5\r\
///       PID|1||12345^^^CHU^PI||DUPONT^Jean||19800101|M\r\
///       OBR|1||R-1|24317-0^Hemogram^LN\r\
///       OBX|1|NM|718-7^Hemoglobin^LN||13.4|g/dL^^UCUM|||||F\r\
///       OBX|2|NM|4544-3^Hematocrit^LN||40.1|%|||||F\r",
/// )
/// .unwrap();
/// assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
/// assert_eq!(msg.control_id().as_deref(), Some("MSG001"));
/// assert_eq!(msg.get("PID-5.1").as_deref(), Some("DUPONT"));
/// let values: Vec<_> = msg.segments_named("OBX").map(|obx| obx.field(5).value()).collect();
/// assert_eq!(values, ["13.4", "40.1"]);
/// ```
#[derive(Clone)]
pub struct Message {
    text: String,
    delims: Delimiters,
    /// What the field views split and unescape with: `delims`, without the escape character
    /// when the message holds none past MSH-2 — most do not, and then no value is searched
    /// for escapes (≈ 90 searches in a 5-OBX ORU).
    view_delims: Delimiters,
    charset: Charset,
    segs: Vec<SegInfo>,
    /// Byte offsets (in `text`) of the field separators after each segment name.
    seps: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct SegInfo {
    start: u32,
    end: u32,
    seps_start: u32,
    seps_end: u32,
    occurrence: u32,
}

impl Message {
    /// The whole decoded text, line ends as received.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// assert_eq!(msg.as_str(), "MSH|^~\\&|A\rPID|1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The delimiters read from MSH-1 and MSH-2.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH#$%*@#A").unwrap();
    /// assert_eq!(msg.delimiters().component, '$');
    /// assert_eq!(msg.get("MSH-3").as_deref(), Some("A"));
    /// ```
    pub fn delimiters(&self) -> &Delimiters {
        &self.delims
    }

    /// The character set the message was decoded from.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{charset::Charset, Message};
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||Andr\xe9").unwrap();
    /// assert_eq!(msg.charset(), Charset::Latin1); // empty MSH-18, not UTF-8
    /// ```
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The number of segments.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\r\rPID|1\r").unwrap();
    /// assert_eq!(msg.segment_count(), 2);
    /// ```
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// The segment at a 0-based position.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1\r").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().name(), "PID");
    /// assert!(msg.segment(2).is_none());
    /// ```
    pub fn segment(&self, index: usize) -> Option<Segment<'_>> {
        self.segs.get(index).map(|info| Segment {
            msg: self,
            info,
            index,
        })
    }

    /// The `MSH` segment (always the first).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|LAB\r").unwrap();
    /// assert_eq!(msg.msh().field(3).value(), "LAB");
    /// ```
    pub fn msh(&self) -> Segment<'_> {
        Segment {
            msg: self,
            info: &self.segs[0],
            index: 0,
        }
    }

    /// All segments in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1\rPV1|1\r").unwrap();
    /// let names: Vec<_> = msg.segments().map(|s| s.name()).collect();
    /// assert_eq!(names, ["MSH", "PID", "PV1"]);
    /// ```
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment<'_>> + '_ {
        self.segs
            .iter()
            .enumerate()
            .map(move |(index, info)| Segment {
                msg: self,
                info,
                index,
            })
    }

    /// The segments named `name`, in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1\rNTE|1\rOBX|2\r").unwrap();
    /// let ids: Vec<_> = msg.segments_named("OBX").map(|s| s.field(1).value()).collect();
    /// assert_eq!(ids, ["1", "2"]);
    /// ```
    pub fn segments_named<'m, 'n>(
        &'m self,
        name: &'n str,
    ) -> impl Iterator<Item = Segment<'m>> + use<'m, 'n> {
        self.segments().filter(move |s| s.name() == name)
    }

    /// The first segment named `name`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||42\r").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(3).value(), "42");
    /// assert!(msg.first("PV1").is_none());
    /// ```
    pub fn first(&self, name: &str) -> Option<Segment<'_>> {
        self.segments().find(|s| s.name() == name)
    }

    /// Reads one value by [`Path`] (`PID-5.1`, `OBX[2]-5`, `PID-3(2).4.2`, `MSH-9.2`),
    /// unescaped. `None` when the path is malformed or has no segment name, when the segment
    /// does not exist, or when the value is empty. A path without a component reads the first
    /// component (`PID-5` is `PID-5.1.1`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(
    ///     b"MSH|^~\\&|A||||||ORU^R01\rPID|1||1^^^X&1.2&ISO~2^^^Y&3.4&ISO||O\\T\\NEIL^ANN\r",
    /// )
    /// .unwrap();
    /// assert_eq!(msg.get("MSH-9.2").as_deref(), Some("R01"));
    /// assert_eq!(msg.get("PID-5").as_deref(), Some("O&NEIL"));
    /// assert_eq!(msg.get("PID-5.2").as_deref(), Some("ANN"));
    /// assert_eq!(msg.get("PID-3(2).4.2").as_deref(), Some("3.4"));
    /// assert_eq!(msg.get("PID-3.4.2").as_deref(), Some("1.2"));
    /// assert_eq!(msg.get("PID-7"), None);
    /// assert_eq!(msg.get("OBX-5"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// [`get`](Self::get) with a path parsed beforehand (for hot loops).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{Message, Path};
    /// let name = Path::parse("PID-5.2").unwrap();
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN\r").unwrap();
    /// assert_eq!(msg.get_path(&name).as_deref(), Some("JOHN"));
    /// ```
    pub fn get_path(&self, path: &Path) -> Option<Cow<'_, str>> {
        let name = path.segment()?;
        let seg = self.segments_named(name).nth(path.occurrence() - 1)?;
        seg.get_path(path)
    }

    /// The message type as `code^event` from MSH-9.1 and MSH-9.2 (just `code` when there is
    /// no event), e.g. `ORU^R01`. `None` when MSH-9.1 is empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ADT^A01^ADT_A01|1|P|2.5").unwrap();
    /// assert_eq!(msg.message_type().as_deref(), Some("ADT^A01"));
    /// let ack = Message::parse(b"MSH|^~\\&|A||||||ACK^|1|P|2.5").unwrap();
    /// assert_eq!(ack.message_type().as_deref(), Some("ACK"));
    /// ```
    pub fn message_type(&self) -> Option<String> {
        let field = self.msh().field(9);
        let code = field.component(1).value();
        if code.is_empty() {
            return None;
        }
        let event = field.component(2).value();
        Some(if event.is_empty() {
            code.into_owned()
        } else {
            format!("{code}^{event}")
        })
    }

    /// The message control id (MSH-10), unescaped; `None` when empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ORU^R01|MSG-42|P|2.5").unwrap();
    /// assert_eq!(msg.control_id().as_deref(), Some("MSG-42"));
    /// ```
    pub fn control_id(&self) -> Option<Cow<'_, str>> {
        non_empty(self.msh().field(10).value())
    }

    /// The version id (MSH-12.1), e.g. `2.5`; `None` when empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5^FRA^2.11").unwrap();
    /// assert_eq!(msg.version().as_deref(), Some("2.5"));
    /// ```
    pub fn version(&self) -> Option<Cow<'_, str>> {
        non_empty(self.msh().field(12).value())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("delimiters", &self.delims)
            .field("charset", &self.charset)
            .field(
                "segments",
                &self.segments().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn non_empty(v: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if v.is_empty() { None } else { Some(v) }
}
