//! The configuration's sections (`[log]`, `[mdns]`, `[limits]`, `[timing]`, `[relay]`), each key
//! declared once (see [`section!`](super::keys)).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::keys::section;

section! {
    /// The session log (SQLite).
    pub struct LogConfig at "log" {
        /// Log joins, changes, acks and hands (false only to measure what logging costs).
        events: bool = true, key "events", env "LECTERN_LOG_EVENTS", flag "no-log" = "false";
        /// Delete lessons that ended more than this many days ago, at start.
        keep_days: u32 = 365, key "keep_days", env "LECTERN_KEEP_DAYS", flag "keep-days";
    }
}

section! {
    /// Announcing the classroom by mDNS.
    pub struct MdnsConfig at "mdns" {
        /// Do not announce the classroom by mDNS (students then need the join link or QR code).
        disabled: bool = false, key "disabled", env "LECTERN_NO_MDNS", flag "no-mdns" = "true";
        /// Announce only on these interfaces (a list; the flag is repeated; default: every usable one,
        /// without loopback and virtual ones).
        interfaces: Vec<String> = Vec::new(), key "interfaces", env "LECTERN_MDNS_INTERFACES",
            flag "mdns-interface", unset "every usable one";
    }
}

section! {
    /// Per-connection and per-room limits. The defaults are the protocol's; benchmarks raise them by
    /// configuration, never by changing the defaults.
    pub struct Limits at "limits" {
        /// Largest client frame in bytes (close 1009 above it).
        max_frame_bytes: usize = 16 * 1024, key "max_frame_bytes", env "LECTERN_MAX_FRAME_BYTES",
            flag "max-frame-bytes";
        /// Frames a second a student may send.
        student_rate: u32 = 50, key "student_rate", env "LECTERN_STUDENT_RATE", flag "student-rate";
        /// Frames a student may send at once.
        student_burst: u32 = 100, key "student_burst", env "LECTERN_STUDENT_BURST", flag "student-burst";
        /// Frames a second a teacher may send.
        teacher_rate: u32 = 240, key "teacher_rate", env "LECTERN_TEACHER_RATE", flag "teacher-rate";
        /// Frames a teacher may send at once.
        teacher_burst: u32 = 240, key "teacher_burst", env "LECTERN_TEACHER_BURST", flag "teacher-burst";
        /// Failed joins an address may make a minute before 4029.
        failed_hellos_per_minute: u32 = 10, key "failed_hellos_per_minute",
            env "LECTERN_FAILED_HELLOS_PER_MINUTE", flag "failed-hellos-per-minute";
        /// Students online in one room.
        max_participants: usize = 500, key "max_participants", env "LECTERN_MAX_PARTICIPANTS",
            flag "max-participants";
        /// Students online in one room from one address (an IPv6 /64), so one device with the join
        /// code cannot fill the class; enough for a class behind one NAT address. This machine
        /// (loopback) is not counted.
        max_students_per_address: usize = 64, key "max_students_per_address",
            env "LECTERN_MAX_STUDENTS_PER_ADDRESS", flag "max-students-per-address";
        /// Frames queued per connection before it gets one snapshot instead.
        queue_capacity: usize = 256, key "queue_capacity", env "LECTERN_QUEUE_CAPACITY", flag "queue-capacity";
        /// Open connections (handshakes included) before new ones wait. Lowered at start to stay well
        /// below the descriptor limit.
        max_connections: usize = 20_000, key "max_connections", env "LECTERN_MAX_CONNECTIONS",
            flag "max-connections";
        /// Open connections from one address (one IPv6 /64) before its new ones are closed at once
        /// (by default never more than an eighth of the total; a WebSocket counts for its whole life).
        max_connections_per_address: usize = 512, key "max_connections_per_address",
            env "LECTERN_MAX_CONNECTIONS_PER_ADDRESS", flag "max-connections-per-address";
        /// Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT); 0 leaves the system's.
        /// Without it a slow link hides seconds of stale frames in the kernel, where no snapshot can
        /// skip them.
        unsent_bytes: u32 = 16 * 1024, key "unsent_bytes", env "LECTERN_UNSENT_BYTES", flag "unsent-bytes";
        /// Whether this teacher's server lets a student open a second connection that carries the
        /// same changes, for a lossy link (PROTOCOL-ADDITIONS N). Relays always do: their students are
        /// at home, behind links that lose packets; in a classroom it would double the Wi-Fi's load.
        second_paths: bool = false, key "second_paths", env "LECTERN_SECOND_PATHS",
            flag "second-paths" = "true";
    }
}

