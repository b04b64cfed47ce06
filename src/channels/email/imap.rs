//! The support mailbox over IMAP. One session at a time: log in, select the
//! mailbox, handle every mail past the checkpoint (and, on each new session,
//! every unseen one, which covers mail a crash left half-done), flag it
//! `\Seen` and move it away, then wait with IDLE (or a poll) and do it again.
//! Every wake-up fetches by UID from the checkpoint; unsolicited EXISTS
//! responses are never trusted to say what is new. A lost connection is
//! reopened with exponential backoff.

use std::{collections::BTreeSet, fmt::Debug, sync::Arc, time::Duration};

use anyhow::{bail, Context as _};
use async_imap::{extensions::idle::IdleResponse, Client, Session};
use futures::TryStreamExt as _;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::watch,
};

use super::{stages::Stage, EmailChannel, Source};
use crate::config::{ImapSecurity, ImapSettings};

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one command may take before the connection is thought dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads the mailbox until `stop` turns true.
pub async fn run(channel: EmailChannel, settings: ImapSettings, concurrency: usize, mut stop: watch::Receiver<bool>) {
    let mut wait = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut healthy = false;
        match session(&channel, &settings, concurrency, &mut stop, &mut healthy).await {
            Ok(()) => return,
            Err(e) => {
                if healthy {
                    wait = Duration::from_secs(1);
                }
                tracing::warn!(host = %settings.host, retry_in = ?wait, "IMAP session ended: {e:#}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        wait = (wait * 2).min(settings.reconnect_max);
    }
}

async fn session(
    channel: &EmailChannel,
    settings: &ImapSettings,
    concurrency: usize,
    stop: &mut watch::Receiver<bool>,
    healthy: &mut bool,
) -> anyhow::Result<()> {
    let opened = std::time::Instant::now();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((settings.host.as_str(), settings.port)))
        .await
        .context("connecting: timed out")?
        .with_context(|| format!("connecting to {}:{}", settings.host, settings.port))?;
    tcp.set_nodelay(true)?;
    match settings.security {
        ImapSecurity::Plain => serve(Client::new(tcp), opened, channel, settings, concurrency, stop, healthy).await,
        ImapSecurity::Tls => {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &settings.ca_file {
                use tokio_rustls::rustls::pki_types::{pem::PemObject as _, CertificateDer};
                for cert in
                    CertificateDer::pem_file_iter(path).with_context(|| format!("reading {}", path.display()))?
                {
                    roots.add(cert.with_context(|| format!("a certificate in {}", path.display()))?)?;
                }
            }
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(settings.host.clone())
                .context("imap.host is not a valid TLS server name")?;
            let tls = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
            )
            .await
            .context("TLS handshake: timed out")?
            .context("TLS handshake")?;
            serve(Client::new(tls), opened, channel, settings, concurrency, stop, healthy).await
        }
    }
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = async_imap::error::Result<T>>) -> anyhow::Result<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: no answer in {COMMAND_TIMEOUT:?}"),
    }
}

