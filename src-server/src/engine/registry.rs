//! The rooms one process hosts, by id: one lesson on a teacher's device, many on a school's server or
//! a relay. The registry only finds rooms; each room keeps its own state and lock, so rooms never
//! contend with one another.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::room::Room;

/// Rooms by id.
#[derive(Debug, Default)]
pub struct Registry {
    rooms: RwLock<HashMap<Arc<str>, Arc<Room>>>,
}

impl Registry {
    /// Adds a room (replacing one with the same id).
    pub fn insert(&self, room: Arc<Room>) {
        let id: Arc<str> = Arc::from(room.info().id.as_str());
        self.rooms.write().unwrap_or_else(|p| p.into_inner()).insert(id, room);
    }

    /// The room with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Removes a room; its connections are not touched.
    pub fn remove(&self, id: &str) -> Option<Arc<Room>> {
        self.rooms.write().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Every room.
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Closes every connection of every room (shutdown).
    pub fn close_all(&self, code: u16, reason: &str) {
        for room in self.rooms() {
            room.close_all(code, reason);
        }
    }

    /// Sends every room's pending roster changes to its teachers.
    pub fn flush_rosters(&self) {
        for room in self.rooms() {
            room.flush_roster();
        }
    }
}