section! {
    /// Timing of the handshake and of liveness. Durations are written in milliseconds (`*_ms`).
    pub struct Timing at "timing" {
        /// How long a client has to say hello (close 4008 after).
        hello_timeout: Duration = Duration::from_secs(5), key "hello_timeout_ms" with "millis",
            env "LECTERN_HELLO_TIMEOUT_MS", flag "hello-timeout-ms";
        /// How long a student who asked to join waits for the teacher (close 4008 after).
        knock_timeout: Duration = Duration::from_secs(600), key "knock_timeout_ms" with "millis",
            env "LECTERN_KNOCK_TIMEOUT_MS", flag "knock-timeout-ms";
        /// Ping interval, told to clients as `heartbeat_ms`; a connection silent for two is closed.
        heartbeat: Duration = Duration::from_secs(10), key "heartbeat_ms" with "millis",
            env "LECTERN_HEARTBEAT_MS", flag "heartbeat-ms";
        /// Minimum TCP retransmission timeout of lesson sockets (Linux 6.15+); 0 keeps the system's
        /// 200 ms.
        rto_min: Duration = Duration::from_millis(5), key "rto_min_ms" with "millis",
            env "LECTERN_RTO_MIN_MS", flag "rto-min-ms";
        /// A tiny frame this long after a change nothing follows, so a lost segment is resent within
        /// a round trip; 0: off.
        tail_probe: Duration = Duration::from_millis(2), key "tail_probe_ms" with "millis",
            env "LECTERN_TAIL_PROBE_MS", flag "tail-probe-ms";
        /// How long a TLS handshake may take.
        tls_handshake_timeout: Duration = Duration::from_secs(10), key "tls_handshake_timeout_ms" with "millis",
            env "LECTERN_TLS_HANDSHAKE_TIMEOUT_MS", flag "tls-handshake-timeout-ms";
        /// How long an HTTP connection may wait for a request's headers (idle between requests
        /// included), and a request's body may take to arrive.
        idle_timeout: Duration = Duration::from_secs(10), key "idle_timeout_ms" with "millis",
            env "LECTERN_IDLE_TIMEOUT_MS", flag "idle-timeout-ms";
        /// How long shutdown waits for connections to close.
        shutdown_grace: Duration = Duration::from_millis(1500), key "shutdown_grace_ms" with "millis",
            env "LECTERN_SHUTDOWN_GRACE_MS", flag "shutdown-grace-ms";
        /// How often acks and round trips reach the teacher's roster (folded into one update).
        roster_interval: Duration = Duration::from_millis(100), key "roster_interval_ms" with "millis",
            env "LECTERN_ROSTER_INTERVAL_MS", flag "roster-interval-ms";
    }
}

section! {
    /// `lectern relay` (docs/RELAY.md). It also reads `redis`, `redis_ca`, `[limits]` and `[timing]`.
    pub struct RelayKeys at "relay" {
        /// Address and port the relay listens on.
        listen: SocketAddr = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, lectern_protocol::DEFAULT_PORT)),
            key "listen", env "LECTERN_RELAY_LISTEN", flag "listen";
        /// A folder holding the relay's certificate and key (`cert.pem`, `key.pem`). A relay faces
        /// the internet: give it a real certificate. Without one it makes a self-signed one (tests).
        tls: Option<PathBuf> = None, key "tls", env "LECTERN_RELAY_TLS", flag "tls",
            unset "a self-signed certificate";
        /// How often the relay tells teachers' servers it is alive, in ms (100 to 60000); they take
        /// the students of a relay silent for 3.5 of these as gone.
        alive: Duration = Duration::from_secs(10), key "alive_ms" with "millis", env "LECTERN_RELAY_ALIVE_MS",
            flag "alive-ms";
        /// The load balancers (addresses or CIDR blocks; a list, the flag repeated) whose connections
        /// begin with a PROXY protocol v2 header naming the student, so that per-address limits see
        /// students, not the balancer. Only these: a header from anywhere else is never read.
        proxy_from: Vec<String> = Vec::new(), key "proxy_from", env "LECTERN_RELAY_PROXY_FROM",
            flag "proxy-from", unset "none: no PROXY header is read";
        /// The relay's domain name: its certificate is then obtained and renewed over ACME
        /// (TLS-ALPN-01 on the relay's own port, which must be reachable as DOMAIN:443), so browsers
        /// at home trust it with nothing to install. Takes the place of `tls`.
        acme: Option<String> = None, key "acme", env "LECTERN_RELAY_ACME", flag "acme",
            unset "no ACME: the certificate in tls";
        /// The ACME server's directory URL.
        acme_directory: String = "https://acme-v02.api.letsencrypt.org/directory".to_string(),
            key "acme_directory", env "LECTERN_RELAY_ACME_DIRECTORY", flag "acme-directory";
        /// A PEM file of the certificate authority the ACME server's own HTTPS is checked against
        /// (a private ACME server); unset, the web's usual authorities.
        acme_ca: Option<PathBuf> = None, key "acme_ca", env "LECTERN_RELAY_ACME_CA", flag "acme-ca",
            unset "the web's authorities";
        /// Where the ACME account and certificates are kept between starts (a restart must not ask
        /// for a new certificate: ACME servers limit how often).
        acme_cache: Option<PathBuf> = None, key "acme_cache", env "LECTERN_RELAY_ACME_CACHE",
            flag "acme-cache", unset "acme/ in the data folder";
        /// An e-mail address the ACME server may write to about the certificate.
        acme_contact: Option<String> = None, key "acme_contact", env "LECTERN_RELAY_ACME_CONTACT",
            flag "acme-contact", unset "none";
    }
}

/// Durations as whole milliseconds in config files.
pub(super) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
