//! The local control socket: the `sensor-agent show ...` / `vpn-sessiondb logoff ...`
//! commands talk to the running agent through it.
//!
//! Protocol: one connection per command; the client writes one line of JSON (a
//! [`vpn_core::cli::Command`]) and half-closes; the agent answers with the rendered
//! text and closes. A refused request is answered with a line starting `ERROR: `.
//!
//! Guard: the socket lives in a directory of mode 0700 and has mode 0600, and the
//! agent also checks the peer's uid (`SO_PEERCRED`): only root and the agent's own
//! user may talk to it.

mod server;

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vpn_core::cli::Command;

pub(crate) use server::error_chain;
pub use server::{
    ControlContext, ControlServer, LocalRequest, NOTHING_APPLIED, bind_control_socket, execute,
    execute_local,
};

/// Where the agent listens unless told otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/sensor-agent/control.sock";
/// Longest request line accepted.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Longest answer a client reads (a detail listing of many sessions is large).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Prefix of an answer that reports a refused request.
pub const ERROR_PREFIX: &str = "ERROR: ";
/// Time allowed to read a request or write an answer.
pub const IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the control socket could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "sensor-agent is not running (nothing listens on {}); start it with `sensor-agent run --config FILE`",
        path.display()
    )]
    NotRunning { path: PathBuf },
    #[error("permission denied on {}: the control socket is for root only", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("another sensor-agent is already listening on {}", path.display())]
    AlreadyRunning { path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("control socket {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode the command")]
    Encode(#[from] serde_json::Error),
    #[error("the agent did not answer within {IO_TIMEOUT:?}")]
    Timeout,
    #[error("the agent's answer exceeds {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLarge,
    #[error("the agent refused the command: {0}")]
    Refused(String),
}

/// Sends `command` to the agent listening on `path` and returns its answer text.
pub async fn send_command(path: &Path, command: &Command) -> Result<String, ControlError> {
    send_line(path, serde_json::to_vec(command)?).await
}

/// Sends a [`LocalRequest`] (e.g. `configure apply FILE`) and returns the answer text.
pub async fn send_local_request(
    path: &Path,
    request: &LocalRequest,
) -> Result<String, ControlError> {
    send_line(path, serde_json::to_vec(request)?).await
}

async fn send_line(path: &Path, mut line: Vec<u8>) -> Result<String, ControlError> {
    line.push(b'\n');
    let io_error = |source: io::Error| classify(path, source);
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.map_err(io_error)?;
        stream.write_all(&line).await.map_err(io_error)?;
        stream.shutdown().await.map_err(io_error)?;
        let mut answer = Vec::new();
        let limit = MAX_RESPONSE_BYTES as u64 + 1;
        (&mut stream)
            .take(limit)
            .read_to_end(&mut answer)
            .await
            .map_err(io_error)?;
        if answer.len() > MAX_RESPONSE_BYTES {
            return Err(ControlError::ResponseTooLarge);
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout)??;
    match answer.strip_prefix(ERROR_PREFIX) {
        Some(reason) => Err(ControlError::Refused(reason.trim_end().to_owned())),
        None => Ok(answer),
    }
}

fn classify(path: &Path, source: io::Error) -> ControlError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ControlError::NotRunning { path }
        }
        io::ErrorKind::PermissionDenied => ControlError::PermissionDenied { path },
        _ => ControlError::Io { path, source },
    }
}

#[cfg(test)]
mod tests;
