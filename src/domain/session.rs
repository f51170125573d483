//! A sign-in session, as the store hands it back. The cookie's value is a
//! secret that is never stored; only its digest is.
use std::time::SystemTime;

use super::account::Account;

/// An open session: whose, since when, until when.
#[derive(Clone, Debug)]
pub struct Session {
    pub account: Account,
    /// When the user signed in (OpenID Connect's `auth_time`), by the
    /// service's clock: `max_age` is measured from it.
    pub signed_in_at: SystemTime,
    pub expires_at: SystemTime,
}
