//! CDA readers: the SDK's `cda::Document` and the CDA adapters on arbitrary bytes:
//! `dcc-oncology` (Fiche RCP), `eprescription` (eP-MED-DM), and `hl7v2-lab`'s CR-BIO reader
//! (the bytes base64-encoded in the OBX ED of an ORU^R01, as the ANS volet carries them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_plugin_sdk::cda;
use passerelle_plugin_sdk::prelude::{Adapter, inbound_message};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = cda::utf8(data)
        && let Ok(doc) = cda::Document::parse(text)
    {
        let root = doc.root();
        let _ = cda::narrative_text(root);
        for node in cda::descendants(root, "id").into_iter().take(64) {
            let _ = cda::ii(node).map(|ii| (ii.system(), ii.value(), ii.key()));
        }
        for node in cda::descendants(root, "code").into_iter().take(64) {
            let cd = cda::cd(node);
            let _ = (cd.to_codeable_concept(), cda::location(node));
        }
    }
    let message = inbound_message(data, "application/hl7-cda+xml", "fuzz");
    if let Ok(dcc) = dcc_oncology::DccOncology::new(()) {
        let _ = dcc.adapt(&message);
    }
    if let Ok(rx) = eprescription::Eprescription::new(Default::default()) {
        let _ = rx.adapt(&message);
    }
    if let Ok(lab) = hl7v2_lab::Hl7v2Lab::new(Default::default()) {
        let oru = format!("{ORU_HEAD}{}{ORU_TAIL}", base64(data));
        let _ = lab.adapt(&inbound_message(
            oru.as_bytes(),
            "x-application/hl7-v2+er7",
            "fuzz",
        ));
    }
});

/// The ANS CR-BIO transmission (ORU^R01) up to the CDA's base64 text in OBX-5.
const ORU_HEAD: &str = "MSH|^~\\&|SIL|labo|PFI|org|202106060931||ORU^R01^ORU_R01|015|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r\
PID|||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||PAT^DOMINIQUE||19790328|F\r\
OBR|1|98765431^Nephro|1001-E1^labo|11502-2^CR d'examens biologiques^LN|||202106060710|||||||||^BLUE^Eva^^^DR|||||||||F\r\
OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^";
const ORU_TAIL: &str = "||||||F|\r\
OBX|2|CE|MASQUE_PS^Masque aux PS^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F|\r";

/// Standard base64 with padding (RFC 4648), small enough not to need a crate here.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
