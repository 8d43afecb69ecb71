//! The Lectern app (Tauri 2). Teacher mode runs the same classroom server as `lectern serve` inside
//! the app; student mode finds classrooms by mDNS and follows one. The view is the `ui/` build; it
//! never opens a socket to a classroom (a webview cannot pin a self-signed certificate): PROTOCOL.md
//! frames cross IPC to [`bridge`], which holds the pinned connection, and documents come through
//! [`docs`]. Everything else here is native glue: windows, dialogs, settings, links.

pub mod awake;
pub mod bridge;
mod commands;
pub mod docs;
pub mod error;
pub mod ipc;
pub mod settings;
pub mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tauri::{Manager, RunEvent};

use crate::settings::Mode;
use crate::state::{AppState, JoinTarget};

/// The app's command line, for scripts, school IT and tests.
#[derive(Parser, Debug)]
#[command(name = "lectern-app", version, about = "Lectern: keeps a class on the same page")]
struct Args {
    /// Start in this mode (and remember it), instead of asking.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Where the app keeps its settings, cache and classroom (default: the platform's app data folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// In teacher mode, print the classroom's ready line (as `lectern serve --json`) once it serves.
    #[arg(long)]
    json: bool,
    /// A join link to open (`lectern://…` or `https://…/join#code=…&fp=…`).
    link: Option<String>,
}

/// Runs the app until its window closes.
pub fn run() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
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
    let mut builder = tauri::Builder::default();
    // One app at a time: a second launch focuses this window and hands over a link it was given. An
    // explicit --data-dir is a profile of its own (school IT, tests), which runs beside the others.
    if args.data_dir.is_none() {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
            if let Some(target) = argv.iter().skip(1).find_map(|a| JoinTarget::parse(a).ok()) {
                app.state::<AppState>().opened(&target);
                let _ = ipc::emit::link(app, &target);
            }
        }));
    }
    let builder = builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_deep_link::init())
        .setup(move |app| {
            let data_dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => app.path().app_data_dir()?,
            };
            std::fs::create_dir_all(&data_dir)?;
            match settings::local_authorities(&data_dir) {
                Some(Ok(roots)) => {
                    tracing::info!(
                        count = roots.len(),
                        "trusting the authorities in {}",
                        settings::TRUSTED_AUTHORITIES
                    );
                    lectern::tls::trust_also(roots);
                }
                Some(Err(e)) => tracing::error!("{e}; relays are checked against the web's authorities only"),
                None => {}
            }
            let state = AppState::new(data_dir);
            if let Some(link) = args.link.as_deref().and_then(|l| JoinTarget::parse(l).ok()) {
                state.opened(&link);
                *state.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(link);
            }
            if let Some(mode) = args.mode {
                state.set_mode(mode)?;
            }
            let teaching =
                state.settings.lock().unwrap_or_else(|p| p.into_inner()).settings.mode == Some(Mode::Teacher);
            if teaching {
                let ready = tauri::async_runtime::block_on(async { state.teach() })?;
                if args.json {
                    println!("{}", serde_json::to_string(&ready)?);
                }
            }
            app.manage(state);
            Ok(())
        })
        .on_page_load(|webview, payload| {
            // A page's lesson connections end with the page: a reload or a move to another page
            // must not leave sockets open that nothing reads.
            if payload.event() == tauri::webview::PageLoadEvent::Started
                && let Some(state) = webview.try_state::<AppState>()
            {
                state.bridge.close_all();
            }
        })
        .invoke_handler(ipc::handler());
    let app = match builder.build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("lectern-app: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            // Students get 4503 and the mDNS goodbye; the session log is flushed.
            let state = handle.state::<AppState>();
            state.bridge.close_all();
            tauri::async_runtime::block_on(state.stop_teaching());
        }
    });
    ExitCode::SUCCESS
}
