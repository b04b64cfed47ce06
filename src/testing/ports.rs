//! Loopback ports for the private mail servers, and telling our server on
//! one from somebody else's.

use std::{
    net::{TcpListener, TcpStream},
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

/// Where [`free_port`] starts looking.
const FIRST: u16 = 10_000;

/// The end of [`free_port`]'s range: the start of the kernel's ephemeral
/// range (32768 unless configured), or 20,000 if that starts lower.
fn below_ephemeral() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(20_000)
}

/// A port nothing listens on, never handed out before in this process, and
/// below the kernel's ephemeral range.
///
/// A port from `bind(":0")` is itself ephemeral: once its listener closes,
/// the kernel may hand it to another test's `bind(":0")` or use it as the
/// local end of an outgoing connection before the server binds it. In CI
/// (2026-12-07) one test's Postfix port went to another test's Dovecot LMTP,
/// and the test's mail was answered "500 5.5.1 Unknown command". Below the
/// ephemeral range the kernel hands out nothing by itself, and the counter
/// keeps this process's tests apart.
pub(super) fn free_port() -> anyhow::Result<u16> {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let end = below_ephemeral();
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    // Start at a place of this process's own, so that two test processes
    // at once (two checkouts' CI) rarely walk the same ports.
    let mut port = next.unwrap_or_else(|| FIRST + (std::process::id() % 4096) as u16 * 2);
    while port < end {
        let candidate = port;
        port += 1;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return Ok(candidate);
        }
    }
    bail!("no free port left in {FIRST}..{end}")
}

/// Waits for `what` to listen on `port`; a `server` process that exits
/// meanwhile fails at once. With `greeting`, the server's first line must
/// hold it: a server that is not ours fails at once, with what it said,
/// rather than the test failing later on its odd answers.
pub(super) fn wait_for_port(
    port: u16,
    what: &str,
    greeting: Option<&str>,
    mut server: Option<&mut Child>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            let Some(expected) = greeting else { return Ok(()) };
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut line)
                .with_context(|| format!("reading {what}'s greeting on 127.0.0.1:{port}"))?;
            if line.contains(expected) {
                return Ok(());
            }
            bail!("127.0.0.1:{port} is not {what}: it greets with {:?}", line.trim_end());
        }
        if let Some(status) = server.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            bail!("{what} exited ({status}) before listening on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not start listening on 127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice_and_are_not_ephemeral() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        assert!(ports.iter().all(|p| (FIRST..below_ephemeral()).contains(p)), "{ports:?}");
    }

    /// A server on a port of its own that greets its first client with
    /// `line`.
    fn greeter(line: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(line).unwrap();
        });
        (port, server)
    }

    #[test]
    fn a_port_that_another_server_took_is_refused_with_its_greeting() {
        // As in CI: the port meant for Postfix answers as someone's LMTP.
        let (port, foreign) = greeter(b"220 elsewhere Dovecot ready.\r\n");
        let err = wait_for_port(port, "Postfix SMTP", Some("fdmOurs"), None).unwrap_err();
        foreign.join().unwrap();
        let message = format!("{err:#}");
        assert!(message.contains("is not Postfix SMTP"), "{message}");
        assert!(message.contains("220 elsewhere Dovecot ready."), "{message}");
    }

    #[test]
    fn our_own_greeting_is_accepted() {
        let (port, ours) = greeter(b"220 mail.test ESMTP fdmOurs\r\n");
        wait_for_port(port, "Postfix SMTP", Some("fdmOurs"), None).unwrap();
        ours.join().unwrap();
    }
}
