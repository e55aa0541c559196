//! The results of a CR-BIO body: every lab section's entries, walked through their acts,
//! batteries, isolates and specimen collection procedures.

use passerelle_plugin_sdk::cda::{
    self, CdaError, Document, Node, attr, cd, child, children, ii, ivl_ts, location, null_flavor,
    ts,
};
use passerelle_plugin_sdk::fhir::{
    Annotation, Bundle, CodeableConcept, Observation, ObservationStatus, Reference, Specimen,
    SpecimenCollection,
};

use super::values;

/// Deepest nesting of acts/organizers followed (the CR-BIO templates use 4 at most).
const MAX_DEPTH: usize = 32;

/// LOINC of the "Copie du document" section (the embedded PDF): not results.
const PDF_COPY_SECTION: &str = "55108-5";

/// How the document's OBX-11 overrides the CDA's own statuses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusMode {
    /// OBX-11 `F`/`P`...: the CDA's `statusCode`.
    AsWritten,
    /// OBX-11 `C`: a replacement document; completed results are `corrected`.
    Replacement,
    /// OBX-11 `D`: the document is withdrawn; every result is `entered-in-error`.
    Deletion,
}

/// What the body gives to the record's Bundle.
#[derive(Default)]
pub struct Extracted {
    /// Top-level results for `DiagnosticReport.result` (panels hold their members).
    pub results: Vec<Reference>,
    /// Specimens (collections and isolates) for `DiagnosticReport.specimen`.
    pub specimens: Vec<Reference>,
    /// The status of every Observation made.
    pub statuses: Vec<ObservationStatus>,
    /// How many Observations carry a value (the results proper).
    pub valued: usize,
}

/// Builds the resources into a Bundle.
pub struct Walker<'b> {
    pub bundle: &'b mut Bundle,
    pub subject: Reference,
    pub encounter: Option<Reference>,
    /// Bundle key prefix (the OBX), so that two documents never share keys.
    pub key: String,
    /// Effective time of results without one (the report's).
    pub default_effective: Option<String>,
    pub mode: StatusMode,
    pub out: Extracted,
}

