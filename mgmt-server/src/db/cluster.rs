//! A private PostgreSQL 15 cluster in a directory of its own.
//!
//! mgmt-server uses it when no `DATABASE_URL` is given, the tests use it as their
//! throw-away database server, and the demo uses it too. The layout under the root
//! directory is:
//!
//! ```text
//! ROOT/data          the cluster (initdb), kept across restarts
//! ROOT/run           the Unix socket directory (mode 0700: only the owner connects)
//! ROOT/postgres.log  the server's log
//! ```
//!
//! The root directory belongs to the cluster (it is made mode 0700 and, as root, handed
//! to the `postgres` user): give it a directory of its own, e.g. `DATA_DIR/postgres`.
//! Typical use, as mgmt-server does without `DATABASE_URL`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mgmt_server::db::{self, cluster::Cluster};
//! let cluster = Cluster::start("/var/lib/mgmt-server/postgres").await?;
//! cluster.create_database("mgmt").await?;
//! let pool = db::connect(cluster.connect_options("mgmt"), 10).await?; // runs the migrations
//! // ... serve ...
//! pool.close().await;
//! cluster.stop()?; // dropping the cluster stops it too
//! # Ok(())
//! # }
//! ```
//!
//! The server listens on no TCP address (`listen_addresses=''`), only on the socket in
//! `ROOT/run`, and trusts local connections: the directory's permissions are the
//! access control. When this process runs as root, the cluster belongs to the
//! `postgres` OS user (PostgreSQL refuses to run as root) and every PostgreSQL
//! binary is started with that uid and gid.
//!
//! The server is started through a small `sh` watchdog that holds a pipe from this
//! process: when this process ends, even by SIGKILL, the pipe closes and the watchdog
//! asks the server for a fast shutdown, so a crashed manager or test run leaves no
//! server behind. [`Cluster::stop`] (and `Drop`) run `pg_ctl stop -m fast`. Starting
//! on a data directory whose server still runs is refused
//! ([`ClusterError::AlreadyRunning`]): it belongs to someone else.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User, chown};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};

/// The PostgreSQL major version the cluster is made with.
pub const POSTGRES_MAJOR: &str = "15";
/// Where Debian and Ubuntu install the PostgreSQL 15 server binaries.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// The cluster's superuser (initdb `-U`).
pub const SUPERUSER: &str = "postgres";
/// Creates the two roles of [`super::roles`] unless they exist.
const PROVISION_ROLES: &str = "DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mgmt_owner') THEN
        CREATE ROLE mgmt_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mgmt_app') THEN
        CREATE ROLE mgmt_app LOGIN;
    END IF;
END $$";
/// Gives every table and function of the schema (made by an older manager as the
/// superuser) to the owner role; sequences follow their tables.
const TRANSFER_OWNERSHIP: &str = "DO $$ DECLARE item record; BEGIN
    FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = 'public' AND tableowner <> 'mgmt_owner' LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO mgmt_owner', item.tablename);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS function FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'mgmt_owner' LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO mgmt_owner', item.function);
    END LOOP;
END $$";
/// How long [`Cluster::start`] waits for the server to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The port only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;

/// How durable the cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A real installation: fsync and full page writes on.
    Durable,
    /// Tests: `fsync=off`, `synchronous_commit=off`, `full_page_writes=off` and
    /// `initdb --no-sync`. A power cut may lose or corrupt data; never use it for data
    /// that matters.
    ForTests,
}

