//! Registering applications and reading them back.
use super::AuthService;
use super::admin::AdminCaller;
use super::cache::Invalidation;
use crate::domain::app::App;
use crate::domain::app::{AppRegistration, NewApp};
use crate::domain::error::AuthError;
use crate::domain::scope::Scope;
use crate::domain::secret::{Secret, random_token};

/// A newly registered app with its secret, which exists only here; a
/// public client has none.
pub struct RegisteredApp {
    pub app: App,
    pub client_secret: Option<Secret>,
}

impl AuthService {
    /// Registers an app. Every attempt counts against the per-address
    /// limit before its input is read, as Mastodon's rack-attack counts
    /// every POST /api/v1/apps: parsing is bounded work, but it is work,
    /// and a flood of invalid registrations must not be free.
    pub async fn register_app(
        &self,
        input: &AppRegistration,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<RegisteredApp, AuthError> {
        if let Some(key) = client_ip.and_then(super::throttle::counted_address) {
            let _counted = self.throttles().app_registration_by_ip.attempt(&key)?;
        }
        let app = NewApp::parse(input)?;
        let client_id = random_token();
        let client_secret = Secret::generate();
        // A public client gets no secret, but its row still holds the
        // digest of a random one that is thrown away: no presented secret
        // can match it, and the column keeps its meaning.
        let record = self
            .store()
            .insert_app(&app, &client_id, &client_secret.digest())
            .await?;
        let client_secret = (!app.token_endpoint_auth_method.is_public()).then_some(client_secret);
        tracing::info!(app_id = %record.id, client_id = %record.client_id, name = %record.name, "registered app");
        Ok(RegisteredApp {
            app: record,
            client_secret,
        })
    }

    /// The app that owns an active bearer token.
    pub async fn verify_app_credentials(&self, bearer: &str) -> Result<App, AuthError> {
        let ctx = self.authenticate_bearer(bearer).await?;
        Ok(ctx.app)
    }

    /// Marks an app as a resource server (or not): for admins, and for the
    /// operator at the command line (`authd app resource-server`).
    pub async fn set_resource_server(
        &self,
        caller: AdminCaller<'_>,
        client_id: &str,
        resource_server: bool,
    ) -> Result<App, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let app = self
            .store()
            .set_resource_server(client_id, resource_server)
            .await?
            .ok_or_else(|| AuthError::not_found("No application has that client_id"))?;
        self.cache().invalidate(&Invalidation::App(app.id));
        tracing::info!(
            by = %actor,
            client_id,
            resource_server,
            "changed resource server flag"
        );
        Ok(app)
    }
}
