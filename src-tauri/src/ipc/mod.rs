//! The app's IPC boundary, declared once: every command with its arguments and result, and every
//! event with its payload.
//!
//! From the one table at the bottom of this file come:
//! - the invoke handler ([`handler`]) and the typed emitters ([`emit`]);
//! - a compile-time check that each row matches its command: the row's argument types are passed to
//!   the real function and its result is taken as the row's type, so a renamed or retyped argument
//!   does not compile until the row says so;
//! - the view's typed client, `ui/src/generated/ipc.ts`, with the declarations of the types it names
//!   beside it, written by `cargo test -p lectern-app` (CI fails when the committed copy is stale, as
//!   for the wire types). The view calls commands only through it, so a change here that the view
//!   does not follow fails `tsc`, not a run under Xvfb.
//!
//! Tauri hands a command's arguments to the view in camelCase (`on_event` is `onEvent`). A command
//! whose row ends with `["header", …]` (`"name?"` when it may be left out) takes a raw body and those headers instead (documents and
//! uploads, which JSON would triple).

use std::path::Path;

use lectern::discovery::Found;
use lectern::protocol::Doc;
use lectern::protocol::http::Ready;
use tauri::ipc::{Channel, Request, Response};
use tauri::{AppHandle, Emitter, State};
use ts_rs::TS;

use crate::bridge::LinkEvent;
use crate::commands::{Launch, Picked, Result};
use crate::settings::Mode;
use crate::state::{AppState, JoinTarget};

mod typescript;
pub use typescript::typescript;

/// How a Rust type that crosses IPC appears to the view.
pub trait Ipc {
    /// Its TypeScript, or `None` for what Tauri supplies itself (the app's state, its handle, the
    /// raw request).
    fn ts() -> Option<String>;
    /// Writes the declarations it names (and theirs) into `dir`.
    fn export(_dir: &Path) -> std::result::Result<(), ts_rs::ExportError> {
        Ok(())
    }
    /// The declarations it names, to import.
    fn names() -> Vec<String> {
        Vec::new()
    }
}

macro_rules! plain {
    ($($t:ty => $ts:literal),* $(,)?) => {$(
        impl Ipc for $t {
            fn ts() -> Option<String> {
                Some($ts.into())
            }
        }
    )*};
}

plain!(String => "string", u16 => "number", u32 => "number", u64 => "number", bool => "boolean", () => "null",
    Option<String> => "string | null", Option<u32> => "number | null", Response => "ArrayBuffer");

/// Types with a declaration of their own (ts-rs), and `T | null` of each.
macro_rules! declared {
    ($($t:ty),* $(,)?) => {$(
        impl Ipc for $t {
            fn ts() -> Option<String> {
                Some(<$t as TS>::name())
            }
            fn export(dir: &Path) -> std::result::Result<(), ts_rs::ExportError> {
                <$t as TS>::export_all_to(dir)
            }
            fn names() -> Vec<String> {
                vec![<$t as TS>::name()]
            }
        }
        impl Ipc for Option<$t> {
            fn ts() -> Option<String> {
                Some(format!("{} | null", <$t as TS>::name()))
            }
            fn export(dir: &Path) -> std::result::Result<(), ts_rs::ExportError> {
                <$t as TS>::export_all_to(dir)
            }
            fn names() -> Vec<String> {
                vec![<$t as TS>::name()]
            }
        }
    )*};
}

declared!(Doc, Ready, Launch, JoinTarget, Picked, Mode, Found, LinkEvent);

impl<T: Ipc + serde::Serialize + tauri::ipc::IpcResponse> Ipc for Channel<T> {
    fn ts() -> Option<String> {
        T::ts().map(|t| format!("Channel<{t}>"))
    }
    fn export(dir: &Path) -> std::result::Result<(), ts_rs::ExportError> {
        T::export(dir)
    }
    fn names() -> Vec<String> {
        T::names()
    }
}

impl<T: Ipc> Ipc for Result<T> {
    fn ts() -> Option<String> {
        T::ts()
    }
    fn export(dir: &Path) -> std::result::Result<(), ts_rs::ExportError> {
        T::export(dir)
    }
    fn names() -> Vec<String> {
        T::names()
    }
}

impl Ipc for State<'_, AppState> {
    fn ts() -> Option<String> {
        None
    }
}

