//! `lectern serve`: turns a data directory and a few options into a running classroom, and tells people
//! how to join.
//!
//! On first run it creates the certificate, the teacher key, the demo document and a lesson with a join
//! code; on later runs it continues the open lesson (same room, code and tokens) unless told to start a
//! new one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Limits, Timing};
use crate::docs::Library;
use crate::error::{Error, Result};
use crate::protocol::now_ms;
use crate::server::ServerOptions;
use crate::state::LessonState;
use crate::store::sqlite::SqliteStore;
use crate::store::{LessonRecord, Store};

/// What `lectern serve` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Data directory.
    pub data_dir: PathBuf,
    /// PDFs to add; the first is opened.
    pub docs: Vec<PathBuf>,
    /// Lesson title.
    pub title: Option<String>,
    /// Fixed join code.
    pub code: Option<String>,
    /// Classroom name.
    pub name: Option<String>,
    /// Start a new lesson even if one is open.
    pub new_lesson: bool,
    /// Log joins, patches, acks and hands (off only to measure what logging costs).
    pub no_log: bool,
    /// Delete lessons that ended more than this many days ago, at start.
    pub keep_days: Option<u32>,
    /// Limits.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
}

/// Prepares the data directory and returns what the server needs.
pub fn prepare(opts: &ServeOptions) -> Result<ServerOptions> {
    let dir = &opts.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::File {
        path: dir.clone(),
        message: format!("cannot create the data directory ({e}); choose another with --data-dir"),
    })?;
    if let Some(code) = &opts.code
        && !crate::setup::is_valid_code(code)
    {
        return Err(Error::Config(format!("--code {code:?} must be 4 to 12 digits")));
    }
    let identity = crate::setup::identity(dir)?;
    let teacher_key = crate::setup::teacher_key(dir)?;
    let docs = Arc::new(Library::open(&dir.join("docs"))?);
    let demo = docs.add(&crate::demo::demo_pdf()?, crate::demo::DEMO_TITLE, Some(crate::demo::DEMO_ID))?;
    let mut opened = None;
    for path in &opts.docs {
        let doc = docs.add_file(path)?;
        opened.get_or_insert(doc);
    }
    let store = Arc::new(SqliteStore::open(&dir.join("lectern.db"), !opts.no_log, opts.keep_days)?);
    let mut resume = None;
    let lesson = match store.open_lesson()? {
        Some(open) if !opts.new_lesson => {
            let mut lesson = open.lesson;
            if let Some(title) = &opts.title {
                lesson.title = title.clone();
            }
            if let Some(code) = &opts.code {
                lesson.code = code.clone();
            }
            let mut state = open
                .state
                .unwrap_or_else(|| LessonState::new(lesson.doc.as_deref().and_then(|d| docs.get(d))));
            if let Some(doc) = &opened {
                // A document named on the command line is opened, as a teacher's `set` would.
                lesson.doc = Some(doc.id.clone());
                if state.doc.as_ref() != Some(doc) {
                    state.apply(&crate::state::Patch {
                        doc: Some(Some(doc.clone())),
                        page: Some(1),
                        highlight: Some(None),
                        ..Default::default()
                    });
                }
            }
            resume = Some((open.seq, state));
            lesson
        }
        previous => {
            if let Some(old) = previous {
                let mut ended = old.lesson;
                ended.ended_ms = Some(now_ms());
                store.save_lesson(&ended, None);
            }
            let doc = opened.clone().unwrap_or(demo);
            LessonRecord {
                room: crate::setup::room_id(),
                title: opts.title.clone().unwrap_or_else(|| doc.title.clone()),
                code: opts.code.clone().unwrap_or_else(crate::setup::join_code),
                started_ms: now_ms(),
                ended_ms: None,
                doc: Some(doc.id),
                revoked: Vec::new(),
            }
        }
    };
    let name = opts.name.clone().unwrap_or_else(default_name);
    Ok(ServerOptions {
        identity,
        teacher_key,
        name,
        lesson,
        resume,
        docs,
        store: store as Arc<dyn Store>,
        db: Some(dir.join("lectern.db")),
        limits: opts.limits.clone(),
        timing: opts.timing.clone(),
    })
}

/// The classroom's default name: the host's name.
pub fn default_name() -> String {
    let host = crate::net::host_name();
    if host.is_empty() { "Lectern classroom".into() } else { format!("Lectern on {host}") }
}

/// The one line `--json` prints once the server accepts connections.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Ready {
    /// Always true.
    pub ready: bool,
    /// WebSocket URL on this machine.
    pub ws: String,
    /// HTTPS base URL on this machine.
    pub http: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// Join code.
    pub code: String,
    /// Teacher key.
    pub teacher_key: String,
    /// Room id.
    pub room: String,
}

impl Ready {
    /// The ready line for a server bound to `addr`.
    pub fn new(addr: SocketAddr, opts: &ServerOptions) -> Ready {
        let host = local_host(addr);
        Ready {
            ready: true,
            ws: format!("wss://{host}:{}/v1/ws", addr.port()),
            http: format!("https://{host}:{}", addr.port()),
            fingerprint: opts.identity.fingerprint(),
            code: opts.lesson.code.clone(),
            teacher_key: opts.teacher_key.clone(),
            room: opts.lesson.room.clone(),
        }
    }
}

fn local_host(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".into(),
        ip if ip.is_unspecified() => "[::1]".into(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    }
}

/// The links a person needs: the teacher console (key in the fragment) and the student join link.
pub fn links(addr: SocketAddr, opts: &ServerOptions) -> (String, String) {
    let host = if addr.ip().is_unspecified() {
        crate::net::lan_address().to_string()
    } else {
        addr.ip().to_string()
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let base = format!("https://{host}:{}", addr.port());
    let teacher = format!("{base}/teacher#key={}", opts.teacher_key);
    let join = format!("{base}/join#code={}&fp={}", opts.lesson.code, opts.identity.fingerprint());
    (teacher, join)
}

/// A QR code of `text`, drawn with Unicode half blocks for a terminal.
pub fn qr(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

/// What `lectern serve` prints for people.
pub fn banner(addr: SocketAddr, opts: &ServerOptions) -> String {
    let (teacher, join) = links(addr, opts);
    let doc = opts.lesson.doc.as_deref().and_then(|id| opts.docs.get(id));
    format!(
        "\nLectern is serving \"{title}\" ({doc})\n\n  Join code:        {code}\n  Students join:    {join}\n  Teacher console:  {teacher}\n  Fingerprint:      {fp}\n\n  From a terminal:  lectern join '{join}' --name YOUR-NAME\n\n{qr}\nScan to join. Press Ctrl-C to stop; the lesson continues when you start again.\n",
        title = opts.lesson.title,
        doc = doc.map(|d| format!("{}, {} pages", d.title, d.pages)).unwrap_or_else(|| "no document".into()),
        code = opts.lesson.code,
        fp = opts.identity.fingerprint(),
        qr = qr(&join),
    )
}
