//! authd.v1.OAuth over `AuthService`.
use tonic::{Request, Response, Status};

use super::convert;
use super::metadata::client_credentials;
use crate::domain::secret::Secret;
use crate::domain::time::unix_seconds;
use crate::proto::v1;
use crate::proto::v1::o_auth_server::OAuth;
use crate::service::AuthService;
use crate::service::authorize::{
    AuthorizationDecision, AuthorizationRequest, IssuedCode, PreparedAuthorization,
};
use crate::service::introspect::{ActiveToken, TokenTypeHint};
use crate::service::token::TokenRequest;

pub struct OAuthService {
    pub service: AuthService,
}

fn authorization_request(r: v1::AuthorizeRequest) -> AuthorizationRequest {
    AuthorizationRequest {
        session: (!r.session.is_empty()).then(|| Secret::new(r.session)),
        response_type: r.response_type,
        client_id: r.client_id,
        redirect_uri: r.redirect_uri,
        scope: r.scope,
        state: r.state,
        code_challenge: r.code_challenge,
        code_challenge_method: r.code_challenge_method,
        prompt: r.prompt,
        force_login: r.force_login,
        max_age: r.max_age.map(|s| u64::try_from(s).unwrap_or(0)),
        nonce: r.nonce,
        claims: r.claims,
    }
}

/// The request back on the wire, for `LoginRequired.resume`.
fn authorize_request(r: AuthorizationRequest) -> v1::AuthorizeRequest {
    v1::AuthorizeRequest {
        session: r.session.map(|s| s.expose().to_owned()).unwrap_or_default(),
        response_type: r.response_type,
        client_id: r.client_id,
        redirect_uri: r.redirect_uri,
        scope: r.scope,
        state: r.state,
        code_challenge: r.code_challenge,
        code_challenge_method: r.code_challenge_method,
        prompt: r.prompt,
        force_login: r.force_login,
        max_age: r.max_age.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        nonce: r.nonce,
        claims: r.claims,
    }
}

fn consent_needed(prepared: &PreparedAuthorization) -> v1::ConsentNeeded {
    let mut app = convert::app(&prepared.app);
    app.client_id.clear();
    v1::ConsentNeeded {
        deny_redirect: prepared.deny_redirect().unwrap_or_default(),
        app: Some(app),
        account: Some(convert::account(&prepared.account)),
        scope: prepared.scopes.to_string(),
        redirect_uri: prepared.redirect_uri.as_str().to_owned(),
    }
}

fn issued_code(issued: IssuedCode) -> v1::AuthorizeResponse {
    let expires_in = issued.expires_in.as_secs();
    v1::AuthorizeResponse {
        code: issued.code.expose().to_owned(),
        redirect_uri: issued.redirect_uri.as_str().to_owned(),
        state: issued.state,
        scope: issued.scopes.to_string(),
        redirect_to: issued.redirect_to.unwrap_or_default(),
        expires_in: i64::try_from(expires_in).unwrap_or(i64::MAX),
    }
}

impl OAuthService {
    /// The RFC 7662 answer for a token: its facts, or only active=false.
    fn introspection(&self, active: Option<ActiveToken>) -> v1::IntrospectResponse {
        let Some(token) = active else {
            return v1::IntrospectResponse::inactive();
        };
        v1::IntrospectResponse {
            active: Some(true),
            scope: Some(token.scopes.to_string()),
            username: token.username.as_deref().map(str::to_owned),
            token_type: Some(token.token_type().to_owned()),
            exp: token.expires_at.map(unix_seconds),
            iat: Some(token.created_at.get()),
            sub: Some(token.subject()),
            iss: Some(self.service.config().issuer.clone()),
            account_id: token.account_id.map(|id| id.to_string()),
            aud: Some(token.client_id().to_string()),
            client_id: Some(token.client_id().to_string()),
        }
    }
}

#[tonic::async_trait]
impl OAuth for OAuthService {
    async fn prepare_authorization(
        &self,
        request: Request<v1::AuthorizeRequest>,
    ) -> Result<Response<v1::AuthorizationDecision>, Status> {
        use v1::authorization_decision::Outcome;
        let decision = self
            .service
            .decide_authorization(&authorization_request(request.into_inner()))
            .await?;
        let outcome = match decision {
            AuthorizationDecision::LoginRequired { resume } => {
                Outcome::LoginRequired(v1::LoginRequired {
                    resume: Some(authorize_request(resume)),
                })
            }
            AuthorizationDecision::ConsentNeeded(prepared) => {
                Outcome::ConsentNeeded(consent_needed(&prepared))
            }
            AuthorizationDecision::Issued(issued) => Outcome::Issued(issued_code(issued)),
            AuthorizationDecision::InteractionRequired { error, redirect_to } => {
                Outcome::InteractionRequired(v1::InteractionRequired {
                    error: error.to_owned(),
                    redirect_to: redirect_to.unwrap_or_default(),
                })
            }
        };
        Ok(Response::new(v1::AuthorizationDecision {
            outcome: Some(outcome),
        }))
    }

    async fn deny_authorization(
        &self,
        request: Request<v1::AuthorizeRequest>,
    ) -> Result<Response<v1::DenyAuthorizationResponse>, Status> {
        let redirect_to = self
            .service
            .deny_authorization(&authorization_request(request.into_inner()))
            .await?;
        Ok(Response::new(v1::DenyAuthorizationResponse {
            redirect_to: redirect_to.unwrap_or_default(),
        }))
    }

