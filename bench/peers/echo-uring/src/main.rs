//! echo-uring: the io_uring floor of netcrab's TCP echo benchmark
//! (bench/compare.sh, `SERVERS=uring`), written for that benchmark only. It
//! answers "would leaving an epoll reactor for io_uring buy the last 5%?":
//! the leanest io_uring echo we can write, beside the C epoll floor
//! (bench/peers/floor-echo), tokio, Go and netcrab.
//!
//! - One thread per core (`-threads`, default: the available parallelism),
//!   each with its own `SO_REUSEPORT` listener and its own ring
//!   (`IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`: completions
//!   are run in this thread's `io_uring_enter`, not by task-work interrupts).
//! - One multishot accept per thread (kernel 5.19), one multishot recv per
//!   connection (6.0) into a provided buffer ring (one per thread, 2,048
//!   buffers of 4 KiB): a request costs the kernel no new submission to read.
//! - The reply is a `send` of the very buffer the data arrived in; the
//!   buffer goes back to the ring when the send completes.
//! - One `io_uring_enter` per loop submits every send queued since the last
//!   one and waits for at least one completion.
//!
//! Correctness is kept where a benchmark could hit it: a connection sends
//! one reply at a time (later ones wait, in order), a short send sends the
//! rest, running out of buffers re-arms the recv once buffers are back, EOF
//! closes the connection when its last send completes.
//!
//! Same command line as the Go and tokio peers:
//!
//! ```text
//! echo-uring [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard] [-threads N]
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

/// Buffers in each thread's provided buffer ring (a power of two).
const BUFFERS: u16 = 2048;
/// The size of one provided buffer: the most one recv completion carries.
const BUF_SIZE: usize = 4096;
/// The provided buffer group's id.
const GROUP: u16 = 0;

/// What a completion is for: the low byte of its user_data.
const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_CLOSE: u64 = 4;

const USAGE: &str =
    "usage: echo-uring [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard] [-threads N]";

/// user_data: the operation in the low byte, the descriptor above it.
fn token(op: u64, fd: RawFd) -> u64 {
    op | ((fd as u64) << 8)
}

/// A provided buffer ring: the ring of `io_uring_buf` entries the kernel
/// takes buffers from, and the memory the buffers live in.
struct BufRing {
    ring: *mut u8, // BUFFERS entries of 16 bytes, page aligned (mmap)
    mem: Vec<u8>,  // BUFFERS x BUF_SIZE
    tail: u16,
}

