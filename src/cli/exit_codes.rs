//! The exit-code table, in one place: `--help` prints it, the README's
//! "Exit codes" section is checked against it, and a test checks it
//! against [`ErrorKind::exit_code`] for every kind.

use netcrab::error::ErrorKind;

/// One row of the table.
pub struct Row {
    /// The code, or codes (`130 / 143`).
    pub code: &'static str,
    /// The error kinds that exit with it (none for success and signals).
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests below
    pub kinds: &'static [ErrorKind],
    /// A short line, for `--help`.
    pub summary: &'static str,
    /// The README's words (Markdown).
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests below
    pub detail: &'static str,
}

/// The exit codes. Stable: scripts depend on them.
pub const ROWS: &[Row] = &[
    Row {
        code: "0",
        kinds: &[],
        summary: "success (--once, serve --stdio: the one connection ended cleanly)",
        detail: "success (`--once`, `serve --stdio`: the one connection ended cleanly; \
                 otherwise its error's code below)",
    },
    Row {
        code: "1",
        kinds: &[ErrorKind::Io],
        summary: "other i/o error; scan: no port was open",
        detail: "other i/o error; `scan`: no port was open",
    },
    Row {
        code: "2",
        kinds: &[ErrorKind::Usage],
        summary: "invalid usage or address",
        detail: "invalid usage or address",
    },
    Row {
        code: "3",
        kinds: &[ErrorKind::Resolve, ErrorKind::ResolveTemporary],
        summary: "name resolution failed",
        detail: "name resolution failed (unknown host, or the resolver failed)",
    },
    Row {
        code: "4",
        kinds: &[ErrorKind::Refused],
        summary: "connection refused",
        detail: "connection refused",
    },
    Row {
        code: "5",
        kinds: &[ErrorKind::Timeout],
        summary: "timed out (connect, idle, retry deadline)",
        detail: "timed out (connect, idle, retry deadline, a handshake; a WebSocket peer \
                 silent under `--ws-ping`)",
    },
    Row {
        code: "6",
        kinds: &[ErrorKind::Reset],
        summary: "connection reset by peer",
        detail: "connection reset by peer",
    },
    Row {
        code: "7",
        kinds: &[ErrorKind::Unreachable],
        summary: "host or network unreachable",
        detail: "host or network unreachable",
    },
    Row {
        code: "8",
        kinds: &[ErrorKind::Tls],
        summary: "tls error (handshake failed or certificate not accepted)",
        detail: "tls error: the handshake failed or the peer's certificate was not accepted",
    },
    Row {
        code: "9",
        kinds: &[ErrorKind::Local],
        summary: "local resource error (address in use or not available, too many open \
                  files, permission denied)",
        detail: "local resource error: address in use or not available, too many open files, \
                 permission denied",
    },
    Row {
        code: "10",
        kinds: &[ErrorKind::Protocol],
        summary: "protocol error",
        detail: "protocol error (including a proxy that does not speak its protocol; a \
                 WebSocket peer that closed with a code other than 1000, refused the upgrade \
                 or broke the protocol; a message over `--ws-max-message`)",
    },
    Row {
        code: "11",
        kinds: &[ErrorKind::ProxyRefused],
        summary: "a proxy could not reach the target (socks: refused, unreachable, failure; \
                  http 502/503/504)",
        detail: "a proxy could not reach the target: SOCKS5 general failure, network or host \
                 unreachable, connection refused, TTL expired; SOCKS4 rejected; HTTP \
                 502/503/504 and other 5xx (retried, as a refusal is)",
    },
    Row {
        code: "12",
        kinds: &[ErrorKind::ProxyDenied],
        summary: "a proxy denied the request (wrong or missing credentials, its rules; \
                  http 403/407)",
        detail: "a proxy denied the request: wrong or missing credentials, not allowed by its \
                 rules, command or address type not supported; HTTP 403/407 and other 4xx",
    },
    Row {
        code: "124",
        kinds: &[ErrorKind::NotReady],
        summary: "wait: the targets were not ready before --timeout",
        detail: "`wait`: the targets were not ready before `--timeout`",
    },
    Row {
        code: "126",
        kinds: &[ErrorKind::CommandNotExecutable],
        summary: "wait: the command could not be executed",
        detail: "`wait`: COMMAND could not be executed",
    },
    Row {
        code: "127",
        kinds: &[ErrorKind::CommandNotFound],
        summary: "wait: the command was not found",
        detail: "`wait`: COMMAND was not found",
    },
    Row {
        code: "130 / 143",
        kinds: &[],
        summary: "a second SIGINT / SIGTERM during shutdown, 1s or more after the first",
        detail: "a second SIGINT / SIGTERM during shutdown, at least 1 s after the first",
    },
];

/// The table as `--help` shows it.
pub fn text() -> String {
    let mut out = String::from("Exit codes:");
    for row in ROWS {
        out.push_str(&format!("\n  {:<4} {}", row.code, row.summary));
    }
    out
}

/// The table as the README has it (Markdown).
#[cfg(test)]
fn markdown() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for row in ROWS {
        out.push_str(&format!("| {} | {} |\n", row.code, row.detail));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_one_row_with_its_code() {
        for kind in ErrorKind::ALL {
            let rows: Vec<&Row> = ROWS.iter().filter(|r| r.kinds.contains(kind)).collect();
            assert_eq!(rows.len(), 1, "{kind:?} must be in exactly one row");
            assert_eq!(rows[0].code, kind.exit_code().to_string(), "{kind:?}");
        }
    }

    #[test]
    fn the_readme_table_is_this_one() {
        let readme = include_str!("../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&format!(
                "## Exit codes\n\nStable; scripts may depend on them.\n\n{table}"
            )),
            "README.md's \"Exit codes\" table differs from src/cli/exit_codes.rs; it should read:\n{table}"
        );
    }
}