    async fn authorize(
        &self,
        request: Request<v1::AuthorizeRequest>,
    ) -> Result<Response<v1::AuthorizeResponse>, Status> {
        let issued = self
            .service
            .authorize(&authorization_request(request.into_inner()))
            .await?;
        Ok(Response::new(issued_code(issued)))
    }

    async fn exchange_token(
        &self,
        request: Request<v1::ExchangeTokenRequest>,
    ) -> Result<Response<v1::TokenResponse>, Status> {
        let client = {
            let r = request.get_ref();
            client_credentials(&request, &r.client_id, &r.client_secret)?
        };
        let r = request.into_inner();
        let issued = self
            .service
            .exchange(&TokenRequest {
                grant_type: r.grant_type,
                client,
                code: r.code,
                redirect_uri: r.redirect_uri,
                code_verifier: r.code_verifier,
                refresh_token: r.refresh_token,
                scope: r.scope,
            })
            .await?;
        Ok(Response::new(v1::TokenResponse {
            access_token: issued.access_token.expose().to_owned(),
            token_type: "Bearer".into(),
            scope: issued.scopes.to_string(),
            created_at: unix_seconds(issued.created_at),
            expires_in: issued
                .expires_in
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            refresh_token: issued.refresh_token.map(|t| t.expose().to_owned()),
            id_token: issued.id_token,
        }))
    }

    async fn introspect(
        &self,
        request: Request<v1::IntrospectRequest>,
    ) -> Result<Response<v1::IntrospectResponse>, Status> {
        let r = request.get_ref();
        let caller = client_credentials(&request, &r.client_id, &r.client_secret)?;
        let active = self
            .service
            .introspect(
                caller.as_ref(),
                &r.token,
                TokenTypeHint::parse(&r.token_type_hint),
            )
            .await?;
        Ok(Response::new(self.introspection(active)))
    }

    async fn introspect_batch(
        &self,
        request: Request<v1::IntrospectBatchRequest>,
    ) -> Result<Response<v1::IntrospectBatchResponse>, Status> {
        let r = request.get_ref();
        let caller = client_credentials(&request, &r.client_id, &r.client_secret)?;
        let answers = self
            .service
            .introspect_batch(
                caller.as_ref(),
                &r.tokens,
                TokenTypeHint::parse(&r.token_type_hint),
            )
            .await?;
        Ok(Response::new(v1::IntrospectBatchResponse {
            results: answers.into_iter().map(|a| self.introspection(a)).collect(),
        }))
    }

    async fn revoke(
        &self,
        request: Request<v1::RevokeRequest>,
    ) -> Result<Response<v1::RevokeResponse>, Status> {
        let r = request.get_ref();
        let caller = client_credentials(&request, &r.client_id, &r.client_secret)?;
        self.service
            .revoke(
                caller.as_ref(),
                &r.token,
                TokenTypeHint::parse(&r.token_type_hint),
            )
            .await?;
        Ok(Response::new(v1::RevokeResponse {}))
    }

    async fn list_authorized_apps(
        &self,
        request: Request<v1::ListAuthorizedAppsRequest>,
    ) -> Result<Response<v1::ListAuthorizedAppsResponse>, Status> {
        let session = Secret::new(request.into_inner().session);
        let apps = self.service.authorized_apps(&session).await?;
        Ok(Response::new(v1::ListAuthorizedAppsResponse {
            apps: apps
                .iter()
                .map(|a| {
                    let mut app = convert::app(&a.app);
                    app.client_id.clear();
                    v1::AuthorizedApp {
                        app: Some(app),
                        scopes: a.scopes.to_vec_strings(),
                        authorized_at: unix_seconds(a.authorized_at),
                    }
                })
                .collect(),
        }))
    }

    async fn revoke_authorized_app(
        &self,
        request: Request<v1::RevokeAuthorizedAppRequest>,
    ) -> Result<Response<v1::RevokeAuthorizedAppResponse>, Status> {
        let r = request.into_inner();
        self.service
            .revoke_authorized_app(&Secret::new(r.session), &r.app_id)
            .await?;
        Ok(Response::new(v1::RevokeAuthorizedAppResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<v1::GetJwksRequest>,
    ) -> Result<Response<v1::GetJwksResponse>, Status> {
        let jwks = self.service.jwks().await?;
        Ok(Response::new(v1::GetJwksResponse {
            jwks_json: jwks.to_string(),
        }))
    }

    async fn get_server_metadata(
        &self,
        _request: Request<v1::GetServerMetadataRequest>,
    ) -> Result<Response<v1::GetServerMetadataResponse>, Status> {
        let config = self.service.config();
        Ok(Response::new(v1::GetServerMetadataResponse {
            grant_types_supported: config
                .grant_types_supported()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            scopes_supported: crate::domain::scope::Scope::ALL
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            token_endpoint_auth_methods_supported:
                crate::domain::client_metadata::TokenEndpointAuthMethod::ALL
                    .iter()
                    .map(|m| m.as_str().to_owned())
                    .collect(),
            id_token_signing_alg_values_supported:
                crate::domain::signing_key::SigningAlgorithm::ALL
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect(),
            claims_supported: crate::service::oidc::claims_supported()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            prompt_values_supported: crate::service::authorize::PROMPT_VALUES
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            subject_types_supported: vec![crate::service::oidc::SUBJECT_TYPE.to_owned()],
        }))
    }
}