async fn serve<S>(
    mut client: Client<S>,
    opened: std::time::Instant,
    channel: &EmailChannel,
    settings: &ImapSettings,
    concurrency: usize,
    stop: &mut watch::Receiver<bool>,
    healthy: &mut bool,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let greeting =
        tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await.context("greeting: timed out")?;
    if greeting.context("greeting")?.is_none() {
        bail!("the server closed the connection before greeting");
    }
    let password = settings.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
    let mut session = tokio::time::timeout(CONNECT_TIMEOUT, client.login(&settings.username, &password))
        .await
        .context("login: timed out")?
        .map_err(|(e, _)| e)
        .context("login")?;
    let caps = timed("CAPABILITY", session.capabilities()).await?;
    let (can_idle, can_move) = (caps.has_str("IDLE"), caps.has_str("MOVE"));
    if let Some(folder) = &settings.processed_folder {
        // Fails harmlessly when the folder exists.
        let _ = timed("CREATE", session.create(folder)).await;
    }
    let mailbox = timed("SELECT", session.select(&settings.mailbox)).await?;
    let uidvalidity = mailbox.uid_validity.context("the server gave no UIDVALIDITY")?;
    *healthy = true;
    channel.stages().add(Stage::Connect, opened.elapsed());
    tracing::info!(mailbox = %settings.mailbox, uidvalidity, idle = can_idle && settings.idle, "IMAP session open");

    let store = channel.engine.store().clone();
    let name = settings.mailbox.clone();
    let mode = Mode { moving: settings.processed_folder.is_some(), can_move, can_uidplus: caps.has_str("UIDPLUS") };
    let mut rescan = true;
    loop {
        let checkpoint = store.mail_checkpoint(&name).await?;
        let last = match checkpoint {
            Some(c) if c.uidvalidity == i64::from(uidvalidity) => c.last_uid as u32,
            Some(c) => {
                tracing::warn!(mailbox = %name, old = c.uidvalidity, new = uidvalidity, "UIDVALIDITY changed: reading the mailbox from its start (handled mail is recognised by Message-ID)");
                0
            }
            None => 0,
        };
        let mut uids: BTreeSet<u32> = timed("UID SEARCH", session.uid_search(format!("UID {}:*", last + 1)))
            .await?
            .into_iter()
            .filter(|u| *u > last)
            .collect();
        if rescan {
            // Mail a crash (or a failed turn) left behind: with a processed
            // folder, everything still here; otherwise everything unseen.
            let query = if mode.moving { "ALL" } else { "UNSEEN" };
            uids.extend(timed("UID SEARCH", session.uid_search(query)).await?);
        }
        let uids: Vec<u32> = uids.into_iter().collect();
        rescan = read(&mut session, channel, settings, concurrency, &name, uidvalidity, &uids, mode, stop).await?;
        if *stop.borrow() {
            let _ = timed("LOGOUT", session.logout()).await;
            return Ok(());
        }
        session = wait(session, settings, can_idle && settings.idle, stop).await?;
        if *stop.borrow() {
            let _ = timed("LOGOUT", session.logout()).await;
            return Ok(());
        }
    }
}

#[derive(Clone, Copy)]
struct Mode {
    /// Handled mail is moved to the processed folder.
    moving: bool,
    can_move: bool,
    can_uidplus: bool,
}

