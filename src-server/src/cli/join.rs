//! `lectern join`: follow a lesson from the terminal as a student, by link or by discovery.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lectern::client::{Cause, Client, ClientOptions, Credentials, Event, JoinLink};
use lectern::discovery::Interfaces;

#[derive(Args, Debug)]
pub struct Join {
    /// The join link (https://HOST:PORT/join#code=…&fp=…), a wss:// URL, or HOST:PORT.
    #[arg(required_unless_present = "discover")]
    pub url: Option<String>,
    /// Find the classroom on the network instead of a link: by name, or the only one found.
    #[arg(long, num_args = 0..=1, value_name = "NAME", conflicts_with = "url")]
    pub discover: Option<Option<String>>,
    /// How long --discover looks.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Browse only on this interface (repeatable).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    pub mdns_interfaces: Vec<String>,
    /// The join code (if the link does not carry it). Without one, ask the teacher to let you in.
    #[arg(long)]
    pub code: Option<String>,
    /// The server's certificate fingerprint (if the link does not carry it). It may start with `-`.
    #[arg(long, allow_hyphen_values = true)]
    pub fp: Option<String>,
    /// Your name, as the teacher sees it.
    #[arg(long)]
    pub name: String,
    /// This device's id (default: one kept in the data directory).
    #[arg(long)]
    pub device: Option<String>,
    /// Where the device id is kept.
    #[arg(long, env = "LECTERN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also trust the authorities in this PEM file, for a relay whose certificate a private ACME
    /// authority issued (a district's own); only links that pin no fingerprint are checked by name.
    #[arg(long, value_name = "FILE", env = "LECTERN_TRUST")]
    pub trust: Option<PathBuf>,
    /// Print one JSON object per event.
    #[arg(long)]
    pub json: bool,
}

