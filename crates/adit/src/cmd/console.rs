//! `adit console`: a one-time sign-in URL for the hub's web console.

use crate::cli::ConsoleArgs;

pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let url = args.access.registry()?.console_sign_in_url().await?;
    // The URL signs in as the policy: stdout only, never the log.
    println!("{url}");
    eprintln!("Open it in a browser within 5 minutes; it works once.");
    Ok(())
}
