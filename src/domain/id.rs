//! Typed ids for the entities, so that a grant id passed where an app id
//! belongs does not compile. They are the database's keys, but nothing here
//! knows that: store/ turns them into and out of rows.
use std::fmt;
use std::num::NonZeroI64;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(value: i64) -> $name {
                $name(value)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        /// An id written as a decimal number, as the API shows it.
        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<$name, Self::Err> {
                s.parse().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A registered application.
    AppId
);
/// A user account. Unlike the other ids it is never zero (accounts are
/// numbered from 1), so that `Option<AccountId>` takes 8 bytes, not 16:
/// every cached token holds one (see `grant::Token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(NonZeroI64);

impl AccountId {
    /// None for 0, which names no account.
    pub const fn new(value: i64) -> Option<AccountId> {
        match NonZeroI64::new(value) {
            Some(id) => Some(AccountId(id)),
            None => None,
        }
    }

    pub const fn get(self) -> i64 {
        self.0.get()
    }
}

/// As the API shows it; "0" names no account and does not parse.
impl std::str::FromStr for AccountId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<AccountId, Self::Err> {
        s.parse().map(AccountId)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
id!(
    /// A grant: one redemption of a code, or one client_credentials
    /// issuance; its tokens live and die with it.
    GrantId
);
id!(
    /// An access token.
    AccessTokenId
);
id!(
    /// A refresh token.
    RefreshTokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_their_number_and_round_trip() {
        let id = AppId::new(42);
        assert_eq!(id.get(), 42);
        assert_eq!(id.to_string(), "42");
        assert_ne!(GrantId::new(1), GrantId::new(2));
        assert_eq!("7".parse::<AccountId>().ok(), AccountId::new(7));
        assert!("seven".parse::<AccountId>().is_err());
        assert!("0".parse::<AccountId>().is_err());
        assert_eq!(AccountId::new(0), None);
        assert_eq!(std::mem::size_of::<Option<AccountId>>(), 8);
    }
}
