//! `lectern serve` and `lectern config`: the classroom server, configured from its defaults, a TOML
//! file, the environment and these flags (each overriding the one before), and the banner that tells
//! people how to join.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use lectern::config::{Config, Source};
use lectern::protocol::link::JoinLink;
use lectern::server::Server;

/// Flags of `serve` and `config`: the config file, and one flag per key (`lectern config --keys`).
/// None has a default of its own: an absent flag leaves the value of the config file, the
/// environment or the built-in default.
#[derive(Args, Debug, Default)]
pub struct ServeFlags {
    /// A TOML config file (default: lectern.toml in the data directory, if there is one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub keys: crate::flags::KeyFlags<false>,
}

impl ServeFlags {
    /// The configuration in effect: defaults, then the file, the environment and these flags.
    pub fn config(&self) -> anyhow::Result<Config> {
        let source = Source {
            file: self.config.as_deref(),
            env: std::env::vars().collect(),
            flags: self.keys.given.clone(),
            ..Source::default()
        };
        Ok(Config::load(&source)?)
    }
}

/// `lectern serve` arguments.
#[derive(Args, Debug)]
pub struct Serve {
    #[command(flatten)]
    flags: ServeFlags,
    /// Print one JSON line once ready (for scripts); logs go to stderr.
    #[arg(long)]
    json: bool,
}

/// `lectern config` arguments.
#[derive(Args, Debug)]
pub struct ShowConfig {
    #[command(flatten)]
    flags: ServeFlags,
    /// List every key with its environment variable, flag and what it does, instead.
    #[arg(long)]
    keys: bool,
    /// With --keys: as the README's Markdown table (with each key's default).
    #[arg(long, requires = "keys")]
    markdown: bool,
}

/// Prints the configuration in effect, secrets masked.
pub fn show(args: ShowConfig) -> anyhow::Result<ExitCode> {
    if args.keys {
        let keys = Config::keys();
        if args.markdown {
            let defaults = toml::Table::try_from(Config::default())?;
            print!("{}", lectern::config::keys::markdown(&keys, &defaults));
        } else {
            for k in keys {
                println!("{:<36} {:<36} --{:<28} {}", k.path(), k.env, k.flag, k.doc());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", args.flags.config()?.to_masked_toml());
    Ok(ExitCode::SUCCESS)
}

/// Runs the classroom server until SIGINT or SIGTERM.
pub async fn serve(args: Serve) -> anyhow::Result<ExitCode> {
    let mut config = args.flags.config()?;
    // Uploads are checked by this program in a process of its own, its memory capped (lower it with
    // LECTERN_PDF_CHECK_MEMORY, in bytes: tests do).
    let memory = std::env::var("LECTERN_PDF_CHECK_MEMORY").ok().and_then(|m| m.parse().ok());
    config.pdf_checker = lectern::docs::check::this_program()
        .map(|exe| (exe, memory.unwrap_or(lectern::docs::check::CHECK_MEMORY)));
    let listener = lectern::tcp::bind(config.listen).with_context(|| {
        format!("cannot listen on {} (is another server running? try --listen [::]:0)", config.listen)
    })?;
    let server = Server::start(&config, listener)?;
    if args.json {
        println!("{}", serde_json::to_string(server.ready())?);
    } else {
        println!("{}", banner(&server));
    }
    crate::signal::shutdown().await;
    server.wait_stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// The links a person needs: the teacher console (key in the fragment) and the student join link.
fn links(server: &Server) -> (String, String) {
    let addr = server.addr();
    let host = if addr.ip().is_unspecified() { lectern::net::lan_address() } else { addr.ip() };
    let host = if host.is_ipv6() { format!("[{host}]") } else { host.to_string() };
    let base = format!("https://{host}:{}", addr.port());
    let ready = server.ready();
    let teacher = format!("{base}/teacher#key={}", ready.teacher_key);
    (teacher, JoinLink::format(&base, &ready.code, &ready.fingerprint, &server.app().pk))
}

/// A QR code of `text`, drawn with Unicode half blocks for a terminal.
fn qr(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

fn banner(server: &Server) -> String {
    let (teacher, join) = links(server);
    let room = server.app().room();
    let (_, state) = room.state();
    let doc =
        state.doc.map(|d| format!("{}, {} pages", d.title, d.pages)).unwrap_or_else(|| "no document".into());
    format!(
        "\nLectern is serving \"{title}\" ({doc})\n\n  Join code:        {code}\n  Students join:    {join}\n  Teacher console:  {teacher}\n  Fingerprint:      {fp}\n\n  From a terminal:  lectern join '{join}' --name YOUR-NAME\n\n{qr}\nScan to join. Press Ctrl-C to stop; the lesson continues when you start again.\n",
        title = room.info().title,
        code = room.code(),
        fp = server.ready().fingerprint,
        qr = qr(&join),
    )
}