fn device_id(args: &Join) -> anyhow::Result<String> {
    if let Some(d) = &args.device {
        return Ok(d.clone());
    }
    let dir = args.data_dir.clone().unwrap_or_else(lectern::config::default_data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("device-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        // A valid id (PROTOCOL.md §3); an empty or damaged file gets a new one.
        if (8..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(id.to_string());
        }
    }
    let id = format!("cli-{:016x}", rand::random::<u64>());
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

pub async fn join(args: Join) -> anyhow::Result<ExitCode> {
    // Read first: a damaged file is said at once, not after discovery has looked for a classroom.
    let authorities = args.trust.as_deref().map(lectern::tls::read_authorities).transpose()?;
    let link = match (&args.url, &args.discover) {
        (Some(url), _) => JoinLink::parse(url)?,
        (None, Some(name)) => {
            let interfaces = Interfaces::from_names(&args.mdns_interfaces);
            let room = lectern::discovery::find(&interfaces, name.as_deref(), args.timeout).await?;
            eprintln!(
                "found \"{}\" ({}) at {}",
                clean(&room.name),
                clean(&room.title),
                room.ws_url().unwrap_or_default()
            );
            JoinLink {
                ws_url: room.ws_url().context("the classroom announced no address")?,
                code: None,
                fingerprint: Some(room.fingerprint),
                room: None,
                pk: None,
            }
        }
        (None, None) => anyhow::bail!("give a join link or --discover"),
    };
    let credentials = match args.code.clone().or(link.code.clone()) {
        Some(code) => Credentials::Student { code, name: args.name.clone() },
        None => Credentials::Knock { name: args.name.clone() },
    };
    let relay = link.relay().is_some();
    if let Some(roots) = authorities {
        if args.fp.is_some() || link.fingerprint.is_some() {
            eprintln!("--trust does not apply: this link pins the server's certificate by its fingerprint");
        }
        lectern::tls::trust_also(roots);
    }
    let fp = match args.fp.clone().or(link.fingerprint) {
        Some(fp) => {
            anyhow::ensure!(
                lectern::protocol::link::is_fingerprint(&fp),
                "--fp must be a 43-character fingerprint"
            );
            fp
        }
        // A relay with a certificate for its name (`lectern relay --acme`) has none to pin: its name
        // is checked against the web's authorities, and every state against the teacher's key.
        None if relay => String::new(),
        None => anyhow::bail!(
            "no fingerprint: give --fp or a join link (a relay's names the teacher's key, pk=…)"
        ),
    };
    let device = device_id(&args)?;
    let mut options = ClientOptions::new(link.ws_url, fp, credentials, device);
    // Through a relay, every state must carry the teacher's signature (PROTOCOL-ADDITIONS.md, E).
    if let (Some(room), Some(pk)) = (link.room, link.pk) {
        options.relay = Some(lectern::client::RelayTrust { room, pk });
    }
    let mut client = Client::start(options);
    let mut waiting_said = false;
    loop {
        let event = tokio::select! {
            e = client.next_event() => e,
            _ = crate::signal::shutdown() => {
                client.close().await;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let Some(event) = event else { return Ok(ExitCode::SUCCESS) };
        // `waiting` repeats every heartbeat; a person needs to read it once per knock.
        match (&event, waiting_said) {
            (Event::Waiting, false) if !args.json => println!("waiting for the teacher to let you in"),
            (Event::Connected { .. } | Event::Disconnected { .. }, _) => waiting_said = false,
            _ => {}
        }
        waiting_said |= matches!(event, Event::Waiting);
        print_event(&event, args.json);
        if let Event::Stopped { code, .. } = event {
            let ok = matches!(code, Some(1000) | Some(4000));
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
    }
}

/// Text a server, relay or mDNS record chose, made safe for a terminal: control characters (C0, DEL
/// and C1: an escape sequence that would move the cursor, retitle the window or rewrite earlier
/// lines) and bidirectional overrides (which reorder what follows on the line) become U+FFFD. JSON
/// output is for programs: it keeps the text as sent, with C0 escaped.
pub(crate) fn clean(text: &str) -> String {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    text.chars().map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c }).collect()
}

fn print_event(event: &Event, json: bool) {
    if json {
        let v = match event {
            Event::Connected { you, room, resumed, teacher_online, .. } => serde_json::json!({
                "event":"connected","you":you,"room":room,"resumed":resumed,"teacher_online":teacher_online}),
            Event::State { seq, state, cause } => serde_json::json!({
                "event":"state","seq":seq,"cause":format!("{cause:?}").to_lowercase(),"state":state}),
            Event::Roster(changes) => serde_json::json!({"event":"roster","changes":changes}),
            Event::Waiting => serde_json::json!({"event":"waiting"}),
            Event::Knocks(knocks) => serde_json::json!({"event":"knocks","knocks":knocks}),
            Event::Guessing { wrong, waiting_room } => {
                serde_json::json!({"event":"guessing","wrong":wrong,"waiting_room":waiting_room})
            }
            Event::Teacher { online } => serde_json::json!({"event":"teacher","online":online}),
            Event::WaitingRoom { on } => serde_json::json!({"event":"waiting_room","on":on}),
            Event::Error { code, message } => {
                serde_json::json!({"event":"error","code":code,"message":message})
            }
            Event::Disconnected { code, reason } => {
                serde_json::json!({"event":"disconnected","code":code,"reason":reason})
            }
            Event::Stopped { code, reason } => {
                serde_json::json!({"event":"stopped","code":code,"reason":reason})
            }
        };
        println!("{v}");
        return;
    }
    match event {
        Event::Connected { you, room, resumed, teacher_online, .. } => println!(
            "{} \"{}\" as {} ({}){}",
            if *resumed { "rejoined" } else { "joined" },
            clean(&room.title),
            clean(&you.name),
            clean(&you.id),
            if *teacher_online { "" } else { ", teacher offline" }
        ),
        Event::State { seq, state, cause } => {
            let doc = state.doc.as_ref().map(|d| format!("{} p{}/{}", clean(&d.title), state.page, d.pages));
            let pos = state.pos.map(|p| format!("{:.2},{:.2}", p.x, p.y)).unwrap_or_else(|| "-".into());
            let hl =
                state.highlight.map(|h| format!("p{} {:.2},{:.2} {:.2}x{:.2}", h.page, h.x, h.y, h.w, h.h));
            println!(
                "seq {seq} {}{} | pointer {pos} | zoom {} | {:?} | highlight {} | notice {}{}",
                doc.unwrap_or_else(|| "no document".into()),
                if *cause == Cause::Sync { " (resynced)" } else { "" },
                state.zoom,
                state.mode,
                hl.unwrap_or_else(|| "-".into()),
                clean(state.notice.as_deref().unwrap_or("-")),
                if state.ended { " | ENDED" } else { "" },
            );
        }
        Event::Roster(_)
        | Event::Knocks(_)
        | Event::Waiting
        | Event::Guessing { .. }
        | Event::WaitingRoom { .. } => {}
        Event::Teacher { online } => println!("teacher {}", if *online { "back online" } else { "offline" }),
        Event::Error { code, message } => println!("error {code:?}: {}", clean(message)),
        Event::Disconnected { code, reason } => {
            println!(
                "disconnected ({}): {}; reconnecting",
                code.map_or("-".into(), |c| c.to_string()),
                clean(reason)
            )
        }
        Event::Stopped { code, reason } => {
            println!("stopped ({}): {}", code.map_or("-".into(), |c| c.to_string()), clean(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn text_from_the_network_cannot_drive_the_terminal() {
        // Clear the screen, retitle the window, and a line that pretends to be another event.
        let hostile = "Room 12\x1b[2J\x1b]0;pwned\x07\nstopped (4003): removed\u{9b}2J \u{202E}rehcaet";
        let shown = clean(hostile);
        assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202E}'), "{shown:?}");
        assert!(shown.starts_with("Room 12\u{FFFD}[2J"));
        assert_eq!(clean("الفاتحة — page 3"), "الفاتحة — page 3");
    }
}
