//! A Python virtual environment with the third-party clients the tests drive (Azure's SDKs,
//! paho-mqtt), made once under `target/` and reused. Creation is serialized with a file lock
//! because test binaries run in parallel.

use std::path::PathBuf;
use std::process::Command;

/// A ready virtual environment.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    /// The venv's `python`.
    pub python: PathBuf,
}

impl PythonEnv {
    /// Runs `script` (a path relative to `tests/python`) with `envs`, returning its output.
    pub fn run(&self, script: &str, envs: &[(&str, String)]) -> std::process::Output {
        let path = crate::workspace_root().join("tests/python").join(script);
        let mut cmd = Command::new(&self.python);
        cmd.arg(&path);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().expect("python runs")
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// The environment, created (or updated when `tests/python/requirements.txt` changed) on
/// first use. Needs `python3` with `venv` and access to PyPI the first time.
pub fn python_env() -> PythonEnv {
    let requirements = crate::workspace_root().join("tests/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt readable");
    let dir = target_dir().join("adit-pyenv");
    std::fs::create_dir_all(target_dir()).expect("target dir");
    let lock = std::fs::File::create(target_dir().join("adit-pyenv.lock")).expect("lock file");
    lock.lock().expect("lock python env");
    let stamp = dir.join("installed-requirements.txt");
    let python = dir.join("bin/python");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) || !python.exists()
    {
        run_ok(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            "python3 -m venv",
        );
        run_ok(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/python/requirements.txt",
        );
        std::fs::write(&stamp, &wanted).expect("write stamp");
    }
    drop(lock);
    PythonEnv { python }
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
