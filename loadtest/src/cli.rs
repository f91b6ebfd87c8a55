//! The command line. Every scenario takes the common options (server, admin, outputs,
//! thresholds) and its own sizes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "auuction-loadtest",
    version,
    about = "Rehearse auction night against a running auuction server (HTTP API and WebSocket only)",
    long_about = "Creates its own auction, items and verified bidders with an admin's credentials, \
runs one scenario open-loop (latency from each request's intended send time), checks afterwards \
that every acknowledged bid is recorded once and every price replays, and writes a summary, \
a JSON report and an HTML report.\n\nExit status: 0 pass, 1 post-run check failed (lost, \
duplicated or mis-priced bids), 2 a threshold was missed, 3 the run could not be done."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The server's base URL (plain HTTP; run the generator on the LAN, next to the proxy).
    #[arg(
        long,
        global = true,
        env = "AUUCTION_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// An admin account's email, for the setup (auction, items, bidders) and the check.
    #[arg(long, global = true, env = "AUUCTION_ADMIN_EMAIL", default_value = "")]
    pub admin_email: String,
    #[arg(
        long,
        global = true,
        env = "AUUCTION_ADMIN_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub admin_password: String,
    /// Source addresses for WebSocket connections: a count n (127.0.0.1…127.0.0.n, loopback
    /// targets only), a comma-separated list, or "" to let the OS choose. One address can
    /// hold about 28k connections to one server port.
    #[arg(long, global = true, default_value = "8")]
    pub sources: String,
    /// Write the JSON report here.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long, global = true)]
    pub html: Option<PathBuf>,
    /// Fail the run if the headline series' p99 is above this (milliseconds).
    #[arg(long, global = true)]
    pub p99_max_ms: Option<f64>,
    /// Fail the run if the headline series' slowest answer is above this (milliseconds);
    /// in `close`, the last item's close.
    #[arg(long, global = true)]
    pub max_ms: Option<f64>,
    /// Fail the run if the headline series' successful answers per second are below this.
    #[arg(long, global = true)]
    pub min_rate: Option<f64>,
    /// Fail the run if the headline series has more errors than this (HTTP errors, timeouts,
    /// disconnects; refusals such as bid_too_low are not errors).
    #[arg(long, global = true)]
    pub max_errors: Option<u64>,
    /// No progress bar.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Send bids without an idempotency key. The web client sends a fresh key with every bid,
    /// and the server stores each one with its answer, so by default the load tester does too;
    /// this measures what the keys cost.
    #[arg(long, global = true)]
    pub no_idempotency_keys: bool,
    /// DEVELOPMENT ONLY: insert the run's items straight into this database instead of
    /// creating them through the catalog API. Never against staging or production.
    #[arg(
        long,
        global = true,
        env = "AUUCTION_LOADTEST_DEV_DATABASE_URL",
        hide_env_values = true
    )]
    pub dev_items_database_url: Option<String>,
    /// DEVELOPMENT OR STAGING, READ-ONLY: the server's database, for checks the API cannot
    /// show: `race` compares the reoffer commitments with the purchases answered, `close` the
    /// win commitments with the winners.
    #[arg(
        long,
        global = true,
        env = "AUUCTION_LOADTEST_CHECK_DATABASE_URL",
        hide_env_values = true
    )]
    pub check_database_url: Option<String>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// N bidders over M items (Zipf-skewed) at a target rate of bids/s over WebSocket; bidding
    /// closes shortly after the run so soft-close extensions happen in its second half.
    Storm(StormArgs),
    /// C bidders bid on one item at the same instant, in one or more bursts.
    HotItem(HotItemArgs),
    /// W subscribers spread over items; measures the delay from a bid's acknowledgement to
    /// each watcher's price frame for it.
    Watchers(WatchersArgs),
    /// W idle connections held; reports the server's memory per connection from /metrics.
    Idle(IdleArgs),
    /// Page and catalog loads (GET) at a target rate.
    Browse(BrowseArgs),
    /// M items closing at the same instant after a bid storm into their last seconds; checks
    /// every close (winners replayed from the recorded bids, no bid after its item's close)
    /// and measures from each item's close to its `closed` frame.
    Close(CloseArgs),
    /// N buyers (sockets and REST) buy K reoffer units at the same instant; checks exactly K
    /// are sold, once each, and every buyer gets an answer.
    Race(RaceArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StormArgs {
    #[arg(long, default_value_t = 200)]
    pub bidders: usize,
    #[arg(long, default_value_t = 100)]
    pub items: usize,
    /// Zipf exponent for item popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Target bids per second (sent open-loop on a fixed schedule).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Seconds at the start whose bids are sent and checked but left out of the figures
    /// (item books load on their first bid).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Share of bids that carry a proxy maximum above their amount (0..1).
    #[arg(long, default_value_t = 0.1)]
    pub proxy_share: f64,
    /// Guest sockets flooding subscribe frames during the run (the auction, every item and
    /// hundreds of made-up items in each), to see what a hostile client costs the bidders.
    #[arg(long, default_value_t = 0)]
    pub flooders: usize,
    /// Subscribe frames per second sent by all flooders together.
    #[arg(long, default_value_t = 500.0)]
    pub flood_rate: f64,
}

#[derive(Args, Debug, Clone)]
pub struct HotItemArgs {
    /// Concurrent bidders, each on its own connection, all bidding at once.
    #[arg(long, default_value_t = 500)]
    pub bidders: usize,
    /// Bursts, one second apart.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Args, Debug, Clone)]
pub struct WatchersArgs {
    /// Subscriber connections (unauthenticated, like guests watching the catalog).
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    #[arg(long, default_value_t = 50)]
    pub items: usize,
    /// Items each watcher subscribes to.
    #[arg(long, default_value_t = 1)]
    pub topics_per_watcher: usize,
    /// Bidder connections producing the prices.
    #[arg(long, default_value_t = 20)]
    pub bidders: usize,
    /// Bids per second across all items.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to hold them after all are open.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Connect with bidder tokens (authenticated sockets) instead of as guests.
    #[arg(long)]
    pub auth: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BrowseArgs {
    /// Requests per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Items created for item pages.
    #[arg(long, default_value_t = 20)]
    pub items: usize,
    /// Paths to load, round-robin; `{item}` is replaced by one of the run's item ids.
    #[arg(long = "path", default_values_t = [
        "/".to_string(),
        "/catalog".to_string(),
        "/items/{item}".to_string(),
        "/api/items".to_string(),
        "/api/items/{item}".to_string(),
        "/api/auctions/current".to_string(),
    ])]
    pub paths: Vec<String>,
    /// Most requests in flight; more wait (and the wait counts in their latency).
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
}

