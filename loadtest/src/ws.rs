//! WebSocket connections from several source addresses, and the frames the load tester reads.
//!
//! One source address can open at most ~28k connections to one server port (the ephemeral
//! port range); spreading connections over 127.0.0.1, 127.0.0.2… (all loopback on Linux)
//! multiplies that. Each socket is bound before connecting, then handed to tungstenite.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, Context, Result};
use auuction_domain::{Cents, ItemId};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};
use tokio_tungstenite::WebSocketStream;
use url::Url;

pub type Socket = WebSocketStream<TcpStream>;

/// Where connections come from: source addresses handed out round-robin.
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// `spec` is empty (let the OS choose), a count `n` (127.0.0.1 … 127.0.0.n), or a
    /// comma-separated list of addresses.
    pub fn parse(spec: &str) -> Result<Sources> {
        let spec = spec.trim();
        let addrs = if spec.is_empty() {
            Vec::new()
        } else if let Ok(n) = spec.parse::<u8>() {
            (1..=n.max(1))
                .map(|i| IpAddr::from([127, 0, 0, i]))
                .collect()
        } else {
            spec.split(',')
                .map(|a| {
                    a.trim()
                        .parse::<IpAddr>()
                        .with_context(|| format!("source address {a:?}"))
                })
                .collect::<Result<Vec<_>>>()?
        };
        Ok(Sources {
            addrs,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The next source address (round-robin), or `None` to let the OS choose.
    pub fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub ws_url: Url,
    pub addr: SocketAddr,
}

impl Target {
    /// From the server's base URL (`http://host:port`): `ws://host:port/ws`, resolved once.
    pub async fn resolve(base: &str) -> Result<Target> {
        let mut url = Url::parse(base).with_context(|| format!("server URL {base:?}"))?;
        let scheme = match url.scheme() {
            "http" => "ws",
            "https" => return Err(anyhow!("https targets need TLS, which the load tester does not speak; point it at the server's plain HTTP port on the LAN")),
            other => return Err(anyhow!("unsupported scheme {other}")),
        };
        url.set_scheme(scheme)
            .map_err(|_| anyhow!("cannot make a ws:// URL of {base}"))?;
        url.set_path("/ws");
        let host = url.host_str().ok_or_else(|| anyhow!("no host in {base}"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("{host} does not resolve"))?;
        Ok(Target { ws_url: url, addr })
    }
}

/// Small client buffers: twenty thousand watchers at tungstenite's default 128 KiB read
/// buffer would be 2.5 GB in the generator alone.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a WebSocket, bearer-authenticated when `token` is given, from the next source
/// address.
pub async fn connect(target: &Target, sources: &Sources, token: Option<&str>) -> Result<Socket> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = sources.pick() {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding source address {ip}"))?;
    }
    let stream = socket.connect(target.addr).await.context("tcp connect")?;
    // Bids and prices are small frames that must leave at once.
    stream.set_nodelay(true)?;
    let mut request = target.ws_url.as_str().into_client_request()?;
    if let Some(t) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}"))?,
        );
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config()))
        .await
        .context("websocket handshake")?;
    Ok(ws)
}

/// The server frames the load tester reads; others are `Other`.
#[derive(Debug)]
pub enum ServerFrame {
    BidResult(BidResult),
    /// A `buy_result`: the same shape as a `bid_result`.
    BuyResult(BidResult),
    Price(Price),
    Closed(Closed),
    Pong(Pong),
    /// A snapshot's full text, parsed further by whoever asked for it.
    Snapshot(String),
    /// An `error` frame's code and message.
    Error(String),
    Other,
}

/// A `bid_result` frame; the body stays raw text until its status says which shape it is.
#[derive(Debug, Deserialize)]
pub struct BidResult {
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub status: u16,
    pub body: Box<RawValue>,
}

/// A `price` frame.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub item_id: ItemId,
    pub seq: u64,
}

/// A `closed` frame: the item's close is recorded.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    pub item_id: ItemId,
    pub final_price: Option<Cents>,
    pub winning_bidder_id: Option<String>,
    pub quantity_sold: u32,
}

/// A `pong`: the server's clock, in milliseconds since the epoch.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// Echoed as the server read it (a JSON number, `1700000000000.0`).
    pub client_time: Option<f64>,
    pub server_time: i64,
}

