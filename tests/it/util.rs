//! Shared test helpers: run the real `netcrab` binary, start servers on port
//! 0 and learn their address from stderr, wait for log lines by polling
//! (never by sleeping), and clean up on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long any wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A `Command` for the netcrab binary under test.
pub fn netcrab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcrab"))
}

/// Runs netcrab with `args` to completion, with no stdin.
pub fn run(args: &[&str]) -> Output {
    netcrab()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run netcrab")
}

/// Starts netcrab with `args` and pipes on stdin, stdout and stderr.
pub fn spawn_piped<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    netcrab()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netcrab")
}

/// Runs netcrab with `args`, feeding `input` on stdin from a thread so large
/// inputs cannot deadlock against a full stdout pipe.
pub fn run_with_input(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for netcrab");
    writer.join().expect("stdin writer");
    output
}

/// Lines a child printed on stderr, collected by a thread, with a condition
/// variable to wait on.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>, Arc<AtomicBool>);

impl Lines {
    /// Collects `reader` line by line in a background thread.
    pub fn collect(reader: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let (lock, cvar) = &*sink.0;
                lock.lock().expect("lines lock").push(line);
                cvar.notify_all();
            }
            let (lock, cvar) = &*sink.0;
            let _held = lock.lock().expect("lines lock");
            sink.1.store(true, Ordering::SeqCst);
            cvar.notify_all();
        });
        lines
    }

    /// Waits, at most `limit`, until the pipe is closed: every line the
    /// child wrote has been collected. Returns whether it was.
    pub fn wait_for_eof(&self, limit: Duration) -> bool {
        let (lock, cvar) = &*self.0;
        let deadline = Instant::now() + limit;
        let mut lines = lock.lock().expect("lines lock");
        while !self.1.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lines = cvar.wait_timeout(lines, left).expect("lines lock").0;
        }
        true
    }

    /// Waits until a line contains `needle` and returns it; panics after
    /// [`PATIENCE`] with everything seen so far.
    pub fn wait_for(&self, needle: &str) -> String {
        let (lock, cvar) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut lines = lock.lock().expect("lines lock");
        loop {
            if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no line with {needle:?} in:\n{}",
                lines.join("\n")
            );
            lines = cvar.wait_timeout(lines, left).expect("lines lock").0;
        }
    }

    /// Waits until `n` lines contain `needle` (log lines are written by a
    /// thread of their own: one may land just after the effect it logs).
    pub fn wait_for_count(&self, needle: &str, n: usize) {
        let (lock, cvar) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut lines = lock.lock().expect("lines lock");
        while lines.iter().filter(|l| l.contains(needle)).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fewer than {n} lines with {needle:?} in:\n{}",
                lines.join("\n")
            );
            lines = cvar.wait_timeout(lines, left).expect("lines lock").0;
        }
    }

    /// Counts the lines containing `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        let lines = self.0.0.lock().expect("lines lock");
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Everything seen so far.
    pub fn text(&self) -> String {
        self.0.0.lock().expect("lines lock").join("\n")
    }
}

/// A netcrab process (usually a server) killed on drop.
pub struct Proc {
    pub child: Child,
    pub stderr: Lines,
}

impl Proc {
    /// Starts netcrab with `args`, stdin null, stdout discarded, stderr
    /// collected.
    pub fn start(args: &[&str]) -> Proc {
        Proc::start_with(netcrab().args(args))
    }

    /// Starts a prepared command, collecting its stderr.
    pub fn start_with(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netcrab");
        let stderr = Lines::collect(child.stderr.take().expect("stderr"));
        Proc { child, stderr }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, failing the test after [`PATIENCE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The last lines may still be on their way to the collecting
                // thread. (Bounded: a grandchild may hold the pipe open.)
                self.stderr.wait_for_eof(Duration::from_secs(5));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit; stderr:\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name (which is in parentheses).
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf has no memory effects.
        #[allow(unsafe_code)]
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `netcrab serve` and the address it bound.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `netcrab serve 127.0.0.1:0 ARGS...` and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        let mut all = vec!["serve", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Server::start_exact(&all)
    }

    /// Starts netcrab with exactly `args` (which must make it listen) and
    /// waits for its `listening on ADDR` line.
    pub fn start_exact(args: &[&str]) -> Server {
        Server::from_proc(Proc::start(args))
    }

    /// Waits for `proc` to print `listening on ADDR` (a network address).
    pub fn from_proc(proc: Proc) -> Server {
        let Listening { proc, addr } = Listening::from_proc(proc);
        // Drop a scheme (`tls://`, `udp://`): the socket address follows.
        let addr = addr
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not a socket address: {addr:?}"));
        Server { proc, addr }
    }

    /// `127.0.0.1:PORT` as a string, for command lines.
    pub fn addr_str(&self) -> String {
        self.addr.to_string()
    }

    /// A plain TCP connection to the server.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to server");
        s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        s
    }
}

