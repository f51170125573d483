//! authd.v1.Admin over `AuthService`, and the administrative RPCs of
//! authd.v1.Accounts (enable, reset a password).
use tonic::{Request, Response, Status};

use super::convert;
use super::metadata::bearer_token;
use crate::domain::error::AuthError;
use crate::domain::id::AppId;
use crate::domain::time::unix_seconds;
use crate::proto::v1;
use crate::proto::v1::admin_server::Admin;
use crate::proto::v1::revoke_tokens_request::Owner;
use crate::service::AuthService;
use crate::service::admin::{AccountRef, AdminCaller, TokenOwner};
use crate::service::jwt::KeyInfo;

pub struct AdminService {
    pub service: AuthService,
}

fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

pub fn signing_key(key: &KeyInfo) -> v1::SigningKey {
    v1::SigningKey {
        kid: key.kid.clone(),
        algorithm: key.algorithm.as_str().to_owned(),
        created_at: unix_seconds(key.created_at),
        retired_at: key.retired_at.map_or(0, unix_seconds),
        published_until: key.published_until.map_or(0, unix_seconds),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_apps(
        &self,
        request: Request<v1::ListAppsRequest>,
    ) -> Result<Response<v1::ListAppsResponse>, Status> {
        let token = bearer_token(&request, "");
        let r = request.get_ref();
        let after = match r.page_token.as_str() {
            "" => None,
            t => Some(
                t.parse::<AppId>()
                    .map_err(|_| AuthError::invalid_request("The page_token is not valid."))?,
            ),
        };
        let page = self
            .service
            .list_apps(AdminCaller::Bearer(&token), after, r.page_size)
            .await?;
        Ok(Response::new(v1::ListAppsResponse {
            apps: page.apps.iter().map(convert::app).collect(),
            next_page_token: page.next_after.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_app(
        &self,
        request: Request<v1::GetAppRequest>,
    ) -> Result<Response<v1::AppDetails>, Status> {
        let token = bearer_token(&request, "");
        let details = self
            .service
            .app_details(AdminCaller::Bearer(&token), &request.get_ref().client_id)
            .await?;
        Ok(Response::new(v1::AppDetails {
            app: Some(convert::app(&details.app)),
            live_grants: details.usage.live_grants,
            active_access_tokens: details.usage.active_access_tokens,
            accounts: details.usage.accounts,
        }))
    }

    async fn delete_app(
        &self,
        request: Request<v1::DeleteAppRequest>,
    ) -> Result<Response<v1::DeleteAppResponse>, Status> {
        let token = bearer_token(&request, "");
        let deleted = self
            .service
            .delete_app(AdminCaller::Bearer(&token), &request.get_ref().client_id)
            .await?;
        Ok(Response::new(v1::DeleteAppResponse {
            app: Some(convert::app(&deleted.app)),
            revoked_grants: count(deleted.revoked_grants),
        }))
    }

    async fn set_app_admin_scopes(
        &self,
        request: Request<v1::SetAppAdminScopesRequest>,
    ) -> Result<Response<v1::App>, Status> {
        let token = bearer_token(&request, "");
        let r = request.get_ref();
        let app = self
            .service
            .set_app_admin_scopes(AdminCaller::Bearer(&token), &r.client_id, r.allowed)
            .await?;
        Ok(Response::new(convert::app(&app)))
    }

    async fn revoke_tokens(
        &self,
        request: Request<v1::RevokeTokensRequest>,
    ) -> Result<Response<v1::RevokeTokensResponse>, Status> {
        let token = bearer_token(&request, "");
        let owner = match &request.get_ref().owner {
            Some(Owner::AccountId(id)) => TokenOwner::Account(AccountRef::from_fields(id, "")?),
            Some(Owner::Username(name)) => TokenOwner::Account(AccountRef::from_fields("", name)?),
            Some(Owner::ClientId(client_id)) => TokenOwner::App {
                client_id: client_id.clone(),
            },
            None => {
                return Err(AuthError::invalid_request(
                    "Name the account (account_id or username) or the app (client_id).",
                )
                .into());
            }
        };
        let revoked = self
            .service
            .revoke_tokens(AdminCaller::Bearer(&token), &owner)
            .await?;
        Ok(Response::new(v1::RevokeTokensResponse {
            revoked_grants: count(revoked.grants),
            deleted_codes: count(revoked.codes),
        }))
    }

    async fn list_signing_keys(
        &self,
        request: Request<v1::ListSigningKeysRequest>,
    ) -> Result<Response<v1::ListSigningKeysResponse>, Status> {
        let token = bearer_token(&request, "");
        let keys = self
            .service
            .signing_keys(AdminCaller::Bearer(&token))
            .await?;
        Ok(Response::new(v1::ListSigningKeysResponse {
            keys: keys.iter().map(signing_key).collect(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<v1::RotateSigningKeyRequest>,
    ) -> Result<Response<v1::RotateSigningKeyResponse>, Status> {
        let token = bearer_token(&request, "");
        let rotation = self
            .service
            .rotate_signing_key(AdminCaller::Bearer(&token))
            .await?;
        Ok(Response::new(v1::RotateSigningKeyResponse {
            key: rotation.access_token_key().map(signing_key),
            retired: rotation.retired.iter().map(signing_key).collect(),
            keys: rotation.keys.iter().map(signing_key).collect(),
        }))
    }
}

/// Accounts.EnableAccount.
pub async fn enable_account(
    service: &AuthService,
    request: Request<v1::EnableAccountRequest>,
) -> Result<Response<v1::Account>, Status> {
    let token = bearer_token(&request, "");
    let r = request.get_ref();
    let account = AccountRef::from_fields(&r.id, &r.username)?;
    let account = service
        .set_account_disabled(AdminCaller::Bearer(&token), &account, false)
        .await?;
    Ok(Response::new(convert::account(&account)))
}

/// Accounts.ResetAccountPassword.
pub async fn reset_account_password(
    service: &AuthService,
    request: Request<v1::ResetAccountPasswordRequest>,
) -> Result<Response<v1::ResetAccountPasswordResponse>, Status> {
    let token = bearer_token(&request, "");
    let r = request.get_ref();
    let account = AccountRef::from_fields(&r.id, &r.username)?;
    let (account, reset) = service
        .reset_password(
            AdminCaller::Bearer(&token),
            &account,
            &r.password,
            r.keep_tokens,
        )
        .await?;
    Ok(Response::new(v1::ResetAccountPasswordResponse {
        account: Some(convert::account(&account)),
        ended_sessions: count(reset.ended_sessions),
        revoked_grants: count(reset.revoked.grants),
    }))
}
