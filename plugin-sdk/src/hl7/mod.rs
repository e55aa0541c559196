//! HL7 v2 toolkit (in progress).
