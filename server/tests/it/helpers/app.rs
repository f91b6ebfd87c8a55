//! Test helpers: spawn the real app on port 0 against a fresh database (one per test, from
//! `#[sqlx::test]`), then drive it over HTTP like a client would.

use std::path::PathBuf;

use auuction::{
    config::{Config, RateLimitConfig},
    domain::{Role, Roles},
    passwords,
    store::users,
    Application,
};
use reqwest::{header, Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub db: PgPool,
    pub dir: PathBuf,
    pub state: auuction::AppState,
}

/// A client with its own cookie jar, like one browser.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub csrf: Option<String>,
    pub token: Option<String>,
}

impl TestApp {
    pub async fn spawn(db: PgPool) -> TestApp {
        TestApp::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: PgPool, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = std::env::temp_dir().join(format!("auuction-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = Config::for_tests("unused://", &dir);
        // Tests make many requests from one address; the rate-limit tests lower these.
        config.rate_limits = RateLimitConfig {
            auth_per_ip: 10_000,
            auth_per_account: 10_000,
            write_per_ip: 100_000,
            write_per_account: 100_000,
        };
        tweak(&mut config);
        let app = Application::build_with_pool(config, db.clone())
            .await
            .expect("app builds");
        let port = app.port();
        let state = app.state().clone();
        tokio::spawn(app.run(false));
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            db,
            dir,
            state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn browser(&self) -> Browser {
        Browser {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
            csrf: None,
            token: None,
        }
    }

    /// A client that sends no cookies (an API client or a stranger).
    pub fn anonymous(&self) -> Browser {
        Browser {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
            csrf: None,
            token: None,
        }
    }

    /// Creates a verified account with the given roles directly (as `auuction user add` does).
    pub async fn create_user(&self, email: &str, roles: &[Role]) -> i64 {
        let hash = passwords::hash(PASSWORD.to_string()).await.unwrap();
        let row = users::insert(
            &self.db,
            users::NewUser {
                email,
                name: &format!("User {email}"),
                password_hash: &hash,
                roles: &Roles::new(roles.to_vec()),
                preferences: users::Preferences {
                    email: true,
                    sms: false,
                },
                verified: true,
            },
        )
        .await
        .unwrap()
        .expect("new email");
        row.id
    }

    /// Logs in a fresh cookie browser as a new verified user with `roles`.
    pub async fn login_as(&self, email: &str, roles: &[Role]) -> Browser {
        self.create_user(email, roles).await;
        let mut b = self.browser();
        let (status, body) = b.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        b
    }

    /// All emails written for `to`, oldest first, as raw text.
    pub fn emails_to(&self, to: &str) -> Vec<String> {
        let mut mails: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(self.dir.join("mail"))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter_map(|e| {
                            let text = std::fs::read_to_string(e.path()).ok()?;
                            let modified = e.metadata().ok()?.modified().ok()?;
                            text.lines()
                                .any(|l| l.starts_with("To:") && l.contains(to))
                                .then_some((modified, text))
                        })
                        .collect()
                })
                .unwrap_or_default();
        mails.sort_by_key(|(t, _)| *t);
        mails.into_iter().map(|(_, t)| t).collect()
    }

    /// The token in the newest email to `to` whose link contains `path`.
    pub fn token_from_email(&self, to: &str, path: &str) -> String {
        let mails = self.emails_to(to);
        let mail = mails.last().unwrap_or_else(|| panic!("no email to {to}"));
        let marker = format!("{path}?token=");
        let start = mail
            .find(&marker)
            .unwrap_or_else(|| panic!("no {marker} link in:\n{mail}"))
            + marker.len();
        mail[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect()
    }
}

impl Browser {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn with_auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
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

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Response {
        self.with_auth(self.client.post(self.url(path)))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

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

/// A calendar JSON with bidding open now (relative to the real clock).
pub fn calendar_json(year: i32, bidding_open_offset_hours: i64) -> Value {
    use chrono::{Duration, Utc};
    let now = Utc::now();
    let open = now + Duration::hours(bidding_open_offset_hours);
    json!({
        "year": year,
        "name": format!("Auction {year}"),
        "registrationOpenAt": open - Duration::days(14),
        "catalogPublishAt": open - Duration::days(7),
        "biddingOpenAt": open,
        "biddingCloseAt": open + Duration::hours(3),
        "reofferOpenAt": open + Duration::hours(4),
        "reofferCloseAt": open + Duration::days(2),
        "settlementOpenAt": open + Duration::days(3),
    })
}

// ---- catalog helpers ------------------------------------------------------------------

impl TestApp {
    /// Creates the current auction directly (bidding opened an hour ago, closes in two);
    /// returns its public id (`a_<n>`).
    pub async fn create_auction(&self) -> String {
        let body = calendar_json(2026, -1);
        let cal: auuction::domain::Calendar = serde_json::from_value(json!({
            "registrationOpenAt": body["registrationOpenAt"],
            "catalogPublishAt": body["catalogPublishAt"],
            "biddingOpenAt": body["biddingOpenAt"],
            "biddingCloseAt": body["biddingCloseAt"],
            "reofferOpenAt": body["reofferOpenAt"],
            "reofferCloseAt": body["reofferCloseAt"],
            "settlementOpenAt": body["settlementOpenAt"],
        }))
        .unwrap();
        let row = auuction::store::auctions::insert(
            &self.db,
            &auuction::store::auctions::AuctionFields {
                year: 2026,
                name: "Auction 2026".into(),
                calendar: cal,
                soft_close_seconds: 120,
                hard_close_at: None,
            },
            auuction::domain::AuctionState::Bidding,
        )
        .await
        .unwrap()
        .unwrap();
        format!("a_{}", row.id)
    }

    /// The numeric id of a public id such as `it_7`.
    pub fn num(id: &Value) -> i64 {
        id.as_str()
            .and_then(|s| s.rsplit('_').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("not a public id: {id}"))
    }
}

/// A valid item body: a competitive item in Goods (`cat_3`) opening at 50.00.
pub fn item_body(title: &str) -> Value {
    json!({
        "type": "competitive",
        "title": title,
        "description": "A lovely thing.",
        "categoryId": "cat_3",
        "openingBid": 50,
        "tags": ["handmade"],
    })
}

/// A hosted event body with a full address and the given privacy.
pub fn event_body(privacy: &str) -> Value {
    json!({
        "datetimeStart": "2026-06-12T18:00:00Z",
        "datetimeEnd": "2026-06-12T21:00:00Z",
        "locationLabel": "The Smiths' home",
        "addressLine1": "12 Elm Street",
        "addressLine2": "Apt 3",
        "city": "Knoxville",
        "state": "TN",
        "postalCode": "37919",
        "addressPrivacy": privacy,
        "capacity": 8,
        "accessibilityNotes": "Three steps at the door",
        "ageRestrictions": "Adults only",
        "dietaryNotes": "Vegetarian menu",
        "hostNotes": "Door code 4321",
    })
}

/// A PNG of `w`×`h` pixels, made here (no binary fixtures).
pub fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

impl Browser {
    pub async fn delete(&self, path: &str) -> Response {
        self.with_auth(self.client.delete(self.url(path)))
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

    /// Creates an item as this user; asserts 201 and returns its JSON.
    pub async fn create_item(&self, body: Value) -> Value {
        let r = self.post("/api/items", body).await;
        let status = r.status();
        let json: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    pub async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
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
