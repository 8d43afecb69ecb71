//! A room's keys in Redis. Every key of one room carries the room id as its hash tag (`{r1}`), so a
//! room lives on one Redis Cluster slot and its commands never cross slots; rooms spread over the
//! cluster by their ids.

/// The room's join details, as JSON ([`Meta`]): what a relay needs to admit students.
pub fn meta(room: &str) -> String {
    format!("lectern:{{{room}}}:meta")
}

/// The latest signed snapshot, as JSON ([`Snapshot`]).
pub fn snapshot(room: &str) -> String {
    format!("lectern:{{{room}}}:snap")
}

/// The teacher's latest signed beat (a `beat` frame as sent), for a relay's new copy of the room to
/// show its first students how fresh the snapshot is.
pub fn beat(room: &str) -> String {
    format!("lectern:{{{room}}}:beat")
}

/// The stream of what the teacher's server sends the room's students: signed patches, beats and
/// fresh snapshots (field `k`: `patch`, `beat` or `sync`; field `f`: the frame as sent), the signed
/// removal of a remote student (`k`: `kick`, `pid`: its id on the relays, `s`: [`Removal`]'s
/// signature), and the signed refusal of one connection (`k`: `refuse`, `pid`, `relay`, `conn`,
/// `s`: [`refusal_sig`]).
pub fn down(room: &str) -> String {
    format!("lectern:{{{room}}}:down")
}

/// The stream of what remote students do, written by relays (field `k`: `join`, `leave`, `hand`,
/// `ack`, or the relay's presence, `alive`, `reset`, `here`, `synced`; `relay`, the writer's id;
/// `pid`, and `name`, `device`, `up`, `seq`, `n`, `conn` (a join's connection number on the relay),
/// `conns` (a `here`'s, comma-separated) or `every`). See `presence`.
pub fn up(room: &str) -> String {
    format!("lectern:{{{room}}}:up")
}

/// Where remote student `pid` of the room is online: `{"relay":…,"addr":…}` ([`At`]), written by
/// the relay that has its first connection and kept alive by it (it expires unless refreshed), so
/// that a second path landing on another relay is taken there (PROTOCOL-ADDITIONS N).
pub fn at(room: &str, pid: &str) -> String {
    format!("lectern:{{{room}}}:at:{pid}")
}

/// A student's presence on a relay ([`at`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct At {
    /// The relay's id (as in the `up` stream).
    pub relay: String,
    /// The address of the student's first connection, as the relay counts it (empty when it counts
    /// none: this machine's own, or behind a balancer that does not say).
    #[serde(default)]
    pub addr: String,
    /// The first connection's number on that relay: another relay closes the second path it took
    /// for the student once this changes (a resume replaced the first connection).
    #[serde(default)]
    pub conn: u64,
}

/// Writes key 1 as argument 1 for argument 2 ms, unless another relay wrote it since (it holds
/// something else): a relay's refresh never takes a student back from the relay it moved to.
pub const REFRESH_AT: &str = "local v = redis.call('GET', KEYS[1]) \
    if not v or v == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0";

/// Deletes key 1 only if it still holds argument 1 (a relay forgets a student's presence only if no
/// other relay has written it since).
pub const FORGET_AT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// The room's budget of wrong join codes, shared by the teacher's server and every relay (a hash:
/// `tokens`, `at`; see `guesses`).
pub fn guesses(room: &str) -> String {
    format!("lectern:{{{room}}}:guesses")
}

/// A document's head, for the room's remote students: [`DocHead`] as JSON, its length and how it is
/// cut into [`doc_block`]s. Written before the blocks (a relay serves what has arrived) and again,
/// with `done`, once they are all in.
pub fn doc(room: &str, sha256: &str) -> String {
    format!("lectern:{{{room}}}:doc:{sha256}")
}

/// Block `i` of a document: bytes `[i * DOC_BLOCK, (i + 1) * DOC_BLOCK)`. A document is kept in
/// blocks, never as one large value, so that a Redis Cluster node never holds up its other keys
/// moving 50 MB, and a relay reads only the blocks its students ask for.
pub fn doc_block(room: &str, sha256: &str, i: u64) -> String {
    format!("lectern:{{{room}}}:doc:{sha256}:{i}")
}

