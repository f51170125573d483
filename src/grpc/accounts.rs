//! authd.v1.Sessions and authd.v1.Accounts over `AuthService`.
use tonic::{Request, Response, Status};

use super::convert;
use super::metadata::{bearer_token, client_ip};
use crate::domain::client_ip::TrustedProxies;
use crate::domain::secret::Secret;
use crate::domain::time::unix_seconds;
use crate::proto::v1;
use crate::proto::v1::accounts_server::Accounts;
use crate::proto::v1::sessions_server::Sessions;
use crate::service::AuthService;
use crate::service::accounts::{AccountPurpose, AccountRegistration};

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
}
