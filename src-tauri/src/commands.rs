//! The Tauri commands: thin adapters from IPC to the app's state, the bridge and the engine.

use lectern::discovery::Found;
use lectern::protocol::Doc;
use lectern::protocol::http::Ready;
use serde::Serialize;
use tauri::ipc::{Channel, InvokeBody, Request, Response};
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::bridge::LinkEvent;
use crate::error::CommandError;
use crate::settings::Mode;
use crate::state::{AppState, JoinTarget};

/// What a command answers: its value, or an error the view shows.
pub type Result<T> = std::result::Result<T, CommandError>;

/// What the view needs to start: the remembered mode, the classroom when teaching, a link the app was
/// opened with.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(rename = "AppLaunch")]
pub struct Launch {
    mode: Option<Mode>,
    teacher: Option<Ready>,
    /// `https://LAN-ADDRESS:PORT`: where students reach this device's classroom (for the join link).
    lan: Option<String>,
    link: Option<JoinTarget>,
}

fn launch_info(state: &AppState) -> Result<Launch> {
    let mode = state.settings.lock().unwrap_or_else(|p| p.into_inner()).settings.mode;
    let teacher = if mode == Some(Mode::Teacher) { Some(state.teach()?) } else { None };
    let lan = state.lan_base();
    let link = state.link.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Launch { mode, teacher, lan, link })
}

// Commands that start tasks are async: they run on the app's tokio runtime, where the engine and
// the bridge spawn theirs.
#[tauri::command]
pub async fn launch(state: State<'_, AppState>) -> Result<Launch> {
    launch_info(&state)
}

#[tauri::command]
pub async fn choose_mode(state: State<'_, AppState>, mode: Option<Mode>) -> Result<Launch> {
    match mode {
        Some(m) => state.set_mode(m)?,
        None => {
            state.stop_teaching().await;
            let mut file = state.settings.lock().unwrap_or_else(|p| p.into_inner());
            file.settings.mode = None;
            file.save()?;
        }
    }
    launch_info(&state)
}

#[tauri::command]
pub fn open_link(state: State<'_, AppState>, link: String) -> Result<JoinTarget> {
    let target = JoinTarget::parse(&link)?;
    state.opened(&target);
    *state.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(target.clone());
    Ok(target)
}

#[tauri::command]
pub async fn browse(state: State<'_, AppState>, on_event: Channel<Found>) -> Result<()> {
    state.browse(move |found| {
        let _ = on_event.send(found);
    });
    Ok(())
}

#[tauri::command]
pub fn stop_browse(state: State<'_, AppState>) {
    state.stop_browsing();
}

#[tauri::command]
pub async fn connect(
    state: State<'_, AppState>,
    url: String,
    fingerprint: String,
    on_event: Channel<LinkEvent>,
) -> Result<u32> {
    state.may_reach(&url, &fingerprint)?;
    Ok(state.bridge.connect(url, fingerprint, move |event| {
        let _ = on_event.send(event);
    }))
}

#[tauri::command]
pub fn send(state: State<'_, AppState>, id: u32, frame: String) -> Result<()> {
    Ok(state.bridge.send(id, frame)?)
}

#[tauri::command]
pub fn disconnect(state: State<'_, AppState>, id: u32, code: u16, reason: String) {
    state.bridge.close(id, code, reason);
}

/// A whole document, from this device's cache or else fetched pinned, checked against its SHA-256
/// and kept.
#[tauri::command]
pub async fn fetch_doc(
    state: State<'_, AppState>,
    base: String,
    fingerprint: String,
    bearer: String,
    doc: Doc,
) -> Result<Response> {
    state.may_reach(&base, &fingerprint)?;
    Ok(Response::new(state.docs.get(&base, &fingerprint, &bearer, &doc).await?))
}

/// A document's cached bytes, or an empty answer when this device does not hold it yet (read and
/// checked off the main thread: a book is tens of megabytes).
#[tauri::command]
pub async fn cached_doc(state: State<'_, AppState>, doc: Doc) -> Result<Response> {
    let docs = state.docs.clone();
    let bytes = tauri::async_runtime::spawn_blocking(move || docs.cached(&doc).unwrap_or_default())
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    Ok(Response::new(bytes))
}

