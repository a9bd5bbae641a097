//! Fault injection for `netcrab relay`: the fault keys, their one parser,
//! and the decisions that need no I/O.
//!
//! The same keys come from the command line (`--latency 100ms`), from the
//! `--control` API's JSON (`{"latency": "100ms"}`) and from a `--faults`
//! TOML file (`latency = "100ms"`). All three become a [`FaultKeys`]
//! (serde, unknown keys refused) and go through [`FaultKeys::resolve`],
//! which checks every value and names the key of the first bad one. The
//! result is a [`Faults`]: what a relayed connection lives with.
//!
//! Applying faults to bytes is [`pipe`](crate::pipe)'s job
//! (`transfer_with_faults`); the runtime state (the faults in force, the
//! live connections) and the HTTP API are in [`control`]. Datagrams get a
//! verdict each from [`Faults::datagram`], a pure function.
//!
//! This module does no I/O.

pub mod control;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::pipe::Dir;

/// The longest `latency`, `jitter` and `slice-delay` accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The longest `reset-after-time` and `timeout-after` accepted.
pub const MAX_TIMER: Duration = Duration::from_secs(86400 * 30);

/// The largest `slice` accepted.
pub const MAX_SLICE: u64 = 16 << 20;

/// Which way of a relayed connection a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Upstream to client (the default, as toxiproxy's toxics).
    #[default]
    Down,
    /// Client to upstream.
    Up,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether traffic going `dir` is faulted.
    pub fn applies(self, dir: Dir) -> bool {
        matches!(
            (self, dir),
            (Direction::Both, _) | (Direction::Up, Dir::Up) | (Direction::Down, Dir::Down)
        )
    }

    /// The key's value: `down`, `up` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Down => "down",
            Direction::Up => "up",
            Direction::Both => "both",
        }
    }
}

/// A value as JSON or TOML carry it: a boolean, a number or a string. The
/// command line gives strings; every key accepts a string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text such as `100ms` or `1MiB/s`.
    Str(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The fault keys as given, before their values are checked. The names are
/// the command's flag names (`slice-delay`, `fault-rate`); a key that is
/// not one of them is refused, never ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultKeys {
    /// `down` (default), `up` or `both`.
    pub direction: Option<Value>,
    /// Delay of every chunk, e.g. `100ms`.
    pub latency: Option<Value>,
    /// Random variation of the latency, up to this much either way.
    pub jitter: Option<Value>,
    /// A rate such as `1MiB/s`.
    pub bandwidth: Option<Value>,
    /// Split writes into pieces of this many bytes.
    pub slice: Option<Value>,
    /// Wait this long between slices.
    pub slice_delay: Option<Value>,
    /// Reset the connection once this many bytes were delivered.
    pub reset_after: Option<Value>,
    /// Reset the connection this long after it started.
    pub reset_after_time: Option<Value>,
    /// Stop forwarding and close the connection this long after it started.
    pub timeout_after: Option<Value>,
    /// Swallow everything.
    pub blackhole: Option<Value>,
    /// The share of datagrams dropped (UDP), 0 to 1.
    pub drop: Option<Value>,
    /// The share of connections affected, 0 to 1.
    pub fault_rate: Option<Value>,
}

/// A bad fault key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError {
    /// The key at fault, when the error is about one.
    pub key: Option<String>,
    /// What is wrong, without the key.
    pub message: String,
}

