//! Registered applications.
use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::domain::app::{AccessTokenFormat, App, NewApp};
use crate::domain::client_metadata::{
    GrantTypes, ResponseType, SigningAlgorithm, TokenEndpointAuthMethod,
};
use crate::domain::id::AppId;
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::Digest;

pub(crate) const COLUMNS: &str = "id, client_id, client_secret_digest, name, website, redirect_uris, scopes, \
                       access_token_format, is_resource_server, may_use_admin_scopes, created_at, \
                       token_endpoint_auth_method, grant_types, response_types, \
                       id_token_signed_response_alg, post_logout_redirect_uris";

/// The app of a row holding `COLUMNS`.
pub(crate) fn app_from_row(row: &Row) -> Result<App, StoreError> {
    let digest: Vec<u8> = row.try_get("client_secret_digest")?;
    let scopes: Vec<String> = row.try_get("scopes")?;
    let format: String = row.try_get("access_token_format")?;
    let uris: Vec<String> = row.try_get("redirect_uris")?;
    let method: String = row.try_get("token_endpoint_auth_method")?;
    let grants: Vec<String> = row.try_get("grant_types")?;
    let responses: Vec<String> = row.try_get("response_types")?;
    let alg: Option<String> = row.try_get("id_token_signed_response_alg")?;
    let logout_uris: Vec<String> = row.try_get("post_logout_redirect_uris")?;
    // Validated before they were stored; failing here means a hand edit.
    let malformed = |what: &str, value: &str| StoreError::Malformed(format!("{what} {value:?}"));
    Ok(App {
        token_endpoint_auth_method: TokenEndpointAuthMethod::parse(&method)
            .ok_or_else(|| malformed("token endpoint auth method", &method))?,
        grant_types: GrantTypes::parse(&grants).map_err(|g| malformed("grant type", &g))?,
        response_types: responses
            .iter()
            .map(|r| ResponseType::parse(r).ok_or_else(|| malformed("response type", r)))
            .collect::<Result<_, _>>()?,
        id_token_signed_response_alg: alg
            .map(|a| SigningAlgorithm::parse(&a).ok_or_else(|| malformed("id token alg", &a)))
            .transpose()?,
        post_logout_redirect_uris: logout_uris
            .into_iter()
            .map(RedirectUri::from_registered)
            .collect(),
        id: AppId::new(row.try_get("id")?),
        client_id: row.try_get("client_id")?,
        client_secret_digest: Digest::from_slice(&digest)
            .ok_or_else(|| StoreError::Malformed("client secret digest".into()))?,
        name: row.try_get("name")?,
        website: row.try_get("website")?,
        redirect_uris: uris.into_iter().map(RedirectUri::from_registered).collect(),
        scopes: parse_stored_scopes(&scopes)?,
        access_token_format: AccessTokenFormat::parse(&format)
            .map_err(|_| StoreError::Malformed(format!("unknown token format {format:?}")))?,
        is_resource_server: row.try_get("is_resource_server")?,
        may_use_admin_scopes: row.try_get("may_use_admin_scopes")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Scopes were validated before they were stored; failing here means the
/// database was edited by hand, which is worth an error rather than a guess.
pub(crate) fn parse_stored_scopes(scopes: &[String]) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse_list(scopes).map_err(|e| StoreError::Malformed(format!("stored scopes: {e}")))
}

pub(crate) fn scopes_to_sql(scopes: &ScopeSet) -> Vec<String> {
    scopes.to_vec_strings()
}

impl Store {
    pub async fn insert_app(
        &self,
        app: &NewApp,
        client_id: &str,
        secret_digest: &Digest,
    ) -> Result<App, StoreError> {
        let sql = format!(
            "INSERT INTO apps (client_id, client_secret_digest, name, website, redirect_uris, scopes, access_token_format,
                               token_endpoint_auth_method, grant_types, response_types,
                               id_token_signed_response_alg, post_logout_redirect_uris)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
        );
        let uris: Vec<&str> = app.redirect_uris.iter().map(RedirectUri::as_str).collect();
        let logout_uris: Vec<&str> = app
            .post_logout_redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect();
        let responses: Vec<&str> = app.response_types.iter().map(|r| r.as_str()).collect();
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        let row = conn
            .query_one(
                &stmt,
                &[
                    &client_id,
                    &secret_digest.as_bytes().as_slice(),
                    &app.name,
                    &app.website,
                    &uris,
                    &scopes_to_sql(&app.scopes),
                    &app.access_token_format.as_str(),
                    &app.token_endpoint_auth_method.as_str(),
                    &app.grant_types.to_vec_strings(),
                    &responses,
                    &app.id_token_signed_response_alg.map(|a| a.as_str()),
                    &logout_uris,
                ],
            )
            .await?;
        app_from_row(&row)
    }

    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        if !crate::domain::text::storable(client_id) {
            // No stored row can hold a NUL; PostgreSQL would refuse it.
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE client_id = $1");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&client_id])
            .await?
            .map(|row| app_from_row(&row))
            .transpose()
    }

    pub async fn app_by_id(&self, id: AppId) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE id = $1");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&id.get()])
            .await?
            .map(|row| app_from_row(&row))
            .transpose()
    }

    pub async fn set_resource_server(
        &self,
        client_id: &str,
        resource_server: bool,
    ) -> Result<Option<App>, StoreError> {
        self.set_app_flag(client_id, "is_resource_server", resource_server)
            .await
    }

    pub async fn set_app_admin_scopes(
        &self,
        client_id: &str,
        allowed: bool,
    ) -> Result<Option<App>, StoreError> {
        self.set_app_flag(client_id, "may_use_admin_scopes", allowed)
            .await
    }

    /// Sets one boolean column of the app with `client_id`; `column` is
    /// one of ours, never input.
    async fn set_app_flag(
        &self,
        client_id: &str,
        column: &'static str,
        value: bool,
    ) -> Result<Option<App>, StoreError> {
        if !crate::domain::text::storable(client_id) {
            // No stored row can hold a NUL; PostgreSQL would refuse it.
            return Ok(None);
        }
        let sql = format!("UPDATE apps SET {column} = $2 WHERE client_id = $1 RETURNING {COLUMNS}");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&client_id, &value])
            .await?
            .map(|row| app_from_row(&row))
            .transpose()
    }
}
