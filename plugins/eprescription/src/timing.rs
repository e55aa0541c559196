//! When a medication is taken: HL7 v2 TQ1 (and the older TQ of RXE-1/ORC-7) repeat patterns,
//! and the FHIR `Timing` they give. Shared with the CDA mapping: [`when_code`], [`add_days`].

use passerelle_plugin_sdk::fhir::{
    CodeableConcept, Coding, Decimal, Period, Quantity, Timing, TimingRepeat, UnitsOfTime,
};
use passerelle_plugin_sdk::hl7::{Repetition, Segment};

use crate::codes::{self, V2_0335};
use passerelle_plugin_sdk::hl7::fhir::text::{is_uri, sub, trim_cow};

/// FHIR `EventTiming` codes (`Timing.repeat.when`), which HL7 v2 RPT-8 events and the meal
/// related codes of table 0335 use as well.
const EVENT_TIMING: &[&str] = &[
    "MORN",
    "MORN.early",
    "MORN.late",
    "NOON",
    "AFT",
    "AFT.early",
    "AFT.late",
    "EVE",
    "EVE.early",
    "EVE.late",
    "NIGHT",
    "PHS",
    "HS",
    "WAKE",
    "C",
    "CM",
    "CD",
    "CV",
    "AC",
    "ACM",
    "ACD",
    "ACV",
    "PC",
    "PCM",
    "PCD",
    "PCV",
];

/// `code` when it is a FHIR `EventTiming` code.
pub fn when_code(code: &str) -> Option<String> {
    let code = code.trim();
    EVENT_TIMING
        .iter()
        .find(|c| c.eq_ignore_ascii_case(code))
        .map(|c| c.to_string())
}

/// Codes of table 0335 that are codes as such (the others are patterns: `Q<n>H`, `<n>ID`...).
const FIXED_0335: &[&str] = &[
    "BID", "TID", "QID", "QAM", "QSHIFT", "QOD", "QHS", "QPM", "C", "PRN", "Once", "A", "P", "I",
];

/// What a repeat pattern code (table 0335) says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pattern {
    /// The structured repetition (frequency per period, when, days of week, count).
    pub repeat: TimingRepeat,
    /// `PRN` (as needed), alone or with a frequency (`PRNQ6H`, `Q6H PRN`).
    pub as_needed: bool,
    /// Whether the code was understood.
    pub understood: bool,
}

/// Reads a table 0335 repeat pattern: `Q<n>S|M|H|D|W|L` (every n seconds, minutes, hours,
/// days, weeks, months), `Q<n>J<days>` (every n weeks on those days, 1 = Monday), `BID`,
/// `TID`, `QID`, `<n>ID` (n times a day), `QD`, `QOD`, `QAM`, `QPM`, `QHS`, `Once`, `C`
/// (continuous), `PRN` / `PRN<pattern>` / `<pattern> PRN`, and the meal-related codes that
/// are FHIR `EventTiming` codes (`AC`, `PCM`...).
pub fn pattern(code: &str) -> Pattern {
    let raw = code.trim();
    let upper = raw.to_ascii_uppercase();
    let mut p = Pattern::default();
    let mut rest = upper.as_str();
    if let Some(r) = rest.strip_prefix("PRN") {
        p.as_needed = true;
        rest = r.trim();
    } else if let Some(r) = rest.strip_suffix("PRN") {
        p.as_needed = true;
        rest = r.trim();
    }
    let every = |n: u32, period: u32, unit: UnitsOfTime| TimingRepeat {
        frequency: Some(n),
        period: Some(Decimal::from(period)),
        period_unit: Some(unit),
        ..Default::default()
    };
    let daily_when = |when: &str| TimingRepeat {
        when: vec![when.to_string()],
        ..every(1, 1, UnitsOfTime::Day)
    };
    p.understood = true;
    p.repeat = match rest {
        "" => {
            p.understood = p.as_needed;
            TimingRepeat::default()
        }
        "QD" => every(1, 1, UnitsOfTime::Day),
        "BID" => every(2, 1, UnitsOfTime::Day),
        "TID" => every(3, 1, UnitsOfTime::Day),
        "QID" => every(4, 1, UnitsOfTime::Day),
        "QOD" => every(1, 2, UnitsOfTime::Day),
        "QAM" => daily_when("MORN"),
        "QPM" => daily_when("EVE"),
        "QHS" => daily_when("HS"),
        "ONCE" => TimingRepeat {
            count: Some(1),
            ..Default::default()
        },
        // Continuous, or a meal-related prefix whose event comes in RPT-8.
        "C" | "A" | "P" | "I" => TimingRepeat::default(),
        _ => match structured(rest) {
            Some(r) => r,
            None => {
                p.understood = false;
                TimingRepeat::default()
            }
        },
    };
    p
}

