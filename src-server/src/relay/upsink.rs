//! What a relay's students do, written to each room's `up` stream for the teacher's server to read
//! (see `upstream`). A sink of the relay's rooms' reports: it never holds up a room, and an entry
//! that cannot be written while Redis is away is dropped (the students' next join says it again).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connect::Redis;
use super::keys;
use crate::engine::report::{Event, Report, ReportSink};

/// Reports waiting to be written.
const QUEUE: usize = 8192;

/// The relay rooms' end of the reports.
pub struct UpSink {
    tx: mpsc::Sender<Report>,
}

impl ReportSink for UpSink {
    fn offer(&self, report: Report) -> Result<(), Report> {
        self.tx.try_send(report).map_err(|e| match e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
        })
    }

    fn confirms(&self) -> bool {
        false
    }
}

/// A sink, and the task that writes what it gets to Redis until shutdown.
pub fn start(client: Redis, shutdown: CancellationToken) -> (Arc<UpSink>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Arc::new(UpSink { tx }), tokio::spawn(write(client, rx, shutdown)))
}

async fn write(client: Redis, mut rx: mpsc::Receiver<Report>, shutdown: CancellationToken) {
    // Which participant each connection is, to say who left (connection ids count per room).
    let mut conns: HashMap<(String, u64), String> = HashMap::new();
    let mut conn = None;
    let mut attempt = 0u32;
    loop {
        // At shutdown, what is queued (the leaves of a stopping relay) is still written.
        let report = tokio::select! {
            biased;
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = shutdown.cancelled() => return,
        };
        let room = report.room.to_string();
        let fields: Vec<(&str, String)> = match report.event {
            Event::Joined { conn: c, pid, name, device, .. } => {
                conns.insert((room.clone(), c), pid.clone());
                vec![("k", "join".into()), ("pid", pid), ("name", name), ("device", device)]
            }
            Event::Left { conn: c, .. } => match conns.remove(&(room.clone(), c)) {
                Some(pid) => vec![("k", "leave".into()), ("pid", pid)],
                None => continue,
            },
            Event::Hand { pid, up, .. } => {
                vec![("k", "hand".into()), ("pid", pid), ("up", u8::from(up).to_string())]
            }
            Event::Ack { pid, seq, .. } => vec![("k", "ack".into()), ("pid", pid), ("seq", seq.to_string())],
            _ => continue,
        };
        if conn.is_none() {
            match client.connect().await {
                Ok(c) => {
                    conn = Some(c);
                    attempt = 0;
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(
                        super::backoff::retry_after(attempt).min(std::time::Duration::from_millis(500)),
                    )
                    .await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys::up(&room)).arg("MAXLEN").arg("~").arg(keys::STREAM_LEN).arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        if cmd.exec_async(c).await.is_err() {
            conn = None;
        }
    }
}
