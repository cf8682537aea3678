//! `racetrack`: the command-line client for Racetrack. It speaks Lifecycle's REST API and reads
//! and writes the original Python client's `~/.racetrack/config.yaml` (cli/README.md).

mod client;
mod commands;
mod config;
mod deploy;
mod error;
mod follow;
mod interrupt;
mod manifest;
mod output;
mod payload;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::output::Format;
use crate::payload::BuildContextMode;

#[derive(Parser)]
#[command(
    name = "racetrack",
    about = "CLI client tool for managing workloads in Racetrack",
    version,
    arg_required_else_help = true,
    after_help = "Exit codes: 0 ok, 1 other error, 2 invalid input (arguments, manifest, config, refused payload), 3 authentication (missing, expired or revoked token, no permission), 4 not found, 5 deployment failed, 6 server unreachable, 130 interrupted (a deployment goes on)."
)]
struct Cli {
    /// Debug messages (each HTTP request made)
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Racetrack server's URL or alias name (default: the current remote)
    #[arg(long, global = true)]
    remote: Option<String>,
    /// Output format for the results of list, logs, get config, validate, deploy
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a fatman: its directory with fatman.yaml, or the manifest file
    Deploy {
        #[arg(default_value = ".")]
        workdir: PathBuf,
        /// Racetrack server (deprecated: use --remote)
        #[arg(hide = true)]
        remote_positional: Option<String>,
        /// Overwrite a fatman that exists with the same name and version
        #[arg(long)]
        force: bool,
        /// Send the local files (local) or let the builder clone git.remote (git); default:
        /// local only for the local sample setup
        #[arg(long, value_enum)]
        build_context: Option<BuildContextMode>,
        /// Print the build log while it is built
        #[arg(short, long)]
        follow: bool,
    },
    /// Check a manifest without sending anything; prints the effective manifest
    Validate {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// List the deployed fatmen
    List {
        /// Extra columns: infrastructure, deployed_by, updated_at, last_call_at, pub_url, all
        #[arg(short, long = "column", value_enum)]
        columns: Vec<commands::Column>,
    },
    /// Runtime logs of a fatman
    Logs {
        name: String,
        #[arg(long, default_value = "latest")]
        version: String,
        /// How many recent lines
        #[arg(long, default_value_t = 20)]
        tail: u32,
        /// Keep printing new lines until Ctrl-C
        #[arg(short, long)]
        follow: bool,
    },
    /// Build logs of a fatman's latest deployment
    BuildLogs {
        name: String,
        #[arg(long, default_value = "latest")]
        version: String,
        /// How many recent lines (0: all)
        #[arg(long, default_value_t = 0)]
        tail: u32,
        /// Keep printing new lines until Ctrl-C
        #[arg(short, long)]
        follow: bool,
    },
    /// Delete a fatman version
    Delete {
        name: String,
        #[arg(long)]
        version: String,
    },
    /// Move a fatman to another infrastructure target
    Move {
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        infrastructure: String,
    },
    /// Call a fatman through PUB
    Call {
        name: String,
        #[arg(long, default_value = "latest")]
        version: String,
        /// The fatman's endpoint
        #[arg(long, default_value = "/api/v1/perform")]
        endpoint: String,
        /// JSON body
        #[arg(long, default_value = "{}")]
        data: String,
        /// PUB's base URL, e.g. https://rt.example.com/pub (default: from the fatman's pub_url)
        #[arg(long, env = "RACETRACK_PUB_URL")]
        pub_url: Option<String>,
    },
    /// Save a token for a Racetrack server (checked with the server first)
    Login { token: String },
    /// Forget the token of a Racetrack server
    Logout,
    /// Change the local configuration
    #[command(subcommand)]
    Set(SetCommand),
    /// Show the local configuration
    #[command(subcommand)]
    Get(GetCommand),
    /// Build a fatman's image on Racetrack and run it on the local Docker engine
    RunLocal {
        #[arg(default_value = ".")]
        workdir: PathBuf,
        /// Local port for the fatman
        #[arg(long, default_value_t = 7000)]
        port: u16,
        #[arg(long, value_enum)]
        build_context: Option<BuildContextMode>,
    },
    /// Print the client's version
    Version,
    /// Shell completion script (e.g. `racetrack completions bash > /etc/bash_completion.d/racetrack`)
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum SetCommand {
    /// Set the current remote (URL or alias)
    Remote { remote: String },
    /// Name a Racetrack URL
    Alias { alias: String, url: String },
    /// Git credentials for a repository (or host)
    Credentials {
        repo_url: String,
        username: String,
        token_password: String,
    },
}

#[derive(Subcommand)]
enum GetCommand {
    /// The current remote
    Remote,
    /// The whole configuration (includes tokens and passwords)
    Config,
}

fn main() {
    let cli = Cli::parse();
    output::set_verbose(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("cannot start: {e}"));
            std::process::exit(error::EXIT_OTHER);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            output::error(&e.to_string());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> error::Result<()> {
    let remote = cli.remote.as_deref();
    let format = cli.output;
    match cli.command {
        Command::Deploy {
            workdir,
            remote_positional,
            force,
            build_context,
            follow,
        } => {
            let remote = remote.or(remote_positional.as_deref());
            commands::deploy(
                format,
                deploy::DeployArgs {
                    workdir: &workdir,
                    remote,
                    build_context,
                    force,
                    follow,
                    build_only: false,
                },
            )
            .await
        }
        Command::Validate { path } => commands::validate(format, &path),
        Command::List { columns } => commands::list(format, remote, &columns).await,
        Command::Logs {
            name,
            version,
            tail,
            follow,
        } => {
            let args = commands::LogArgs {
                kind: commands::LogKind::Runtime,
                name: &name,
                version: &version,
                tail,
                follow,
            };
            commands::logs(format, remote, args).await
        }
        Command::BuildLogs {
            name,
            version,
            tail,
            follow,
        } => {
            let args = commands::LogArgs {
                kind: commands::LogKind::Build,
                name: &name,
                version: &version,
                tail,
                follow,
            };
            commands::logs(format, remote, args).await
        }
        Command::Delete { name, version } => commands::delete(remote, &name, &version).await,
        Command::Move {
            name,
            version,
            infrastructure,
        } => commands::move_fatman(remote, &name, &version, &infrastructure).await,
        Command::Call {
            name,
            version,
            endpoint,
            data,
            pub_url,
        } => {
            commands::call(
                remote,
                &name,
                &version,
                &endpoint,
                &data,
                pub_url.as_deref(),
            )
            .await
        }
        Command::Login { token } => commands::login(remote, &token).await,
        Command::Logout => commands::logout(remote),
        Command::Set(SetCommand::Remote { remote }) => commands::set_remote(&remote),
        Command::Set(SetCommand::Alias { alias, url }) => commands::set_alias(&alias, &url),
        Command::Set(SetCommand::Credentials {
            repo_url,
            username,
            token_password,
        }) => commands::set_credentials(&repo_url, &username, &token_password),
        Command::Get(GetCommand::Remote) => commands::get_remote(),
        Command::Get(GetCommand::Config) => commands::get_config(format),
        Command::RunLocal {
            workdir,
            port,
            build_context,
        } => commands::run_local(remote, &workdir, port, build_context).await,
        Command::Version => {
            output::print(&format!(
                "racetrack-client version {}",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "racetrack",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
