use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use passerelle_plugin_sdk::hl7::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use super::{Harness, PLUGIN, eventually, oru};
use crate::config::{MllpSource, SourceConfig};
use crate::ingest::mllp::codec::{MllpCodec, frame};

pub(super) fn config(
    max_frame_bytes: usize,
    idle_timeout_secs: u64,
    max_connections: usize,
) -> SourceConfig {
    SourceConfig::Mllp(MllpSource {
        plugin: PLUGIN.into(),
        content_type: None,
        charset: None,
        listen: "127.0.0.1:0".into(),
        max_frame_bytes,
        idle_timeout_secs,
        max_connections,
        max_connections_per_peer: 0,
        tls: None,
    })
}

/// A test client: writes frames, reads ACK frames.
struct Client {
    stream: TcpStream,
    codec: MllpCodec,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            codec: MllpCodec::new(1 << 20),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, messages: &[&str]) {
        let mut wire = Vec::new();
        for m in messages {
            wire.extend(frame(m.as_bytes()));
        }
        self.stream.write_all(&wire).await.unwrap();
    }

    /// The next ACK, parsed; panics after 20 s.
    async fn ack(&mut self) -> Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf).unwrap() {
                return Message::parse(&f).unwrap_or_else(|e| {
                    panic!("ACK does not parse: {e}: {:?}", String::from_utf8_lossy(&f))
                });
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .expect("no ACK within 20 s")
                .unwrap();
            assert!(n > 0, "connection closed while waiting for an ACK");
        }
    }

    /// True when the server closes the connection within `within` (EOF or reset).
    async fn closed_within(&mut self, within: Duration) -> bool {
        let mut scratch = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

fn value(msg: &Message, path: &str) -> String {
    msg.get(path).map(|v| v.into_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_messages_in_one_write_get_three_aa_in_order() {
    let h = Harness::new();
    let sources = h.start("lab-mllp", config(1 << 20, 60, 16));
    let addr = sources.addr("lab-mllp").unwrap();
    assert_ne!(addr.port(), 0);

    let mut c = Client::connect(addr).await;
    let ids = ["MSG-A", "MSG-B", "MSG-C"];
    let messages: Vec<String> = ids.iter().map(|id| oru(id)).collect();
    c.send(&messages.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let mut control_ids = Vec::new();
    for id in ids {
        let ack = c.ack().await;
        assert_eq!(value(&ack, "MSA-1"), "AA");
        assert_eq!(value(&ack, "MSA-2"), id, "ACKs come in order");
        assert_eq!(ack.message_type().as_deref(), Some("ACK^R01"));
        assert_eq!(value(&ack, "MSH-9.3"), "ACK");
        // Sender and receiver swapped.
        assert_eq!(value(&ack, "MSH-3"), "DPI");
        assert_eq!(value(&ack, "MSH-4"), "CHU");
        assert_eq!(value(&ack, "MSH-5"), "LAB");
        assert_eq!(ack.msh().field(6).raw(), "LABO^1.2.3^ISO");
        assert_eq!(value(&ack, "MSH-11"), "P");
        assert_eq!(ack.version().as_deref(), Some("2.5"));
        assert_eq!(value(&ack, "MSH-7").len(), 19, "YYYYMMDDHHMMSS+0000");
        assert!(ack.first("ERR").is_none());
        control_ids.push(value(&ack, "MSH-10"));
    }
    control_ids.dedup();
    assert_eq!(control_ids.len(), 3, "each ACK has its own control id");

    // The ACK is only sent after the commit: the journal has them all, now.
    assert_eq!(h.total().await, 3);
    assert_eq!(h.counts().await.get("failed").copied().unwrap_or(0), 0);
    for (i, id) in ids.iter().enumerate() {
        let m = h.message(i as i64 + 1).await;
        assert_eq!(m.source, "lab-mllp");
        assert_eq!(m.source_message_id.as_deref(), Some(*id));
        assert_eq!(m.payload, messages[i].as_bytes());
        assert!(
            m.peer
                .as_deref()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{:?}",
            m.peer
        );
        assert_eq!(m.records.len(), 1);
    }
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_gets_ae_with_err_and_the_connection_stays_usable() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let mut c = Client::connect(sources.addr("m").unwrap()).await;

    let bad = oru("BAD-1").replace("DOE^JOHN", "REJECT");
    c.send(&[&bad]).await;
    let ack = c.ack().await;
    assert_eq!(value(&ack, "MSA-1"), "AE");
    assert_eq!(value(&ack, "MSA-2"), "BAD-1");
    let err = ack.first("ERR").expect("an ERR segment");
    // `line 1` is not a field: segment sequence error, no ERL.
    assert_eq!(err.field(3).raw(), "100^Segment sequence error^HL70357");
    assert_eq!(err.field(4).raw(), "E");
    let text = err.field(8).value();
    assert!(text.contains("malformed input at line 1"), "{text}");
    assert!(text.contains(PLUGIN), "{text}");

    c.send(&[&oru("GOOD-2")]).await;
    let ack = c.ack().await;
    assert_eq!(
        (value(&ack, "MSA-1"), value(&ack, "MSA-2")),
        ("AA".to_string(), "GOOD-2".to_string())
    );

    let counts = h.counts().await;
    assert_eq!(counts.get("failed"), Some(&1));
    assert_eq!(h.total().await, 2);
    let failed = h.message(1).await;
    assert_eq!(failed.payload, bad.as_bytes());
    assert!(failed.error.as_deref().unwrap_or("").contains("line 1"));
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_hl7_payload_gets_ar_and_is_stored_as_failed() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let mut c = Client::connect(sources.addr("m").unwrap()).await;

    c.send(&["this is not HL7 at all"]).await;
    let ack = c.ack().await;
    assert_eq!(value(&ack, "MSA-1"), "AR");
    assert_eq!(value(&ack, "MSA-2"), "");
    assert_eq!(ack.delimiters().to_string(), "|^~\\&");
    let err = ack.first("ERR").expect("an ERR segment");
    assert!(err.field(8).value().contains("not an HL7 v2 message"));

    let m = h.message(1).await;
    assert_eq!(m.status.as_str(), "failed");
    assert!(
        m.error
            .as_deref()
            .unwrap_or("")
            .starts_with("not an HL7 v2 message"),
        "{:?}",
        m.error
    );
    assert_eq!(m.payload, b"this is not HL7 at all");

    // Still usable.
    c.send(&[&oru("AFTER-AR")]).await;
    assert_eq!(value(&c.ack().await, "MSA-1"), "AA");
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_twenty_messages_each() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 64));
    let addr = sources.addr("m").unwrap();
    let mut clients = tokio::task::JoinSet::new();
    for conn in 0..50 {
        clients.spawn(async move {
            let mut c = Client::connect(addr).await;
            for n in 0..20 {
                let id = format!("C{conn}-{n}");
                c.send(&[&oru(&id)]).await;
                let ack = c.ack().await;
                assert_eq!(value(&ack, "MSA-1"), "AA", "{id}");
                assert_eq!(value(&ack, "MSA-2"), id);
            }
        });
    }
    while let Some(r) = clients.join_next().await {
        r.unwrap();
    }
    assert_eq!(h.total().await, 1000);
    assert_eq!(h.counts().await.get("failed").copied().unwrap_or(0), 0);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 2));
    let addr = sources.addr("m").unwrap();
    let mut a = Client::connect(addr).await;
    let mut b = Client::connect(addr).await;
    // Make sure both are accepted before the third.
    a.send(&[&oru("A")]).await;
    a.ack().await;
    b.send(&[&oru("B")]).await;
    b.ack().await;
    let mut third = Client::connect(addr).await;
    assert!(
        third.closed_within(Duration::from_secs(5)).await,
        "the third connection is closed"
    );
    // The first two still work; once one leaves, a new one is served.
    a.send(&[&oru("A2")]).await;
    assert_eq!(value(&a.ack().await, "MSA-1"), "AA");
    drop(b);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut d = Client::connect(addr).await;
        d.send(&[&oru("D")]).await;
        let mut scratch = BytesMut::new();
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(5), d.stream.read_buf(&mut scratch)).await
            && n > 0
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "a slot frees up when a connection closes");
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 1, 16));
    let addr = sources.addr("m").unwrap();
    let mut c = Client::connect(addr).await;
    // Traffic keeps it open past the timeout...
    let started = Instant::now();
    for id in ["I1", "I2", "I3"] {
        tokio::time::sleep(Duration::from_millis(600)).await;
        c.send(&[&oru(id)]).await;
        assert_eq!(value(&c.ack().await, "MSA-1"), "AA");
    }
    assert!(started.elapsed() > Duration::from_millis(1500));
    // ...silence closes it.
    let quiet = Instant::now();
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "idle connection closed"
    );
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_the_connection_without_waiting_for_its_end() {
    let h = Harness::new();
    let sources = h.start("m", config(1024, 60, 16));
    let addr = sources.addr("m").unwrap();
    let mut c = Client::connect(addr).await;
    // A frame start and 4 KiB, no end: the server must not wait for the end.
    let mut wire = vec![0x0B];
    wire.extend(oru("BIG").into_bytes());
    wire.resize(4096, b'x');
    c.stream.write_all(&wire).await.unwrap();
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "connection closed"
    );
    assert_eq!(h.total().await, 0, "nothing stored");

    // A complete oversized frame after a good one: the good one is ACKed, then the close.
    let mut c = Client::connect(addr).await;
    let big = format!(
        "{}{}",
        oru("BIG2"),
        "OBX|2|TX|||".to_string() + &"y".repeat(2000)
    );
    c.send(&[&oru("SMALL"), &big]).await;
    assert_eq!(value(&c.ack().await, "MSA-2"), "SMALL");
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "connection closed"
    );
    assert_eq!(h.total().await, 1);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_closes_connections() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let addr = sources.addr("m").unwrap();
    let mut c = Client::connect(addr).await;
    c.send(&[&oru("S1")]).await;
    assert_eq!(value(&c.ack().await, "MSA-1"), "AA");
    h.shutdown(sources).await;
    assert!(
        c.closed_within(Duration::from_secs(2)).await,
        "open connection closed at shutdown"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    assert!(eventually(Duration::from_secs(1), || async { h.total().await == 1 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_error_is_reported_at_start() {
    let h = Harness::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(1024, 60, 16);
    if let SourceConfig::Mllp(m) = &mut cfg {
        m.listen = taken.local_addr().unwrap().to_string();
    }
    let sources = [("m".to_string(), cfg)].into();
    let err =
        crate::ingest::start_all(&sources, h.pipeline.clone(), h.stop.subscribe()).unwrap_err();
    assert!(format!("{err:#}").contains("cannot listen on"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_messages_already_received() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let mut c = Client::connect(sources.addr("m").unwrap()).await;
    let ids: Vec<String> = (0..20).map(|n| format!("D{n}")).collect();
    let messages: Vec<String> = ids.iter().map(|id| oru(id)).collect();
    c.send(&messages.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    // Shut down as soon as the first one is stored: the rest are already read.
    let journal = h.journal().clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let journal = journal.clone();
            async move {
                journal
                    .count_by_status()
                    .await
                    .unwrap()
                    .values()
                    .sum::<u64>()
                    >= 1
            }
        })
        .await
    );
    h.stop.send_replace(true);
    for id in &ids {
        let ack = c.ack().await;
        assert_eq!(
            (value(&ack, "MSA-1"), value(&ack, "MSA-2")),
            ("AA".to_string(), id.clone())
        );
    }
    assert!(c.closed_within(Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(10), sources.join())
        .await
        .unwrap();
    assert_eq!(h.total().await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_error_sends_no_ack_and_closes_the_connection() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let mut c = Client::connect(sources.addr("m").unwrap()).await;
    h.journal().clone().close().await;
    c.send(&[&oru("LOST")]).await;
    let mut buf = BytesMut::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.stream.read_buf(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no ACK, the connection is closed: {read:?} {buf:?}"
    );
    // Not HL7 either: same rule.
    let mut c = Client::connect(sources.addr("m").unwrap()).await;
    c.send(&["not hl7"]).await;
    assert!(c.closed_within(Duration::from_secs(10)).await);
    h.shutdown(sources).await;
}

fn config_per_peer(max_connections_per_peer: usize) -> SourceConfig {
    let SourceConfig::Mllp(mut c) = config(1 << 20, 60, 16) else {
        unreachable!()
    };
    c.max_connections_per_peer = max_connections_per_peer;
    SourceConfig::Mllp(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_peer_cap_are_closed() {
    let h = Harness::new();
    let sources = h.start("m", config_per_peer(2));
    let addr = sources.addr("m").unwrap();
    let mut a = Client::connect(addr).await;
    let mut b = Client::connect(addr).await;
    a.send(&[&oru("PA")]).await;
    assert_eq!(value(&a.ack().await, "MSA-1"), "AA");
    b.send(&[&oru("PB")]).await;
    assert_eq!(value(&b.ack().await, "MSA-1"), "AA");
    // A third connection from 127.0.0.1 is closed without being read.
    let mut third = Client::connect(addr).await;
    assert!(third.closed_within(Duration::from_secs(5)).await);
    // Once one leaves, the address may connect again.
    drop(b);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut d = Client::connect(addr).await;
        d.send(&[&oru("PD")]).await;
        let mut scratch = BytesMut::new();
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(5), d.stream.read_buf(&mut scratch)).await
            && n > 0
        {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the address gets a place back when one of its connections closes"
    );
    h.shutdown(sources).await;
}

/// Caps the journal file at its current size (the next message does not fit).
pub(super) async fn fill_the_disk(h: &Harness) {
    let pages = h.journal().page_count().await;
    h.journal()
        .exec_on_writer(&format!("PRAGMA max_page_count = {pages}"))
        .await
        .unwrap();
}

/// A message too big for the remaining room of a full journal.
pub(super) fn big_oru(id: &str) -> String {
    format!("{}\rNTE|1||{}\r", oru(id), "x".repeat(64 * 1024))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_withholds_the_ack_and_intake_resumes_when_space_returns() {
    let h = Harness::new();
    let sources = h.start("m", config(1 << 20, 60, 16));
    let addr = sources.addr("m").unwrap();
    let mut c = Client::connect(addr).await;
    c.send(&[&oru("FIRST")]).await;
    assert_eq!(value(&c.ack().await, "MSA-1"), "AA");
    fill_the_disk(&h).await;
    c.send(&[&big_oru("FULL")]).await;
    assert!(
        c.closed_within(Duration::from_secs(10)).await,
        "no ACK: the connection is closed"
    );
    assert_eq!(h.total().await, 1);
    // Space is back: the sender's resend (new connection) is stored and acknowledged.
    h.journal()
        .exec_on_writer("PRAGMA max_page_count = 1000000")
        .await
        .unwrap();
    let mut c = Client::connect(addr).await;
    c.send(&[&big_oru("FULL")]).await;
    assert_eq!(value(&c.ack().await, "MSA-1"), "AA");
    assert_eq!(h.total().await, 2);
    h.shutdown(sources).await;
}
