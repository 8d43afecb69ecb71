//! What the app remembers on this device: teach or join, and the view's small key-value store (the
//! student's name, typed once, the device id, resume tokens, the language). One JSON file in the app's data folder, written
//! atomically; a damaged file is set aside and the app starts fresh rather than failing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Teach or join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "AppMode")]
pub enum Mode {
    /// This device serves the lesson.
    Teacher,
    /// This device follows a lesson.
    Student,
}

/// The remembered settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The last choice, asked on first start.
    pub mode: Option<Mode>,
    /// The view's own values (language, resume tokens).
    pub store: BTreeMap<String, String>,
}

/// The settings file and its contents.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    /// The settings now.
    pub settings: Settings,
}

impl SettingsFile {
    /// Loads `settings.json` from `dir`, or starts fresh.
    pub fn load(dir: &Path) -> SettingsFile {
        let path = dir.join("settings.json");
        let settings = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Settings>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "settings.json is damaged; starting fresh");
                let _ = std::fs::rename(&path, path.with_extension("json.broken"));
                Settings::default()
            }),
            Err(_) => Settings::default(),
        };
        SettingsFile { path, settings }
    }

    /// Writes the settings (atomically).
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("part");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.settings).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// A PEM file in the app's data folder, put there by school IT: authorities the app trusts besides
/// the web's, for relays whose certificate a district's own ACME authority issued.
pub const TRUSTED_AUTHORITIES: &str = "trusted-authorities.pem";

/// The authorities in `dir`'s [`TRUSTED_AUTHORITIES`] file: none when there is no such file, an error
/// naming the file when it is damaged (the app then trusts the web's authorities only).
pub fn local_authorities(dir: &Path) -> Option<Result<Vec<lectern::tls::Authority>, String>> {
    let path = dir.join(TRUSTED_AUTHORITIES);
    if !path.exists() {
        return None;
    }
    Some(lectern::tls::read_authorities(&path).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_district_authority_file_is_read_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(local_authorities(dir.path()).is_none(), "no file, nothing added");
        let ca = lectern::tls::Identity::generate(&["district ca".into()], &[]).unwrap();
        ca.save(dir.path()).unwrap();
        std::fs::rename(dir.path().join("cert.pem"), dir.path().join(TRUSTED_AUTHORITIES)).unwrap();
        let read = local_authorities(dir.path()).unwrap().unwrap();
        assert_eq!(read, vec![ca.cert.clone()]);
        std::fs::write(dir.path().join(TRUSTED_AUTHORITIES), "-----BEGIN CERTIFICATE-----\nnot base64\n")
            .unwrap();
        let err = local_authorities(dir.path()).unwrap().unwrap_err();
        assert!(err.contains(TRUSTED_AUTHORITIES), "{err}");
        std::fs::write(dir.path().join(TRUSTED_AUTHORITIES), "just words").unwrap();
        let err = local_authorities(dir.path()).unwrap().unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn settings_survive_a_restart_and_a_damaged_file_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = SettingsFile::load(dir.path());
        file.settings.mode = Some(Mode::Student);
        file.settings.store.insert("student.name".into(), "Aisha".into());
        file.save().unwrap();
        let again = SettingsFile::load(dir.path());
        assert_eq!(again.settings, file.settings);
        std::fs::write(dir.path().join("settings.json"), "{not json").unwrap();
        let fresh = SettingsFile::load(dir.path());
        assert_eq!(fresh.settings, Settings::default());
    }
}