/// Bytes `[begin, end)` of a document, pinned (or from the cache): the answer is the document's whole
/// length as 8 big-endian bytes, then the bytes. A chunked view asks for what a page needs first.
/// `checked` (behind a relay): only bytes of whole pieces checked against the signed manifest.
#[tauri::command]
#[allow(clippy::too_many_arguments)] // the view's arguments, by name (Tauri matches them so)
pub async fn doc_range(
    state: State<'_, AppState>,
    base: String,
    fingerprint: String,
    bearer: String,
    doc: Doc,
    begin: u64,
    end: u64,
    checked: bool,
) -> Result<Response> {
    state.may_reach(&base, &fingerprint)?;
    let (bytes, total) = if checked {
        state.docs.range_checked(&base, &fingerprint, &bearer, &doc, begin, end).await?
    } else {
        state.docs.range(&base, &fingerprint, &bearer, &doc, begin, end).await?
    };
    let mut answer = Vec::with_capacity(8 + bytes.len());
    answer.extend_from_slice(&total.to_be_bytes());
    answer.extend_from_slice(&bytes);
    Ok(Response::new(answer))
}

/// A document's manifest as it came, for the view to judge; Rust keeps it too if it is the one the
/// teacher's server signed, to check the pieces `doc_range` fetches with `checked` against it (before
/// the view sees a byte; the view checks again with WebCrypto, as a browser does).
#[tauri::command]
pub async fn doc_manifest(
    state: State<'_, AppState>,
    base: String,
    fingerprint: String,
    bearer: String,
    doc: Doc,
) -> Result<Response> {
    state.may_reach(&base, &fingerprint)?;
    Ok(Response::new(state.docs.manifest(&base, &fingerprint, &bearer, &doc).await?))
}

/// Keeps a document the view put together from ranges (the raw body), once it matches the SHA-256
/// in the `sha256` header (checked and written off the main thread).
#[tauri::command]
pub async fn keep_doc(state: State<'_, AppState>, request: Request<'_>) -> Result<()> {
    let sha256 = request
        .headers()
        .get("sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| CommandError::Invalid("keep_doc needs the sha256 header".into()))?;
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::Invalid("keep_doc needs the document's bytes as the body".into()));
    };
    let (docs, bytes) = (state.docs.clone(), bytes.clone());
    tauri::async_runtime::spawn_blocking(move || docs.keep_checked(&sha256, &bytes))
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))??;
    Ok(())
}

/// One HTTPS request to the classroom, pinned; the body is the request's raw bytes (an upload) and
/// the answer is the status (header `status`) and the body.
#[tauri::command]
pub async fn http(state: State<'_, AppState>, request: Request<'_>) -> Result<Response> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (method, url, fingerprint) = match (header("method"), header("url"), header("fingerprint")) {
        (Some(m), Some(u), Some(f)) => (m, u, f),
        _ => return Err(CommandError::Invalid("http needs method, url and fingerprint headers".into())),
    };
    state.may_reach(&url, &fingerprint)?;
    let body = match request.body() {
        InvokeBody::Raw(bytes) if !bytes.is_empty() => Some(bytes::Bytes::copy_from_slice(bytes)),
        _ => None,
    };
    let bearer = header("bearer");
    let answer =
        lectern::client::fetch::request(&method, &url, &fingerprint, bearer.as_deref(), body).await?;
    if !(200..300).contains(&answer.status) {
        let message = String::from_utf8_lossy(&answer.body).into_owned();
        return Err(CommandError::Invalid(format!("{} {message}", answer.status)));
    }
    Ok(Response::new(answer.body.to_vec()))
}

/// A PDF the user picked: its file name, and the path `read_picked` reads it from.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Picked {
    name: String,
    path: String,
}

#[tauri::command]
pub async fn pick_pdf(app: AppHandle, state: State<'_, AppState>) -> Result<Option<Picked>> {
    let picked = tokio::task::spawn_blocking(move || {
        app.dialog().file().add_filter("PDF", &["pdf"]).blocking_pick_file()
    })
    .await
    .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
    let name =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "document.pdf".into());
    state.picked.lock().unwrap_or_else(|p| p.into_inner()).insert(path.clone());
    Ok(Some(Picked { name, path: path.display().to_string() }))
}