/// A port on 127.0.0.1 that was free for TCP and UDP a moment ago.
///
/// The port is drawn below the kernel's ephemeral range (32768 and up on
/// Linux): a port from `bind(0)` could be handed out again at once as the
/// source port of some other test's outgoing connection, and the server the
/// test starts there later would fail to bind.
pub fn free_port() -> u16 {
    loop {
        let port = fastrand::u16(20_000..32_000);
        let v4 = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if v4.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), for payload tests.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Reads until EOF (or the read timeout), returning everything read.
pub fn read_to_end(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read to end");
    out
}

/// The exit code of a finished process (panics if it was killed).
pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}"))
}

/// Stderr of an output as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A running server on any transport and its address exactly as printed
/// (`127.0.0.1:PORT`, `[::1]:PORT`, `udp://127.0.0.1:PORT`, `unix:///PATH`).
pub struct Listening {
    pub proc: Proc,
    pub addr: String,
}

impl Listening {
    /// Starts netcrab with exactly `args` and waits for `listening on ADDR`.
    pub fn start(args: &[&str]) -> Listening {
        Listening::from_proc(Proc::start(args))
    }

    /// Waits for `proc` to print `listening on ADDR`.
    pub fn from_proc(proc: Proc) -> Listening {
        let line = proc.stderr.wait_for("listening on ");
        let addr = line
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Listening { proc, addr }
    }

    /// The port of a network address.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.addr))
    }
}

/// Bytes a child wrote on a pipe, collected by a thread, with a condition
/// variable to wait on.
#[derive(Clone, Default)]
pub struct Collected(Arc<(Mutex<Received>, Condvar)>);

/// What a [`Collected`] pipe delivered so far.
#[derive(Default)]
pub struct Received {
    bytes: Vec<u8>,
    eof: bool,
}

impl Collected {
    /// Collects `reader` until EOF in a background thread.
    pub fn collect(mut reader: impl Read + Send + 'static) -> Collected {
        let collected = Collected::default();
        let sink = collected.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cvar) = &*sink.0;
                let mut state = lock.lock().expect("collected lock");
                if n == 0 {
                    state.eof = true;
                } else {
                    state.bytes.extend_from_slice(&buf[..n]);
                }
                cvar.notify_all();
                if n == 0 {
                    break;
                }
            }
        });
        collected
    }

    /// Waits until at least `len` bytes arrived and returns them all;
    /// panics after [`PATIENCE`] or at EOF with less.
    pub fn wait_for_len(&self, len: usize) -> Vec<u8> {
        let (lock, cvar) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut state = lock.lock().expect("collected lock");
        loop {
            if state.bytes.len() >= len {
                return state.bytes.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !state.eof,
                "wanted {len} bytes, got {:?}",
                String::from_utf8_lossy(&state.bytes)
            );
            state = cvar.wait_timeout(state, left).expect("collected lock").0;
        }
    }

    /// Waits (at most [`PATIENCE`]) until the pipe is closed: after the
    /// child exits, its last bytes may still be on their way to the
    /// collecting thread.
    pub fn wait_for_eof(&self) {
        let (lock, cvar) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut state = lock.lock().expect("collected lock");
        while !state.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the pipe was not closed");
            state = cvar.wait_timeout(state, left).expect("collected lock").0;
        }
    }

    /// Everything so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.0.lock().expect("collected lock").bytes.clone()
    }
}

/// An interactive netcrab client: stdin and stdout piped, stderr collected.
/// Killed on drop.
pub struct Client {
    pub proc: Proc,
    pub stdin: Option<std::process::ChildStdin>,
    pub stdout: Collected,
}

impl Client {
    /// Starts netcrab with `args`.
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Client {
        let mut child = spawn_piped(args);
        let stdin = child.stdin.take();
        let stdout = Collected::collect(child.stdout.take().expect("stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("stderr"));
        Client {
            proc: Proc { child, stderr },
            stdin,
            stdout,
        }
    }

    /// Writes `data` to the client's stdin.
    pub fn send(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(data).expect("write to client stdin");
        stdin.flush().expect("flush client stdin");
    }

    /// Closes the client's stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the client to exit and for the end of its output;
    /// returns its exit code.
    pub fn wait(&mut self) -> i32 {
        let status = self.proc.wait();
        self.stdout.wait_for_eof();
        code(status)
    }
}

/// A fresh temporary directory (removed on drop) for socket files.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("netcrab-it-")
        .tempdir()
        .expect("temp dir")
}

/// Whether this machine can listen on ::1 (a test that needs it prints a
/// note and passes without it).
pub fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Asserts that a finished netcrab exited with `expected` and said
/// `needle` on stderr (the whole stderr is shown when it did not).
#[track_caller]
pub fn assert_exit(out: &Output, expected: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(code(out.status), expected, "{err}");
    assert!(err.contains(needle), "no {needle:?} in: {err}");
}