impl FaultError {
    fn new(key: &str, message: impl Into<String>) -> FaultError {
        FaultError {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// A serde message (`unknown field `x`, expected ...`): the key it
    /// names, if any, is kept apart.
    fn from_serde(message: &str) -> FaultError {
        let message = message.trim();
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some(end) = rest.find('`')
        {
            let key = &rest[..end];
            return FaultError::new(
                key,
                format!("unknown key (the keys are {})", KEYS.join(", ")),
            );
        }
        FaultError {
            key: None,
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FaultError {}

/// Every key, in the order they are shown.
pub const KEYS: [&str; 12] = [
    "direction",
    "latency",
    "jitter",
    "bandwidth",
    "slice",
    "slice-delay",
    "reset-after",
    "reset-after-time",
    "timeout-after",
    "blackhole",
    "drop",
    "fault-rate",
];

impl FaultKeys {
    /// Parses a JSON object of keys (the `--control` API's `PUT /faults`).
    pub fn from_json(text: &str) -> Result<FaultKeys, FaultError> {
        serde_json::from_str(text).map_err(|e| {
            // serde_json appends " at line L column C".
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            FaultError::from_serde(&msg)
        })
    }

    /// Keys and values from another source (the command line's flags):
    /// the same deserialisation as JSON and TOML, so an unknown key is
    /// refused the same way.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<FaultKeys, FaultError> {
        let map: Map<String, Json> = pairs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Bool(b) => Json::Bool(b),
                    Value::Int(n) => Json::from(n),
                    Value::Float(x) => Json::from(x),
                    Value::Str(s) => Json::String(s),
                };
                (k.to_owned(), v)
            })
            .collect();
        serde_json::from_value(Json::Object(map))
            .map_err(|e| FaultError::from_serde(&e.to_string()))
    }

    /// Checks one key's value alone (a flag's value as clap parses it).
    pub fn check_one(key: &str, value: &str) -> Result<(), FaultError> {
        let mut pairs = vec![(key, Value::from(value))];
        if key == "slice-delay" {
            pairs.push(("slice", Value::Int(1)));
        }
        FaultKeys::from_pairs(pairs)?.resolve().map(|_| ())
    }

    /// Parses a TOML document of keys (`--faults FILE`).
    pub fn from_toml(text: &str) -> Result<FaultKeys, FaultError> {
        toml::from_str(text).map_err(|e| {
            let mut err = FaultError::from_serde(e.message());
            if err.key.is_none()
                && let Some(span) = e.span()
            {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                err.message = format!("line {line}: {}", err.message);
            }
            err
        })
    }

    /// Checks every value and returns the faults they describe; the error
    /// names the first bad key.
    pub fn resolve(&self) -> Result<Faults, FaultError> {
        let mut f = Faults::default();
        if let Some(v) = &self.direction {
            f.direction = match text("direction", v)?.to_ascii_lowercase().as_str() {
                "down" => Direction::Down,
                "up" => Direction::Up,
                "both" => Direction::Both,
                _ => {
                    return Err(FaultError::new(
                        "direction",
                        format!("{v} is not down, up or both"),
                    ));
                }
            };
        }
        if let Some(v) = &self.latency {
            f.latency = duration("latency", v, MAX_DELAY)?;
        }
        if let Some(v) = &self.jitter {
            f.jitter = duration("jitter", v, MAX_DELAY)?;
        }
        if let Some(v) = &self.bandwidth {
            f.bandwidth = Some(rate("bandwidth", v)?);
        }
        if let Some(v) = &self.slice {
            let n = size("slice", v)?;
            if !(1..=MAX_SLICE).contains(&n) {
                return Err(FaultError::new(
                    "slice",
                    format!("{v} is out of range (1 to 16MiB)"),
                ));
            }
            f.slice = Some(n as usize);
        }
        if let Some(v) = &self.slice_delay {
            if self.slice.is_none() {
                return Err(FaultError::new("slice-delay", "needs slice"));
            }
            f.slice_delay = duration("slice-delay", v, MAX_DELAY)?;
        }
        if let Some(v) = &self.reset_after {
            f.reset_after = Some(size("reset-after", v)?);
        }
        if let Some(v) = &self.reset_after_time {
            f.reset_after_time = Some(duration("reset-after-time", v, MAX_TIMER)?);
        }
        if let Some(v) = &self.timeout_after {
            f.timeout_after = Some(duration("timeout-after", v, MAX_TIMER)?);
        }
        if let Some(v) = &self.blackhole {
            f.blackhole = boolean("blackhole", v)?;
        }
        if let Some(v) = &self.drop {
            f.drop = fraction("drop", v)?;
        }
        if let Some(v) = &self.fault_rate {
            f.fault_rate = fraction("fault-rate", v)?;
        }
        Ok(f)
    }
}

/// The faults in force: what a relayed connection (or a UDP session) lives
/// with. The default injects nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Which way the per-byte faults apply (latency, jitter, bandwidth,
    /// slice, reset-after, blackhole, drop). The timers
    /// (`reset-after-time`, `timeout-after`) end the whole connection.
    pub direction: Direction,
    /// Every chunk read at `t` is written at `t + latency` (order kept).
    pub latency: Duration,
    /// The latency varies uniformly by up to this much either way (never
    /// below zero, and never reordering a byte stream).
    pub jitter: Duration,
    /// At most this many bytes per second.
    pub bandwidth: Option<u64>,
    /// Writes are split into pieces of at most this many bytes.
    pub slice: Option<usize>,
    /// The pause between two pieces of one write.
    pub slice_delay: Duration,
    /// Once this many bytes were delivered, the client is reset (SO_LINGER
    /// 0) and the upstream closed.
    pub reset_after: Option<u64>,
    /// This long after the connection started, the client is reset and
    /// the upstream closed.
    pub reset_after_time: Option<Duration>,
    /// This long after the connection started, forwarding stops and both
    /// sides are closed.
    pub timeout_after: Option<Duration>,
    /// Read and discard, never forward.
    pub blackhole: bool,
    /// The share of datagrams dropped, 0 to 1 (UDP only).
    pub drop: f64,
    /// The share of connections affected, 0 to 1: 0 affects none, 1 all.
    pub fault_rate: f64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            direction: Direction::Down,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            slice: None,
            slice_delay: Duration::ZERO,
            reset_after: None,
            reset_after_time: None,
            timeout_after: None,
            blackhole: false,
            drop: 0.0,
            fault_rate: 1.0,
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramVerdict {
    /// Send it on now.
    Forward,
    /// Never send it.
    Drop,
    /// Send it on after this long.
    Delay(Duration),
}

impl Faults {
    /// Whether nothing at all is injected.
    pub fn is_none(&self) -> bool {
        !self.shapes_bytes()
            && self.reset_after_time.is_none()
            && self.timeout_after.is_none()
            && self.drop == 0.0
    }