/// Handled mail is flagged and moved at most this often while a backlog is
/// read (and once at the end of every round, so in steady operation at
/// once). Each such command costs Dovecot (Maildir) time in proportion to
/// the mailbox, not to the mails moved, and holds up the next fetch: during
/// a backlog, fewer and bigger moves keep the turns fed. A crash in between
/// only means more already-handled mail to recognise by Message-ID.
const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// Reads `uids` in batches and hands each mail to a pipeline of turns as
/// soon as it is fetched: the server fetches (and flags and moves) while
/// the turns run, and the turns never wait for a whole batch to finish.
/// Returns whether any mail could not be handled (it stays, and the next
/// round looks for it).
#[allow(clippy::too_many_arguments)]
async fn read<S>(
    session: &mut Session<S>,
    channel: &EmailChannel,
    settings: &ImapSettings,
    concurrency: usize,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
    mode: Mode,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    use futures::StreamExt as _;
    if uids.is_empty() {
        return Ok(false);
    }
    let started = std::time::Instant::now();
    let (mail_tx, mail_rx) = tokio::sync::mpsc::channel::<(u32, Vec<u8>)>(settings.fetch_batch as usize);
    let (result_tx, mut result_rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = {
        let mailbox = mailbox.to_string();
        let mails = futures::stream::unfold(mail_rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
            .map(move |(uid, raw)| (uid, raw, Source::Imap { mailbox: mailbox.clone(), uidvalidity, uid }));
        let results = channel.handle_stream(mails, concurrency);
        tokio::spawn(results.for_each(move |result| {
            let _ = result_tx.send(result);
            std::future::ready(())
        }))
    };

    let (mut sent, mut received, mut failed) = (0usize, 0usize, false);
    let mut done: Vec<u32> = Vec::new();
    let mut record = |(uid, result): (u32, Result<super::Outcome, super::EmailError>), done: &mut Vec<u32>| {
        received += 1;
        match result {
            Ok(outcome) => {
                tracing::debug!(mailbox, uid, "mail {outcome}");
                done.push(uid);
            }
            Err(e) => {
                tracing::warn!(mailbox, uid, "mail not handled yet; will try again: {e:#}");
                failed = true;
            }
        }
    };
    let mut flushed_at = std::time::Instant::now();
    for chunk in uids.chunks(settings.fetch_batch as usize) {
        if *stop.borrow() {
            break;
        }
        let fetched = channel.stages().time_async(Stage::Fetch, fetch(session, chunk)).await?;
        for mail in fetched {
            let mut pending = Some(mail);
            while let Some(mail) = pending.take() {
                tokio::select! {
                    permit = mail_tx.reserve() => {
                        permit.context("the mail pipeline stopped")?.send(mail);
                        sent += 1;
                    }
                    Some(result) = result_rx.recv() => {
                        record(result, &mut done);
                        pending = Some(mail);
                    }
                }
            }
        }
        while let Ok(result) = result_rx.try_recv() {
            record(result, &mut done);
        }
        if !done.is_empty() && flushed_at.elapsed() >= FLUSH_EVERY {
            channel.stages().time_async(Stage::FlagMove, flush(session, &done, settings, mode)).await?;
            done.clear();
            flushed_at = std::time::Instant::now();
        }
    }
    drop(mail_tx);
    while let Some(result) = result_rx.recv().await {
        record(result, &mut done);
    }
    handler.await.context("the mail pipeline")?;
    failed |= received < sent;
    tracing::debug!(mails = sent, took = ?started.elapsed(), "IMAP round");
    channel.stages().time_async(Stage::FlagMove, flush(session, &done, settings, mode)).await?;
    Ok(failed)
}

/// Fetches mails by UID, without flagging them: [`flush`] flags what was
/// handled. (A fetch that flagged `\Seen` itself would save a command per
/// flush, but a Maildir server renames a file for every flag it sets: that
/// doubled the fetch's time, spent while the mails wait for their answers.)
async fn fetch<S>(session: &mut Session<S>, uids: &[u32]) -> anyhow::Result<Vec<(u32, Vec<u8>)>>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let set = uid_set(uids);
    timed("UID FETCH", async {
        let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
        stream
            .try_filter_map(|f| async move { Ok(f.uid.map(|u| (u, f.body().unwrap_or_default().to_vec()))) })
            .try_collect()
            .await
    })
    .await
}

/// Marks handled mail: flagged `\Seen`, and moved to the processed folder
/// if there is one.
async fn flush<S>(session: &mut Session<S>, uids: &[u32], settings: &ImapSettings, mode: Mode) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    timed("UID STORE", async {
        session.uid_store(&set, "+FLAGS.SILENT (\\Seen)").await?.try_collect::<Vec<_>>().await
    })
    .await?;
    let Some(folder) = settings.processed_folder.as_deref().filter(|_| mode.moving) else {
        return Ok(());
    };
    if mode.can_move {
        timed("UID MOVE", session.uid_mv(&set, folder)).await?;
        return Ok(());
    }
    timed("UID COPY", session.uid_copy(&set, folder)).await?;
    timed("UID STORE", async {
        session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?.try_collect::<Vec<_>>().await
    })
    .await?;
    if mode.can_uidplus {
        timed("UID EXPUNGE", async { session.uid_expunge(&set).await?.try_collect::<Vec<_>>().await }).await?;
    } else {
        timed("EXPUNGE", async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
    }
    Ok(())
}

/// Waits for news: IDLE when possible (ended by the server's word, the poll
/// interval or `stop`), else a plain sleep and a NOOP.
async fn wait<S>(
    session: Session<S>,
    settings: &ImapSettings,
    idle: bool,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Session<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    if !idle {
        let mut session = session;
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = stop.changed() => return Ok(session),
        }
        timed("NOOP", session.noop()).await?;
        return Ok(session);
    }
    let mut handle = session.idle();
    timed("IDLE", handle.init()).await?;
    let (waiting, interrupt) = handle.wait_with_timeout(settings.poll_interval);
    let response = tokio::select! {
        r = waiting => Some(r.context("waiting in IDLE")?),
        _ = stop.changed() => None,
    };
    drop(interrupt);
    if let Some(IdleResponse::NewData(data)) = &response {
        if let imap_proto::Response::Data { status: imap_proto::Status::Bye, .. } = data.parsed() {
            bail!("the server said BYE");
        }
    }
    timed("DONE", handle.done()).await
}

/// `1,3:7,9` for a sorted list of UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(super::uid_set(&[9, 1, 3, 4, 5, 6, 7]), "1,3:7,9");
        assert_eq!(super::uid_set(&[2]), "2");
    }
}
