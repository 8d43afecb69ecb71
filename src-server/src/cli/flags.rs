//! A flag for every configuration key, made from the key's declaration (`lectern::config::keys`):
//! its name, its help (the key's doc) and how it takes a value (a switch, a value, or a repeated
//! value for a list). What is given becomes the last layer of the configuration.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use lectern::config::Config;
use lectern::config::keys::{Command as Takes, Key};
use toml::{Table, Value};

/// The flags of a command's keys (`lectern::config::keys::Command`): the server's (`RELAY = false`)
/// or the relay's.
#[derive(Debug, Default, Clone)]
pub struct KeyFlags<const RELAY: bool> {
    /// The flags given, as (dotted key, value).
    pub given: Vec<(String, Value)>,
}

/// How a key's flag takes its value.
enum Shape {
    Switch(bool),
    List,
    Value,
}

fn keys(relay: bool) -> Vec<(Key, Shape)> {
    let defaults = Table::try_from(Config::default()).unwrap_or_default();
    let command = if relay { Takes::Relay } else { Takes::Serve };
    Config::keys()
        .into_iter()
        .filter(|k| command.takes(k))
        .map(|k| {
            let list = match (k.section.is_empty(), defaults.get(k.section)) {
                (true, _) => matches!(defaults.get(k.name), Some(Value::Array(_))),
                (false, Some(Value::Table(t))) => matches!(t.get(k.name), Some(Value::Array(_))),
                _ => false,
            };
            let shape = match k.sets {
                Some(v) => Shape::Switch(v == "true"),
                None if list => Shape::List,
                None => Shape::Value,
            };
            (k, shape)
        })
        .collect()
}

impl<const RELAY: bool> Args for KeyFlags<RELAY> {
    fn augment_args(mut cmd: Command) -> Command {
        for (key, shape) in keys(RELAY) {
            let help = format!("{} [env: {}]", key.doc(), key.env);
            // A key's variable names it uniquely, and is `'static` as clap wants.
            let arg = Arg::new(key.env).long(key.flag).help(help);
            cmd = cmd.arg(match shape {
                Shape::Switch(_) => arg.action(ArgAction::SetTrue),
                Shape::List => arg.action(ArgAction::Append).value_name("VALUE"),
                Shape::Value => arg.action(ArgAction::Set).value_name("VALUE"),
            });
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<const RELAY: bool> FromArgMatches for KeyFlags<RELAY> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for (key, shape) in keys(RELAY) {
            let id = key.env;
            match shape {
                Shape::Switch(value) => {
                    if m.get_flag(id) {
                        given.push((key.path(), Value::Boolean(value)));
                    }
                }
                Shape::List => {
                    if let Some(values) = m.get_many::<String>(id) {
                        given.push((
                            key.path(),
                            Value::Array(values.map(|v| Value::String(v.clone())).collect()),
                        ));
                    }
                }
                Shape::Value => {
                    if let Some(v) = m.get_one::<String>(id) {
                        given.push((key.path(), Value::String(v.clone())));
                    }
                }
            }
        }
        Ok(KeyFlags { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
