//! The e-mail channel as `serve` runs it: the IMAP mailbox when one is
//! configured (one reader per mailbox among the instances sharing the
//! store), else the inbox folder in the data folder. Answers go through the
//! outbox (the reply-sink delivery model).

use std::sync::Arc;

use futures::{future::BoxFuture, FutureExt as _};
use tokio::sync::watch;

use super::{imap, maildir::Inbox, EmailChannel, CHANNEL};
use crate::{
    app::App,
    channels::{Channel, DeliveryModel},
    config::ImapSettings,
    store::Store,
};

enum Source {
    Imap { store: Store, settings: ImapSettings },
    Inbox { inbox: Arc<Inbox>, every: std::time::Duration },
}

pub struct Served {
    channel: EmailChannel,
    source: Source,
    concurrency: usize,
}

/// Support mail is always read: from IMAP, or from the inbox folder.
pub fn served(app: &App) -> anyhow::Result<Option<Box<dyn Channel>>> {
    let channel = EmailChannel::new(app.engine.clone(), app.settings.clone());
    let email = &app.settings.email;
    let source = match &email.imap {
        Some(settings) => {
            tracing::info!(host = %settings.host, mailbox = %settings.mailbox, "reading support mail over IMAP");
            Source::Imap { store: app.store.clone(), settings: settings.clone() }
        }
        None => {
            let inbox = Arc::new(Inbox::open(&app.data_dir.join("mail").join("inbox"))?);
            tracing::info!(inbox = %inbox.root().display(), "no IMAP configured: reading support mail from the inbox folder");
            Source::Inbox { inbox, every: email.inbox_poll_interval }
        }
    };
    Ok(Some(Box::new(Served { channel, source, concurrency: email.concurrency })))
}

impl Channel for Served {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn delivery(&self) -> DeliveryModel {
        DeliveryModel::ReplySink
    }

    fn run(self: Box<Self>, stop: watch::Receiver<bool>) -> BoxFuture<'static, anyhow::Result<()>> {
        let Served { channel, source, concurrency } = *self;
        match source {
            Source::Imap { store, settings } => async move {
                let lead =
                    format!("imap {}@{}:{}/{}", settings.username, settings.host, settings.port, settings.mailbox);
                // The reader reconnects by itself and ends only when stopped.
                crate::background::leading(&store, &lead, crate::background::LEAD_CHECK, stop, |stop| {
                    let read = imap::run(channel.clone(), settings.clone(), concurrency, stop);
                    async move {
                        read.await;
                        Ok(())
                    }
                })
                .await
            }
            .boxed(),
            Source::Inbox { inbox, every } => async move {
                crate::background::every("mail inbox", every, stop, move || {
                    let (inbox, channel) = (inbox.clone(), channel.clone());
                    async move { inbox.run_once(&channel, concurrency).await }
                })
                .await;
                Ok(())
            }
            .boxed(),
        }
    }
}
