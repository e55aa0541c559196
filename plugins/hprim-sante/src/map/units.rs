//! OBX-6 units: the French lab spellings and their UCUM codes.

use passerelle_plugin_sdk::fhir::{Decimal, Quantity, systems};

/// Units as written in French lab files → UCUM (exact, case-sensitive: `g/l` is grams, `G/l`
/// giga-cells per litre).
const UCUM_UNITS: &[(&str, &str)] = &[
    ("%", "%"),
    ("g/l", "g/L"),
    ("g/L", "g/L"),
    ("mg/l", "mg/L"),
    ("mg/L", "mg/L"),
    ("mg/dl", "mg/dL"),
    ("mg/dL", "mg/dL"),
    ("g/dl", "g/dL"),
    ("g/dL", "g/dL"),
    ("µg/l", "ug/L"),
    ("µg/L", "ug/L"),
    ("ug/l", "ug/L"),
    ("ug/L", "ug/L"),
    ("ng/ml", "ng/mL"),
    ("ng/mL", "ng/mL"),
    ("ng/l", "ng/L"),
    ("ng/L", "ng/L"),
    ("pg/ml", "pg/mL"),
    ("pg/mL", "pg/mL"),
    ("mmol/l", "mmol/L"),
    ("mmol/L", "mmol/L"),
    ("µmol/l", "umol/L"),
    ("µmol/L", "umol/L"),
    ("umol/l", "umol/L"),
    ("umol/L", "umol/L"),
    ("nmol/l", "nmol/L"),
    ("nmol/L", "nmol/L"),
    ("pmol/l", "pmol/L"),
    ("pmol/L", "pmol/L"),
    ("mEq/l", "meq/L"),
    ("mEq/L", "meq/L"),
    ("meq/l", "meq/L"),
    ("UI/l", "[IU]/L"),
    ("UI/L", "[IU]/L"),
    ("UI/ml", "[IU]/mL"),
    ("UI/mL", "[IU]/mL"),
    ("mUI/l", "m[IU]/L"),
    ("mUI/L", "m[IU]/L"),
    ("mUI/ml", "m[IU]/mL"),
    ("mUI/mL", "m[IU]/mL"),
    ("µUI/ml", "u[IU]/mL"),
    ("µUI/mL", "u[IU]/mL"),
    ("kUI/l", "k[IU]/L"),
    ("kUI/L", "k[IU]/L"),
    ("U/l", "U/L"),
    ("U/L", "U/L"),
    ("U/ml", "U/mL"),
    ("G/l", "10*9/L"),
    ("G/L", "10*9/L"),
    ("T/l", "10*12/L"),
    ("T/L", "10*12/L"),
    ("/mm3", "/mm3"),
    ("/µl", "/uL"),
    ("/µL", "/uL"),
    ("fl", "fL"),
    ("fL", "fL"),
    ("pg", "pg"),
    ("mm/h", "mm/h"),
    ("s", "s"),
    ("sec", "s"),
    ("min", "min"),
    ("mmHg", "mm[Hg]"),
    ("ml/min", "mL/min"),
    ("mL/min", "mL/min"),
    ("mosm/kg", "mosm/kg"),
    ("mOsm/kg", "mosm/kg"),
    ("g/24h", "g/(24.h)"),
    ("mg/24h", "mg/(24.h)"),
    ("mmol/24h", "mmol/(24.h)"),
    ("ml", "mL"),
    ("mL", "mL"),
    ("l", "L"),
    ("L", "L"),
    ("kg", "kg"),
    ("g", "g"),
    ("cm", "cm"),
];

/// An OBX-6 unit: as written, and its UCUM code when known.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Unit {
    pub text: Option<String>,
    pub ucum: Option<&'static str>,
}

impl Unit {
    pub fn read(text: &str) -> Unit {
        let t = text.trim();
        if t.is_empty() {
            return Unit::default();
        }
        // The Greek mu (UTF-8 files) for the micro sign (Latin-1).
        let key = t.replace('\u{3bc}', "\u{b5}");
        Unit {
            text: Some(t.to_string()),
            ucum: UCUM_UNITS.iter().find(|(k, _)| *k == key).map(|(_, u)| *u),
        }
    }

    pub fn quantity(&self, value: Decimal) -> Quantity {
        Quantity {
            value: Some(value),
            comparator: None,
            unit: self.text.clone(),
            system: self.ucum.map(|_| systems::UCUM.to_string()),
            code: self.ucum.map(str::to_string),
        }
    }
}
