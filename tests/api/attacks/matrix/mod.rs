//! The hostile-value matrix: every RPC and every HTTP route, each called
//! with one hostile value at a time in each string field, without
//! credentials and with a non-admin token. None may answer INTERNAL,
//! UNKNOWN or a 500, and each must answer within a bound: a value that
//! costs more than a bounded moment is a finding. The lists of RPCs and
//! routes are read from the descriptor set and the router, so what is
//! added later is covered without editing these tests.
use std::time::Duration;

pub use super::*;

mod grpc;
mod http;

/// What one call may take, loose enough for a loaded CI machine: the
/// bound is there to catch work that grows faster than the input.
pub const CALL_BOUND: Duration = Duration::from_secs(5);

/// How many elements a hostile repeated field carries.
pub const MANY: usize = 10_000;

/// A hostile value, with a name for the failure message.
pub struct Hostile {
    pub name: &'static str,
    pub value: String,
    /// Sent as it is where a value is percent-encoded (a query string, a
    /// form, a path), rather than encoded: the junk is in the encoding.
    pub raw: bool,
}

/// The hostile values.
pub fn hostile_values() -> Vec<Hostile> {
    let v = |name, value: &str| Hostile {
        name,
        value: value.into(),
        raw: false,
    };
    vec![
        v("NUL", "a\0b"),
        Hostile {
            name: "invalid percent-encoding",
            value: "%zz%E0%A4%A%%00%".into(),
            raw: true,
        },
        Hostile {
            name: "percent-encoded invalid UTF-8",
            value: "%FF%FE%C0%AF%ED%A0%80".into(),
            raw: true,
        },
        v(
            "format characters",
            "\u{202e}gnp.exe\u{200b}\u{feff}\u{2067}x\u{2069}",
        ),
        v("control characters", "a\r\nb\tc\u{7f}\u{1b}[2J"),
        v("printf and templates", "%s%n%x{}{{0}}${x}"),
        v("SQL", "' OR '1'='1'; --"),
        v(
            "astral and noncharacters",
            "\u{1d518}\u{10ffff}\u{fffe}\u{e9}",
        ),
        Hostile {
            name: "10 KiB",
            value: "a".repeat(10 * 1024),
            raw: false,
        },
        // Past the 16 KiB messages of the smaller services, within the
        // shim's 64 KiB body.
        Hostile {
            name: "32 KiB",
            value: "a".repeat(32 * 1024),
            raw: false,
        },
        Hostile {
            name: "1 MiB",
            value: "a".repeat(1024 * 1024),
            raw: false,
        },
    ]
}

/// Values that let a request get past its first check, by field name, so
/// that the hostile value is the one wrong thing in it.
pub struct Plausible {
    pub client_id: String,
    pub client_secret: String,
    pub session: String,
    pub access_token: String,
    pub email: String,
}

impl Plausible {
    pub fn value(&self, name: &str) -> Option<&str> {
        Some(match name {
            "client_id" => self.client_id.as_str(),
            "client_secret" => self.client_secret.as_str(),
            "session" => self.session.as_str(),
            "access_token" => self.access_token.as_str(),
            "email" => self.email.as_str(),
            "password" => PASSWORD,
            "grant_type" => "client_credentials",
            "response_type" => "code",
            "redirect_uri" | "redirect_uris" => OOB,
            "scope" | "scopes" => "read",
            "client_name" => "matrix",
            "csrf_token" => CSRF,
            // Unknown to authd, so that revocation revokes nothing.
            "token" | "tokens" => "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            _ => return None,
        })
    }
}

/// The CSRF token the HTTP rounds carry in both cookie and form (the
/// double submit accepts any value that matches).
pub const CSRF: &str = "matrix-csrf-token";