impl Walker<'_> {
    /// Walks every lab section (all but the PDF copy) of the document.
    pub fn document(&mut self, doc: &Document) -> Result<(), CdaError> {
        for section in doc.all_sections() {
            if section.has_loinc(PDF_COPY_SECTION) {
                continue;
            }
            // Every element of an entry (`Section::entries` would stop at a templateId).
            for entry in children(section.node, "entry") {
                for statement in entry.children().filter(|c| c.is_element()) {
                    let refs = self.statement(statement, None, 0)?;
                    self.out.results.extend(refs);
                }
            }
        }
        Ok(())
    }

    fn key(&self, node: Node) -> String {
        format!("{}{}", self.key, location(node))
    }

    /// One clinical statement; returns the results it gives at its level.
    fn statement(
        &mut self,
        node: Node,
        specimen: Option<Reference>,
        depth: usize,
    ) -> Result<Vec<Reference>, CdaError> {
        if depth > MAX_DEPTH {
            return Err(CdaError::at(
                node,
                format!("entries nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let name = node.tag_name().name();
        if node.tag_name().namespace() != Some(cda::HL7_V3) {
            return Ok(Vec::new());
        }
        match name {
            "observation" => Ok(vec![self.observation(node, specimen)?]),
            "organizer" => self.organizer(node, specimen, depth),
            "act" => self.act(node, specimen, depth),
            "procedure" => {
                self.collection(node);
                Ok(Vec::new())
            }
            // substanceAdministration, encounter...: not lab results.
            _ => Ok(Vec::new()),
        }
    }

    /// An act (the "Laboratory Report Data Processing Entry" or a nested one): its specimen
    /// collection procedures first (the first one is the default specimen of the act's
    /// results), then its other entry relationships. A comment act (no relationships) gives
    /// nothing.
    fn act(
        &mut self,
        node: Node,
        specimen: Option<Reference>,
        depth: usize,
    ) -> Result<Vec<Reference>, CdaError> {
        let related: Vec<Node> = children(node, "entryRelationship")
            .flat_map(|r| r.children().filter(|c| c.is_element()))
            .collect();
        let mut specimen = specimen;
        for n in &related {
            if cda::is(*n, "procedure") {
                let r = self.collection(*n);
                if specimen.is_none() {
                    specimen = Some(r);
                }
            }
        }
        let mut out = Vec::new();
        for n in related {
            if !cda::is(n, "procedure") {
                out.extend(self.statement(n, specimen.clone(), depth + 1)?);
            }
        }
        Ok(out)
    }

    /// An organizer: a battery (a panel Observation with its members when it is coded) or a
    /// cluster (an isolate when it has a `specimen`: its results refer to the isolate).
    fn organizer(
        &mut self,
        node: Node,
        specimen: Option<Reference>,
        depth: usize,
    ) -> Result<Vec<Reference>, CdaError> {
        let specimen = match child(node, "specimen").and_then(|s| child(s, "specimenRole")) {
            Some(role) => Some(self.isolate(role)),
            None => specimen,
        };
        let mut members = Vec::new();
        for component in children(node, "component") {
            for n in component.children().filter(|c| c.is_element()) {
                members.extend(self.statement(n, specimen.clone(), depth + 1)?);
            }
        }
        let code = child(node, "code").and_then(|c| cd(c).to_codeable_concept());
        let is_battery = node.attribute("classCode") == Some("BATTERY");
        match code {
            Some(code) if is_battery && !members.is_empty() => {
                let status = self.status(node);
                let panel = Observation {
                    category: vec![Observation::laboratory_category()],
                    subject: Some(self.subject.clone()),
                    encounter: self.encounter.clone(),
                    effective_date_time: self.effective(node),
                    specimen,
                    has_member: members,
                    ..Observation::new(status, code)
                };
                self.out.statuses.push(status);
                let key = self.key(node);
                Ok(vec![self.bundle.add_keyed(&key, panel)])
            }
            _ => Ok(members),
        }
    }

    /// A result observation.
    fn observation(
        &mut self,
        node: Node,
        specimen: Option<Reference>,
    ) -> Result<Reference, CdaError> {
        let code_node = child(node, "code").ok_or_else(|| CdaError::missing(node, "code"))?;
        let code = cd(code_node).to_codeable_concept().ok_or_else(|| {
            CdaError::at(
                code_node,
                "a result needs a code, a translation or an original text",
            )
        })?;
        let value_node = child(node, "value");
        let value = value_node.map(values::value).transpose()?.flatten();
        let data_absent_reason = match (&value, value_node.and_then(null_flavor)) {
            (None, Some(nf)) => Some(Observation::data_absent(absent_reason(nf))),
            _ => None,
        };
        let mut reference_range = Vec::new();
        for r in children(node, "referenceRange") {
            reference_range.extend(values::reference_range(r)?);
        }
        let status = self.status(node);
        let valued = value.is_some();
        let observation = Observation {
            category: vec![Observation::laboratory_category()],
            subject: Some(self.subject.clone()),
            encounter: self.encounter.clone(),
            effective_date_time: self.effective(node),
            value,
            data_absent_reason,
            interpretation: children(node, "interpretationCode")
                .filter_map(|c| cd(c).to_codeable_concept())
                .collect(),
            method: child(node, "methodCode").and_then(|c| cd(c).to_codeable_concept()),
            specimen,
            reference_range,
            note: child(node, "text")
                .and_then(cda::text_of)
                .map(Annotation::new)
                .into_iter()
                .collect(),
            ..Observation::new(status, code)
        };
        self.out.statuses.push(status);
        if valued {
            self.out.valued += 1;
        }
        let key = self.key(node);
        Ok(self.bundle.add_keyed(&key, observation))
    }

    /// The status of a result: the CDA `statusCode` (completed → final, active → preliminary,
    /// aborted/cancelled → cancelled), then the OBX-11 override.
    fn status(&self, node: Node) -> ObservationStatus {
        let written = child(node, "statusCode")
            .and_then(|s| attr(s, "code"))
            .unwrap_or_default();
        let own = match written.as_str() {
            "active" | "new" | "held" => ObservationStatus::Preliminary,
            "aborted" | "cancelled" => ObservationStatus::Cancelled,
            "nullified" => ObservationStatus::EnteredInError,
            _ => ObservationStatus::Final,
        };
        match (self.mode, own) {
            (StatusMode::Deletion, _) => ObservationStatus::EnteredInError,
            (StatusMode::Replacement, ObservationStatus::Final) => ObservationStatus::Corrected,
            _ => own,
        }
    }

    /// `effectiveTime` (a TS, or an IVL_TS's start, else its end), else the report's.
    fn effective(&self, node: Node) -> Option<String> {
        child(node, "effectiveTime")
            .and_then(|t| ts(t).or_else(|| ivl_ts(t).and_then(|p| p.start.or(p.end))))
            .or_else(|| self.default_effective.clone())
    }

    /// A specimen collection procedure → Specimen: type = the collected material
    /// (`participant[PRD]/participantRole/playingEntity/code`), identifier = the role's id,
    /// collection time = `effectiveTime`, collection method = the procedure's code (NABM),
    /// received time = the `SPRECEIVE` act's time.
    fn collection(&mut self, node: Node) -> Reference {
        let role = children(node, "participant")
            .filter(|p| matches!(p.attribute("typeCode"), Some("PRD") | None))
            .find_map(|p| child(p, "participantRole"));
        let received = children(node, "entryRelationship")
            .filter_map(|r| child(r, "act"))
            .find(|a| child(*a, "code").and_then(|c| c.attribute("code")) == Some("SPRECEIVE"))
            .and_then(|a| child(a, "effectiveTime"))
            .and_then(ts);
        let collected = child(node, "effectiveTime")
            .and_then(|t| ts(t).or_else(|| ivl_ts(t).and_then(|p| p.start.or(p.end))));
        let method = child(node, "code").and_then(|c| cd(c).to_codeable_concept());
        let specimen = Specimen {
            identifier: role
                .into_iter()
                .flat_map(|r| children(r, "id"))
                .filter_map(ii)
                .map(|i| i.to_identifier())
                .collect(),
            type_: role
                .and_then(|r| child(r, "playingEntity"))
                .and_then(|e| child(e, "code"))
                .and_then(|c| cd(c).to_codeable_concept()),
            subject: Some(self.subject.clone()),
            received_time: received,
            collection: (collected.is_some() || method.is_some()).then(|| SpecimenCollection {
                collected_date_time: collected,
                method,
                ..Default::default()
            }),
            ..Specimen::new()
        };
        let key = self.key(node);
        let r = self.bundle.add_keyed(&key, specimen);
        self.out.specimens.push(r.clone());
        r
    }

    /// An isolate (`organizer/specimen/specimenRole`): a Specimen whose type is the
    /// micro-organism (`specimenPlayingEntity/code`).
    fn isolate(&mut self, role: Node) -> Reference {
        let organism: Option<CodeableConcept> = child(role, "specimenPlayingEntity")
            .and_then(|e| child(e, "code"))
            .and_then(|c| cd(c).to_codeable_concept());
        let specimen = Specimen {
            identifier: children(role, "id")
                .filter_map(ii)
                .map(|i| i.to_identifier())
                .collect(),
            type_: organism,
            subject: Some(self.subject.clone()),
            note: vec![Annotation::new("Isolat (micro-organisme identifié)")],
            ..Specimen::new()
        };
        let key = self.key(role);
        let r = self.bundle.add_keyed(&key, specimen);
        self.out.specimens.push(r.clone());
        r
    }
}

/// A CDA `nullFlavor` → FHIR data-absent-reason.
fn absent_reason(null_flavor: &str) -> &'static str {
    match null_flavor {
        "ASKU" => "asked-unknown",
        "NAV" => "temp-unknown",
        "NASK" => "not-asked",
        "MSK" => "masked",
        "NA" => "not-applicable",
        "NAN" | "NINF" | "PINF" => "not-a-number",
        _ => "unknown",
    }
}
