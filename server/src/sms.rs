//! Outgoing text messages: a provider trait, and one HTTP implementation in the shape of
//! the common SMS APIs (Twilio's and its look-alikes): `POST {SMS_API_URL}/Accounts/
//! {SMS_ACCOUNT_SID}/Messages.json` with the form fields `To`, `From`, `Body`, HTTP basic
//! auth with the account and its token, 2xx when accepted. Off unless configured.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::future::BoxFuture;

use crate::{config::SmsConfig, mail::DeliveryError};

/// Sends one text message, saying (like the mailer) whether a failure is worth a retry.
pub trait SmsProvider: Send + Sync {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// How long one request to the provider may take.
const SMS_TIMEOUT: Duration = Duration::from_secs(20);

pub struct HttpSms {
    client: reqwest::Client,
    endpoint: String,
    config: SmsConfig,
}

impl HttpSms {
    pub fn new(config: SmsConfig) -> anyhow::Result<HttpSms> {
        let client = reqwest::Client::builder()
            .timeout(SMS_TIMEOUT)
            .build()
            .context("building the SMS HTTP client")?;
        let endpoint = format!(
            "{}/Accounts/{}/Messages.json",
            config.api_url.trim_end_matches('/'),
            config.account
        );
        Ok(HttpSms {
            client,
            endpoint,
            config,
        })
    }

    /// The provider from the configuration, if one is set up.
    pub fn from_config(config: Option<&SmsConfig>) -> anyhow::Result<Option<Arc<dyn SmsProvider>>> {
        Ok(match config {
            Some(c) => Some(Arc::new(HttpSms::new(c.clone())?)),
            None => None,
        })
    }
}

impl SmsProvider for HttpSms {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let answer = self
                .client
                .post(&self.endpoint)
                .basic_auth(&self.config.account, Some(&self.config.token))
                .form(&[
                    ("To", to),
                    ("From", self.config.from.as_str()),
                    ("Body", text),
                ])
                .send()
                .await
                .map_err(|e| DeliveryError {
                    permanent: false,
                    message: format!("SMS provider: {e}"),
                })?;
            let status = answer.status();
            if status.is_success() {
                tracing::info!(to, "text message sent");
                return Ok(());
            }
            let body: String = answer
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            // Too many requests and the provider's own trouble pass; anything else the
            // provider refused (a bad number, bad credentials) stays refused.
            let transient = status.as_u16() == 429 || status.is_server_error();
            Err(DeliveryError {
                permanent: !transient,
                message: format!("SMS provider answered {status}: {body}"),
            })
        })
    }
}
