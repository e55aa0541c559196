//! A minimal HTTP/1.1 receiver for HTTP destinations: answers 503 with `Retry-After` (or
//! another [`Refusal`]) while down, 200 otherwise, and counts accepted POSTs per
//! `Idempotency-Key` (the record id), so a test sees both lost and repeated deliveries.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the receiver answers while down.
#[derive(Clone, Copy, Default)]
pub enum Refusal {
    /// 503 with `Retry-After: 1`.
    #[default]
    RetryAfter,
    /// 503 saying nothing of when to retry: the sender's own back-off decides.
    Unavailable,
    /// 400, which a sender must not retry (the record goes to the dead letters at once).
    BadRequest,
}

impl Refusal {
    fn response(self) -> &'static str {
        match self {
            Refusal::RetryAfter => {
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
            }
            Refusal::Unavailable => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            Refusal::BadRequest => "HTTP/1.1 400 Bad Request\r\ncontent-length: 7\r\n\r\nrefused",
        }
    }
}

/// The receiver's shared state; clone the `Arc` to flip `down` from the test.
#[derive(Default)]
pub struct Webhook {
    pub down: AtomicBool,
    /// Requests refused.
    pub refused: AtomicU64,
    accepted: Mutex<HashMap<String, u32>>,
    refusal: Refusal,
}

impl Webhook {
    /// Starts listening on a free loopback port; returns the state and the port. While down it
    /// answers 503 with `Retry-After: 1`.
    pub fn start(down: bool) -> std::io::Result<(Arc<Webhook>, u16)> {
        Self::start_with(down, Refusal::RetryAfter)
    }

    /// The same, answering `refusal` while down.
    pub fn start_with(down: bool, refusal: Refusal) -> std::io::Result<(Arc<Webhook>, u16)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let hook = Arc::new(Webhook {
            down: AtomicBool::new(down),
            refusal,
            ..Webhook::default()
        });
        let state = Arc::clone(&hook);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(&state, stream));
            }
        });
        Ok((hook, port))
    }

    /// Accepted POSTs per idempotency key.
    pub fn accepted(&self) -> HashMap<String, u32> {
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Distinct keys accepted so far.
    pub fn distinct(&self) -> usize {
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// One keep-alive connection: request line, headers, body, answer; until the peer closes.
fn serve(state: &Webhook, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut len, mut key) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "idempotency-key" => key = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let resp = if state.down.load(Ordering::SeqCst) {
            state.refused.fetch_add(1, Ordering::Relaxed);
            state.refusal.response()
        } else {
            *state
                .accepted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_insert(0) += 1;
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        };
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
