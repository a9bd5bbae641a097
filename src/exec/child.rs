//! Starting a program for a connection and ending it: the command line
//! (`--exec` split into words, `--sh-exec` run by `/bin/sh -c`), the
//! environment that describes the connection, the child's stdin and stdout
//! (two pipes, or a pseudo-terminal with `--pty`), and its end: reaped when
//! it exits, or SIGTERM to its process group then SIGKILL after a grace
//! period.
//!
//! The child runs in a process group of its own (a session of its own with
//! `--pty`), so the signals reach what a shell command started too. Every
//! descriptor netcrab opens is close-on-exec (Rust's and tokio's default,
//! and the pseudo-terminal's here), so the child gets only its stdin,
//! stdout and stderr (netcrab's stderr; the terminal with `--pty`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::task::TaskTracker;

use crate::endpoint::UnixAddr;
use crate::error::{Error, Result};
use crate::settings::Setting;
use crate::transport::PeerAddr;

/// The shell `--sh-exec` runs its command with.
pub const SHELL: &str = "/bin/sh";

/// What to run for each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Program {
    /// A program and its arguments, run directly, without a shell
    /// (`--exec`).
    Exec(Vec<String>),
    /// A command line run by `/bin/sh -c` (`--sh-exec`).
    Shell(String),
}

impl Program {
    /// `--exec`'s string: split into words at whitespace, with single
    /// quotes, double quotes and backslashes grouping and escaping as in a
    /// shell (nothing is expanded, no shell runs). An empty string or an
    /// unterminated quote is a usage error.
    pub fn exec(line: &str) -> Result<Program> {
        let words = split_words(line)
            .map_err(|why| Error::usage(format!("invalid {} {line:?}: {why}", Setting::Exec)))?;
        if words.is_empty() {
            return Err(Error::usage(format!(
                "{} needs a program to run",
                Setting::Exec
            )));
        }
        Ok(Program::Exec(words))
    }

    /// `--sh-exec`'s command, run by `/bin/sh -c`.
    pub fn shell(command: &str) -> Result<Program> {
        if command.trim().is_empty() {
            return Err(Error::usage(format!(
                "{} needs a command to run",
                Setting::ShExec
            )));
        }
        Ok(Program::Shell(command.to_owned()))
    }

    /// Checks that the program can be started: found on `PATH` (or at its
    /// path) and executable. A usage error otherwise, so a typo fails at
    /// start-up rather than on every connection.
    pub fn check(&self) -> Result<()> {
        let name = match self {
            Program::Exec(words) => words.first().map(String::as_str).unwrap_or_default(),
            Program::Shell(_) => SHELL,
        };
        match find_program(name) {
            Some(_) => Ok(()),
            None if name.contains('/') => Err(Error::usage(format!(
                "cannot run {name:?}: no such executable file"
            ))),
            None => Err(Error::usage(format!(
                "cannot run {name:?}: not found on PATH"
            ))),
        }
    }

    /// The command that starts the program (no stdio or environment set).
    fn command(&self) -> Command {
        match self {
            Program::Exec(words) => {
                let mut cmd = Command::new(&words[0]);
                cmd.args(&words[1..]);
                cmd
            }
            Program::Shell(line) => {
                let mut cmd = Command::new(SHELL);
                cmd.arg("-c").arg(line);
                cmd
            }
        }
    }
}

/// The program as logged: its words, or `sh -c 'COMMAND'`.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Exec(words) => f.write_str(&words.join(" ")),
            Program::Shell(line) => write!(f, "sh -c {line:?}"),
        }
    }
}

