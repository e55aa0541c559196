//! The messages a run sends (ORU^R01, unique MSH-10) and the ACKs it reads.

use tokio::io::{AsyncRead, AsyncReadExt};

const OBX_TEMPLATES: [&str; 5] = [
    "NM|718-7^Hemoglobin^LN||13.4|g/dL^g/dL^UCUM|13-18|N|||F|||20240131120000+0100",
    "NM|6690-2^Leukocytes^LN||8.2|10*3/uL^10*3/uL^UCUM|4-10|N|||F|||20240131120000+0100",
    "NM|789-8^Erythrocytes^LN||4.08|10*6/uL^10*6/uL^UCUM|4.2-5.4|L|||F|||20240131120000+0100",
    "NM|4544-3^Hematocrit^LN||39.7|%^%^UCUM|37-47|N|||F|||20240131120000+0100",
    "NM|777-3^Platelets^LN||220|10*3/uL^10*3/uL^UCUM|150-400|N|||F|||20240131120000+0100",
];

/// How the messages of a run are made.
pub(super) struct Plan {
    pub(super) prefix: String,
    pub(super) obx: usize,
    pub(super) patients: u32,
    /// PID-3 also holds the patient's INS-NIR.
    pub(super) ins: bool,
}

impl Plan {
    pub(super) fn control_id(&self, i: u64) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The MLLP frame of message `i`: an ORU^R01 with one OBR and `obx` OBX.
    pub(super) fn frame(&self, i: u64) -> Vec<u8> {
        use std::fmt::Write as _;
        let id = self.control_id(i);
        let patient = (i % u64::from(self.patients.max(1))) as u32;
        let ins = if self.ins {
            format!(
                "{}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS~",
                nir(patient)
            )
        } else {
            String::new()
        };
        let mut m = String::with_capacity(400 + self.obx * 90);
        m.push('\x0b');
        let _ = write!(
            m,
            "MSH|^~\\&|LAB|HOSP|PASSERELLE|DMP|20240131123000+0100||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|UNICODE UTF-8\r\
             PID|||{ins}IPP{patient}^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI||DOE^JOHN||19700101|M\r\
             OBR|1|ORD{id}|FIL{id}|24317-0^Hemogram^LN|||20240131120000+0100||||||||||||||||||F"
        );
        for k in 0..self.obx {
            let _ = write!(
                m,
                "\rOBX|{}|{}",
                k + 1,
                OBX_TEMPLATES[k % OBX_TEMPLATES.len()]
            );
        }
        m.push_str("\x1c\r");
        m.into_bytes()
    }
}

/// A well-formed NIR (13 digits and their key, 97 − NIR mod 97) for bench patient `patient`:
/// a man (1) born in January 1980 (8001) in Paris (75056), whose birth-register number is
/// the patient's.
fn nir(patient: u32) -> String {
    let base = 1_800_175_056_000u64 + u64::from(patient % 1000);
    format!("{base}{:02}", 97 - base % 97)
}

/// Reads one MLLP frame into `buf` (which keeps what follows it); returns its content.
pub(super) async fn read_frame<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
            let start = buf[..end]
                .iter()
                .position(|&b| b == 0x0b)
                .map_or(0, |s| s + 1);
            let frame = buf[start..end].to_vec();
            buf.drain(..end + 2);
            return Ok(frame);
        }
        let n = read.read_buf(buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by the daemon",
            ));
        }
    }
}

/// MSA-1 and MSA-2 of an ACK.
pub(super) fn msa(ack: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(ack);
    let line = text
        .split(['\r', '\n'])
        .find(|l| l.starts_with("MSA"))
        .unwrap_or("");
    let mut f = line.split('|').skip(1);
    (
        f.next().unwrap_or("").to_string(),
        f.next().unwrap_or("").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unique_and_sized() {
        let plan = Plan {
            prefix: "T-".into(),
            obx: 3,
            patients: 2,
            ins: false,
        };
        let f = String::from_utf8(plan.frame(7)).unwrap();
        assert!(f.starts_with('\x0b') && f.ends_with("\x1c\r"));
        assert!(f.contains("|T-7|P|2.5|"));
        assert!(f.contains("IPP1^"));
        assert_eq!(f.matches("\rOBX|").count(), 3);
        assert!(f.contains("\rOBX|3|NM|789-8"));
        assert!(!f.contains("INS"));
        let with_ins = Plan { ins: true, ..plan };
        let f = String::from_utf8(with_ins.frame(7)).unwrap();
        assert!(
            f.contains("|||180017505600103^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS~IPP1^")
        );
    }

    #[test]
    fn msa_fields() {
        let ack = b"MSH|^~\\&|A|B|C|D|x||ACK^R01^ACK|1|P|2.5\rMSA|AE|T-1|bad";
        assert_eq!(msa(ack), ("AE".to_string(), "T-1".to_string()));
    }
}
