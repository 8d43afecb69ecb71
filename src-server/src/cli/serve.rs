//! `lectern serve` and `lectern config`: the classroom server, configured from its defaults, a TOML
//! file, the environment and these flags (each overriding the one before), and the banner that tells
//! people how to join.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use lectern::config::{Config, Source};
use lectern::protocol::link::JoinLink;
use lectern::server::Server;
use toml::Value;

/// Flags of `serve` and `config`. None has a default of its own: an absent flag leaves the value of
/// the config file, the environment or the built-in default (see `lectern config`).
#[derive(Args, Debug, Default)]
pub struct ServeFlags {
    /// A TOML config file (default: lectern.toml in the data directory, if there is one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the certificate, teacher key, documents and lessons are kept.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A PDF to add to the lesson (repeatable); the first one is opened.
    #[arg(long = "doc", value_name = "FILE")]
    pub docs: Vec<PathBuf>,
    /// The lesson's title.
    #[arg(long)]
    pub title: Option<String>,
    /// A fixed join code (4 to 12 digits), for demos and tests.
    #[arg(long)]
    pub code: Option<String>,
    /// The classroom's name, as students see it.
    #[arg(long)]
    pub name: Option<String>,
    /// Start a new lesson (new room and join code) instead of continuing the open one.
    #[arg(long)]
    pub new_lesson: bool,
    /// Do not log joins, changes, acks and hands (to measure what logging costs).
    #[arg(long)]
    pub no_log: bool,
    /// Delete lessons that ended more than this many days ago, at start.
    #[arg(long)]
    pub keep_days: Option<u32>,
    /// Heartbeat interval in ms (clients ping this often; silent connections close after two).
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Largest client frame in bytes.
    #[arg(long)]
    pub max_frame_bytes: Option<u64>,
    /// Student frames per second.
    #[arg(long)]
    pub student_rate: Option<u32>,
    /// Teacher frames per second.
    #[arg(long)]
    pub teacher_rate: Option<u32>,
    /// Students online in one room.
    #[arg(long)]
    pub max_participants: Option<u64>,
    /// Failed joins per address per minute.
    #[arg(long)]
    pub failed_hellos_per_minute: Option<u32>,
    /// Frames queued per connection before it is sent one snapshot instead.
    #[arg(long)]
    pub queue_capacity: Option<u64>,
    /// Do not announce the classroom on the network (mDNS).
    #[arg(long)]
    pub no_mdns: bool,
    /// Announce only on this interface (repeatable; default: every usable one).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    pub mdns_interfaces: Vec<String>,
    /// Bridge the lesson to this Redis (redis:// or rediss://) for remote students on relays.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Where remote students reach the relays (https://HOST[:PORT]), for the console's remote join link.
    #[arg(long, value_name = "URL")]
    pub relay_url: Option<String>,
}

fn int(v: impl Into<u64>) -> Value {
    Value::Integer(i64::try_from(v.into()).unwrap_or(i64::MAX))
}

fn strings(v: &[impl ToString]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect())
}

impl ServeFlags {
    /// The flags that were given, as (key, value) overrides.
    fn overrides(&self) -> Vec<(&'static str, Value)> {
        let mut o: Vec<(&'static str, Value)> = Vec::new();
        let path = |p: &PathBuf| Value::String(p.display().to_string());
        if let Some(v) = &self.data_dir {
            o.push(("data_dir", path(v)));
        }
        if let Some(v) = self.listen {
            o.push(("listen", Value::String(v.to_string())));
        }
        if !self.docs.is_empty() {
            o.push(("docs", strings(&self.docs.iter().map(|d| d.display()).collect::<Vec<_>>())));
        }
        for (key, v) in [
            ("title", &self.title),
            ("code", &self.code),
            ("name", &self.name),
            ("redis", &self.redis),
            ("relay_url", &self.relay_url),
        ] {
            if let Some(v) = v {
                o.push((key, Value::String(v.clone())));
            }
        }
        if self.new_lesson {
            o.push(("new_lesson", Value::Boolean(true)));
        }
        if self.no_log {
            o.push(("log.events", Value::Boolean(false)));
        }
        if self.no_mdns {
            o.push(("mdns.disabled", Value::Boolean(true)));
        }
        if !self.mdns_interfaces.is_empty() {
            o.push(("mdns.interfaces", strings(&self.mdns_interfaces)));
        }
        let numbers: [(&'static str, Option<u64>); 8] = [
            ("log.keep_days", self.keep_days.map(u64::from)),
            ("timing.heartbeat_ms", self.heartbeat_ms.map(|ms| ms.max(100))),
            ("limits.max_frame_bytes", self.max_frame_bytes),
            ("limits.student_rate", self.student_rate.map(u64::from)),
            ("limits.teacher_rate", self.teacher_rate.map(u64::from)),
            ("limits.max_participants", self.max_participants),
            ("limits.failed_hellos_per_minute", self.failed_hellos_per_minute.map(u64::from)),
            ("limits.queue_capacity", self.queue_capacity),
        ];
        for (key, v) in numbers {
            if let Some(v) = v {
                o.push((key, int(v)));
            }
        }
        o
    }

    /// The configuration in effect: defaults, then the file, the environment and these flags.
    pub fn config(&self) -> anyhow::Result<Config> {
        let source =
            Source { file: self.config.as_deref(), env: std::env::vars().collect(), flags: self.overrides() };
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
    /// List every key with its environment variable and what it does, instead.
    #[arg(long)]
    keys: bool,
}

/// Prints the configuration in effect, secrets masked.
pub fn show(args: ShowConfig) -> anyhow::Result<ExitCode> {
    if args.keys {
        for k in lectern::config::keys::KEYS {
            println!("{:<34} {:<34} {}", k.path, k.env, k.doc);
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
