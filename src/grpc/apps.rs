//! authd.v1.Apps over `AuthService`.
use tonic::{Request, Response, Status};

use super::convert;
use super::metadata::{bearer_token, client_ip};
use crate::domain::app::AppRegistration;
use crate::domain::client_ip::TrustedProxies;
use crate::domain::client_metadata::RegistrationProfile;
use crate::proto::v1;
use crate::proto::v1::apps_server::Apps;
use crate::service::AuthService;
use crate::service::admin::AdminCaller;

pub struct AppsService {
    pub service: AuthService,
    pub trusted_proxies: TrustedProxies,
}

#[tonic::async_trait]
impl Apps for AppsService {
    async fn register_app(
        &self,
        request: Request<v1::RegisterAppRequest>,
    ) -> Result<Response<v1::RegisterAppResponse>, Status> {
        let client_ip = client_ip(&request, &self.trusted_proxies);
        let r = request.into_inner();
        let profile = match r.profile() {
            v1::RegistrationProfile::Mastodon => RegistrationProfile::Mastodon,
            v1::RegistrationProfile::Rfc7591 => RegistrationProfile::Rfc7591,
        };
        let registered = self
            .service
            .register_app(
                &AppRegistration {
                    client_name: r.client_name,
                    redirect_uris: r.redirect_uris,
                    scopes: r.scopes,
                    website: r.website,
                    access_token_format: r.access_token_format,
                    profile,
                    token_endpoint_auth_method: r.token_endpoint_auth_method,
                    grant_types: r.grant_types,
                    response_types: r.response_types,
                    id_token_signed_response_alg: r.id_token_signed_response_alg,
                    post_logout_redirect_uris: r.post_logout_redirect_uris,
                },
                client_ip,
            )
            .await?;
        Ok(Response::new(v1::RegisterAppResponse {
            client_id: registered.app.client_id.clone(),
            client_secret: registered
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            client_secret_expires_at: 0,
            app: Some(convert::app(&registered.app)),
        }))
    }

    async fn verify_app_credentials(
        &self,
        request: Request<v1::VerifyAppCredentialsRequest>,
    ) -> Result<Response<v1::App>, Status> {
        let token = bearer_token(&request, &request.get_ref().access_token);
        let app = self.service.verify_app_credentials(&token).await?;
        let mut app = convert::app(&app);
        // The Application entity of verify_credentials carries no credentials.
        app.client_id.clear();
        Ok(Response::new(app))
    }

    async fn set_resource_server(
        &self,
        request: Request<v1::SetResourceServerRequest>,
    ) -> Result<Response<v1::App>, Status> {
        let token = bearer_token(&request, "");
        let r = request.get_ref();
        let app = self
            .service
            .set_resource_server(AdminCaller::Bearer(&token), &r.client_id, r.resource_server)
            .await?;
        Ok(Response::new(convert::app(&app)))
    }
}
