//! Rate limits: login attempts by client address and by account, app
//! registrations by client address. Each limit is a GCRA (the generic cell
//! rate algorithm): `limit` attempts may come at once, and then one more
//! every `period / limit`. An attempt is counted before its work starts, so
//! parallel attempts cannot slip past the limit while each other's
//! passwords hash; a successful login gives its attempt back.
//!
//! The counters live in this process's memory: with several replicas, each
//! counts on its own (see the README).
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::error::{AuthError, Throttle};

/// `limit` attempts per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
}

/// A rate, or none ("off").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSetting(pub Option<Rate>);

impl FromStr for RateSetting {
    type Err = String;

    /// "25/5m" (25 per five minutes), "5/10min", "100/1h", or "off".
    fn from_str(s: &str) -> Result<RateSetting, String> {
        let s = s.trim();
        if matches!(s, "off" | "none" | "unlimited") {
            return Ok(RateSetting(None));
        }
        let (limit, period) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a rate: write it as COUNT/PERIOD, e.g. 25/5m, or \"off\"")
        })?;
        let limit: u32 = limit
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{limit:?} is not a positive count"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("{period:?} is not a period: {e}"))?;
        if period.is_zero() {
            return Err("the period must be longer than zero".into());
        }
        Ok(RateSetting(Some(Rate { limit, period })))
    }
}

/// The limits a service enforces; `None` turns one off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub login_per_ip: Option<Rate>,
    pub login_per_account: Option<Rate>,
    pub app_registration_per_ip: Option<Rate>,
    /// Cache misses per client that is not a resource server.
    pub cold_lookups_per_client: Option<Rate>,
}

impl Default for RateLimits {
    /// Mastodon's own values: 25 logins per 5 minutes from an address, 25
    /// per hour at an account, 5 app registrations per 10 minutes from an
    /// address.
    fn default() -> Self {
        RateLimits {
            login_per_ip: Some(Rate {
                limit: 25,
                period: Duration::from_secs(5 * 60),
            }),
            login_per_account: Some(Rate {
                limit: 25,
                period: Duration::from_secs(60 * 60),
            }),
            app_registration_per_ip: Some(Rate {
                limit: 5,
                period: Duration::from_secs(10 * 60),
            }),
            // Two full batches a second: far more than a client that
            // introspects its own tokens misses, and at most a few percent
            // of a core spent on a client that floods unknown ones.
            cold_lookups_per_client: Some(Rate {
                limit: 2000,
                period: Duration::from_secs(1),
            }),
        }
    }
}

impl RateLimits {
    pub fn off() -> RateLimits {
        RateLimits {
            login_per_ip: None,
            login_per_account: None,
            app_registration_per_ip: None,
            cold_lookups_per_client: None,
        }
    }
}

/// Keys tracked at most, per limiter. Past it, keys whose limit has fully
/// recovered are dropped; a limiter still full after that lets new keys
/// through untracked (and says so), rather than lock everybody out.
const MAX_KEYS: usize = 200_000;

/// One rate limit over many keys.
pub struct Limiter {
    what: &'static str,
    rate: Option<Rate>,
    /// Per key, the GCRA's theoretical arrival time.
    arrivals: Mutex<HashMap<String, Instant>>,
    /// Attempts refused, for the metrics.
    refused: AtomicU64,
}

/// An attempt that was counted; give it back with `Limiter::refund`.
#[must_use]
pub struct Attempt(Option<String>);