/// A document's manifest (PROTOCOL-ADDITIONS.md, section J), exactly as its signed hash names it.
pub fn manifest(room: &str, sha256: &str) -> String {
    format!("lectern:{{{room}}}:manifest:{sha256}")
}

/// The size of a document's blocks in Redis.
pub const DOC_BLOCK: u64 = 256 * 1024;

/// A document's head in Redis ([`doc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocHead {
    /// The document's length in bytes.
    pub size: u64,
    /// Whether every block is in.
    #[serde(default)]
    pub done: bool,
}

impl DocHead {
    /// How many blocks the document has.
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(DOC_BLOCK)
    }
}

/// A document's scanned pages (`GET /v1/docs/{id}/scan`), as JSON.
pub fn scan(room: &str, sha256: &str) -> String {
    format!("lectern:{{{room}}}:scan:{sha256}")
}

/// How long a document stays in Redis after it was last published (a day: the next lesson that
/// shows it publishes it again).
pub const DOC_TTL_SECONDS: u64 = 24 * 3600;

/// About how many entries a stream keeps (`XADD … MAXLEN ~`): a relay that falls further behind
/// starts again from the snapshot.
pub const STREAM_LEN: usize = 2000;

/// The most motion changes (pointer, region, a stroke's points) the bridge publishes between two
/// writes of a room's snapshot; every other change writes it, and so does the next beat. A relay
/// opening a room follows the stream from the snapshot's own change.
pub const SNAPSHOT_EVERY: u64 = 32;
/// How many of a stream's newest entries a relay opening a room reads with the snapshot (and then
/// a window at a time further back, until it finds the snapshot's change).
pub const SNAPSHOT_WINDOW: usize = 128;

/// Adds one entry to a stream in `pipe` (`XADD stream MAXLEN ~ STREAM_LEN * field value …`).
pub fn add_entry(pipe: &mut redis::Pipeline, stream: &str, fields: &[(&str, &str)]) {
    let cmd = pipe.cmd("XADD").arg(stream).arg("MAXLEN").arg("~").arg(STREAM_LEN).arg("*");
    for (field, value) in fields {
        cmd.arg(*field).arg(*value);
    }
    cmd.ignore();
}

/// A blocking read of a stream after entry `last`: at most `count` entries, waiting up to `block`.
pub fn read_after(stream: &str, last: &str, count: usize, block: std::time::Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(stream)
        .arg(last);
    cmd
}

/// A stream's entries as `XRANGE` and `XREVRANGE` answer them: each id with its fields.
pub type Entries = Vec<(String, Vec<(String, String)>)>;

/// The newest entry's id in a stream, or `0` for an empty one (or none): a reader that starts after
/// it misses nothing written later, whenever its first read comes.
pub async fn last_id(conn: &mut impl redis::aio::ConnectionLike, key: &str) -> redis::RedisResult<String> {
    let newest: Entries =
        redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(conn).await?;
    Ok(newest.into_iter().next().map_or_else(|| "0".to_string(), |(id, _)| id))
}

/// A room's join details, published by the teacher's server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// Lesson title.
    pub title: String,
    /// The teacher's signature of the title (kind 5) in `epoch`, which relays pass on: whoever
    /// writes into Redis cannot put their own words in the title students see, nor put back a title
    /// of an earlier epoch.
    #[serde(default)]
    pub title_sig: String,
    /// Join code: a relay admits with it. (Whoever runs Redis can read it; see docs/RELAY.md.)
    pub code: String,
    /// The teacher's server's public key (base64url), for the relay's join links.
    pub pk: String,
    /// The key a relay's room issues resume tokens under, derived from the teacher key for this room
    /// only (so every relay accepts them and the teacher's server never does).
    pub secret: String,
    /// Heartbeat, ms.
    pub heartbeat_ms: u64,
    /// The current epoch.
    pub epoch: u64,
    /// Whether the lesson has ended.
    pub ended: bool,
    /// The most students online in the room (the teacher's server's limit, which each relay's copy
    /// of the room keeps too).
    #[serde(default)]
    pub max_participants: usize,
    /// Remote students the teacher removed, each with the teacher's signature of its removal: no
    /// relay lets them back in, and a relay takes no removal the teacher did not sign.
    #[serde(default)]
    pub revoked: Vec<Removal>,
    /// The teacher's waiting room is on: a relay, where nobody can be let in, refuses students who
    /// come with the join code (those with a resume token still get in).
    #[serde(default)]
    pub waiting_room: bool,
}