/// `Q<n><unit>`, `Q<n>J<days>`, `<n>ID`, or a FHIR EventTiming code.
fn structured(code: &str) -> Option<TimingRepeat> {
    if let Some(w) = when_code(code) {
        return Some(TimingRepeat {
            when: vec![w],
            ..Default::default()
        });
    }
    if let Some(n) = code.strip_suffix("ID") {
        let n: u32 = n.parse().ok().filter(|n| *n > 0)?;
        return Some(TimingRepeat::every(n, Decimal::from(1), UnitsOfTime::Day));
    }
    let rest = code.strip_prefix('Q')?;
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let n: u32 = rest[..digits_end].parse().ok().filter(|n| *n > 0)?;
    let unit = &rest[digits_end..];
    if let Some(days) = unit.strip_prefix('J') {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut day_of_week = Vec::new();
        for d in days.chars() {
            let i = d.to_digit(10).filter(|i| (1..=7).contains(i))?;
            let day = DAYS[i as usize - 1].to_string();
            if !day_of_week.contains(&day) {
                day_of_week.push(day);
            }
        }
        if day_of_week.is_empty() {
            return None;
        }
        return Some(TimingRepeat {
            day_of_week,
            ..TimingRepeat::every(1, Decimal::from(n), UnitsOfTime::Week)
        });
    }
    let unit = match unit {
        "S" => UnitsOfTime::Second,
        "M" => UnitsOfTime::Minute,
        "H" => UnitsOfTime::Hour,
        "D" => UnitsOfTime::Day,
        "W" => UnitsOfTime::Week,
        "L" => UnitsOfTime::Month,
        _ => return None,
    };
    Some(TimingRepeat::every(1, Decimal::from(n), unit))
}

/// A timing specification read from a TQ1 segment or an old-style TQ field.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Spec {
    /// TQ1-1 set id.
    pub sequence: Option<i32>,
    /// Quantity per service (TQ1-2): the dose when RXE-3 gives none.
    pub quantity: Option<Quantity>,
    /// The repeat pattern code as written, and its coding system.
    pub pattern: Option<(String, String, String)>,
    /// RPT-5/6 explicit period.
    pub period: Option<(Decimal, UnitsOfTime)>,
    /// RPT-8 event (`PCM`, `HS`...).
    pub event: Option<String>,
    /// TQ1-4 explicit times (`hh:mm:ss`).
    pub times: Vec<String>,
    /// TQ1-6 service duration: the length of the treatment.
    pub duration: Option<(Decimal, UnitsOfTime)>,
    /// TQ1-14 total occurrences.
    pub count: Option<u32>,
    /// TQ1-7 / TQ1-8 start and end (FHIR dateTime).
    pub start: Option<String>,
    pub end: Option<String>,
    /// TQ1-10 condition text (`si douleur`).
    pub condition: Option<String>,
    /// TQ1-11 text instruction.
    pub text: Option<String>,
}

/// A CQ value (`quantity^units`, units a CWE in subcomponents `code&text&system`).
fn cq(rep: &Repetition<'_>) -> Option<(Decimal, String, String, String)> {
    let value = Decimal::parse(&rep.component(1).value())?;
    let units = rep.component(2);
    Some((
        value,
        sub(&units, 1).into_owned(),
        sub(&units, 2).into_owned(),
        sub(&units, 3).into_owned(),
    ))
}

