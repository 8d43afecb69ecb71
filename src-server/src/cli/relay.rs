//! `lectern relay`: serves remote students the rooms that teachers' servers bridge to Redis
//! (docs/RELAY.md). Stateless: run as many as the load needs, behind one load balancer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use lectern::config::{Limits, Timing};
use lectern::relay::serve::{Relay, RelayConfig};
use lectern::tls::Identity;

/// Flags of `relay`.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// The Redis the teachers' servers bridge to (redis:// or rediss://, with a password if needed).
    #[arg(long, env = "LECTERN_REDIS", value_name = "URL", hide_env_values = true)]
    redis: String,
    /// For rediss://: a PEM file of the certificates to check Redis's against (default: the system's).
    #[arg(long, env = "LECTERN_REDIS_CA", value_name = "FILE")]
    redis_ca: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "LECTERN_RELAY_LISTEN", default_value = "[::]:7443")]
    listen: SocketAddr,
    /// A folder holding the relay's certificate and key (`cert.pem`, `key.pem`). A relay faces the
    /// internet: give it a real certificate. Without one it makes a self-signed one (for tests).
    #[arg(long, env = "LECTERN_RELAY_TLS", value_name = "DIR")]
    tls: Option<PathBuf>,
    /// How often to tell teachers' servers this relay is alive, in ms. A teacher's server takes the
    /// students of a relay silent for 3.5 of these as gone (it crashed, or lost Redis).
    #[arg(long, env = "LECTERN_RELAY_ALIVE_MS", default_value_t = 10_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=60_000))]
    alive_ms: u64,
    /// Print one JSON line when ready (address, certificate fingerprint), for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs the relay until SIGINT or SIGTERM.
pub async fn relay(args: RelayArgs) -> anyhow::Result<ExitCode> {
    let identity = match &args.tls {
        Some(dir) => {
            Identity::load(dir).with_context(|| format!("reading the certificate in {}", dir.display()))?
        }
        None => Identity::generate_for_this_host()?,
    };
    let fingerprint = identity.fingerprint();
    let listener =
        lectern::tcp::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let config = RelayConfig {
        redis: args.redis,
        redis_ca: args.redis_ca,
        identity,
        limits: Limits {
            // Behind a load balancer every student comes from its address (no PROXY protocol yet):
            // a per-address cap would cut a district to 64 students. Wrong codes are still counted.
            max_students_per_address: usize::MAX,
            max_connections_per_address: usize::MAX,
            ..Limits::default()
        },
        timing: Timing::default(),
        alive: std::time::Duration::from_millis(args.alive_ms),
    };
    let relay = Relay::start(config, listener)?;
    let addr = relay.addr();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ready": true, "addr": addr.to_string(), "fingerprint": fingerprint})
        );
    } else {
        println!("Lectern relay on {addr} (certificate fingerprint {fingerprint})");
    }
    crate::signal::shutdown().await;
    relay.stop().await;
    Ok(ExitCode::SUCCESS)
}