/// Splits a command line into words as a shell would, without expanding
/// anything: whitespace separates words; `'...'` is literal; in `"..."` a
/// backslash escapes `"`, `\`, `$` and `` ` ``; elsewhere a backslash
/// escapes the next character.
pub fn split_words(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("backslash at the end".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Where `name` would be run from: itself when it has a slash, else the
/// first executable file of that name in `PATH`'s directories.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let path = Path::new(name);
        return is_executable(path).then(|| path.to_owned());
    }
    let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a program is told about its connection, as environment variables:
/// `NETCRAB_PROTO`, `NETCRAB_PEER_ADDR`, `NETCRAB_PEER_PORT`,
/// `NETCRAB_LOCAL_ADDR`, `NETCRAB_LOCAL_PORT` (the ports only for IP
/// transports; a Unix socket's address is its path, `@NAME` for an
/// abstract one, empty for an unnamed one; `NETCRAB_PEER_PID` when the
/// kernel tells a Unix peer's process), and with a TLS peer certificate
/// `NETCRAB_TLS_PEER_SUBJECT` (`CN=...`) and `NETCRAB_TLS_PEER_SHA256`
/// (colon-separated hex, as `serve --tls` prints fingerprints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnEnv {
    vars: Vec<(&'static str, String)>,
}

impl ConnEnv {
    /// Every variable a program may be given; any of them in netcrab's
    /// own environment is removed first.
    pub const NAMES: [&'static str; 8] = [
        "NETCRAB_PROTO",
        "NETCRAB_PEER_ADDR",
        "NETCRAB_PEER_PORT",
        "NETCRAB_PEER_PID",
        "NETCRAB_LOCAL_ADDR",
        "NETCRAB_LOCAL_PORT",
        "NETCRAB_TLS_PEER_SUBJECT",
        "NETCRAB_TLS_PEER_SHA256",
    ];

    /// The variables for a connection over `proto` (a scheme name) from
    /// `peer` to `local`, with the certificate the peer presented (DER).
    pub fn new(
        proto: &str,
        peer: &PeerAddr,
        local: Option<&PeerAddr>,
        peer_cert: Option<&[u8]>,
    ) -> ConnEnv {
        let mut vars = vec![("NETCRAB_PROTO", proto.to_owned())];
        addr_vars(&mut vars, "NETCRAB_PEER_ADDR", "NETCRAB_PEER_PORT", peer);
        if let PeerAddr::Unix { pid: Some(pid), .. } = peer {
            vars.push(("NETCRAB_PEER_PID", pid.to_string()));
        }
        if let Some(local) = local {
            addr_vars(&mut vars, "NETCRAB_LOCAL_ADDR", "NETCRAB_LOCAL_PORT", local);
        }
        if let Some(der) = peer_cert {
            let subject = crate::tls::subject_common_names(der)
                .iter()
                .map(|cn| format!("CN={cn}"))
                .collect::<Vec<_>>()
                .join(", ");
            vars.push(("NETCRAB_TLS_PEER_SUBJECT", subject));
            vars.push((
                "NETCRAB_TLS_PEER_SHA256",
                crate::tls::Fingerprint::of_der(der).to_string(),
            ));
        }
        ConnEnv { vars }
    }

    /// The variables, in order.
    pub fn vars(&self) -> &[(&'static str, String)] {
        &self.vars
    }
}

fn addr_vars(
    vars: &mut Vec<(&'static str, String)>,
    addr_var: &'static str,
    port_var: &'static str,
    addr: &PeerAddr,
) {
    match addr {
        PeerAddr::Inet(sa) | PeerAddr::Proxied { source: sa, .. } => {
            vars.push((addr_var, sa.ip().to_string()));
            vars.push((port_var, sa.port().to_string()));
        }
        PeerAddr::Unix { name, .. } => {
            let text = match name {
                Some(UnixAddr::Path(path)) => path.display().to_string(),
                Some(UnixAddr::Abstract(name)) => format!("@{name}"),
                None => String::new(),
            };
            vars.push((addr_var, text));
        }
    }
}

/// A started program: its handle and its two ends.
pub(crate) struct Spawned {
    /// The process, reaped or signalled when it ends.
    pub(crate) running: Running,
    /// Its stdin.
    pub(crate) input: ChildInput,
    /// Its stdout.
    pub(crate) output: ChildOutput,
}

/// How a child process is ended when it has not exited by itself.
#[derive(Debug, Clone)]
pub(crate) struct Reaper {
    /// Between SIGTERM and SIGKILL.
    pub(crate) grace: Duration,
    /// Where the tasks that wait out the grace period run (the server
    /// waits for them before it returns).
    pub(crate) tracker: TaskTracker,
}

/// Starts `program` with the connection's environment, its stdin and
/// stdout on pipes (or a pseudo-terminal when `pty`), its stderr
/// netcrab's (the terminal with `pty`).
pub(crate) fn spawn(
    program: &Program,
    pty: bool,
    env: &ConnEnv,
    reaper: &Reaper,
    label: String,
) -> io::Result<Spawned> {
    let mut cmd = program.command();
    // Never pass on a description of another connection (netcrab run by a
    // program of an outer netcrab, say): a forged certificate subject.
    for name in ConnEnv::NAMES {
        cmd.env_remove(name);
    }
    for (name, value) in env.vars() {
        cmd.env(name, value);
    }
    // Dropping the handle kills the process: the last resort when no
    // runtime is left to wait out the grace period.
    cmd.kill_on_drop(true);
    #[cfg(target_os = "linux")]
    if pty {
        let (master, slave) = super::pty::open()?;
        super::pty::attach(&mut cmd, slave)?;
        let child = cmd.spawn()?;
        let master = std::sync::Arc::new(master);
        return Ok(Spawned {
            running: Running::new(child, reaper, label),
            input: ChildInput::Pty(master.clone(), PtyEof::default()),
            output: ChildOutput::Pty(master),
        });
    }
    #[cfg(not(target_os = "linux"))]
    if pty {
        return Err(io::Error::other(format!(
            "{} is supported on Linux only",
            Setting::Pty
        )));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("the child's pipes are missing"));
    };
    Ok(Spawned {
        running: Running::new(child, reaper, label),
        input: ChildInput::Pipe(Some(stdin)),
        output: ChildOutput::Pipe(stdout),
    })
}

/// A running program. Dropped before it exited (the connection failed, or
/// the drain timeout ended it), it is terminated: SIGTERM to its process
/// group, then SIGKILL after the grace period, by a task that also reaps
/// it and logs its end.
pub(crate) struct Running {
    /// `None` once reaped (or handed to the terminating task).
    child: Option<Child>,
    pid: Option<u32>,
    reaper: Reaper,
    label: String,
}

impl Running {
    fn new(child: Child, reaper: &Reaper, label: String) -> Running {
        Running {
            pid: child.id(),
            child: Some(child),
            reaper: reaper.clone(),
            label,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.unwrap_or(0)
    }

    /// Waits for the program to exit and reaps it; never returns once it
    /// has (cancel-safe: a `select!` may poll it again).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return std::future::pending().await;
        };
        let status = child.wait().await;
        if status.is_ok() {
            self.child = None;
        }
        status
    }

    /// Ends the program unless it has been reaped: SIGTERM to its process
    /// group now, SIGKILL when it has not exited after the grace period;
    /// its exit is then logged.
    pub(crate) fn terminate(&mut self, why: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = self.pid;
        tracing::debug!(
            "{}: sending SIGTERM to pid {} ({why})",
            self.label,
            self.pid()
        );
        signal_group(pid, libc::SIGTERM);
        let grace = self.reaper.grace;
        let label = std::mem::take(&mut self.label);
        let task = async move {
            let status = match tokio::time::timeout(grace, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    tracing::info!(
                        "{label}: program still running {} after SIGTERM; sending SIGKILL",
                        crate::error::fmt_duration(grace)
                    );
                    signal_group(pid, libc::SIGKILL);
                    child.wait().await
                }
            };
            match status {
                Ok(status) => tracing::info!("{label}: program {}", describe_exit(status)),
                Err(err) => tracing::warn!("{label}: waiting for the program: {err}"),
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                self.reaper.tracker.spawn_on(task, &handle);
            }
            // No runtime: dropping the task drops the handle, which kills
            // the process (kill_on_drop).
            Err(_) => signal_group(pid, libc::SIGKILL),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.terminate("its connection ended");
    }
}

/// Sends `signal` to the process group led by `pid` (the child's own; a
/// group that is gone already is fine).
fn signal_group(pid: Option<u32>, signal: i32) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Pid, Signal, kill_process_group};
        let sig = if signal == libc::SIGKILL {
            Signal::KILL
        } else {
            Signal::TERM
        };
        if let Some(pid) = pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
        {
            let _ = kill_process_group(pid, sig);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (pid, signal);
}

