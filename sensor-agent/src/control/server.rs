//! The agent's side of the control socket.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use vpn_core::cli::{Command, DeviceState, NO_ACTIVE_SESSIONS, logoff_result, show};
use vpn_core::config::DeviceConfig;

use super::{ControlError, ERROR_PREFIX, IO_TIMEOUT, MAX_REQUEST_BYTES};
use crate::config_file::read_config_bytes;
use crate::config_store::{Deployer, is_nothing_applied};
use crate::manager::ManagerChannel;
use crate::sessions::SessionDb;

/// `show running-config` while no configuration has been applied.
pub const NOTHING_APPLIED: &str =
    ": no configuration has been applied; waiting for one from the manager";

/// Most bytes of an oversized request read and discarded before answering.
const MAX_DRAIN_BYTES: u64 = 1024 * 1024;

/// What the control socket reads and acts on.
#[derive(Debug, Clone)]
pub struct ControlContext {
    /// The running configuration; a deploy sends a new one.
    pub config: watch::Receiver<Arc<DeviceConfig>>,
    pub sessions: SessionDb,
    /// Applies configurations (`sensor-agent configure apply FILE`); `None` refuses them.
    pub deployer: Option<Arc<Deployer>>,
    /// The management channel (`configure manager ...`, `show managers`); `None`
    /// refuses those commands.
    pub manager: Option<Arc<ManagerChannel>>,
}

/// Requests of the local operator that are not FTD CLI commands. Their `Debug` (what
/// the log shows) leaves the registration key out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LocalRequest {
    /// Apply the configuration file at `path` (read by the agent) as a deploy.
    ConfigureApply { path: PathBuf },
    /// `configure manager add <host[:port]> <registration-key> [<nat-id>]`.
    ConfigureManagerAdd {
        address: String,
        registration_key: String,
        nat_id: Option<String>,
    },
    /// `configure manager delete`.
    ConfigureManagerDelete,
    /// `show managers`.
    ShowManagers,
}

impl std::fmt::Debug for LocalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConfigureApply { path } => f
                .debug_struct("ConfigureApply")
                .field("path", path)
                .finish(),
            Self::ConfigureManagerAdd {
                address, nat_id, ..
            } => f
                .debug_struct("ConfigureManagerAdd")
                .field("address", address)
                .field("registration_key", &"<redacted>")
                .field("nat_id", nat_id)
                .finish(),
            Self::ConfigureManagerDelete => f.write_str("ConfigureManagerDelete"),
            Self::ShowManagers => f.write_str("ShowManagers"),
        }
    }
}

/// What one request line asks for.
#[derive(Debug)]
enum Request {
    Command(Command),
    Local(LocalRequest),
}

/// `configure apply FILE`: the deploy's answer, or `ERROR: ` with every cause.
pub fn execute_local(
    context: &ControlContext,
    request: &LocalRequest,
    now: OffsetDateTime,
) -> String {
    let path = match request {
        LocalRequest::ConfigureApply { path } => path,
        LocalRequest::ConfigureManagerAdd { .. }
        | LocalRequest::ConfigureManagerDelete
        | LocalRequest::ShowManagers => return execute_manager_command(context, request, now),
    };
    let Some(deployer) = &context.deployer else {
        return format!("{ERROR_PREFIX}this agent does not accept deploys\n");
    };
    let result = read_config_bytes(path)
        .map_err(|e| error_chain(&e))
        .and_then(|bytes| {
            let registered = context.manager.as_ref().and_then(|m| m.device_id());
            deployer
                .deploy(&bytes, registered, now)
                .map_err(|e| error_chain(&e))
        });
    match result {
        Err(reason) => format!("{ERROR_PREFIX}{reason}\n"),
        Ok(outcome) => {
            let mut answer = String::new();
            for line in &outcome.applied.transcript {
                answer.push_str(line);
                answer.push('\n');
            }
            for warning in &outcome.applied.warnings {
                answer.push_str(&format!("WARNING: {warning}\n"));
            }
            for change in &outcome.changes {
                answer.push_str(&format!("INFO: {change}\n"));
            }
            answer.push_str(&format!(
                "INFO: configuration version {} applied (hash {}); {} session(s) ended\n",
                outcome.applied.version,
                outcome.applied.hash,
                outcome.ended_sessions.len()
            ));
            answer
        }
    }
}

