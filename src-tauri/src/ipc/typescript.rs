//! The view's typed client (`ui/src/generated/ipc.ts`), written from the IPC table.

use std::fmt::Write as _;

use super::{commands, events};

/// The view's client: typed wrappers for every command and event.
pub fn typescript(names: &[String]) -> String {
    let mut out = String::from(
        "// Generated from src-tauri/src/ipc.rs by `cargo test -p lectern-app`: do not edit.\n\
         // The app's commands and events, typed; the view calls Rust only through these.\n\
         import { Channel, invoke } from \"@tauri-apps/api/core\";\n\
         import { listen, type UnlistenFn } from \"@tauri-apps/api/event\";\n",
    );
    for name in names {
        let _ = writeln!(out, "import type {{ {name} }} from \"./{name}\";");
    }
    out.push_str("\nexport { Channel };\n\n/** Every command of the app, by its Rust name. */\nexport const commands = {\n");
    for c in commands() {
        let method = camel(c.name);
        match &c.raw {
            Some(headers) => {
                // "bearer?" is a header the command does without.
                let fields: Vec<String> = headers.iter().map(|h| format!("{h}: string")).collect();
                let _ = writeln!(
                    out,
                    "  {method}: (body: ArrayBuffer | Uint8Array, headers: {{ {} }}): Promise<{}> =>\n    \
                     invoke<{}>(\"{}\", body, {{ headers }}),",
                    fields.join("; "),
                    c.result,
                    c.result,
                    c.name
                );
            }
            None if c.args.is_empty() => {
                let _ = writeln!(
                    out,
                    "  {method}: (): Promise<{}> => invoke<{}>(\"{}\"),",
                    c.result, c.result, c.name
                );
            }
            None => {
                let fields: Vec<String> = c.args.iter().map(|(n, t)| format!("{}: {t}", camel(n))).collect();
                let _ = writeln!(
                    out,
                    "  {method}: (args: {{ {} }}): Promise<{}> => invoke<{}>(\"{}\", args),",
                    fields.join("; "),
                    c.result,
                    c.result,
                    c.name
                );
            }
        }
    }
    out.push_str("} as const;\n\n/** Every event the app emits to the view. */\nexport const events = {\n");
    for e in events() {
        let short = format!("on{}{}", e.short[..1].to_uppercase(), &e.short[1..]);
        let _ = writeln!(
            out,
            "  {short}: (cb: (payload: {}) => void): Promise<UnlistenFn> => listen<{}>(\"{}\", (e) => cb(e.payload)),",
            e.payload, e.payload, e.name
        );
    }
    out.push_str("} as const;\n");
    out
}

/// `on_event` as the view names it: `onEvent`.
pub(super) fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}
