//! `lectern sessions`: read the session log: lessons, timelines and attendance.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct Sessions {
    /// Where the session log is (the server's data directory).
    #[arg(long, env = "LECTERN_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
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
    /// Export a lesson's attendance (csv), its whole record (json), or with --pdf the pages it showed
    /// with the teacher's highlights and ink drawn on them.
    Export {
        /// Lesson id (from `list`) or room id.
        id: String,
        /// csv: attendance, one row per student; json: lesson, attendance and timeline.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Write the annotated PDF to this file instead (for the students who were absent).
        #[arg(long, value_name = "FILE")]
        pdf: Option<PathBuf>,
        /// With --pdf: the document to export (its id), when the lesson showed several; else the
        /// one on screen last.
        #[arg(long, requires = "pdf")]
        doc: Option<String>,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    Csv,
    Json,
}

pub async fn sessions(args: Sessions) -> anyhow::Result<ExitCode> {
    use lectern::store::report;
    let dir = args.data_dir.unwrap_or_else(lectern::config::default_data_dir);
    let conn = lectern::store::schema::open_for_reading(&dir.join("lectern.db"))?;
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
        SessionsCommand::Export { id, pdf: Some(out), doc, .. } => {
            let lesson = find(&id)?;
            let docs = lectern::store::annotated::annotations(&conn, &lesson)?;
            let chosen = lectern::store::annotated::pick(docs, doc.as_deref()).map_err(anyhow::Error::msg)?;
            let path = dir.join("docs").join(format!("{}.pdf", chosen.doc.sha256));
            std::fs::metadata(&path).with_context(|| {
                format!("document {:?} is no longer in the library ({})", chosen.doc.id, path.display())
            })?;
            // In a capped process of its own, as the server does: a document whose parse outgrows
            // the caps gets a clear error, not a machine that swaps.
            use lectern::docs::check::{CHECK_MEMORY, Checker, this_program};
            let checker =
                this_program().map_or(Checker::InProcess, |exe| Checker::Child { exe, memory: CHECK_MEMORY });
            let drawing =
                lectern::docs::export::Drawing { pages: chosen.pages.clone(), marks: chosen.marks.clone() };
            let bytes = lectern::docs::export::annotated(&checker, &path, drawing).await?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            let marks: usize = chosen.marks.values().map(Vec::len).sum();
            eprintln!(
                "{}: {} of {}'s pages, {marks} marks",
                out.display(),
                chosen.pages.len(),
                chosen.doc.title
            );
        }
        SessionsCommand::Export { id, format, .. } => {
            let lesson = find(&id)?;
            match format {
                Format::Csv => print!("{}", report::attendance_csv(&report::attendance(&conn, &lesson)?)),
                Format::Json => {
                    let mut v = serde_json::to_value(lectern::store::timeline::timeline(&conn, &lesson)?)?;
                    v["attendance"] = serde_json::to_value(report::attendance(&conn, &lesson)?)?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
