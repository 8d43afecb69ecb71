//! Ending things: the lesson (everyone gets the `ended` patch, then is closed with 4000) and a
//! student's place in it (the teacher's `kick`).

use std::sync::Arc;

use super::{Inner, Room, encode};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::Event;
use crate::now_ms;
use crate::protocol::{ErrorCode, Patch, Role, ServerMsg, close};

impl Room {
    /// Ends the lesson: everyone gets the `ended` patch, then is closed with 4000 (the teacher who asked
    /// once its `ok` is durable).
    pub fn end(&self, id: Option<u32>, reply: &Arc<Outbox>) {
        let mut inner = self.lock();
        if inner.state.ended {
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(
                id,
                ErrorCode::BadRequest,
                "the lesson has ended",
            ))));
            return;
        }
        self.end_locked(&mut inner, Some((id, reply)));
    }

    /// Ends the lesson with no request (a new lesson replaces it).
    pub fn end_now(&self) {
        let mut inner = self.lock();
        if !inner.state.ended {
            self.end_locked(&mut inner, None);
        }
    }

    /// Applies, logs and fans out the `ended` patch and closes everyone with 4000; the teacher who
    /// asked (`asker`: request id and outbox) is closed after its `ok`.
    fn end_locked(&self, inner: &mut Inner, asker: Option<(Option<u32>, &Arc<Outbox>)>) {
        inner.seq += 1;
        let seq = inner.seq;
        let time = now_ms();
        let patch = Patch { ended: Some(true), ..Patch::default() };
        inner.state.apply(&patch);
        inner.marks_at.record(seq, &patch);
        inner.lesson.ended_ms = Some(time);
        self.report(Event::Lesson { lesson: inner.lesson.clone(), state: None });
        self.fan_out(inner, seq, &patch, time);
        for m in &inner.members {
            if asker.is_none_or(|(_, a)| !Arc::ptr_eq(a, &m.outbox)) {
                m.outbox.close(close::ENDED, "the lesson has ended");
            }
        }
        self.end_knocks(inner);
        let done = asker.and_then(|(id, reply)| self.ok_when_durable(id, seq, reply, Some(close::ENDED)));
        self.report(Event::Patch { seq, time, patch, done });
    }

    /// A teacher's `kick`: closes the student with 4003, revokes its token, and removes its device
    /// (every participant id it may take, and its waiting knocks).
    pub fn kick(&self, id: Option<u32>, who: &str, reply: &Outbox) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(who).filter(|p| p.role == Role::Student) else {
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(
                id,
                ErrorCode::NotFound,
                format!("no student \"{who}\""),
            ))));
            return;
        };
        p.kicked = true;
        p.hand = false;
        let conn = p.conn;
        let device = p.device.clone();
        self.remember_removed(&mut inner, who);
        // This id and every twin id of its device are revoked, and the device's waiting knocks turned
        // away, so that it cannot come straight back under another twin. The device's own id stays
        // with whoever holds it, unless that is who was removed: a device id is no secret, and a
        // classmate who borrowed it must not get its owner removed.
        let ids: Vec<String> = std::iter::once(who.to_string()).chain(self.twins(&device)).collect();
        for pid in ids {
            if inner.revoked.insert(pid.clone()) {
                self.report(Event::Revoked { pid });
            }
        }
        self.deny_device(&mut inner, &device);
        if let Some(m) = conn.and_then(|c| inner.members.iter().find(|m| m.conn == c)) {
            m.outbox.close(close::KICKED, "removed from this lesson by the teacher");
        }
        Self::close_second(&mut inner, who, close::KICKED, "removed from this lesson by the teacher");
        self.mark(&mut inner, who);
        self.flush_roster_locked(&mut inner);
        reply.push_or_close(Item::Msg(encode(&ServerMsg::Ok { id, seq: None, durable: None })));
    }
}