impl Meta {
    /// The title's signature with the epoch it was made in, as a relay's copy of the room passes it
    /// on; none when the teacher's server wrote none.
    pub fn title_signed(&self) -> Option<crate::protocol::Signed> {
        (!self.title_sig.is_empty())
            .then(|| crate::protocol::Signed { epoch: self.epoch, sig: self.title_sig.clone() })
    }
}

/// A remote student the teacher removed: its id on the relays, and the teacher's signature of
/// [`crate::protocol::signed::removal_digest`] of it (kind 3, section E).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removal {
    /// Its id on the relays.
    pub pid: String,
    /// The signature, base64url.
    pub sig: String,
}

impl Removal {
    /// Signs the removal of remote student `pid` (its id on the relays) from `room`.
    pub fn sign(signer: &crate::protocol::sign::Signer, room: &str, pid: &str) -> Removal {
        let digest = crate::protocol::signed::removal_digest(pid);
        let signed = signer.sign_digest(crate::protocol::signed::Kind::Removed, room, 0, 0, 0, &digest);
        Removal { pid: pid.to_string(), sig: signed.sig }
    }

    /// Whether the teacher whose key `verifier` holds signed this removal.
    pub fn is_signed(&self, verifier: &crate::protocol::sign::Verifier) -> bool {
        let digest = crate::protocol::signed::removal_digest(&self.pid);
        let signed = crate::protocol::Signed { epoch: 0, sig: self.sig.clone() };
        verifier.check_digest(crate::protocol::signed::Kind::Removed, 0, 0, &digest, &signed)
    }
}

/// The teacher's server's refusal of one remote student's connection on one relay: the signature
/// of [`crate::protocol::signed::refusal_digest`] (kind 4, section E), with the connection's number
/// on that relay as the seq and the id of the relay's entry it answers, so it closes that connection
/// and no other, however often it is replayed, and only for an entry the relay wrote itself.
pub fn refusal_sig(
    signer: &crate::protocol::sign::Signer,
    room: &str,
    relay: &str,
    pid: &str,
    conn: u64,
    entry: &str,
) -> String {
    let digest = crate::protocol::signed::refusal_digest(relay, pid, entry);
    signer.sign_digest(crate::protocol::signed::Kind::Refused, room, 0, conn, 0, &digest).sig
}

/// Whether `sig` is the teacher's refusal of connection `conn` of student `pid` on relay `relay`,
/// answering that relay's entry `entry`.
pub fn is_refusal(
    verifier: &crate::protocol::sign::Verifier,
    relay: &str,
    pid: &str,
    conn: u64,
    entry: &str,
    sig: &str,
) -> bool {
    let digest = crate::protocol::signed::refusal_digest(relay, pid, entry);
    let signed = crate::protocol::Signed { epoch: 0, sig: sig.to_string() };
    verifier.check_digest(crate::protocol::signed::Kind::Refused, conn, 0, &digest, &signed)
}

/// Adds one entry to a stream in `pipe`, keeping its reply (the id Redis gives it).
pub fn add_entry_kept(pipe: &mut redis::Pipeline, stream: &str, fields: &[(&str, &str)]) {
    let cmd = pipe.cmd("XADD").arg(stream).arg("MAXLEN").arg("~").arg(STREAM_LEN).arg("*");
    for (field, value) in fields {
        cmd.arg(*field).arg(*value);
    }
}

/// A signed snapshot of a room's state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Its seq.
    pub seq: u64,
    /// The state.
    pub state: crate::protocol::LessonState,
    /// The teacher's signature of it.
    pub signed: crate::protocol::Signed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_room_shares_its_hash_tag() {
        for key in [
            meta("r1"),
            snapshot("r1"),
            down("r1"),
            up("r1"),
            doc("r1", "ab"),
            scan("r1", "ab"),
            guesses("r1"),
        ] {
            assert!(key.contains("{r1}"), "{key}");
        }
    }
}
