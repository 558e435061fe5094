//! Writing files that hold a secret (connection strings, keys) so only their owner can read
//! them.

use std::io::Write as _;
use std::path::Path;

/// Writes `contents` and a newline to `path`, creating it with mode 0600 on Unix. A file that
/// already exists is tightened to 0600 before it is truncated, so the secret is never readable
/// by others, not even for a moment.
///
/// # Errors
/// The I/O error from setting the mode, opening or writing.
pub fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        // `mode` applies only when creating; tighten a file left by an older run too.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn new_and_existing_files_end_up_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("fresh");
        write_secret_file(&fresh, "s1").expect("write");
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(std::fs::read_to_string(&fresh).expect("read"), "s1\n");

        let open = dir.path().join("world-readable");
        std::fs::write(&open, "old contents that are longer").expect("write");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_secret_file(&open, "s2").expect("write");
        assert_eq!(mode(&open), 0o600);
        assert_eq!(std::fs::read_to_string(&open).expect("read"), "s2\n");
    }
}