impl Limiter {
    pub fn new(what: &'static str, rate: Option<Rate>) -> Limiter {
        Limiter {
            what,
            rate,
            arrivals: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Counts an attempt for `key`, or refuses it with when to try again.
    pub fn attempt(&self, key: &str) -> Result<Attempt, AuthError> {
        self.attempt_at(key, Instant::now())
    }

    fn attempt_at(&self, key: &str, now: Instant) -> Result<Attempt, AuthError> {
        let Some(rate) = self.rate else {
            return Ok(Attempt(None));
        };
        let interval = rate.period / rate.limit;
        let tolerance = rate.period - interval;
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= MAX_KEYS && !arrivals.contains_key(key) {
            arrivals.retain(|_, tat| *tat > now);
            if arrivals.len() >= MAX_KEYS {
                tracing::warn!(
                    limit = self.what,
                    "rate limiter full: a new key goes untracked"
                );
                return Ok(Attempt(None));
            }
        }
        let tat = arrivals.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > tolerance {
            let retry_after = ahead - tolerance;
            tracing::info!(limit = self.what, retry_after = ?retry_after, "rate limited");
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AuthError::rate_limited(Throttle {
                limit: rate.limit,
                retry_after,
            }));
        }
        arrivals.insert(key.to_owned(), tat + interval);
        Ok(Attempt(Some(key.to_owned())))
    }

    /// Reserves `cost` units for `key`: how long to wait before the work
    /// they stand for may start (zero within the burst), or, when that
    /// would be longer than `max_wait`, a refusal with when to try again,
    /// and nothing reserved. Unlike `attempt`, a caller over the limit is
    /// slowed down rather than refused at once, so that adding calls in
    /// flight does not add to its rate.
    pub fn reserve(&self, key: &str, cost: u32, max_wait: Duration) -> Result<Duration, AuthError> {
        self.reserve_at(key, cost, max_wait, Instant::now())
    }

    fn reserve_at(
        &self,
        key: &str,
        cost: u32,
        max_wait: Duration,
        now: Instant,
    ) -> Result<Duration, AuthError> {
        let Some(rate) = self.rate else {
            return Ok(Duration::ZERO);
        };
        let interval = rate.period / rate.limit;
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= MAX_KEYS && !arrivals.contains_key(key) {
            arrivals.retain(|_, tat| *tat > now);
        }
        let tat = arrivals.get(key).copied().unwrap_or(now).max(now);
        let next = tat + interval * cost;
        // Conforming while the reserved work ends within one period.
        let wait = (next - now).saturating_sub(rate.period);
        if wait > max_wait {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AuthError::rate_limited(Throttle {
                limit: rate.limit,
                retry_after: wait,
            }));
        }
        if arrivals.len() < MAX_KEYS || arrivals.contains_key(key) {
            arrivals.insert(key.to_owned(), next);
        }
        Ok(wait)
    }

    /// How many attempts this limit has refused.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Gives a counted attempt back (a login that succeeded).
    pub fn refund(&self, attempt: Attempt) {
        let (Some(rate), Some(key)) = (self.rate, attempt.0) else {
            return;
        };
        let interval = rate.period / rate.limit;
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tat) = arrivals.get_mut(&key) {
            *tat = tat.checked_sub(interval).unwrap_or(*tat);
        }
    }
}

/// The key a client address is counted under, `None` for one that is not
/// counted. As Mastodon's rack-attack (config/initializers/rack_attack.rb):
/// the host itself (127.0.0.1, ::1) is safelisted when it is the client,
/// that is when no trusted proxy named another client for it (the address
/// given here is the resolved client, see `client_ip`); IPv6 clients are
/// counted by /64; an IPv4 client seen through an IPv6 socket is the IPv4
/// client.
pub fn counted_address(ip: IpAddr) -> Option<String> {
    let ip = crate::domain::client_ip::canonical(ip);
    let safelisted = match ip {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    };
    (!safelisted).then(|| address_key(ip))
}

/// The key of a client address: IPv6 clients are counted by /64, the
/// block one host is usually given, so that a host cannot walk through its
/// own addresses to reset its limit.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// The service's limiters.
pub struct Throttles {
    pub login_by_ip: Limiter,
    pub login_by_account: Limiter,
    pub app_registration_by_ip: Limiter,
}