/// Why the cluster could not be set up, started, used or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL {POSTGRES_MAJOR} server binaries (initdb, pg_ctl, postgres) were not found in {searched}; \
         install them (Debian: apt-get install postgresql-{POSTGRES_MAJOR}) or put them on PATH"
    )]
    BinariesNotFound { searched: String },
    #[error(
        "running as root, but there is no `postgres` OS user to own the cluster (PostgreSQL refuses to run as root): {reason}"
    )]
    NoPostgresUser { reason: String },
    #[error("cannot prepare the cluster directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the postgres OS user cannot reach {path}: {ancestor} does not let it in (mode {mode:o}); \
         make {ancestor} searchable by others (chmod o+x) or choose a cluster directory elsewhere"
    )]
    Unreachable {
        path: PathBuf,
        ancestor: PathBuf,
        mode: u32,
    },
    #[error(
        "the socket path {path} is {length} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH}: choose a shorter cluster directory"
    )]
    SocketPathTooLong { path: PathBuf, length: usize },
    #[error(
        "{path} holds a PostgreSQL {found} cluster, but these binaries are PostgreSQL {POSTGRES_MAJOR}"
    )]
    WrongMajorVersion { path: PathBuf, found: String },
    #[error("{path} is not empty and holds no PostgreSQL cluster; refusing to initialise over it")]
    NotACluster { path: PathBuf },
    #[error(
        "a PostgreSQL server (pid {pid}) is already running on {data_dir}: another mgmt-server uses this \
         data directory, or a server was left behind (stop it with `pg_ctl stop -D {data_dir}`)"
    )]
    AlreadyRunning { data_dir: PathBuf, pid: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    CommandFailed {
        program: PathBuf,
        status: String,
        output: String,
    },
    #[error(
        "the PostgreSQL server exited during start-up ({status}); the end of its log says:\n{log}"
    )]
    ExitedDuringStart { status: String, log: String },
    #[error(
        "the PostgreSQL server did not accept connections within {timeout:?}; the end of its log says:\n{log}"
    )]
    StartTimedOut { timeout: Duration, log: String },
    #[error(
        "database name {name:?} is not allowed: use 1 to 63 characters of [a-z0-9_], starting with a letter"
    )]
    BadDatabaseName { name: String },
    #[error("cannot {action} on the private cluster: {source}")]
    Sql {
        action: String,
        #[source]
        source: sqlx::Error,
    },
}

/// A running private cluster. Stops the server when dropped.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    binaries: Binaries,
    owner: Option<Owner>,
    server: Option<Server>,
}

impl Cluster {
    /// Starts (and on first use initialises) a durable cluster under `root`. Data in an
    /// existing `root/data` is kept.
    pub async fn start(root: impl Into<PathBuf>) -> Result<Self, ClusterError> {
        Self::start_with(root, Durability::Durable).await
    }

    /// Like [`Cluster::start`], with fsync and friends off ([`Durability::ForTests`]).
    pub async fn start_for_tests(root: impl Into<PathBuf>) -> Result<Self, ClusterError> {
        Self::start_with(root, Durability::ForTests).await
    }

    pub async fn start_with(
        root: impl Into<PathBuf>,
        durability: Durability,
    ) -> Result<Self, ClusterError> {
        let root = root.into();
        let binaries = Binaries::find()?;
        let owner = Owner::for_current_process()?;
        let data_dir = root.join("data");
        let socket_dir = root.join("run");
        let socket_file = socket_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        let socket_len = socket_file.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(ClusterError::SocketPathTooLong {
                path: socket_file,
                length: socket_len,
            });
        }

        prepare_dir(&root, owner.as_ref())?;
        prepare_dir(&socket_dir, owner.as_ref())?;
        if let Some(owner) = &owner {
            check_reachable(&root, owner)?;
        }

