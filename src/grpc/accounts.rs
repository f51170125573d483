//! authd.v1.Sessions and authd.v1.Accounts over `AuthService`.
use tonic::{Request, Response, Status};

use super::convert;
use super::metadata::{bearer_token, client_ip};
use crate::domain::client_ip::TrustedProxies;
use crate::domain::secret::Secret;
use crate::domain::time::unix_seconds;
use crate::proto::v1;
use crate::proto::v1::accounts_server::Accounts;
use crate::proto::v1::end_session_response::Outcome;
use crate::proto::v1::sessions_server::Sessions;
use crate::proto::v1::userinfo::Answer;
use crate::service::AuthService;
use crate::service::accounts::{AccountPurpose, AccountRegistration};
use crate::service::oidc::{EndSession, EndSessionRequest, Userinfo};

pub struct SessionsService {
    pub service: AuthService,
    pub trusted_proxies: TrustedProxies,
}

#[tonic::async_trait]
impl Sessions for SessionsService {
    async fn login(
        &self,
        request: Request<v1::LoginRequest>,
    ) -> Result<Response<v1::LoginResponse>, Status> {
        let client_ip = client_ip(&request, &self.trusted_proxies);
        let r = request.into_inner();
        let opened = self
            .service
            .login(&r.email, &Secret::new(r.password), client_ip)
            .await?;
        Ok(Response::new(v1::LoginResponse {
            session: opened.session.expose().to_owned(),
            account: Some(convert::account(&opened.account)),
            expires_at: unix_seconds(opened.expires_at),
        }))
    }

    async fn logout(
        &self,
        request: Request<v1::LogoutRequest>,
    ) -> Result<Response<v1::LogoutResponse>, Status> {
        self.service
            .logout(&Secret::new(request.into_inner().session))
            .await?;
        Ok(Response::new(v1::LogoutResponse {}))
    }

    async fn get_session(
        &self,
        request: Request<v1::GetSessionRequest>,
    ) -> Result<Response<v1::Session>, Status> {
        let session = self
            .service
            .get_session(&Secret::new(request.into_inner().session))
            .await?;
        Ok(Response::new(v1::Session {
            account: Some(convert::account(&session.account)),
            expires_at: unix_seconds(session.expires_at),
        }))
    }

    async fn end_session(
        &self,
        request: Request<v1::EndSessionRequest>,
    ) -> Result<Response<v1::EndSessionResponse>, Status> {
        let r = request.into_inner();
        let request = EndSessionRequest {
            session: (!r.session.is_empty()).then(|| Secret::new(r.session)),
            id_token_hint: r.id_token_hint,
            client_id: r.client_id,
            post_logout_redirect_uri: r.post_logout_redirect_uri,
            state: r.state,
            confirmed: r.confirmed,
        };
        let outcome = match self.service.end_session(&request).await? {
            EndSession::ConfirmationNeeded { client_name } => {
                Outcome::ConfirmationNeeded(v1::LogoutConfirmation {
                    client_name: client_name.unwrap_or_default(),
                })
            }
            EndSession::SignedOut { redirect_to } => Outcome::SignedOut(v1::SignedOut {
                redirect_to: redirect_to.unwrap_or_default(),
            }),
        };
        Ok(Response::new(v1::EndSessionResponse {
            outcome: Some(outcome),
        }))
    }
}

pub struct AccountsService {
    pub service: AuthService,
}

#[tonic::async_trait]
impl Accounts for AccountsService {
    async fn create_account(
        &self,
        request: Request<v1::CreateAccountRequest>,
    ) -> Result<Response<v1::Account>, Status> {
        let token = bearer_token(&request, "");
        let r = request.into_inner();
        let account = self
            .service
            .create_account(
                &token,
                &AccountRegistration {
                    username: r.username,
                    email: r.email,
                    password: r.password,
                    admin: r.admin,
                },
            )
            .await?;
        Ok(Response::new(convert::account(&account)))
    }

    async fn get_account(
        &self,
        request: Request<v1::GetAccountRequest>,
    ) -> Result<Response<v1::Account>, Status> {
        let token = bearer_token(&request, "");
        let account = self
            .service
            .get_account(&token, &request.get_ref().id)
            .await?;
        Ok(Response::new(convert::account(&account)))
    }

    async fn disable_account(
        &self,
        request: Request<v1::DisableAccountRequest>,
    ) -> Result<Response<v1::Account>, Status> {
        let token = bearer_token(&request, "");
        let r = request.get_ref();
        let account = crate::service::admin::AccountRef::from_fields(&r.id, &r.username)?;
        let account = self
            .service
            .set_account_disabled(
                crate::service::admin::AdminCaller::Bearer(&token),
                &account,
                true,
            )
            .await?;
        Ok(Response::new(convert::account(&account)))
    }

    async fn enable_account(
        &self,
        request: Request<v1::EnableAccountRequest>,
    ) -> Result<Response<v1::Account>, Status> {
        super::admin::enable_account(&self.service, request).await
    }

    async fn reset_account_password(
        &self,
        request: Request<v1::ResetAccountPasswordRequest>,
    ) -> Result<Response<v1::ResetAccountPasswordResponse>, Status> {
        super::admin::reset_account_password(&self.service, request).await
    }

    async fn verify_account_credentials(
        &self,
        request: Request<v1::VerifyAccountCredentialsRequest>,
    ) -> Result<Response<v1::Account>, Status> {
        let token = bearer_token(&request, &request.get_ref().access_token);
        let purpose = match request.get_ref().purpose() {
            v1::AccountPurpose::VerifyCredentials => AccountPurpose::VerifyCredentials,
            v1::AccountPurpose::Userinfo => AccountPurpose::Userinfo,
        };
        let account = self
            .service
            .verify_account_credentials(&token, purpose)
            .await?;
        Ok(Response::new(convert::account(&account)))
    }

    async fn get_userinfo(
        &self,
        request: Request<v1::GetUserinfoRequest>,
    ) -> Result<Response<v1::Userinfo>, Status> {
        let token = bearer_token(&request, &request.get_ref().access_token);
        let answer = match self.service.userinfo(&token).await? {
            Userinfo::Mastodon(account) => Answer::Mastodon(convert::account(&account)),
            Userinfo::OpenId { sub, claims } => Answer::Openid(v1::OpenIdUserinfo {
                sub,
                name: claims.name,
                preferred_username: claims.preferred_username,
                email: claims.email,
                email_verified: claims.email_verified,
            }),
        };
        Ok(Response::new(v1::Userinfo {
            answer: Some(answer),
        }))
    }
}
