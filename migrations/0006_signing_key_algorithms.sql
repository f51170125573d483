-- RS256 and ES256 beside EdDSA (issue 17): one active key per algorithm.
-- Private keys are sealed by the service under the operator's
-- key-encryption key (AES-256-GCM); the column holds the sealed bytes,
-- which start with 'kek1'. Rows from before hold a plaintext Ed25519 seed,
-- which start-up seals in place.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_algorithm_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_algorithm_check
    CHECK (algorithm IN ('EdDSA', 'RS256', 'ES256'));
