//! `lectern relay`: serves remote students the rooms that teachers' servers bridge to Redis
//! (docs/RELAY.md). Stateless: run as many as the load needs, behind one load balancer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use lectern::config::{Config, Limits, Source};
use lectern::relay::serve::{Relay, RelayConfig};
use lectern::tls::Identity;
use lectern::transport::proxy::TrustedProxies;

/// Flags of `relay`: the config file, and one flag per key it reads (`[relay]`, `redis`, `redis_ca`,
/// `[limits]`, `[timing]`), which also come from `lectern.toml` and `LECTERN_*` as the server's do.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// A TOML config file (none by default: a relay does not read a teacher's server's lectern.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    keys: crate::flags::KeyFlags<true>,
    /// Print one JSON line when ready (address, certificate fingerprint), for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs the relay until SIGINT or SIGTERM.
pub async fn relay(args: RelayArgs) -> anyhow::Result<ExitCode> {
    let source = Source {
        file: args.config.as_deref(),
        no_default_file: true,
        env: std::env::vars().collect(),
        flags: args.keys.given,
    };
    let config = Config::load(&source)?;
    let Some(redis) = config.redis.clone() else {
        anyhow::bail!(
            "a relay needs the Redis the teachers' servers bridge to: --redis URL, LECTERN_REDIS, or redis in lectern.toml"
        );
    };
    let acme = config.relay.acme.clone().map(|domain| lectern::relay::acme::Acme {
        domain,
        directory: config.relay.acme_directory.clone(),
        ca: config.relay.acme_ca.clone(),
        cache: config.relay.acme_cache.clone().unwrap_or_else(|| config.data_dir().join("acme")),
        contact: config.relay.acme_contact.clone(),
    });
    let identity = match &config.relay.tls {
        Some(dir) => {
            Identity::load(dir).with_context(|| format!("reading the certificate in {}", dir.display()))?
        }
        None => Identity::generate_for_this_host()?,
    };
    // An ACME certificate is trusted by name, and changes at each renewal: there is none to pin.
    let fingerprint = if acme.is_some() { String::new() } else { identity.fingerprint() };
    let listen = config.relay.listen;
    let listener = lectern::tcp::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let proxy_from = TrustedProxies::parse(&config.relay.proxy_from).map_err(anyhow::Error::msg)?;
    let limits = if proxy_from.is_empty() {
        // Behind a load balancer that does not name its clients every student comes from its
        // address: a per-address cap would cut a district to 64 students. Wrong codes are still
        // counted.
        Limits {
            max_students_per_address: usize::MAX,
            max_connections_per_address: usize::MAX,
            ..config.limits
        }
    } else {
        config.limits // the balancers name each student: the limits see students again
    };
    let config = RelayConfig {
        redis,
        redis_ca: config.redis_ca,
        identity,
        limits,
        timing: config.timing,
        alive: config.relay.alive,
        proxy_from,
        acme,
    };
    let config_domain = config.acme.as_ref().map(|a| a.domain.clone());
    let relay = Relay::start(config, listener)?;
    let addr = relay.addr();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ready": true, "addr": addr.to_string(), "fingerprint": fingerprint})
        );
    } else {
        match &config_domain {
            Some(domain) => println!("Lectern relay on {addr} (certificate for {domain} from ACME)"),
            None => println!("Lectern relay on {addr} (certificate fingerprint {fingerprint})"),
        }
    }
    crate::signal::shutdown().await;
    relay.stop().await;
    Ok(ExitCode::SUCCESS)
}