impl BufRing {
    fn new(uring: &IoUring) -> io::Result<BufRing> {
        let len = BUFFERS as usize * 16;
        // SAFETY: an anonymous private mapping; checked for failure.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: ring.cast(),
            mem: vec![0; BUFFERS as usize * BUF_SIZE],
            tail: 0,
        };
        // SAFETY: the mapping lives as long as the process (never unmapped).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring as u64, BUFFERS, GROUP, 0)?
        };
        for bid in 0..BUFFERS {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    /// Puts buffer `bid` at the ring's tail (seen by the kernel once published).
    fn push(&mut self, bid: u16) {
        let slot = (self.tail & (BUFFERS - 1)) as usize;
        let addr = self.mem.as_ptr() as u64 + bid as u64 * BUF_SIZE as u64;
        // SAFETY: slot < BUFFERS; each entry is { u64 addr; u32 len; u16 bid; u16 resv }.
        unsafe {
            let e = self.ring.add(slot * 16);
            (e as *mut u64).write(addr);
            (e.add(8) as *mut u32).write(BUF_SIZE as u32);
            (e.add(12) as *mut u16).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the tail: the ring header's tail is the u16 at offset 14.
    fn publish(&self) {
        // SAFETY: offset 14 is the tail field, 2-byte aligned.
        let tail = unsafe { &*(self.ring.add(14) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    fn buf(&self, bid: u16) -> *const u8 {
        // SAFETY: bid < BUFFERS.
        unsafe { self.mem.as_ptr().add(bid as usize * BUF_SIZE) }
    }
}

/// One connection's state: the replies not yet sent (buffer, offset, end).
#[derive(Default)]
struct Conn {
    sending: bool,    // a send is in flight
    recv_ended: bool, // the multishot recv is over (EOF or error)
    queue: VecDeque<(u16, u32, u32)>,
}

struct Worker {
    ring: IoUring,
    bufs: BufRing,
    conns: Vec<Conn>,
    echo: bool,
}

impl Worker {
    fn push(&mut self, sqe: squeue::Entry) {
        // SAFETY: every buffer an entry points into outlives its operation
        // (the buffer ring's memory lives as long as the worker).
        while unsafe { self.ring.submission().push(&sqe) }.is_err() {
            let _ = self.ring.submit();
        }
    }

    fn conn(&mut self, fd: RawFd) -> &mut Conn {
        let i = fd as usize;
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, Conn::default);
        }
        &mut self.conns[i]
    }

    fn arm_recv(&mut self, fd: RawFd) {
        let e = opcode::RecvMulti::new(types::Fd(fd), GROUP).build();
        self.push(e.user_data(token(OP_RECV, fd)));
    }

    /// Sends the connection's first queued reply, if none is in flight.
    fn send_next(&mut self, fd: RawFd) {
        let c = self.conn(fd);
        if c.sending {
            return;
        }
        let Some(&(bid, off, end)) = c.queue.front() else {
            if c.recv_ended {
                self.close(fd);
            }
            return;
        };
        c.sending = true;
        let buf = self.bufs.buf(bid).wrapping_add(off as usize);
        let e = opcode::Send::new(types::Fd(fd), buf, end - off).build();
        self.push(e.user_data(token(OP_SEND, fd) | (bid as u64) << 40));
    }

    fn close(&mut self, fd: RawFd) {
        let e = opcode::Close::new(types::Fd(fd)).build();
        self.push(e.user_data(token(OP_CLOSE, fd)));
    }

    fn complete(&mut self, user_data: u64, res: i32, flags: u32) {
        let fd = ((user_data >> 8) & 0xffff_ffff) as RawFd;
        match user_data & 0xff {
            OP_ACCEPT => {
                if res >= 0 {
                    let cfd = res;
                    let one: libc::c_int = 1;
                    // SAFETY: a plain setsockopt on the new descriptor.
                    unsafe {
                        libc::setsockopt(
                            cfd,
                            libc::IPPROTO_TCP,
                            libc::TCP_NODELAY,
                            (&one as *const libc::c_int).cast(),
                            4,
                        )
                    };
                    *self.conn(cfd) = Conn::default();
                    self.arm_recv(cfd);
                }
                if !cqueue::more(flags) {
                    let e = opcode::AcceptMulti::new(types::Fd(fd)).build();
                    self.push(e.user_data(token(OP_ACCEPT, fd)));
                }
            }
            OP_RECV => {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    if res > 0 && self.echo {
                        self.conn(fd).queue.push_back((bid, 0, res as u32));
                        self.send_next(fd);
                    } else {
                        self.bufs.push(bid);
                        self.bufs.publish();
                    }
                }
                if !cqueue::more(flags) {
                    if res == -libc::ENOBUFS {
                        self.arm_recv(fd); // buffers come back as sends complete
                    } else {
                        self.conn(fd).recv_ended = true;
                        self.send_next(fd); // closes when nothing is queued
                    }
                }
            }
            OP_SEND => {
                let bid = (user_data >> 40) as u16;
                let c = self.conn(fd);
                c.sending = false;
                let Some(front) = c.queue.front_mut() else {
                    return;
                };
                if res > 0 && front.1 + (res as u32) < front.2 {
                    front.1 += res as u32; // a short send: the rest next
                } else {
                    c.queue.pop_front();
                    self.bufs.push(bid);
                    self.bufs.publish();
                    if res < 0 {
                        // The peer is gone: drop the replies, end the recv.
                        let c = self.conn(fd);
                        let rest: Vec<u16> = c.queue.drain(..).map(|q| q.0).collect();
                        for bid in rest {
                            self.bufs.push(bid);
                        }
                        self.bufs.publish();
                        if self.conn(fd).recv_ended {
                            self.close(fd);
                        } else {
                            // SAFETY: shutdown on a descriptor we own; the
                            // recv then ends, and that closes it.
                            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                        }
                        return;
                    }
                }
                self.send_next(fd);
            }
            _ => {} // OP_CLOSE
        }
    }

    fn run(&mut self, listener: RawFd) -> io::Result<()> {
        let e = opcode::AcceptMulti::new(types::Fd(listener)).build();
        self.push(e.user_data(token(OP_ACCEPT, listener)));
        let mut done = Vec::with_capacity(1024);
        loop {
            self.ring.submit_and_wait(1)?;
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for (u, r, f) in done.drain(..) {
                self.complete(u, r, f);
            }
        }
    }
}

/// A listening non-blocking SO_REUSEPORT socket on `addr`; its bound port.
fn listen_on(addr: SocketAddrV4) -> io::Result<(RawFd, u16)> {
    // SAFETY: plain socket calls on a descriptor we own; results checked.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            4,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            4,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as _;
        sa.sin_port = addr.port().to_be();
        sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len) < 0
            || libc::listen(fd, 4096) < 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        if libc::getsockname(fd, (&mut got as *mut libc::sockaddr_in).cast(), &mut glen) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((fd, u16::from_be(got.sin_port)))
    }
}

fn worker(listener: RawFd, echo: bool) -> io::Result<()> {
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(8192)
        .build(4096)?;
    let bufs = BufRing::new(&ring)?;
    let mut w = Worker {
        ring,
        bufs,
        conns: Vec::new(),
        echo,
    };
    w.run(listener)
}

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:0".to_string();
    let mut port_file = None;
    let mut echo = true;
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let flag = flag.trim_start_matches('-').to_string();
        let Some(value) = args.next() else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        match (flag.as_str(), value.as_str()) {
            ("addr", v) => addr = v.to_string(),
            ("port-file", v) => port_file = Some(v.to_string()),
            ("mode", "echo") => echo = true,
            ("mode", "discard") => echo = false,
            ("threads", v) if v.parse::<usize>().is_ok_and(|n| n > 0) => {
                threads = v.parse().unwrap_or(1)
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Ok(mut sa) = addr.parse::<SocketAddrV4>() else {
        eprintln!("echo-uring: bad -addr {addr:?} (want IPv4 HOST:PORT)");
        return ExitCode::from(2);
    };
    // The first listener picks the port (when 0); the others join it.
    let mut listeners = Vec::new();
    for _ in 0..threads {
        match listen_on(sa) {
            Ok((fd, port)) => {
                sa.set_port(port);
                listeners.push(fd);
            }
            Err(e) => {
                eprintln!("echo-uring: listen {sa}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = port_file {
        let tmp = format!("{path}.tmp-{}", std::process::id());
        if let Err(e) = std::fs::write(&tmp, format!("{}\n", sa.port()))
            .and_then(|()| std::fs::rename(&tmp, &path))
        {
            eprintln!("echo-uring: port file {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("listening on {sa}");
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|fd| std::thread::spawn(move || worker(fd, echo)))
        .collect();
    for h in handles {
        if let Ok(Err(e)) = h.join() {
            eprintln!("echo-uring: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
