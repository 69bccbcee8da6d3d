//! Connection profiles (`policy/ravpns/{id}/connectionprofiles`, FTD tunnel groups):
//! group policy, client address pools, the AAA tab with every multiple-certificate-
//! authentication setting, CA trustpoints and aliases. The AAA settings are vpn-core's
//! own [`AaaSettings`], stored column by column, so compiling a profile into a
//! DeviceConfig only swaps references for names.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationServer, CertificateField, GroupAlias, GroupUrl, UsernameMapping,
};

use super::audit::{self, AuditAction};
use super::{Actor, DbError, Listed, ObjectKind, Page, Reference};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProfile {
    pub id: Uuid,
    pub policy_id: Uuid,
    pub name: String,
    pub description: String,
    /// `default-group-policy`.
    pub group_policy: Reference,
    /// Client Address Assignment, in order.
    pub ipv4_pools: Vec<Reference>,
    pub ipv6_pools: Vec<Reference>,
    /// CA-only cert enrollments client certificates must chain to.
    pub trustpoints: Vec<Reference>,
    pub aaa: AaaSettings,
    pub group_aliases: Vec<GroupAlias>,
    pub group_urls: Vec<GroupUrl>,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of a profile; references by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProfileInput {
    pub name: String,
    pub description: String,
    pub group_policy_id: Uuid,
    pub ipv4_pool_ids: Vec<Uuid>,
    pub ipv6_pool_ids: Vec<Uuid>,
    pub trustpoint_ids: Vec<Uuid>,
    pub aaa: AaaSettings,
    pub group_aliases: Vec<GroupAlias>,
    pub group_urls: Vec<GroupUrl>,
}

const KIND: ObjectKind = ObjectKind::ConnectionProfile;
const LOCK: &str =
    "SELECT version FROM connection_profiles WHERE id = $1 AND policy_id = $2 FOR UPDATE";
const SELECT: &str = "SELECT p.*,
    (SELECT json_build_object('id', g.id, 'name', g.name) FROM group_policies g WHERE g.id = p.group_policy_id) AS group_policy,
    COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
              FROM connection_profile_ipv4_pools x JOIN ipv4_address_pools o ON o.id = x.pool_id
              WHERE x.profile_id = p.id), '[]') AS ipv4_pools,
    COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
              FROM connection_profile_ipv6_pools x JOIN ipv6_address_pools o ON o.id = x.pool_id
              WHERE x.profile_id = p.id), '[]') AS ipv6_pools,
    COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
              FROM connection_profile_trustpoints x JOIN cert_enrollments o ON o.id = x.cert_enrollment_id
              WHERE x.profile_id = p.id), '[]') AS trustpoints,
    COALESCE((SELECT json_agg(json_build_object('name', x.alias_name, 'enabled', x.enabled) ORDER BY x.position)
              FROM connection_profile_aliases x WHERE x.profile_id = p.id), '[]') AS group_aliases,
    COALESCE((SELECT json_agg(json_build_object('url', x.url, 'enabled', x.enabled) ORDER BY x.position)
              FROM connection_profile_urls x WHERE x.profile_id = p.id), '[]') AS group_urls
    FROM connection_profiles p";

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<ConnectionProfile, DbError> {
    let mut tx = super::begin(conn).await?;
    super::policies::require(&mut *tx, domain_id, policy_id).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO connection_profiles (id, policy_id, name, group_policy_id, authentication_method)
         VALUES ($1, $2, $3, $4, 'AAA_ONLY')",
    )
    .bind(id)
    .bind(policy_id)
    .bind(&input.name)
    .bind(input.group_policy_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "create a connection profile"))?;
    write_fields(&mut tx, domain_id, id, input).await?;
    let created = get(&mut *tx, domain_id, policy_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Create,
        KIND,
        id,
        &created.name,
        None,
        super::snapshot(&created),
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
) -> Result<ConnectionProfile, DbError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE p.id = $1 AND p.policy_id = $2
           AND EXISTS (SELECT 1 FROM ravpn_policies r WHERE r.id = p.policy_id AND r.domain_id = $3)"
    )))
    .bind(id)
    .bind(policy_id)
    .bind(domain_id)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a connection profile"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

/// The profiles of a policy, by name.
pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    policy_id: Uuid,
    page: Page,
) -> Result<Listed<ConnectionProfile>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    list_in(&mut conn, domain_id, policy_id, page).await
}

