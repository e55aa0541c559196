//! HL7 v2 dates and times (DT, DTM, TS) converted to FHIR R4 `date`, `dateTime` and `instant`.
//!
//! An HL7 DTM is `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`; a TS is a DTM optionally
//! followed by a `^` and a (deprecated) precision component, which is ignored. Values are
//! validated (month 1–12, day within the month, leap years, hour 0–23, minutes and seconds
//! 0–59, offset −13:59…+14:00 as FHIR allows); anything invalid gives `None`.
//!
//! FHIR R4 requires a time zone and seconds whenever a time is present, so a value with a time
//! gets missing minutes/seconds filled with `00` and, when it carries no offset, the caller's
//! `default_offset` (the source's local offset, e.g. `"+01:00"`, or `"Z"`).
//!
//! ```
//! use passerelle_plugin_sdk::hl7::datetime::{to_fhir_date, to_fhir_datetime, to_fhir_instant};
//!
//! assert_eq!(to_fhir_date("19790328").as_deref(), Some("1979-03-28"));
//! assert_eq!(
//!     to_fhir_datetime("20240131123000+0100", "Z").as_deref(),
//!     Some("2024-01-31T12:30:00+01:00")
//! );
//! assert_eq!(
//!     to_fhir_datetime("202401311230", "+01:00").as_deref(),
//!     Some("2024-01-31T12:30:00+01:00")
//! );
//! assert_eq!(to_fhir_datetime("20240131", "+01:00").as_deref(), Some("2024-01-31"));
//! assert_eq!(to_fhir_instant("20240131", "Z").as_deref(), Some("2024-01-31T00:00:00Z"));
//! assert_eq!(to_fhir_date("20241331"), None);
//! ```

use std::fmt::Write as _;

/// A validated HL7 DTM value, at the precision it was given.
///
/// ```
/// use passerelle_plugin_sdk::hl7::datetime::Dtm;
///
/// let t = Dtm::parse("20240131123005.25-0530").unwrap();
/// assert_eq!((t.year, t.month, t.day), (2024, Some(1), Some(31)));
/// assert_eq!((t.hour, t.minute, t.second), (Some(12), Some(30), Some(5)));
/// assert_eq!(t.fraction, Some("25"));
/// assert_eq!(t.offset_minutes, Some(-330));
/// assert_eq!(Dtm::parse("202401").unwrap().day, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtm<'a> {
    /// Year, 1–9999.
    pub year: u16,
    /// Month, 1–12.
    pub month: Option<u8>,
    /// Day of the month, valid for the month and year.
    pub day: Option<u8>,
    /// Hour, 0–23.
    pub hour: Option<u8>,
    /// Minute, 0–59.
    pub minute: Option<u8>,
    /// Second, 0–59.
    pub second: Option<u8>,
    /// The digits of the fractional second, as written (only with seconds).
    pub fraction: Option<&'a str>,
    /// UTC offset in minutes (east positive), when the value has one.
    pub offset_minutes: Option<i16>,
}

