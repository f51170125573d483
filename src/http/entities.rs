//! Mastodon's JSON entities, fields in Mastodon's order (struct order is
//! serialization order).
use serde::Serialize;

use crate::proto::v1;

/// POST /api/v1/apps: Mastodon's CredentialApplication
/// (`REST::CredentialApplicationSerializer`: the Application's fields, then
/// `client_id`, `client_secret` and `client_secret_expires_at`, always 0).
#[derive(Serialize)]
pub struct CredentialApplication {
    pub id: String,
    pub name: String,
    pub website: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub vapid_key: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub client_secret: String,
    pub client_secret_expires_at: i64,
}

/// GET /api/v1/apps/verify_credentials: the Application, without credentials
/// (`REST::ApplicationSerializer`, 4.3+: `vapid_key` and `redirect_uri` are
/// deprecated but sent; `vapid_key` is empty, as authd serves no Web Push).
#[derive(Serialize)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub website: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub vapid_key: String,
    pub redirect_uri: String,
}

impl From<&v1::App> for Application {
    fn from(app: &v1::App) -> Self {
        Application {
            id: app.id.clone(),
            name: app.name.clone(),
            website: (!app.website.is_empty()).then(|| app.website.clone()),
            scopes: app.scopes.clone(),
            redirect_uris: app.redirect_uris.clone(),
            vapid_key: String::new(),
            redirect_uri: app.redirect_uris.join("\n"),
        }
    }
}

/// POST /oauth/token (RFC 6749 section 5.1, plus Mastodon's created_at,
/// which clients such as Toot! need).
#[derive(Serialize)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
    pub scope: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect Core 3.1.3.3, for openid grants only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// RFC 7662 section 2.2. Inactive tokens serialize as {"active": false}.
#[derive(Clone, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl Introspection {
    /// The JSON body, exactly as its `Serialize` writes it (fields in
    /// order, absent ones left out), written directly: every resource
    /// server's introspection pays for this, and serde_json's general path
    /// (a writer, per-field dispatch, escaping checked byte by byte into a
    /// growing buffer) was a twentieth of an HTTP introspection's
    /// instructions. Strings that need escaping still go through
    /// serde_json.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(if self.active {
            b"{\"active\":true"
        } else {
            b"{\"active\":false"
        });
        let strings = [
            ("scope", &self.scope),
            ("client_id", &self.client_id),
            ("username", &self.username),
            ("token_type", &self.token_type),
        ];
        for (name, value) in strings {
            if let Some(value) = value {
                json_member(&mut out, name);
                json_string(&mut out, value);
            }
        }
        for (name, value) in [("exp", self.exp), ("iat", self.iat)] {
            if let Some(value) = value {
                json_member(&mut out, name);
                out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            }
        }
        for (name, value) in [("sub", &self.sub), ("aud", &self.aud), ("iss", &self.iss)] {
            if let Some(value) = value {
                json_member(&mut out, name);
                json_string(&mut out, value);
            }
        }
        out.push(b'}');
        out
    }
}

/// `,"name":` (names here never need escaping).
fn json_member(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string: as it is, quoted, when nothing in it needs escaping
/// (control characters, quotes, backslashes); through serde_json otherwise.
fn json_string(out: &mut Vec<u8>, value: &str) {
    // One table look-up per byte rather than three comparisons: the values
    // are ids, scopes and URLs, a few hundred bytes per introspection.
    const ESCAPED: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 0x20 {
            table[b] = true;
            b += 1;
        }
        table[b'"' as usize] = true;
        table[b'\\' as usize] = true;
        table
    };
    if !value.bytes().any(|b| ESCAPED[usize::from(b)]) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

impl From<v1::IntrospectResponse> for Introspection {
    fn from(r: v1::IntrospectResponse) -> Self {
        if !r.is_active() {
            return Introspection {
                active: false,
                scope: None,
                client_id: None,
                username: None,
                token_type: None,
                exp: None,
                iat: None,
                sub: None,
                aud: None,
                iss: None,
            };
        }
        Introspection {
            active: true,
            scope: r.scope,
            client_id: r.client_id,
            username: r.username,
            token_type: r.token_type,
            exp: r.exp,
            iat: r.iat,
            sub: r.sub,
            aud: r.aud,
            iss: r.iss,
        }
    }
}

/// Mastodon's Account entity, as far as authd knows an account. Fields
/// clients read are all present, with neutral values for what authd does
/// not keep (a profile, counts).
#[derive(Serialize)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub acct: String,
    pub display_name: String,
    pub locked: bool,
    pub bot: bool,
    pub discoverable: bool,
    pub group: bool,
    pub created_at: String,
    pub note: String,
    pub url: String,
    pub uri: String,
    pub avatar: String,
    pub avatar_static: String,
    pub header: String,
    pub header_static: String,
    pub followers_count: u64,
    pub following_count: u64,
    pub statuses_count: u64,
    pub last_status_at: Option<String>,
    pub emojis: Vec<serde_json::Value>,
    pub fields: Vec<serde_json::Value>,
    pub source: AccountSource,
}

