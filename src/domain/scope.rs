//! The complete Mastodon OAuth scope vocabulary and its hierarchy.
//!
//! Every decision about scopes — which strings exist, how a request's
//! `scope` parameter is parsed, which held scope grants which required one,
//! what an app may request given what it registered, and how a set is echoed
//! back in a token response — lives here, so that the token endpoint, the
//! authorization endpoint, app registration and the per-route guards can
//! never disagree about the rules.
//!
//! Decisions worth knowing before using this module:
//!
//! * **GoToSocial's bare `admin`** is accepted as *input* only and is expanded
//!   at parse time into `admin:read admin:write`. There is no `Scope::Admin`:
//!   a set that came from `"admin"` is indistinguishable from one that came
//!   from `"admin:read admin:write"`, so nothing downstream needs to know the
//!   alias exists, and it is never echoed back. Because it is a set-level
//!   alias, `"admin".parse::<Scope>()` is an error; only [`ScopeSet::parse`]
//!   and [`ScopeSet::parse_list`] accept it.
//! * **Canonical order.** A [`ScopeSet`] is ordered by [`Scope::ALL`], not by
//!   the order the client sent (Mastodon echoes the request order). Clients
//!   virtually never compare scope strings, while our own tests and stored
//!   tokens benefit from one stable spelling per set, so `"write read"` is
//!   displayed as `"read write"`.
//! * **Legacy `follow`** grants the six block/follow/mute sub-scopes (see
//!   [`Scope::satisfies`]), and [`ScopeSet::is_within`] uses the very same
//!   rule, so an app registered with `follow` may request `read:follows`.
//! * **Splitting** is on ASCII whitespace only. A form decoder has already
//!   turned `+` into a space, so a literal `+` that survives is part of a
//!   token and makes it unknown rather than being silently split.

use std::fmt;
use std::str::FromStr;

/// Inputs longer than this (in bytes) are rejected before any parsing. The
/// full Mastodon vocabulary joined by spaces is well under this, so only
/// abuse or fuzzing hits it.
pub const MAX_SCOPE_INPUT_LEN: usize = 1024;

/// Unknown-scope payloads are cut to this many characters so that an
/// attacker-sized token is never reflected back whole in an error response.
pub const MAX_ERROR_SCOPE_CHARS: usize = 64;

/// The GoToSocial alias that expands to both admin top-levels.
const ADMIN_ALIAS: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The offending token, truncated to [`MAX_ERROR_SCOPE_CHARS`] characters.
    #[error("unknown scope: {0}")]
    Unknown(String),
    #[error("scope list too long")]
    TooLong,
}

impl ScopeError {
    fn unknown(token: &str) -> Self {
        ScopeError::Unknown(token.chars().take(MAX_ERROR_SCOPE_CHARS).collect())
    }
}

