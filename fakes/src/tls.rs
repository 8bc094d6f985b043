//! TLS for `fakes serve --tls`.
