//! A small MLLP client and an ORU^R01 generator for the load-style tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One MLLP connection.
pub struct MllpClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl MllpClient {
    pub fn connect(port: u16) -> std::io::Result<MllpClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(MllpClient {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends one message, waits for its ACK, returns the ACK text.
    pub fn send(&mut self, message: &str) -> std::io::Result<String> {
        let mut frame = Vec::with_capacity(message.len() + 3);
        frame.push(0x0b);
        frame.extend_from_slice(message.as_bytes());
        frame.extend_from_slice(&[0x1c, 0x0d]);
        self.stream.write_all(&frame)?;
        self.read_frame()
    }

    fn read_frame(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                let start = self
                    .buf
                    .iter()
                    .position(|&b| b == 0x0b)
                    .map(|s| s + 1)
                    .unwrap_or(0);
                let ack = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(ack);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// MSA-1 and MSA-2 of an ACK.
pub fn msa(ack: &str) -> (String, String) {
    let msa = ack
        .split(['\r', '\n'])
        .find(|l| l.starts_with("MSA"))
        .unwrap_or("");
    let f: Vec<&str> = msa.split('|').collect();
    (
        f.get(1).unwrap_or(&"").to_string(),
        f.get(2).unwrap_or(&"").to_string(),
    )
}

/// A 5-OBX ORU^R01 with control id `id` for patient number `patient`.
pub fn oru(id: &str, patient: u32) -> String {
    [
        format!("MSH|^~\\&|LAB|HOSP|PASSERELLE|DMP|20240131123000+0100||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|UNICODE UTF-8"),
        format!("PID|||IPP{patient}^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI||DOE^JOHN||19700101|M"),
        format!("OBR|1|ORD{id}|FIL{id}|24317-0^Hemogram^LN|||20240131120000+0100||||||||||||||||||F"),
        "OBX|1|NM|718-7^Hemoglobin^LN||13.4|g/dL^g/dL^UCUM|13-18|N|||F|||20240131120000+0100".to_string(),
        "OBX|2|NM|6690-2^Leukocytes^LN||8.2|10*3/uL^10*3/uL^UCUM|4-10|N|||F|||20240131120000+0100".to_string(),
        "OBX|3|NM|789-8^Erythrocytes^LN||4.08|10*6/uL^10*6/uL^UCUM|4.2-5.4|L|||F|||20240131120000+0100".to_string(),
        "OBX|4|NM|4544-3^Hematocrit^LN||39.7|%^%^UCUM|37-47|N|||F|||20240131120000+0100".to_string(),
        "OBX|5|NM|777-3^Platelets^LN||220|10*3/uL^10*3/uL^UCUM|150-400|N|||F|||20240131120000+0100".to_string(),
    ]
    .join("\r")
}
