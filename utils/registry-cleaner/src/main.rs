use std::io::Write;

use clap::Parser;

use registry_cleaner::app;
use registry_cleaner::cli::Args;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let code = match app::run(&args, &mut out, &mut err).await {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            let _ = out.flush();
            eprintln!("registry-cleaner: {e}");
            e.exit_code()
        }
    };
    // `process::exit` runs no destructors: what was printed must be out first.
    let _ = out.flush();
    std::process::exit(code);
}
