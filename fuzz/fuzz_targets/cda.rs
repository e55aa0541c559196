//! CDA readers: the SDK's `cda::Document` and the two CDA adapters (`dcc-oncology` Fiche RCP,
//! `eprescription` eP-MED-DM) on arbitrary bytes.
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
});
