//! CPU time spent by a path's relay processes: a steadier measure of cost than wall time on
//! a shared machine, since another tenant's load slows a run but does not add to it.

/// Clock ticks per second for `/proc/*/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of `pid`, including children it has reaped (socat forks one
/// child per connection).
pub fn seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may contain spaces; fields after its closing ')' are plain.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    // After ')': state is field 3, so utime..cstime (fields 14..17) are indices 11..15.
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / TICKS_PER_SECOND
}

/// Total CPU seconds of several processes.
pub fn total(pids: &[u32]) -> f64 {
    pids.iter().map(|p| seconds(*p)).sum()
}