// One table drives the enum, `ALL`, `as_str` and `FromStr`, so a scope can't
// be added to one of them and forgotten in another. Declaration order is the
// canonical order: the derived `Ord` (and therefore `ScopeSet`'s iteration
// and `Display`) depends on it matching `ALL`.
macro_rules! define_scopes {
    ($($variant:ident => $name:literal,)+) => {
        /// A single Mastodon OAuth scope.
        ///
        /// Variants are declared in canonical order; `Ord` follows it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Scope {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        impl Scope {
            /// Every scope in canonical order: top-levels, then `read:*`,
            /// `write:*`, `admin:read:*`, `admin:write:*`.
            pub const ALL: &'static [Scope] = &[$(Scope::$variant,)+];

            /// The wire spelling, e.g. `"admin:read:accounts"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Scope::$variant => $name,)+
                }
            }

            fn from_exact(s: &str) -> Option<Scope> {
                match s {
                    $($name => Some(Scope::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

define_scopes! {
    Read => "read",
    Write => "write",
    Follow => "follow",
    Push => "push",
    Profile => "profile",
    // OpenID Connect's (Core 5.4): `openid` makes an authorization an
    // OpenID one (an id_token, the OIDC userinfo), `email` adds the email
    // claims; `profile` above is both Mastodon's and OIDC's.
    OpenId => "openid",
    Email => "email",
    AdminRead => "admin:read",
    AdminWrite => "admin:write",

    ReadAccounts => "read:accounts",
    ReadBlocks => "read:blocks",
    ReadBookmarks => "read:bookmarks",
    ReadCollections => "read:collections",
    ReadFavourites => "read:favourites",
    ReadFilters => "read:filters",
    ReadFollows => "read:follows",
    ReadLists => "read:lists",
    ReadMutes => "read:mutes",
    ReadNotifications => "read:notifications",
    ReadSearch => "read:search",
    ReadStatuses => "read:statuses",

    WriteAccounts => "write:accounts",
    WriteBlocks => "write:blocks",
    WriteBookmarks => "write:bookmarks",
    WriteCollections => "write:collections",
    WriteConversations => "write:conversations",
    WriteFavourites => "write:favourites",
    WriteFilters => "write:filters",
    WriteFollows => "write:follows",
    WriteLists => "write:lists",
    WriteMedia => "write:media",
    WriteMutes => "write:mutes",
    WriteNotifications => "write:notifications",
    WriteReports => "write:reports",
    WriteStatuses => "write:statuses",

    AdminReadAccounts => "admin:read:accounts",
    AdminReadReports => "admin:read:reports",
    AdminReadDomainAllows => "admin:read:domain_allows",
    AdminReadDomainBlocks => "admin:read:domain_blocks",
    AdminReadIpBlocks => "admin:read:ip_blocks",
    AdminReadEmailDomainBlocks => "admin:read:email_domain_blocks",
    AdminReadCanonicalEmailBlocks => "admin:read:canonical_email_blocks",

    AdminWriteAccounts => "admin:write:accounts",
    AdminWriteReports => "admin:write:reports",
    AdminWriteDomainAllows => "admin:write:domain_allows",
    AdminWriteDomainBlocks => "admin:write:domain_blocks",
    AdminWriteIpBlocks => "admin:write:ip_blocks",
    AdminWriteEmailDomainBlocks => "admin:write:email_domain_blocks",
    AdminWriteCanonicalEmailBlocks => "admin:write:canonical_email_blocks",
}

/// What the legacy `follow` scope grants besides itself (Mastodon keeps it
/// working for old clients by mapping it onto these).
const FOLLOW_GRANTS: &[Scope] = &[
    Scope::ReadBlocks,
    Scope::ReadFollows,
    Scope::ReadMutes,
    Scope::WriteBlocks,
    Scope::WriteFollows,
    Scope::WriteMutes,
];

impl Scope {
    /// The scope one level up: `read:accounts` → `read`,
    /// `admin:read:reports` → `admin:read`. Top-levels (including
    /// `admin:read`/`admin:write`, since the bare `admin` is only an input
    /// alias) have none. `follow` is deliberately not anyone's parent.
    pub fn parent(self) -> Option<Scope> {
        use Scope::*;
        match self {
            Read | Write | Follow | Push | Profile | OpenId | Email | AdminRead | AdminWrite => {
                None
            }

            ReadAccounts | ReadBlocks | ReadBookmarks | ReadCollections | ReadFavourites
            | ReadFilters | ReadFollows | ReadLists | ReadMutes | ReadNotifications
            | ReadSearch | ReadStatuses => Some(Read),

            WriteAccounts | WriteBlocks | WriteBookmarks | WriteCollections
            | WriteConversations | WriteFavourites | WriteFilters | WriteFollows | WriteLists
            | WriteMedia | WriteMutes | WriteNotifications | WriteReports | WriteStatuses => {
                Some(Write)
            }

            AdminReadAccounts
            | AdminReadReports
            | AdminReadDomainAllows
            | AdminReadDomainBlocks
            | AdminReadIpBlocks
            | AdminReadEmailDomainBlocks
            | AdminReadCanonicalEmailBlocks => Some(AdminRead),

            AdminWriteAccounts
            | AdminWriteReports
            | AdminWriteDomainAllows
            | AdminWriteDomainBlocks
            | AdminWriteIpBlocks
            | AdminWriteEmailDomainBlocks
            | AdminWriteCanonicalEmailBlocks => Some(AdminWrite),
        }
    }

    /// Whether holding `self` is enough for an endpoint that requires
    /// `required`: equal, `self` is `required`'s parent, or `self` is the
    /// legacy `follow` and `required` is one of the block/follow/mute
    /// sub-scopes. Nothing else: `write` does not grant `read:*`,
    /// `admin:read` does not grant `admin:write:*`, and `profile` grants only
    /// `profile` (callers guarding verify_credentials ask for any of
    /// `profile`, `read`, `read:accounts` instead).
    pub fn satisfies(self, required: Scope) -> bool {
        self == required
            || required.parent() == Some(self)
            || (self == Scope::Follow && FOLLOW_GRANTS.contains(&required))
    }

    /// Whether this is one of the nine top-level scopes.
    pub fn is_top_level(self) -> bool {
        self.parent().is_none()
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    /// Exact and case-sensitive (`"READ"` is unknown), as Mastodon is. The
    /// `admin` alias is rejected here because it names two scopes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::from_exact(s).ok_or_else(|| ScopeError::unknown(s))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deduplicated set of scopes, always iterated and displayed in canonical
/// ([`Scope::ALL`]) order: one bit per scope, in that order. Every cached
/// token holds one, so it is 8 bytes rather than a tree on the heap.
// Clone but not Copy: the code that passes sets around was written for a
// tree, by reference or with an explicit clone, and stays correct as is.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet(u64);

// One bit per scope.
const _: () = assert!(Scope::ALL.len() <= 64);

impl Scope {
    /// This scope's bit in a [`ScopeSet`]: its place in [`Scope::ALL`],
    /// which is its declaration order.
    fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopeSet(")?;
        f.debug_set().entries(self.iter()).finish()?;
        f.write_str(")")
    }
}

impl ScopeSet {
    /// Parses a space-separated `scope` parameter.
    ///
    /// Any run of ASCII whitespace separates scopes; leading/trailing
    /// whitespace is ignored; duplicates collapse; `admin` expands to
    /// `admin:read admin:write`. The empty (or all-whitespace) string is the
    /// empty set — the caller chooses the default ([`ScopeSet::read`]).
    /// Input over [`MAX_SCOPE_INPUT_LEN`] bytes is [`ScopeError::TooLong`]
    /// regardless of content; otherwise the first unknown token is reported.
    pub fn parse(s: &str) -> Result<ScopeSet, ScopeError> {
        if s.len() > MAX_SCOPE_INPUT_LEN {
            return Err(ScopeError::TooLong);
        }
        let mut set = 0u64;
        for token in s.split_ascii_whitespace() {
            if token == ADMIN_ALIAS {
                set |= Scope::AdminRead.bit() | Scope::AdminWrite.bit();
            } else {
                set |= token.parse::<Scope>()?.bit();
            }
        }
        Ok(ScopeSet(set))
    }

    /// Parses an array-valued `scope` parameter, whose elements may each hold
    /// several space-separated scopes.
    ///
    /// Defined as [`ScopeSet::parse`] of the elements joined by single
    /// spaces, so the two forms can never disagree — including on the length
    /// limit, which counts those joining spaces. That also bounds the work
    /// spent on a list of millions of empty strings: we stop reading at the
    /// limit.
    pub fn parse_list<I, S>(items: I) -> Result<ScopeSet, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut joined = String::new();
        for (i, item) in items.into_iter().enumerate() {
            let item = item.as_ref();
            let sep = usize::from(i > 0);
            if joined.len() + sep + item.len() > MAX_SCOPE_INPUT_LEN {
                return Err(ScopeError::TooLong);
            }
            if sep == 1 {
                joined.push(' ');
            }
            joined.push_str(item);
        }
        ScopeSet::parse(&joined)
    }

    pub fn from_scopes<I: IntoIterator<Item = Scope>>(iter: I) -> ScopeSet {
        ScopeSet(iter.into_iter().fold(0, |set, s| set | s.bit()))
    }

    /// `{read}`, Mastodon's default when a client sends no scope.
    pub fn read() -> ScopeSet {
        ScopeSet::from_scopes([Scope::Read])
    }

    /// These scopes without the admin API's (`admin:*`): what an account
    /// whose role is not admin may be granted of them.
    pub fn without_admin(&self) -> ScopeSet {
        ScopeSet::from_scopes(self.iter().filter(|s| !s.as_str().starts_with("admin:")))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// In canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(Scope::ALL[i])
        })
    }

    /// Exact membership; `{read}.contains(ReadAccounts)` is false. Use
    /// [`ScopeSet::satisfies`] for authorization.
    pub fn contains(&self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Whether any held scope satisfies `required` (see [`Scope::satisfies`]).
    pub fn satisfies(&self, required: Scope) -> bool {
        self.iter().any(|held| held.satisfies(required))
    }

    /// Whether the set satisfies at least one of `required`; an empty
    /// `required` is never satisfied, so a mistaken empty guard fails closed.
    pub fn satisfies_any(&self, required: &[Scope]) -> bool {
        required.iter().any(|&r| self.satisfies(r))
    }

    /// Whether every scope in `self` is granted by `allowed`, i.e. whether a
    /// client registered with `allowed` may request `self`.
    ///
    /// Follows GoToSocial: an app registered with `read` may request
    /// `read:statuses`, but one registered with `read:statuses` may not
    /// request `read`. This deliberately reuses [`Scope::satisfies`], so an
    /// app registered with legacy `follow` may request `read:follows` and the
    /// other five follow-granted sub-scopes: anything a token could do with
    /// `follow` it may as well ask for by name. The empty set is within
    /// anything.
    pub fn is_within(&self, allowed: &ScopeSet) -> bool {
        self.iter().all(|s| allowed.satisfies(s))
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    /// The wire spellings in canonical order (for JSON `scopes` arrays).
    pub fn to_vec_strings(&self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeError;

    /// Same as [`ScopeSet::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScopeSet::parse(s)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet::from_scopes(iter)
    }
}

impl fmt::Display for ScopeSet {
    /// Space-joined in canonical order: the OAuth `scope` response value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    // The spec, written out independently of the enum, in canonical order.
    const TOP: &[&str] = &[
        "read",
        "write",
        "follow",
        "push",
        "profile",
        "openid",
        "email",
        "admin:read",
        "admin:write",
    ];
    const READ_SUBS: &[&str] = &[
        "accounts",
        "blocks",
        "bookmarks",
        "collections",
        "favourites",
        "filters",
        "follows",
        "lists",
        "mutes",
        "notifications",
        "search",
        "statuses",
    ];
    const WRITE_SUBS: &[&str] = &[
        "accounts",
        "blocks",
        "bookmarks",
        "collections",
        "conversations",
        "favourites",
        "filters",
        "follows",
        "lists",
        "media",
        "mutes",
        "notifications",
        "reports",
        "statuses",
    ];
    const ADMIN_SUBS: &[&str] = &[
        "accounts",
        "reports",
        "domain_allows",
        "domain_blocks",
        "ip_blocks",
        "email_domain_blocks",
        "canonical_email_blocks",
    ];
    const SPEC_FOLLOW: &[&str] = &[
        "read:blocks",
        "read:follows",
        "read:mutes",
        "write:blocks",
        "write:follows",
        "write:mutes",
    ];

    fn spec_strings() -> Vec<String> {
        let mut v: Vec<String> = TOP.iter().map(|s| s.to_string()).collect();
        for (prefix, subs) in [
            ("read", READ_SUBS),
            ("write", WRITE_SUBS),
            ("admin:read", ADMIN_SUBS),
            ("admin:write", ADMIN_SUBS),
        ] {
            v.extend(subs.iter().map(|s| format!("{prefix}:{s}")));
        }
        v
    }

    /// The spec's rule on strings only, deliberately not using `parent()`.
    fn expected_satisfies(held: &str, required: &str) -> bool {
        if held == required {
            return true;
        }
        if held == "follow" {
            return SPEC_FOLLOW.contains(&required);
        }
        match required
            .strip_prefix(held)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            Some(leaf) => !leaf.is_empty() && !leaf.contains(':'),
            None => false,
        }
    }

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn strs(ss: &ScopeSet) -> Vec<&'static str> {
        ss.iter().map(Scope::as_str).collect()
    }

    // ---- vocabulary ----

    #[test]
    fn all_matches_spec_in_order() {
        let ours: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(ours, spec_strings());
    }

    #[test]
    fn all_has_49_distinct_scopes() {
        // Mastodon's 47 (7 top-levels) and OpenID Connect's openid and email.
        assert_eq!(Scope::ALL.len(), 9 + 12 + 14 + 7 + 7);
        assert_eq!(Scope::ALL.len(), 49);
        let distinct: HashSet<Scope> = Scope::ALL.iter().copied().collect();
        assert_eq!(distinct.len(), 49);
        let names: HashSet<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), 49);
    }

    #[test]
    fn collections_scopes_of_mastodon_4_6_sit_under_read_and_write() {
        assert_eq!(Scope::ReadCollections.parent(), Some(Scope::Read));
        assert_eq!(Scope::WriteCollections.parent(), Some(Scope::Write));
        assert!(set("read").satisfies(Scope::ReadCollections));
        assert!(!set("read").satisfies(Scope::WriteCollections));
        assert_eq!(
            set("write:collections read:collections read").to_string(),
            "read read:collections write:collections"
        );
    }

    #[test]
    fn derived_ord_matches_all_order() {
        assert!(Scope::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_scope_round_trips() {
        for &s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(set(s.as_str()), ScopeSet::from_scopes([s]));
            assert_eq!(set(s.as_str()).to_string(), s.as_str());
        }
    }

    #[test]
    fn parent_relationships() {
        assert_eq!(Scope::ReadAccounts.parent(), Some(Scope::Read));
        assert_eq!(Scope::WriteMedia.parent(), Some(Scope::Write));
        assert_eq!(Scope::AdminReadReports.parent(), Some(Scope::AdminRead));
        assert_eq!(
            Scope::AdminWriteCanonicalEmailBlocks.parent(),
            Some(Scope::AdminWrite)
        );
        for &s in Scope::ALL {
            let name = s.as_str();
            match s.parent() {
                None => {
                    assert!(TOP.contains(&name), "{name}");
                    assert!(s.is_top_level());
                }
                Some(p) => {
                    assert!(!s.is_top_level());
                    assert!(p.is_top_level(), "{name}: parent must be top-level");
                    let leaf = name.strip_prefix(p.as_str()).unwrap();
                    assert!(leaf.starts_with(':') && !leaf[1..].contains(':'), "{name}");
                }
            }
        }
        let top_count = Scope::ALL.iter().filter(|s| s.is_top_level()).count();
        assert_eq!(top_count, 9);
    }

    #[test]
    fn case_sensitive_and_exact() {
        for bad in [
            "READ",
            "Read",
            "read:Accounts",
            "ADMIN",
            "Admin",
            "read:",
            ":read",
            "read:accounts:",
            "admin:",
            "admin:read:",
            "read:account",
            "write:search",
            "read:media",
            "admin:read:statuses",
            "follow:blocks",
            " read",
            // Gone from Mastodon's list (crypto in 4.3), or never released
            // (read:me became profile; circles were withdrawn).
            "crypto",
            "read:me",
            "read:circles",
            "write:circles",
            "collections",
            "admin:read:collections",
        ] {
            assert_eq!(
                bad.parse::<Scope>(),
                Err(ScopeError::Unknown(bad.to_string())),
                "{bad:?}"
            );
            if !bad.trim().is_empty() && bad.trim() == bad {
                assert_eq!(
                    ScopeSet::parse(bad),
                    Err(ScopeError::Unknown(bad.to_string()))
                );
            }
        }
    }

    // ---- satisfies ----

    #[test]
    fn full_satisfies_matrix_matches_spec() {
        let mut true_count = 0;
        for &held in Scope::ALL {
            for &required in Scope::ALL {
                let want = expected_satisfies(held.as_str(), required.as_str());
                assert_eq!(
                    held.satisfies(required),
                    want,
                    "{held} satisfies {required}"
                );
                let one = ScopeSet::from_scopes([held]);
                assert_eq!(one.satisfies(required), want);
                true_count += usize::from(want);
            }
        }
        // 49 reflexive + 12 + 14 + 7 + 7 parent/child + 6 follow.
        assert_eq!(true_count, 49 + 40 + 6);
    }

    #[test]
    fn follow_grants_exactly_its_six() {
        let granted: Vec<&str> = Scope::ALL
            .iter()
            .filter(|&&r| Scope::Follow.satisfies(r))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            granted,
            [
                "follow",
                "read:blocks",
                "read:follows",
                "read:mutes",
                "write:blocks",
                "write:follows",
                "write:mutes"
            ]
        );
        // follow is not a parent, and nothing but follow grants follow.
        assert!(Scope::ALL.iter().all(|s| s.parent() != Some(Scope::Follow)));
        let granters: Vec<Scope> = Scope::ALL
            .iter()
            .copied()
            .filter(|h| h.satisfies(Scope::Follow))
            .collect();
        assert_eq!(granters, [Scope::Follow]);
        assert!(!set("read write").satisfies(Scope::Follow));
    }

    #[test]
    fn profile_grants_only_profile() {
        for &r in Scope::ALL {
            assert_eq!(Scope::Profile.satisfies(r), r == Scope::Profile, "{r}");
        }
        let profile = set("profile");
        assert!(!profile.satisfies(Scope::ReadAccounts));
        assert!(!profile.satisfies(Scope::Read));
    }

    #[test]
    fn verify_credentials_style_check() {
        let need = [Scope::Profile, Scope::Read, Scope::ReadAccounts];
        assert!(set("profile").satisfies_any(&need));
        assert!(set("read").satisfies_any(&need));
        assert!(set("read:accounts").satisfies_any(&need));
        assert!(!set("read:statuses write follow push").satisfies_any(&need));
        assert!(!set("write:accounts").satisfies_any(&need));
        assert!(!ScopeSet::default().satisfies_any(&need));
        assert!(!set("read").satisfies_any(&[]));
    }

    #[test]
    fn cross_branch_denials() {
        assert!(!Scope::Write.satisfies(Scope::ReadStatuses));
        assert!(!Scope::Read.satisfies(Scope::WriteStatuses));
        assert!(!Scope::AdminRead.satisfies(Scope::AdminWriteAccounts));
        assert!(!Scope::AdminWrite.satisfies(Scope::AdminReadAccounts));
        assert!(!Scope::Read.satisfies(Scope::AdminReadAccounts));
        assert!(!Scope::Read.satisfies(Scope::AdminRead));
        assert!(!Scope::ReadAccounts.satisfies(Scope::Read));
        assert!(!Scope::AdminReadAccounts.satisfies(Scope::AdminRead));
        assert!(!Scope::ReadAccounts.satisfies(Scope::ReadStatuses));
        assert!(!Scope::Read.satisfies(Scope::Push));
        assert!(!Scope::Write.satisfies(Scope::Push));
    }

    #[test]
    fn set_satisfies_uses_any_member() {
        let s = set("read:statuses write:media");
        assert!(s.satisfies(Scope::ReadStatuses));
        assert!(s.satisfies(Scope::WriteMedia));
        assert!(!s.satisfies(Scope::Read));
        assert!(!s.satisfies(Scope::ReadAccounts));
        assert!(!ScopeSet::default().satisfies(Scope::Read));
    }

    #[test]
    fn contains_is_exact() {
        let s = set("read follow");
        assert!(s.contains(Scope::Read));
        assert!(s.contains(Scope::Follow));
        assert!(!s.contains(Scope::ReadAccounts));
        assert!(!s.contains(Scope::ReadFollows));
        assert!(s.satisfies(Scope::ReadAccounts));
    }

    // ---- parsing ----

    #[test]
    fn admin_alias_expands_at_parse_time() {
        let both = ScopeSet::from_scopes([Scope::AdminRead, Scope::AdminWrite]);
        assert_eq!(set("admin"), both);
        assert_eq!(set("admin admin:read"), both);
        assert_eq!(set("admin:write admin admin"), both);
        assert_eq!(set("admin").to_string(), "admin:read admin:write");
        assert_eq!(set("admin").len(), 2);
        assert!(!set("admin").contains(Scope::Read));
        assert_eq!(
            strs(&set("admin read")),
            ["read", "admin:read", "admin:write"]
        );
        assert!(set("admin").satisfies(Scope::AdminReadAccounts));
        assert!(set("admin").satisfies(Scope::AdminWriteIpBlocks));
        assert!(!set("admin").satisfies(Scope::ReadAccounts));
        assert_eq!(ScopeSet::parse_list(["admin"]), Ok(both));
        // A set-level alias, not a Scope.
        assert_eq!(
            "admin".parse::<Scope>(),
            Err(ScopeError::Unknown("admin".into()))
        );
        assert!(ScopeSet::parse("admin:").is_err());
        assert!(ScopeSet::parse("admin:accounts").is_err());
    }

    #[test]
    fn whitespace_variants() {
        let want = ScopeSet::from_scopes([Scope::Read, Scope::Write]);
        for input in [
            "read write",
            "read  write",
            "  read write  ",
            "read\twrite",
            "\tread\n\nwrite\r\n",
            "write read",
            "read \t \n write",
            "\x0cread\x0cwrite",
        ] {
            assert_eq!(ScopeSet::parse(input), Ok(want.clone()), "{input:?}");
        }
    }

    #[test]
    fn plus_is_not_a_separator() {
        assert_eq!(
            ScopeSet::parse("read+write"),
            Err(ScopeError::Unknown("read+write".into()))
        );
        assert_eq!(
            ScopeSet::parse("read +write"),
            Err(ScopeError::Unknown("+write".into()))
        );
    }

    #[test]
    fn non_ascii_whitespace_is_not_a_separator() {
        // U+00A0: a client bug, not something to guess around.
        assert_eq!(
            ScopeSet::parse("read\u{a0}write"),
            Err(ScopeError::Unknown("read\u{a0}write".into()))
        );
    }

    #[test]
    fn duplicates_collapse() {
        let s = set("read read write read write:media write:media");
        assert_eq!(s.len(), 3);
        assert_eq!(s.to_string(), "read write write:media");
        // Parent and child are both kept: parsing does not normalise.
        let s = set("read read:accounts");
        assert_eq!(strs(&s), ["read", "read:accounts"]);
    }

    #[test]
    fn unknown_reports_first_offender() {
        assert_eq!(
            ScopeSet::parse("read bogus write nope"),
            Err(ScopeError::Unknown("bogus".into()))
        );
        assert_eq!(
            ScopeSet::parse("read READ"),
            Err(ScopeError::Unknown("READ".into()))
        );
        assert_eq!(
            ScopeError::Unknown("bogus".into()).to_string(),
            "unknown scope: bogus"
        );
    }

    #[test]
    fn unknown_payload_is_truncated() {
        let long = "x".repeat(500);
        match ScopeSet::parse(&long) {
            Err(ScopeError::Unknown(p)) => assert_eq!(p, "x".repeat(MAX_ERROR_SCOPE_CHARS)),
            other => panic!("{other:?}"),
        }
        // Cut on character boundaries, so multi-byte input stays valid.
        let wide = "é".repeat(300);
        match ScopeSet::parse(&wide) {
            Err(ScopeError::Unknown(p)) => {
                assert_eq!(p.chars().count(), MAX_ERROR_SCOPE_CHARS);
                assert!(p.chars().all(|c| c == 'é'));
            }
            other => panic!("{other:?}"),
        }
        match "y".repeat(5000).parse::<Scope>() {
            Err(ScopeError::Unknown(p)) => assert_eq!(p.len(), MAX_ERROR_SCOPE_CHARS),
            other => panic!("{other:?}"),
        }
        // Short ones are echoed whole.
        let exact = "z".repeat(MAX_ERROR_SCOPE_CHARS);
        assert_eq!(
            ScopeSet::parse(&exact),
            Err(ScopeError::Unknown(exact.clone()))
        );
    }

    #[test]
    fn too_long() {
        let at_limit = format!("read{}", " ".repeat(MAX_SCOPE_INPUT_LEN - 4));
        assert_eq!(at_limit.len(), MAX_SCOPE_INPUT_LEN);
        assert_eq!(ScopeSet::parse(&at_limit), Ok(ScopeSet::read()));
        let over = format!("{at_limit} ");
        assert_eq!(ScopeSet::parse(&over), Err(ScopeError::TooLong));
        // Length is checked before content.
        assert_eq!(
            ScopeSet::parse(&"bogus ".repeat(300)),
            Err(ScopeError::TooLong)
        );
        assert_eq!(ScopeError::TooLong.to_string(), "scope list too long");
    }

    #[test]
    fn whole_vocabulary_fits_under_limit() {
        let everything = ScopeSet::from_scopes(Scope::ALL.iter().copied());
        let text = everything.to_string();
        assert!(text.len() <= MAX_SCOPE_INPUT_LEN);
        assert_eq!(ScopeSet::parse(&text), Ok(everything));
    }

    #[test]
    fn empty_inputs() {
        for input in ["", " ", "\t\n ", "\r\n"] {
            let s = ScopeSet::parse(input).unwrap();
            assert!(s.is_empty(), "{input:?}");
            assert_eq!(s.len(), 0);
            assert_eq!(s, ScopeSet::default());
            assert_eq!(s.to_string(), "");
        }
        assert!(
            ScopeSet::parse_list(Vec::<String>::new())
                .unwrap()
                .is_empty()
        );
        assert!(ScopeSet::parse_list(["", "  "]).unwrap().is_empty());
    }

    #[test]
    fn parse_list_elements_may_hold_several() {
        let s = ScopeSet::parse_list(["read write", "follow", " push\t"]).unwrap();
        assert_eq!(s.to_string(), "read write follow push");
        let owned = vec![String::from("write:media"), String::from("read")];
        assert_eq!(
            ScopeSet::parse_list(&owned).unwrap().to_string(),
            "read write:media"
        );
        assert_eq!(
            ScopeSet::parse_list(["read", "read", "admin"])
                .unwrap()
                .to_string(),
            "read admin:read admin:write"
        );
    }

    #[test]
    fn parse_list_does_not_glue_elements() {
        // "rea" + "d" must not become "read".
        assert_eq!(
            ScopeSet::parse_list(["rea", "d"]),
            Err(ScopeError::Unknown("rea".into()))
        );
    }

    #[test]
    fn parse_list_errors() {
        assert_eq!(
            ScopeSet::parse_list(["read", "nope write"]),
            Err(ScopeError::Unknown("nope".into()))
        );
        assert_eq!(
            ScopeSet::parse_list(["READ"]),
            Err(ScopeError::Unknown("READ".into()))
        );
        // The limit counts the whole list, not each element.
        let chunk = "read ".repeat(100); // 500 bytes
        assert!(ScopeSet::parse_list([chunk.as_str(), chunk.as_str()]).is_ok());
        assert_eq!(
            ScopeSet::parse_list([chunk.as_str(), chunk.as_str(), chunk.as_str()]),
            Err(ScopeError::TooLong)
        );
        // Many empty elements still count (as their separators).
        assert_eq!(
            ScopeSet::parse_list(std::iter::repeat_n("", 2000)),
            Err(ScopeError::TooLong)
        );
        // An endless list stops at the limit instead of hanging.
        assert_eq!(
            ScopeSet::parse_list(std::iter::repeat("read")),
            Err(ScopeError::TooLong)
        );
    }

    #[test]
    fn parse_list_agrees_with_parse_of_joined() {
        let cases: &[&[&str]] = &[
            &["read", "write"],
            &["read write", "follow push"],
            &["", "read", ""],
            &["admin", "bogus"],
            &["profile"],
            &[],
        ];
        for items in cases {
            assert_eq!(
                ScopeSet::parse_list(items.iter()),
                ScopeSet::parse(&items.join(" ")),
                "{items:?}"
            );
        }
        // Right at the boundary, joined length decides for both.
        let a = "a".repeat(511);
        let b = "b".repeat(512);
        let joined = format!("{a} {b}");
        assert_eq!(joined.len(), MAX_SCOPE_INPUT_LEN);
        assert_eq!(ScopeSet::parse_list([&a, &b]), ScopeSet::parse(&joined));
        assert!(matches!(
            ScopeSet::parse_list([&a, &b]),
            Err(ScopeError::Unknown(_))
        ));
        let b2 = "b".repeat(513);
        assert_eq!(ScopeSet::parse_list([&a, &b2]), Err(ScopeError::TooLong));
        assert_eq!(
            ScopeSet::parse(&format!("{a} {b2}")),
            Err(ScopeError::TooLong)
        );
    }

    #[test]
    fn from_str_for_set_is_parse() {
        assert_eq!("write read".parse::<ScopeSet>(), Ok(set("read write")));
        assert_eq!(
            "nope".parse::<ScopeSet>(),
            Err(ScopeError::Unknown("nope".into()))
        );
    }

    // ---- is_within ----

    #[test]
    fn is_within_gotosocial_rule() {
        // Parent allows child.
        assert!(set("read:statuses").is_within(&set("read")));
        assert!(set("read:statuses read:accounts").is_within(&set("read")));
        assert!(set("admin:read:reports").is_within(&set("admin")));
        assert!(set("admin:write:ip_blocks").is_within(&set("admin:write")));
        // Child does not allow parent.
        assert!(!set("read").is_within(&set("read:statuses")));
        assert!(!set("admin:read").is_within(&set("admin:read:accounts")));
        assert!(!set("read").is_within(&set("read:statuses read:accounts")));
        // Equal is fine; subset is fine; superset is not.
        assert!(set("read write").is_within(&set("read write")));
        assert!(set("read").is_within(&set("read write follow")));
        assert!(!set("read write").is_within(&set("read")));
        assert!(!set("read push").is_within(&set("read write")));
        // Branches don't cross.
        assert!(!set("read:statuses").is_within(&set("write")));
        assert!(!set("admin:write:reports").is_within(&set("admin:read")));
        assert!(!set("admin:read").is_within(&set("read")));
        // Mixed: one member outside spoils it.
        assert!(!set("read:statuses write:media").is_within(&set("read")));
        assert!(set("read:statuses write:media").is_within(&set("read write")));
    }

    #[test]
    fn is_within_follow_and_profile() {
        let follow = set("follow");
        assert!(set("read:follows write:blocks").is_within(&follow));
        assert!(
            set(
                "read:blocks read:follows read:mutes write:blocks write:follows write:mutes follow"
            )
            .is_within(&follow)
        );
        assert!(!set("read:accounts").is_within(&follow));
        assert!(!set("read").is_within(&follow));
        assert!(!set("follow").is_within(&set("read write")));
        assert!(set("profile").is_within(&set("profile read")));
        assert!(!set("profile").is_within(&set("read")));
        assert!(!set("read:accounts").is_within(&set("profile")));
    }

    #[test]
    fn is_within_empty_sets() {
        let empty = ScopeSet::default();
        assert!(empty.is_within(&empty));
        assert!(empty.is_within(&set("read")));
        assert!(!set("read").is_within(&empty));
    }

    #[test]
    fn is_within_matches_satisfies_for_singletons() {
        for &want in Scope::ALL {
            for &allowed in Scope::ALL {
                assert_eq!(
                    ScopeSet::from_scopes([want]).is_within(&ScopeSet::from_scopes([allowed])),
                    expected_satisfies(allowed.as_str(), want.as_str()),
                    "{want} within {allowed}"
                );
            }
        }
    }

    // ---- set operations and output ----

    #[test]
    fn display_is_canonical_order() {
        assert_eq!(set("write read").to_string(), "read write");
        assert_eq!(set("follow write read").to_string(), "read write follow");
        assert_eq!(
            set("admin:write:accounts read:statuses profile write:media push read:accounts")
                .to_string(),
            "push profile read:accounts read:statuses write:media admin:write:accounts"
        );
        let everything: ScopeSet = Scope::ALL.iter().rev().copied().collect();
        assert_eq!(everything.to_string(), spec_strings().join(" "));
        assert_eq!(everything.to_vec_strings(), spec_strings());
    }

    #[test]
    fn to_vec_strings_and_iter_are_canonical() {
        let s = set("write:media read push");
        assert_eq!(s.to_vec_strings(), ["read", "push", "write:media"]);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Scope::Read, Scope::Push, Scope::WriteMedia]
        );
        assert!(ScopeSet::default().to_vec_strings().is_empty());
    }

    #[test]
    fn union_and_constructors() {
        let a = set("read follow");
        let b = set("write follow");
        let u = a.union(&b);
        assert_eq!(u.to_string(), "read write follow");
        assert_eq!(u, b.union(&a));
        assert_eq!(a.union(&ScopeSet::default()), a);
        assert_eq!(ScopeSet::read(), set("read"));
        assert_eq!(ScopeSet::read().to_string(), "read");
        assert_eq!(
            ScopeSet::from_scopes([Scope::Write, Scope::Read, Scope::Write]),
            set("read write")
        );
    }
}
