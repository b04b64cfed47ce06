//! Real servers for tests and benchmarks: a private Dovecot (IMAP, with LMTP
//! delivery) and a private Postfix in front of it, on free loopback ports,
//! with all their configuration and state in a temp dir. Needs root and the
//! Debian packages `dovecot-imapd dovecot-lmtpd postfix` (`.ci/run`
//! installs them).

pub mod imap_client;
pub mod mail_servers;
mod ports;