/// The item snapshot's fields the check needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSnapshot {
    pub item_id: ItemId,
    pub current_bid: Option<Cents>,
    pub seq: u64,
    pub leading_bidder_id: Option<String>,
}

/// A 201 bid body's fields the check needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedBody {
    pub current_bid: Cents,
    pub seq: u64,
    pub leading: bool,
}

/// An error body's code.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Parses a server frame in two steps, `type` first: serde's internally tagged enums buffer
/// their content, which would turn money into floats and cannot hold a `RawValue`.
pub fn parse_frame(text: &str) -> Result<ServerFrame> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        r#type: std::borrow::Cow<'a, str>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(text)?;
    Ok(match envelope.r#type.as_ref() {
        "bid_result" => ServerFrame::BidResult(serde_json::from_str(text)?),
        "buy_result" => ServerFrame::BuyResult(serde_json::from_str(text)?),
        "closed" => ServerFrame::Closed(serde_json::from_str(text)?),
        "pong" => ServerFrame::Pong(serde_json::from_str(text)?),
        "price" => ServerFrame::Price(serde_json::from_str(text)?),
        "snapshot" => ServerFrame::Snapshot(text.to_string()),
        "error" => ServerFrame::Error(text.to_string()),
        _ => ServerFrame::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs() {
        assert!(Sources::parse("").unwrap().is_empty());
        assert_eq!(Sources::parse("4").unwrap().len(), 4);
        let s = Sources::parse("127.0.0.1, 127.0.0.9").unwrap();
        assert_eq!(s.pick(), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(s.pick(), Some(IpAddr::from([127, 0, 0, 9])));
        assert_eq!(s.pick(), Some(IpAddr::from([127, 0, 0, 1])));
        assert!(Sources::parse("nope").is_err());
    }

    #[test]
    fn frames_keep_money_exact() {
        let f = parse_frame(r#"{"type":"bid_result","ref":"7","status":201,"body":{"itemId":"it_1","leading":true,"currentBid":0.29,"seq":4,"bidCount":4,"nextMinimum":1.29,"closesAt":"2026-01-01T00:00:00Z"}}"#).unwrap();
        let ServerFrame::BidResult(BidResult {
            reference,
            status,
            body,
        }) = f
        else {
            panic!("not a bid_result");
        };
        assert_eq!((reference.as_deref(), status), (Some("7"), 201));
        let b: AcceptedBody = serde_json::from_str(body.get()).unwrap();
        assert_eq!((b.current_bid, b.seq, b.leading), (Cents(29), 4, true));
        let f = parse_frame(r#"{"type":"price","itemId":"it_2","currentBid":1.00,"bidCount":1,"closesAt":"x","seq":9,"leadingBidderId":"p_1","nextMinimum":2.00}"#).unwrap();
        assert!(matches!(f, ServerFrame::Price(Price { seq: 9, .. })));
        assert!(matches!(
            parse_frame(r#"{"type":"pong","clientTime":1700000000000.0,"serverTime":1}"#).unwrap(),
            ServerFrame::Pong(Pong {
                client_time: Some(_),
                server_time: 1
            })
        ));
        assert!(matches!(
            parse_frame(r#"{"type":"auction","auctionId":"a_1","state":"reoffer"}"#).unwrap(),
            ServerFrame::Other
        ));
        let ServerFrame::Closed(c) = parse_frame(r#"{"type":"closed","itemId":"it_12","finalPrice":125.10,"winningBidderId":"p_105","quantitySold":1}"#).unwrap() else {
            panic!("not closed");
        };
        assert_eq!(
            (
                c.item_id,
                c.final_price,
                c.winning_bidder_id.as_deref(),
                c.quantity_sold
            ),
            (ItemId(12), Some(Cents(12510)), Some("p_105"), 1)
        );
        let ServerFrame::Closed(c) = parse_frame(r#"{"type":"closed","itemId":"it_3","finalPrice":null,"winningBidderId":null,"quantitySold":0}"#).unwrap() else {
            panic!("not closed");
        };
        assert_eq!((c.final_price, c.winning_bidder_id), (None, None));
        assert!(matches!(
            parse_frame(r#"{"type":"buy_result","ref":"1","status":409,"body":{"error":"sold_out","message":"x"}}"#).unwrap(),
            ServerFrame::BuyResult(BidResult { status: 409, .. })
        ));
    }
}
