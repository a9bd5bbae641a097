//! `netcrab completions SHELL` (clap_complete) and the hidden `netcrab man
//! DIR` (clap_mangen): both generated from the clap definitions, so they
//! always describe the binary that prints them. `scripts/gen-assets.sh`
//! writes them into `contrib/completions/` and `contrib/man/`, and a test
//! (tests/it/assets.rs) checks the checked-in copies are current.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use netcrab::error::{Error, Result};

pub const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  netcrab completions bash > /etc/bash_completion.d/netcrab
  netcrab completions zsh > \"${fpath[1]}/_netcrab\"
  netcrab completions fish > ~/.config/fish/completions/netcrab.fish";

/// Print a shell completion script on stdout
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

impl CompletionsArgs {
    /// Writes the completion script to stdout.
    pub fn run(&self) -> Result<()> {
        let mut cmd = super::Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "netcrab", &mut out);
        write_stdout(&out)
    }
}

/// Write man pages for netcrab and each command into DIR (netcrab.1, netcrab-serve.1, ...)
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

impl ManArgs {
    /// Writes one page for `netcrab` and one for each visible command
    /// (`help` has none).
    pub fn run(&self) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let mut cmd = super::Cli::command();
        cmd.build();
        write_page(dir, "netcrab", cmd.clone())?;
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let name = format!("netcrab-{}", sub.get_name());
            let sub = sub.clone().name(name.clone()).bin_name(name.clone());
            write_page(dir, &name, sub)?;
        }
        Ok(())
    }
}

/// Renders `cmd`'s page into `dir/name.1`.
fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Error::io(format!("render {name}.1"), e))?;
    std::fs::write(&path, page).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Writes `bytes` to stdout; a closed stdout (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("write stdout", e)),
        _ => Ok(()),
    }
}
