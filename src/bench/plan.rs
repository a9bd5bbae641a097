//! The workload a run carries out: what each request is, what reply it
//! expects, how requests are paced, and when the run stops.

use std::sync::Arc;
use std::time::Duration;

use super::pacing::Pacing;
use crate::error::{Error, Result};
use crate::settings::Setting;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long of measuring (warm-up not included); requests still
    /// in flight then are abandoned, not counted.
    Duration(Duration),
    /// After this many measured requests have completed or failed.
    Requests(u64),
}

/// What a reply must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The request itself (an echo server).
    Echo,
    /// These bytes, whatever the request.
    Bytes(Vec<u8>),
    /// No reply at all (a discard server): a request is done once written,
    /// and any byte the server sends is a wrong reply. For bulk throughput.
    Nothing,
}

/// A workload, resolved from the command line (or built by a caller).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// Connections kept open at once (each runs one worker).
    pub connections: usize,
    /// The bytes of one request.
    pub request: Arc<[u8]>,
    /// What every reply must be; its length is how many bytes are read per
    /// request (replies may arrive split or coalesced).
    pub expect: Expect,
    /// When to stop.
    pub stop: Stop,
    /// Run this long before measuring starts (connections opened, caches
    /// warm); nothing sent during it is counted.
    pub warmup: Duration,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Connection attempts per second over all workers (`None`: all at once).
    pub connect_rate: Option<f64>,
    /// Connect, make one exchange, close, repeat: measures connection set-up.
    pub churn: bool,
    /// A request without its complete reply after this long fails with
    /// `timeout` (and its connection is reopened).
    pub request_timeout: Duration,
    /// Once a connection has sent its last request and read its reply,
    /// keep it open (idle) this long before closing: for measuring what
    /// idle connections cost a server.
    pub hold: Duration,
}

impl Plan {
    /// A closed-loop plan: `connections` connections echoing `request` for
    /// `stop`, one request in flight each, no warm-up.
    pub fn echo(connections: usize, request: Vec<u8>, stop: Stop) -> Plan {
        Plan {
            connections,
            request: request.into(),
            expect: Expect::Echo,
            stop,
            warmup: Duration::ZERO,
            pipeline: 1,
            pacing: Pacing::Closed,
            connect_rate: None,
            churn: false,
            request_timeout: Duration::from_secs(10),
            hold: Duration::ZERO,
        }
    }

    /// The expected reply bytes.
    pub fn expected_reply(&self) -> Arc<[u8]> {
        match &self.expect {
            Expect::Echo => self.request.clone(),
            Expect::Bytes(b) => b.as_slice().into(),
            Expect::Nothing => Arc::from(&[][..]),
        }
    }

    /// Checks the plan for values that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.connections == 0 {
            return Err(Error::usage(format!(
                "{} must be at least 1",
                Setting::Connections
            )));
        }
        if self.request.is_empty() {
            return Err(Error::usage("the request payload must not be empty"));
        }
        if self.expected_reply().is_empty() && self.expect != Expect::Nothing {
            return Err(Error::usage(format!(
                "the expected reply must not be empty ({} none: no reply)",
                Setting::Expect
            )));
        }
        if self.pipeline == 0 {
            return Err(Error::usage(format!(
                "{} must be at least 1",
                Setting::Pipeline
            )));
        }
        if self.churn && self.pipeline > 1 {
            return Err(Error::usage(format!(
                "{} makes one exchange per connection: {} must be 1",
                Setting::Churn,
                Setting::Pipeline
            )));
        }
        if let Pacing::Open { rate } = self.pacing
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::usage(format!(
                "{} must be a positive number",
                Setting::Rate
            )));
        }
        if let Some(rate) = self.connect_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::usage(format!(
                "{} must be a positive number",
                Setting::ConnectRate
            )));
        }
        match self.stop {
            Stop::Requests(0) => Err(Error::usage(format!(
                "{} must be at least 1",
                Setting::Requests
            ))),
            Stop::Duration(d) if d.is_zero() => Err(Error::usage(format!(
                "{} must be longer than zero",
                Setting::Duration
            ))),
            _ => Ok(()),
        }
    }

    /// In open loop with a request count: the number of scheduled requests,
    /// warm-up included (the requests due during the warm-up come first).
    pub fn open_loop_total(&self) -> Option<u64> {
        match (self.pacing, self.stop) {
            (Pacing::Open { rate }, Stop::Requests(n)) => {
                Some((self.warmup.as_secs_f64() * rate).ceil() as u64 + n)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_setting() {
        let ok = Plan::echo(1, b"x".to_vec(), Stop::Requests(1));
        assert!(ok.validate().is_ok());
        let mut p = ok.clone();
        p.connections = 0;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("connections must")
        );
        let mut p = ok.clone();
        p.churn = true;
        p.pipeline = 2;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("pipeline must")
        );
        let mut p = ok.clone();
        p.pacing = Pacing::Open { rate: 0.0 };
        assert!(p.validate().unwrap_err().to_string().contains("rate must"));
    }

    #[test]
    fn open_loop_counts_warmup_requests_separately() {
        let mut p = Plan::echo(2, b"x".to_vec(), Stop::Requests(100));
        assert_eq!(p.open_loop_total(), None);
        p.pacing = Pacing::Open { rate: 50.0 };
        p.warmup = Duration::from_millis(500);
        assert_eq!(p.open_loop_total(), Some(125));
        assert_eq!(&*p.expected_reply(), b"x");
    }
}
