//! A client of the app over HTTP: a browser with its cookie jar, or an API client with a
//! bearer token.

use reqwest::{header, Client, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// A client with its own cookie jar, like one browser (see `TestApp::browser` and
/// `TestApp::anonymous`). Its CSRF token, once logged in, and its bearer token, when set,
/// go with every API request.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub csrf: Option<String>,
    pub token: Option<String>,
}

impl Browser {
    pub fn new(client: Client, base: &str) -> Browser {
        Browser {
            client,
            base: base.to_string(),
            csrf: None,
            token: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn with_auth(&self, rb: RequestBuilder) -> RequestBuilder {
        let rb = match &self.csrf {
            Some(c) => rb.header("x-csrf-token", c),
            None => rb,
        };
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.with_auth(self.client.get(self.url(path)))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.with_auth(self.client.post(self.url(path)))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.with_auth(self.client.put(self.url(path)))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.with_auth(self.client.delete(self.url(path)))
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Response {
        self.with_auth(self.client.post(self.url(path)))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> Response {
        self.with_auth(self.client.post(self.url(path)))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// GETs `path`, asserts 200 and returns the JSON.
    pub async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    // ---- pages ------------------------------------------------------------------------

    /// GETs a page: its status and HTML.
    pub async fn html(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        (r.status(), r.text().await.unwrap())
    }

    /// Posts a form as written, without adding anything (no CSRF token unless in `fields`).
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Submits a page's form as the browser does after a login: the session's CSRF token
    /// in `csrf_token`. Returns the status, the `Location` (empty if none) and the body.
    pub async fn submit_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = fields.to_vec();
        all.push(("csrf_token", &csrf));
        let r = self.form(path, &all).await;
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }

    /// The CSRF token a page embeds in its `<meta>`.
    pub async fn page_csrf(&self, path: &str) -> String {
        let html = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"csrf-token\" content=\"";
        let start = html.find(marker).expect("page has a csrf meta") + marker.len();
        html[start..].chars().take_while(|c| *c != '"').collect()
    }

    // ---- the user's steps -------------------------------------------------------------

    /// Logs in through the API; keeps the CSRF token for later cookie writes.
    pub async fn login(&mut self, email: &str, password: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status == StatusCode::OK {
            self.csrf = body["csrfToken"].as_str().map(str::to_string);
        }
        (status, body)
    }

    /// Bids `cents` on item `it_<item>` over the API (no maximum, no key); the raw answer.
    pub async fn bid(&self, item: i64, cents: i64) -> Response {
        let amount = if cents % 100 == 0 {
            json!(cents / 100)
        } else {
            json!(cents as f64 / 100.0)
        };
        self.post(
            &format!("/api/items/it_{item}/bids"),
            json!({ "amount": amount }),
        )
        .await
    }

    /// Creates an item as this user; asserts 201 and returns its JSON.
    pub async fn create_item(&self, body: Value) -> Value {
        let r = self.post("/api/items", body).await;
        let status = r.status();
        let json: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// Uploads an image with alt text; returns the raw response.
    pub async fn upload_image(
        &self,
        item: &str,
        bytes: Vec<u8>,
        file_name: &str,
        alt: Option<&str>,
    ) -> Response {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
        );
        if let Some(alt) = alt {
            form = form.text("alt", alt.to_string());
        }
        self.post_multipart(&format!("/api/items/{item}/images"), form)
            .await
    }
}

/// Asserts an API error: status and `error` code, and that `message` is a sentence.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert_eq!(body["error"], code, "unexpected error code; body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 5),
        "error needs a message: {body}"
    );
    body
}

/// Takes a donor's draft through submit, approve and publish.
pub async fn publish_item(donor: &Browser, manager: &Browser, id: &str) {
    let r = donor
        .post(&format!("/api/items/{id}/submit"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = manager
        .post(
            &format!("/api/items/{id}/review"),
            json!({ "decision": "approve" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = manager
        .post(&format!("/api/items/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

/// A donor's new item, submitted, approved and published; returns its JSON as created.
pub async fn publish_new_item(donor: &Browser, manager: &Browser, body: Value) -> Value {
    let item = donor.create_item(body).await;
    publish_item(donor, manager, item["id"].as_str().unwrap()).await;
    item
}
