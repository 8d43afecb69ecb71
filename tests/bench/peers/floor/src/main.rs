//! The floor: what one TLS WebSocket broadcast costs on this stack (tokio, tokio-tungstenite, rustls)
//! before Lectern adds a protocol, validation, rooms, a roster or a log. Every text frame any client
//! sends is sent to every client, the sender included, from one list; a new client gets `{"t":"welcome"}`. Usage: `lectern-floor CERT_DIR [HOST]`
//! (a Lectern data directory, for the same certificate; HOST defaults to 127.0.0.1); prints
//! `{"ready":true,"host":H,"port":N}`.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Clients = Arc<Mutex<Vec<(u64, UnboundedSender<Message>)>>>;

#[allow(clippy::result_large_err)] // tungstenite's handshake callback signature
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: lectern-floor CERT_DIR")?);
    let certs = rustls_pemfile::certs(&mut std::fs::read(dir.join("cert.pem"))?.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let key =
        rustls_pemfile::private_key(&mut std::fs::read(dir.join("key.pem"))?.as_slice())?.ok_or("no key")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let host = std::env::args().nth(2).unwrap_or_else(|| "127.0.0.1".into());
    let listener = tokio::net::TcpListener::bind((host.as_str(), 0)).await?;
    println!("{{\"ready\":true,\"host\":\"{host}\",\"port\":{}}}", listener.local_addr()?.port());
    let clients: Clients = Arc::default();
    let mut next_id = 0u64;
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let (acceptor, clients) = (acceptor.clone(), clients.clone());
        next_id += 1;
        let id = next_id;
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            // The same 4 KiB read buffer Lectern uses: tungstenite zero-fills its whole buffer per read.
            let config = WebSocketConfig::default().read_buffer_size(4096);
            // Agree to whatever subprotocol the client offers first (the load generator offers lectern.v1).
            let agree = |req: &Request, mut res: Response| {
                if let Some(p) = req.headers().get("sec-websocket-protocol").cloned() {
                    let first = p.to_str().unwrap_or("").split(',').next().unwrap_or("").trim().to_string();
                    if let Ok(v) = first.parse() {
                        res.headers_mut().insert("sec-websocket-protocol", v);
                    }
                }
                Ok(res)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tls, agree, Some(config)).await
            else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = unbounded_channel::<Message>();
            let _ = tx.send(Message::text(r#"{"t":"welcome"}"#)); // so a client knows it is on the list
            clients.lock().unwrap_or_else(|p| p.into_inner()).push((id, tx));
            let writer = tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    if sink.feed(msg).await.is_err() {
                        return;
                    }
                    while let Ok(more) = rx.try_recv() {
                        if sink.feed(more).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(_) = msg {
                    for (_, tx) in clients.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        let _ = tx.send(msg.clone());
                    }
                }
            }
            clients.lock().unwrap_or_else(|p| p.into_inner()).retain(|(c, _)| *c != id);
            writer.abort();
        });
    }
}
