//! The Lectern app's entry point; everything is in the library so mobile builds share it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // The app checks uploaded PDFs in a copy of itself with its memory capped, as `lectern serve`
    // does (`lectern::docs::check`): `lectern-app check-pdf --memory BYTES FILE`.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, command, flag, memory, file] = args.as_slice()
        && command == "check-pdf"
        && flag == "--memory"
    {
        let memory =
            memory.to_str().and_then(|m| m.parse().ok()).unwrap_or(lectern::docs::check::CHECK_MEMORY);
        return lectern::docs::check::child_main(std::path::Path::new(file), memory);
    }
    lectern_app::run()
}