/// Lets the person choose their school district's certificate authorities (a PEM file), and trusts
/// them for relays from now on (`settings::adopt_authorities`): `None` when they cancel, else how many.
#[tauri::command]
pub async fn trust_authorities(app: AppHandle, state: State<'_, AppState>) -> Result<Option<u32>> {
    let picked = tokio::task::spawn_blocking(move || {
        app.dialog().file().add_filter("Certificates", &["pem", "crt", "cer"]).blocking_pick_file()
    })
    .await
    .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let Some(picked) = picked else { return Ok(None) };
    let path = picked
        .into_path()
        .map_err(|_| CommandError::Invalid("this device gave no path to the file".into()))?;
    let dir = state.data_dir.clone();
    let count = tokio::task::spawn_blocking(move || crate::settings::adopt_authorities(&dir, &path))
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?
        .map_err(CommandError::Invalid)?;
    Ok(Some(u32::try_from(count).unwrap_or(u32::MAX)))
}

/// How many of its district's authorities the app trusts now (0: the web's only; a file school IT
/// placed after the app started counts from its next start). The list is the process's, not the
/// state's: `_state` only keeps the IPC table's rows alike.
#[tauri::command]
pub fn authorities(_state: State<'_, AppState>) -> u32 {
    u32::try_from(lectern::tls::also_trusted()).unwrap_or(u32::MAX)
}

/// Stops trusting the district's authorities.
#[tauri::command]
pub async fn forget_authorities(state: State<'_, AppState>) -> Result<()> {
    let dir = state.data_dir.clone();
    tokio::task::spawn_blocking(move || crate::settings::forget_authorities(&dir))
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?
        .map_err(CommandError::Invalid)
}

/// The bytes of a file the person just picked; any other path is refused, so the view can never
/// read the device's files on its own.
#[tauri::command]
pub async fn read_picked(state: State<'_, AppState>, path: String) -> Result<Response> {
    let path = std::path::PathBuf::from(path);
    if !state.picked.lock().unwrap_or_else(|p| p.into_inner()).remove(&path) {
        return Err(CommandError::Invalid("only a file chosen in the file dialog can be read".into()));
    }
    Ok(Response::new(tokio::fs::read(path).await?))
}

#[tauri::command]
pub async fn save_file(app: AppHandle, request: Request<'_>) -> Result<bool> {
    let name =
        request.headers().get("name").and_then(|v| v.to_str().ok()).unwrap_or("lectern.csv").to_string();
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::Invalid("no file contents".into()));
    };
    let bytes = bytes.clone();
    let target =
        tokio::task::spawn_blocking(move || app.dialog().file().set_file_name(&name).blocking_save_file())
            .await
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let Some(path) = target.and_then(|p| p.into_path().ok()) else { return Ok(false) };
    tokio::fs::write(path, bytes).await?;
    Ok(true)
}

#[tauri::command]
pub fn store_get(state: State<'_, AppState>, key: String) -> Option<String> {
    state.settings.lock().unwrap_or_else(|p| p.into_inner()).settings.store.get(&key).cloned()
}

#[tauri::command]
pub fn store_set(state: State<'_, AppState>, key: String, value: Option<String>) -> Result<()> {
    let mut file = state.settings.lock().unwrap_or_else(|p| p.into_inner());
    match value {
        Some(v) => file.settings.store.insert(key, v),
        None => file.settings.store.remove(&key),
    };
    Ok(file.save()?)
}

/// Keeps the screen on while the view takes part in a lesson (`on`), or lets it dim again; an
/// error says why the system would not. The teacher's hold, taken while it serves, is left alone.
#[tauri::command]
pub async fn stay_awake(state: State<'_, AppState>, on: bool) -> Result<()> {
    if on {
        // Asking the system can block (D-Bus on Linux): off the app's threads.
        let awake = state.awake.clone();
        tauri::async_runtime::spawn_blocking(move || awake.hold("Following a lesson"))
            .await
            .map_err(|e| CommandError::Invalid(e.to_string()))?
            .map_err(CommandError::Invalid)
    } else {
        if state.teaching.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            state.awake.release();
        }
        Ok(())
    }
}
