//! HTTP/1 serving shared by the three servers of the daemon — the HTTP source, the admin API
//! and the record store API: the accept loop, one connection (TLS handshake when configured,
//! header-read timeout, graceful shutdown) and the 401 answer to a request without a valid
//! bearer token.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ingest::stopped;
use crate::ingest::tls::TlsAcceptor;

/// Accepts connections until `shutdown` turns `true`, each served by the task `serve` returns
/// for it (`None`: refused, the stream is dropped); then stops accepting and waits for those
/// tasks, so that requests in progress finish. `server` names the server in the logs.
///
/// An accept error (e.g. no file descriptor left) is logged and retried 100 ms later rather
/// than ending the server.
pub(crate) async fn accept_until_shutdown<F, Fut>(
    server: &str,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => reap(server, done),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if let Some(task) = serve(stream, peer) {
                        connections.spawn(task);
                    }
                }
                Err(e) => {
                    tracing::warn!(server, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(
        server,
        open = connections.len(),
        "stopped accepting; finishing open connections"
    );
    while let Some(done) = connections.join_next().await {
        reap(server, done);
    }
    tracing::info!(server, "stopped");
}

fn reap(server: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(server, error = %e, "connection task failed");
    }
}

/// Serves one HTTP/1 connection with `handle` — after the TLS handshake when `tls` is given
/// (a failed one drops the connection) — until the client closes it, a request head takes
/// longer than `header_timeout` to arrive, or `shutdown` (the request in progress, if any,
/// finishes first). `server` names the server in the logs.
pub(crate) async fn serve_connection<H, Fut>(
    server: &str,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<&TlsAcceptor>,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send,
{
    match tls {
        None => serve_http1(server, stream, peer, header_timeout, shutdown, handle).await,
        Some(tls) => {
            if let Some(stream) = tls.accept(stream, peer, &mut shutdown).await {
                serve_http1(server, stream, peer, header_timeout, shutdown, handle).await;
            }
        }
    }
}

async fn serve_http1<S, H, Fut>(
    server: &str,
    stream: S,
    peer: SocketAddr,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send,
{
    let service = service_fn(move |req| {
        let reply = handle(req);
        async move { Ok::<_, Infallible>(reply.await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(server, peer = %peer, error = %e, "connection error");
    }
}

/// 401 for a request without a valid bearer token: `response` (the server's own error body)
/// with the `WWW-Authenticate` header `challenge` (e.g. `Bearer realm="passerelle"`), and the
/// connection closed — the request's body, if any, is left unread.
pub(crate) fn unauthorized(
    mut response: Response<Full<Bytes>>,
    challenge: &'static str,
) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const WITHIN: Duration = Duration::from_secs(10);

    async fn ok(_req: Request<Incoming>) -> Response<Full<Bytes>> {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    }

    /// Everything the server sends until it closes the connection.
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(WITHIN, stream.read_to_end(&mut out))
            .await
            .expect("the server closes the connection")
            .ok();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A server whose first connection is refused and the others served with `ok`.
    async fn start() -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        let seen = Arc::new(AtomicUsize::new(0));
        let for_connections = shutdown.clone();
        let task = tokio::spawn(async move {
            accept_until_shutdown("test", listener, shutdown, move |stream, peer| {
                if seen.fetch_add(1, Ordering::Relaxed) == 0 {
                    return None;
                }
                Some(serve_connection(
                    "test",
                    stream,
                    peer,
                    None,
                    Duration::from_millis(300),
                    for_connections.clone(),
                    ok,
                ))
            })
            .await
        });
        (addr, stop, task)
    }

    #[tokio::test]
    async fn refused_connections_are_closed_and_the_others_served() {
        let (addr, stop, task) = start().await;
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert_eq!(read_to_close(&mut refused).await, "");
        let mut served = TcpStream::connect(addr).await.unwrap();
        served
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let reply = read_to_close(&mut served).await;
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("ok"), "{reply}");
        stop.send(true).unwrap();
        tokio::time::timeout(WITHIN, task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_request_head_that_never_ends_is_cut_off() {
        let (addr, _stop, _task) = start().await;
        drop(TcpStream::connect(addr).await.unwrap()); // the refused first one
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        // Closed after the 300 ms header timeout, long before the test's own limit.
        let reply = read_to_close(&mut slow).await;
        assert!(!reply.contains("200 OK"), "{reply}");
    }

    #[tokio::test]
    async fn shutdown_lets_a_request_in_progress_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        // The handler answers once `release` fires.
        let (release_tx, release) = tokio::sync::oneshot::channel::<()>();
        let release = Arc::new(tokio::sync::Mutex::new(Some(release)));
        let for_connections = shutdown.clone();
        let task = tokio::spawn(accept_until_shutdown(
            "test",
            listener,
            shutdown,
            move |stream, peer| {
                let release = release.clone();
                let slow = move |_req: Request<Incoming>| {
                    let release = release.clone();
                    async move {
                        if let Some(wait) = release.lock().await.take() {
                            let _ = wait.await;
                        }
                        Response::new(Full::new(Bytes::from_static(b"late")))
                    }
                };
                Some(serve_connection(
                    "test",
                    stream,
                    peer,
                    None,
                    WITHIN,
                    for_connections.clone(),
                    slow,
                ))
            },
        ));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !task.is_finished(),
            "the server waits for the request in progress"
        );
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no new connection once stopping"
        );
        release_tx.send(()).unwrap();
        let reply = read_to_close(&mut client).await;
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("late"), "{reply}");
        tokio::time::timeout(WITHIN, task).await.unwrap().unwrap();
    }

    #[test]
    fn unauthorized_challenges_and_closes() {
        let r = unauthorized(Response::new(Full::new(Bytes::new())), "Bearer realm=\"x\"");
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer realm=\"x\"");
        assert_eq!(r.headers()[CONNECTION], "close");
    }
}
