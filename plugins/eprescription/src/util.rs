//! Small text helpers of this adapter (the HL7 ones are in
//! `passerelle_plugin_sdk::hl7::fhir::text`).

/// Joins the non-empty texts with `sep`; `None` when there is none.
pub fn join_texts<I, S>(texts: I, sep: &str) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for t in texts {
        let t = t.as_ref().trim();
        if t.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(t);
    }
    (!out.is_empty()).then_some(out)
}