    /// Whether the bytes of a faulted direction must pass through user
    /// space (everything but the connection timers).
    pub fn shapes_bytes(&self) -> bool {
        !self.latency.is_zero()
            || !self.jitter.is_zero()
            || self.bandwidth.is_some()
            || self.slice.is_some()
            || self.reset_after.is_some()
            || self.blackhole
    }

    /// Whether the bytes going `dir` pass through the fault layer.
    pub fn shapes(&self, dir: Dir) -> bool {
        self.shapes_bytes() && self.direction.applies(dir)
    }

    /// Whether a connection whose roll (uniform in `0..1`) is `roll` is
    /// affected: a rate of 0 affects none, exactly, and 1 all.
    pub fn affects(&self, roll: f64) -> bool {
        roll < self.fault_rate
    }

    /// The delay of one chunk or datagram for a `roll` uniform in `0..1`:
    /// the latency plus up to the jitter either way, never below zero.
    pub fn delay(&self, roll: f64) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let offset = self.jitter.as_secs_f64() * (2.0 * roll.clamp(0.0, 1.0) - 1.0);
        let secs = (self.latency.as_secs_f64() + offset).max(0.0);
        Duration::try_from_secs_f64(secs).unwrap_or(self.latency)
    }

    /// The verdict on one datagram going `dir`, for two rolls uniform in
    /// `0..1` (one for `drop`, one for the jitter): pure, for the UDP
    /// relay's per-datagram hook. A blackhole drops every datagram.
    pub fn datagram(&self, dir: Dir, drop_roll: f64, jitter_roll: f64) -> DatagramVerdict {
        if !self.direction.applies(dir) {
            return DatagramVerdict::Forward;
        }
        if self.blackhole || drop_roll < self.drop {
            return DatagramVerdict::Drop;
        }
        match self.delay(jitter_roll) {
            d if d.is_zero() => DatagramVerdict::Forward,
            d => DatagramVerdict::Delay(d),
        }
    }

