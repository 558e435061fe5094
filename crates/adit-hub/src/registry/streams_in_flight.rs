//! Streams each node is relaying, kept in the shared registry so that their records survive
//! the node: whoever clears a dead node (another node, or the node itself at its next start)
//! writes a `node_lost` record for each. The rows are written through the group commit of
//! [`super::connection_writes`], off the stream's setup path.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::connection_writes::ConnectionWrite;
use super::{Registry, RegistryError};

/// A stream between the device's acceptance and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightStream {
    /// Stream id (32 hex digits).
    pub stream_id: String,
    /// Target device.
    pub device_id: String,
    /// Target module.
    pub module_id: Option<String>,
    /// Stream name.
    pub name: String,
    /// When the service asked, in Unix ms.
    pub requested_ms: i64,
    /// The service caller's address, as text.
    pub caller: Option<String>,
    /// The api-version the service sent.
    pub api_version: Option<String>,
}

// A macro rather than a const so the queries stay `&'static str` (sqlx refuses built strings).
macro_rules! in_flight_columns {
    () => {
        "stream_id, device_id, module_id, name, requested_ms, caller, api_version"
    };
}
pub(super) use in_flight_columns;

pub(super) fn from_row(row: &AnyRow) -> Result<InFlightStream, RegistryError> {
    Ok(InFlightStream {
        stream_id: row.try_get("stream_id")?,
        device_id: row.try_get("device_id")?,
        module_id: row.try_get("module_id")?,
        name: row.try_get("name")?,
        requested_ms: row.try_get("requested_ms")?,
        caller: row.try_get("caller")?,
        api_version: row.try_get("api_version")?,
    })
}

impl Registry {
    /// Records that `node` relays `stream` from now on. Returns once committed.
    pub async fn stream_opened(
        &self,
        node: &str,
        stream: InFlightStream,
    ) -> Result<(), RegistryError> {
        self.connection_writes
            .apply(ConnectionWrite::StreamOpened {
                node: node.to_string(),
                stream: Box::new(stream),
            })
            .await?;
        Ok(())
    }

    /// Records that stream `stream_id` has its record now.
    pub async fn stream_closed(&self, stream_id: &str) -> Result<(), RegistryError> {
        self.connection_writes
            .apply(ConnectionWrite::StreamClosed {
                stream_id: stream_id.to_string(),
            })
            .await?;
        Ok(())
    }

    /// How many streams every node relays now, per device (modules' streams count for their
    /// device): the rows every node keeps here while its streams run.
    pub async fn open_streams_per_device(
        &self,
    ) -> Result<std::collections::HashMap<String, usize>, RegistryError> {
        // The main pool: `sessions` is kept for device CONNECTs.
        let rows = sqlx::query(
            "SELECT device_id, COUNT(*) AS open FROM streams_in_flight GROUP BY device_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let open: i64 = row.try_get("open")?;
                Ok((
                    row.try_get("device_id")?,
                    usize::try_from(open).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Removes and returns the streams `node` was relaying when it last ran: for a node
    /// starting again after it died, before it relays anything.
    pub async fn take_node_streams(
        &self,
        node: &str,
    ) -> Result<Vec<InFlightStream>, RegistryError> {
        let rows = sqlx::query(concat!(
            "DELETE FROM streams_in_flight WHERE node_id = $1 RETURNING ",
            in_flight_columns!()
        ))
        .bind(node.to_string())
        .fetch_all(&self.sessions)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
