//! `adit`: one binary for running a hub and working with it. Built without its `full` feature
//! it is the device agent: `adit device-proxy` alone.

mod cli;
mod cmd;
mod config_file;
mod hub_access;
mod signal;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match config_file::load(&argv, |var| std::env::var_os(var)) {
        Ok(cli) => cli,
        Err(config_file::ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ADIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log_filter()));
    // async-nats logs the server URL, password included, at debug when it connects: its
    // records stop at info whatever ADIT_LOG asks, so no level of Adit's logs holds a secret.
    let filter = match "async_nats=info".parse() {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `adit connect` may be blocked reading stdin when its stream ends; tokio reads stdin on
    // a thread that cannot be cancelled, and dropping the runtime would wait for that read
    // (for ssh, forever). Its output is flushed by then, so it leaves that thread behind.
    let leave_blocked_reads = cli.command.reads_stdin();
    let result = runtime.block_on(cmd::run(cli));
    if leave_blocked_reads {
        runtime.shutdown_background();
    } else {
        // Bounded for every command: a blocking thread stuck on a stalled pipe (the hub's
        // `--log-stdout` writer) must not keep the process from exiting.
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with what to do when the failure is a certificate the user can fix.
            match adit_transport::certificate_hint(e.as_ref()) {
                Some(hint) => {
                    eprintln!("error: {}; {hint}", adit_proto::report::Report(e.as_ref()))
                }
                None => eprintln!("error: {}", adit_proto::report::Report(e.as_ref())),
            }
            ExitCode::FAILURE
        }
    }
}
