//! One segment of a message: its name, position and fields.

use std::borrow::Cow;
use std::fmt;

use super::{Field, Message, SegInfo, non_empty};
use crate::hl7::{Delimiters, Path};

/// One segment of a [`Message`]: a cheap, copyable view.
///
/// Fields use HL7 numbering from 1. For `MSH`, field 1 is the field separator itself and field
/// 2 the encoding characters, so `MSH-9` is the message type as in the standard. Field 0 is
/// the segment name.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM\rOBX|2|ST|X^Y||high\r").unwrap();
/// let obx = msg.segments_named("OBX").nth(1).unwrap();
/// assert_eq!((obx.name(), obx.index(), obx.occurrence()), ("OBX", 2, 2));
/// assert_eq!(obx.field(5).value(), "high");
/// assert_eq!(obx.field_count(), 5);
/// assert_eq!(obx.location(3, 2), "OBX[2]-3.2");
/// assert_eq!(msg.msh().field(1).raw(), "|");
/// assert_eq!(msg.msh().field(2).raw(), "^~\\&");
/// ```
#[derive(Clone, Copy)]
pub struct Segment<'m> {
    pub(super) msg: &'m Message,
    pub(super) info: &'m SegInfo,
    pub(super) index: usize,
}

impl<'m> Segment<'m> {
    /// The 3-character segment name, e.g. `OBX`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rZBE|1").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().name(), "ZBE");
    /// ```
    pub fn name(&self) -> &'m str {
        let s = self.info.start as usize;
        &self.msg.text[s..s + 3]
    }

    /// The 0-based position of the segment in the message (MSH is 0).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().index(), 1);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The 1-based number of this segment among the segments of the same name (the third
    /// `OBX` has occurrence 3).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1\rNTE|1\rOBX|2").unwrap();
    /// assert_eq!(msg.segment(3).unwrap().occurrence(), 2);
    /// ```
    pub fn occurrence(&self) -> usize {
        self.info.occurrence as usize
    }

    /// The raw text of the segment, without its line end.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\r\nPID|1|\\F\\\r\n").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().raw(), "PID|1|\\F\\");
    /// ```
    pub fn raw(&self) -> &'m str {
        &self.msg.text[self.info.start as usize..self.info.end as usize]
    }

    /// The delimiters of the message.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A").unwrap();
    /// assert_eq!(msg.msh().delimiters().field, '|');
    /// ```
    pub fn delimiters(&self) -> &'m Delimiters {
        &self.msg.delims
    }

    fn is_msh(&self) -> bool {
        self.name() == "MSH"
    }

    fn seps(&self) -> &'m [u32] {
        &self.msg.seps[self.info.seps_start as usize..self.info.seps_end as usize]
    }

    /// The number of fields, counting empty ones up to the last field separator (for `MSH`,
    /// MSH-1 included). `PID|1||` has 3 fields.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||\rPV1").unwrap();
    /// assert_eq!(msg.msh().field_count(), 3);
    /// assert_eq!(msg.first("PID").unwrap().field_count(), 3);
    /// assert_eq!(msg.first("PV1").unwrap().field_count(), 0);
    /// ```
    pub fn field_count(&self) -> usize {
        self.seps().len() + usize::from(self.is_msh())
    }

    /// Field `n` (HL7 numbering). A missing field is empty, never an error. For `MSH`, fields
    /// 1 and 2 are literal: never split nor unescaped.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ORU^R01\rPID|1||123").unwrap();
    /// assert_eq!(msg.msh().field(9).raw(), "ORU^R01");
    /// let pid = msg.first("PID").unwrap();
    /// assert_eq!(pid.field(0).raw(), "PID");
    /// assert_eq!(pid.field(3).value(), "123");
    /// assert!(pid.field(30).is_empty());
    /// ```
    pub fn field(&self, n: usize) -> Field<'m> {
        let text = self.msg.text.as_str();
        let delims = &self.msg.view_delims;
        let start = self.info.start as usize;
        let literal = |raw| Field {
            raw,
            delims,
            literal: true,
        };
        let is_msh = self.is_msh();
        if n == 0 {
            return literal(self.name());
        }
        if is_msh && n == 1 {
            return literal(&text[start + 3..start + 4]);
        }
        let k = if is_msh { n - 2 } else { n - 1 };
        let seps = self.seps();
        let raw = match seps.get(k) {
            Some(&from) => {
                let to = seps
                    .get(k + 1)
                    .map_or(self.info.end as usize, |&t| t as usize);
                &text[from as usize + 1..to]
            }
            None => "",
        };
        Field {
            raw,
            delims,
            literal: is_msh && n == 2,
        }
    }

    /// The fields from 1 to [`field_count`](Self::field_count), in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rNTE|1||Hello").unwrap();
    /// let raws: Vec<_> = msg.first("NTE").unwrap().fields().map(|f| f.raw()).collect();
    /// assert_eq!(raws, ["1", "", "Hello"]);
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = Field<'m>> + use<'m> {
        let seg = *self;
        (1..=seg.field_count()).map(move |n| seg.field(n))
    }

    /// A location for error messages: `OBX[3]-5.1` (`component` 0 gives `OBX[3]-5`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// let pid = msg.first("PID").unwrap();
    /// assert_eq!(pid.location(3, 0), "PID[1]-3");
    /// assert_eq!(pid.location(5, 1), "PID[1]-5.1");
    /// ```
    pub fn location(&self, field: usize, component: usize) -> String {
        let mut s = format!("{}[{}]-{}", self.name(), self.occurrence(), field);
        if component > 0 {
            s.push('.');
            s.push_str(&component.to_string());
        }
        s
    }

    /// Reads a value by a path relative to this segment (`5`, `5.1`, `3(2).4.2`); a path
    /// with a segment name also works when the name matches (its occurrence is ignored).
    /// Same rules as [`Message::get`].
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|CWE|X||123^Present^SCT").unwrap();
    /// let obx = msg.first("OBX").unwrap();
    /// assert_eq!(obx.get("5.2").as_deref(), Some("Present"));
    /// assert_eq!(obx.get("OBX-5").as_deref(), Some("123"));
    /// assert_eq!(obx.get("PID-5"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<Cow<'m, str>> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// [`get`](Self::get) with a path parsed beforehand.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{Message, Path};
    /// let p = Path::parse("5").unwrap();
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM|X||7.2").unwrap();
    /// assert_eq!(msg.first("OBX").unwrap().get_path(&p).as_deref(), Some("7.2"));
    /// ```
    pub fn get_path(&self, path: &Path) -> Option<Cow<'m, str>> {
        if path.segment().is_some_and(|s| s != self.name()) {
            return None;
        }
        let rep = self.field(path.field()).repetition(path.repetition());
        let value = match (path.component(), path.subcomponent()) {
            (None, _) => rep.value(),
            (Some(c), None) => rep.component(c).value(),
            (Some(c), Some(s)) => rep.component(c).subcomponent(s).value(),
        };
        non_empty(value)
    }

    /// Shortcut for `field(field).component(component).value()`: the unescaped first
    /// subcomponent of that component of the first repetition.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().value(5, 2), "JOHN");
    /// ```
    pub fn value(&self, field: usize, component: usize) -> Cow<'m, str> {
        self.field(field).component(component).value()
    }
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Segment({}[{}] #{}: {:?})",
            self.name(),
            self.occurrence(),
            self.index,
            self.raw()
        )
    }
}

impl fmt::Display for Segment<'_> {
    /// The raw segment text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw())
    }
}
