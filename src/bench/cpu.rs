//! CPU-time probes for the load generator's report: our own via
//! `getrusage`, our threads' and other processes' via `/proc`. The only
//! place in the library that reads `/proc` or calls `getrusage`.

use std::time::Duration;

/// CPU time (user + system) this process has used so far, from
/// `getrusage(RUSAGE_SELF)`.
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass; rusage
    // is plain data, so an all-zero value is a valid initial state.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time used by this process's threads named `name` (as set with the
/// runtime builder's `thread_name`), from `/proc/self/task/*/stat`. Clock
/// tick resolution (usually 10 ms).
pub(crate) fn threads_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((comm, t)) = parse_stat(&stat)
            && comm == name
        {
            ticks += t.0 + t.1;
        }
    }
    ticks_to_duration(ticks)
}

/// CPU time (user + system) of process `pid` and all its descendants, alive
/// or already reaped, from `/proc`: servers that fork a process per
/// connection (socat, ncat) are measured whole. `None` when the process is
/// gone.
///
/// Each live process in the tree contributes its own time plus that of the
/// children it has reaped (`cutime`/`cstime`); a child's time moves into its
/// parent's `cutime` when it is reaped, so the sum is consistent from one
/// reading to the next.
pub(crate) fn tree_cpu(pid: u32) -> Option<Duration> {
    let root = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut procs: Vec<(u32, u32, u64)> = Vec::new(); // (pid, ppid, ticks)
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if p == pid {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some((ppid, ticks)) = parse_ppid_ticks(&stat)
            {
                procs.push((p, ppid, ticks));
            }
        }
    }
    let (_, root_ticks) = parse_ppid_ticks(&root)?;
    let mut total = root_ticks;
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (p, ppid, ticks) in &procs {
            if *ppid == parent && !tree.contains(p) {
                tree.push(*p);
                total += ticks;
            }
        }
        i += 1;
    }
    Some(ticks_to_duration(total))
}

/// `(ppid, utime + stime + cutime + cstime)` from a `/proc/PID/stat` line.
fn parse_ppid_ticks(stat: &str) -> Option<(u32, u64)> {
    let (_, (u, s, cu, cs)) = parse_stat_full(stat)?;
    let close = stat.rfind(')')?;
    let ppid = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ppid, u + s + cu + cs))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf reads a configuration value and has no memory effects.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

/// `(comm, (utime, stime))` from a `/proc/.../stat` line.
fn parse_stat(stat: &str) -> Option<(&str, (u64, u64))> {
    parse_stat_full(stat).map(|(comm, (u, s, _, _))| (comm, (u, s)))
}

/// Clock ticks from `/proc/.../stat`: utime, stime, cutime, cstime.
type StatTicks = (u64, u64, u64, u64);

/// `(comm, (utime, stime, cutime, cstime))` from a `/proc/.../stat` line.
/// The command name is in parentheses and may hold spaces: fields are
/// counted after the last `)`.
fn parse_stat_full(stat: &str) -> Option<(&str, StatTicks)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, so index 11.
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((comm, (num(11)?, num(12)?, num(13)?, num(14)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 111 222 33 44 20 0 1 0";
        let (comm, t) = parse_stat_full(line).expect("parse");
        assert_eq!(comm, "a b");
        assert_eq!(t, (111, 222, 33, 44));
        assert_eq!(parse_ppid_ticks(line), Some((1, 111 + 222 + 33 + 44)));
        assert!(tree_cpu(std::process::id()).is_some());
        assert!(process_cpu() > Duration::ZERO || cfg!(miri));
    }
}
