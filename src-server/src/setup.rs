//! First-run set-up of the data directory: the TLS identity, the teacher key and their files.
//!
//! Everything `lectern serve` needs is created on first use and kept, so the certificate fingerprint and
//! the teacher key stay the same from one lesson to the next. Secrets are written with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};
use crate::tls::Identity;

/// The platform's data directory for Lectern (for example `~/.local/share/lectern` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("org", "Lectern", "lectern")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("lectern-data"))
}

/// Writes a file readable only by its owner, atomically (write then rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("part");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(&tmp).map_err(|e| Error::File { path: tmp.clone(), message: e.to_string() })?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// 256 random bits, base64url without padding.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
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

/// A random 6-digit join code.
pub fn join_code() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

/// A random room id.
pub fn room_id() -> String {
    let n: u32 = rand::random();
    format!("r{n:08x}")
}

/// Whether a join code has the form the server accepts from `--code`: 4 to 12 digits.
pub fn is_valid_code(code: &str) -> bool {
    (4..=12).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit())
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

    #[test]
    fn join_codes_are_six_digits() {
        for _ in 0..100 {
            let c = join_code();
            assert!(c.len() == 6 && is_valid_code(&c), "{c}");
        }
    }
}
