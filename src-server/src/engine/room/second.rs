//! A student's second path (docs/PROTOCOL-ADDITIONS.md, N): a second connection that carries the same
//! frames as the student's first, so a change lost on one arrives by the other.
//!
//! A lost packet holds TCP's whole stream until it is resent, about one round trip later; on a link
//! that loses packets at random, the same change on a second connection is rarely lost on both. A
//! second path only listens: it takes no seat, is on no roster, is never reported (the session log
//! and a relay's `up` stream hear only of the first), and whatever it sends but a ping or a resync is
//! refused. It lives only while its student's first connection does.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::join::{JoinError, Joined};
use super::{Inner, Member, Room, encode};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::token::Claims;
use crate::now_ms;
use crate::protocol::{Role, You, close};

/// Second paths a student may open a minute. Each is a welcome with the whole state (ink and all):
/// a client opens one after each welcome, and again at most every 5 s after a drop, so a token
/// holder looping on it is refused rather than served.
pub const SECOND_OPENS_PER_MINUTE: u32 = 20;

fn bad(m: &str) -> JoinError {
    JoinError::BadRequest(m.to_string())
}

impl Room {
    /// Whether this room takes second paths: a relay's always (it sets `second_paths`), a teacher's
    /// server's when configured.
    pub(super) fn offers_second(&self) -> bool {
        self.mirror || self.limits.second_paths
    }

    /// Opens a second path for the online student a resume token proves, and queues its `welcome`
    /// (the same as a resume's). A second path the student had already is closed (4409).
    pub(super) fn enter_second(
        &self,
        claims: &Claims,
        resumed: bool,
        addr: Option<IpAddr>,
    ) -> Result<Joined, JoinError> {
        if !resumed {
            return Err(bad("a second path needs \"resume\", the token of a student who is online"));
        }
        if claims.role != Role::Student {
            return Err(bad("only a student opens a second path"));
        }
        if !self.offers_second() {
            return Err(bad("this server takes no second path"));
        }
        let mut inner = self.lock();
        still_admits(&inner, claims)?;
        let Some(p) = inner.participants.get_mut(&claims.pid).filter(|p| p.conn.is_some()) else {
            // A relay's copy: behind a load balancer the student may be online on another relay.
            if self.mirror {
                return Err(JoinError::NotHere(claims.pid.clone()));
            }
            return Err(bad("a second path needs its student online: resume on the first one, then open it"));
        };
        // A second path comes from where its student is (one device, one home): a token read off
        // another's screen does not make a silent listener elsewhere. This machine's own
        // connections, and a relay's behind a balancer that does not name them, are not told apart.
        let addr = addr.and_then(crate::engine::rate::counted);
        from_first_address(p.addr, addr)?;
        count_open(&mut p.second_opens)?;
        let you = You { id: p.id.clone(), role: Role::Student, name: p.name.clone() };
        Ok(self.open_second(&mut inner, claims, you, addr))
    }

    /// Opens a second path on a relay's copy of the room for a student whose first connection is on
    /// another relay of the room, from `first` (its address as that relay counts it), as the room's
    /// presence in Redis says (`transport::host::Whereabouts`). The same rules hold as for
    /// [`Room::enter_second`], the student's own token included (the caller has counted it with
    /// [`Room::count_second_elsewhere`]); the caller closes the path once the student is no longer
    /// there.
    pub fn enter_second_elsewhere(
        &self,
        hello: &crate::protocol::Hello,
        addr: Option<IpAddr>,
        first: Option<IpAddr>,
    ) -> Result<Joined, JoinError> {
        let claims = self.claims(hello)?;
        if !hello.second || hello.resume.is_none() || claims.role != Role::Student || !self.mirror {
            return Err(bad("a second path needs \"resume\", the token of a student who is online"));
        }
        let mut inner = self.lock();
        still_admits(&inner, &claims)?;
        let addr = addr.and_then(crate::engine::rate::counted);
        from_first_address(first.and_then(crate::engine::rate::counted), addr)?;
        let you = You { id: claims.pid.clone(), role: Role::Student, name: claims.name.clone() };
        Ok(self.open_second(&mut inner, &claims, you, addr))
    }

