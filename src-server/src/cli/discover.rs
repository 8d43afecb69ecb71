//! `lectern discover` and `lectern doctor`: what is announced on this network, and what would stop
//! students from finding or reaching a classroom.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use lectern::discovery::{Browser, Found, Interfaces};

#[derive(Args, Debug)]
pub struct Discover {
    /// How long to listen.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// One JSON array (or, with --watch, one JSON object per event).
    #[arg(long)]
    pub json: bool,
    /// Print classrooms as they appear and leave, until the timeout.
    #[arg(long)]
    pub watch: bool,
    /// Browse only on this interface (repeatable; default: every usable one).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    pub mdns_interfaces: Vec<String>,
}

/// `lectern doctor` checks what `lectern serve` would do with the same configuration (file,
/// environment and flags): the port it would listen on, the interfaces it would announce on, and
/// the data directory it would recognise itself by.
#[derive(Args, Debug)]
pub struct Doctor {
    #[command(flatten)]
    flags: crate::serve::ServeFlags,
}

pub async fn discover(args: Discover) -> anyhow::Result<ExitCode> {
    let interfaces = Interfaces::from_names(&args.mdns_interfaces);
    if args.watch {
        let mut browser = Browser::open(&interfaces).await?;
        let deadline = std::time::Instant::now() + args.timeout;
        use std::io::Write;
        let mut out = std::io::stdout();
        while let Some(event) = browser.next(deadline).await {
            let line = if args.json {
                serde_json::to_string(&event)?
            } else {
                match event {
                    Found::Resolved(c) => {
                        let (name, title) = (crate::join::clean(&c.name), crate::join::clean(&c.title));
                        format!("+ {name}  \"{title}\"  {}", c.ws_url().unwrap_or_default())
                    }
                    Found::Removed { fullname } => {
                        format!("- {}", crate::join::clean(&lectern::discovery::instance_name(&fullname)))
                    }
                }
            };
            // The reader went away (a closed pipe): stop quietly.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        browser.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let found = lectern::discovery::discover(&interfaces, args.timeout).await?;
    if args.json {
        println!("{}", serde_json::to_string(&found)?);
    } else if found.is_empty() {
        println!("No classroom found in {} s. Run `lectern doctor` to see why.", args.timeout.as_secs_f32());
    } else {
        for c in &found {
            let addrs: Vec<String> = c.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "{}\n  lesson: {}\n  join:   {}\n  at:     {} port {}\n  fp:     {}",
                crate::join::clean(&c.name),
                crate::join::clean(&c.title),
                c.ws_url().unwrap_or_default(),
                addrs.join(", "),
                c.port,
                c.fingerprint
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every check and prints it; exit code 1 when something needs changing.
pub async fn doctor(args: Doctor) -> anyhow::Result<ExitCode> {
    let config = args.flags.config()?;
    let checks = lectern::doctor::checks(config.listen, &config.mdns.interfaces, &config.data_dir()).await;
    for c in &checks {
        println!("{} {}", if c.ok { "✓" } else { "✗" }, c.what);
        if let Some(fix) = &c.fix {
            println!("  → {fix}");
        }
    }
    let bad = checks.iter().filter(|c| !c.ok).count();
    if bad == 0 {
        println!("Everything a classroom needs looks right.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{bad} thing(s) to change (see → above).");
        Ok(ExitCode::FAILURE)
    }
}
