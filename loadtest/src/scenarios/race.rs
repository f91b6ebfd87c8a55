//! `race`: the reoffer opens and everyone wants the last seats at the pastor's table. N
//! buyers, each on a connection of their own (a share on WebSockets sending `buy` frames, the
//! rest on plain HTTP sending `POST /api/items/{id}/buy`), buy one unit each of K units at the
//! same instant. The connections are opened beforehand, so the instant is the purchase's,
//! not the TCP handshake's.
//!
//! Afterwards the run checks (`judge`): exactly K sold (successful answers, the items' units
//! sold and, with `--check-database-url`, the `reoffer` commitments in the database), every
//! buyer answered (a sale or `sold_out`; none lost, none timed out), no commitment named
//! twice, and the commitments are the purchases answered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use auuction_domain::ItemId;
use futures_util::{stream, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::{params, Ctx};
use crate::cli::RaceArgs;
use crate::report::{Report, ScenarioCheck, Series};
use crate::run::{Sample, Samples};
use crate::setup::ItemKind;
use crate::stats::Outcome;
use crate::ws::{self, ServerFrame, Socket, Target};

/// How a buyer reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Socket,
    Rest,
}

/// One buyer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuyAnswer {
    pub user: i64,
    pub item: i64,
    pub via: Via,
    /// The HTTP status (the `buy_result`'s on a socket); `None`: no answer (lost).
    pub status: Option<u16>,
    /// The error code of a refusal, or what went wrong when there was no answer.
    pub error: Option<String>,
    /// `c_<n>` of a 201.
    pub commitment: Option<i64>,
    pub quantity: u32,
}

/// A `reoffer` commitment as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitment {
    pub id: i64,
    pub user: i64,
    pub item: i64,
    pub quantity: i32,
}