        let mut cluster = Self {
            root,
            data_dir,
            socket_dir,
            binaries,
            owner,
            server: None,
        };
        if cluster.is_initialised()? {
            cluster.check_not_running()?;
        } else {
            cluster.initdb(durability).await?;
        }
        cluster.launch(durability)?;
        cluster.wait_until_ready().await?;
        tracing::info!(root = %cluster.root.display(), "private PostgreSQL cluster started");
        Ok(cluster)
    }

    /// Connection options for `database` over the cluster's socket, as the superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username(SUPERUSER)
            .database(database)
            .application_name("mgmt-server")
    }

    /// The same as [`Cluster::connect_options`], as a `postgres://` URL (for
    /// `DATABASE_URL`, psql or another process).
    pub fn connect_url(&self, database: &str) -> String {
        self.connect_url_as(database, SUPERUSER)
    }

    /// A `postgres://` URL for `database` as `role`.
    pub fn connect_url_as(&self, database: &str, role: &str) -> String {
        format!(
            "postgres://{}@localhost/{}?host={}&port={SOCKET_PORT}",
            percent_encode(role),
            percent_encode(database),
            percent_encode(&self.socket_dir.to_string_lossy()),
        )
    }

    /// Creates `name` unless it exists. Names are limited to `[a-z0-9_]` because they
    /// are written into the statement.
    pub async fn create_database(&self, name: &str) -> Result<(), ClusterError> {
        check_database_name(name)?;
        let mut conn = self
            .connect_options("postgres")
            .connect()
            .await
            .map_err(|source| ClusterError::Sql {
                action: "connect to the maintenance database".to_owned(),
                source,
            })?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .map_err(|source| ClusterError::Sql {
                    action: format!("look up database {name}"),
                    source,
                })?;
        if !exists {
            // The name was checked against [a-z0-9_] above, so quoting it is enough.
            let statement = format!("CREATE DATABASE \"{name}\"");
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .map_err(|source| ClusterError::Sql {
                    action: format!("create database {name}"),
                    source,
                })?;
        }
        conn.close().await.map_err(|source| ClusterError::Sql {
            action: "close the maintenance connection".to_owned(),
            source,
        })?;
        Ok(())
    }

    /// Connection options for `database` as `role` (see [`Cluster::provision_roles`]).
    pub fn connect_options_as(&self, database: &str, role: &str) -> PgConnectOptions {
        self.connect_options(database).username(role)
    }

    /// Makes the owner and application roles ([`super::roles`]) and gives `database`
    /// (which must exist) and everything in its schema to the owner, so the application
    /// role owns nothing. Idempotent; also moves a database made before the roles existed.
    pub async fn provision_roles(&self, database: &str) -> Result<(), ClusterError> {
        check_database_name(database)?;
        let sql_error = |action: &str| {
            let action = action.to_owned();
            move |source| ClusterError::Sql { action, source }
        };
        let mut conn = self
            .connect_options(database)
            .connect()
            .await
            .map_err(sql_error("connect as the superuser"))?;
        // Role names are constants of this crate; the database name was checked above.
        for statement in [
            PROVISION_ROLES,
            "ALTER SCHEMA public OWNER TO mgmt_owner",
            TRANSFER_OWNERSHIP,
        ] {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map_err(sql_error("provision the database roles"))?;
        }
        let statement = format!("ALTER DATABASE \"{database}\" OWNER TO mgmt_owner");
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .map_err(sql_error("give the database to its owner role"))?;
        conn.close()
            .await
            .map_err(sql_error("close the connection"))?;
        Ok(())
    }

    /// A pool on `database` (which must exist; see [`Cluster::create_database`]).
    /// Migrations are not run here: [`super::connect`] does that.
    pub async fn pool(&self, database: &str) -> Result<PgPool, ClusterError> {
        PgPoolOptions::new()
            .max_connections(10)
            .connect_with(self.connect_options(database))
            .await
            .map_err(|source| ClusterError::Sql {
                action: format!("open a pool on database {database}"),
                source,
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended, the data is
    /// kept) and waits for it to exit. This blocks the thread for as long as the server
    /// takes to shut down (well under a second when idle); `Drop` does the same.
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.shutdown()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, "stopping the private PostgreSQL cluster failed");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Start-up and shutdown details.

#[derive(Debug)]
struct Server {
    /// The `sh` watchdog; its exit status is the server's.
    watchdog: Child,
    /// Closing this pipe makes the watchdog ask the server for a fast shutdown.
    lifeline: Option<ChildStdin>,
}

/// Runs `postgres` in the background and asks it for a fast shutdown (SIGINT) when its
/// standard input, a pipe from the manager, reaches end of file. Background jobs of a
/// non-interactive shell read /dev/null, hence the copy of stdin on fd 3.
const WATCHDOG_SCRIPT: &str = r#"exec 3<&0
"$@" </dev/null &
server=$!
{ read -r _ <&3; kill -INT "$server" 2>/dev/null; } &
wait "$server"
"#;

impl Cluster {
    fn is_initialised(&self) -> Result<bool, ClusterError> {
        let version_file = self.data_dir.join("PG_VERSION");
        match fs::read_to_string(&version_file) {
            Ok(found) => {
                let found = found.trim().to_owned();
                if found != POSTGRES_MAJOR {
                    return Err(ClusterError::WrongMajorVersion {
                        path: self.data_dir.clone(),
                        found,
                    });
                }
                Ok(true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let empty = match fs::read_dir(&self.data_dir) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
                    Err(source) => {
                        return Err(ClusterError::Directory {
                            path: self.data_dir.clone(),
                            source,
                        });
                    }
                };
                if empty {
                    Ok(false)
                } else {
                    Err(ClusterError::NotACluster {
                        path: self.data_dir.clone(),
                    })
                }
            }
            Err(source) => Err(ClusterError::Directory {
                path: version_file,
                source,
            }),
        }
    }

    async fn initdb(&self, durability: Durability) -> Result<(), ClusterError> {
        prepare_dir(&self.data_dir, self.owner.as_ref())?;
        let mut command = self.command(&self.binaries.initdb);
        command
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-instructions");
        if durability == Durability::ForTests {
            command.arg("--no-sync");
        }
        let program = self.binaries.initdb.clone();
        // initdb takes about half a second; keep it off the async runtime's threads.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(|join| ClusterError::Spawn {
                program: program.clone(),
                source: std::io::Error::other(join.to_string()),
            })?
            .map_err(|source| ClusterError::Spawn {
                program: program.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(ClusterError::CommandFailed {
                program,
                status: output.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        tracing::info!(data_dir = %self.data_dir.display(), "initialised a PostgreSQL cluster");
        Ok(())
    }

    /// A server still running on this data directory belongs to another manager (or
    /// was orphaned when its watchdog was killed): refuse to touch it and say which
    /// process it is.
    fn check_not_running(&self) -> Result<(), ClusterError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        if !pid_file.exists() {
            return Ok(());
        }
        let running = self
            .command(&self.binaries.pg_ctl)
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| ClusterError::Spawn {
                program: self.binaries.pg_ctl.clone(),
                source,
            })?
            .success();
        if !running {
            // A stale lock file from a crash: PostgreSQL itself checks and replaces it.
            return Ok(());
        }
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()))
            .unwrap_or_else(|| "?".to_owned());
        Err(ClusterError::AlreadyRunning {
            data_dir: self.data_dir.clone(),
            pid,
        })
    }

    fn launch(&mut self, durability: Durability) -> Result<(), ClusterError> {
        let log_path = self.root.join("postgres.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ClusterError::Directory {
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ClusterError::Directory {
            path: log_path.clone(),
            source,
        })?;
        let mut command = self.command(Path::new("/bin/sh"));
        command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("postgres-watchdog")
            .arg(&self.binaries.postgres)
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-p", &SOCKET_PORT.to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-c", "unix_socket_permissions=0700"]);
        if durability == Durability::ForTests {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let mut watchdog = command.spawn().map_err(|source| ClusterError::Spawn {
            program: self.binaries.postgres.clone(),
            source,
        })?;
        let lifeline = watchdog.stdin.take();
        self.server = Some(Server { watchdog, lifeline });
        Ok(())
    }

    async fn wait_until_ready(&mut self) -> Result<(), ClusterError> {
        let started = Instant::now();
        let options = self.connect_options("postgres");
        loop {
            if let Some(server) = self.server.as_mut()
                && let Ok(Some(status)) = server.watchdog.try_wait()
            {
                self.server = None;
                return Err(ClusterError::ExitedDuringStart {
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            if let Ok(conn) = options.connect().await {
                // A failed close only loses a connection the server is about to drop.
                let _ = conn.close().await;
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let log = self.log_tail();
                // Best effort: the server may still come up; do not leave it running.
                let _ = self.shutdown();
                return Err(ClusterError::StartTimedOut {
                    timeout: START_TIMEOUT,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn shutdown(&mut self) -> Result<(), ClusterError> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let stopped = self.pg_ctl_stop();
        // Whatever pg_ctl said, closing the lifeline makes the watchdog send SIGINT.
        drop(server.lifeline.take());
        let waited = server.watchdog.wait();
        stopped?;
        waited.map_err(|source| ClusterError::Spawn {
            program: self.binaries.postgres.clone(),
            source,
        })?;
        tracing::info!(root = %self.root.display(), "private PostgreSQL cluster stopped");
        Ok(())
    }

    fn pg_ctl_stop(&self) -> Result<(), ClusterError> {
        let output = self
            .command(&self.binaries.pg_ctl)
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "60"])
            .output()
            .map_err(|source| ClusterError::Spawn {
                program: self.binaries.pg_ctl.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ClusterError::CommandFailed {
                program: self.binaries.pg_ctl.clone(),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// A command run as the cluster's owner, with a clean locale.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some(owner) = &self.owner {
            command
                .uid(owner.uid.as_raw())
                .gid(owner.gid.as_raw())
                .env("HOME", &self.root)
                .env("USER", SUPERUSER)
                .env("LOGNAME", SUPERUSER)
                // The manager's working directory may be closed to the postgres user.
                .current_dir(&self.root);
        }
        command
    }

    /// The last 4 KiB of the server log, for error messages.
    fn log_tail(&self) -> String {
        const TAIL: u64 = 4096;
        let path = self.root.join("postgres.log");
        let read = || -> std::io::Result<String> {
            let mut file = File::open(&path)?;
            let length = file.metadata()?.len();
            file.seek(SeekFrom::Start(length.saturating_sub(TAIL)))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
    }
}

#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    postgres: PathBuf,
}

impl Binaries {
    fn find() -> Result<Self, ClusterError> {
        let mut dirs = vec![PathBuf::from(DEFAULT_BIN_DIR)];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        for dir in &dirs {
            let initdb = dir.join("initdb");
            let pg_ctl = dir.join("pg_ctl");
            let postgres = dir.join("postgres");
            if initdb.is_file() && pg_ctl.is_file() && postgres.is_file() {
                return Ok(Self {
                    initdb,
                    pg_ctl,
                    postgres,
                });
            }
        }
        Err(ClusterError::BinariesNotFound {
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// The OS user the cluster's files and processes belong to when we are root.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: Uid,
    gid: Gid,
}

impl Owner {
    fn for_current_process() -> Result<Option<Self>, ClusterError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        match User::from_name(SUPERUSER) {
            Ok(Some(user)) => Ok(Some(Self {
                uid: user.uid,
                gid: user.gid,
            })),
            Ok(None) => Err(ClusterError::NoPostgresUser {
                reason: "getpwnam(\"postgres\") found no such user".to_owned(),
            }),
            Err(errno) => Err(ClusterError::NoPostgresUser {
                reason: errno.to_string(),
            }),
        }
    }
}

/// Creates `dir` (mode 0700) and hands it to the owner.
fn prepare_dir(dir: &Path, owner: Option<&Owner>) -> Result<(), ClusterError> {
    let io = |source| ClusterError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    if let Some(owner) = owner {
        chown(dir, Some(owner.uid), Some(owner.gid))
            .map_err(|errno| io(std::io::Error::from(errno)))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    Ok(())
}

/// Every ancestor of `dir` must let the owner search it, or initdb fails obscurely.
fn check_reachable(dir: &Path, owner: &Owner) -> Result<(), ClusterError> {
    let absolute = fs::canonicalize(dir).map_err(|source| ClusterError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    for ancestor in absolute.ancestors().skip(1) {
        let metadata = fs::metadata(ancestor).map_err(|source| ClusterError::Directory {
            path: ancestor.to_path_buf(),
            source,
        })?;
        let mode = metadata.mode() & 0o7777;
        let searchable = if metadata.uid() == owner.uid.as_raw() {
            mode & 0o100 != 0
        } else if metadata.gid() == owner.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            return Err(ClusterError::Unreachable {
                path: absolute.clone(),
                ancestor: ancestor.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

fn check_database_name(name: &str) -> Result<(), ClusterError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(ClusterError::BadDatabaseName {
            name: name.to_owned(),
        })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_outside_the_safe_alphabet_are_refused() {
        for bad in ["", "1abc", "Abc", "a-b", "a\"b", "a b", &"a".repeat(64)] {
            assert!(check_database_name(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["mgmt", "test_1", "a"] {
            assert!(check_database_name(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn socket_directories_with_odd_characters_are_percent_encoded_in_the_url() {
        assert_eq!(percent_encode("/tmp/a b%c"), "/tmp/a%20b%25c");
    }
}
