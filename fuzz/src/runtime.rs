//! One tokio runtime per fuzz process, current-thread and with paused time: timers (keep-alive
//! pings, close deadlines) fire as soon as every task is idle, so an input that stalls a
//! connection ends at once and runs are repeatable.

use std::future::Future;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
}

/// Runs `future` to completion on this thread's runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}
