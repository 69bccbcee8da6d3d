//! Connection profiles (`policy/ravpns/{id}/connectionprofiles`, FTD tunnel groups):
//! group policy, client address pools, the AAA tab with every multiple-certificate-
//! authentication setting, CA trustpoints and aliases. The AAA settings are vpn-core's
//! own [`AaaSettings`], stored column by column, so compiling a profile into a
//! DeviceConfig only swaps references for names.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationServer, CertificateField, GroupAlias, GroupUrl, UsernameMapping,
};

use super::versioned::{Change, Versioned};
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
    /// MCA slot binding: the trustpoints (of [`Self::trustpoints`]) that may issue the
    /// machine certificate; empty: every one of them.
    pub machine_trustpoints: Vec<Reference>,
    /// MCA slot binding: the trustpoints that may issue the user certificate; empty:
    /// every one of them.
    pub user_trustpoints: Vec<Reference>,
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
    /// MCA slot binding, each id one of `trustpoint_ids` (the profile service's rule;
    /// an id that is not is not stored); empty: every trustpoint of the profile.
    #[serde(default)]
    pub machine_trustpoint_ids: Vec<Uuid>,
    #[serde(default)]
    pub user_trustpoint_ids: Vec<Uuid>,
    pub aaa: AaaSettings,
    pub group_aliases: Vec<GroupAlias>,
    pub group_urls: Vec<GroupUrl>,
}

const KIND: ObjectKind = ObjectKind::ConnectionProfile;

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<ConnectionProfile, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<ConnectionProfile>::create(conn, (domain_id, policy_id), id).await?;
    super::policies::require(change.conn(), domain_id, policy_id).await?;
    sqlx::query!(
        "INSERT INTO connection_profiles (id, policy_id, name, group_policy_id, authentication_method)
         VALUES ($1, $2, $3, $4, 'AAA_ONLY')",
        id,
        policy_id,
        input.name,
        input.group_policy_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "create a connection profile"))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.created(actor).await
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
) -> Result<ConnectionProfile, DbError> {
    select(exec, domain_id, policy_id, Some(id), Page::ALL)
        .await
        .map_err(DbError::sql("read a connection profile"))?
        .pop()
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
    let items = select(&mut *conn, domain_id, policy_id, None, page)
        .await
        .map_err(DbError::sql("list connection profiles"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM connection_profiles WHERE policy_id = $1"#,
        policy_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count connection profiles"))?;
    Ok(Listed { items, total })
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
    let scope = (domain_id, policy_id);
    let mut change =
        Change::<ConnectionProfile>::open(conn, scope, id, Some(expected_version)).await?;
    sqlx::query!(
        "UPDATE connection_profiles SET name = $2, group_policy_id = $3, version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        input.name,
        input.group_policy_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a connection profile"))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.updated(actor).await
}

pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let scope = (domain_id, policy_id);
    let mut change = Change::<ConnectionProfile>::open(conn, scope, id, expected_version).await?;
    sqlx::query!("DELETE FROM connection_profiles WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a connection profile"))?;
    change.deleted(actor).await
}

/// The profiles of a policy of `domain_id` by name (or the one called `id`), with the
/// names of what they refer to and their lists.
async fn select(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Option<Uuid>,
    page: Page,
) -> Result<Vec<ConnectionProfile>, sqlx::Error> {
    sqlx::query_as!(
        ConnectionProfileRow,
        r#"SELECT p.id, p.policy_id, p.name, p.description, p.authentication_method,
                  p.authentication_server_type, p.authentication_server_name, p.fallback_to_local,
                  p.enable_multiple_certificate_authentication, p.username_from_certificate_source,
                  p.map_entire_dn_as_username, p.username_primary_field, p.username_secondary_field,
                  p.prefill_username, p.hide_username, p.strip_realm, p.strip_group, p.version,
                  p.created_at, p.updated_at,
                  (SELECT json_build_object('id', g.id, 'name', g.name) FROM group_policies g
                    WHERE g.id = p.group_policy_id) AS "group_policy!: Json<Reference>",
                  COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
                            FROM connection_profile_ipv4_pools x JOIN ipv4_address_pools o ON o.id = x.pool_id
                            WHERE x.profile_id = p.id), '[]') AS "ipv4_pools!: Json<Vec<Reference>>",
                  COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
                            FROM connection_profile_ipv6_pools x JOIN ipv6_address_pools o ON o.id = x.pool_id
                            WHERE x.profile_id = p.id), '[]') AS "ipv6_pools!: Json<Vec<Reference>>",
                  COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
                            FROM connection_profile_trustpoints x JOIN cert_enrollments o ON o.id = x.cert_enrollment_id
                            WHERE x.profile_id = p.id), '[]') AS "trustpoints!: Json<Vec<Reference>>",
                  COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
                            FROM connection_profile_trustpoints x JOIN cert_enrollments o ON o.id = x.cert_enrollment_id
                            WHERE x.profile_id = p.id AND x.machine_certificates), '[]')
                    AS "machine_trustpoints!: Json<Vec<Reference>>",
                  COALESCE((SELECT json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY x.position)
                            FROM connection_profile_trustpoints x JOIN cert_enrollments o ON o.id = x.cert_enrollment_id
                            WHERE x.profile_id = p.id AND x.user_certificates), '[]')
                    AS "user_trustpoints!: Json<Vec<Reference>>",
                  COALESCE((SELECT json_agg(json_build_object('name', x.alias_name, 'enabled', x.enabled) ORDER BY x.position)
                            FROM connection_profile_aliases x WHERE x.profile_id = p.id), '[]')
                    AS "group_aliases!: Json<Vec<GroupAlias>>",
                  COALESCE((SELECT json_agg(json_build_object('url', x.url, 'enabled', x.enabled) ORDER BY x.position)
                            FROM connection_profile_urls x WHERE x.profile_id = p.id), '[]')
                    AS "group_urls!: Json<Vec<GroupUrl>>"
           FROM connection_profiles p
           WHERE p.policy_id = $1 AND ($2::uuid IS NULL OR p.id = $2)
             AND EXISTS (SELECT 1 FROM ravpn_policies r WHERE r.id = p.policy_id AND r.domain_id = $3)
           ORDER BY p.name OFFSET $4 LIMIT $5"#,
        policy_id,
        id,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(ConnectionProfile::try_from)
    .fetch_all(exec)
    .await
}