/// How a program ended, for the log: `exited with code 0`, `killed by
/// signal 15`.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// The program's stdin, as the connection's bytes are written to it. Once
/// the program no longer reads it (it closed it, or exited: a broken
/// pipe), what the peer sends is read and dropped, so the program's
/// output still reaches the peer in full.
pub(crate) enum ChildInput {
    /// A pipe; `None` once closed.
    Pipe(Option<ChildStdin>),
    /// The pseudo-terminal's master side.
    #[cfg(target_os = "linux")]
    Pty(std::sync::Arc<super::pty::Master>, PtyEof),
}

/// What was last written to a terminal, to end its input properly.
#[derive(Debug, Default)]
pub(crate) struct PtyEof {
    /// The last byte written did not end a line.
    partial_line: bool,
    /// The EOF characters not yet written at shutdown.
    pending: Option<usize>,
}

/// Whether a write error means the program no longer reads its input.
fn gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe || err.raw_os_error() == Some(libc::EIO)
}

impl AsyncWrite for ChildInput {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ChildInput::Pipe(pipe) => {
                let Some(stdin) = pipe.as_mut() else {
                    return Poll::Ready(Ok(buf.len()));
                };
                match ready!(Pin::new(stdin).poll_write(cx, buf)) {
                    Err(err) if gone(&err) => {
                        *pipe = None;
                        Poll::Ready(Ok(buf.len()))
                    }
                    other => Poll::Ready(other),
                }
            }
            #[cfg(target_os = "linux")]
            ChildInput::Pty(master, eof) => match ready!(master.poll_write(cx, buf)) {
                Ok(n) => {
                    if n > 0 {
                        eof.partial_line = buf[n - 1] != b'\n';
                    }
                    Poll::Ready(Ok(n))
                }
                Err(err) if gone(&err) => Poll::Ready(Ok(buf.len())),
                Err(err) => Poll::Ready(Err(err)),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The peer's end: the pipe is closed; a terminal is sent its EOF
    /// character (^D; twice after a partial line, whose first ^D only
    /// ends the line).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ChildInput::Pipe(pipe) => {
                *pipe = None;
                Poll::Ready(Ok(()))
            }
            #[cfg(target_os = "linux")]
            ChildInput::Pty(master, eof) => {
                let pending = eof
                    .pending
                    .get_or_insert(if eof.partial_line { 2 } else { 1 });
                while *pending > 0 {
                    match ready!(master.poll_write(cx, b"\x04")) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(_) => *pending -= 1,
                        Err(err) if gone(&err) => *pending = 0,
                        Err(err) => return Poll::Ready(Err(err)),
                    }
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// The program's stdout (and with `--pty`, everything it writes to its
/// terminal).
pub(crate) enum ChildOutput {
    /// A pipe.
    Pipe(ChildStdout),
    /// The pseudo-terminal's master side.
    #[cfg(target_os = "linux")]
    Pty(std::sync::Arc<super::pty::Master>),
}

impl AsyncRead for ChildOutput {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ChildOutput::Pipe(stdout) => Pin::new(stdout).poll_read(cx, buf),
            #[cfg(target_os = "linux")]
            ChildOutput::Pty(master) => master.poll_read(cx, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).expect("valid")
    }

    #[test]
    fn words_split_at_whitespace_with_shell_quoting() {
        assert_eq!(words("cat"), ["cat"]);
        assert_eq!(words("  grep  -v   x \t"), ["grep", "-v", "x"]);
        assert_eq!(
            words("echo 'a b' \"c d\" e\\ f"),
            ["echo", "a b", "c d", "e f"]
        );
        assert_eq!(
            words("printf '%s\\n' \"\\\"q\\\" \\n\""),
            ["printf", "%s\\n", "\"q\" \\n"]
        );
        assert_eq!(words("a''b \"\""), ["ab", ""]);
        assert_eq!(words("$HOME *"), ["$HOME", "*"]);
        assert!(words("").is_empty());
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("end\\").is_err());
    }

