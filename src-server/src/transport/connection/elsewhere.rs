//! A second path (PROTOCOL-ADDITIONS N) that a load balancer sent to another relay than the one its
//! student is on: the relay asks Redis where the student is (`Whereabouts`), takes the path when
//! the student is online on another relay of the room (from the same address), and closes it once
//! the student is there no more.

use std::net::IpAddr;
use std::sync::Arc;

use crate::engine::room::Room;
use crate::engine::room::join::{JoinError, Joined};
use crate::protocol::{Hello, close};
use crate::transport::host::{Host, Presence};

/// Opens the second path of student `pid`, whom this relay's copy of the room does not have, if
/// another relay of the room has it online; else the refusal a second path without its student gets.
pub(super) async fn second_path(
    app: &Host,
    room: &Arc<Room>,
    hello: &Hello,
    pid: &str,
    addr: Option<IpAddr>,
) -> Result<Joined, JoinError> {
    let not_here = || JoinError::BadRequest(JoinError::NotHere(pid.to_string()).to_string());
    let Some(whereabouts) = app.whereabouts.get().cloned() else { return Err(not_here()) };
    // Counted before Redis is asked: a token holder's hellos cost Redis twenty reads a minute at most.
    room.count_second_elsewhere(pid)?;
    let id = room.info().id.clone();
    let Presence::Elsewhere { addr: first_addr, first } = whereabouts.find(&id, pid).await else {
        return Err(not_here());
    };
    let joined = room.enter_second_elsewhere(hello, addr, first_addr)?;
    // Checked on while it is open: it goes with its student's first connection, as on the student's
    // own relay (4409), once that has closed or a resume has replaced it. A Redis that does not
    // answer closes nothing.
    let (room, pid, conn, outbox) = (room.clone(), pid.to_string(), joined.conn, joined.outbox.clone());
    let (shutdown, every) = (app.shutdown.clone(), whereabouts.every());
    app.tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if outbox.is_closing() || !room.has_member(conn) {
                return;
            }
            match whereabouts.find(&id, &pid).await {
                Presence::Unknown => {}
                Presence::Elsewhere { first: now, .. } if now == first => {}
                _ => {
                    outbox.close(close::REPLACED, "its student's first connection closed or was replaced");
                    return;
                }
            }
        }
    });
    Ok(joined)
}