#[derive(Args, Debug, Clone)]
pub struct CloseArgs {
    /// Items, all closing at the same instant (the auction's bidding close).
    #[arg(long, default_value_t = 1000)]
    pub items: usize,
    /// Bidder connections.
    #[arg(long, default_value_t = 200)]
    pub bidders: usize,
    /// Bids per second, spread uniformly over the items.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of bidding up to the close.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds the storm goes on past the scheduled close: those bids must all be refused
    /// (`bidding_closed`) unless a soft-close extension kept their item open.
    #[arg(long, default_value_t = 1.0)]
    pub after_close: f64,
    /// The soft-close window in seconds. 0 (the default): no extensions, every item closes
    /// at the same instant, the closer's worst case.
    #[arg(long, default_value_t = 0)]
    pub soft_close: u32,
    /// Share of bids that carry a proxy maximum above their amount (0..1).
    #[arg(long, default_value_t = 0.1)]
    pub proxy_share: f64,
    /// Guest sockets watching the items (each item has one; at most 500 items per socket,
    /// so more are opened when there are more items).
    #[arg(long, default_value_t = 4)]
    pub watchers: usize,
    /// Seconds to wait after the close for the last `closed` frame.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

#[derive(Args, Debug, Clone)]
pub struct RaceArgs {
    /// Buyers, each with their own connection, all buying one unit at the same instant.
    #[arg(long, default_value_t = 10_000)]
    pub buyers: usize,
    /// Units for sale in all.
    #[arg(long, default_value_t = 25)]
    pub units: u32,
    /// Fixed-price items the units are spread over (in the reoffer, what nobody bought
    /// during bidding); each buyer goes for one, round-robin.
    #[arg(long, default_value_t = 1)]
    pub items: usize,
    /// Share of buyers on WebSockets (`buy` frames); the rest use `POST /api/items/{id}/buy`.
    #[arg(long, default_value_t = 0.5)]
    pub socket_share: f64,
    /// Seconds to wait for the last answer before counting it lost.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}
