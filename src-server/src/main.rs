//! The `lectern` command: parses flags, sets up logging, and hands over to the library. Each
//! subcommand lives in `cli/`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[path = "cli/discover.rs"]
mod discover;
#[path = "cli/flags.rs"]
mod flags;
#[path = "cli/join.rs"]
mod join;
#[path = "cli/relay.rs"]
mod relay;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/sessions.rs"]
mod sessions;
#[path = "cli/signal.rs"]
mod signal;

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
    Serve(serve::Serve),
    /// Serve remote students the lessons bridged to a Redis (stateless; run as many as needed).
    Relay(relay::RelayArgs),
    /// Print the configuration in effect (defaults, config file, environment, flags), secrets masked.
    Config(serve::ShowConfig),
    /// Follow a lesson from the terminal, as a student.
    Join(join::Join),
    /// Read the session log: lessons, timelines, attendance.
    Sessions(sessions::Sessions),
    /// List the classrooms announced on this network (mDNS).
    Discover(discover::Discover),
    /// Check what commonly breaks discovery and joining in a classroom, and say what to change.
    Doctor(discover::Doctor),
    /// Check a PDF in a process of its own, with its memory and CPU time capped (the server runs
    /// this for every upload); prints the pages found as JSON.
    #[command(hide = true)]
    CheckPdf {
        /// The address-space cap, in bytes.
        #[arg(long, default_value_t = lectern::docs::check::CHECK_MEMORY)]
        memory: u64,
        /// The PDF.
        file: std::path::PathBuf,
    },
    /// Draw a lesson's marks on a PDF in a process of its own, with its memory and CPU time capped
    /// (the server runs this for every annotated export): what to draw comes as JSON on standard
    /// input, and the PDF goes to standard output.
    #[command(hide = true)]
    AnnotatePdf {
        /// The address-space cap, in bytes.
        #[arg(long, default_value_t = lectern::docs::check::CHECK_MEMORY)]
        memory: u64,
        /// The library's PDF the marks are drawn on.
        file: std::path::PathBuf,
    },
    /// Write the manual pages (lectern(1), lectern-serve(1), …) into a folder, for packages.
    #[command(hide = true)]
    Manpages {
        /// The folder to write them into.
        dir: std::path::PathBuf,
    },
}

/// Writes lectern(1) and a page per subcommand, from the same definitions as `--help`.
fn manpages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let command = Cli::command();
    clap_mangen::generate_to(command, dir)?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything else starts (threads, a runtime): the caps it sets are for this process only.
    if let Command::CheckPdf { memory, file } = &cli.command {
        return lectern::docs::check::child_main(file, *memory);
    }
    if let Command::AnnotatePdf { memory, file } = &cli.command {
        return lectern::docs::export::child_main(file, *memory);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // Secrets never reach a log: the frame loggers are held at debug (`logfilter`).
            tracing_subscriber::EnvFilter::try_new(lectern::logfilter::directives(
                std::env::var("LECTERN_LOG").ok().as_deref(),
            ))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(lectern::logfilter::directives(None))),
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
            Command::Serve(args) => serve::serve(args).await,
            Command::Relay(args) => relay::relay(args).await,
            Command::Config(args) => serve::show(args),
            Command::Join(args) => join::join(args).await,
            Command::Sessions(args) => sessions::sessions(args).await,
            Command::Discover(args) => discover::discover(args).await,
            Command::Doctor(args) => discover::doctor(args).await,
            Command::Manpages { dir } => manpages(&dir),
            // Handled before the runtime.
            Command::CheckPdf { .. } | Command::AnnotatePdf { .. } => Ok(ExitCode::SUCCESS),
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
