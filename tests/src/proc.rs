//! CPU time from Linux's `/proc`, for the benchmarks' accounts of where the CPU went.
//! Times are in clock ticks ([`TICKS_PER_SECOND`]).

use std::collections::HashMap;

/// Clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The name and CPU time (user + system) of a `/proc/.../stat` line:
/// `pid (comm) state ...`, where utime and stime are the 12th and 13th fields after
/// the `)` (the name may hold spaces and parentheses, so it ends at the last one).
pub fn stat_ticks(stat: &str) -> Option<(&str, u64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let ticks = stat[close + 1..]
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some((&stat[open + 1..close], ticks))
}

/// CPU time of this process so far.
pub fn process_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_ticks(&stat).map_or(0, |(_, t)| t)
}

/// CPU time of each of process `pid`'s threads so far, by thread name (numbered
/// names such as `sled-io-3` counted as one).
pub fn thread_ticks(pid: u32) -> HashMap<String, u64> {
    let mut by = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, ticks)) = stat_ticks(&stat) {
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            *by.entry(name.to_string()).or_insert(0) += ticks;
        }
    }
    by
}

/// The whole machine's CPU time so far, as (busy, all), from `/proc/stat`'s first
/// line (`cpu user nice system idle iowait irq softirq steal ...`; idle and iowait
/// are not busy).
pub fn machine_ticks() -> (u64, u64) {
    let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let times: Vec<u64> = all
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = times.iter().sum();
    let idle = times.get(3).copied().unwrap_or(0) + times.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_user_plus_system_time() {
        let line = "42 (sled-io (3)) S 1 42 42 0 -1 4194368 10 0 0 0 7 5 0 0 20 0 1 0 9";
        assert_eq!(stat_ticks(line), Some(("sled-io (3)", 12)));
        // This process's time grows as it computes (a tick is 10 ms).
        let (before, started) = (process_ticks(), std::time::Instant::now());
        let mut x = 0u64;
        while process_ticks() == before && started.elapsed().as_secs() < 5 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        assert!(process_ticks() > before, "{x}");
        // Every thread is listed (per-thread times round down, so may still be 0).
        assert!(!thread_ticks(std::process::id()).is_empty());
        let (busy, all) = machine_ticks();
        assert!(busy <= all);
    }
}