/// [`list`] on a connection the caller holds (e.g. inside a snapshot transaction).
pub async fn list_in(
    conn: &mut PgConnection,
    domain_id: Uuid,
    policy_id: Uuid,
    page: Page,
) -> Result<Listed<ConnectionProfile>, DbError> {
    super::policies::require(&mut *conn, domain_id, policy_id).await?;
    super::list_page(
        &mut *conn,
        &super::ListedBy {
            select: SELECT,
            from: "connection_profiles p",
            scope_column: "p.policy_id",
            name_column: "p.name",
            list_action: "list connection profiles",
            count_action: "count connection profiles",
        },
        policy_id,
        page,
    )
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &ConnectionProfileInput,
) -> Result<ConnectionProfile, DbError> {
    let mut tx = super::begin(conn).await?;
    super::policies::require(&mut *tx, domain_id, policy_id).await?;
    let current = super::lock_version(&mut tx, LOCK, KIND, id, policy_id).await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, domain_id, policy_id, id).await?;
    sqlx::query(
        "UPDATE connection_profiles SET name = $2, group_policy_id = $3, version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&input.name)
    .bind(input.group_policy_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a connection profile"))?;
    write_fields(&mut tx, domain_id, id, input).await?;
    let after = get(&mut *tx, domain_id, policy_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Update,
        KIND,
        id,
        &after.name,
        super::snapshot(&before),
        super::snapshot(&after),
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    super::policies::require(&mut *tx, domain_id, policy_id).await?;
    let current = super::lock_version(&mut tx, LOCK, KIND, id, policy_id).await?;
    if let Some(expected) = expected_version {
        super::check_version(KIND, id, expected, current)?;
    }
    let before = get(&mut *tx, domain_id, policy_id, id).await?;
    sqlx::query("DELETE FROM connection_profiles WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a connection profile"))?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Delete,
        KIND,
        id,
        &before.name,
        super::snapshot(&before),
        None,
    )
    .await?;
    super::commit(tx).await?;
    Ok(())
}

/// Writes every field but the name and group policy, and replaces the lists.
async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<(), DbError> {
    super::require_all(
        conn,
        "SELECT id FROM group_policies WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::GroupPolicy,
        domain_id,
        &[input.group_policy_id],
    )
    .await?;
    super::require_all(
        conn,
        "SELECT id FROM ipv4_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::Ipv4AddressPool,
        domain_id,
        &input.ipv4_pool_ids,
    )
    .await?;
    super::require_all(
        conn,
        "SELECT id FROM ipv6_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::Ipv6AddressPool,
        domain_id,
        &input.ipv6_pool_ids,
    )
    .await?;
    super::require_all(
        conn,
        "SELECT id FROM cert_enrollments WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::CertEnrollment,
        domain_id,
        &input.trustpoint_ids,
    )
    .await?;
    let identities: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM cert_enrollments WHERE id = ANY($1) AND kind <> 'CA_ONLY'",
    )
    .bind(&input.trustpoint_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("check trustpoint kinds"))?;
    if let Some(&identity) = identities.first() {
        return Err(DbError::WrongReference {
            kind: ObjectKind::CertEnrollment,
            id: identity,
            expected: "a CA-only trustpoint",
        });
    }

    let aaa = &input.aaa;
    let (server_type, server_name) = match &aaa.authentication_server {
        AuthenticationServer::Local => ("LOCAL", None),
        AuthenticationServer::Radius { server_group } => ("RADIUS", Some(server_group.as_str())),
        AuthenticationServer::Ldap { realm } => ("LDAP", Some(realm.as_str())),
    };
    let (entire_dn, primary, secondary) = match aaa.username_mapping {
        UsernameMapping::EntireDn => (true, None, None),
        UsernameMapping::SpecificField { primary, secondary } => (
            false,
            Some(super::enum_text(&primary)),
            secondary.as_ref().map(super::enum_text),
        ),
    };
    sqlx::query(
        "UPDATE connection_profiles SET description = $2, authentication_method = $3,
            authentication_server_type = $4, authentication_server_name = $5, fallback_to_local = $6,
            enable_multiple_certificate_authentication = $7, username_from_certificate_source = $8,
            map_entire_dn_as_username = $9, username_primary_field = $10, username_secondary_field = $11,
            prefill_username = $12, hide_username = $13, strip_realm = $14, strip_group = $15
         WHERE id = $1",
    )
    .bind(id)
    .bind(&input.description)
    .bind(super::enum_text(&aaa.authentication_method))
    .bind(server_type)
    .bind(server_name)
    .bind(aaa.fallback_to_local)
    .bind(aaa.enable_multiple_certificate_authentication)
    .bind(super::enum_text(&aaa.username_from_certificate_source))
    .bind(entire_dn)
    .bind(primary)
    .bind(secondary)
    .bind(aaa.prefill_username)
    .bind(aaa.hide_username)
    .bind(aaa.strip_realm)
    .bind(aaa.strip_group)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a connection profile"))?;

    for sql in [
        "DELETE FROM connection_profile_ipv4_pools WHERE profile_id = $1",
        "DELETE FROM connection_profile_ipv6_pools WHERE profile_id = $1",
        "DELETE FROM connection_profile_trustpoints WHERE profile_id = $1",
        "DELETE FROM connection_profile_aliases WHERE profile_id = $1",
        "DELETE FROM connection_profile_urls WHERE profile_id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(DbError::sql("clear a connection profile's lists"))?;
    }
    for (sql, ids) in [
        (
            "INSERT INTO connection_profile_ipv4_pools (profile_id, position, pool_id)
             SELECT $1, ord::int, ref FROM unnest($2::uuid[]) WITH ORDINALITY AS t(ref, ord)",
            &input.ipv4_pool_ids,
        ),
        (
            "INSERT INTO connection_profile_ipv6_pools (profile_id, position, pool_id)
             SELECT $1, ord::int, ref FROM unnest($2::uuid[]) WITH ORDINALITY AS t(ref, ord)",
            &input.ipv6_pool_ids,
        ),
        (
            "INSERT INTO connection_profile_trustpoints (profile_id, position, cert_enrollment_id)
             SELECT $1, ord::int, ref FROM unnest($2::uuid[]) WITH ORDINALITY AS t(ref, ord)",
            &input.trustpoint_ids,
        ),
    ] {
        sqlx::query(sql)
            .bind(id)
            .bind(ids)
            .execute(&mut *conn)
            .await
            .map_err(DbError::on_write(
                KIND,
                &input.name,
                "write a connection profile's references",
            ))?;
    }
    let alias_names: Vec<&str> = input
        .group_aliases
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    let alias_enabled: Vec<bool> = input.group_aliases.iter().map(|a| a.enabled).collect();
    sqlx::query(
        "INSERT INTO connection_profile_aliases (profile_id, position, alias_name, enabled)
         SELECT $1, ord::int, name, enabled FROM unnest($2::text[], $3::bool[]) WITH ORDINALITY AS t(name, enabled, ord)",
    )
    .bind(id)
    .bind(&alias_names)
    .bind(&alias_enabled)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a connection profile's aliases"))?;
    let urls: Vec<&str> = input.group_urls.iter().map(|u| u.url.as_str()).collect();
    let url_enabled: Vec<bool> = input.group_urls.iter().map(|u| u.enabled).collect();
    sqlx::query(
        "INSERT INTO connection_profile_urls (profile_id, position, url, enabled)
         SELECT $1, ord::int, url, enabled FROM unnest($2::text[], $3::bool[]) WITH ORDINALITY AS t(url, enabled, ord)",
    )
    .bind(id)
    .bind(&urls)
    .bind(&url_enabled)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a connection profile's URLs"))?;
    Ok(())
}

