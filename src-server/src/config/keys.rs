//! Configuration keys, each declared once ([`section!`], used in `config/mod.rs`): from a key's one
//! line come its field and default, its TOML name, its `LECTERN_*` variable, its command-line flag,
//! the `lectern config --keys` listing and the README's table ([`markdown`]; a test keeps the README's
//! copy the same).

use toml::{Table, Value};

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The section it is in (`limits`), or "" at the top level.
    pub section: &'static str,
    /// Its name in the section, as in the TOML file (`student_rate`).
    pub name: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// Its command-line flag, without the dashes.
    pub flag: &'static str,
    /// For a switch (a flag without a value): the value it sets.
    pub sets: Option<&'static str>,
    /// What leaving it unset means, where the default has no value to show.
    pub unset: Option<&'static str>,
    /// What it is for: the lines of its doc comment.
    pub doc: &'static [&'static str],
}

impl Key {
    /// The dotted path, as `lectern config` shows it (`limits.student_rate`).
    pub fn path(&self) -> String {
        if self.section.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.section, self.name)
        }
    }

    /// What it is for, in one line.
    pub fn doc(&self) -> String {
        self.doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    }
}

/// Declares a section of the configuration: a struct whose every field is a key, with its default,
/// TOML name, variable and flag on one line; then the sections nested in it, and fields that are not
/// keys (set by the program, never by a file).
///
/// ```text
/// section! {
///     /// Limits.
///     pub struct Limits at "limits" {
///         /// Student frames per second.
///         student_rate: u32 = 50, key "student_rate", env "LECTERN_STUDENT_RATE", flag "student-rate";
///     }
/// }
/// ```
///
/// `key "heartbeat_ms" with "millis"` stores a `Duration` as milliseconds; `flag "no-log" = "false"`
/// is a switch that sets that value; `unset "…"` says what an absent value means.
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident at $section:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr,
                    key $key:literal $(with $with:literal)?,
                    env $env:literal,
                    flag $flag:literal $(= $sets:literal)?
                    $(, unset $unset:literal)?;
            )*
        }
        $(sections { $( $(#[doc = $sd:literal])* $sfield:ident : $sty:ty ),* $(,)? })?
        $(not_keys { $( $(#[doc = $kd:literal])* $kfield:ident : $kty:ty = $kdef:expr ),* $(,)? })?
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $key)]
                $(#[serde(with = $with)])?
                pub $field: $ty,
            )*
            $($(
                $(#[doc = $sd])*
                pub $sfield: $sty,
            )*)?
            $($(
                $(#[doc = $kd])*
                #[serde(skip)]
                pub $kfield: $kty,
            )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)*
                    $($($sfield: <$sty>::default(),)*)?
                    $($($kfield: $kdef,)*)?
                }
            }
        }

        impl $name {
            /// Every key of this section and of the sections in it, in the order declared.
            pub fn keys() -> Vec<$crate::config::keys::Key> {
                #[allow(unused_mut)]
                let mut keys = vec![$($crate::config::keys::Key {
                    section: $section,
                    name: $key,
                    env: $env,
                    flag: $flag,
                    sets: None $(.or(Some($sets)))?,
                    unset: None $(.or(Some($unset)))?,
                    doc: &[$($doc),*],
                }),*];
                $($(keys.extend(<$sty>::keys());)*)?
                keys
            }
        }
    };
}

pub(crate) use section;

/// The commands that take keys as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `lectern serve`, `lectern config`, `lectern doctor`: every key but `[relay]`'s.
    Serve,
    /// `lectern relay`: `[relay]`, `redis`, `redis_ca`, `[limits]` and `[timing]`, without the
    /// per-address limits (behind a load balancer every student has its address; see `cli/relay.rs`).
    Relay,
}

impl Command {
    /// Whether this command takes `key`.
    pub fn takes(self, key: &Key) -> bool {
        match self {
            Command::Serve => key.section != "relay",
            Command::Relay => {
                matches!(key.section, "relay" | "timing")
                    || (key.section == "limits" && !key.name.ends_with("_per_address"))
                    || (key.section.is_empty() && matches!(key.name, "redis" | "redis_ca"))
            }
        }
    }

    /// The flags it has besides its keys'.
    pub fn own_flags(self) -> &'static [&'static str] {
        match self {
            Command::Serve => &["config", "json", "keys", "markdown", "help", "version"],
            Command::Relay => &["config", "json", "help", "version"],
        }
    }
}

/// The value a key has by default, as the README shows it.
fn shown_default(defaults: &Table, key: &Key) -> String {
    let mut at = Some(defaults);
    let value = if key.section.is_empty() {
        defaults.get(key.name)
    } else {
        at = at.and_then(|t| t.get(key.section)).and_then(Value::as_table);
        at.and_then(|t| t.get(key.name))
    };
    match value {
        Some(Value::Array(a)) if a.is_empty() => key.unset.unwrap_or("none").to_string(),
        Some(Value::String(s)) => format!("`{s}`"),
        Some(v) => format!("`{v}`"),
        None => key.unset.unwrap_or("none").to_string(),
    }
}

/// The README's table of keys: key, variable, flag, default, and what it does.
pub fn markdown(keys: &[Key], defaults: &Table) -> String {
    let mut out =
        String::from("| key | environment | flag | default | what it does |\n|---|---|---|---|---|\n");
    for k in keys {
        let command = if Command::Serve.takes(k) { "" } else { "`lectern relay` " };
        let flag = match k.sets {
            Some(_) => format!("{command}`--{}`", k.flag),
            None => format!("{command}`--{} …`", k.flag),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {flag} | {} | {} |\n",
            k.path(),
            k.env,
            shown_default(defaults, k),
            k.doc().replace('|', "\\|")
        ));
    }
    out
}
