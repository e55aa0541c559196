//! HL7 v2: `Message::parse` on arbitrary bytes, then every accessor over the parsed message,
//! and the two HL7 v2 adapters on the same bytes: `hl7v2-lab` (ORU^R01, including the CR-BIO
//! CDA carried base64-encoded in an OBX ED) and `eprescription` (RDE^O11).
//! Parsing may fail; nothing may panic, loop or blow up memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_plugin_sdk::hl7::{Message, datetime};
use passerelle_plugin_sdk::prelude::{Adapter, inbound_message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        walk(&msg);
    }
    // The adapter gets the whole payload; it must turn bad input into an error, not a panic.
    if let Ok(lab) = hl7v2_lab::Hl7v2Lab::new(Default::default()) {
        let _ = lab.adapt(&inbound_message(data, "x-application/hl7-v2+er7", "fuzz"));
    }
    if let Ok(rx) = eprescription::Eprescription::new(Default::default()) {
        let _ = rx.adapt(&inbound_message(data, "application/hl7-v2", "fuzz"));
    }
});

fn walk(msg: &Message) {
    let _ = (msg.message_type(), msg.control_id(), msg.version());
    let _ = format!("{msg:?}");
    for seg in msg.segments() {
        let _ = (seg.name(), seg.location(1, 1), seg.to_string());
        for field in seg.fields() {
            let _ = field.text();
            for rep in field.repetitions() {
                for comp in rep.components() {
                    for sub in comp.subcomponents() {
                        let v = sub.value();
                        let _ = datetime::to_fhir_date(&v);
                        let _ = datetime::to_fhir_datetime(&v, "+01:00");
                        let _ = datetime::to_fhir_instant(&v, "Z");
                        let _ = sub.text();
                    }
                }
            }
        }
    }
    // Paths built from the message's own segment names (and a few odd ones) read real data.
    for seg in msg.segments().take(8) {
        let name = seg.name();
        for path in [
            format!("{name}-3"),
            format!("{name}[2]-5.1"),
            format!("{name}-3(2).4.2"),
            format!("{name}-99999.1"),
        ] {
            let _ = msg.get(&path);
        }
    }
}
