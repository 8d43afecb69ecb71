//! Drawing a lesson's annotated PDF ([`super::annotate`]) where the library parses PDFs: in a
//! process of its own when `lectern serve` runs (`lectern annotate-pdf FILE`, with the same memory
//! and CPU caps as the upload checker), so a document whose parse outgrows them ends that process
//! with a clear error, never the lesson. The export parses the whole document and writes it again,
//! which can cost several times its size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::check::{CHECK_CPU_SECONDS, Checker, cap_this_process};
use crate::protocol::Mark;

/// What is drawn: the pages the lesson showed and each page's marks. The child reads it as JSON on
/// its standard input.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Drawing {
    /// The pages kept (those holding marks are kept too).
    pub pages: BTreeSet<u32>,
    /// Each page's marks.
    pub marks: BTreeMap<u32, Vec<Mark>>,
}

/// The most a child takes on its standard input: far above a lesson's capped marks as JSON.
const MAX_DRAWING_JSON: u64 = 256 * 1024 * 1024;

/// The PDF at `path` with `drawing` drawn on it, made where `checker` says. Blocking. An error says
/// why, in words for the teacher.
pub fn annotated(checker: &Checker, path: &Path, drawing: &Drawing) -> Result<Vec<u8>, String> {
    match checker {
        Checker::InProcess => {
            let original = std::fs::read(path).map_err(|e| format!("the document cannot be read: {e}"))?;
            super::annotate::annotate(&original, &drawing.pages, &drawing.marks)
        }
        Checker::Child { exe, memory } => in_child(exe, *memory, path, drawing),
    }
}

impl super::Library {
    /// The library's document `doc` with `drawing` drawn on it, made where the library parses PDFs
    /// (in a capped process of its own under `lectern serve`). Blocking.
    pub fn annotated(&self, doc: &crate::protocol::Doc, drawing: &Drawing) -> Result<Vec<u8>, String> {
        let checker = self.checker.read().unwrap_or_else(|p| p.into_inner()).clone();
        annotated(&checker, &self.path(doc), drawing)
    }
}

fn in_child(exe: &Path, memory: u64, path: &Path, drawing: &Drawing) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(drawing).map_err(|e| format!("the marks cannot be written out: {e}"))?;
    let mut child = Command::new(exe)
        .arg("annotate-pdf")
        .arg("--memory")
        .arg(memory.to_string())
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LECTERN_LOG", "off")
        .spawn()
        .map_err(|e| format!("cannot start the PDF export {}: {e}", exe.display()))?;
    // Written from a thread of its own: the child's output is read meanwhile, so neither waits on
    // the other's pipe. A child that dies early closes its input, and the write just fails.
    let input = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut input) = input {
            let _ = input.write_all(&json);
        }
    });
    let out = child.wait_with_output().map_err(|e| format!("the PDF export did not finish: {e}"))?;
    let _ = writer.join();
    if out.status.success() {
        return Ok(out.stdout);
    }
    let said = String::from_utf8_lossy(&out.stderr);
    match said.lines().find_map(|l| l.strip_prefix("cannot draw: ")) {
        Some(why) => Err(why.to_string()),
        None if out.status.code() == Some(2) => Err(format!("the PDF export failed: {}", said.trim())),
        // Killed (CPU limit), or aborted on an allocation the memory cap refused.
        None => Err(format!(
            "drawing on this document needs more than {} MiB of memory or {CHECK_CPU_SECONDS} s of work; \
             save it again from a PDF reader (\"Print to PDF\"), show it again, and export that lesson",
            memory >> 20
        )),
    }
}

/// `lectern annotate-pdf`: caps this process's memory and CPU time, reads a [`Drawing`] as JSON on
/// standard input, and writes the annotated PDF of `path` to standard output (exit 0), or
/// `cannot draw: WHY` on standard error (exit 1). Exit 2: the export could not be made; 3 (or a
/// signal): the document needs more than the caps allow.
pub fn child_main(path: &Path, memory: u64) -> std::process::ExitCode {
    use std::process::ExitCode;
    if let Err(e) = cap_this_process(memory) {
        eprintln!("cannot cap the export's resources: {e}");
        return ExitCode::from(2);
    }
    let mut json = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_DRAWING_JSON).read_to_end(&mut json) {
        eprintln!("cannot read what to draw: {e}");
        return ExitCode::from(2);
    }
    let drawing: Drawing = match serde_json::from_slice(&json) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read what to draw: {e}");
            return ExitCode::from(2);
        }
    };
    drop(json);
    let original = match std::fs::read(path) {
        Ok(bytes) => bytes,
        // The cap refused memory the file itself needed: as when drawing runs out.
        Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
            eprintln!("out of memory: {e}");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("cannot draw: the document cannot be read: {e}");
            return ExitCode::from(1);
        }
    };
    match super::annotate::annotate(&original, &drawing.pages, &drawing.marks) {
        Ok(pdf) => match std::io::stdout().lock().write_all(&pdf) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cannot hand the PDF back: {e}");
                ExitCode::from(2)
            }
        },
        Err(why) => {
            eprintln!("cannot draw: {why}");
            ExitCode::from(1)
        }
    }
}