impl<'r> FromRow<'r, PgRow> for ConnectionProfile {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let server_type: String = row.try_get("authentication_server_type")?;
        let server_name: Option<String> = row.try_get("authentication_server_name")?;
        let authentication_server = match (server_type.as_str(), server_name) {
            ("LOCAL", _) => AuthenticationServer::Local,
            ("RADIUS", Some(server_group)) => AuthenticationServer::Radius { server_group },
            ("LDAP", Some(realm)) => AuthenticationServer::Ldap { realm },
            (other, _) => {
                return Err(super::column_error(
                    "authentication_server_type",
                    format!("{other} without a server name"),
                ));
            }
        };
        let username_mapping = if row.try_get("map_entire_dn_as_username")? {
            UsernameMapping::EntireDn
        } else {
            let primary: Option<String> = row.try_get("username_primary_field")?;
            let secondary: Option<String> = row.try_get("username_secondary_field")?;
            UsernameMapping::SpecificField {
                primary: super::enum_from_text::<CertificateField>(
                    "username_primary_field",
                    primary.unwrap_or_default(),
                )?,
                secondary: secondary
                    .map(|field| {
                        super::enum_from_text::<CertificateField>("username_secondary_field", field)
                    })
                    .transpose()?,
            }
        };
        let aaa = AaaSettings {
            authentication_method: super::enum_from_text(
                "authentication_method",
                row.try_get("authentication_method")?,
            )?,
            authentication_server,
            fallback_to_local: row.try_get("fallback_to_local")?,
            enable_multiple_certificate_authentication: row
                .try_get("enable_multiple_certificate_authentication")?,
            username_from_certificate_source: super::enum_from_text(
                "username_from_certificate_source",
                row.try_get("username_from_certificate_source")?,
            )?,
            username_mapping,
            prefill_username: row.try_get("prefill_username")?,
            hide_username: row.try_get("hide_username")?,
            strip_realm: row.try_get("strip_realm")?,
            strip_group: row.try_get("strip_group")?,
        };
        let Json(group_policy) = row.try_get::<Json<Reference>, _>("group_policy")?;
        let Json(ipv4_pools) = row.try_get::<Json<Vec<Reference>>, _>("ipv4_pools")?;
        let Json(ipv6_pools) = row.try_get::<Json<Vec<Reference>>, _>("ipv6_pools")?;
        let Json(trustpoints) = row.try_get::<Json<Vec<Reference>>, _>("trustpoints")?;
        let Json(group_aliases) = row.try_get::<Json<Vec<GroupAlias>>, _>("group_aliases")?;
        let Json(group_urls) = row.try_get::<Json<Vec<GroupUrl>>, _>("group_urls")?;
        Ok(Self {
            id: row.try_get("id")?,
            policy_id: row.try_get("policy_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            group_policy,
            ipv4_pools,
            ipv6_pools,
            trustpoints,
            aaa,
            group_aliases,
            group_urls,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
