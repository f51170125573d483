//! Request ids: the caller's `x-request-id` when it is a sane one, or a new
//! one. They go into every log line of a request, in the shim and in the
//! core, so their length and alphabet are bounded: a caller must not be
//! able to forge log lines or fill them with kilobytes.

/// The header (and gRPC metadata key) that carries a request id.
pub const HEADER: &str = "x-request-id";

/// Longest request id accepted from a caller.
pub const MAX_LEN: usize = 128;

/// Whether a caller's request id is kept as is: 1 to 128 characters of
/// letters, digits and `-_.:/+=@` (UUIDs, ULIDs, base64 ids, AWS trace
/// ids). Anything else is replaced by a new id.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// A new request id: 16 random URL-safe characters (96 bits).
pub fn generate() -> String {
    // 12 bytes are 16 characters: no more drawn or encoded than is kept.
    crate::domain::secret::random_url_safe::<12>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        for ok in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ] {
            assert!(is_acceptable(ok.as_bytes()), "{ok}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "a b", "a\nb", "a\"b", "a\\b", "é", long.as_str()] {
            assert!(!is_acceptable(bad.as_bytes()), "{bad:?}");
        }
        let new = generate();
        assert_eq!(new.len(), 16);
        assert!(is_acceptable(new.as_bytes()));
    }
}
