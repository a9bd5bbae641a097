//! UDP generic segmentation offload (GSO, `UDP_SEGMENT`, Linux) for a
//! [`BlockingSocket`](super::udp::BlockingSocket)'s batch of answers.
//!
//! Several datagrams of one length to one peer can leave in one send: the
//! kernel takes them through its UDP and IP send path once, as one buffer,
//! and cuts it into datagrams at the end (on loopback, at the receiving
//! socket). A batch of answers is planned here ([`plan`], pure): its
//! datagrams ordered by destination, each destination's in their own order,
//! and cut into runs that one GSO send can carry. A run of one goes with
//! the batch's other single datagrams in one sendmmsg(2), as before.
//!
//! Only small datagrams are sent this way ([`MAX_SEGMENT`], below any
//! path's MTU, which a GSO segment may not exceed), never more than
//! [`MAX_DATAGRAM`](super::udp::MAX_DATAGRAM) bytes at once. Where the
//! kernel or the device refuses GSO, the socket stops trying and its
//! datagrams go one by one in a sendmmsg(2).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use super::udp::{BATCH, MAX_DATAGRAM};

/// The largest datagram sent as a GSO segment: a segment must fit the
/// path's MTU, and 1,232 bytes (IPv6's minimum MTU of 1,280 less its
/// headers) fits every one.
pub(crate) const MAX_SEGMENT: usize = 1_232;

// A run is at most a batch of segments: it always fits in one datagram's
// bytes, so the plan need not count them.
const _: () = assert!(BATCH * MAX_SEGMENT <= MAX_DATAGRAM);

/// A batch's datagrams ordered by destination and cut into runs.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Indices into the batch: each destination's datagrams together, in
    /// their order in the batch; destinations in the order they first
    /// appear.
    pub(crate) order: [usize; BATCH],
    /// (first position in `order`, length) of each run, in order.
    pub(crate) runs: [(usize, usize); BATCH],
    /// How many of `order` and `runs` are used.
    pub(crate) len: usize,
    /// How many runs.
    pub(crate) run_count: usize,
}

/// Plans `msgs` (the batch's (length, destination) pairs, at most
/// [`BATCH`]): a run is consecutive datagrams (in `order`) to one
/// destination, all as long as the first (1 to [`MAX_SEGMENT`] bytes)
/// except the last, which may be shorter and then ends the run. Anything
/// else is a run of one.
pub(crate) fn plan(msgs: impl ExactSizeIterator<Item = (usize, SocketAddr)>) -> Plan {
    let mut plan = Plan {
        order: [0; BATCH],
        runs: [(0, 0); BATCH],
        len: 0,
        run_count: 0,
    };
    let n = msgs.len().min(BATCH);
    let mut lens = [0usize; BATCH];
    let mut dests = [None; BATCH];
    for (i, (len, to)) in msgs.take(n).enumerate() {
        lens[i] = len;
        dests[i] = Some(to);
    }
    // A stable grouping by destination: n is at most BATCH, so the
    // quadratic walk is cheaper than sorting.
    let mut placed = [false; BATCH];
    for first in 0..n {
        if placed[first] {
            continue;
        }
        for i in first..n {
            if !placed[i] && dests[i] == dests[first] {
                placed[i] = true;
                plan.order[plan.len] = i;
                plan.len += 1;
            }
        }
    }
    // Runs over the ordered datagrams.
    let mut at = 0;
    while at < plan.len {
        let head = plan.order[at];
        let segment = lens[head];
        let mut end = at + 1;
        if (1..=MAX_SEGMENT).contains(&segment) {
            while end < plan.len {
                let next = plan.order[end];
                let len = lens[next];
                if dests[next] != dests[head] || len > segment || len == 0 {
                    break;
                }
                end += 1;
                if len < segment {
                    break; // a shorter datagram is the run's last
                }
            }
        }
        plan.runs[plan.run_count] = (at, end - at);
        plan.run_count += 1;
        at = end;
    }
    plan
}

