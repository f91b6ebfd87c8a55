//! A fake SMS provider over real HTTP on loopback, in the shape `auuction::sms::HttpSms`
//! speaks (`POST /Accounts/{sid}/Messages.json`, form fields, basic auth). Each request's
//! answer follows a script of status codes (then 201); what it received is kept.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct SmsRequest {
    pub account: String,
    /// The `Authorization` header as sent.
    pub authorization: String,
    /// The form fields (`To`, `From`, `Body`).
    pub form: Vec<(String, String)>,
}

impl SmsRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<u16>,
    received: Vec<SmsRequest>,
}

#[derive(Clone)]
pub struct FakeSmsApi {
    /// The base URL, for `SMS_API_URL`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSmsApi {
    pub async fn start() -> FakeSmsApi {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = Router::new()
            .route("/Accounts/{account}/Messages.json", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSmsApi { url, inner }
    }

    /// The status codes of the next answers, in order; after them every request gets 201.
    pub fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        self.inner.lock().unwrap().script.extend(statuses);
    }

    pub fn received(&self) -> Vec<SmsRequest> {
        self.inner.lock().unwrap().received.clone()
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let form = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut inner = inner.lock().unwrap();
    inner.received.push(SmsRequest {
        account,
        authorization,
        form,
    });
    let status = inner.script.pop_front().unwrap_or(201);
    (
        StatusCode::from_u16(status).unwrap(),
        if status < 300 {
            r#"{"status":"queued"}"#
        } else {
            r#"{"message":"refused"}"#
        },
    )
}
