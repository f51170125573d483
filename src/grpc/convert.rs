//! Domain and store values into their protobuf messages.
use crate::domain::account::Account;
use crate::domain::app::App;
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::time::unix_seconds;
use crate::proto::v1;

pub fn app(app: &App) -> v1::App {
    v1::App {
        id: app.id.to_string(),
        name: app.name.clone(),
        website: app.website.clone().unwrap_or_default(),
        scopes: app.scopes.to_vec_strings(),
        redirect_uris: app
            .redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .map(str::to_owned)
            .collect(),
        client_id: app.client_id.clone(),
        access_token_format: app.access_token_format.as_str().to_owned(),
        resource_server: app.is_resource_server,
        created_at: unix_seconds(app.created_at),
        admin_scopes: app.may_use_admin_scopes,
        token_endpoint_auth_method: app.token_endpoint_auth_method.as_str().to_owned(),
        grant_types: app.grant_types.to_vec_strings(),
        response_types: app
            .response_types
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        id_token_signed_response_alg: app
            .id_token_signed_response_alg
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        post_logout_redirect_uris: app
            .post_logout_redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
    }
}

pub fn account(account: &Account) -> v1::Account {
    v1::Account {
        id: account.id.to_string(),
        username: account.username.clone(),
        email: account.email.clone(),
        admin: account.is_admin,
        disabled: account.is_disabled(),
        created_at: unix_seconds(account.created_at),
    }
}
