//! Drawing a lesson's annotated PDF ([`super::annotate`]) where the library parses PDFs: in a
//! process of its own when `lectern serve` or the app runs (`annotate-pdf FILE`, with the upload
//! checker's memory and CPU caps, a deadline, and killed if the teacher stops waiting), so a
//! document whose parse outgrows them ends that process with a clear error, never the lesson. The
//! export parses the whole document and writes it again, which can cost several times its size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::check::{CHECK_CPU_SECONDS, Checker, cap_this_process};
use crate::protocol::Mark;

/// What is drawn. The child reads it as JSON on its standard input.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Drawing {
    /// The pages the lesson showed, which the PDF keeps (pages holding marks are kept too).
    pub pages: BTreeSet<u32>,
    /// The highlights and ink to draw, by page number.
    pub marks: BTreeMap<u32, Vec<Mark>>,
}

/// Why an export was not made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The document cannot be drawn on: unreadable, or it needs more than the caps allow. Said to
    /// the teacher as it is.
    #[error("{0}")]
    Document(String),
    /// The export itself failed (it could not start, or said something unreadable): logged, not
    /// shown.
    #[error("the PDF export failed: {0}")]
    Failed(String),
}

/// The most a child takes on its standard input: far above a lesson's capped marks as JSON.
const MAX_DRAWING_JSON: u64 = 256 * 1024 * 1024;

/// The largest PDF a child may hand back: the largest document, and room for the marks.
const MAX_OUTPUT: u64 = super::MAX_DOC_BYTES as u64 + 64 * 1024 * 1024;

/// How long a child may take, start to end, whatever its CPU time (it may wait its turn on a busy
/// machine, or stall).
const DEADLINE: Duration = Duration::from_secs(2 * CHECK_CPU_SECONDS);

/// The PDF at `path` with `drawing` drawn on it, made where `checker` says. Dropping the future
/// kills the child.
pub async fn annotated(checker: &Checker, path: &Path, drawing: Drawing) -> Result<Vec<u8>, ExportError> {
    match checker {
        Checker::InProcess => {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                let original = std::fs::read(&path)
                    .map_err(|e| ExportError::Document(format!("the document cannot be read: {e}")))?;
                let mut pdf = Vec::new();
                super::annotate::annotate_to(original, &drawing.pages, &drawing.marks, &mut pdf)
                    .map_err(ExportError::Document)?;
                Ok(pdf)
            })
            .await
            .map_err(|e| ExportError::Failed(e.to_string()))?
        }
        Checker::Child { exe, memory } => in_child(exe, *memory, path, &drawing).await,
    }
}

impl super::Library {
    /// The library's document `doc` with `drawing` drawn on it, made where the library parses PDFs
    /// (in a capped process of its own under `lectern serve` and the app).
    pub async fn annotated(
        &self,
        doc: &crate::protocol::Doc,
        drawing: Drawing,
    ) -> Result<Vec<u8>, ExportError> {
        let checker = self.checker.read().unwrap_or_else(|p| p.into_inner()).clone();
        annotated(&checker, &self.path(doc), drawing).await
    }
}

async fn in_child(exe: &Path, memory: u64, path: &Path, drawing: &Drawing) -> Result<Vec<u8>, ExportError> {
    let json = serde_json::to_vec(drawing).map_err(|e| ExportError::Failed(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("annotate-pdf")
        .arg("--memory")
        .arg(memory.to_string())
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LECTERN_LOG", "off")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExportError::Failed(format!("cannot start {}: {e}", exe.display())))?;
    let (Some(mut input), Some(output), Some(errors)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ExportError::Failed("the export's pipes were not opened".into()));
    };
    // All three at once: the child reads its input whole before it writes, and a child that dies
    // early closes its input, so the write just fails.
    let feed = async move {
        let _ = input.write_all(&json).await;
        drop(input);
    };
    let (mut pdf, mut said) = (Vec::new(), Vec::new());
    let (mut output, mut errors) = (output.take(MAX_OUTPUT + 1), errors.take(64 * 1024));
    let read_pdf = output.read_to_end(&mut pdf);
    let read_said = errors.read_to_end(&mut said);
    let run = async {
        let (_, out, _) = tokio::join!(feed, read_pdf, read_said);
        out.map_err(|e| ExportError::Failed(format!("reading the export: {e}")))?;
        child.wait().await.map_err(|e| ExportError::Failed(format!("the export did not finish: {e}")))
    };
    let too_costly = || {
        ExportError::Document(format!(
            "drawing on this document needs more than {} MiB of memory or {CHECK_CPU_SECONDS} s of work; save it \
             again from a PDF reader (\"Print to PDF\"), show it again, and export that lesson",
            memory >> 20
        ))
    };
    // Past the deadline the child is dropped, and so killed.
    let Ok(status) = tokio::time::timeout(DEADLINE, run).await else { return Err(too_costly()) };
    let status = status?;
    if pdf.len() as u64 > MAX_OUTPUT {
        return Err(ExportError::Document(format!("the drawn PDF is over {} MiB", MAX_OUTPUT >> 20)));
    }
    let said = String::from_utf8_lossy(&said);
    match status.code() {
        Some(0) => Ok(pdf),
        Some(1) => Err(ExportError::Document(
            said.lines()
                .find_map(|l| l.strip_prefix("cannot draw: "))
                .unwrap_or("the document cannot be drawn on")
                .into(),
        )),
        // Out of memory under the cap (3), or killed by it (a signal: the CPU limit, an abort on an
        // allocation the cap refused).
        Some(3) | None => Err(too_costly()),
        Some(code) => Err(ExportError::Failed(format!("exit {code}: {}", said.trim()))),
    }
}

/// `annotate-pdf`: caps this process's memory and CPU time, reads a [`Drawing`] as JSON on standard
/// input, and writes the annotated PDF of `path` to standard output (exit 0), or `cannot draw: WHY`
/// on standard error (exit 1). Exit 2: the export could not be made; 3 (or a signal): the document
/// needs more than the caps allow.
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
    // Written as it is made, not gathered first: the cap is for the document, not two copies.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match super::annotate::annotate_to(original, &drawing.pages, &drawing.marks, &mut out) {
        Ok(()) => match out.flush() {
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