/// A CQ as a quantity with its unit (UCUM/EDQM when coded so, else text).
fn cq_quantity(rep: &Repetition<'_>) -> Option<Quantity> {
    let (value, code, text, system) = cq(rep)?;
    let shown = if text.is_empty() { &code } else { &text };
    let ucum = !code.is_empty() && system.eq_ignore_ascii_case("UCUM") && is_uri(&code);
    Some(if ucum {
        Quantity::ucum(value, code.clone()).with_display_unit(shown.clone())
    } else if shown.is_empty() {
        Quantity::new(value)
    } else {
        Quantity::with_unit(value, shown.clone())
    })
}

/// A CQ duration (`3^D&day&ISO+`, `17^Hr&ucum`).
fn cq_duration(rep: &Repetition<'_>) -> Option<(Decimal, UnitsOfTime)> {
    let (value, code, text, _) = cq(rep)?;
    let unit = codes::time_unit(&code).or_else(|| codes::time_unit(&text))?;
    Some((value, unit))
}

/// An HL7 TM (`hhmm[ss]`, also seen `hh:mm:ss`) as a FHIR `time`.
fn tm(value: &str) -> Option<String> {
    let digits: String = value
        .trim()
        .split(['+', '-', '.'])
        .next()?
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4 | 6) {
        return None;
    }
    let two = |i: usize| {
        digits
            .get(i..i + 2)
            .map_or(Some(0), |s| s.parse::<u8>().ok())
    };
    let (h, m, s) = (two(0)?, two(2)?, two(4)?);
    (h < 24 && m < 60 && s < 60).then(|| format!("{h:02}:{m:02}:{s:02}"))
}

/// Reads a TQ1 segment; `dt` converts HL7 times to FHIR dateTimes.
pub fn from_tq1(tq1: &Segment<'_>, dt: impl Fn(&str) -> Option<String>) -> Spec {
    let field = |n| tq1.field(n);
    let rpt = field(3).repetition(1);
    let code_comp = rpt.component(1);
    let pattern_code = sub(&code_comp, 1);
    let pattern = (!pattern_code.is_empty()).then(|| {
        (
            pattern_code.into_owned(),
            sub(&code_comp, 2).into_owned(),
            sub(&code_comp, 3).into_owned(),
        )
    });
    let period = Decimal::parse(&rpt.component(5).value())
        .zip(codes::time_unit(&trim_cow(rpt.component(6).value())));
    let event = when_code(&rpt.component(8).value());
    let times = field(4)
        .repetitions()
        .filter_map(|r| tm(&r.value()))
        .collect();
    Spec {
        sequence: field(1).value().trim().parse().ok(),
        quantity: cq_quantity(&field(2).repetition(1)),
        pattern,
        period,
        event,
        times,
        duration: cq_duration(&field(6).repetition(1)),
        count: field(14).value().trim().parse().ok(),
        start: dt(&field(7).value()),
        end: dt(&field(8).value()),
        condition: non_empty(&field(10).text()),
        text: non_empty(&field(11).text()),
    }
}

