//! The scenarios. Each builds its world, runs its load, checks, and returns a report.

pub mod browse;
pub mod close;
pub mod flood;
pub mod hot_item;
pub mod idle;
pub mod race;
pub mod storm;
pub mod watchers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{stream, StreamExt};

use crate::api::{Api, Bidder};
use crate::cli::Common;
use crate::report::{Report, Thresholds};
use crate::setup::{self, ItemKind, Plan, World};
use crate::ws::{self, Socket, Sources, Target};

/// What every scenario starts from.
pub struct Ctx {
    pub common: Common,
    pub target: Target,
    pub sources: Arc<Sources>,
}

impl Ctx {
    pub async fn new(common: &Common) -> Result<Ctx> {
        let target = Target::resolve(&common.server).await?;
        // A count of source addresses only makes sense on loopback, where every 127.x
        // address is ours; elsewhere let the OS choose unless addresses were listed.
        let spec = if !target.addr.ip().is_loopback() && common.sources.trim().parse::<u8>().is_ok()
        {
            ""
        } else {
            common.sources.as_str()
        };
        Ok(Ctx {
            common: common.clone(),
            target,
            sources: Arc::new(Sources::parse(spec)?),
        })
    }

    /// Logs in as the admin and builds the world, its items competitive.
    pub async fn world(
        &self,
        items: usize,
        bidders: usize,
        close_in: Duration,
        soft_close_seconds: i32,
    ) -> Result<World> {
        self.world_of(
            items,
            ItemKind::Competitive,
            bidders,
            close_in,
            soft_close_seconds,
        )
        .await
    }

    /// Logs in as the admin and builds the world with items of `kind`.
    pub async fn world_of(
        &self,
        items: usize,
        kind: ItemKind,
        bidders: usize,
        close_in: Duration,
        soft_close_seconds: i32,
    ) -> Result<World> {
        if self.common.admin_email.is_empty() {
            anyhow::bail!("give --admin-email and --admin-password (or AUUCTION_ADMIN_EMAIL / AUUCTION_ADMIN_PASSWORD)");
        }
        let admin = Api::new(&self.common.server)?
            .login(&self.common.admin_email, &self.common.admin_password)
            .await?;
        let plan = Plan {
            items,
            kind,
            bidders,
            close_in,
            soft_close_seconds,
            dev_items_database_url: self.common.dev_items_database_url.clone(),
        };
        setup::build(admin, &plan)
            .await
            .context("setting up the run's auction")
    }

    /// A report with the common fields filled in.
    pub fn report(&self, scenario: &str, parameters: BTreeMap<String, String>) -> Report {
        Report {
            scenario: scenario.to_string(),
            target: self.common.server.clone(),
            started_at: chrono::Utc::now().to_rfc3339(),
            parameters,
            thresholds: Thresholds {
                p99_max_ms: self.common.p99_max_ms,
                max_ms: self.common.max_ms,
                min_rate: self.common.min_rate,
                max_errors: self.common.max_errors,
            },
            ..Report::default()
        }
    }

    /// Opens one connection per token (or `count` guest connections when `tokens` is
    /// `None`), 256 handshakes at a time: a burst of thousands at once would mostly measure
    /// the listen backlog. Failed connects are returned as errors in place.
    pub async fn connect_many(
        &self,
        tokens: Option<&[Bidder]>,
        count: usize,
    ) -> Vec<Result<Socket>> {
        let target = &self.target;
        let sources = &self.sources;
        stream::iter(0..count)
            .map(|i| async move {
                let token = tokens.and_then(|t| t.get(i)).map(|b| b.token.as_str());
                ws::connect(target, sources, token).await
            })
            .buffered(256)
            .collect()
            .await
    }
}

/// `key = value` pairs for a report's parameters.
pub fn params(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}