/// Sends `datagrams` (each as long as the first but the last, which may
/// be shorter) to `to` in one sendmsg(2) with a `UDP_SEGMENT` of the
/// first's length. All of them go, or none.
pub(crate) fn send_run(
    socket: &impl AsRawFd,
    datagrams: &[&[u8]],
    to: SocketAddr,
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    let mut iovs = [IoSlice::new(&[]); BATCH];
    for (iov, datagram) in iovs.iter_mut().zip(datagrams) {
        *iov = IoSlice::new(datagram);
    }
    let count = datagrams.len().min(BATCH);
    let segment = datagrams.first().map_or(0, |d| d.len());
    let segment = u16::try_from(segment).map_err(|_| io::ErrorKind::InvalidInput)?;
    let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
    let addr = SockaddrStorage::from(to);
    loop {
        match sendmsg(
            socket.as_raw_fd(),
            &iovs[..count],
            &cmsgs,
            MsgFlags::empty(),
            Some(&addr),
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Whether a GSO send's error means this kernel or device cannot do GSO
/// (rather than something about the destination): the socket then stops
/// trying it.
pub(crate) fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The plan's runs as lists of batch indices.
    fn runs(msgs: &[(usize, u16)]) -> Vec<Vec<usize>> {
        let plan = plan(msgs.iter().map(|&(len, port)| (len, addr(port))));
        assert_eq!(plan.len, msgs.len());
        plan.runs[..plan.run_count]
            .iter()
            .map(|&(at, len)| plan.order[at..][..len].to_vec())
            .collect()
    }

    #[test]
    fn each_destinations_datagrams_run_together_in_their_order() {
        // Three senders' 64-byte requests, interleaved as they arrived.
        let msgs = [(64, 1), (64, 2), (64, 1), (64, 3), (64, 2), (64, 1)];
        assert_eq!(runs(&msgs), [vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn a_shorter_datagram_ends_a_run_and_a_longer_one_starts_the_next() {
        let msgs = [(64, 1), (64, 1), (10, 1), (64, 1), (100, 1), (100, 1)];
        assert_eq!(runs(&msgs), [vec![0, 1, 2], vec![3], vec![4, 5]]);
    }

    #[test]
    fn empty_and_large_datagrams_go_alone() {
        let big = MAX_SEGMENT + 1;
        let msgs = [
            (0, 1),
            (0, 1),
            (big, 2),
            (big, 2),
            (MAX_SEGMENT, 3),
            (MAX_SEGMENT, 3),
        ];
        assert_eq!(
            runs(&msgs),
            [vec![0], vec![1], vec![2], vec![3], vec![4, 5]]
        );
    }

    #[test]
    fn a_full_batch_of_the_largest_segments_is_one_run() {
        // 32 segments of 1,232 bytes are 39,424: within one datagram's
        // 65,507, so the byte limit never cuts a batch of small answers.
        let msgs = vec![(MAX_SEGMENT, 1); BATCH];
        assert_eq!(runs(&msgs), [(0..BATCH).collect::<Vec<_>>()]);
    }

    #[test]
    fn more_than_a_batch_is_planned_up_to_the_batch() {
        let msgs = vec![(8, 1); BATCH + 5];
        let plan = plan(msgs.iter().map(|&(len, port)| (len, addr(port))));
        assert_eq!(plan.len, BATCH);
    }

    #[test]
    fn a_run_arrives_as_separate_datagrams_in_order() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let datagrams: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 7 } else { 20 }])
            .collect();
        let slices: Vec<&[u8]> = datagrams.iter().map(|d| d.as_slice()).collect();
        // Loopback takes GSO sends (Linux 4.18 on).
        send_run(&sender, &slices, to).unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        for expected in &datagrams {
            let (n, from) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], expected.as_slice());
            assert_eq!(from, sender.local_addr().unwrap());
        }
    }
}
