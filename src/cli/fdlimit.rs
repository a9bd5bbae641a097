//! The open-files limit (`RLIMIT_NOFILE`) of the servers and bench: at
//! start-up the soft limit is raised to the hard one, as Go and HAProxy
//! do (the default soft limit of 1024 is a relic of select(2)), and when
//! it is still below what `--max-conns` needs, a warning says so once,
//! with the figures.
//!
//! `connect` and `wait` keep the limit they inherit: they need few files,
//! and the command `wait` runs must get the limit it would have had.

/// Files a process holds besides its connections: stdio, the runtime's
/// epoll and wakers, the signal pipe, the listener, a certificate file
/// being read.
pub const BASE_FILES: u64 = 32;

/// Raises the soft open-files limit to the hard limit, and returns the
/// soft limit in force afterwards (`None`: unlimited or unknown). Logs the
/// change at debug level.
#[cfg(target_os = "linux")]
pub fn raise() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current == before.maximum {
        tracing::debug!("open files limit: {}", show(before.current));
        return before.current;
    }
    // An unlimited hard limit cannot be the soft one on Linux (it is
    // capped by fs.nr_open): use that cap then.
    let target = before.maximum.or_else(nr_open);
    let raised = Rlimit {
        current: target,
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(
                "open files limit: raised from {} to {}",
                show(before.current),
                show(target)
            );
            target
        }
        Err(err) => {
            tracing::debug!(
                "open files limit: {} (raising it to {} failed: {err})",
                show(before.current),
                show(target)
            );
            before.current
        }
    }
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise() -> Option<u64> {
    None
}

/// The kernel's cap on any process's open files.
#[cfg(target_os = "linux")]
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// Raises the limit, then warns once if `conns` connections (as `flag`
/// asks) of `per_conn` files each, plus [`BASE_FILES`], do not fit in it.
pub fn check(flag: &str, conns: usize, per_conn: u64) {
    if let Some(warning) = shortfall(flag, conns, per_conn, raise()) {
        tracing::warn!("{warning}");
    }
}

/// The warning when `conns` connections need more files than `limit`.
pub fn shortfall(flag: &str, conns: usize, per_conn: u64, limit: Option<u64>) -> Option<String> {
    let limit = limit?;
    let needed = (conns as u64)
        .saturating_mul(per_conn)
        .saturating_add(BASE_FILES);
    (needed > limit).then(|| {
        format!(
            "{flag} {conns} needs about {needed} open files; the limit is {limit} \
             (raise the hard limit, e.g. ulimit -Hn, or lower {flag})"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_with_the_figures_only_when_short() {
        assert_eq!(
            shortfall("--max-conns", 4096, 6, Some(20_000)).as_deref(),
            Some(
                "--max-conns 4096 needs about 24608 open files; the limit is 20000 \
                 (raise the hard limit, e.g. ulimit -Hn, or lower --max-conns)"
            )
        );
        assert_eq!(shortfall("--max-conns", 4096, 1, Some(20_000)), None);
        assert_eq!(shortfall("--max-conns", 1_000_000, 6, None), None);
        assert!(shortfall("-c", usize::MAX, u64::MAX, Some(1)).is_some());
    }
}
