//! One bidder's WebSocket: sends the bids it is handed, matches each `bid_result` to its bid
//! by `ref`, and reports latency from the bid's intended send time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auuction_domain::{Cents, ItemId};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::check::{Answer, SentBid};
use crate::run::{Sample, Samples};
use crate::stats::Outcome;
use crate::ws::{self, AcceptedBody, ErrorBody, ServerFrame, Socket};

/// A bid to send, with the time it should have left (the schedule, not the actual send).
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub intended: Instant,
    pub item: ItemId,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
}

/// When each acknowledged (item, seq) was acknowledged, for the watchers' delivery delay.
pub type AckTimes = Arc<Mutex<HashMap<(i64, u64), Instant>>>;

/// Who bids on this connection.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    pub user: i64,
    pub paddle: i32,
}

struct Pending {
    job: Job,
}

/// The bid frame, written by hand so money goes out as the exact decimal text (`12.00`).
/// `key` is the idempotency key, shaped as the web client's (`b-` and 24 hex digits).
pub fn bid_frame(reference: u64, job: &Job, key: Option<&str>) -> String {
    use std::fmt::Write;
    let mut frame = format!(
        r#"{{"type":"bid","ref":"{reference}","itemId":"{}","amount":{}"#,
        job.item, job.amount
    );
    if let Some(max) = job.max_proxy {
        let _ = write!(frame, r#","maxProxyAmount":{max}"#);
    }
    if let Some(key) = key {
        let _ = write!(frame, r#","idempotencyKey":"{key}""#);
    }
    frame.push('}');
    frame
}

/// A fresh idempotency key for the `n`th bid of a connection whose keys start with `nonce`.
fn idempotency_key(nonce: u64, n: u64) -> String {
    format!("b-{nonce:016x}{:08x}", n as u32)
}

/// What a `bid_result` means for the statistics and for the check.
pub fn classify(status: u16, body: &str) -> (Outcome, Answer) {
    if status == 201 {
        return match serde_json::from_str::<AcceptedBody>(body) {
            Ok(b) => (
                Outcome::Ok,
                Answer::Accepted {
                    seq: b.seq,
                    current_bid: b.current_bid,
                    leading: b.leading,
                },
            ),
            // Accepted but unreadable: it is recorded, we just cannot say how.
            Err(_) => (Outcome::Error("bad_201_body".into()), Answer::Unknown),
        };
    }
    let code = serde_json::from_str::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| "unreadable".into());
    match status {
        // Ordinary refusals under contention: someone else's bid got there first.
        409 | 422 => (Outcome::Refused(code), Answer::Refused),
        // 503 storage_unavailable and 429 promise the bid was not recorded.
        429 | 503 => (Outcome::Error(format!("{status} {code}")), Answer::Refused),
        // Anything else (a 500, say) might or might not have been recorded.
        _ => (Outcome::Error(format!("{status} {code}")), Answer::Unknown),
    }
}

/// How the bidder connections of a run behave.
#[derive(Clone)]
pub struct Settings {
    /// Record when each accepted (item, seq) was acknowledged (the watchers scenario).
    pub acks: Option<AckTimes>,
    /// How long to wait for outstanding answers once the jobs end.
    pub drain: Duration,
    /// Send a fresh idempotency key with every bid, as the web client does.
    pub keys: bool,
    /// The series that records each bid's send lag (from its intended time to its write):
    /// the generator's own lateness, which the ack latency includes.
    pub lag_series: Option<usize>,
}

/// Runs one bidder connection until `jobs` closes and every answer is in (or `drain` has
/// passed since). Returns every bid sent, with its answer, for the check.
pub async fn run(
    mut socket: Socket,
    who: Who,
    mut jobs: mpsc::Receiver<Job>,
    samples: Samples,
    series: usize,
    settings: Settings,
) -> Vec<SentBid> {
    let Settings {
        acks,
        drain,
        keys,
        lag_series,
    } = settings;
    // Keys must not repeat across connections or runs against the same database.
    let nonce: u64 = rand::random();
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut sent: Vec<SentBid> = Vec::new();
    let mut next_ref: u64 = 0;
    let mut open = true;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let record = |sent: &mut Vec<SentBid>, job: &Job, answer: Answer| {
        sent.push(SentBid {
            item: job.item.0,
            bidder: who.user,
            paddle: who.paddle,
            amount: job.amount,
            max_proxy: job.max_proxy,
            answer,
        });
    };
    let fail = |pending: &mut HashMap<u64, Pending>, sent: &mut Vec<SentBid>, kind: &str| {
        for (_, p) in pending.drain() {
            let _ = samples.send(Sample {
                series,
                intended: p.job.intended,
                latency: p.job.intended.elapsed(),
                outcome: Outcome::Error(kind.to_string()),
            });
            record(sent, &p.job, Answer::Unknown);
        }
    };
    loop {
        if !open && pending.is_empty() {
            break;
        }
        let deadline =
            drain_until.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            job = jobs.recv(), if open => match job {
                Some(job) => {
                    next_ref += 1;
                    pending.insert(next_ref, Pending { job });
                    let key = keys.then(|| idempotency_key(nonce, next_ref));
                    let frame = bid_frame(next_ref, &job, key.as_deref());
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        fail(&mut pending, &mut sent, "disconnected");
                        break;
                    }
                    if let Some(lag) = lag_series {
                        let _ = samples.send(Sample {
                            series: lag,
                            intended: job.intended,
                            latency: job.intended.elapsed(),
                            outcome: Outcome::Ok,
                        });
                    }
                }
                None => {
                    open = false;
                    drain_until = Some(tokio::time::Instant::now() + drain);
                }
            },
            msg = socket.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        fail(&mut pending, &mut sent, "disconnected");
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let Ok(ServerFrame::BidResult(result)) = ws::parse_frame(text.as_str()) else { continue };
                let Some(p) = result
                    .reference
                    .as_deref()
                    .and_then(|r| r.parse::<u64>().ok())
                    .and_then(|r| pending.remove(&r))
                else {
                    continue;
                };
                let now = Instant::now();
                let (outcome, answer) = classify(result.status, result.body.get());
                if let (Some(acks), Answer::Accepted { seq, .. }) = (&acks, &answer) {
                    if let Ok(mut map) = acks.lock() {
                        map.insert((p.job.item.0, *seq), now);
                    }
                }
                let _ = samples.send(Sample {
                    series,
                    intended: p.job.intended,
                    latency: now.saturating_duration_since(p.job.intended),
                    outcome,
                });
                record(&mut sent, &p.job, answer);
            },
            _ = tokio::time::sleep_until(deadline), if drain_until.is_some() => {
                fail(&mut pending, &mut sent, "timeout");
                break;
            }
        }
    }
    // Bids the dispatcher still queued for a connection that died are not sent at all.
    jobs.close();
    while let Ok(job) = jobs.try_recv() {
        let _ = samples.send(Sample {
            series,
            intended: job.intended,
            latency: Duration::ZERO,
            outcome: Outcome::Error("not_sent_connection_lost".into()),
        });
    }
    let _ = socket.close(None).await;
    sent
}

