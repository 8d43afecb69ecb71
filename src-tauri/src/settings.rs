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

/// One change to the authorities at a time: two dialogs answered together must not leave the file
/// kept and the list trusted disagreeing.
static CHANGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Makes the authorities in the PEM file at `from` (the person chose it) the app's own: checked first
/// (a file that is not certificates changes nothing), kept as [`TRUSTED_AUTHORITIES`] in `dir` so that
/// every start reads it, and trusted from the next connection on. How many it holds. Blocking.
pub fn adopt_authorities(dir: &Path, from: &Path) -> Result<usize, String> {
    let _one = CHANGING.lock().unwrap_or_else(|p| p.into_inner());
    let bytes = lectern::tls::read_authorities_file(from).map_err(|e| e.to_string())?;
    let path = dir.join(TRUSTED_AUTHORITIES);
    let part = path.with_extension("part");
    std::fs::write(&part, bytes).map_err(|e| format!("keeping {TRUSTED_AUTHORITIES}: {e}"))?;
    // The copy is what is checked and kept: the file chosen could change in between.
    let roots = match lectern::tls::read_authorities(&part) {
        Ok(roots) => roots,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.to_string().replace(&part.display().to_string(), &from.display().to_string()));
        }
    };
    std::fs::rename(&part, &path).map_err(|e| format!("keeping {TRUSTED_AUTHORITIES}: {e}"))?;
    let count = roots.len();
    lectern::tls::trust_also(roots);
    Ok(count)
}

/// Stops trusting the district's authorities: the file goes, and from the next connection on relays
/// are checked against the web's authorities only.
pub fn forget_authorities(dir: &Path) -> Result<(), String> {
    let _one = CHANGING.lock().unwrap_or_else(|p| p.into_inner());
    lectern::tls::trust_also(Vec::new());
    match std::fs::remove_file(dir.join(TRUSTED_AUTHORITIES)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {TRUSTED_AUTHORITIES}: {e}")),
    }
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
    fn authorities_chosen_in_the_app_are_kept_and_a_wrong_file_changes_nothing() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let ca = lectern::tls::Identity::generate(&["district ca".into()], &[]).unwrap();
        ca.save(elsewhere.path()).unwrap();
        let chosen = elsewhere.path().join("cert.pem");
        assert_eq!(adopt_authorities(home.path(), &chosen), Ok(1));
        assert_eq!(
            local_authorities(home.path()),
            Some(Ok(vec![ca.cert.clone()])),
            "kept for the next start"
        );
        // A wrong file (the key, words, something big) is refused, and what was trusted stays.
        let words = elsewhere.path().join("notes.txt");
        std::fs::write(&words, "just words").unwrap();
        let big = elsewhere.path().join("video.pem");
        std::fs::write(&big, vec![b'-'; 2 << 20]).unwrap();
        for wrong in [
            elsewhere.path().join("key.pem"),
            words.clone(),
            big,
            "/dev/zero".into(),
            elsewhere.path().to_path_buf(),
        ] {
            let err = adopt_authorities(home.path(), &wrong).unwrap_err();
            assert!(err.contains(&wrong.display().to_string()), "the error names the file chosen: {err}");
        }
        assert_eq!(local_authorities(home.path()), Some(Ok(vec![ca.cert.clone()])));
        assert!(!home.path().join("trusted-authorities.part").exists());
        forget_authorities(home.path()).unwrap();
        assert_eq!(local_authorities(home.path()), None);
        forget_authorities(home.path()).unwrap();
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
