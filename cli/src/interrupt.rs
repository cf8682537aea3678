//! Ctrl-C while the CLI watches something (a deployment, a log): the handler is installed when
//! [`Interrupt::listen`] is called, so a Ctrl-C right after that is caught rather than killing
//! the process before it could say what goes on.

use crate::error::{CliError, Result};

pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub fn listen() -> Result<Interrupt> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| CliError::Other(format!("cannot handle Ctrl-C: {e}")))?;
            Ok(Interrupt { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    /// Resolves at the next Ctrl-C.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