/// Bidder tasks started on the sockets that connected.
pub struct Started {
    pub senders: Vec<mpsc::Sender<Job>>,
    pub tasks: Vec<tokio::task::JoinHandle<Vec<SentBid>>>,
    pub connect_errors: u64,
}

/// Starts one [`run`] task per connected socket (paired with its bidder), each with a job
/// queue of `queue`; sockets that failed to connect are counted, not started. Every
/// scenario that bids starts its bidders this way.
pub fn start_all<E>(
    sockets: Vec<Result<Socket, E>>,
    bidders: &[crate::api::Bidder],
    queue: usize,
    samples: &Samples,
    settings: Settings,
) -> Started {
    let mut started = Started {
        senders: Vec::new(),
        tasks: Vec::new(),
        connect_errors: 0,
    };
    for (socket, b) in sockets.into_iter().zip(bidders) {
        let Ok(socket) = socket else {
            started.connect_errors += 1;
            continue;
        };
        let (tx, rx) = mpsc::channel(queue);
        let who = Who {
            user: b.id.0,
            paddle: b.paddle_number,
        };
        started.tasks.push(tokio::spawn(run(
            socket,
            who,
            rx,
            samples.clone(),
            0,
            settings.clone(),
        )));
        started.senders.push(tx);
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_exact_money() {
        let job = Job {
            intended: Instant::now(),
            item: ItemId(7),
            amount: Cents(12_05),
            max_proxy: Some(Cents(40_00)),
        };
        let f = bid_frame(3, &job, None);
        assert_eq!(
            f,
            r#"{"type":"bid","ref":"3","itemId":"it_7","amount":12.05,"maxProxyAmount":40.00}"#
        );
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["type"], "bid");
        let key = idempotency_key(0xabc, 3);
        assert_eq!(key, "b-0000000000000abc00000003");
        assert_eq!(key.len(), "b-".len() + 24, "shaped as client-js's newKey()");
        let f = bid_frame(
            4,
            &Job {
                max_proxy: None,
                ..job
            },
            Some(&key),
        );
        assert_eq!(
            f,
            r#"{"type":"bid","ref":"4","itemId":"it_7","amount":12.05,"idempotencyKey":"b-0000000000000abc00000003"}"#
        );
    }

    #[test]
    fn answers_are_classified() {
        let (o, a) = classify(
            201,
            r#"{"itemId":"it_1","leading":false,"currentBid":16.00,"seq":2,"leadingBidderId":"p_1"}"#,
        );
        assert_eq!(o, Outcome::Ok);
        assert_eq!(
            a,
            Answer::Accepted {
                seq: 2,
                current_bid: Cents(16_00),
                leading: false
            }
        );
        let (o, a) = classify(
            409,
            r#"{"error":"bid_too_low","message":"x","minimum":3.00}"#,
        );
        assert_eq!(
            (o, a),
            (Outcome::Refused("bid_too_low".into()), Answer::Refused)
        );
        let (o, a) = classify(503, r#"{"error":"storage_unavailable"}"#);
        assert_eq!(o, Outcome::Error("503 storage_unavailable".into()));
        assert_eq!(a, Answer::Refused);
        let (_, a) = classify(500, "oops");
        assert_eq!(a, Answer::Unknown);
    }
}