impl Ipc for AppHandle {
    fn ts() -> Option<String> {
        None
    }
}

impl Ipc for Request<'_> {
    fn ts() -> Option<String> {
        None
    }
}

/// One command as the view sees it.
#[derive(Debug)]
pub struct Command {
    /// Its name (the Rust function's).
    pub name: &'static str,
    /// The arguments the view passes: (Rust name, TypeScript type).
    pub args: Vec<(&'static str, String)>,
    /// Every parameter of the Rust function, in order (those Tauri supplies too).
    pub params: Vec<&'static str>,
    /// What it resolves with.
    pub result: String,
    /// The headers of a raw-body command, or `None` for a command that takes JSON arguments.
    pub raw: Option<Vec<&'static str>>,
}

/// One event the app emits to the view.
#[derive(Debug)]
pub struct Event {
    /// Its name.
    pub name: &'static str,
    /// The view's name for it (`link` is `onLink`).
    pub short: &'static str,
    /// Its payload's TypeScript type.
    pub payload: String,
}

/// Never called: it only makes a row's types meet its command's signature.
#[allow(dead_code)]
fn any<T>() -> T {
    unreachable!("a signature check is never run")
}

macro_rules! ipc {
    (
        commands { $( $kind:tt $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty $([$($h:literal),*])? ; )* }
        events { $( $ev:ident $evname:literal : $payload:ty ; )* }
    ) => {
        /// The invoke handler for every command in the table.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(crate::commands::$name),*]
        }

        /// Every command, as the view sees it.
        pub fn commands() -> Vec<Command> {
            vec![$(Command {
                name: stringify!($name),
                args: [$((stringify!($arg), <$ty as Ipc>::ts())),*]
                    .into_iter()
                    .filter_map(|(n, t)| t.map(|t| (n, t)))
                    .collect(),
                params: vec![$(stringify!($arg)),*],
                result: <$ret as Ipc>::ts().unwrap_or_else(|| "null".into()),
                raw: None $(.or(Some(vec![$($h),*])))?,
            }),*]
        }

        /// Every event, as the view sees it.
        pub fn events() -> Vec<Event> {
            vec![$(Event {
                name: $evname,
                short: stringify!($ev),
                payload: <$payload as Ipc>::ts().unwrap_or_else(|| "null".into()),
            }),*]
        }

        /// Writes every declaration the table names into `dir`; returns their names.
        pub fn export_types(dir: &Path) -> std::result::Result<Vec<String>, ts_rs::ExportError> {
            let mut names = Vec::new();
            $(
                $( <$ty as Ipc>::export(dir)?; names.extend(<$ty as Ipc>::names()); )*
                <$ret as Ipc>::export(dir)?;
                names.extend(<$ret as Ipc>::names());
            )*
            $( <$payload as Ipc>::export(dir)?; names.extend(<$payload as Ipc>::names()); )*
            names.sort();
            names.dedup();
            Ok(names)
        }

        /// Typed emitters, one per event: `emit::link(&app, &target)`.
        pub mod emit {
            use super::*;
            $(
                #[doc = concat!("Emits `", $evname, "` to the view.")]
                pub fn $ev(app: &AppHandle, payload: &$payload) -> tauri::Result<()> {
                    app.emit($evname, payload)
                }
            )*
        }

        #[allow(dead_code, unreachable_code, unused_must_use, clippy::diverging_sub_expression)]
        fn signatures_match() {
            $(ipc!(@check $kind $name ($($ty),*) -> $ret);)*
        }
    };
    (@check async $name:ident ($($ty:ty),*) -> $ret:ty) => {
        drop(async { let _: $ret = crate::commands::$name($(any::<$ty>()),*).await; });
    };
    (@check fn $name:ident ($($ty:ty),*) -> $ret:ty) => {
        let _: $ret = crate::commands::$name($(any::<$ty>()),*);
    };
}

