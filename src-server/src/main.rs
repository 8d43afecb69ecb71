//! The `lectern` command: parses flags, sets up logging, binds, and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lectern::client::{Cause, Client, ClientOptions, Credentials, Event, JoinLink};
use lectern::config::{Limits, Timing};
use lectern::mdns::{Found, Interfaces};
use lectern::serve::{Ready, ServeOptions};

/// Lectern keeps a class on the same page.
#[derive(Parser, Debug)]
#[command(name = "lectern", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the classroom server (teacher's device).
    Serve(Serve),
    /// Follow a lesson from the terminal, as a student.
    Join(Join),
    /// Read the session log: lessons, timelines, attendance.
    Sessions(Sessions),
    /// List the classrooms announced on this network (mDNS).
    Discover(Discover),
    /// Check what commonly breaks discovery and joining in a classroom, and say what to change.
    Doctor(Doctor),
}

#[derive(Args, Debug)]
struct Discover {
    /// How long to listen.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// One JSON array (or, with --watch, one JSON object per event).
    #[arg(long)]
    json: bool,
    /// Print classrooms as they appear and leave, until the timeout.
    #[arg(long)]
    watch: bool,
    /// Browse only on this interface (repeatable; default: every usable one).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    mdns_interfaces: Vec<String>,
}

