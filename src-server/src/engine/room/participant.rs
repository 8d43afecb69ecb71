//! What a room knows of one participant, online or not, and how the teacher's roster shows it.

use crate::protocol::{Role, RosterEntry};

#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) id: String,
    pub(crate) role: Role,
    pub(crate) name: String,
    /// The device id it joined from (a twin's is its device's), so a removal covers the device.
    pub(crate) device: String,
    pub(crate) remote: bool,
    pub(crate) acked: Option<u64>,
    pub(crate) rtt_ms: Option<u32>,
    pub(crate) hand: bool,
    pub(crate) view: Option<u32>,
    pub(crate) conn: Option<u64>,
    pub(crate) kicked: bool,
    pub(crate) dirty: bool,
    /// Highest ack written to the log (only acks that cross a significant change are).
    pub(crate) logged_ack: u64,
    /// When it last went offline (ms since the epoch; 0: never, or not since this server started).
    pub(crate) left_ms: u64,
    /// The address it last joined from, as limits count it (none for this machine's own).
    pub(crate) addr: Option<std::net::IpAddr>,
    /// It joined looking like a student the teacher removed (`admission`).
    pub(crate) like_removed: bool,
    /// Second paths it opened in the current minute, and when that minute began (ms; `second`).
    pub(crate) second_opens: (u64, u32),
}

impl Participant {
    pub(crate) fn new(id: String, role: Role, name: String, device: String) -> Participant {
        Participant {
            id,
            role,
            name,
            device,
            remote: false,
            acked: None,
            rtt_ms: None,
            hand: false,
            view: None,
            conn: None,
            kicked: false,
            dirty: false,
            logged_ack: 0,
            left_ms: 0,
            addr: None,
            like_removed: false,
            second_opens: (0, 0),
        }
    }

    pub(crate) fn entry(&self) -> RosterEntry {
        RosterEntry {
            id: self.id.clone(),
            name: self.name.clone(),
            online: self.conn.is_some(),
            remote: self.remote,
            acked: self.acked,
            rtt_ms: self.rtt_ms,
            hand: self.hand,
            view: self.view,
            kicked: self.kicked,
            like_removed: self.like_removed,
        }
    }
}