ipc! {
    commands {
        async launch(state: State<'_, AppState>) -> Result<Launch>;
        async choose_mode(state: State<'_, AppState>, mode: Option<Mode>) -> Result<Launch>;
        fn open_link(state: State<'_, AppState>, link: String) -> Result<JoinTarget>;
        async browse(state: State<'_, AppState>, on_event: Channel<Found>) -> Result<()>;
        fn stop_browse(state: State<'_, AppState>) -> ();
        async connect(state: State<'_, AppState>, url: String, fingerprint: String, on_event: Channel<LinkEvent>) -> Result<u32>;
        fn send(state: State<'_, AppState>, id: u32, frame: String) -> Result<()>;
        fn disconnect(state: State<'_, AppState>, id: u32, code: u16, reason: String) -> ();
        async fetch_doc(state: State<'_, AppState>, base: String, fingerprint: String, bearer: String, doc: Doc) -> Result<Response>;
        async cached_doc(state: State<'_, AppState>, doc: Doc) -> Result<Response>;
        async doc_range(state: State<'_, AppState>, base: String, fingerprint: String, bearer: String, doc: Doc, begin: u64, end: u64, checked: bool) -> Result<Response>;
        async doc_manifest(state: State<'_, AppState>, base: String, fingerprint: String, bearer: String, doc: Doc) -> Result<Response>;
        async keep_doc(state: State<'_, AppState>, request: Request<'_>) -> Result<()> ["sha256"];
        async http(state: State<'_, AppState>, request: Request<'_>) -> Result<Response> ["method", "url", "fingerprint", "bearer?"];
        async pick_pdf(app: AppHandle, state: State<'_, AppState>) -> Result<Option<Picked>>;
        async read_picked(state: State<'_, AppState>, path: String) -> Result<Response>;
        async trust_authorities(app: AppHandle, state: State<'_, AppState>) -> Result<Option<u32>>;
        fn authorities(_state: State<'_, AppState>) -> u32;
        async forget_authorities(state: State<'_, AppState>) -> Result<()>;
        async save_file(app: AppHandle, request: Request<'_>) -> Result<bool> ["name"];
        fn store_get(state: State<'_, AppState>, key: String) -> Option<String>;
        fn store_set(state: State<'_, AppState>, key: String, value: Option<String>) -> Result<()>;
        async stay_awake(state: State<'_, AppState>, on: bool) -> Result<()>;
    }
    events {
        link "lectern://link": JoinTarget;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `ui/src/generated/ipc.ts` and the declarations it names; CI fails when the committed
    /// copy differs (`git diff --exit-code ui/src/generated`).
    #[test]
    fn the_views_client_is_generated_from_the_table() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated");
        let names = export_types(&dir).unwrap();
        let ts = typescript(&names);
        std::fs::write(dir.join("ipc.ts"), &ts).unwrap();
        assert!(ts.contains("connect: (args: { url: string; fingerprint: string; onEvent: Channel<LinkEvent> }): Promise<number>"), "{ts}");
        assert!(
            ts.contains(
                "keepDoc: (body: ArrayBuffer | Uint8Array, headers: { sha256: string }): Promise<null>"
            ),
            "{ts}"
        );
        assert!(ts.contains("onLink: (cb: (payload: JoinTarget) => void)"), "{ts}");
        assert_eq!(commands().len(), 23, "every command is in the table");
    }

    /// Tauri matches arguments by name, which no type check sees: each row's parameter names must be
    /// the function's own, as commands.rs declares them.
    #[test]
    fn each_rows_parameter_names_are_its_commands() {
        let source = include_str!("../commands.rs");
        for c in commands() {
            let start = [format!("pub async fn {}(", c.name), format!("pub fn {}(", c.name)]
                .iter()
                .find_map(|head| source.find(head.as_str()).map(|i| i + head.len()))
                .unwrap_or_else(|| panic!("no command {} in commands.rs", c.name));
            let end = start + source[start..].find(')').unwrap();
            // Split at the commas outside `<…>`: `State<'_, AppState>` is one parameter.
            let mut depth = 0i32;
            let mut parts = vec![String::new()];
            for ch in source[start..end].chars() {
                match ch {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(String::new());
                        continue;
                    }
                    _ => {}
                }
                parts.last_mut().unwrap().push(ch);
            }
            let params: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.split(':').next())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            assert_eq!(params, c.params, "{}: the table's parameters are not the function's", c.name);
        }
    }

    #[test]
    fn argument_names_are_camel_case_as_tauri_passes_them() {
        assert_eq!(typescript::camel("on_event"), "onEvent");
        assert_eq!(typescript::camel("fingerprint"), "fingerprint");
    }
}