/// Reads an old-style TQ field (RXE-1, ORC-7: `quantity^interval^duration^start^end^
/// priority^condition^text^...`).
pub fn from_tq(rep: &Repetition<'_>, dt: impl Fn(&str) -> Option<String>) -> Option<Spec> {
    if rep.raw().trim().is_empty() {
        return None;
    }
    let quantity = rep.component(1);
    let quantity = Decimal::parse(&sub(&quantity, 1)).map(|v| {
        let unit = sub(&quantity, 2);
        if unit.is_empty() {
            Quantity::new(v)
        } else {
            Quantity::with_unit(v, unit.into_owned())
        }
    });
    let interval = rep.component(2);
    let code = sub(&interval, 1);
    let times = sub(&interval, 2)
        .split(',')
        .filter_map(tm)
        .collect::<Vec<_>>();
    // Duration: `S10`, `M10`, `H10`, `D10`, `W10`, `L10` (a length) or `X10` (times).
    let duration_text = trim_cow(rep.component(3).value());
    let (mut duration, mut count) = (None, None);
    if let Some((letter, n)) = duration_text
        .char_indices()
        .nth(1)
        .map(|(i, _)| duration_text.split_at(i))
    {
        match (letter, Decimal::parse(n)) {
            ("X", Some(_)) => count = n.trim().parse().ok(),
            (l, Some(v)) => duration = codes::time_unit(l).map(|u| (v, u)),
            _ => {}
        }
    }
    Some(Spec {
        sequence: None,
        quantity,
        pattern: (!code.is_empty()).then(|| (code.into_owned(), String::new(), String::new())),
        period: None,
        event: None,
        times,
        duration,
        count,
        start: dt(&rep.component(4).value()),
        end: dt(&rep.component(5).value()),
        condition: non_empty(&rep.component(7).value()),
        text: non_empty(&rep.component(8).value()),
    })
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The FHIR Timing of a spec, and whether the pattern says "as needed".
pub fn timing(spec: &Spec) -> (Option<Timing>, bool) {
    let mut as_needed = false;
    let mut repeat = TimingRepeat::default();
    let mut code = None;
    if let Some((raw, display, system)) = &spec.pattern {
        let p = pattern(raw);
        as_needed = p.as_needed;
        repeat = p.repeat;
        let fixed = FIXED_0335.iter().find(|c| c.eq_ignore_ascii_case(raw));
        let system = match codes::system_uri(system) {
            Some(s) if !system.eq_ignore_ascii_case("HL70335") => Some(s.into_owned()),
            _ => fixed.map(|_| V2_0335.to_string()),
        };
        let coding = system.map(|s| Coding {
            system: Some(s),
            code: Some(fixed.map_or(raw.clone(), |c| c.to_string())),
            display: (!display.is_empty()).then(|| display.clone()),
            ..Default::default()
        });
        code = Some(CodeableConcept {
            coding: coding.into_iter().collect(),
            text: Some(raw.clone()),
        });
    }
    if let Some((period, unit)) = &spec.period
        && repeat.period.is_none()
    {
        repeat.frequency = Some(repeat.frequency.unwrap_or(1));
        repeat.period = Some(period.clone());
        repeat.period_unit = Some(*unit);
    }
    if let Some(event) = &spec.event
        && !repeat.when.contains(event)
    {
        repeat.when.push(event.clone());
    }
    // FHIR (tim-10): `when` and `timeOfDay` exclude each other; an event (after breakfast...)
    // is kept over explicit times.
    if repeat.when.is_empty() {
        repeat.time_of_day = spec.times.clone();
    }
    if repeat.count.is_none() {
        repeat.count = spec.count;
    }
    bounds(spec, &mut repeat);
    let has_repeat = repeat != TimingRepeat::default();
    let timing = Timing {
        repeat: has_repeat.then_some(repeat),
        code,
        ..Default::default()
    };
    let timing = (timing != Timing::default()).then_some(timing);
    (timing, as_needed)
}

/// `bounds[x]`: start/end as a period (an end computed from the start and a duration in
/// days or weeks), else the duration.
fn bounds(spec: &Spec, repeat: &mut TimingRepeat) {
    let mut end = spec.end.clone();
    if end.is_none()
        && let (Some(start), Some((value, unit))) = (&spec.start, &spec.duration)
    {
        let days = match unit {
            UnitsOfTime::Day => Some(1),
            UnitsOfTime::Week => Some(7),
            _ => None,
        };
        end = days
            .zip(value.as_str().parse::<i64>().ok())
            .and_then(|(d, n)| add_days(start, d * n));
    }
    if spec.start.is_some() || end.is_some() {
        repeat.bounds_period = Some(Period {
            start: spec.start.clone(),
            end,
        });
    } else if let Some((value, unit)) = &spec.duration {
        repeat.bounds_duration = Some(codes::duration(value.clone(), *unit));
    }
}

/// A FHIR date/dateTime moved by `days` (its time and zone kept); `None` without a full date.
///
/// Days-from-civil arithmetic (proleptic Gregorian calendar).
pub fn add_days(datetime: &str, days: i64) -> Option<String> {
    let date = datetime.get(..10)?;
    let b = date.as_bytes();
    if !date.is_ascii() || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = date[..4].parse().ok()?;
    let m: i64 = date[5..7].parse().ok()?;
    let d: i64 = date[8..10].parse().ok()?;
    let n = days_from_civil(y, m, d) + days;
    let (y, m, d) = civil_from_days(n);
    if !(1..=9999).contains(&y) {
        return None;
    }
    Some(format!("{y:04}-{m:02}-{d:02}{}", &datetime[10..]))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
