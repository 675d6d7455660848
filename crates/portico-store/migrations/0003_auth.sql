-- Identity and credentials: signing keys for Portico's own tokens and users' provider grants.
-- Secrets are sealed (AES-256-GCM) before they reach these tables; `key_id` names the
-- encryption key, so keys can rotate while old rows stay readable.

-- ES256 key pairs that sign user and plugin tokens. Every replica publishes every key here.
CREATE TABLE auth_signing_keys (
    kid TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One OAuth grant per user and provider.
CREATE TABLE auth_grants (
    user_ref TEXT NOT NULL,
    provider TEXT NOT NULL,
    key_id TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    scope TEXT NOT NULL,
    expires_at BIGINT,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_ref, provider)
);
