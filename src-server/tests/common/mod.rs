//! Shared helpers for the integration tests: a real server on a loopback port 0 with its own temporary
//! data directory and certificate, stopped when dropped, and a raw client that speaks the protocol frame
//! by frame so tests can observe exactly what the server sends, close codes included.
#![allow(dead_code)]

pub mod books;
pub mod netns;
pub mod redis;
pub mod relays;
pub mod remote;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lectern::client::Socket;
use lectern::config::{Config, Limits, Timing};
use lectern::protocol::{ClientMsg, Hello};
use lectern::server::Server;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The join code every test server uses.
pub const CODE: &str = "482913";

/// How long a test waits for something that should happen promptly before it fails (never a sleep:
/// the wait ends as soon as the event arrives).
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The configuration every test server uses: its own data directory, the fixed join code, no mDNS.
pub fn test_config(dir: &std::path::Path, limits: Limits, timing: Timing) -> Config {
    let mut config = Config {
        data_dir: Some(dir.to_path_buf()),
        code: Some(CODE.into()),
        limits,
        timing,
        ..Config::default()
    };
    config.mdns.disabled = true;
    config
}

/// A `hello` of protocol version 1 with nothing else set.
pub fn hello() -> Hello {
    Hello { v: Some(lectern::protocol::VERSION.into()), ..Hello::default() }
}

/// The value of one Prometheus sample (`name{labels}`), or 0 when it is absent.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

/// A running server with its data directory.
pub struct TestServer {
    pub handle: Option<Server>,
    pub dir: tempfile::TempDir,
    pub ws: String,
    pub http: String,
    pub fingerprint: String,
    pub teacher_key: String,
}

impl TestServer {
    /// A server with default limits.
    pub async fn start() -> TestServer {
        TestServer::with(|_, _| {}).await
    }

    /// A server whose limits and timing `tweak` adjusts.
    pub async fn with(tweak: impl FnOnce(&mut Limits, &mut Timing)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        TestServer::in_dir(dir, tweak, "127.0.0.1:0").await
    }

    /// A server on a given data directory and address (restarts).
    pub async fn in_dir(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut Limits, &mut Timing),
        listen: &str,
    ) -> TestServer {
        let mut limits = Limits::default();
        let mut timing = Timing::default();
        tweak(&mut limits, &mut timing);
        let config = test_config(dir.path(), limits, timing);
        TestServer::from_config(dir, config, listen).await
    }

    /// A server with this configuration (its data directory is `dir`).
    pub async fn from_config(dir: tempfile::TempDir, config: Config, listen: &str) -> TestServer {
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        let handle = Server::start(&config, listener).expect("start");
        let fingerprint = handle.ready().fingerprint.clone();
        let teacher_key = handle.ready().teacher_key.clone();
        let port = handle.addr().port();
        TestServer {
            handle: Some(handle),
            dir,
            ws: format!("wss://127.0.0.1:{port}/v1/ws"),
            http: format!("https://127.0.0.1:{port}"),
            fingerprint,
            teacher_key,
        }
    }

    pub fn port(&self) -> u16 {
        self.handle.as_ref().map(|h| h.addr().port()).unwrap_or(0)
    }

    pub fn app(&self) -> &lectern::server::AppState {
        self.handle.as_ref().expect("running").app()
    }

    /// Shuts down and waits; returns the data directory for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.wait_stopped().await;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// A raw connection (no hello yet).
    pub async fn raw(&self) -> Raw {
        Raw { ws: lectern::client::connect(&self.ws, &self.fingerprint).await.expect("connect") }
    }

    /// A raw connection from another host: a source address of the loopback range (127.0.0.0/8 is
    /// all this machine's, so `127.0.0.N` stands for the N-th device on the network).
    pub async fn raw_from(&self, host: u8) -> Raw {
        Raw { ws: connect_from(host, &self.ws, &self.fingerprint).await }
    }

    /// A student that said hello and got its welcome.
    pub async fn student(&self, name: &str, device: &str) -> (Raw, Value) {
        let mut raw = self.raw().await;
        let hello = Hello {
            role: Some("student".into()),
            code: Some(CODE.into()),
            name: Some(name.into()),
            device: Some(device.into()),
            ..hello()
        };
        raw.send_msg(&ClientMsg::Hello(hello)).await;
        let welcome = raw.recv_type("welcome").await;
        (raw, welcome)
    }

    /// A teacher that said hello and got its welcome.
    pub async fn teacher(&self) -> (Raw, Value) {
        let mut raw = self.raw().await;
        let hello = Hello {
            role: Some("teacher".into()),
            key: Some(self.teacher_key.clone()),
            device: Some("teacher-device".into()),
            ..hello()
        };
        raw.send_msg(&ClientMsg::Hello(hello)).await;
        let welcome = raw.recv_type("welcome").await;
        (raw, welcome)
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.app().host.metrics.render()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.shutdown();
        }
    }
}

/// What a raw connection saw when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// The connection ended with no close frame.
    Dropped(String),
}

/// A frame-level client.
pub struct Raw {
    pub ws: Socket,
}

