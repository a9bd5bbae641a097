//! Flags shared by the commands that handle connections: transcripts
//! (`-o`, `-x`; connect, serve, relay) and access rules (`--allow`,
//! `--deny`; serve, relay).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use netcrab::access::{AccessList, AccessRules};
use netcrab::endpoint::Endpoint;
use netcrab::error::{Error, Result};
use netcrab::transcript::{Transcript, TranscriptOptions};

/// `-o` and `-x`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Transcripts")]
pub struct TranscriptArgs {
    /// Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then
    #[arg(short = 'x', long = "hex-dump", value_name = "FILE")]
    pub hex_dump: Option<PathBuf>,
}

impl TranscriptArgs {
    /// Opens the files and starts the writer, when a transcript is asked
    /// for. `server`: several connections, told apart by ids.
    pub fn start(&self, server: bool) -> Result<Option<Transcript>> {
        let mut opts = TranscriptOptions::default();
        opts.output = self.output.clone();
        opts.hex_dump = self.hex_dump.clone();
        opts.server = server;
        if !opts.is_wanted() {
            return Ok(None);
        }
        if let (Some(o), Some(x)) = (&opts.output, &opts.hex_dump)
            && o == x
        {
            return Err(Error::usage(
                "--output and --hex-dump need two different files",
            ));
        }
        Transcript::start(&opts).map(Some)
    }

    /// Whether a transcript is asked for.
    pub fn is_wanted(&self) -> bool {
        self.output.is_some() || self.hex_dump.is_some()
    }
}

/// Writes out a transcript at the end of a run, warning when chunks were
/// dropped.
pub fn finish(transcript: Option<&Transcript>) {
    if let Some(t) = transcript {
        t.finish_and_warn();
    }
}

/// `--allow`, `--deny` and their file forms.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Access control")]
pub struct AccessArgs {
    /// Accept only clients matching ADDR: an address, a CIDR block or a host name (resolved at start); repeatable or comma-separated
    #[arg(long, value_name = "ADDR")]
    pub allow: Vec<String>,
    /// Read --allow rules from FILE: one a line, `#` comments
    #[arg(long, value_name = "FILE")]
    pub allow_file: Vec<PathBuf>,
    /// Refuse clients matching ADDR (wins over --allow); repeatable or comma-separated
    #[arg(long, value_name = "ADDR")]
    pub deny: Vec<String>,
    /// Read --deny rules from FILE: one a line, `#` comments
    #[arg(long, value_name = "FILE")]
    pub deny_file: Vec<PathBuf>,
}

impl AccessArgs {
    fn rules(&self) -> AccessRules {
        AccessRules {
            allow: self.allow.clone(),
            allow_files: self.allow_file.clone(),
            deny: self.deny.clone(),
            deny_files: self.deny_file.clone(),
        }
    }

    /// Parses the rules (a usage error for a bad one, naming it) and
    /// resolves their names; `None` when no rule is given.
    pub async fn build(&self, listen: &Endpoint) -> Result<Option<Arc<AccessList>>> {
        let rules = self.rules();
        if rules.is_empty() {
            return Ok(None);
        }
        if listen.host_port().is_none() {
            return Err(Error::usage(format!(
                "--allow and --deny apply to tcp and tls listeners, not {listen} (unix peers have no address)"
            )));
        }
        AccessList::build(&rules).await.map(|l| Some(Arc::new(l)))
    }
}