/// Writes every field but the name and group policy, and replaces the lists.
async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<(), DbError> {
    require_references(&mut *conn, domain_id, input).await?;
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
    sqlx::query!(
        "UPDATE connection_profiles SET description = $2, authentication_method = $3,
            authentication_server_type = $4, authentication_server_name = $5, fallback_to_local = $6,
            enable_multiple_certificate_authentication = $7, username_from_certificate_source = $8,
            map_entire_dn_as_username = $9, username_primary_field = $10, username_secondary_field = $11,
            prefill_username = $12, hide_username = $13, strip_realm = $14, strip_group = $15
         WHERE id = $1",
        id,
        input.description,
        super::enum_text(&aaa.authentication_method),
        server_type,
        server_name,
        aaa.fallback_to_local,
        aaa.enable_multiple_certificate_authentication,
        super::enum_text(&aaa.username_from_certificate_source),
        entire_dn,
        primary,
        secondary,
        aaa.prefill_username,
        aaa.hide_username,
        aaa.strip_realm,
        aaa.strip_group,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a connection profile"))?;

    sqlx::query!(
        "WITH ipv4 AS (DELETE FROM connection_profile_ipv4_pools WHERE profile_id = $1),
              ipv6 AS (DELETE FROM connection_profile_ipv6_pools WHERE profile_id = $1),
              trustpoints AS (DELETE FROM connection_profile_trustpoints WHERE profile_id = $1),
              aliases AS (DELETE FROM connection_profile_aliases WHERE profile_id = $1)
         DELETE FROM connection_profile_urls WHERE profile_id = $1",
        id,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::sql("clear a connection profile's lists"))?;
    let alias_names: Vec<String> = input.group_aliases.iter().map(|a| a.name.clone()).collect();
    let alias_enabled: Vec<bool> = input.group_aliases.iter().map(|a| a.enabled).collect();
    let urls: Vec<String> = input.group_urls.iter().map(|u| u.url.clone()).collect();
    let url_enabled: Vec<bool> = input.group_urls.iter().map(|u| u.enabled).collect();
    let slot = |ids: &[Uuid]| -> Vec<bool> {
        input
            .trustpoint_ids
            .iter()
            .map(|id| ids.contains(id))
            .collect()
    };
    let machine_slot = slot(&input.machine_trustpoint_ids);
    let user_slot = slot(&input.user_trustpoint_ids);
    sqlx::query!(
        "WITH ipv4 AS (
             INSERT INTO connection_profile_ipv4_pools (profile_id, position, pool_id)
             SELECT $1, ord::int, ref FROM unnest($2::uuid[]) WITH ORDINALITY AS t(ref, ord)),
         ipv6 AS (
             INSERT INTO connection_profile_ipv6_pools (profile_id, position, pool_id)
             SELECT $1, ord::int, ref FROM unnest($3::uuid[]) WITH ORDINALITY AS t(ref, ord)),
         trustpoints AS (
             INSERT INTO connection_profile_trustpoints
                 (profile_id, position, cert_enrollment_id, machine_certificates, user_certificates)
             SELECT $1, ord::int, ref, machine, usr
             FROM unnest($4::uuid[], $9::bool[], $10::bool[]) WITH ORDINALITY AS t(ref, machine, usr, ord)),
         aliases AS (
             INSERT INTO connection_profile_aliases (profile_id, position, alias_name, enabled)
             SELECT $1, ord::int, name, enabled
             FROM unnest($5::text[], $6::bool[]) WITH ORDINALITY AS t(name, enabled, ord))
         INSERT INTO connection_profile_urls (profile_id, position, url, enabled)
         SELECT $1, ord::int, url, enabled
         FROM unnest($7::text[], $8::bool[]) WITH ORDINALITY AS t(url, enabled, ord)",
        id,
        &input.ipv4_pool_ids,
        &input.ipv6_pool_ids,
        &input.trustpoint_ids,
        &alias_names,
        &alias_enabled,
        &urls,
        &url_enabled,
        &machine_slot,
        &user_slot,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "write a connection profile's lists",
    ))?;
    Ok(())
}