#[derive(Serialize)]
pub struct AccountSource {
    pub privacy: &'static str,
    pub sensitive: bool,
    pub language: Option<String>,
    pub note: String,
    pub fields: Vec<serde_json::Value>,
    pub follow_requests_count: u64,
}

impl Account {
    pub fn new(account: &v1::Account, base_url: &str) -> Account {
        let url = profile_url(account, base_url);
        let avatar = avatar_url(base_url);
        let header = format!("{base_url}/headers/original/missing.png");
        Account {
            id: account.id.clone(),
            username: account.username.clone(),
            acct: account.username.clone(),
            display_name: account.username.clone(),
            locked: false,
            bot: false,
            discoverable: false,
            group: false,
            // Mastodon reports the day an account was created, at midnight UTC.
            created_at: format!("{}T00:00:00.000Z", iso_date(account.created_at)),
            note: String::new(),
            uri: actor_uri(account, base_url),
            url,
            avatar_static: avatar.clone(),
            avatar,
            header_static: header.clone(),
            header,
            followers_count: 0,
            following_count: 0,
            statuses_count: 0,
            last_status_at: None,
            emojis: Vec::new(),
            fields: Vec::new(),
            source: AccountSource {
                privacy: "public",
                sensitive: false,
                language: None,
                note: String::new(),
                fields: Vec::new(),
                follow_requests_count: 0,
            },
        }
    }
}

/// The account's ActivityPub id (Mastodon's `TagManager#uri_for`): the
/// Account entity's `uri` and userinfo's `sub`.
fn actor_uri(account: &v1::Account, base_url: &str) -> String {
    format!("{base_url}/users/{}", account.username)
}

/// The account's profile page (`TagManager#url_for`): `url` and `profile`.
fn profile_url(account: &v1::Account, base_url: &str) -> String {
    format!("{base_url}/@{}", account.username)
}

/// Mastodon's default avatar; authd keeps no images.
fn avatar_url(base_url: &str) -> String {
    format!("{base_url}/avatars/original/missing.png")
}

/// GET /oauth/userinfo, as Mastodon 4.4+ answers it
/// (app/serializers/oauth_userinfo_serializer.rb), in its order.
#[derive(Serialize)]
pub struct UserInfo {
    pub iss: String,
    pub sub: String,
    pub name: String,
    pub preferred_username: String,
    pub profile: String,
    pub picture: String,
}

impl UserInfo {
    pub fn new(account: &v1::Account, base_url: &str) -> UserInfo {
        UserInfo {
            iss: base_url.to_owned(),
            sub: actor_uri(account, base_url),
            // Mastodon's display_name, which authd's accounts do not set
            // apart from the username (as in the Account entity).
            name: account.username.clone(),
            preferred_username: account.username.clone(),
            profile: profile_url(account, base_url),
            picture: avatar_url(base_url),
        }
    }
}

/// GET /oauth/userinfo for an OpenID Connect token (Core 5.3.2): `sub`
/// first, then the claims the core released.
#[derive(Serialize)]
pub struct OpenIdUserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl From<v1::OpenIdUserinfo> for OpenIdUserInfo {
    fn from(c: v1::OpenIdUserinfo) -> OpenIdUserInfo {
        OpenIdUserInfo {
            sub: c.sub,
            name: c.name,
            preferred_username: c.preferred_username,
            email: c.email,
            email_verified: c.email_verified,
        }
    }
}

/// YYYY-MM-DD of a Unix time (days-from-civil, inverted; proleptic
/// Gregorian, UTC).
pub fn iso_date(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29");
        assert_eq!(iso_date(1_795_425_601), "2026-11-23");
        assert_eq!(iso_date(-86_400), "1969-12-31");
    }

    #[test]
    fn introspection_json_is_what_serde_writes() {
        let full = Introspection {
            active: true,
            scope: Some("read write:statuses".into()),
            client_id: Some("abc-DEF_123".into()),
            username: Some("alice".into()),
            token_type: Some("Bearer".into()),
            exp: Some(1_999_999_999),
            iat: Some(-5),
            sub: Some("42".into()),
            aud: Some("https://example.test".into()),
            iss: Some("https://example.test/".into()),
        };
        let needs_escaping = Introspection {
            username: Some("a\"b\\c\n\u{1}é\u{7f}".into()),
            exp: None,
            sub: None,
            ..full.clone()
        };
        let app_token = Introspection {
            username: None,
            sub: None,
            iat: Some(0),
            ..full.clone()
        };
        let inactive = Introspection::from(v1::IntrospectResponse::default());
        for value in [full, needs_escaping, app_token, inactive] {
            assert_eq!(
                String::from_utf8(value.to_json()).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }
}
