use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use lifecycle::app::accounts::{self, NewAccount};
use lifecycle::config::Config;
use racetrack_db::repo::users;
use racetrack_model::InternalService;

#[derive(Parser)]
#[command(
    name = "lifecycle",
    about = "Racetrack Lifecycle: REST API and admin commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (the default).
    Serve,
    /// Read the configuration from the environment, print it with secrets left out, and exit:
    /// status 0 when it is valid, 1 with the reason when not.
    CheckConfig,
    /// Apply database migrations and exit.
    Migrate,
    /// Create an active staff superuser; the password is read from the terminal, or from
    /// standard input when it is not a terminal.
    Createsuperuser {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Change a user's password (read like createsuperuser's).
    Changepassword { username: String },
    /// Issue and print a new internal token for a Racetrack service (pub, dashboard,
    /// image-builder, lifecycle-supervisor), with only that service's scopes. The service's
    /// earlier tokens stay valid until revoked (`DELETE /api/v1/auth/tokens/{id}`).
    GenerateAuth { service: String },
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::CheckConfig => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Migrate => {
            let _telemetry = racetrack_telemetry::init("lifecycle")?;
            let db = racetrack_db::Database::connect(&config.database_url, 1)?;
            let applied = db.migrate()?;
            println!("applied {} migration(s)", applied.len());
            Ok(())
        }
        Command::Createsuperuser { username, email } => {
            let state = admin_state(config)?;
            accounts::validate_username(&username, false)
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let password = read_new_password(&username)?;
            let mut conn = state.db.get()?;
            accounts::create_account(
                &mut conn,
                &state.signer,
                &NewAccount {
                    username: &username,
                    email: &email,
                    password: &password,
                    is_active: true,
                    is_staff: true,
                    is_superuser: true,
                },
            )
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            println!("Superuser created successfully.");
            Ok(())
        }
        Command::Changepassword { username } => {
            let state = admin_state(config)?;
            let mut conn = state.db.get()?;
            let user = users::find_by_username(&mut conn, &username)?
                .with_context(|| format!("user '{username}' does not exist"))?;
            let password = read_new_password(&username)?;
            accounts::set_password(&mut conn, &user, &password)
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            println!("Password changed successfully for user '{username}'");
            Ok(())
        }
        Command::GenerateAuth { service } => {
            // Unknown names are refused (listing the known ones) before anything is stored.
            let service: InternalService = service
                .parse()
                .map_err(|e: racetrack_model::ParseEnumError| anyhow::anyhow!("{e}"))?;
            let state = admin_state(config)?;
            let mut conn = state.db.get()?;
            let (row, token) =
                lifecycle::app::subjects::issue_service_token(&mut conn, &state.signer, service)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let scopes: Vec<&str> = service.scopes().iter().map(|s| s.as_str()).collect();
            println!(
                "Service: {service}\nScopes: {}\nToken id: {} (revoke: DELETE /api/v1/auth/tokens/{})\nLIFECYCLE_AUTH_TOKEN:\n{token}",
                scopes.join(", "),
                row.id,
                row.id
            );
            Ok(())
        }
    }
}

#[actix_web::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let _telemetry = racetrack_telemetry::init("lifecycle")?;
    let state = lifecycle::prepare(config)?;
    let running = lifecycle::start(state)?;
    running.server.await?;
    Ok(())
}

fn admin_state(config: Config) -> anyhow::Result<std::sync::Arc<lifecycle::state::AppState>> {
    let _telemetry = racetrack_telemetry::init("lifecycle")?;
    let mut config = config;
    config.database_max_connections = 1;
    lifecycle::prepare_state(config)
}

/// Asks twice on a terminal; reads one line from standard input otherwise (scripts).
fn read_new_password(username: &str) -> anyhow::Result<String> {
    let interactive = std::io::stdin().is_terminal();
    for _ in 0..3 {
        let password = if interactive {
            let first = rpassword::prompt_password("Password: ")?;
            let again = rpassword::prompt_password("Password (again): ")?;
            if first != again {
                eprintln!("Passwords do not match.");
                continue;
            }
            first
        } else {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        };
        match accounts::check_password_rules(&password, username) {
            Ok(()) => return Ok(password),
            Err(e) if interactive => eprintln!("{e}"),
            Err(e) => bail!("{e}"),
        }
    }
    bail!("Aborting password change for user '{username}' after 3 attempts")
}
