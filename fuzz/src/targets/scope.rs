//! `ScopeSet::parse` and `parse_list`. Checks: the length limit; each token
//! is a known scope or the `admin` alias, and the set is exactly those
//! tokens; the first unknown token is reported, truncated; the canonical
//! rendering (Display, `to_vec_strings`) parses back to the same set;
//! `parse_list` is `parse` of the elements joined by spaces; `satisfies` and
//! `is_within` follow a string model of the hierarchy, and `is_within` is
//! reflexive, transitive and monotone under union.
use authd::domain::scope::{
    MAX_ERROR_SCOPE_CHARS, MAX_SCOPE_INPUT_LEN, Scope, ScopeError, ScopeSet,
};

const FOLLOW_GRANTS: &[&str] = &[
    "read:blocks",
    "read:follows",
    "read:mutes",
    "write:blocks",
    "write:follows",
    "write:mutes",
];

fn known(token: &str) -> Option<Scope> {
    Scope::ALL.iter().copied().find(|s| s.as_str() == token)
}

/// Whether holding `held` grants `required`, from the spellings alone: the
/// same scope, its parent (the spelling up to the last ':', when that is a
/// scope itself), or legacy `follow` for its six sub-scopes.
fn model_satisfies(held: &str, required: &str) -> bool {
    held == required
        || required
            .rsplit_once(':')
            .is_some_and(|(parent, _)| parent == held && known(parent).is_some())
        || (held == "follow" && FOLLOW_GRANTS.contains(&required))
}

fn model_within(a: &ScopeSet, b: &ScopeSet) -> bool {
    a.iter().all(|want| {
        b.iter()
            .any(|held| model_satisfies(held.as_str(), want.as_str()))
    })
}

fn check_set(set: &ScopeSet) {
    let strings = set.to_vec_strings();
    assert_eq!(strings.len(), set.len());
    assert_eq!(set.is_empty(), strings.is_empty());
    assert_eq!(set.to_string(), strings.join(" "));
    // Canonical order is Scope::ALL's, without repeats.
    let positions: Vec<usize> = set
        .iter()
        .map(|s| Scope::ALL.iter().position(|x| *x == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{strings:?}");
    assert!(!strings.iter().any(|s| s == "admin"));
    // Rendered back, it parses to itself.
    assert_eq!(ScopeSet::parse(&set.to_string()).as_ref(), Ok(set));
    assert_eq!(set.to_string().parse::<ScopeSet>().as_ref(), Ok(set));
    assert_eq!(ScopeSet::parse_list(&strings).as_ref(), Ok(set));
    // Hierarchy.
    assert!(set.is_within(set));
    assert!(ScopeSet::default().is_within(set));
    assert!(!set.satisfies_any(&[]));
    for &s in Scope::ALL {
        assert_eq!(set.contains(s), strings.iter().any(|x| x == s.as_str()));
        let model = set
            .iter()
            .any(|held| model_satisfies(held.as_str(), s.as_str()));
        assert_eq!(set.satisfies(s), model, "{set} satisfies {s}");
        assert_eq!(set.satisfies_any(&[s]), model);
        assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
    }
}

fn check_parse(s: &str) -> Option<ScopeSet> {
    let result = ScopeSet::parse(s);
    assert_eq!(result, s.parse::<ScopeSet>());
    if s.len() > MAX_SCOPE_INPUT_LEN {
        assert_eq!(result, Err(ScopeError::TooLong));
        return None;
    }
    let first_unknown = s
        .split_ascii_whitespace()
        .find(|t| *t != "admin" && known(t).is_none());
    match result {
        Ok(set) => {
            assert_eq!(first_unknown, None);
            let mut want: Vec<Scope> = Vec::new();
            for t in s.split_ascii_whitespace() {
                if t == "admin" {
                    want.extend([Scope::AdminRead, Scope::AdminWrite]);
                } else {
                    want.push(known(t).unwrap());
                }
            }
            assert_eq!(set, ScopeSet::from_scopes(want));
            check_set(&set);
            Some(set)
        }
        Err(ScopeError::Unknown(token)) => {
            let first = first_unknown.expect("an unknown scope reported, but none was sent");
            assert_eq!(
                token,
                first
                    .chars()
                    .take(MAX_ERROR_SCOPE_CHARS)
                    .collect::<String>()
            );
            None
        }
        Err(ScopeError::TooLong) => panic!("{} bytes reported too long", s.len()),
    }
}

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let whole = ScopeSet::parse(s);
    check_parse(s);
    // parse_list is parse of the elements joined by single spaces; a newline
    // is whitespace, so splitting on it changes nothing.
    assert_eq!(ScopeSet::parse_list(s.split('\n')), whole);
    assert_eq!(
        ScopeSet::parse_list(s.split(',')),
        ScopeSet::parse(&s.replace(',', " "))
    );

    // Lines as sets: the hierarchy between them.
    let sets: Vec<ScopeSet> = s.lines().take(3).filter_map(check_parse).collect();
    for a in &sets {
        for b in &sets {
            assert_eq!(a.is_within(b), model_within(a, b), "{a} within {b}");
            let u = a.union(b);
            assert!(a.is_within(&u) && b.is_within(&u));
            assert_eq!(u, b.union(a));
            assert_eq!(u.is_within(b), a.is_within(b));
            for c in &sets {
                if a.is_within(b) && b.is_within(c) {
                    assert!(a.is_within(c), "{a} within {b} within {c}");
                }
            }
        }
    }
}