    /// Refuses what a byte-stream relay cannot do: `drop` is for
    /// datagrams.
    pub fn check_streams(&self) -> Result<(), FaultError> {
        if self.drop > 0.0 {
            return Err(FaultError::new(
                "drop",
                "drops datagrams: this relay carries byte streams (use reset-after or blackhole)",
            ));
        }
        Ok(())
    }

    /// The faults as keys and normalised values (the `--control` API's
    /// `GET /faults`); only keys that inject something, and `direction`
    /// and `fault-rate` when faults are on. Feeding it back gives the
    /// same faults.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        let dur = |d: Duration| Json::String(humantime::format_duration(d).to_string());
        if !self.is_none() {
            m.insert("direction".into(), self.direction.as_str().into());
        }
        if !self.latency.is_zero() {
            m.insert("latency".into(), dur(self.latency));
        }
        if !self.jitter.is_zero() {
            m.insert("jitter".into(), dur(self.jitter));
        }
        if let Some(rate) = self.bandwidth {
            m.insert("bandwidth".into(), fmt_rate(rate).into());
        }
        if let Some(n) = self.slice {
            m.insert("slice".into(), n.into());
            m.insert("slice-delay".into(), dur(self.slice_delay));
        }
        if let Some(n) = self.reset_after {
            m.insert("reset-after".into(), n.into());
        }
        if let Some(d) = self.reset_after_time {
            m.insert("reset-after-time".into(), dur(d));
        }
        if let Some(d) = self.timeout_after {
            m.insert("timeout-after".into(), dur(d));
        }
        if self.blackhole {
            m.insert("blackhole".into(), true.into());
        }
        if self.drop > 0.0 {
            m.insert("drop".into(), self.drop.into());
        }
        if !self.is_none() {
            m.insert("fault-rate".into(), self.fault_rate.into());
        }
        Json::Object(m)
    }
}

/// A rate as it is shown: the largest binary unit that divides it.
pub fn fmt_rate(rate: u64) -> String {
    match rate {
        r if r.is_multiple_of(1 << 30) => format!("{}GiB/s", r >> 30),
        r if r.is_multiple_of(1 << 20) => format!("{}MiB/s", r >> 20),
        r if r.is_multiple_of(1 << 10) => format!("{}KiB/s", r >> 10),
        r => format!("{r}B/s"),
    }
}

fn text<'a>(key: &str, v: &'a Value) -> Result<&'a str, FaultError> {
    match v {
        Value::Str(s) => Ok(s.trim()),
        _ => Err(FaultError::new(key, format!("{v} is not a string"))),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, FaultError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Str(s) if s.trim() == "true" => Ok(true),
        Value::Str(s) if s.trim() == "false" => Ok(false),
        _ => Err(FaultError::new(key, format!("{v} is not true or false"))),
    }
}

/// A number between 0 and 1.
fn fraction(key: &str, v: &Value) -> Result<f64, FaultError> {
    let x = match v {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        Value::Str(s) => s.trim().parse::<f64>().unwrap_or(f64::NAN),
        Value::Bool(_) => f64::NAN,
    };
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(FaultError::new(
            key,
            format!("{v} is not a number from 0 to 1"),
        ))
    }
}