    /// Counts a second path asked of this relay's copy for student `pid` (its token checked), whom
    /// another relay may have: before Redis is asked where the student is, so that a token holder's
    /// hellos cost Redis at most twenty reads a minute. Counted per student as on its first relay,
    /// and forgotten a minute on, so a holder of many tokens fills the count no faster than it empties.
    pub fn count_second_elsewhere(&self, pid: &str) -> Result<(), JoinError> {
        let mut inner = self.lock();
        let now = now_ms();
        inner.second_opens_elsewhere.retain(|_, (since, _)| now.saturating_sub(*since) < 60_000);
        count_open(inner.second_opens_elsewhere.entry(pid.to_string()).or_insert((now, 0)))
    }

    /// Opens the second path (a newer one replaces the student's last), and queues its `welcome`;
    /// the caller holds the lock.
    fn open_second(&self, inner: &mut Inner, claims: &Claims, you: You, addr: Option<IpAddr>) -> Joined {
        Self::close_second(inner, &claims.pid, close::REPLACED, "replaced by a newer second path");
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(self.limits.queue_capacity));
        let token = self.tokens.issue(claims);
        outbox.push(Item::Msg(encode(&self.welcome(inner, you, token))));
        inner.members.push(Member {
            conn,
            role: Role::Student,
            outbox: outbox.clone(),
            addr,
            second_of: Some(claims.pid.clone()),
        });
        Joined { conn, pid: claims.pid.clone(), role: Role::Student, outbox, second: true }
    }

    /// Whether connection `conn` is still a member here (a second path taken for a student on
    /// another relay is checked on until it is not).
    pub fn has_member(&self, conn: u64) -> bool {
        self.lock().members.iter().any(|m| m.conn == conn)
    }

    /// Whether anyone is connected: a relay keeps its copy of the room while so (a second path for
    /// a student on another relay counts).
    pub fn has_members(&self) -> bool {
        !self.lock().members.is_empty()
    }

    /// Removes a closed second path. Nothing is reported: the student's seat is its first path's.
    pub fn leave_second(&self, conn: u64) {
        self.lock().members.retain(|m| m.conn != conn);
    }

    /// Closes the second path of student `pid`, if it has one; the caller holds the lock.
    pub(super) fn close_second(inner: &mut Inner, pid: &str, code: u16, reason: &str) {
        inner.members.retain(|m| {
            let theirs = m.second_of.as_deref() == Some(pid);
            if theirs {
                m.outbox.close(code, reason);
            }
            !theirs
        });
    }
}

/// Counts one more second path opened this minute in `(since, opened)`, or refuses it.
fn count_open((since, opened): &mut (u64, u32)) -> Result<(), JoinError> {
    let now = now_ms();
    if now.saturating_sub(*since) >= 60_000 {
        (*since, *opened) = (now, 0);
    }
    if *opened >= SECOND_OPENS_PER_MINUTE {
        return Err(JoinError::TooManySecondPaths);
    }
    *opened += 1;
    Ok(())
}

/// Whether the lesson still admits the student `claims` names: not ended, not removed, and its
/// token not outdated by a newer one given to another holder.
fn still_admits(inner: &Inner, claims: &Claims) -> Result<(), JoinError> {
    if inner.state.ended {
        return Err(JoinError::Ended);
    }
    if inner.revoked.contains(&claims.pid) || inner.outdated(claims) {
        return Err(JoinError::Credentials);
    }
    Ok(())
}

/// Whether a second path from `here` comes from where its student's first connection is, both as
/// the per-address limits count them (uncounted addresses are not told apart).
fn from_first_address(first: Option<IpAddr>, here: Option<IpAddr>) -> Result<(), JoinError> {
    match (first, here) {
        (Some(first), Some(here)) if first != here => {
            Err(bad("a second path must come from the address of the student's first connection"))
        }
        _ => Ok(()),
    }
}
