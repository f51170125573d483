//! Typed ids for the entities, so that a grant id passed where an app id
//! belongs does not compile. They are the database's keys, but nothing here
//! knows that: store/ turns them into and out of rows.
use std::fmt;

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
id!(
    /// A user account.
    AccountId
);
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
        assert_eq!("7".parse::<AccountId>(), Ok(AccountId::new(7)));
        assert!("seven".parse::<AccountId>().is_err());
    }
}
