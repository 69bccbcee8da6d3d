//! The running management center: database (a private PostgreSQL cluster under the
//! data directory unless a `DATABASE_URL` is given), secrets, the domain services and deploy workers, and
//! HTTPS with a certificate from the internal CA.
//!
//! ```text
//! DATA_DIR/postgres/       the private cluster (only without DATABASE_URL)
//! DATA_DIR/secret.key      the key that encrypts private keys in the database (0600)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;

use crate::db::admins::{self, AdministratorInput, Role};
use crate::db::cluster::{Cluster, ClusterError};
use crate::db::roles;
use crate::db::{Actor, DbError, EncryptionKey, GLOBAL_DOMAIN_ID, SecretError};
use crate::deploy::WorkerSettings;
use crate::listener::{ConnectionCaps, ConnectionLimiter, HEADER_DEADLINE};
use crate::pki::CaError;
use crate::pki::store::CaStoreError;
use crate::services::Services;

/// Connections in the pool.
const POOL_SIZE: u32 = 20;

/// How the management center starts.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub data_dir: PathBuf,
    /// An external PostgreSQL; `None` runs a private cluster under `data_dir`.
    pub database_url: Option<String>,
    /// The manager's name, as sensors see it.
    pub manager_name: String,
    /// Host names and addresses the HTTPS certificate names.
    pub server_names: Vec<String>,
    /// Created when no administrator exists yet: name and password.
    pub initial_admin: Option<(String, String)>,
    /// This replica's deploy workers (lease, poll, owner name).
    pub workers: WorkerSettings,
    /// With `database_url`: the schema owner that runs the migrations; `None` runs
    /// them as the application role (which then owns the tables; a warning says so).
    pub database_owner_url: Option<String>,
    /// Start even when the application connects as a PostgreSQL superuser.
    pub allow_superuser: bool,
    /// The key that encrypts private keys in the database; every replica on one
    /// database needs the same. `None`: `DATA_DIR/secret.key`, created on first start.
    pub secret_key_file: Option<PathBuf>,
}

