//! Server settings: the limits of PROTOCOL.md §10 and the timing of §3 and §7, all overridable.

use std::time::Duration;

/// Per-connection and per-room limits. The defaults are the protocol's; benchmarks raise them here,
/// never by changing the defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest client frame, in bytes (close 1009 above it).
    pub max_frame_bytes: usize,
    /// Student frames per second.
    pub student_rate: u32,
    /// Student burst.
    pub student_burst: u32,
    /// Teacher frames per second.
    pub teacher_rate: u32,
    /// Teacher burst.
    pub teacher_burst: u32,
    /// Failed hellos per address per minute before 4029.
    pub failed_hellos_per_minute: u32,
    /// Students online in one room.
    pub max_participants: usize,
    /// Frames queued per connection before conflation.
    pub queue_capacity: usize,
    /// Open connections (TLS handshakes included) before the accept loop waits.
    pub max_connections: usize,
    /// Unsent bytes the kernel may hold per socket (`TCP_NOTSENT_LOWAT`). Without it a slow link hides
    /// megabytes of stale frames in the kernel, which is seconds of lag no snapshot can skip; with it the
    /// backlog stays in the outbox, where it is conflated. In-flight data is not limited, so throughput is not.
    pub unsent_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 * 1024,
            student_rate: 50,
            student_burst: 100,
            teacher_rate: 240,
            teacher_burst: 240,
            failed_hellos_per_minute: 10,
            max_participants: 500,
            queue_capacity: 256,
            max_connections: 20_000,
            unsent_bytes: 16 * 1024,
        }
    }
}

/// Timing of the handshake and of liveness.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a client has to send `hello` (close 4008 after).
    pub hello_timeout: Duration,
    /// Ping interval, told to clients as `heartbeat_ms`; a connection silent for two is closed.
    pub heartbeat: Duration,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long shutdown waits for connections to close.
    pub shutdown_grace: Duration,
    /// How often acks and round trips are folded into one roster update (≤ 10 a second by default).
    pub roster_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            hello_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_millis(1500),
            roster_interval: Duration::from_millis(100),
        }
    }
}
