//! A WebSocket client of the live protocol (docs/protocol.md).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async, tungstenite::client::IntoClientRequest, tungstenite::Message,
};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client, authenticated with a bearer token when given.
pub struct Ws {
    pub socket: Socket,
}

impl Ws {
    pub async fn connect(base: &str, token: Option<&str>) -> Ws {
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        if let Some(t) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (socket, _) = connect_async(request).await.expect("websocket connects");
        Ws { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message (waits up to 10 s).
    pub async fn next(&mut self) -> Value {
        serde_json::from_str(&self.next_text().await).unwrap()
    }

    /// The next text frame as sent (waits up to 10 s).
    pub async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message within 10 s")
                .expect("socket open")
                .unwrap();
            if let Message::Text(t) = frame {
                return t.as_str().to_string();
            }
        }
    }

    /// The raw `body` of the `bid_result` answering `reference`, exactly as the server wrote
    /// it (for byte-for-byte comparisons).
    pub async fn raw_result_body(&mut self, reference: &str) -> String {
        loop {
            let text = self.next_text().await;
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["type"] == "bid_result" && m["ref"] == reference {
                let (_, body) = text.split_once("\"body\":").expect("a body");
                return body.strip_suffix('}').expect("body last").to_string();
            }
        }
    }

    /// The next message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["type"] == kind {
                return m;
            }
        }
    }

    pub async fn subscribe(&mut self, topic: &str) -> Value {
        self.send(json!({ "type": "subscribe", "topics": [topic] }))
            .await;
        self.next_of("snapshot").await
    }

    pub async fn bid(
        &mut self,
        reference: &str,
        item: i64,
        amount: &str,
        max: Option<&str>,
    ) -> Value {
        let mut m = json!({ "type": "bid", "ref": reference, "itemId": format!("it_{item}"), "amount": amount.parse::<f64>().unwrap() });
        if let Some(max) = max {
            m["maxProxyAmount"] = json!(max.parse::<f64>().unwrap());
        }
        self.send(m).await;
        self.result_of(reference).await
    }

    /// The `bid_result` answering the bid sent with `reference`.
    pub async fn result_of(&mut self, reference: &str) -> Value {
        loop {
            let r = self.next_of("bid_result").await;
            if r["ref"] == reference {
                return r;
            }
        }
    }
}

/// Logs in over the API at `base` (this app's or a server process's) as the existing
/// account `email`; returns the bearer token.
pub async fn bearer_token(base: &str, email: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": super::PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().expect("login token").to_string()
}
