//! Every configuration key: its dotted path, its environment variable and what it is for. This table is
//! the documentation `lectern config --keys` prints and the README's table is checked against.

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The dotted path, as in the TOML file (`limits.student_rate`).
    pub path: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// What it does.
    pub doc: &'static str,
}

const fn key(path: &'static str, env: &'static str, doc: &'static str) -> Key {
    Key { path, env, doc }
}

/// Every key, in the order the README lists them.
pub const KEYS: &[Key] = &[
    key(
        "data_dir",
        "LECTERN_DATA_DIR",
        "Certificate, teacher key, documents and session log (default: the platform's data folder).",
    ),
    key("listen", "LECTERN_LISTEN", "Address and port to listen on; `[::]:7443` takes IPv4 and IPv6."),
    key("name", "LECTERN_NAME", "The classroom's name, as students see it (default: `Lectern on HOST`)."),
    key("title", "LECTERN_TITLE", "The lesson's title (default: the opening document's)."),
    key(
        "code",
        "LECTERN_CODE",
        "A fixed join code of 4 to 12 digits (default: random per lesson). Shown masked.",
    ),
    key(
        "docs",
        "LECTERN_DOCS",
        "PDFs to add at start, the first opened (a list; in the environment, `:`-separated).",
    ),
    key("new_lesson", "LECTERN_NEW_LESSON", "Start a new lesson instead of continuing the open one."),
    key(
        "redis",
        "LECTERN_REDIS",
        "Bridge the lesson to this Redis (`redis://` or `rediss://`) for remote students on relays.",
    ),
    key(
        "redis_ca",
        "LECTERN_REDIS_CA",
        "For `rediss://`: a PEM file of the certificates to check Redis's against (default: the system's).",
    ),
    key(
        "relay_url",
        "LECTERN_RELAY_URL",
        "Where remote students reach the relays (`https://relay.example.org`), for the console's remote join link.",
    ),
    key(
        "relay_fp",
        "LECTERN_RELAY_FP",
        "The relays' certificate fingerprint, put in the remote join link for apps to pin (browsers need none).",
    ),
    key(
        "metrics",
        "LECTERN_METRICS",
        "Who may read /metrics: `local` (this machine, or with the teacher key), `open` (anyone) or `off`.",
    ),
    key(
        "log.events",
        "LECTERN_LOG_EVENTS",
        "Log joins, changes, acks and hands (false only to measure what logging costs).",
    ),
    key(
        "log.keep_days",
        "LECTERN_KEEP_DAYS",
        "Delete lessons that ended more than this many days ago, at start.",
    ),
    key("mdns.disabled", "LECTERN_NO_MDNS", "Do not announce the classroom by mDNS."),
    key(
        "mdns.interfaces",
        "LECTERN_MDNS_INTERFACES",
        "Announce only on these interfaces (a list; default: every usable one).",
    ),
    key(
        "limits.max_frame_bytes",
        "LECTERN_MAX_FRAME_BYTES",
        "Largest client frame in bytes (close 1009 above it).",
    ),
    key("limits.student_rate", "LECTERN_STUDENT_RATE", "Frames a second a student may send."),
    key("limits.student_burst", "LECTERN_STUDENT_BURST", "Frames a student may send at once."),
    key("limits.teacher_rate", "LECTERN_TEACHER_RATE", "Frames a second a teacher may send."),
    key("limits.teacher_burst", "LECTERN_TEACHER_BURST", "Frames a teacher may send at once."),
    key(
        "limits.failed_hellos_per_minute",
        "LECTERN_FAILED_HELLOS_PER_MINUTE",
        "Failed joins an address may make a minute before 4029.",
    ),
    key("limits.max_participants", "LECTERN_MAX_PARTICIPANTS", "Students online in one room."),
    key(
        "limits.max_students_per_address",
        "LECTERN_MAX_STUDENTS_PER_ADDRESS",
        "Students online in one room from one address (an IPv6 /64), so one device cannot fill the class.",
    ),
    key(
        "limits.queue_capacity",
        "LECTERN_QUEUE_CAPACITY",
        "Frames queued per connection before it gets one snapshot instead.",
    ),
    key(
        "limits.max_connections",
        "LECTERN_MAX_CONNECTIONS",
        "Open connections (handshakes included) before new ones wait.",
    ),
    key(
        "limits.max_connections_per_address",
        "LECTERN_MAX_CONNECTIONS_PER_ADDRESS",
        "Open connections from one address (one IPv6 /64) before its new ones are closed at once.",
    ),
    key(
        "limits.unsent_bytes",
        "LECTERN_UNSENT_BYTES",
        "Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT); 0 leaves the system's.",
    ),
    key(
        "timing.hello_timeout_ms",
        "LECTERN_HELLO_TIMEOUT_MS",
        "How long a client has to say hello (close 4008 after).",
    ),
    key(
        "timing.knock_timeout_ms",
        "LECTERN_KNOCK_TIMEOUT_MS",
        "How long a student who asked to join waits for the teacher (close 4008 after).",
    ),
    key(
        "timing.heartbeat_ms",
        "LECTERN_HEARTBEAT_MS",
        "Ping interval; a connection silent for two is closed.",
    ),
    key(
        "timing.rto_min_ms",
        "LECTERN_RTO_MIN_MS",
        "Minimum TCP retransmission timeout of lesson sockets (Linux 6.15+); 0 keeps the system's 200 ms.",
    ),
    key(
        "timing.tail_probe_ms",
        "LECTERN_TAIL_PROBE_MS",
        "A tiny frame this long after a change nothing follows, so a lost segment is resent within a round trip; 0: off.",
    ),
    key(
        "timing.tls_handshake_timeout_ms",
        "LECTERN_TLS_HANDSHAKE_TIMEOUT_MS",
        "How long a TLS handshake may take.",
    ),
    key(
        "timing.idle_timeout_ms",
        "LECTERN_IDLE_TIMEOUT_MS",
        "How long an HTTP connection may wait for a request's headers (idle between requests included), and a request's body may take to arrive.",
    ),
    key(
        "timing.shutdown_grace_ms",
        "LECTERN_SHUTDOWN_GRACE_MS",
        "How long shutdown waits for connections to close.",
    ),
    key(
        "timing.roster_interval_ms",
        "LECTERN_ROSTER_INTERVAL_MS",
        "How often acks and round trips reach the teacher's roster.",
    ),
];
