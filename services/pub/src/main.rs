use racetrack_config::cli::{self, ServiceCommand};
use racetrack_pub::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ABOUT: &str = "PUB: Racetrack's authenticating proxy in front of the fatmen \
                     (/pub/fatman/{name}/{version}/...), with probes and /metrics";

fn main() {
    let command = cli::parse("pub", ABOUT);
    if let Err(e) = run(command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: ServiceCommand) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match command {
        ServiceCommand::CheckConfig => {
            println!("{config:#?}");
            Ok(())
        }
        ServiceCommand::Serve => {
            let _telemetry = racetrack_telemetry::init("pub")?;
            racetrack_pub::run(config)
        }
    }
}
