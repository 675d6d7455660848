//! Integration tests of portico-auth on both databases. The flows against a real OpenID Connect
//! provider are in portico-server's tests, where the HTTP endpoints live.

mod tokens;
