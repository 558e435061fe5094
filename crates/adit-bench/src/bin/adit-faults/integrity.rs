//! The registry after a hub was killed mid-write: SQLite's own integrity check, and for either
//! database, that the hub's CLI still finds the device.

use sqlx::Connection as _;

use crate::rig::{DEVICE, Rig};

/// `PRAGMA integrity_check` on the hub's SQLite registry (read-only), or `None` when the
/// registry is elsewhere (PostgreSQL). Errors: the database cannot be opened.
pub async fn sqlite_check(rig: &Rig) -> anyhow::Result<Option<String>> {
    let path = rig.hub.data_dir().join("registry.db");
    if !path.exists() {
        return Ok(None);
    }
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut db)
        .await?;
    db.close().await?;
    Ok(Some(
        rows.into_iter()
            .map(|(r,)| r)
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// Whether `adit device show` still finds the scenario's device, enabled.
pub fn device_intact(rig: &Rig) -> bool {
    let out = rig.hub.cli(&["device", "show", DEVICE], &[]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("enabled")
}
