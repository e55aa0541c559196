//! A local HTTP server that records every request and answers as told.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    /// The status answered (0 until answered).
    pub(super) status: u16,
}

impl Hit {
    pub(super) fn record_id(&self) -> String {
        self.headers["x-passerelle-record-id"]
            .to_str()
            .unwrap()
            .to_string()
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: String,
    pub(super) delay: Duration,
}

impl Reply {
    pub(super) fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
}

/// Decides the answer to a request, given it and the requests seen before it.
type Responder = dyn Fn(&Hit, &[Hit]) -> Reply + Send + Sync;

pub(super) struct TestServer {
    pub(super) url: String,
    pub(super) hits: Arc<Mutex<Vec<Hit>>>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub(super) async fn start(
        responder: impl Fn(&Hit, &[Hit]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/fhir", listener.local_addr().unwrap());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let responder: Arc<Responder> = Arc::new(responder);
        let task = {
            let hits = hits.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let hits = hits.clone();
                    let responder = responder.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let hits = hits.clone();
                            let responder = responder.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes().to_vec();
                                let hit = Hit {
                                    headers: parts.headers,
                                    body,
                                    status: 0,
                                };
                                let (index, reply) = {
                                    let mut all = hits.lock().unwrap();
                                    let reply = responder(&hit, &all);
                                    all.push(hit);
                                    (all.len() - 1, reply)
                                };
                                tokio::time::sleep(reply.delay).await;
                                hits.lock().unwrap()[index].status = reply.status;
                                let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                                *resp.status_mut() = reply.status.try_into().unwrap();
                                for (k, v) in reply.headers {
                                    resp.headers_mut().insert(k, v.parse().unwrap());
                                }
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        TestServer { url, hits, task }
    }

    pub(super) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Record ids answered with a 2xx, in answer order of arrival.
    pub(super) fn accepted(&self) -> Vec<String> {
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(Hit::record_id)
            .collect()
    }
}
