//! The Lectern app's entry point; everything is in the library so mobile builds share it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // The app checks uploaded PDFs, and draws lessons' annotated PDFs, in a copy of itself with its
    // memory capped, as `lectern serve` does (`lectern::docs::check`, `lectern::docs::export`):
    // `lectern-app check-pdf --memory BYTES FILE`, `lectern-app annotate-pdf --memory BYTES FILE`.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, command, flag, memory, file] = args.as_slice()
        && flag == "--memory"
    {
        let memory =
            memory.to_str().and_then(|m| m.parse().ok()).unwrap_or(lectern::docs::check::CHECK_MEMORY);
        let file = std::path::Path::new(file);
        if command == "check-pdf" {
            return lectern::docs::check::child_main(file, memory);
        }
        if command == "annotate-pdf" {
            return lectern::docs::export::child_main(file, memory);
        }
    }
    lectern_app::run()
}