/// A duration: `250ms`, `10s`, `1m30s`, or a number of seconds.
fn duration(key: &str, v: &Value, max: Duration) -> Result<Duration, FaultError> {
    let bad = || FaultError::new(key, format!("{v} is not a duration like 100ms or 2s"));
    let d = match v {
        Value::Int(n) if *n >= 0 => Duration::from_secs(*n as u64),
        Value::Float(x) if *x >= 0.0 => Duration::try_from_secs_f64(*x).map_err(|_| bad())?,
        Value::Str(s) => match s.trim().parse::<f64>() {
            Ok(x) if x >= 0.0 => Duration::try_from_secs_f64(x).map_err(|_| bad())?,
            Ok(_) => return Err(bad()),
            Err(_) => humantime::parse_duration(s.trim()).map_err(|_| bad())?,
        },
        _ => return Err(bad()),
    };
    if d > max {
        return Err(FaultError::new(
            key,
            format!(
                "{v} is out of range (0 to {})",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

/// A byte count: `512`, `4k`/`4KiB` (x1024), `1m`/`1MiB`, `1g`/`1GiB`.
fn size(key: &str, v: &Value) -> Result<u64, FaultError> {
    let bad = || {
        FaultError::new(
            key,
            format!("{v} is not a byte count like 1000, 4KiB or 1MiB"),
        )
    };
    let s = match v {
        Value::Int(n) => return u64::try_from(*n).map_err(|_| bad()),
        Value::Str(s) => s.trim(),
        _ => return Err(bad()),
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

/// A rate in bytes per second: a number then `B/s`, `KiB/s`, `MiB/s`,
/// `GiB/s` (binary), `kB/s`, `MB/s`, `GB/s` (decimal), or `kbit/s`,
/// `Mbit/s`, `Gbit/s` (decimal bits); units are case-insensitive, and a bare
/// number is bytes per second. At least 1 B/s.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{t:?} is not a rate like 64KiB/s, 10MiB/s or 100Mbit/s");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("/s")
        .unwrap_or(if unit.is_empty() { "b" } else { "?" });
    let mult: f64 = match unit {
        "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        _ => return Err(bad()),
    };
    let rate = (number * mult).round();
    if !(1.0..=1e15).contains(&rate) {
        return Err(format!("{t} is out of range (1B/s to 1000TB/s)"));
    }
    Ok(rate as u64)
}

fn rate(key: &str, v: &Value) -> Result<u64, FaultError> {
    match v {
        Value::Int(n) if *n >= 1 => Ok(*n as u64),
        Value::Str(s) => parse_rate(s).map_err(|m| FaultError::new(key, m)),
        _ => Err(FaultError::new(
            key,
            format!("{v} is not a rate like 64KiB/s, 10MiB/s or 100Mbit/s"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Result<Faults, FaultError> {
        FaultKeys::from_json(json)?.resolve()
    }

    #[test]
    fn json_keys_resolve() {
        let f = keys(
            r#"{"latency": "100ms", "jitter": "10ms", "direction": "both",
            "bandwidth": "1MiB/s", "slice": 100, "slice-delay": 0.01, "reset-after": "1KiB",
            "reset-after-time": 2, "timeout-after": "1m", "blackhole": false,
            "fault-rate": 0.5}"#,
        )
        .unwrap();
        assert_eq!(f.latency, Duration::from_millis(100));
        assert_eq!(f.jitter, Duration::from_millis(10));
        assert_eq!(f.direction, Direction::Both);
        assert_eq!(f.bandwidth, Some(1 << 20));
        assert_eq!(
            (f.slice, f.slice_delay),
            (Some(100), Duration::from_millis(10))
        );
        assert_eq!(f.reset_after, Some(1024));
        assert_eq!(f.reset_after_time, Some(Duration::from_secs(2)));
        assert_eq!(f.timeout_after, Some(Duration::from_secs(60)));
        assert!(!f.blackhole);
        assert_eq!(f.fault_rate, 0.5);
        // What GET shows can be PUT back.
        assert_eq!(keys(&f.to_json().to_string()).unwrap(), f);
        assert_eq!(keys("{}").unwrap(), Faults::default());
        assert!(Faults::default().is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = keys(r#"{"latency": "1s", "latncy": "1s"}"#).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("latncy"), "{err}");
        assert!(err.to_string().starts_with("latncy: unknown key"), "{err}");
        for (json, key) in [
            (r#"{"latency": "soon"}"#, "latency"),
            (r#"{"latency": -1}"#, "latency"),
            (r#"{"latency": "2h"}"#, "latency"),
            (r#"{"bandwidth": "fast"}"#, "bandwidth"),
            (r#"{"bandwidth": "0B/s"}"#, "bandwidth"),
            (r#"{"slice": 0}"#, "slice"),
            (r#"{"slice-delay": "1ms"}"#, "slice-delay"),
            (r#"{"reset-after": -5}"#, "reset-after"),
            (r#"{"blackhole": "yes"}"#, "blackhole"),
            (r#"{"drop": 1.5}"#, "drop"),
            (r#"{"fault-rate": "-0.1"}"#, "fault-rate"),
            (r#"{"direction": "sideways"}"#, "direction"),
            (r#"{"direction": 1}"#, "direction"),
        ] {
            let err = keys(json).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{json}: {err}");
        }
        // Not an object at all: an error without a key.
        assert!(keys("[1]").unwrap_err().key.is_none());
        assert!(keys("{").is_err());
    }

    #[test]
    fn toml_keys_resolve_strictly() {
        let f =
            FaultKeys::from_toml("latency = \"50ms\"\ndirection = \"up\"\nreset-after = 1000\n")
                .unwrap()
                .resolve()
                .unwrap();
        assert_eq!(f.latency, Duration::from_millis(50));
        assert_eq!(f.direction, Direction::Up);
        assert_eq!(f.reset_after, Some(1000));
        let err = FaultKeys::from_toml("latency = \"50ms\"\njitterr = \"1ms\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("jitterr"), "{err}");
        let err = FaultKeys::from_toml("latency = ").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn flag_pairs_use_the_same_parser() {
        let keys =
            FaultKeys::from_pairs([("latency", "1s".into()), ("blackhole", Value::Bool(true))]);
        let f = keys.unwrap().resolve().unwrap();
        assert_eq!((f.latency, f.blackhole), (Duration::from_secs(1), true));
        let err = FaultKeys::from_pairs([("latenc", "1s".into())]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("latenc"));
        assert!(FaultKeys::check_one("slice-delay", "5ms").is_ok());
        assert_eq!(
            FaultKeys::check_one("jitter", "x")
                .unwrap_err()
                .key
                .as_deref(),
            Some("jitter")
        );
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10MiB/s"), Ok(10 << 20));
        assert_eq!(parse_rate("10 mib/s"), Ok(10 << 20));
        assert_eq!(parse_rate("64KiB/s"), Ok(64 << 10));
        assert_eq!(parse_rate("1.5kB/s"), Ok(1500));
        assert_eq!(parse_rate("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_rate("512"), Ok(512));
        assert_eq!(parse_rate("512B/s"), Ok(512));
        assert!(parse_rate("10MiB").is_err());
        assert!(parse_rate("0.1B/s").is_err());
        assert!(parse_rate("").is_err());
        assert!(parse_rate("1e300GB/s").is_err());
        for r in [1, 1000, 1 << 10, 3 << 20, 1 << 30] {
            assert_eq!(parse_rate(&fmt_rate(r)), Ok(r));
        }
    }

    #[test]
    fn fault_rate_zero_affects_none_and_one_all() {
        let mut f = Faults {
            fault_rate: 0.0,
            ..Faults::default()
        };
        for roll in [0.0, 1e-12, 0.5, 0.999_999] {
            assert!(!f.affects(roll));
        }
        f.fault_rate = 1.0;
        for roll in [0.0, 0.5, 0.999_999_999] {
            assert!(f.affects(roll));
        }
    }

    #[test]
    fn delays_and_datagram_verdicts() {
        let f = Faults {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            drop: 0.25,
            ..Faults::default()
        };
        assert_eq!(f.delay(0.0), Duration::from_millis(90));
        assert_eq!(f.delay(0.5), Duration::from_millis(100));
        assert_eq!(f.delay(1.0), Duration::from_millis(110));
        // Downstream by default: upstream-bound datagrams pass untouched.
        assert_eq!(f.datagram(Dir::Up, 0.0, 0.5), DatagramVerdict::Forward);
        assert_eq!(f.datagram(Dir::Down, 0.1, 0.5), DatagramVerdict::Drop);
        assert_eq!(
            f.datagram(Dir::Down, 0.25, 0.5),
            DatagramVerdict::Delay(Duration::from_millis(100))
        );
        // Jitter larger than the latency never makes a negative delay.
        let g = Faults {
            jitter: Duration::from_millis(10),
            ..Faults::default()
        };
        assert_eq!(g.datagram(Dir::Down, 0.9, 0.0), DatagramVerdict::Forward);
        assert!(g.check_streams().is_ok());
        assert_eq!(f.check_streams().unwrap_err().key.as_deref(), Some("drop"));
    }
}