/// An error and its sources, `: `-separated.
/// `configure manager add|delete`, `show managers`.
fn execute_manager_command(
    context: &ControlContext,
    request: &LocalRequest,
    now: OffsetDateTime,
) -> String {
    let Some(manager) = &context.manager else {
        return format!("{ERROR_PREFIX}this agent has no management channel\n");
    };
    let result = match request {
        LocalRequest::ConfigureManagerAdd {
            address,
            registration_key,
            nat_id,
        } => manager
            .add_manager(address, registration_key, nat_id.as_deref(), now)
            .map(|pending| {
                format!(
                    "Manager successfully configured.\nPlease make note of reg_key as this will be required while adding Device in FMC.\nManager {} added; waiting for it to register this sensor.\n",
                    pending.address
                )
            }),
        LocalRequest::ConfigureManagerDelete => manager
            .delete_manager()
            .map(|()| "Manager successfully deleted.\n".to_owned()),
        LocalRequest::ShowManagers | LocalRequest::ConfigureApply { .. } => {
            Ok(manager.show_managers())
        }
    };
    result.unwrap_or_else(|e| format!("{ERROR_PREFIX}{}\n", error_chain(&e)))
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Runs one command and returns the text the operator sees.
pub fn execute(context: &ControlContext, command: &Command, now: OffsetDateTime) -> String {
    if let Command::VpnSessionDbLogoff { target, .. } = command {
        // The confirmation prompt is the client's business; here it is confirmed.
        if context.sessions.sessions().is_empty() {
            return format!("{NO_ACTIVE_SESSIONS}\n");
        }
        let count = context.sessions.logoff(target, now);
        return format!("{}\n", logoff_result(target, count));
    }
    let config = Arc::clone(&context.config.borrow());
    if is_nothing_applied(&config) && matches!(command, Command::ShowRunningConfig { .. }) {
        return format!("{NOTHING_APPLIED}\n");
    }
    let sessions = context.sessions.sessions();
    let stats = context.sessions.stats();
    let device = DeviceState {
        config: &config,
        sessions: &sessions,
        stats: &stats,
    };
    show(command, device, now).unwrap_or_default()
}

/// A bound control socket that removes its file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    allowed_uids: Vec<u32>,
}

/// Creates the socket at `path`: its directory with mode 0700, the socket with mode
/// 0600. A stale socket left by a crashed agent is replaced; a live one is not.
pub async fn bind_control_socket(path: &Path) -> Result<ControlServer, ControlError> {
    let io_error = |source: io::Error| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ControlError::NotASocket {
                path: path.to_owned(),
            });
        }
        Ok(_) => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ControlError::AlreadyRunning {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(io_error)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_error)?;
    let own_uid = std::fs::metadata("/proc/self").map_err(io_error)?.uid();
    let mut allowed_uids = vec![0, own_uid];
    allowed_uids.dedup();
    Ok(ControlServer {
        listener,
        path: path.to_owned(),
        allowed_uids,
    })
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves commands until the task is dropped; each connection runs on its own task.
    pub async fn serve(self, context: ControlContext) {
        let allowed = Arc::new(self.allowed_uids.clone());
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let context = context.clone();
                    let allowed = Arc::clone(&allowed);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &context, &allowed).await {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle(
    mut stream: UnixStream,
    context: &ControlContext,
    allowed_uids: &[u32],
) -> io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    // The request is read (bounded) even from a refused peer, so that it reads the
    // refusal instead of a connection reset.
    let request = tokio::time::timeout(IO_TIMEOUT, read_request(&mut stream)).await;
    let answer = if !allowed_uids.contains(&uid) {
        tracing::warn!(uid, "control socket peer refused");
        format!("{ERROR_PREFIX}permission denied for uid {uid}\n")
    } else {
        match request {
            Err(_) => format!("{ERROR_PREFIX}request not received within {IO_TIMEOUT:?}\n"),
            Ok(Err(reason)) => format!("{ERROR_PREFIX}{reason}\n"),
            Ok(Ok(Request::Command(command))) => {
                tracing::info!(?command, uid, "control command");
                execute(context, &command, OffsetDateTime::now_utc())
            }
            Ok(Ok(Request::Local(request))) => {
                tracing::info!(?request, uid, "control request");
                // Reading the file and the fsyncs of the apply block: off the runtime.
                let context = context.clone();
                tokio::task::spawn_blocking(move || {
                    execute_local(&context, &request, OffsetDateTime::now_utc())
                })
                .await
                .unwrap_or_else(|e| format!("{ERROR_PREFIX}the apply task failed: {e}\n"))
            }
        }
    };
    tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "answer not taken in time"))?
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = Vec::new();
    let limit = MAX_REQUEST_BYTES as u64 + 1;
    BufReader::new((&mut *stream).take(limit))
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() > MAX_REQUEST_BYTES {
        // Take (a bounded amount of) the rest so the client can read the answer
        // instead of getting a reset.
        let mut rest = (&mut *stream).take(MAX_DRAIN_BYTES);
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
        return Err(format!("request longer than {MAX_REQUEST_BYTES} bytes"));
    }
    match serde_json::from_slice(&line) {
        Ok(command) => Ok(Request::Command(command)),
        Err(command_error) => serde_json::from_slice(&line)
            .map(Request::Local)
            .map_err(|_| format!("invalid command: {command_error}")),
    }
}