    #[test]
    fn programs_are_checked_on_path() {
        assert!(Program::exec("sh -c true").and_then(|p| p.check()).is_ok());
        assert!(Program::exec("/bin/sh").and_then(|p| p.check()).is_ok());
        let missing = Program::exec("netcrab-no-such-program").expect("parses");
        let err = missing.check().expect_err("not on PATH");
        assert!(err.to_string().contains("not found on PATH"), "{err}");
        assert!(
            Program::exec("/nonexistent/x")
                .expect("parses")
                .check()
                .is_err()
        );
        assert!(Program::exec("  ").is_err());
        assert!(Program::shell("").is_err());
        assert_eq!(
            Program::shell("cat; echo done").expect("ok").to_string(),
            "sh -c \"cat; echo done\""
        );
    }

    #[test]
    fn the_environment_describes_the_connection() {
        let peer = PeerAddr::Inet("127.0.0.1:4000".parse().expect("addr"));
        let local = PeerAddr::Inet("[::1]:80".parse().expect("addr"));
        let env = ConnEnv::new("tcp", &peer, Some(&local), None);
        assert_eq!(
            env.vars(),
            &[
                ("NETCRAB_PROTO", "tcp".to_owned()),
                ("NETCRAB_PEER_ADDR", "127.0.0.1".to_owned()),
                ("NETCRAB_PEER_PORT", "4000".to_owned()),
                ("NETCRAB_LOCAL_ADDR", "::1".to_owned()),
                ("NETCRAB_LOCAL_PORT", "80".to_owned()),
            ]
        );
        let unix = PeerAddr::Unix {
            name: None,
            pid: Some(42),
        };
        let local = PeerAddr::Unix {
            name: Some(UnixAddr::Abstract("app".into())),
            pid: None,
        };
        let env = ConnEnv::new("unix", &unix, Some(&local), None);
        assert_eq!(
            env.vars(),
            &[
                ("NETCRAB_PROTO", "unix".to_owned()),
                ("NETCRAB_PEER_ADDR", String::new()),
                ("NETCRAB_PEER_PID", "42".to_owned()),
                ("NETCRAB_LOCAL_ADDR", "@app".to_owned()),
            ]
        );
    }

    #[test]
    fn exits_are_described() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_exit(ExitStatus::from_raw(0)), "exited with code 0");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with code 3"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(15)),
            "killed by signal 15"
        );
    }
}
