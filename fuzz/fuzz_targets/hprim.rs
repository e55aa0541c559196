//! HPRIM Santé: the `hprim-sante` adapter (reading, record structure, mapping) on arbitrary
//! bytes, as UTF-8/auto and as ISO-8859-1, with and without `accept_truncated`.
#![no_main]

use hprim_sante::{HprimSante, Settings};
use libfuzzer_sys::fuzz_target;
use passerelle_plugin_sdk::prelude::{Adapter, inbound_message};

fuzz_target!(|data: &[u8]| {
    let accept_truncated = data.first().is_some_and(|b| b & 1 == 1);
    for charset in [None, Some("auto")] {
        let settings = Settings {
            charset: charset.map(str::to_string),
            accept_truncated,
            ..Settings::default()
        };
        if let Ok(adapter) = HprimSante::new(settings) {
            let _ = adapter.adapt(&inbound_message(data, "application/x-hprim-sante", "fuzz"));
        }
    }
});
