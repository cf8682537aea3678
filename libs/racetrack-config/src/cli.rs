//! The command line shared by the service binaries (PUB, image-builder, lifecycle supervisor;
//! Lifecycle adds its admin commands to the same two): configuration comes from the environment
//! (docs/architecture.md, "One service kit"), so the command only says what to do with it.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Subcommand)]
pub enum ServiceCommand {
    /// Serve until SIGTERM or Ctrl-C, then finish the work in flight (the default).
    #[default]
    Serve,
    /// Read the configuration from the environment, print it with secrets left out, and exit:
    /// status 0 when it is valid, 1 with the reason when not.
    CheckConfig,
}

#[derive(Debug, Parser)]
struct ServiceCli {
    #[command(subcommand)]
    command: Option<ServiceCommand>,
}

/// Parses the process's arguments for the binary `name` (`about` heads its `--help`); on
/// `--help`, `--version` or a bad argument clap prints and exits, as every command line here.
pub fn parse(name: &'static str, about: &'static str) -> ServiceCommand {
    parse_from(name, about, std::env::args_os())
}

/// [`parse`] over given arguments (the first is the program name).
pub fn parse_from<I, T>(name: &'static str, about: &'static str, args: I) -> ServiceCommand
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = ServiceCli::command()
        .name(name)
        .about(about)
        .after_help(
            "Configured with environment variables: `check-config` prints what they make, \
             and docs/architecture.md lists them per service.",
        )
        .get_matches_from(args);
    ServiceCli::from_arg_matches(&matches)
        .map(|cli| cli.command.unwrap_or_default())
        .unwrap_or_else(|e| e.exit())
}

/// Exit status 2 for bad arguments is clap's; these cover what the binaries do with a command.
#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Result<ServiceCommand, clap::Error> {
        let matches = ServiceCli::command()
            .name("svc")
            .try_get_matches_from(std::iter::once("svc").chain(args.iter().copied()))?;
        ServiceCli::from_arg_matches(&matches).map(|c| c.command.unwrap_or_default())
    }

    #[test]
    fn serve_is_the_default_and_check_config_is_spelled_in_kebab_case() {
        assert_eq!(cmd(&[]).unwrap(), ServiceCommand::Serve);
        assert_eq!(cmd(&["serve"]).unwrap(), ServiceCommand::Serve);
        assert_eq!(cmd(&["check-config"]).unwrap(), ServiceCommand::CheckConfig);
    }

    #[test]
    fn unknown_commands_and_flags_are_errors_not_serving() {
        let err = cmd(&["srve"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidSubcommand);
        assert!(cmd(&["--port", "1"]).is_err());
        assert_eq!(
            cmd(&["--help"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
    }
}