/// Why the management center could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the private PostgreSQL cluster")]
    Cluster(#[from] ClusterError),
    #[error("DATABASE_URL is not a PostgreSQL URL")]
    DatabaseUrl(#[source] sqlx::Error),
    #[error("the database owner URL is not a PostgreSQL URL")]
    DatabaseOwnerUrl(#[source] sqlx::Error),
    #[error(
        "DATABASE_URL connects as {role}, a PostgreSQL superuser, which could rewrite the audit log; \
         connect as a role with only the application's privileges (README, \"Several replicas\"), \
         or start with --allow-superuser to accept the risk"
    )]
    Superuser { role: String },
    #[error(
        "this database's private keys were encrypted with another secret key ({}): every \
         manager replica on one database needs the same key; copy secret.key from the data \
         directory of the first replica and point --secret-key-file at it",
        path.display()
    )]
    WrongSecretKey { path: PathBuf },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the secret key")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    CaStore(#[from] CaStoreError),
    #[error("the HTTPS certificate")]
    Ca(#[from] CaError),
    #[error("the HTTPS settings")]
    Tls(#[from] rustls::Error),
    #[error("the initial administrator: {0}")]
    InitialAdmin(String),
    #[error("the HTTPS certificate: {0}")]
    Certificate(String),
}

/// Everything the running manager holds.
#[derive(Debug)]
pub struct ManagementCenter {
    pub pool: PgPool,
    pub key: EncryptionKey,
    pub services: Services,
    /// The HTTPS certificate chain (PEM) the manager presents, CA last.
    pub server_certificate_pem: String,
    tls: Arc<rustls::ServerConfig>,
    cluster: Option<Cluster>,
}

impl ManagementCenter {
    pub async fn start(settings: &ServerSettings) -> Result<Self, StartError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        let (owner, application, cluster) = match &settings.database_url {
            Some(url) => {
                let owner = settings
                    .database_owner_url
                    .as_deref()
                    .map(str::parse::<PgConnectOptions>)
                    .transpose()
                    .map_err(StartError::DatabaseOwnerUrl)?;
                let application = url
                    .parse::<PgConnectOptions>()
                    .map_err(StartError::DatabaseUrl)?;
                (owner, application, None)
            }
            None => {
                let cluster = Cluster::start(settings.data_dir.join("postgres")).await?;
                tracing::info!(socket = %cluster.socket_dir().display(), "private PostgreSQL cluster started");
                cluster.create_database("mgmt").await?;
                cluster.provision_roles("mgmt").await?;
                (
                    Some(cluster.connect_options_as("mgmt", roles::OWNER_ROLE)),
                    cluster.connect_options_as("mgmt", roles::APPLICATION_ROLE),
                    Some(cluster),
                )
            }
        };
        let pool = roles::connect_as_application(owner, application, POOL_SIZE).await?;
        let role = roles::role_info(&pool).await?;
        if role.superuser {
            if !settings.allow_superuser {
                return Err(StartError::Superuser { role: role.name });
            }
            tracing::warn!(role = %role.name, "the application connects as a PostgreSQL superuser (--allow-superuser): it could rewrite the audit log");
        } else if role.owns_tables {
            tracing::warn!(role = %role.name, "the application role owns the schema's tables: it could alter them; give the owner its own URL (--database-owner-url)");
        }
        let key_path = settings
            .secret_key_file
            .clone()
            .unwrap_or_else(|| settings.data_dir.join("secret.key"));
        let key = EncryptionKey::load_or_create(&key_path)?;
        if let Some((name, password)) = &settings.initial_admin {
            create_initial_admin(&pool, name, password).await?;
        }
        let services = Services::start_with(
            pool.clone(),
            key.clone(),
            &settings.manager_name,
            settings.workers.clone(),
        )
        .await
        .map_err(|e| match e {
            CaStoreError::Db(DbError::Secret(_)) => StartError::WrongSecretKey {
                path: key_path.clone(),
            },
            other => other.into(),
        })?;
        let ca = services.sensors.ca();
        let identity =
            ca.issue_server_identity(&settings.server_names, OffsetDateTime::now_utc())?;
        let tls = server_tls(&identity.certificate_pem, &identity.private_key_pem)?;
        Ok(Self {
            pool,
            key,
            services,
            server_certificate_pem: identity.certificate_pem,
            tls,
            cluster,
        })
    }

    /// The internal CA certificate (PEM): what clients trust to reach the manager.
    pub fn ca_certificate_pem(&self) -> &str {
        self.services.sensors.ca().certificate_pem()
    }

    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.tls)
    }

    /// Serves `router` over HTTPS on `listener` until the process ends, within the
    /// default [`ConnectionCaps`] and the [`crate::listener::HEADER_DEADLINE`].
    pub async fn serve(
        &self,
        listener: std::net::TcpListener,
        router: axum::Router,
    ) -> std::io::Result<()> {
        serve_https(
            listener,
            self.tls_config(),
            ConnectionCaps::default(),
            router,
        )
        .await
    }

    /// Closes the pool and stops the private cluster, if any.
    pub async fn stop(self) {
        self.services.stop_workers();
        self.pool.close().await;
        if let Some(cluster) = self.cluster
            && let Err(e) = cluster.stop()
        {
            tracing::warn!(error = %e, "stopping the private PostgreSQL cluster");
        }
    }
}

/// Serves `router` over HTTPS on `listener`: at most `caps` connections (per address
/// and in all; more get a clear 503), and the whole request header within
/// [`crate::listener::HEADER_DEADLINE`].
pub async fn serve_https(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    caps: ConnectionCaps,
    router: axum::Router,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    let acceptor =
        axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(ConnectionLimiter::new(caps));
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .first_request_timeout(Some(HEADER_DEADLINE));
    server
        .http_builder()
        .http1()
        .header_read_timeout(Some(HEADER_DEADLINE));
    server
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

async fn create_initial_admin(pool: &PgPool, name: &str, password: &str) -> Result<(), StartError> {
    if admins::count(pool).await? > 0 {
        return Ok(());
    }
    let hash = crate::admins::hashing::hash(password)
        .await
        .map_err(|e| StartError::InitialAdmin(e.to_string()))?;
    let mut conn = pool.acquire().await.map_err(|source| DbError::Sql {
        action: "get a connection",
        source,
    })?;
    let created = admins::create(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: name.to_owned(),
            password_hash: hash,
            role: Role::Administrator,
            enabled: true,
        },
    )
    .await;
    match created {
        Ok(_) => tracing::info!(administrator = name, "initial administrator created"),
        // Another replica starting at the same time created it first.
        Err(DbError::Conflict { .. }) => {
            tracing::info!(
                administrator = name,
                "initial administrator created by another replica"
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn server_tls(chain_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let chain = vpn_core::pki::pem::certificates(chain_pem)
        .map_err(|e| StartError::Certificate(e.to_string()))?;
    let key = vpn_core::pki::pem::private_key(key_pem)
        .map_err(|e| StartError::Certificate(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
