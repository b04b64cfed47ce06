//! Where a member's private conversation lives: a private thread of a
//! support channel, or the DM channel with the bot. Found once, then
//! remembered (store and memory), so a restart continues in the same place.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use serenity::all::{AutoArchiveDuration, ChannelId, ChannelType, CreateThread, Http, UserId};

use super::{delivery::rest, DiscordError};
use crate::{
    config::DiscordPrivate,
    store::{PrivatePlace, Store},
};

const THREAD: &str = "thread";
const DM: &str = "dm";

pub struct Places {
    store: Store,
    mode: DiscordPrivate,
    attempts: u32,
    /// Member → their place, and place → its member.
    by_user: Mutex<HashMap<u64, u64>>,
    by_channel: Mutex<HashMap<u64, u64>>,
    /// Channels known to be nobody's place: the bot sees every message of
    /// the server, and most are not for it; one store query per channel, not
    /// per message. Never stale for our own threads: a thread is recorded
    /// before its member can write in it.
    elsewhere: Mutex<HashSet<u64>>,
}

/// Channels remembered as nobody's place before the set starts afresh.
const ELSEWHERE_LIMIT: usize = 100_000;

impl Places {
    pub fn new(store: Store, mode: DiscordPrivate, attempts: u32) -> Places {
        Places {
            store,
            mode,
            attempts,
            by_user: Mutex::default(),
            by_channel: Mutex::default(),
            elsewhere: Mutex::default(),
        }
    }

    fn remember(&self, user: u64, channel: u64) {
        self.by_user.lock().expect("places").insert(user, channel);
        self.by_channel.lock().expect("places").insert(channel, user);
        self.elsewhere.lock().expect("places").remove(&channel);
    }

    /// The member whose private place `channel` is, if it is one.
    pub async fn owner(&self, channel: ChannelId) -> Result<Option<UserId>, DiscordError> {
        if let Some(user) = self.by_channel.lock().expect("places").get(&channel.get()) {
            return Ok(Some(UserId::new(*user)));
        }
        if self.elsewhere.lock().expect("places").contains(&channel.get()) {
            return Ok(None);
        }
        let Some(place) = self.store.discord_private_owner(&channel.to_string()).await? else {
            let mut elsewhere = self.elsewhere.lock().expect("places");
            if elsewhere.len() >= ELSEWHERE_LIMIT {
                elsewhere.clear();
            }
            elsewhere.insert(channel.get());
            return Ok(None);
        };
        let user = parse_id(&place.user_id)?;
        self.remember(user, channel.get());
        Ok(Some(UserId::new(user)))
    }

    /// The member's private place, opened in `support` (a thread) or as a DM
    /// when they have none yet. With `rejoin`, a member who left their thread
    /// is added to it again (they wrote in public, so they look for it).
    pub async fn get_or_open(
        &self,
        http: &Http,
        user: UserId,
        support: ChannelId,
        now_ms: i64,
        rejoin: bool,
    ) -> Result<ChannelId, DiscordError> {
        let known = self.by_user.lock().expect("places").get(&user.get()).copied();
        let known = match known {
            Some(channel) => Some(channel),
            None => match self.store.discord_private(&user.to_string()).await? {
                Some(place) => {
                    let channel = parse_id(&place.channel_id)?;
                    self.remember(user.get(), channel);
                    Some(channel)
                }
                None => None,
            },
        };
        if let Some(channel) = known {
            let channel = ChannelId::new(channel);
            if rejoin && self.mode == DiscordPrivate::Thread {
                rest(self.attempts, || channel.add_thread_member(http, user)).await?;
            }
            return Ok(channel);
        }
        let (channel, kind) = match self.mode {
            DiscordPrivate::Thread => {
                // The name is visible to the member and the support team only;
                // it holds nothing personal.
                let builder = CreateThread::new("Account help")
                    .kind(ChannelType::PrivateThread)
                    .invitable(false)
                    .auto_archive_duration(AutoArchiveDuration::OneWeek);
                (rest(self.attempts, || support.create_thread(http, builder.clone())).await?.id, THREAD)
            }
            DiscordPrivate::Dm => (rest(self.attempts, || user.create_dm_channel(http)).await?.id, DM),
        };
        // Recorded before the member is added: if adding fails, the next try
        // uses this thread rather than opening another one.
        let place = PrivatePlace { user_id: user.to_string(), channel_id: channel.to_string(), kind: kind.into() };
        let held = self.store.claim_discord_private(&place, now_ms).await?;
        let channel = ChannelId::new(parse_id(&held.channel_id)?);
        self.remember(user.get(), channel.get());
        if kind == THREAD {
            rest(self.attempts, || channel.add_thread_member(http, user)).await?;
        }
        Ok(channel)
    }

    /// The member's place is gone (a deleted thread): the next message opens
    /// a new one.
    pub async fn forget(&self, user: UserId, channel: ChannelId) -> Result<(), DiscordError> {
        self.by_user.lock().expect("places").remove(&user.get());
        self.by_channel.lock().expect("places").remove(&channel.get());
        self.store.forget_discord_private(&user.to_string(), &channel.to_string()).await?;
        Ok(())
    }
}

fn parse_id(s: &str) -> Result<u64, DiscordError> {
    s.parse().map_err(|_| DiscordError::Corrupt(format!("stored Discord id {s:?}")))
}
