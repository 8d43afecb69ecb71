//! Zero-config discovery on the LAN (PROTOCOL.md §8): the server announces `_lectern._tcp.local.` with
//! the §8 TXT keys, and clients browse for classrooms. Built on mdns-sd.
//!
//! Interfaces: by default every interface that is up, skipping loopback and interfaces that look
//! virtual (docker, bridges, VPNs, veth); `--mdns-interface NAME` chooses exactly. The choice is
//! re-applied every few seconds, so an interface that appears later (Wi-Fi connecting after start) is
//! announced on too; mdns-sd follows address changes on the chosen interfaces and re-announces.

mod announce;
mod browse;
mod interfaces;

pub use announce::{Announcement, Announcer, MAX_LABEL_BYTES, announce};
pub use browse::{Browser, Classroom, Found, discover, find, instance_name};
pub use interfaces::{Interfaces, looks_virtual};
