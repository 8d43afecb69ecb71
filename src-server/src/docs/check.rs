//! Checking a PDF before it joins the library: it must parse, have a page, and its scanned pages
//! are found while it is parsed anyway.
//!
//! A PDF's parse can cost far more memory than its size (190 MiB of 4.7 million tiny objects took
//! 405 MB; an object stream can inflate a thousandfold), and a parser can be made to recurse deeply.
//! So `lectern serve` checks uploads in a process of its own (`lectern check-pdf FILE`) whose
//! address space is capped with `RLIMIT_AS` and whose CPU time is capped with `RLIMIT_CPU`: a hostile
//! file kills that process, never the lesson. The library falls back to checking in this process
//! when no checker program is set (tests, and embedders that do not ship the subcommand).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::protocol::http::ScanIndex;

/// The most address space a checker process may use (the file itself is read into it, up to
/// [`super::MAX_DOC_BYTES`]).
pub const CHECK_MEMORY: u64 = 1024 * 1024 * 1024;

/// The most CPU time a checker process may use, in seconds.
pub const CHECK_CPU_SECONDS: u64 = 60;

/// What a check found: the pages, and which are scans.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    /// The page count (at least 1).
    pub pages: u32,
    /// The scanned pages.
    pub scans: ScanIndex,
}

/// Where PDFs are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Checker {
    /// In this process (no bound beyond the upload size).
    #[default]
    InProcess,
    /// In a child process: `exe check-pdf --memory BYTES FILE`, which prints [`Checked`] as JSON
    /// (and `exe annotate-pdf …` for exports, `super::export`).
    Child {
        /// The program (`lectern`).
        exe: PathBuf,
        /// Its address-space cap, in bytes.
        memory: u64,
    },
}

impl Checker {
    /// Checks the PDF at `path`.
    ///
    /// (The same choice says where a lesson's annotated PDF is drawn: `super::export`.)
    pub fn check(&self, path: &Path) -> Result<Checked> {
        match self {
            Checker::InProcess => check_here(path),
            Checker::Child { exe, memory } => check_in_child(exe, *memory, path),
        }
    }
}

/// This program, to run as the checker: `/proc/self/exe` on Linux, which still names it after a
/// package upgrade replaced the file mid-lesson; elsewhere the path it was started from.
pub fn this_program() -> Option<PathBuf> {
    let proc_self = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_self.exists() {
        return Some(proc_self.to_path_buf());
    }
    std::env::current_exe().ok()
}

/// Parses the PDF at `path` in this process.
pub fn check_here(path: &Path) -> Result<Checked> {
    let bytes = std::fs::read(path)?;
    let (parsed, pages) = super::parse(&bytes)?;
    let scans = super::scan::index(&parsed, &bytes);
    Ok(Checked { pages, scans })
}

fn check_in_child(exe: &Path, memory: u64, path: &Path) -> Result<Checked> {
    let out = Command::new(exe)
        .arg("check-pdf")
        .arg("--memory")
        .arg(memory.to_string())
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LECTERN_LOG", "off")
        .output()
        .map_err(|e| Error::Invalid(format!("cannot start the PDF checker {}: {e}", exe.display())))?;
    if out.status.success() {
        return serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Invalid(format!("the PDF checker said something unreadable: {e}")));
    }
    let said = String::from_utf8_lossy(&out.stderr);
    match said.lines().find_map(|l| l.strip_prefix("not a readable PDF: ")) {
        Some(why) => Err(Error::Pdf(why.to_string())),
        // The checker could not do its work (its caps could not be set, the file could not be read).
        None if out.status.code() == Some(2) => {
            Err(Error::Invalid(format!("the PDF checker failed: {}", said.trim())))
        }
        // Killed (CPU limit), or aborted on an allocation the memory cap refused.
        None => Err(Error::Pdf(format!(
            "reading it needs more than {} MiB of memory or {CHECK_CPU_SECONDS} s of work; \
             save it again from a PDF reader (\"Print to PDF\") and retry",
            memory >> 20
        ))),
    }
}

/// Caps this process's address space at `memory` bytes and its CPU time at [`CHECK_CPU_SECONDS`],
/// with no core file (a child killed by its caps must not leave a gigabyte behind). For the child
/// processes that parse PDFs; run before a byte of the file is read.
pub(super) fn cap_this_process(memory: u64) -> std::io::Result<()> {
    rlimit::setrlimit(rlimit::Resource::AS, memory, memory)
        .and_then(|()| rlimit::setrlimit(rlimit::Resource::CPU, CHECK_CPU_SECONDS, CHECK_CPU_SECONDS))
        .and_then(|()| rlimit::setrlimit(rlimit::Resource::CORE, 0, 0))
}

/// `lectern check-pdf`: caps this process's memory and CPU time, checks the file, and prints
/// [`Checked`] as JSON (exit 0), or `not a readable PDF: WHY` on standard error (exit 1). Exit 2: the
/// check could not be made; 3 (or a signal): the file needs more than the caps allow.
pub fn child_main(path: &Path, memory: u64) -> std::process::ExitCode {
    // Failing to set the caps is a failure to check.
    if let Err(e) = cap_this_process(memory) {
        eprintln!("cannot cap the checker's resources: {e}");
        return std::process::ExitCode::from(2);
    }
    match check_here(path) {
        Ok(checked) => match serde_json::to_string(&checked) {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot say what was found: {e}");
                std::process::ExitCode::from(2)
            }
        },
        Err(Error::Pdf(why)) => {
            eprintln!("not a readable PDF: {why}");
            std::process::ExitCode::from(1)
        }
        // The cap refused memory the file itself needed: as when the parse runs out.
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::OutOfMemory => {
            eprintln!("out of memory: {e}");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("cannot check {}: {e}", path.display());
            std::process::ExitCode::from(2)
        }
    }
}
