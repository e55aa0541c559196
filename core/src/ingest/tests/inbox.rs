use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Harness, PLUGIN, eventually, oru};
use crate::config::{InboxSource, SourceConfig};
use crate::ingest::inbox::{FAILED, PROCESSED};

fn config(dir: &Path, settle_ms: u64) -> SourceConfig {
    SourceConfig::Inbox(InboxSource {
        plugin: PLUGIN.into(),
        content_type: None,
        charset: None,
        dir: dir.to_path_buf(),
        settle_ms,
        extensions: vec![".hl7".into(), ".ER7".into()],
    })
}

async fn appears(path: PathBuf, within: Duration) -> bool {
    eventually(within, || {
        let path = path.clone();
        async move { path.exists() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_in_place_settle_then_move_to_processed_or_failed() {
    let h = Harness::new();
    let dir = h.tmp.path().join("inbox");
    // Present at start, with a name already taken in processed/.
    std::fs::create_dir_all(dir.join(PROCESSED)).unwrap();
    std::fs::write(dir.join(PROCESSED).join("early.hl7"), "older").unwrap();
    std::fs::write(dir.join("early.hl7"), oru("EARLY")).unwrap();
    // Ignored: hidden, temporary, partial, other extension, sub-folder.
    for ignored in [".hidden.hl7", "x.tmp", "y.part", "notes.txt"] {
        std::fs::write(dir.join(ignored), oru("IGNORED")).unwrap();
    }
    std::fs::create_dir_all(dir.join("sub.hl7")).unwrap();

    let sources = h.start("lab-inbox", config(&dir, 400));
    assert_eq!(
        sources.list()[0].endpoint,
        crate::ingest::Endpoint::Dir(dir.clone())
    );
    assert!(dir.join(FAILED).is_dir());

    // Written in place, in two chunks with a pause shorter than the settle time.
    let content = oru("SLOW");
    let (first, second) = content.split_at(30);
    let mut f = std::fs::File::create(dir.join("slow.HL7")).unwrap();
    f.write_all(first.as_bytes()).unwrap();
    f.sync_all().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        dir.join("slow.HL7").exists(),
        "not taken while being written"
    );
    f.write_all(second.as_bytes()).unwrap();
    drop(f);

    std::fs::write(dir.join("bad.er7"), "MSH|^~\\&|REJECT").unwrap();

    assert!(
        appears(
            dir.join(PROCESSED).join("slow.HL7"),
            Duration::from_secs(10)
        )
        .await,
        "slow.HL7 processed"
    );
    assert!(
        appears(
            dir.join(PROCESSED).join("early-1.hl7"),
            Duration::from_secs(10)
        )
        .await,
        "early.hl7 taken, with a suffix"
    );
    assert!(
        appears(dir.join(FAILED).join("bad.er7"), Duration::from_secs(10)).await,
        "bad.er7 failed"
    );
    assert!(
        !dir.join("slow.HL7").exists()
            && !dir.join("early.hl7").exists()
            && !dir.join("bad.er7").exists()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(PROCESSED).join("early.hl7")).unwrap(),
        "older",
        "no overwrite"
    );
    let note =
        std::fs::read_to_string(dir.join(FAILED).join("bad.er7.error.txt")).expect("error note");
    assert!(note.contains("malformed input at line 1"), "{note}");

    let messages = h.messages().await;
    assert_eq!(
        messages.len(),
        3,
        "{:?}",
        messages.iter().map(|m| &m.peer).collect::<Vec<_>>()
    );
    let slow = messages
        .iter()
        .find(|m| m.peer.as_deref() == Some("file:slow.HL7"))
        .expect("slow stored");
    assert_eq!(
        slow.payload,
        content.as_bytes(),
        "taken whole, once complete"
    );
    assert_eq!(slow.source, "lab-inbox");
    let bad = messages
        .iter()
        .find(|m| m.peer.as_deref() == Some("file:bad.er7"))
        .unwrap();
    assert_eq!(bad.status.as_str(), "failed");
    assert!(note.contains(&format!("message id: {}", bad.id)));

    // The ignored files stay, and are never stored.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for ignored in [".hidden.hl7", "x.tmp", "y.part", "notes.txt"] {
        assert!(dir.join(ignored).exists(), "{ignored} left alone");
    }
    assert_eq!(h.total().await, 3);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_renamed_in_is_taken_without_waiting_to_settle() {
    let h = Harness::new();
    let dir = h.tmp.path().join("inbox");
    let outside = h.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A long settle time: only the rename can make it quick.
    let sources = h.start("i", config(&dir, 5_000));
    tokio::time::sleep(Duration::from_millis(100)).await;

    std::fs::write(outside.join("moved.hl7"), oru("MOVED")).unwrap();
    let started = Instant::now();
    std::fs::rename(outside.join("moved.hl7"), dir.join("moved.hl7")).unwrap();
    // And the usual write-then-rename inside the folder.
    std::fs::write(dir.join("inner.tmp"), oru("INNER")).unwrap();
    std::fs::rename(dir.join("inner.tmp"), dir.join("inner.hl7")).unwrap();

    assert!(
        appears(
            dir.join(PROCESSED).join("moved.hl7"),
            Duration::from_secs(10)
        )
        .await
    );
    assert!(
        appears(
            dir.join(PROCESSED).join("inner.hl7"),
            Duration::from_secs(10)
        )
        .await
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "renamed files are taken at once, not after settling: {took:?}"
    );
    let ids: Vec<_> = h
        .messages()
        .await
        .into_iter()
        .filter_map(|m| m.source_message_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"MOVED".to_string()) && ids.contains(&"INNER".to_string()));
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_error_leaves_the_file_in_place() {
    let h = Harness::new();
    let dir = h.tmp.path().join("inbox");
    let sources = h.start("i", config(&dir, 100));
    h.journal().clone().close().await;
    std::fs::write(dir.join("kept.hl7"), oru("KEPT")).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(dir.join("kept.hl7").exists(), "left in place for a retry");
    assert_eq!(std::fs::read_dir(dir.join(PROCESSED)).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(dir.join(FAILED)).unwrap().count(), 0);
    h.shutdown(sources).await;
}