/// What the check is given about each item.
pub struct ItemSales {
    pub item: i64,
    pub units: u32,
    /// `quantitySold` from `GET /api/items/{id}`.
    pub sold: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Purchased {
    commitment_id: String,
    quantity_purchased: u32,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
}

/// Reads a buy answer's body: the commitment of a 201, the code of a refusal.
fn read_answer(status: u16, body: &str) -> (Option<i64>, u32, Option<String>) {
    if status == 201 {
        return match serde_json::from_str::<Purchased>(body) {
            Ok(p) => (
                p.commitment_id
                    .strip_prefix("c_")
                    .and_then(|n| n.parse().ok()),
                p.quantity_purchased,
                None,
            ),
            Err(_) => (None, 0, Some("bad_201_body".into())),
        };
    }
    let code = serde_json::from_str::<Refusal>(body)
        .map(|r| r.error)
        .unwrap_or_else(|_| "unreadable".into());
    (None, 0, Some(code))
}

/// The verdict over every answer and the server's counts. `commitments` is `None` when the
/// database was not given.
pub fn judge(
    answers: &[BuyAnswer],
    items: &[ItemSales],
    commitments: Option<&[Commitment]>,
) -> ScenarioCheck {
    let mut problems = Vec::new();
    let mut problem = |text: String| {
        if problems.len() < 50 {
            problems.push(text);
        }
    };
    let units: u32 = items.iter().map(|i| i.units).sum();
    let sold_on_server: i64 = items.iter().map(|i| i64::from(i.sold)).sum();
    let mut sales: BTreeMap<i64, &BuyAnswer> = BTreeMap::new();
    let (mut sold_answers, mut sold_out, mut other, mut lost) = (0u64, 0u64, 0u64, 0u64);
    let mut duplicates = 0u64;
    for a in answers {
        match (a.status, a.error.as_deref()) {
            (Some(201), _) => {
                sold_answers += u64::from(a.quantity);
                match a.commitment {
                    Some(c) => {
                        if sales.insert(c, a).is_some() {
                            duplicates += 1;
                            problem(format!("c_{c} was answered to two purchases"));
                        }
                    }
                    None => {
                        other += 1;
                        problem(format!("u_{}: a 201 without a commitment", a.user));
                    }
                }
            }
            (Some(409), Some("sold_out")) => sold_out += 1,
            (None, e) => {
                lost += 1;
                problem(format!(
                    "u_{} ({:?}): no answer ({})",
                    a.user,
                    a.via,
                    e.unwrap_or("?")
                ));
            }
            (Some(status), e) => {
                other += 1;
                problem(format!(
                    "u_{} ({:?}): answered {status} {}",
                    a.user,
                    a.via,
                    e.unwrap_or("")
                ));
            }
        }
    }
    for i in items {
        let answered: u64 = answers
            .iter()
            .filter(|a| a.item == i.item && a.status == Some(201))
            .map(|a| u64::from(a.quantity))
            .sum();
        if answered != u64::from(i.units) || i64::from(i.sold) != i64::from(i.units) {
            problem(format!(
                "it_{}: {} units, {} sold by the answers, {} by the server",
                i.item, i.units, answered, i.sold
            ));
        }
    }
    let mut commitments_ok = true;
    if let Some(rows) = commitments {
        let recorded: BTreeSet<(i64, i64, i64, i32)> = rows
            .iter()
            .map(|c| (c.id, c.user, c.item, c.quantity))
            .collect();
        let answered: BTreeSet<(i64, i64, i64, i32)> = sales
            .iter()
            .map(|(c, a)| (*c, a.user, a.item, a.quantity as i32))
            .collect();
        if recorded != answered || recorded.len() != rows.len() {
            commitments_ok = false;
            problem(format!(
                "{} reoffer commitments recorded, {} purchases answered; they differ",
                rows.len(),
                answered.len()
            ));
        }
    }
    let passed = sold_answers == u64::from(units)
        && sold_on_server == i64::from(units)
        && sold_answers + sold_out == answers.len() as u64
        && lost == 0
        && other == 0
        && duplicates == 0
        && commitments_ok
        && problems.is_empty();
    let commitments_text = match commitments {
        Some(rows) => format!("{} commitments recorded", rows.len()),
        None => "commitments not read (no --check-database-url)".into(),
    };
    ScenarioCheck {
        what: "exactly the units there are sold, once each, every buyer answered".into(),
        expected: format!(
            "{units} sold (answers, units sold, commitments), the other {} sold_out, none lost",
            answers.len() as u64 - u64::from(units).min(answers.len() as u64)
        ),
        measured: format!(
            "{} buyers: {sold_answers} sold, {sold_out} sold_out, {other} other answers, {lost} lost; \
             server sold {sold_on_server}; {commitments_text}",
            answers.len()
        ),
        passed,
        problems,
    }
}

/// One buyer on a WebSocket: at `at`, a `buy` frame; then its `buy_result`.
async fn buy_on_socket(
    mut socket: Socket,
    user: i64,
    item: ItemId,
    key: String,
    at: Instant,
    wait: Duration,
    samples: Samples,
) -> BuyAnswer {
    let frame = serde_json::json!({
        "type": "buy", "ref": "1", "itemId": item, "quantity": 1, "idempotencyKey": key,
    })
    .to_string();
    tokio::time::sleep_until(at.into()).await;
    let deadline = tokio::time::Instant::from_std(at + wait);
    let answer = async {
        socket.send(Message::Text(frame.into())).await?;
        loop {
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Err(_) => bail!("timeout"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(ServerFrame::BuyResult(r)) = ws::parse_frame(text.as_str()) {
                        if r.reference.as_deref() == Some("1") {
                            return Ok((r.status, r.body.get().to_string()));
                        }
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(_) => bail!("disconnected"),
            }
        }
    }
    .await;
    let latency = at.elapsed();
    let _ = socket.close(None).await;
    finish(user, item, Via::Socket, answer, at, latency, &samples)
}

/// A plain HTTP/1.1 connection opened ahead of the purchase, from the next source address.
async fn connect_http(ctx: &Ctx) -> Result<TcpStream> {
    let target: &Target = &ctx.target;
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = ctx.sources.pick() {
        socket.bind(std::net::SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target.addr).await.context("tcp connect")?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The request, written by hand: one request per connection (`Connection: close`), so the
/// answer is everything until the server closes it.
fn buy_request(host: &str, token: &str, item: ItemId, key: &str) -> String {
    let body = format!(r#"{{"quantity":1,"idempotencyKey":"{key}"}}"#);
    format!(
        "POST /api/items/{item}/buy HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Status and body of an HTTP/1.1 response read to its end (a chunked body is joined).
pub fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("an answer without headers")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an answer without a status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).context("a chunk's size")?;
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    Ok((status, out))
}

/// One buyer on REST: at `at`, the request on the connection opened beforehand.
#[allow(clippy::too_many_arguments)]
async fn buy_on_rest(
    mut stream: TcpStream,
    request: String,
    user: i64,
    item: ItemId,
    at: Instant,
    wait: Duration,
    samples: Samples,
) -> BuyAnswer {
    tokio::time::sleep_until(at.into()).await;
    let answer = tokio::time::timeout_at(tokio::time::Instant::from_std(at + wait), async {
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(1024);
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("timeout")));
    let latency = at.elapsed();
    finish(user, item, Via::Rest, answer, at, latency, &samples)
}

fn finish(
    user: i64,
    item: ItemId,
    via: Via,
    answer: Result<(u16, String)>,
    at: Instant,
    latency: Duration,
    samples: &Samples,
) -> BuyAnswer {
    let (outcome, answer) = match answer {
        Ok((status, body)) => {
            let (commitment, quantity, error) = read_answer(status, &body);
            let outcome = match (status, &error) {
                (201, None) => Outcome::Ok,
                (409, Some(code)) => Outcome::Refused(code.clone()),
                (_, code) => Outcome::Error(format!("{status} {}", code.as_deref().unwrap_or(""))),
            };
            (
                outcome,
                BuyAnswer {
                    user,
                    item: item.0,
                    via,
                    status: Some(status),
                    error,
                    commitment,
                    quantity,
                },
            )
        }
        Err(e) => {
            let kind = format!("{e:#}");
            let kind = kind.split(':').next().unwrap_or("failed").to_string();
            (
                Outcome::Error(kind.clone()),
                BuyAnswer {
                    user,
                    item: item.0,
                    via,
                    status: None,
                    error: Some(kind),
                    commitment: None,
                    quantity: 0,
                },
            )
        }
    };
    let series = match via {
        Via::Socket => 1,
        Via::Rest => 2,
    };
    for series in [0, series] {
        let _ = samples.send(Sample {
            series,
            intended: at,
            latency,
            outcome: outcome.clone(),
        });
    }
    answer
}

/// The `reoffer` commitments of `items`, read from the server's database (development or
/// staging only; read-only).
async fn commitments(url: &str, items: &[i64]) -> Result<Vec<Commitment>> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .context("--check-database-url")?;
    let rows: Vec<(i64, i64, i64, i32)> = sqlx::query_as(
        "SELECT id, user_id, item_id, quantity FROM commitments
          WHERE source = 'reoffer' AND item_id = ANY($1) ORDER BY id",
    )
    .bind(items)
    .fetch_all(&pool)
    .await
    .context("reading the reoffer commitments")?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|(id, user, item, quantity)| Commitment {
            id,
            user,
            item,
            quantity,
        })
        .collect())
}

pub async fn run(ctx: &Ctx, args: &RaceArgs) -> Result<Report> {
    let n = args.buyers.max(1);
    let units = args.units.max(1);
    let items_n = args.items.clamp(1, units as usize);
    let per_item: Vec<u32> = (0..items_n as u32)
        .map(|j| units / items_n as u32 + u32::from(j < units % items_n as u32))
        .collect();
    let on_sockets = ((n as f64) * args.socket_share.clamp(0.0, 1.0)).round() as usize;
    let wait = Duration::from_secs(args.wait.max(1));
    let world = ctx
        .world_of(
            items_n,
            ItemKind::FixedPrice(per_item.clone()),
            n,
            Duration::from_secs(3600),
            0,
        )
        .await?;
    let mut report = ctx.report(
        "race",
        params(&[
            ("buyers", n.to_string()),
            ("on sockets", on_sockets.to_string()),
            ("on REST", (n - on_sockets).to_string()),
            ("units", units.to_string()),
            ("items", items_n.to_string()),
            ("auction", world.auction.id.to_string()),
        ]),
    );

    // The reoffer opens; the stock must be on sale before anyone is let go.
    world.admin.open_reoffer(world.auction.id).await?;
    let listing = world.admin.reoffer_items(world.auction.id).await?;
    if !listing.open {
        bail!("the reoffer did not open");
    }
    for (item, want) in world.items.iter().zip(&per_item) {
        let on_sale = listing
            .items
            .iter()
            .find(|l| l.id == item.id)
            .map_or(0, |l| l.quantity_remaining);
        if on_sale != *want {
            bail!("{} is on sale with {on_sale} units, not {want}", item.id);
        }
    }

    let connect_started = Instant::now();
    let sockets = ctx
        .connect_many(Some(&world.bidders[..on_sockets]), on_sockets)
        .await;
    let streams: Vec<Result<TcpStream>> = stream::iter(on_sockets..n)
        .map(|_| connect_http(ctx))
        .buffered(256)
        .collect()
        .await;
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let mut connect_errors = 0u64;

    // Everyone goes at the same instant, a moment after the last task is ready.
    let at = Instant::now() + Duration::from_millis(500 + n as u64 / 20);
    let (samples, collector) =
        crate::run::collector(3, at, std::sync::Arc::new(crate::run::Live::default()));
    let nonce: u64 = rand::random();
    let host = ctx
        .common
        .server
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut tasks = Vec::with_capacity(n);
    for (i, socket) in sockets.into_iter().enumerate() {
        let Ok(socket) = socket else {
            connect_errors += 1;
            continue;
        };
        let buyer = &world.bidders[i];
        let item = world.items[i % items_n].id;
        tasks.push(tokio::spawn(buy_on_socket(
            socket,
            buyer.id.0,
            item,
            format!("r-{nonce:016x}{i:08x}"),
            at,
            wait,
            samples.clone(),
        )));
    }
    for (j, stream) in streams.into_iter().enumerate() {
        let i = on_sockets + j;
        let Ok(stream) = stream else {
            connect_errors += 1;
            continue;
        };
        let buyer = &world.bidders[i];
        let item = world.items[i % items_n].id;
        let request = buy_request(&host, &buyer.token, item, &format!("r-{nonce:016x}{i:08x}"));
        tasks.push(tokio::spawn(buy_on_rest(
            stream,
            request,
            buyer.id.0,
            item,
            at,
            wait,
            samples.clone(),
        )));
    }
    if Instant::now() > at {
        bail!("the buyers were not ready before the instant; try fewer buyers");
    }
    let bar = crate::run::progress(1, ctx.common.quiet);
    let mut answers = Vec::with_capacity(n);
    for t in tasks {
        answers.push(t.await.context("a buyer's task failed")?);
    }
    let seconds = at.elapsed().as_secs_f64();
    bar.finish_and_clear();
    drop(samples);
    let stats = collector.await?;

    let mut sales = Vec::with_capacity(items_n);
    for (item, units) in world.items.iter().zip(&per_item) {
        let state = world.admin.item_state(item.id).await?;
        sales.push(ItemSales {
            item: item.id.0,
            units: *units,
            sold: state.quantity_sold,
        });
    }
    let recorded = match &ctx.common.check_database_url {
        Some(url) => {
            let ids: Vec<i64> = world.items.iter().map(|i| i.id.0).collect();
            Some(commitments(url, &ids).await?)
        }
        None => None,
    };
    let mut check = judge(&answers, &sales, recorded.as_deref());
    if connect_errors > 0 {
        check.passed = false;
        check
            .problems
            .push(format!("{connect_errors} buyers could not connect"));
    }

    report.seconds = seconds;
    let names = [
        ("buy answer", "every buyer: from the common instant to the answer (201 or sold_out)"),
        ("buy answer, sockets", "buyers sending a `buy` frame: to its `buy_result`"),
        ("buy answer, REST", "buyers sending POST /api/items/{id}/buy on a connection opened beforehand: to the whole response"),
    ];
    for ((name, measures), s) in names.iter().zip(&stats) {
        report
            .series
            .push(Series::from_stats(name, measures, s, seconds));
    }
    let by_via: HashMap<bool, usize> = answers.iter().fold(HashMap::new(), |mut m, a| {
        *m.entry(a.via == Via::Socket).or_default() += 1;
        m
    });
    let figures = [
        ("connect errors", connect_errors.to_string()),
        (
            "connections opened beforehand (s)",
            format!("{connect_seconds:.1}"),
        ),
        (
            "answers on sockets / REST",
            format!(
                "{} / {}",
                by_via.get(&true).unwrap_or(&0),
                by_via.get(&false).unwrap_or(&0)
            ),
        ),
    ];
    for (k, v) in figures {
        report.figures.insert(k.into(), v);
    }
    report.checks.push(check);
    report.judge();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sold(user: i64, item: i64, c: i64) -> BuyAnswer {
        BuyAnswer {
            user,
            item,
            via: Via::Rest,
            status: Some(201),
            error: None,
            commitment: Some(c),
            quantity: 1,
        }
    }

    fn refused(user: i64, item: i64, code: &str) -> BuyAnswer {
        BuyAnswer {
            user,
            item,
            via: Via::Socket,
            status: Some(409),
            error: Some(code.into()),
            commitment: None,
            quantity: 0,
        }
    }

    fn commitment(id: i64, user: i64, item: i64) -> Commitment {
        Commitment {
            id,
            user,
            item,
            quantity: 1,
        }
    }

    /// Two units of item 1, four buyers: two sales, two sold_out, two commitments.
    fn story() -> (Vec<BuyAnswer>, Vec<ItemSales>, Vec<Commitment>) {
        (
            vec![
                sold(1, 1, 10),
                refused(2, 1, "sold_out"),
                sold(3, 1, 11),
                refused(4, 1, "sold_out"),
            ],
            vec![ItemSales {
                item: 1,
                units: 2,
                sold: 2,
            }],
            vec![commitment(10, 1, 1), commitment(11, 3, 1)],
        )
    }

    #[test]
    fn exactly_the_units_sold_once_each_passes() {
        let (answers, items, rows) = story();
        let c = judge(&answers, &items, Some(&rows));
        assert!(c.passed, "{c:?}");
        assert!(judge(&answers, &items, None).passed, "without the database");
    }

    #[test]
    fn an_oversell_fails() {
        let (mut answers, mut items, mut rows) = story();
        answers[1] = sold(2, 1, 12);
        items[0].sold = 3;
        rows.push(commitment(12, 2, 1));
        assert!(!judge(&answers, &items, Some(&rows)).passed);
    }

    #[test]
    fn a_lost_answer_or_another_refusal_fails() {
        let (mut answers, items, rows) = story();
        answers[1].status = None;
        answers[1].error = Some("timeout".into());
        assert!(!judge(&answers, &items, Some(&rows)).passed);
        let (mut answers, items, rows) = story();
        answers[3] = refused(4, 1, "storage_unavailable");
        answers[3].status = Some(503);
        assert!(!judge(&answers, &items, Some(&rows)).passed);
    }

    #[test]
    fn commitments_must_be_the_purchases_answered() {
        let (answers, items, mut rows) = story();
        rows[1].user = 4;
        assert!(!judge(&answers, &items, Some(&rows)).passed, "wrong buyer");
        let (answers, items, mut rows) = story();
        rows.push(commitment(13, 2, 1));
        assert!(!judge(&answers, &items, Some(&rows)).passed, "one too many");
        let (mut answers, items, rows) = story();
        answers[2].commitment = Some(10);
        assert!(!judge(&answers, &items, Some(&rows)).passed, "named twice");
    }

    #[test]
    fn fewer_sold_than_units_fails() {
        let (mut answers, mut items, mut rows) = story();
        answers[2] = refused(3, 1, "sold_out");
        items[0].sold = 1;
        rows.pop();
        assert!(!judge(&answers, &items, Some(&rows)).passed);
    }

    #[test]
    fn answers_are_read() {
        let body = r#"{"itemId":"it_4","quantityPurchased":1,"priceEach":10.00,"commitmentId":"c_77","quantityRemaining":3}"#;
        assert_eq!(read_answer(201, body), (Some(77), 1, None));
        assert_eq!(
            read_answer(409, r#"{"error":"sold_out","message":"Sold out."}"#),
            (None, 0, Some("sold_out".into()))
        );
        let raw = b"HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{\"error\":\"sold_out\"}";
        assert_eq!(
            parse_response(raw).unwrap(),
            (409, r#"{"error":"sold_out"}"#.to_string())
        );
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (201, "hello world".into()));
        assert!(parse_response(b"garbage").is_err());
    }
}
