//! FHIR R4 builders (in progress).