impl Raw {
    /// Sends a typed frame.
    pub async fn send_msg(&mut self, msg: &ClientMsg) {
        self.send_text(&serde_json::to_string(msg).expect("frames serialize")).await;
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_string())).await.expect("send");
    }

    /// The next text frame as JSON; panics on close or after PATIENCE.
    pub async fn recv(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("connection open")
                .expect("frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON from server"),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Skips frames until one of type `t` (within PATIENCE overall).
    pub async fn recv_type(&mut self, t: &str) -> Value {
        let wanted = async {
            loop {
                let v = self.recv().await;
                if v["t"] == t {
                    return v;
                }
            }
        };
        tokio::time::timeout(PATIENCE, wanted).await.unwrap_or_else(|_| panic!("no {t:?} frame in time"))
    }

    /// Reads until the connection ends; returns the close code and every text frame before it.
    pub async fn until_end(&mut self) -> (End, Vec<Value>) {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next =
                tokio::time::timeout_at(deadline, self.ws.next()).await.expect("the connection ends in time");
            match next {
                None => return (End::Dropped("eof".into()), frames),
                Some(Err(e)) => return (End::Dropped(e.to_string()), frames),
                Some(Ok(Message::Close(Some(c)))) => {
                    return (End::Close(u16::from(c.code), c.reason.to_string()), frames);
                }
                Some(Ok(Message::Close(None))) => return (End::Dropped("close without code".into()), frames),
                Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).expect("JSON")),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The close code the server ends this connection with.
    pub async fn close_code(&mut self) -> u16 {
        match self.until_end().await.0 {
            End::Close(code, _) => code,
            End::Dropped(why) => panic!("connection dropped without a close frame: {why}"),
        }
    }
}

/// A TCP connection to `url`'s port on 127.0.0.1 from 127.0.0.`host`.
pub async fn tcp_from(host: u8, url: &str) -> tokio::net::TcpStream {
    let port: u16 =
        url.split(':').nth(2).and_then(|p| p.split('/').next()).and_then(|p| p.parse().ok()).expect("a port");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, host], 0))).expect("bind a source address");
    socket.connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await.expect("connect")
}

/// A WebSocket to `ws_url` from 127.0.0.`host`.
pub async fn connect_from(host: u8, ws_url: &str, fingerprint: &str) -> Socket {
    let tcp = tcp_from(host, ws_url).await;
    lectern::client::connect_over(tcp, ws_url, fingerprint).await.expect("connect")
}

/// An HTTP request to the server at `url` (its port) from 127.0.0.`host`: the status and body.
pub async fn request_from(
    host: u8,
    url: &str,
    fingerprint: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: String,
) -> (u16, Vec<u8>) {
    use http_body_util::BodyExt;
    let tls = lectern::client::tls_over(tcp_from(host, url).await, url, fingerprint).await.expect("TLS");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("HTTP");
    tokio::spawn(async move {
        conn.await.ok();
    });
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", "127.0.0.1");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let req = req.body(http_body_util::Full::new(axum::body::Bytes::from(body))).expect("request");
    let res = sender.send_request(req).await.expect("an answer");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    (status, body)
}

/// A device id unique to a test.
pub fn device(n: usize) -> String {
    format!("test-device-{n:04}")
}

/// Waits (within PATIENCE overall) for the first client event that satisfies `pred`.
pub async fn wait_for(
    client: &mut lectern::client::Client,
    mut pred: impl FnMut(&lectern::client::Event) -> bool,
) -> lectern::client::Event {
    let wanted = async {
        loop {
            match client.next_event().await {
                Some(e) if pred(&e) => return e,
                Some(_) => continue,
                None => panic!("the client stopped"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, wanted).await.expect("the event in time")
}

/// Waits for the client's next `Connected` and returns who it is.
pub async fn connected(client: &mut lectern::client::Client) -> lectern::protocol::You {
    match wait_for(client, |e| matches!(e, lectern::client::Event::Connected { .. })).await {
        lectern::client::Event::Connected { you, .. } => you,
        _ => unreachable!(),
    }
}

/// A `lectern serve` process, killed when dropped.
pub struct ServeProcess(Option<std::process::Child>);

impl ServeProcess {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(std::process::Child::id).unwrap_or(0)
    }

    /// Sends a signal (`-TERM`, `-INT`, `-KILL`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status =
            std::process::Command::new("kill").args([sig, &self.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill {sig}");
    }

    /// Waits for the process to exit, failing the test (and killing it) after `within`. The wait blocks
    /// on the process in a thread of its own rather than polling.
    pub fn wait_exit(mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("a running process");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(within) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("the server did not exit within {within:?}");
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the real binary with `--json` on a data directory and waits for its ready line.
pub fn serve_binary(
    dir: &std::path::Path,
    listen: &str,
    extra: &[&str],
) -> (ServeProcess, lectern::protocol::http::Ready) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lectern"));
    // No mDNS: tests send packets only to loopback or into namespaces they made (tests/mdns.rs).
    cmd.args(["serve", "--json", "--no-mdns", "--listen", listen, "--data-dir"]).arg(dir).args(extra);
    ServeProcess::spawn(cmd)
}

impl ServeProcess {
    /// Runs a prepared `lectern serve --json …` command and waits for its ready line.
    pub fn spawn(mut cmd: std::process::Command) -> (ServeProcess, lectern::protocol::http::Ready) {
        use std::io::BufRead;
        if !cmd.get_envs().any(|(k, _)| k == "LECTERN_LOG") {
            cmd.env("LECTERN_LOG", "warn");
        }
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("spawn lectern serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("ready line");
        let ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        (ServeProcess(Some(child)), ready)
    }
}

/// The port of a ready line's WebSocket URL.
pub fn port_of(ready: &lectern::protocol::http::Ready) -> u16 {
    ready.ws.rsplit(':').next().and_then(|p| p.trim_end_matches("/v1/ws").parse().ok()).expect("port")
}