impl<'a> Dtm<'a> {
    /// Parses and validates an HL7 DT/DTM/TS value (component 1 when it has `^` components;
    /// surrounding spaces ignored). `None` when empty or invalid.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::datetime::Dtm;
    /// assert!(Dtm::parse("20240229").is_some());
    /// assert!(Dtm::parse("20230229").is_none()); // not a leap year
    /// assert!(Dtm::parse("2024013").is_none()); // odd length
    /// assert!(Dtm::parse("20240131^D").is_some()); // TS with its precision component
    /// assert!(Dtm::parse("2024-01-31").is_none()); // not HL7
    /// ```
    pub fn parse(value: &'a str) -> Option<Dtm<'a>> {
        let value = value.split('^').next().unwrap_or("").trim();
        let (main, offset_minutes) = match value.find(['+', '-']) {
            Some(i) => (&value[..i], Some(parse_offset(&value[i..])?)),
            None => (value, None),
        };
        let (digits, fraction) = match main.split_once('.') {
            Some((d, f)) => (d, Some(f)),
            None => (main, None),
        };
        let b = digits.as_bytes();
        if !matches!(b.len(), 4 | 6 | 8 | 10 | 12 | 14) || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if let Some(f) = fraction
            && (b.len() != 14 || f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        let two = |i: usize| -> Option<u8> {
            (b.len() >= i + 2).then(|| (b[i] - b'0') * 10 + (b[i + 1] - b'0'))
        };
        let year = u16::from(two(0)?) * 100 + u16::from(two(2)?);
        let month = two(4);
        let day = two(6);
        let (hour, minute, second) = (two(8), two(10), two(12));
        let ok = year >= 1
            && month.is_none_or(|m| (1..=12).contains(&m))
            && day.is_none_or(|d| d >= 1 && d <= days_in_month(year, month.unwrap_or(1)))
            && hour.is_none_or(|h| h <= 23)
            && minute.is_none_or(|m| m <= 59)
            && second.is_none_or(|s| s <= 59);
        ok.then_some(Dtm {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction,
            offset_minutes,
        })
    }

    /// The FHIR `date` at this value's precision, up to the day (a time is dropped, without
    /// any time-zone conversion): `2024`, `2024-01` or `2024-01-31`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::datetime::Dtm;
    /// assert_eq!(Dtm::parse("202401311230+0100").unwrap().to_fhir_date(), "2024-01-31");
    /// assert_eq!(Dtm::parse("2024").unwrap().to_fhir_date(), "2024");
    /// ```
    pub fn to_fhir_date(&self) -> String {
        let mut s = String::with_capacity(10);
        push_year(&mut s, self.year);
        if let Some(m) = self.month {
            s.push('-');
            push_2(&mut s, m.into());
            if let Some(d) = self.day {
                s.push('-');
                push_2(&mut s, d.into());
            }
        }
        s
    }

    /// The FHIR `dateTime`: a date at its precision when there is no time, else a full
    /// `YYYY-MM-DDThh:mm:ss[.f]±hh:mm` with missing minutes/seconds set to 00 and the value's
    /// own offset, or `default_offset` when it has none (see [`to_fhir_datetime`]).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::datetime::Dtm;
    /// let t = Dtm::parse("2024013112").unwrap();
    /// assert_eq!(t.to_fhir_datetime("Z").as_deref(), Some("2024-01-31T12:00:00Z"));
    /// ```
    pub fn to_fhir_datetime(&self, default_offset: &str) -> Option<String> {
        if self.hour.is_none() {
            return Some(self.to_fhir_date());
        }
        self.to_fhir_instant(default_offset)
    }

    /// The FHIR `instant`: needs at least a day; a missing time is `00:00:00`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::datetime::Dtm;
    /// let t = Dtm::parse("20240131").unwrap();
    /// assert_eq!(t.to_fhir_instant("+01:00").as_deref(), Some("2024-01-31T00:00:00+01:00"));
    /// assert_eq!(Dtm::parse("202401").unwrap().to_fhir_instant("Z"), None);
    /// ```
    pub fn to_fhir_instant(&self, default_offset: &str) -> Option<String> {
        let (month, day) = (self.month?, self.day?);
        let mut s = String::with_capacity(32);
        push_year(&mut s, self.year);
        for (sep, n) in [
            ('-', month),
            ('-', day),
            ('T', self.hour.unwrap_or(0)),
            (':', self.minute.unwrap_or(0)),
            (':', self.second.unwrap_or(0)),
        ] {
            s.push(sep);
            push_2(&mut s, n.into());
        }
        if let Some(f) = self.fraction {
            s.push('.');
            s.push_str(f);
        }
        match self.offset_minutes {
            Some(m) => push_offset(&mut s, m),
            None => s.push_str(&normalize_offset(default_offset)?),
        }
        Some(s)
    }
}

/// HL7 DT/DTM/TS → FHIR `date` (`2024`, `2024-01`, `2024-01-31`); a time part is validated
/// then dropped (no time-zone conversion). `None` when empty or invalid.
///
/// ```
/// use passerelle_plugin_sdk::hl7::datetime::to_fhir_date;
/// assert_eq!(to_fhir_date("2024").as_deref(), Some("2024"));
/// assert_eq!(to_fhir_date("202401").as_deref(), Some("2024-01"));
/// assert_eq!(to_fhir_date("20240131235959").as_deref(), Some("2024-01-31"));
/// assert_eq!(to_fhir_date("20240132"), None);
/// assert_eq!(to_fhir_date(""), None);
/// ```
pub fn to_fhir_date(ts: &str) -> Option<String> {
    Dtm::parse(ts).map(|t| t.to_fhir_date())
}

/// HL7 DTM/TS → FHIR `dateTime`. Up to day precision the result is a date (`2024-01-31`);
/// with a time it is `YYYY-MM-DDThh:mm:ss[.fff]` plus the value's own offset, or else
/// `default_offset`; missing minutes and seconds are `00`, fractional seconds are kept.
///
/// `default_offset` is `"Z"` or `±hh:mm` (`±hhmm` also accepted); when it is needed but
/// malformed the result is `None`.
///
/// ```
/// use passerelle_plugin_sdk::hl7::datetime::to_fhir_datetime;
/// assert_eq!(
///     to_fhir_datetime("20240131123000+0100", "Z").as_deref(),
///     Some("2024-01-31T12:30:00+01:00")
/// );
/// assert_eq!(
///     to_fhir_datetime("20240131123000.1234", "+0100").as_deref(),
///     Some("2024-01-31T12:30:00.1234+01:00")
/// );
/// assert_eq!(to_fhir_datetime("2024013112", "bad"), None);
/// assert_eq!(to_fhir_datetime("20240131", "bad").as_deref(), Some("2024-01-31"));
/// ```
pub fn to_fhir_datetime(ts: &str, default_offset: &str) -> Option<String> {
    Dtm::parse(ts)?.to_fhir_datetime(default_offset)
}

/// HL7 DTM/TS → FHIR `instant` (`YYYY-MM-DDThh:mm:ss[.fff]±hh:mm`). Needs at least the day;
/// a missing time is `00:00:00`; the offset is the value's or `default_offset`.
///
/// ```
/// use passerelle_plugin_sdk::hl7::datetime::to_fhir_instant;
/// assert_eq!(
///     to_fhir_instant("200801311600+0215", "Z").as_deref(),
///     Some("2008-01-31T16:00:00+02:15")
/// );
/// assert_eq!(to_fhir_instant("2008", "Z"), None);
/// ```
pub fn to_fhir_instant(ts: &str, default_offset: &str) -> Option<String> {
    Dtm::parse(ts)?.to_fhir_instant(default_offset)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `+hhmm` / `-hhmm` (or with a colon) → minutes, within FHIR's −13:59…+14:00 (and `-14:00`).
fn parse_offset(s: &str) -> Option<i16> {
    let b = s.as_bytes();
    let (sign, rest) = match b.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => return None,
    };
    let digits: [u8; 4] = match rest {
        [a, b, c, d] => [*a, *b, *c, *d],
        [a, b, b':', c, d] => [*a, *b, *c, *d],
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hh = i16::from((digits[0] - b'0') * 10 + (digits[1] - b'0'));
    let mm = i16::from((digits[2] - b'0') * 10 + (digits[3] - b'0'));
    if mm > 59 || hh > 14 || (hh == 14 && mm != 0) {
        return None;
    }
    Some(sign * (hh * 60 + mm))
}

fn push_offset(s: &mut String, minutes: i16) {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    s.push(sign);
    push_2(s, m / 60);
    s.push(':');
    push_2(s, m % 60);
}

// Digits without `fmt`: its machinery costs ≈ 1.5 k instructions per date-time inside the
// sandbox, and every result has a few.

/// Appends `n` with at least two digits (`{n:02}`).
fn push_2(s: &mut String, n: u16) {
    if n < 100 {
        // Both digits are ASCII.
        s.push(char::from(b'0' + (n / 10) as u8));
        s.push(char::from(b'0' + (n % 10) as u8));
    } else {
        let _ = write!(s, "{n}");
    }
}

/// Appends `year` with at least four digits (`{year:04}`).
fn push_year(s: &mut String, year: u16) {
    if year < 10_000 {
        push_2(s, year / 100);
        push_2(s, year % 100);
    } else {
        let _ = write!(s, "{year}");
    }
}

fn normalize_offset(s: &str) -> Option<String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") {
        return Some("Z".to_owned());
    }
    let minutes = parse_offset(s)?;
    let mut out = String::with_capacity(6);
    push_offset(&mut out, minutes);
    // Keep `-00:00` as written: it is a valid FHIR offset.
    if minutes == 0 && s.starts_with('-') {
        out.replace_range(0..1, "-");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_written_as_fmt_writes_them() {
        for n in [
            0u16,
            1,
            9,
            10,
            59,
            99,
            100,
            255,
            999,
            1000,
            9999,
            10_000,
            u16::MAX,
        ] {
            let mut two = String::new();
            push_2(&mut two, n);
            assert_eq!(two, format!("{n:02}"));
            let mut year = String::new();
            push_year(&mut year, n);
            assert_eq!(year, format!("{n:04}"));
        }
        for m in [-840i16, -61, -1, 0, 1, 59, 60, 330, 840, i16::MIN, i16::MAX] {
            let mut s = String::new();
            push_offset(&mut s, m);
            let sign = if m < 0 { '-' } else { '+' };
            let a = m.unsigned_abs();
            assert_eq!(s, format!("{sign}{:02}:{:02}", a / 60, a % 60), "{m}");
        }
    }

    #[test]
    fn dates_at_each_precision() {
        assert_eq!(to_fhir_date("2024").as_deref(), Some("2024"));
        assert_eq!(to_fhir_date("202402").as_deref(), Some("2024-02"));
        assert_eq!(to_fhir_date("20240229").as_deref(), Some("2024-02-29"));
        assert_eq!(to_fhir_date("20000229").as_deref(), Some("2000-02-29"));
        assert_eq!(to_fhir_date(" 19241010 ").as_deref(), Some("1924-10-10"));
        assert_eq!(
            to_fhir_date("20141006064500+0700").as_deref(),
            Some("2014-10-06")
        );
    }

    #[test]
    fn invalid_values() {
        for v in [
            "",
            "  ",
            "202",
            "20241",
            "202413",
            "202400",
            "20240100",
            "20240431",
            "19000229",
            "2024013124",
            "202401312360",
            "20240131235960",
            "0000",
            "2024a1",
            "abcd",
            "20240131.5",
            "20240131123000.",
            "20240131123000.x",
            "20240131+01",
            "2024+2400",
            "20240131+1430",
            "20240131+0160",
            "20240131120000+01000",
            "2024-01-31",
        ] {
            assert_eq!(Dtm::parse(v), None, "{v:?}");
            assert_eq!(to_fhir_datetime(v, "Z"), None, "{v:?}");
        }
    }

    #[test]
    fn datetimes() {
        let dt = |v, d| to_fhir_datetime(v, d);
        assert_eq!(
            dt("20240131123000+0100", "Z").as_deref(),
            Some("2024-01-31T12:30:00+01:00")
        );
        assert_eq!(
            dt("202401311230", "+01:00").as_deref(),
            Some("2024-01-31T12:30:00+01:00")
        );
        assert_eq!(
            dt("2024013112", "Z").as_deref(),
            Some("2024-01-31T12:00:00Z")
        );
        assert_eq!(
            dt("20240131123456.7", "-05:00").as_deref(),
            Some("2024-01-31T12:34:56.7-05:00")
        );
        assert_eq!(
            dt("20110531140551-0500", "Z").as_deref(),
            Some("2011-05-31T14:05:51-05:00")
        );
        assert_eq!(
            dt("20240131000000+0000", "+01:00").as_deref(),
            Some("2024-01-31T00:00:00+00:00")
        );
        assert_eq!(
            dt("20240131000000-0000", "Z").as_deref(),
            Some("2024-01-31T00:00:00+00:00")
        );
        assert_eq!(
            dt("20240131120000", "-00:00").as_deref(),
            Some("2024-01-31T12:00:00-00:00")
        );
        assert_eq!(
            dt("20240131120000+1400", "Z").as_deref(),
            Some("2024-01-31T12:00:00+14:00")
        );
        assert_eq!(
            dt("20240131120000", "z").as_deref(),
            Some("2024-01-31T12:00:00Z")
        );
        assert_eq!(dt("20240131^D", "Z").as_deref(), Some("2024-01-31"));
        assert_eq!(
            dt("202401311230^M", "Z").as_deref(),
            Some("2024-01-31T12:30:00Z")
        );
        assert_eq!(dt("2024", "Z").as_deref(), Some("2024"));
        assert_eq!(dt("202401", "Z").as_deref(), Some("2024-01"));
        // A date with an offset stays a date.
        assert_eq!(dt("20240131+0100", "Z").as_deref(), Some("2024-01-31"));
        // Default offset needed but malformed.
        for bad in ["", "CET", "+1", "+01:0", "+25:00"] {
            assert_eq!(dt("202401311230", bad), None, "{bad}");
        }
        // ... not needed when the value has its own.
        assert_eq!(
            dt("202401311230+0100", "").as_deref(),
            Some("2024-01-31T12:30:00+01:00")
        );
    }

    #[test]
    fn instants() {
        let i = |v| to_fhir_instant(v, "+01:00");
        assert_eq!(i("20240131").as_deref(), Some("2024-01-31T00:00:00+01:00"));
        assert_eq!(
            i("2024013108").as_deref(),
            Some("2024-01-31T08:00:00+01:00")
        );
        assert_eq!(
            i("20240131083015.123+0200").as_deref(),
            Some("2024-01-31T08:30:15.123+02:00")
        );
        assert_eq!(i("2024"), None);
        assert_eq!(i("202401"), None);
        assert_eq!(i("2024013"), None);
    }
}