impl Throttles {
    pub fn new(limits: &RateLimits) -> Throttles {
        Throttles {
            login_by_ip: Limiter::new("login by address", limits.login_per_ip),
            login_by_account: Limiter::new("login by account", limits.login_per_account),
            app_registration_by_ip: Limiter::new(
                "app registration by address",
                limits.app_registration_per_ip,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    fn rate(limit: u32, secs: u64) -> Option<Rate> {
        Some(Rate {
            limit,
            period: Duration::from_secs(secs),
        })
    }

    #[test]
    fn a_reservation_over_the_burst_waits_and_one_past_the_bound_is_refused() {
        let limiter = Limiter::new("test", rate(1000, 1));
        let now = Instant::now();
        let bound = Duration::from_secs(5);
        // The burst: a second's worth at once.
        assert_eq!(
            limiter.reserve_at("c", 1000, bound, now).unwrap(),
            Duration::ZERO
        );
        // Then each thousand waits a second more.
        assert_eq!(
            limiter.reserve_at("c", 1000, bound, now).unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(
            limiter.reserve_at("c", 500, bound, now).unwrap(),
            Duration::from_millis(1500)
        );
        // Another key is not slowed.
        assert_eq!(
            limiter.reserve_at("d", 10, bound, now).unwrap(),
            Duration::ZERO
        );
        // Past the bound: refused, and nothing reserved.
        let refused = limiter.reserve_at("c", 5000, bound, now).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::RateLimited);
        assert_eq!(
            limiter.reserve_at("c", 500, bound, now).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(limiter.refused(), 1);
    }

    #[test]
    fn rates_parse() {
        assert_eq!("25/5m".parse::<RateSetting>().unwrap().0, rate(25, 300));
        assert_eq!("5/10min".parse::<RateSetting>().unwrap().0, rate(5, 600));
        assert_eq!("off".parse::<RateSetting>().unwrap().0, None);
        for bad in ["25", "0/5m", "x/5m", "5/", "5/0s", "-1/5m"] {
            assert!(bad.parse::<RateSetting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_of_the_limit_passes_and_the_next_attempt_waits_one_interval() {
        let limiter = Limiter::new("test", rate(5, 600));
        let t0 = Instant::now();
        for _ in 0..5 {
            let _ = limiter.attempt_at("k", t0).expect("within the burst");
        }
        let refused = limiter.attempt_at("k", t0).err().expect("over the limit");
        assert_eq!(refused.kind, ErrorKind::RateLimited);
        let throttle = refused.throttle.unwrap();
        assert_eq!(throttle.limit, 5);
        assert_eq!(throttle.retry_after, Duration::from_secs(120));
        // Other keys are not affected.
        let _ = limiter.attempt_at("other", t0).expect("another key");
        // One interval later, one more attempt.
        let later = t0 + Duration::from_secs(120);
        let _ = limiter.attempt_at("k", later).expect("after an interval");
        assert!(limiter.attempt_at("k", later).is_err());
    }

    #[test]
    fn a_refund_gives_the_attempt_back() {
        let limiter = Limiter::new("test", rate(2, 60));
        let t0 = Instant::now();
        let first = limiter.attempt_at("k", t0).unwrap();
        limiter.refund(first);
        let _ = limiter.attempt_at("k", t0).unwrap();
        let _ = limiter.attempt_at("k", t0).unwrap();
        assert!(limiter.attempt_at("k", t0).is_err());
    }

    #[test]
    fn off_never_refuses() {
        let limiter = Limiter::new("test", None);
        for _ in 0..1000 {
            let _ = limiter.attempt("k").unwrap();
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            address_key("2001:db8:1:2:bbbb::7".parse().unwrap())
        );
        assert_ne!(
            address_key("2001:db8:1:2::1".parse().unwrap()),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(address_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn the_host_itself_is_not_counted_as_mastodon_safelists_it() {
        let counted = |s: &str| counted_address(s.parse().unwrap());
        assert_eq!(counted("127.0.0.1"), None);
        assert_eq!(counted("::1"), None);
        assert_eq!(counted("::ffff:127.0.0.1"), None);
        // Only the two addresses rack-attack names.
        assert_eq!(counted("127.0.0.2").as_deref(), Some("127.0.0.2"));
        assert_eq!(counted("::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(
            counted("2001:db8:1:2:aaaa::1").as_deref(),
            Some("2001:db8:1:2::/64")
        );
    }
}
