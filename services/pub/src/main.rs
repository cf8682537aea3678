use racetrack_pub::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = racetrack_telemetry::init("pub")?;
    racetrack_pub::run(config)
}
