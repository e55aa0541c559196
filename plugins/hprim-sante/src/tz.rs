//! HPRIM dates (`YYYYMMDD[HHMM[SS]]`, no time zone) → FHIR `date` / `dateTime` / `instant`.
//!
//! FHIR needs an offset on every time; HPRIM times are local. The `default_timezone` setting
//! is either a fixed offset (`+01:00`, `-04:00`, `Z`) or `Europe/Paris` (the default): French
//! legal time, +01:00 in winter and +02:00 in summer (EU rule: from the last Sunday of March,
//! 02:00 local, to the last Sunday of October, 03:00 local; last Sunday of September for
//! 1981–1995; no summer time before 1981, an approximation for 1976–1980). A local time in the
//! spring-forward gap is read as +01:00, one in the autumn overlap as +02:00 (its first
//! occurrence).

use passerelle_plugin_sdk::hl7::datetime::{Dtm, to_fhir_date};

/// How local times get their offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tz {
    /// A fixed offset (`+01:00`, `Z`).
    Fixed(String),
    /// French legal time.
    Paris,
}

impl Tz {
    /// `Europe/Paris` (any case) or a fixed offset accepted by the SDK (`Z`, `±hh:mm`, `±hhmm`).
    pub fn parse(text: &str) -> Option<Tz> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("Europe/Paris") {
            return Some(Tz::Paris);
        }
        // Let the SDK validate the offset on a sample time.
        Dtm::parse("202001011200")?.to_fhir_datetime(t)?;
        Some(Tz::Fixed(t.to_string()))
    }

    /// The offset to give a local time (`+01:00`).
    fn offset_for(&self, t: &Dtm<'_>) -> String {
        match self {
            Tz::Fixed(s) => s.clone(),
            Tz::Paris => {
                let summer = is_paris_summer(
                    t.year,
                    t.month.unwrap_or(1),
                    t.day.unwrap_or(1),
                    t.hour.unwrap_or(0),
                );
                if summer { "+02:00" } else { "+01:00" }.to_string()
            }
        }
    }

    /// FHIR `dateTime`: a date stays a date; a time gets seconds and an offset. `None` when
    /// empty or not a valid HPRIM date.
    pub fn datetime(&self, value: &str) -> Option<String> {
        let t = Dtm::parse(value)?;
        if t.hour.is_none() {
            return Some(t.to_fhir_date());
        }
        t.to_fhir_datetime(&self.offset_for(&t))
    }

    /// FHIR `instant` (needs at least a day; a missing time is midnight).
    pub fn instant(&self, value: &str) -> Option<String> {
        let t = Dtm::parse(value)?;
        t.to_fhir_instant(&self.offset_for(&t))
    }
}

/// FHIR `date` of an HPRIM date (birth dates).
pub fn date(value: &str) -> Option<String> {
    to_fhir_date(value)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Day of the month of the last Sunday of a month.
fn last_sunday(year: u16, month: u8) -> u8 {
    let days = match month {
        4 | 6 | 9 | 11 => 30,
        // Only March, September and October are asked for.
        2 => 28,
        _ => 31,
    };
    let y = i64::from(year);
    // 1970-01-01 was a Thursday: weekday 0 = Sunday.
    let weekday = (days_from_civil(y, i64::from(month), i64::from(days)) + 4).rem_euclid(7);
    days - weekday as u8
}

/// Whether a French local time is in summer time (see the module docs).
fn is_paris_summer(year: u16, month: u8, day: u8, hour: u8) -> bool {
    if year < 1981 {
        return false;
    }
    let end_month = if year >= 1996 { 10 } else { 9 };
    let start_day = last_sunday(year, 3);
    let end_day = last_sunday(year, end_month);
    let after_start = match month.cmp(&3) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        // The gap 02:00–02:59 counts as winter.
        std::cmp::Ordering::Equal => day > start_day || (day == start_day && hour >= 3),
    };
    let before_end = match month.cmp(&end_month) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        // The overlap 02:00–02:59 counts as summer (first occurrence).
        std::cmp::Ordering::Equal => day < end_day || (day == end_day && hour < 3),
    };
    after_start && before_end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_sundays() {
        assert_eq!(last_sunday(2024, 3), 31);
        assert_eq!(last_sunday(2024, 10), 27);
        assert_eq!(last_sunday(2012, 3), 25);
        assert_eq!(last_sunday(2012, 10), 28);
        assert_eq!(last_sunday(1995, 9), 24);
        assert_eq!(last_sunday(2025, 3), 30);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn paris_offsets() {
        let p = Tz::Paris;
        assert_eq!(
            p.datetime("201204292059").as_deref(),
            Some("2012-04-29T20:59:00+02:00")
        );
        assert_eq!(
            p.datetime("20120115083000").as_deref(),
            Some("2012-01-15T08:30:00+01:00")
        );
        // Around the 2024 switches (31 March, 27 October).
        assert_eq!(
            p.datetime("202403310159").as_deref(),
            Some("2024-03-31T01:59:00+01:00")
        );
        assert_eq!(
            p.datetime("202403310230").as_deref(),
            Some("2024-03-31T02:30:00+01:00")
        );
        assert_eq!(
            p.datetime("202403310300").as_deref(),
            Some("2024-03-31T03:00:00+02:00")
        );
        assert_eq!(
            p.datetime("202410270230").as_deref(),
            Some("2024-10-27T02:30:00+02:00")
        );
        assert_eq!(
            p.datetime("202410270300").as_deref(),
            Some("2024-10-27T03:00:00+01:00")
        );
        assert_eq!(
            p.datetime("199509300900").as_deref(),
            Some("1995-09-30T09:00:00+01:00")
        );
        assert_eq!(
            p.datetime("197507010900").as_deref(),
            Some("1975-07-01T09:00:00+01:00")
        );
        assert_eq!(p.datetime("20120429").as_deref(), Some("2012-04-29"));
        assert_eq!(
            p.instant("20120429").as_deref(),
            Some("2012-04-29T00:00:00+02:00")
        );
        assert_eq!(p.datetime("2012042"), None);
        assert_eq!(p.datetime("20121345"), None);
        assert_eq!(p.datetime(""), None);
    }

    #[test]
    fn fixed_offsets() {
        let t = Tz::parse("-04:00").unwrap();
        assert_eq!(
            t.datetime("201207011200").as_deref(),
            Some("2012-07-01T12:00:00-04:00")
        );
        assert_eq!(Tz::parse("Z"), Some(Tz::Fixed("Z".into())));
        assert_eq!(Tz::parse(" europe/paris "), Some(Tz::Paris));
        assert_eq!(Tz::parse("CET"), None);
        assert_eq!(Tz::parse("+25:00"), None);
        assert_eq!(Tz::parse(""), None);
    }
}
