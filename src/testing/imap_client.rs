//! A customer's side of the mail servers: send raw mail over SMTP, read a
//! mailbox over IMAP.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::TryStreamExt as _;
use lettre::{address::Envelope, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

/// Sends `raw` over SMTP with envelope sender `from` (`None`: the null
/// sender of a bounce) to `to`.
pub async fn send(smtp_port: u16, from: Option<&str>, to: &str, raw: &[u8]) -> anyhow::Result<()> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(smtp_port).build();
    let envelope = Envelope::new(from.map(str::parse).transpose()?, vec![to.parse()?])?;
    transport.send_raw(&envelope, raw).await.context("sending over SMTP")?;
    Ok(())
}

/// A plain IMAP session on the private Dovecot, logged in as `user`.
pub async fn login(imap_port: u16, user: &str) -> anyhow::Result<async_imap::Session<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", imap_port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?.context("no greeting")?;
    Ok(client.login(user, super::mail_servers::PASSWORD).await.map_err(|(e, _)| e)?)
}

/// Every mail in a mailbox, oldest first (without changing its flags).
pub async fn fetch_all(imap_port: u16, user: &str, mailbox: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut session = login(imap_port, user).await?;
    let selected = session.examine(mailbox).await;
    let mut out = Vec::new();
    if let Ok(m) = selected {
        if m.exists > 0 {
            let fetched: Vec<_> = session.uid_fetch("1:*", "(UID BODY.PEEK[])").await?.try_collect().await?;
            let mut with_uid: Vec<(u32, Vec<u8>)> =
                fetched.iter().map(|f| (f.uid.unwrap_or(0), f.body().unwrap_or_default().to_vec())).collect();
            with_uid.sort_by_key(|(u, _)| *u);
            out = with_uid.into_iter().map(|(_, b)| b).collect();
        }
    }
    let _ = session.logout().await;
    Ok(out)
}

/// How many mails of a mailbox are not flagged `\Seen` (without changing
/// any flag).
pub async fn unseen(imap_port: u16, user: &str, mailbox: &str) -> anyhow::Result<usize> {
    let mut session = login(imap_port, user).await?;
    session.examine(mailbox).await?;
    let unseen = session.uid_search("UNSEEN").await?.len();
    let _ = session.logout().await;
    Ok(unseen)
}

/// Waits until a mailbox holds at least `n` mails, and returns them.
pub async fn wait_for(imap_port: u16, user: &str, n: usize, timeout: Duration) -> anyhow::Result<Vec<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mails = fetch_all(imap_port, user, "INBOX").await?;
        if mails.len() >= n {
            return Ok(mails);
        }
        if Instant::now() > deadline {
            bail!("{user}'s mailbox has {} mail(s) after {timeout:?}; expected {n}", mails.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One header of a raw mail (unfolded), for assertions.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    message.header_raw(name).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The plain-text body of a raw mail.
pub fn text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}