/// Every object the profile names exists in the domain, and its trustpoints are CA-only.
async fn require_references(
    conn: &mut PgConnection,
    domain_id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<(), DbError> {
    let group_policy = [input.group_policy_id];
    let found = sqlx::query_scalar!(
        "SELECT id FROM group_policies WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &group_policy[..],
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::GroupPolicy, &group_policy, &found)?;
    let found = sqlx::query_scalar!(
        "SELECT id FROM ipv4_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &input.ipv4_pool_ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::Ipv4AddressPool, &input.ipv4_pool_ids, &found)?;
    let found = sqlx::query_scalar!(
        "SELECT id FROM ipv6_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &input.ipv6_pool_ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::Ipv6AddressPool, &input.ipv6_pool_ids, &found)?;
    let trustpoints = sqlx::query!(
        "SELECT id, kind FROM cert_enrollments WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &input.trustpoint_ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    let found: Vec<Uuid> = trustpoints.iter().map(|t| t.id).collect();
    super::require_found(ObjectKind::CertEnrollment, &input.trustpoint_ids, &found)?;
    if let Some(identity) = trustpoints.iter().find(|t| t.kind != "CA_ONLY") {
        return Err(DbError::WrongReference {
            kind: ObjectKind::CertEnrollment,
            id: identity.id,
            expected: "a CA-only trustpoint",
        });
    }
    Ok(())
}

impl Versioned for ConnectionProfile {
    const KIND: ObjectKind = KIND;
    /// (domain, policy): profiles live in a policy of a domain.
    type Scope = (Uuid, Uuid);

    async fn lock_version(
        conn: &mut PgConnection,
        (domain_id, policy_id): (Uuid, Uuid),
        id: Uuid,
    ) -> Result<Option<i32>, DbError> {
        super::policies::require(&mut *conn, domain_id, policy_id).await?;
        sqlx::query_scalar!(
            "SELECT version FROM connection_profiles WHERE id = $1 AND policy_id = $2 FOR UPDATE",
            id,
            policy_id,
        )
        .fetch_optional(conn)
        .await
        .map_err(DbError::sql("lock a connection profile"))
    }

    async fn load(
        conn: &mut PgConnection,
        (domain_id, policy_id): (Uuid, Uuid),
        id: Uuid,
    ) -> Result<Self, DbError> {
        get(conn, domain_id, policy_id, id).await
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn audit_domain(&self, (domain_id, _): (Uuid, Uuid)) -> Uuid {
        domain_id
    }
}

/// A `connection_profiles` row as stored, with its references and lists.
struct ConnectionProfileRow {
    id: Uuid,
    policy_id: Uuid,
    name: String,
    description: String,
    authentication_method: String,
    authentication_server_type: String,
    authentication_server_name: Option<String>,
    fallback_to_local: bool,
    enable_multiple_certificate_authentication: bool,
    username_from_certificate_source: String,
    map_entire_dn_as_username: bool,
    username_primary_field: Option<String>,
    username_secondary_field: Option<String>,
    prefill_username: bool,
    hide_username: bool,
    strip_realm: bool,
    strip_group: bool,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    group_policy: Json<Reference>,
    ipv4_pools: Json<Vec<Reference>>,
    ipv6_pools: Json<Vec<Reference>>,
    trustpoints: Json<Vec<Reference>>,
    machine_trustpoints: Json<Vec<Reference>>,
    user_trustpoints: Json<Vec<Reference>>,
    group_aliases: Json<Vec<GroupAlias>>,
    group_urls: Json<Vec<GroupUrl>>,
}

impl TryFrom<ConnectionProfileRow> for ConnectionProfile {
    type Error = sqlx::Error;

    fn try_from(row: ConnectionProfileRow) -> Result<Self, sqlx::Error> {
        let authentication_server = match (
            row.authentication_server_type.as_str(),
            row.authentication_server_name,
        ) {
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
        let username_mapping = if row.map_entire_dn_as_username {
            UsernameMapping::EntireDn
        } else {
            UsernameMapping::SpecificField {
                primary: super::enum_from_text::<CertificateField>(
                    "username_primary_field",
                    row.username_primary_field.unwrap_or_default(),
                )?,
                secondary: row
                    .username_secondary_field
                    .map(|field| {
                        super::enum_from_text::<CertificateField>("username_secondary_field", field)
                    })
                    .transpose()?,
            }
        };
        let aaa = AaaSettings {
            authentication_method: super::enum_from_text(
                "authentication_method",
                row.authentication_method,
            )?,
            authentication_server,
            fallback_to_local: row.fallback_to_local,
            enable_multiple_certificate_authentication: row
                .enable_multiple_certificate_authentication,
            username_from_certificate_source: super::enum_from_text(
                "username_from_certificate_source",
                row.username_from_certificate_source,
            )?,
            username_mapping,
            prefill_username: row.prefill_username,
            hide_username: row.hide_username,
            strip_realm: row.strip_realm,
            strip_group: row.strip_group,
        };
        Ok(Self {
            id: row.id,
            policy_id: row.policy_id,
            name: row.name,
            description: row.description,
            group_policy: row.group_policy.0,
            ipv4_pools: row.ipv4_pools.0,
            ipv6_pools: row.ipv6_pools.0,
            trustpoints: row.trustpoints.0,
            machine_trustpoints: row.machine_trustpoints.0,
            user_trustpoints: row.user_trustpoints.0,
            aaa,
            group_aliases: row.group_aliases.0,
            group_urls: row.group_urls.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
