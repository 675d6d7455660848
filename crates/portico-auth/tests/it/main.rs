//! Integration tests of portico-auth.