#[derive(Args, Debug)]
struct Doctor {
    /// The address `lectern serve` would listen on.
    #[arg(long, env = "LECTERN_LISTEN", default_value = "0.0.0.0:7443")]
    listen: SocketAddr,
    /// Check only this interface (repeatable; default: every usable one).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    mdns_interfaces: Vec<String>,
    /// The server's data directory, to recognise it on the port.
    #[arg(long, env = "LECTERN_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct Sessions {
    /// Where the session log is (the server's data directory).
    #[arg(long, env = "LECTERN_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Subcommand, Debug)]
enum SessionsCommand {
    /// List lessons, newest first.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A lesson's timeline and attendance.
    Show {
        /// Lesson id (from `list`) or room id.
        id: String,
    },
    /// Export a lesson's attendance (csv) or its whole record (json).
    Export {
        /// Lesson id (from `list`) or room id.
        id: String,
        /// csv: attendance, one row per student; json: lesson, attendance and timeline.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum Format {
    Csv,
    Json,
}

#[derive(Args, Debug)]
struct Serve {
    /// Where the certificate, teacher key, documents and lessons are kept.
    #[arg(long, env = "LECTERN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "LECTERN_LISTEN", default_value = "0.0.0.0:7443")]
    listen: SocketAddr,
    /// A PDF to add to the lesson (repeatable); the first one is opened.
    #[arg(long = "doc", value_name = "FILE")]
    docs: Vec<PathBuf>,
    /// The lesson's title.
    #[arg(long, env = "LECTERN_TITLE")]
    title: Option<String>,
    /// A fixed join code (4 to 12 digits), for demos and tests.
    #[arg(long, env = "LECTERN_CODE")]
    code: Option<String>,
    /// The classroom's name, as students see it.
    #[arg(long, env = "LECTERN_NAME")]
    name: Option<String>,
    /// Start a new lesson (new room and join code) instead of continuing the open one.
    #[arg(long)]
    new_lesson: bool,
    /// Do not log joins, changes, acks and hands (to measure what logging costs).
    #[arg(long, env = "LECTERN_NO_LOG")]
    no_log: bool,
    /// Delete lessons that ended more than this many days ago, at start.
    #[arg(long, env = "LECTERN_KEEP_DAYS", default_value_t = 365)]
    keep_days: u32,
    /// Print one JSON line once ready (for scripts); logs go to stderr.
    #[arg(long)]
    json: bool,
    /// Heartbeat interval in ms (clients ping this often; silent connections close after two).
    #[arg(long, env = "LECTERN_HEARTBEAT_MS", default_value_t = 10_000)]
    heartbeat_ms: u64,
    /// Largest client frame in bytes.
    #[arg(long, env = "LECTERN_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    max_frame_bytes: usize,
    /// Student frames per second (and burst = twice this).
    #[arg(long, env = "LECTERN_STUDENT_RATE", default_value_t = 50)]
    student_rate: u32,
    /// Teacher frames per second (and burst).
    #[arg(long, env = "LECTERN_TEACHER_RATE", default_value_t = 240)]
    teacher_rate: u32,
    /// Students online in one room.
    #[arg(long, env = "LECTERN_MAX_PARTICIPANTS", default_value_t = 500)]
    max_participants: usize,
    /// Failed joins per address per minute.
    #[arg(long, env = "LECTERN_FAILED_HELLOS_PER_MINUTE", default_value_t = 10)]
    failed_hellos_per_minute: u32,
    /// Frames queued per connection before it is sent one snapshot instead.
    #[arg(long, env = "LECTERN_QUEUE_CAPACITY", default_value_t = 256)]
    queue_capacity: usize,
    /// Do not announce the classroom on the network (mDNS).
    #[arg(long, env = "LECTERN_NO_MDNS")]
    no_mdns: bool,
    /// Announce only on this interface (repeatable; default: every usable one, without loopback
    /// and virtual interfaces).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    mdns_interfaces: Vec<String>,
}

#[derive(Args, Debug)]
struct Join {
    /// The join link (https://HOST:PORT/join#code=…&fp=…), a wss:// URL, or HOST:PORT.
    #[arg(required_unless_present = "discover")]
    url: Option<String>,
    /// Find the classroom on the network instead of a link: by name, or the only one found.
    #[arg(long, num_args = 0..=1, value_name = "NAME", conflicts_with = "url")]
    discover: Option<Option<String>>,
    /// How long --discover looks.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Browse only on this interface (repeatable).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    mdns_interfaces: Vec<String>,
    /// The join code (if the link does not carry it).
    #[arg(long)]
    code: Option<String>,
    /// The server's certificate fingerprint (if the link does not carry it). It may start with `-`.
    #[arg(long, allow_hyphen_values = true)]
    fp: Option<String>,
    /// Your name, as the teacher sees it.
    #[arg(long)]
    name: String,
    /// This device's id (default: one kept in the data directory).
    #[arg(long)]
    device: Option<String>,
    /// Where the device id is kept.
    #[arg(long, env = "LECTERN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print one JSON object per event.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LECTERN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lectern: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Join(args) => join(args).await,
            Command::Sessions(args) => sessions(args),
            Command::Discover(args) => discover(args).await,
            Command::Doctor(args) => {
                let dir = args.data_dir.unwrap_or_else(lectern::setup::default_data_dir);
                lectern::doctor::run(args.listen, &args.mdns_interfaces, &dir).await
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lectern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Serve) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_frame_bytes: args.max_frame_bytes,
        student_rate: args.student_rate,
        student_burst: args.student_rate.saturating_mul(2),
        teacher_rate: args.teacher_rate,
        teacher_burst: args.teacher_rate,
        failed_hellos_per_minute: args.failed_hellos_per_minute,
        max_participants: args.max_participants,
        queue_capacity: args.queue_capacity,
        ..Limits::default()
    };
    let timing = Timing { heartbeat: Duration::from_millis(args.heartbeat_ms.max(100)), ..Timing::default() };
    let opts = ServeOptions {
        data_dir: args.data_dir.unwrap_or_else(lectern::setup::default_data_dir),
        docs: args.docs,
        title: args.title,
        code: args.code,
        name: args.name,
        new_lesson: args.new_lesson,
        no_log: args.no_log,
        keep_days: Some(args.keep_days),
        limits,
        timing,
    };
    let server_opts = lectern::serve::prepare(&opts)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {} (is another server running? try --listen 0.0.0.0:0)", args.listen)
    })?;
    let addr = listener.local_addr()?;
    let ready = Ready::new(addr, &server_opts);
    let banner = lectern::serve::banner(addr, &server_opts);
    let server = lectern::server::start(listener, server_opts)?;
    let stop_mdns = tokio_util::sync::CancellationToken::new();
    if addr.ip().is_loopback() && !args.no_mdns {
        tracing::info!("listening on loopback only: not announcing on the network");
    }
    let mdns = (!args.no_mdns && !addr.ip().is_loopback()).then(|| {
        let (app, stop) = (server.app().clone(), stop_mdns.clone());
        let interfaces = Interfaces::from_names(&args.mdns_interfaces);
        tokio::spawn(async move {
            if let Err(e) = lectern::mdns::announce(app, addr.port(), interfaces, stop.cancelled_owned()).await {
                tracing::warn!(error = %e, "not announcing on the network; students need the join link or QR code");
            }
        })
    });
    if args.json {
        println!("{}", serde_json::to_string(&ready)?);
    } else {
        println!("{banner}");
    }
    shutdown_signal().await;
    // Say goodbye on the network while the connections close.
    stop_mdns.cancel();
    server.shutdown();
    server.wait_stopped().await;
    if let Some(task) = mdns {
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn device_id(args: &Join) -> anyhow::Result<String> {
    if let Some(d) = &args.device {
        return Ok(d.clone());
    }
    let dir = args.data_dir.clone().unwrap_or_else(lectern::setup::default_data_dir);
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

async fn discover(args: Discover) -> anyhow::Result<ExitCode> {
    let interfaces = Interfaces::from_names(&args.mdns_interfaces);
    if args.watch {
        let mut browser = tokio::task::block_in_place(|| lectern::mdns::Browser::start(&interfaces))?;
        let deadline = std::time::Instant::now() + args.timeout;
        use std::io::Write;
        let mut out = std::io::stdout();
        while let Some(event) = browser.next(deadline).await {
            let line = if args.json {
                serde_json::to_string(&event)?
            } else {
                match event {
                    Found::Resolved(c) => {
                        format!("+ {}  \"{}\"  {}", c.name, c.title, c.ws_url().unwrap_or_default())
                    }
                    Found::Removed { fullname } => format!("- {}", lectern::mdns::instance_name(&fullname)),
                }
            };
            // The reader went away (a closed pipe): stop quietly.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        tokio::task::block_in_place(|| browser.stop());
        return Ok(ExitCode::SUCCESS);
    }
    let found = lectern::mdns::discover(&interfaces, args.timeout).await?;
    if args.json {
        println!("{}", serde_json::to_string(&found)?);
    } else if found.is_empty() {
        println!("No classroom found in {} s. Run `lectern doctor` to see why.", args.timeout.as_secs_f32());
    } else {
        for c in &found {
            let addrs: Vec<String> = c.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "{}\n  lesson: {}\n  join:   {}\n  at:     {} port {}\n  fp:     {}",
                c.name,
                c.title,
                c.ws_url().unwrap_or_default(),
                addrs.join(", "),
                c.port,
                c.fingerprint
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn join(args: Join) -> anyhow::Result<ExitCode> {
    let link = match (&args.url, &args.discover) {
        (Some(url), _) => JoinLink::parse(url)?,
        (None, Some(name)) => {
            let interfaces = Interfaces::from_names(&args.mdns_interfaces);
            let room = lectern::mdns::find(&interfaces, name.as_deref(), args.timeout).await?;
            eprintln!("found \"{}\" ({}) at {}", room.name, room.title, room.ws_url().unwrap_or_default());
            JoinLink {
                ws_url: room.ws_url().context("the classroom announced no address")?,
                code: None,
                fingerprint: Some(room.fingerprint),
            }
        }
        (None, None) => anyhow::bail!("give a join link or --discover"),
    };
    let code = args.code.clone().or(link.code).context("no join code: give --code or a join link")?;
    let fp = args.fp.clone().or(link.fingerprint).context("no fingerprint: give --fp or a join link")?;
    anyhow::ensure!(lectern::tls::is_fingerprint(&fp), "--fp must be a 43-character fingerprint");
    let device = device_id(&args)?;
    let mut client = Client::start(ClientOptions::new(
        link.ws_url,
        fp,
        Credentials::Student { code, name: args.name.clone() },
        device,
    ));
    loop {
        let event = tokio::select! {
            e = client.next_event() => e,
            _ = shutdown_signal() => {
                client.close().await;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let Some(event) = event else { return Ok(ExitCode::SUCCESS) };
        print_event(&event, args.json);
        if let Event::Stopped { code, .. } = event {
            let ok = matches!(code, Some(1000) | Some(4000));
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
    }
}

fn print_event(event: &Event, json: bool) {
    if json {
        let v = match event {
            Event::Connected { you, room, resumed, teacher_online, .. } => serde_json::json!({
                "event":"connected","you":you,"room":room,"resumed":resumed,"teacher_online":teacher_online}),
            Event::State { seq, state, cause } => serde_json::json!({
                "event":"state","seq":seq,"cause":format!("{cause:?}").to_lowercase(),"state":state}),
            Event::Roster(changes) => serde_json::json!({"event":"roster","changes":changes}),
            Event::Teacher { online } => serde_json::json!({"event":"teacher","online":online}),
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
            room.title,
            you.name,
            you.id,
            if *teacher_online { "" } else { ", teacher offline" }
        ),
        Event::State { seq, state, cause } => {
            let doc = state.doc.as_ref().map(|d| format!("{} p{}/{}", d.title, state.page, d.pages));
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
                state.notice.as_deref().unwrap_or("-"),
                if state.ended { " | ENDED" } else { "" },
            );
        }
        Event::Roster(_) => {}
        Event::Teacher { online } => println!("teacher {}", if *online { "back online" } else { "offline" }),
        Event::Error { code, message } => println!("error {code:?}: {message}"),
        Event::Disconnected { code, reason } => {
            println!("disconnected ({}): {reason}; reconnecting", code.map_or("-".into(), |c| c.to_string()))
        }
        Event::Stopped { code, reason } => {
            println!("stopped ({}): {reason}", code.map_or("-".into(), |c| c.to_string()))
        }
    }
}

fn sessions(args: Sessions) -> anyhow::Result<ExitCode> {
    use lectern::store::report;
    let dir = args.data_dir.unwrap_or_else(lectern::setup::default_data_dir);
    let conn = lectern::store::sqlite::open_for_reading(&dir.join("lectern.db"))?;
    let find = |id: &str| -> anyhow::Result<report::LessonSummary> {
        report::find(&conn, id)?
            .with_context(|| format!("no lesson {id:?}; `lectern sessions list` shows them"))
    };
    match args.command {
        SessionsCommand::List { json } => {
            let lessons = report::lessons(&conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lessons)?);
            } else {
                print!("{}", report::list_table(&lessons));
            }
        }
        SessionsCommand::Show { id } => {
            let lesson = find(&id)?;
            print!("{}", report::show(&conn, &lesson)?);
        }
        SessionsCommand::Export { id, format } => {
            let lesson = find(&id)?;
            match format {
                Format::Csv => print!("{}", report::attendance_csv(&report::attendance(&conn, &lesson)?)),
                Format::Json => {
                    let mut v = report::timeline(&conn, &lesson)?;
                    v["attendance"] = serde_json::to_value(report::attendance(&conn, &lesson)?)?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
