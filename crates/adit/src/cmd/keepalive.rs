//! `--ping-interval` and `--pong-timeout` as the SDKs' keep-alive setting.

use std::time::Duration;

use adit_transport::Keepalive;
use anyhow::Context as _;

use crate::cli::KeepaliveArgs;

impl KeepaliveArgs {
    /// The keep-alive to use: `None` with `--ping-interval 0`.
    pub fn keepalive(&self) -> anyhow::Result<Option<Keepalive>> {
        if self.ping_interval == 0.0 {
            return Ok(None);
        }
        let secs = |v: f64, flag: &str| {
            Duration::try_from_secs_f64(v)
                .with_context(|| format!("{flag} must be a number of seconds, not {v}"))
        };
        let interval = secs(self.ping_interval, "--ping-interval")?;
        let timeout = secs(self.pong_timeout, "--pong-timeout")?;
        Ok(Some(Keepalive::new(interval, timeout)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(ping_interval: f64, pong_timeout: f64) -> KeepaliveArgs {
        KeepaliveArgs {
            ping_interval,
            pong_timeout,
        }
    }

    #[test]
    fn flags_become_the_keepalive() {
        let k = args(5.0, 2.5).keepalive().expect("valid").expect("on");
        assert_eq!(k.interval(), Duration::from_secs(5));
        assert_eq!(k.timeout(), Duration::from_millis(2500));
        assert_eq!(args(0.0, 20.0).keepalive().expect("valid"), None);
    }

    #[test]
    fn nonsense_is_refused_with_the_flag_named() {
        for (i, t, flag) in [
            (-1.0, 20.0, "--ping-interval"),
            (20.0, -1.0, "--pong-timeout"),
            (20.0, 0.0, "pong timeout"),
            (f64::NAN, 20.0, "--ping-interval"),
            (1e12, 20.0, "ping interval"),
        ] {
            let err = args(i, t).keepalive().expect_err("refused");
            assert!(format!("{err:#}").contains(flag), "{i} {t}: {err:#}");
        }
    }
}
