//! One fault: bring a stream to a stage, SIGKILL one process, and watch what the others do.

use std::time::{Duration, Instant};

use crate::hung_target::HungTarget;
use crate::integrity;
use crate::peer::Peer;
use crate::rig::Rig;
use crate::service_peer::Hold;
use crate::stage::{Stage, Victim};

/// How long a survivor may take to end its side of a dead stream and still count as prompt.
pub const PROMPT: Duration = Duration::from_secs(5);

/// What one fault did.
#[derive(Debug)]
pub struct Row {
    /// Where the stream was.
    pub stage: Stage,
    /// Who was killed.
    pub victim: Victim,
    /// What the surviving peers did, with times from the kill (or from a holding peer's
    /// resumption).
    pub peers: String,
    /// What the hub showed: gauges back to zero, or for a hub kill, the restart.
    pub hub: String,
    /// Whether a fresh stream worked afterwards.
    pub fresh_stream: bool,
    /// Whether every survivor ended promptly with an error, the gauges came back and the
    /// registry is intact; otherwise why not.
    pub verdict: Result<(), String>,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Runs the fault `victim` at `stage` on a hub of its own. Errors: the stage was not reached.
pub async fn run(
    bin: &std::path::Path,
    database_url: Option<&str>,
    stage: Stage,
    victim: Victim,
) -> anyhow::Result<Row> {
    let mut rig = Rig::start(bin, database_url)?;
    let echo = format!("127.0.0.1:{}", adit_testkit::echo_server());
    let hung = HungTarget::start()?;
    let ssh_target = if stage == Stage::Delivered {
        hung.addr.to_string()
    } else {
        echo.clone()
    };
    let mut device = match stage {
        Stage::Requested => None,
        _ => Some(rig.device_proxy(&ssh_target, &echo)?),
    };
    let mut service = match stage {
        Stage::Accepted => rig.service_peer(Hold::Accepted)?,
        Stage::Connecting => rig.service_peer(Hold::Connecting)?,
        _ => rig.connect("ssh")?,
    };
    reach(&rig, &mut service, stage).await?;

    let mut failures = Vec::new();
    let mut peers = Vec::new();
    let killed = Instant::now();
    match victim {
        Victim::Device => match device.as_mut() {
            Some(d) => d.kill9(),
            None => anyhow::bail!("no device process at this stage"),
        },
        Victim::Service => service.kill9(),
        Victim::Hub => rig.hub.crash(),
    }

    // The service side, unless it was the victim.
    if victim != Victim::Service {
        let holding = matches!(stage, Stage::Accepted | Stage::Connecting);
        let from = if holding {
            // A holding peer notices nothing until it acts; let the others settle first.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = service.send("go");
            Instant::now()
        } else {
            killed
        };
        match service.wait_exit(Duration::from_secs(60)) {
            Some((status, at)) => {
                let took = at.saturating_duration_since(from);
                let error = service.last_error();
                let when = if holding {
                    "after resuming"
                } else {
                    "after the kill"
                };
                peers.push(format!(
                    "service ended {} {when} ({status}): {error}",
                    secs(took)
                ));
                if took > PROMPT || status.success() || error.is_empty() {
                    failures.push("the service did not end promptly with an error".to_string());
                }
            }
            None => {
                peers.push("service still running after 60 s".into());
                failures.push("the service never ended".into());
            }
        }
    }
    // The device side, unless it was the victim or never ran.
    if victim != Victim::Device
        && let Some(d) = device.as_mut()
    {
        // A relaying stream ends at once. A device half waiting for a service that died after
        // its 200 (or mid-upgrade) ends at the handshake deadline: the hub cannot know a
        // service will never come, only that its time is up.
        let bound = match (stage, victim) {
            (Stage::Relaying, _) => Some(PROMPT + Duration::from_secs(1)),
            (Stage::Accepted | Stage::Connecting, Victim::Service) => {
                // The hub's default (Azure's 60 s); the rig runs the hub with it.
                Some(adit_hub::streams::StreamConfig::default().handshake_timeout + PROMPT)
            }
            _ => None,
        };
        if let Some(bound) = bound {
            match d.wait_line("stream", killed, bound + Duration::from_secs(10)) {
                Some(at) => {
                    let took = at.saturating_duration_since(killed);
                    peers.push(format!(
                        "device-proxy ended its stream {} after the kill",
                        secs(took)
                    ));
                    if took > bound {
                        failures.push(format!(
                            "the device-proxy did not end its stream within {}",
                            secs(bound)
                        ));
                    }
                }
                None => {
                    peers.push("device-proxy never ended its stream".into());
                    failures.push("the device-proxy never ended its stream".into());
                }
            }
        }
        if let Some((status, _)) = d.wait_exit(Duration::ZERO) {
            failures.push(format!("the device-proxy exited ({status})"));
        }
    }

    let hub = if victim == Victim::Hub {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rig.hub = rig.hub.start_again();
        let restarted = Instant::now();
        let mut notes = Vec::new();
        if device.is_some() {
            match rig
                .gauge_reaches("adit_connected_devices", 1.0, Duration::from_secs(60))
                .await
            {
                Some(t) => notes.push(format!("device back {} after restart", secs(t))),
                None => failures.push("the device did not come back within 60 s".into()),
            }
        }
        let _ = restarted;
        match integrity::sqlite_check(&rig).await {
            Ok(Some(r)) if r == "ok" => notes.push("SQLite integrity ok".into()),
            Ok(Some(r)) => failures.push(format!("SQLite integrity: {r}")),
            Ok(None) => {}
            Err(e) => failures.push(format!("SQLite integrity check failed: {e:#}")),
        }
        if integrity::device_intact(&rig) {
            notes.push("registry intact".into());
        } else {
            failures.push("the device is gone from the registry".into());
        }
        notes.join("; ")
    } else {
        let mut notes = Vec::new();
        match rig
            .gauge_reaches("adit_active_streams", 0.0, Duration::from_secs(60))
            .await
        {
            Some(t) => notes.push(format!("active streams 0 after {}", secs(t))),
            None => failures.push("adit_active_streams stayed above 0 for 60 s".into()),
        }
        if victim == Victim::Device {
            match rig
                .gauge_reaches("adit_connected_devices", 0.0, Duration::from_secs(60))
                .await
            {
                Some(t) => notes.push(format!("device disconnected after {}", secs(t))),
                None => failures.push("the device stayed connected for 60 s".into()),
            }
        }
        notes.join("; ")
    };

    // A fresh stream through a device proxy (a new one if the old one was killed or never
    // ran).
    let _replacement: Option<Peer> = match (&device, victim) {
        (Some(_), v) if v != Victim::Device => None,
        _ => Some(rig.device_proxy(&echo, &echo)?),
    };
    let fresh_stream = rig.stream_works();
    if !fresh_stream {
        failures.push("a fresh stream failed".into());
    }
    Ok(Row {
        stage,
        victim,
        peers: peers.join("; "),
        hub,
        fresh_stream,
        verdict: if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        },
    })
}

/// Brings the stream to `stage`. Errors: it did not get there within 10 s.
async fn reach(rig: &Rig, service: &mut Peer, stage: Stage) -> anyhow::Result<()> {
    let start = Instant::now();
    let within = Duration::from_secs(10);
    let reached = match stage {
        Stage::Requested | Stage::Delivered => {
            let r = rig.gauge_reaches("adit_active_streams", 1.0, within).await;
            // The request reaches a connected device within milliseconds of being counted.
            tokio::time::sleep(Duration::from_millis(300)).await;
            r.is_some()
        }
        Stage::Accepted => service.wait_line("accepted", start, within).is_some(),
        Stage::Connecting => service.wait_line("connecting", start, within).is_some(),
        Stage::Relaying => {
            service.send("ping")?;
            service.wait_line("ping", start, within).is_some()
        }
    };
    anyhow::ensure!(reached, "the stream did not reach {stage}");
    Ok(())
}
