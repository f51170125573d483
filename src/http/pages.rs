//! The server-rendered pages: login, consent, out-of-band code, error, and
//! authorized applications. They work without JavaScript. maud escapes
//! everything interpolated, so no request value can become markup. The
//! headers that forbid caching and framing are added for every page by
//! `security_headers` in `http::mod`.
use maud::{DOCTYPE, Markup, html};

use crate::domain::error::AuthError;
use crate::proto::v1;

/// The stylesheet, served at /assets/authd.css (CSP forbids inline styles).
pub const STYLESHEET: &str = r#"
:root { color-scheme: light dark; --fg:#1f2328; --muted:#59636e; --bg:#f6f8fa; --card:#fff; --line:#d1d9e0; --accent:#5b4cdb; --danger:#c62828; }
@media (prefers-color-scheme: dark) { :root { --fg:#e6edf3; --muted:#9198a1; --bg:#0d1117; --card:#151b23; --line:#3d444d; --accent:#8c7ff0; --danger:#f47067; } }
* { box-sizing: border-box; }
body { margin:0; min-height:100vh; display:flex; align-items:center; justify-content:center; background:var(--bg); color:var(--fg);
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { width:100%; max-width:28rem; margin:2rem 1rem; background:var(--card); border:1px solid var(--line); border-radius:12px; padding:2rem; }
main.wide { max-width:40rem; }
h1 { font-size:1.35rem; margin:0 0 1rem; }
.brand { font-weight:700; letter-spacing:.02em; color:var(--accent); margin-bottom:1.25rem; }
p { margin:.5rem 0 1rem; }
.muted { color:var(--muted); font-size:.9rem; }
label { display:block; font-weight:600; margin:1rem 0 .35rem; }
input[type=email], input[type=password] { width:100%; padding:.6rem .75rem; border:1px solid var(--line); border-radius:8px; background:transparent; color:inherit; font:inherit; }
button { font:inherit; font-weight:600; padding:.6rem 1.1rem; border-radius:8px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:transparent; color:var(--fg); border-color:var(--line); }
button.danger { background:transparent; color:var(--danger); border-color:var(--danger); }
.actions { display:flex; gap:.75rem; margin-top:1.5rem; }
.actions form { margin:0; }
.error { border-left:4px solid var(--danger); padding:.5rem .75rem; background:color-mix(in srgb, var(--danger) 8%, transparent); border-radius:4px; }
ul.scopes { padding-left:1.2rem; } ul.scopes li { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
code.token { display:block; word-break:break-all; padding:.75rem; border:1px dashed var(--line); border-radius:8px; font-size:1.05rem; user-select:all; }
table { width:100%; border-collapse:collapse; } td, th { text-align:left; padding:.5rem .25rem; border-bottom:1px solid var(--line); vertical-align:top; }
"#;

fn layout(title: &str, wide: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · authd" }
                link rel="stylesheet" href="/assets/authd.css";
            }
            body {
                main class=[wide.then_some("wide")] {
                    div class="brand" { "authd" }
                    (body)
                }
            }
        }
    }
}

/// Hidden inputs carrying the authorization request through a form.
fn hidden_fields(fields: &[(&str, String)]) -> Markup {
    html! {
        @for (name, value) in fields {
            @if !value.is_empty() {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

pub fn login_page(csrf: &str, next: &str, email: &str, error: Option<&str>) -> Markup {
    layout(
        "Log in",
        false,
        html! {
            h1 { "Log in" }
            @if let Some(error) = error {
                p class="error" role="alert" { (error) }
            }
            form method="post" action="/auth/sign_in" {
                input type="hidden" name="csrf_token" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="email" { "Email address" }
                input id="email" type="email" name="email" value=(email) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" type="password" name="password" autocomplete="current-password" required;
                div class="actions" { button type="submit" { "Log in" } }
            }
        },
    )
}

pub struct Consent<'a> {
    pub consent: &'a v1::ConsentNeeded,
    pub fields: Vec<(&'a str, String)>,
    pub csrf: &'a str,
}

pub fn consent_page(c: &Consent<'_>) -> Markup {
    let app_name = c
        .consent
        .app
        .as_ref()
        .map(|a| a.name.as_str())
        .unwrap_or("An application");
    let website = c
        .consent
        .app
        .as_ref()
        .map(|a| a.website.as_str())
        .unwrap_or("");
    let username = c
        .consent
        .account
        .as_ref()
        .map(|a| a.username.as_str())
        .unwrap_or("");
    html! {
        (layout("Authorize", false, html! {
            h1 { "Hi " (username) "!" }
            p {
                "Application " strong { (app_name) } " would like to perform actions on your behalf, with scope "
                em { (c.consent.scope) } "."
            }
            @if !website.is_empty() {
                p class="muted" { "Website: " (website) }
            }
            ul class="scopes" {
                @for scope in c.consent.scope.split(' ') { li { (scope) } }
            }
            p class="muted" { "The application will redirect to " (c.consent.redirect_uri) " to continue." }
            div class="actions" {
                form method="post" action="/oauth/authorize" {
                    input type="hidden" name="csrf_token" value=(c.csrf);
                    (hidden_fields(&c.fields))
                    button type="submit" name="decision" value="allow" { "Allow" }
                }
                form method="post" action="/oauth/authorize" {
                    input type="hidden" name="csrf_token" value=(c.csrf);
                    (hidden_fields(&c.fields))
                    button class="secondary" type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        }))
    }
}

/// Mastodon's out-of-band page (`/oauth/authorize/native`), in its words.
pub fn oob_code_page(code: &str) -> Markup {
    layout(
        "Authorization code",
        false,
        html! {
            h1 { "Authorization code" }
            p { "Copy this authorization code and paste it to the application." }
            code class="token" id="code" { (code) }
            p class="muted" { "Copy it into the application. It works once, for ten minutes." }
        },
    )
}

/// RP-initiated logout without a hint for the signed-in user: the user
/// says whether to sign out (a link alone must not sign anyone out).
pub fn logout_confirmation_page(
    csrf: &str,
    client_name: &str,
    fields: &[(&str, String)],
) -> Markup {
    layout(
        "Sign out",
        false,
        html! {
            h1 { "Sign out of authd?" }
            @if client_name.is_empty() {
                p { "An application asks you to sign out." }
            } @else {
                p { strong { (client_name) } " asks you to sign out." }
            }
            div class="actions" {
                form method="post" action="/oauth/end_session" {
                    (hidden_fields(fields))
                    input type="hidden" name="csrf_token" value=(csrf);
                    button type="submit" name="decision" value="sign_out" { "Sign out" }
                }
            }
        },
    )
}

pub fn signed_out_page() -> Markup {
    layout(
        "Signed out",
        false,
        html! {
            h1 { "You are signed out" }
            p { "You can close this page." }
        },
    )
}

pub fn oob_denied_page() -> Markup {
    layout(
        "Access denied",
        false,
        html! {
            h1 { "Access denied" }
            p { "You denied the application access to your account. You can close this page." }
        },
    )
}

pub fn error_page(error: &AuthError) -> Markup {
    layout(
        "Error",
        false,
        html! {
            h1 { "Something is wrong with this request" }
            p class="error" role="alert" {
                strong { (error.kind.as_str()) } br; (error.description)
            }
            p class="muted" { "Go back to the application and try again. If it keeps happening, its developer can fix it." }
        },
    )
}

pub fn authorized_apps_page(
    apps: &[v1::AuthorizedApp],
    csrf: &str,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Authorized applications",
        true,
        html! {
            h1 { "Authorized applications" }
            @if let Some(notice) = notice { p class="muted" role="status" { (notice) } }
            @if apps.is_empty() {
                p class="muted" { "You have not authorized any application." }
            } @else {
                table {
                    tr { th { "Application" } th { "Scopes" } th {} }
                    @for a in apps {
                        @if let Some(app) = &a.app {
                            tr {
                                td { strong { (app.name) } @if !app.website.is_empty() { br; span class="muted" { (app.website) } } }
                                td { (a.scopes.join(" ")) }
                                td {
                                    form method="post" action={ "/oauth/authorized_applications/" (app.id) "/revoke" } {
                                        input type="hidden" name="csrf_token" value=(csrf);
                                        button class="danger" type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/auth/sign_out" {
                input type="hidden" name="csrf_token" value=(csrf);
                div class="actions" { button class="secondary" type="submit" { "Log out" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_print() {
        let evil = "<script>alert(1)</script>\"'&";
        let page = login_page(evil, evil, evil, Some(evil)).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        let error = error_page(&AuthError::invalid_request(evil)).into_string();
        assert!(!error.contains("<script>"));
        let oob = oob_code_page(evil).into_string();
        assert!(!oob.contains("<script>"));
    }

    #[test]
    fn forms_carry_the_csrf_token() {
        let page = login_page("tok123", "/oauth/authorize", "", None).into_string();
        assert!(page.contains(r#"name="csrf_token" value="tok123""#));
    }
}
