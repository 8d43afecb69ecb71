//! Files under the data directory: where it is, how secrets are written (mode 0600, atomically), and
//! the teacher's server's signing key.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};
use crate::protocol::sign::Signer;

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

/// Makes `dir` (and its parents) if needed, and leaves it readable by its owner only (0700), an
/// existing one too: the data directory holds the join code, device ids, names and addresses. Where
/// that cannot be done (a file system without modes, a folder of someone else's), it says so in the
/// log and carries on.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
        {
            tracing::warn!(dir = %dir.display(), error = %e, "the data directory stays readable by others");
        }
    }
    Ok(())
}

/// Leaves each of `paths` that exists readable by its owner only (0600).
pub fn private_files(paths: &[&Path]) -> std::io::Result<()> {
    #[cfg(unix)]
    for path in paths {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = paths;
    Ok(())
}

/// 256 random bits, base64url without padding.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The file under the data directory that holds the signing key's 32 secret bytes.
pub const SIGNING_KEY_FILE: &str = "signing.key";

/// The teacher's server's signing key kept in `dir`, made (and kept, mode 0600) if there is none.
pub fn load_signer(dir: &Path) -> Result<Signer> {
    let path = dir.join(SIGNING_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::File {
                path: path.clone(),
                message: "a signing key is 32 bytes; move the file aside to make a new key".into(),
            })?;
            Ok(Signer::from_secret(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            write_private(&path, &secret)?;
            Ok(Signer::from_secret(secret))
        }
        Err(e) => Err(Error::File { path, message: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_signer(dir.path()).unwrap();
        let b = load_signer(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(a.public().len(), 43);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
