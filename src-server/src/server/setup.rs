//! Turning a data directory and a [`Config`] into what a server is made of.
//!
//! On first run it creates the certificate, the teacher key, the demo document and a lesson with a join
//! code; on later runs it continues the open lesson (same room, code and tokens) unless told to start a
//! new one. Secrets are written with mode 0600.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::docs::Library;
use crate::engine::lesson::{LessonRecord, is_valid_code, join_code, room_id};
use crate::error::{Error, Result};
use crate::files::{random_secret, write_private};
use crate::now_ms;
use crate::protocol::{Doc, LessonState, Patch};
use crate::server::app::AppParts;
use crate::store::{OpenLesson, SqliteStore};
use crate::tls::Identity;

/// What a server is made of, read or created from its data directory.
pub struct Prepared {
    /// The TLS certificate and key.
    pub identity: Identity,
    /// Everything else.
    pub parts: AppParts,
}

/// Prepares the data directory and returns what the server needs.
pub fn prepare(config: &Config) -> Result<Prepared> {
    let dir = &config.data_dir();
    crate::files::private_dir(dir).map_err(|e| Error::File {
        path: dir.to_path_buf(),
        message: format!("cannot create the data directory ({e}); choose another with --data-dir"),
    })?;
    if let Some(code) = &config.code
        && !is_valid_code(code)
    {
        return Err(Error::Invalid(format!("--code {code:?} must be 4 to 12 digits")));
    }
    let identity = identity(dir)?;
    let teacher_key = teacher_key(dir)?;
    let docs = Arc::new(Library::open(&dir.join("docs"))?);
    if let Some((exe, memory)) = &config.pdf_checker {
        docs.set_checker(crate::docs::check::Checker::Child { exe: exe.clone(), memory: *memory });
    }
    let demo = docs.add(&crate::demo::demo_pdf()?, crate::demo::DEMO_TITLE, Some(crate::demo::DEMO_ID))?;
    let mut opened = None;
    for path in &config.docs {
        let doc = docs.add_file(path)?;
        opened.get_or_insert(doc);
    }
    let store =
        Arc::new(SqliteStore::open(&dir.join("lectern.db"), config.log.events, Some(config.log.keep_days))?);
    let (lesson, resume) = match store.open_lesson()? {
        Some(open) if !config.new_lesson => {
            let (lesson, resumed) = continue_lesson(open, config, &docs, opened.as_ref());
            (lesson, Some(resumed))
        }
        previous => {
            if let Some(old) = previous {
                let mut ended = old.lesson;
                ended.ended_ms = Some(now_ms());
                store.save_lesson(&ended, None);
            }
            (begin_lesson(config, opened.unwrap_or(demo)), None)
        }
    };
    let name = config.name.clone().unwrap_or_else(default_name);
    let parts = AppParts {
        name,
        fingerprint: identity.fingerprint(),
        pk: crate::files::load_signer(dir)?.public(),
        relay_url: config.relay_base().map_err(crate::Error::Invalid)?,
        teacher_key,
        lesson,
        resume,
        docs,
        store,
        db: dir.join("lectern.db"),
        limits: config.limits.clone(),
        metrics_access: config.metrics,
        timing: config.timing.clone(),
        sinks: Vec::new(),
    };
    Ok(Prepared { identity, parts })
}

/// The lesson that was open when the server stopped, continued with its room, code and tokens; the
/// config may retitle it, change its code, or open a document (as a teacher's `set` would).
fn continue_lesson(
    open: OpenLesson,
    config: &Config,
    docs: &Library,
    opened: Option<&Doc>,
) -> (LessonRecord, (u64, LessonState)) {
    let mut lesson = open.lesson;
    if let Some(title) = &config.title {
        lesson.title = title.clone();
    }
    if let Some(code) = &config.code {
        lesson.code = code.clone();
    }
    let mut state =
        open.state.unwrap_or_else(|| LessonState::new(lesson.doc.as_deref().and_then(|d| docs.get(d))));
    if let Some(doc) = opened {
        lesson.doc = Some(doc.id.clone());
        if state.doc.as_ref() != Some(doc) {
            state.apply(&Patch {
                doc: Some(Some(doc.clone())),
                page: Some(1),
                highlight: Some(None),
                ..Patch::default()
            });
        }
    }
    (lesson, (open.seq, state))
}

/// A new lesson on `doc`, with a new room and (unless configured) a new join code.
fn begin_lesson(config: &Config, doc: Doc) -> LessonRecord {
    LessonRecord {
        room: room_id(),
        title: config.title.clone().unwrap_or_else(|| doc.title.clone()),
        code: config.code.clone().unwrap_or_else(join_code),
        started_ms: now_ms(),
        ended_ms: None,
        doc: Some(doc.id),
        revoked: Vec::new(),
        waiting_room: false,
    }
}

/// The classroom's default name: the host's name.
pub fn default_name() -> String {
    let host = crate::net::host_name();
    if host.is_empty() { "Lectern classroom".into() } else { format!("Lectern on {host}") }
}

/// Reads the teacher key from `teacher.key`, creating it on first run.
pub fn teacher_key(dir: &Path) -> Result<String> {
    let path = dir.join("teacher.key");
    match std::fs::read_to_string(&path) {
        Ok(key) => {
            let key = key.trim().to_string();
            if key.len() < 32 {
                return Err(Error::File {
                    path,
                    message: "the teacher key is too short; delete the file to generate a new one".into(),
                });
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_secret();
            write_private(&path, key.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(Error::File { path, message: e.to_string() }),
    }
}

/// Loads the TLS identity from `cert.pem`/`key.pem`, generating it on first run.
pub fn identity(dir: &Path) -> Result<Identity> {
    if dir.join("cert.pem").exists() || dir.join("key.pem").exists() {
        return Identity::load(dir).map_err(|e| Error::File {
            path: dir.join("cert.pem"),
            message: format!("{e}; delete cert.pem and key.pem to generate a new certificate (students will have to rejoin by the new link)"),
        });
    }
    let id = Identity::generate_for_this_host()?;
    id.save(dir)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_teacher_key_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = teacher_key(dir.path()).unwrap();
        assert_eq!(key.len(), 43);
        assert_eq!(teacher_key(dir.path()).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("teacher.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
