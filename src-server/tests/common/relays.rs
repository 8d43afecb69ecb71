//! Parts of the relay tests that stand in for the world: a relay that tampers with what it passes on,
//! and a load balancer in front of relays.

use std::net::IpAddr;

use lectern::tls::Identity;
use serde_json::{Value, json};

/// How a tampering relay changes what it passes on.
#[derive(Clone, Copy, Debug)]
pub enum Tamper {
    /// Every patch's page is changed.
    Alter,
    /// The first patch is sent again right after it, renumbered to look like the next one.
    Replay,
    /// Each pair of patches is sent in the wrong order.
    Reorder,
    /// After the first patch, the welcome's older (signed) state is sent again as a `sync`.
    Rewind,
    /// After the first patch, the relay says in its own name that the teacher is away.
    SayTeacherAway,
}

/// A relay built for the test: it sits between a student and the real relay at `upstream` and
/// tampers with the teacher's patches. Returns its URL and certificate fingerprint.
pub async fn tampering_relay(upstream: String, upstream_fp: String, how: Tamper) -> (String, String) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let fingerprint = identity.fingerprint();
    let tls = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(identity.server_config(false).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://127.0.0.1:{}/v1/ws", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tls, upstream, upstream_fp) = (tls.clone(), upstream.clone(), upstream_fp.clone());
            tokio::spawn(async move {
                let stream = tls.accept(tcp).await.unwrap();
                #[allow(clippy::result_large_err)] // tungstenite's callback type
                let pick = |_: &Request, mut res: Response| {
                    res.headers_mut().insert("sec-websocket-protocol", "lectern.v1".parse().unwrap());
                    Ok(res)
                };
                let down = tokio_tungstenite::accept_hdr_async(stream, pick).await.unwrap();
                let up = lectern::client::connect(&upstream, &upstream_fp).await.unwrap();
                let (mut down_tx, mut down_rx) = down.split();
                let (mut up_tx, mut up_rx) = up.split();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = down_rx.next().await {
                        if up_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let mut first: Option<Value> = None;
                let mut welcome: Option<Value> = None;
                let mut held: Option<Message> = None;
                let mut patches = 0;
                while let Some(Ok(m)) = up_rx.next().await {
                    let mut out = vec![m.clone()];
                    if let Message::Text(t) = &m
                        && let Ok(v) = serde_json::from_str::<Value>(t)
                        && v["t"] == "welcome"
                    {
                        welcome = Some(v);
                    }
                    if let Message::Text(t) = &m
                        && let Ok(mut v) = serde_json::from_str::<Value>(t)
                        && v["t"] == "patch"
                    {
                        patches += 1;
                        out = match how {
                            Tamper::Alter => {
                                if let Some(p) = v["patch"]["page"].as_u64() {
                                    v["patch"]["page"] = json!(p + 1);
                                }
                                vec![Message::text(v.to_string())]
                            }
                            Tamper::Replay => {
                                let seq = v["seq"].as_u64().unwrap();
                                let mut again = vec![m.clone()];
                                let f = first.get_or_insert_with(|| v.clone()).clone();
                                if patches == 1 {
                                    let mut f = f;
                                    f["seq"] = json!(seq + 1);
                                    again.push(Message::text(f.to_string()));
                                }
                                again
                            }
                            Tamper::Rewind => {
                                let mut out = vec![m.clone()];
                                if let (1, Some(w)) = (patches, &welcome) {
                                    let sync = json!({"t":"sync","seq":w["seq"],"state":w["state"],"signed":w["signed"]});
                                    out.push(Message::text(sync.to_string()));
                                }
                                out
                            }
                            Tamper::SayTeacherAway => {
                                let mut out = vec![m.clone()];
                                if patches == 1 {
                                    out.push(Message::text(
                                        json!({"t":"teacher","online":false}).to_string(),
                                    ));
                                }
                                out
                            }
                            Tamper::Reorder => match held.take() {
                                None => {
                                    held = Some(m.clone());
                                    vec![]
                                }
                                Some(h) => vec![m.clone(), h],
                            },
                        };
                    }
                    for m in out {
                        if down_tx.send(m).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, fingerprint)
}

/// A TCP load balancer for the test: each connection goes to the first of `backends` that accepts it.
pub async fn load_balancer(backends: Vec<std::net::SocketAddr>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let backends = backends.clone();
            tokio::spawn(async move {
                for b in backends {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(b).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A real `lectern relay` process on the Redis at `url`, saying it is alive every `alive_ms`:
/// the process, its WebSocket URL and its certificate fingerprint.
pub fn relay_process(url: &str, alive_ms: u64) -> (super::ServeProcess, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["relay", "--json", "--listen", "127.0.0.1:0", "--redis", url])
        .args(["--alive-ms", &alive_ms.to_string()])
        .env("LECTERN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn lectern relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("ready line");
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
    let ws = format!("wss://{}/v1/ws", ready["addr"].as_str().expect("addr"));
    (super::ServeProcess(Some(child)), ws, ready["fingerprint"].as_str().expect("fingerprint").to_string())
}

/// A TCP proxy to one backend that the test can cut (every connection through it drops, and new
/// ones are refused) and mend: a network that fails between a relay and Redis only.
pub struct CutProxy {
    /// The port to connect to instead of the backend's.
    pub port: u16,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl CutProxy {
    /// A proxy to `backend`, open.
    pub async fn start(backend: std::net::SocketAddr) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(tokio::sync::watch::Sender::new(true));
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue; // dropped: refused
                }
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        CutProxy { port, open }
    }

    /// Drops every connection through it and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.open.send_replace(true);
    }
}
