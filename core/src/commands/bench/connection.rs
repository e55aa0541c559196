//! One MLLP connection of a run: closed loop (one message outstanding) or open loop (paced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::messages::{Plan, read_frame};
use super::stats::Stats;

pub(super) struct Settings {
    pub(super) plan: Arc<Plan>,
    pub(super) target: SocketAddr,
    pub(super) ack_timeout: Duration,
    /// No message is sent after this.
    pub(super) deadline: Instant,
}

/// Closed loop: messages `next..total` (shared counter), one outstanding per connection.
pub(super) async fn closed_connection(
    s: Arc<Settings>,
    mut stream: Option<TcpStream>,
    next: Arc<AtomicU64>,
    total: u64,
) -> Stats {
    let mut st = Stats::new();
    let mut buf = Vec::with_capacity(8192);
    let mut failures = 0;
    loop {
        if Instant::now() >= s.deadline {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let conn = match stream.as_mut() {
            Some(c) => c,
            None => match connect(s.target).await {
                Ok(c) => stream.insert(c),
                Err(e) => {
                    st.error(format!("connecting to {}: {e}", s.target));
                    st.not_sent += 1;
                    failures += 1;
                    if failures >= 3 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let frame = s.plan.frame(i);
        let sent = Instant::now();
        st.sent += 1;
        let (mut read, mut write) = conn.split();
        let result = async {
            write.write_all(&frame).await?;
            match tokio::time::timeout(s.ack_timeout, read_frame(&mut read, &mut buf)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no ACK within --ack-timeout",
                )),
            }
        }
        .await;
        match result {
            Ok(ack) => {
                failures = 0;
                st.ack(&s.plan, i, &ack, sent, sent);
            }
            Err(e) => {
                st.errors += 1;
                st.unknown.push(i);
                st.error(format!("message {}: {e}", s.plan.control_id(i)));
                stream = None;
                buf.clear();
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
    }
    st
}

/// One message written on an open-loop connection, waiting for its ACK.
struct InFlight {
    pub(super) i: u64,
    pub(super) scheduled: Instant,
    pub(super) sent: Instant,
}

/// Open loop: messages `c, c + n, c + 2n, ...` below `total`, message `i` written at
/// `start + i / rate`, ACKs read by a separate task in order.
pub(super) async fn open_connection(
    s: Arc<Settings>,
    stream: TcpStream,
    c: u64,
    n: u64,
    total: u64,
    rate: f64,
    start: Instant,
) -> Stats {
    let (read, mut write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<InFlight>();
    let reader = tokio::spawn(open_reader(Arc::clone(&s), read, rx));
    let mut not_sent = 0;
    let mut write_error = None;
    let mut i = c;
    while i < total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        if scheduled >= s.deadline || write_error.is_some() || tx.is_closed() {
            not_sent += 1;
            i += n;
            continue;
        }
        tokio::time::sleep_until(scheduled).await;
        let frame = s.plan.frame(i);
        let sent = Instant::now();
        if tx.send(InFlight { i, scheduled, sent }).is_err() {
            not_sent += 1;
        } else if let Err(e) = write.write_all(&frame).await {
            write_error = Some(format!("writing message {}: {e}", s.plan.control_id(i)));
        }
        i += n;
    }
    drop(tx);
    let mut st = match reader.await {
        Ok(st) => st,
        Err(e) => {
            let mut st = Stats::new();
            st.error(format!("reader task failed: {e}"));
            st
        }
    };
    st.not_sent += not_sent;
    if let Some(e) = write_error {
        st.error(e);
    }
    let _ = write.shutdown().await;
    st
}

async fn open_reader(
    s: Arc<Settings>,
    mut read: OwnedReadHalf,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
) -> Stats {
    let mut st = Stats::new();
    let mut buf = Vec::with_capacity(8192);
    while let Some(m) = rx.recv().await {
        st.sent += 1;
        match tokio::time::timeout(s.ack_timeout, read_frame(&mut read, &mut buf)).await {
            Ok(Ok(ack)) => st.ack(&s.plan, m.i, &ack, m.scheduled, m.sent),
            failed => {
                let e = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no ACK within --ack-timeout".to_string(),
                };
                st.error(format!("message {}: {e}", s.plan.control_id(m.i)));
                st.errors += 1;
                st.unknown.push(m.i);
                // Everything still in flight on this connection is lost to us; the writer sees
                // the closed channel and stops.
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    st.sent += 1;
                    st.errors += 1;
                    st.unknown.push(m.i);
                }
                break;
            }
        }
    }
    st
}

pub(super) async fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
