//! Outgoing email. With `SMTP_URL` set, mail goes over SMTP (a pool of connections kept
//! open between messages); without it every message is written as an `.eml` file into
//! `MAIL_DIR` (and logged), so development and tests see exactly what would have been sent.
//!
//! Every header is built by lettre's typed headers from plain values: a name or subject
//! holding a line break is encoded as text, never read as a header of its own.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue},
        Body, Mailbox, MultiPart, SinglePart,
    },
    transport::smtp::PoolConfig,
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// Most SMTP connections kept open at once (the outbox workers' sends share them).
const SMTP_POOL_SIZE: u32 = 16;

/// How long one SMTP exchange may take before the send counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

/// One message: plain text always (many readers use simple mail clients), HTML optional.
#[derive(Clone, Debug, Default)]
pub struct Email {
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// `<...@...>`: the same on every attempt of one notification, so a resend after a
    /// crash is recognisable as the same message. None: lettre makes a fresh one.
    pub message_id: Option<String>,
    /// The `List-Unsubscribe` header's value (`<https://...>`), for optional notices.
    pub list_unsubscribe: Option<String>,
}

/// Why a message was not sent, and whether trying again later may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// True for what another attempt cannot fix: a 5xx answer, an address that does not
    /// parse, a message that cannot be built. False for 4xx answers, lost connections,
    /// timeouts, a full disk.
    pub permanent: bool,
    pub message: String,
}

impl DeliveryError {
    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            permanent: true,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            permanent: false,
            message: message.into(),
        }
    }
}

/// The `List-Unsubscribe` header (RFC 2369), which lettre has no typed header for. Its
/// value goes through lettre's header encoding like any other.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Line breaks and other control characters become spaces: a subject or a name is one line.
/// (lettre would encode them safely; this keeps what the reader sees tidy.)
pub fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text body, sent as 8bit when RFC 2045 allows it (lines of at most 998 octets, no
/// NUL), so links stay whole and readable in the `.eml` files and in "view source";
/// lettre would otherwise pick quoted-printable for any line over 76 characters and split
/// the link. Anything else gets lettre's own choice of encoding.
fn plain_body(text: &str) -> Body {
    let crlf = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    if crlf.split("\r\n").all(|line| line.len() <= 998) && !crlf.contains('\0') {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_string())
    }
}

impl Mailer {
    pub fn new(smtp_url: Option<&str>, mail_dir: PathBuf, from: &str) -> anyhow::Result<Mailer> {
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("MAIL_FROM={from:?}"))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("SMTP_URL is not a valid SMTP URL")?
                    .pool_config(PoolConfig::new().max_size(SMTP_POOL_SIZE))
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&mail_dir)
                    .with_context(|| format!("creating MAIL_DIR {}", mail_dir.display()))?;
                Transport::Files(AsyncFileTransport::new(&mail_dir), mail_dir)
            }
        };
        Ok(Mailer { from, transport })
    }

    /// The domain of the sender's address, for Message-IDs (`<...@domain>`).
    pub fn from_domain(&self) -> String {
        self.from.email.domain().to_string()
    }

    /// Sends one message; the error is logged by the caller. Used where a failure is only
    /// reported (account emails); the outbox uses [`Mailer::deliver`].
    pub async fn send(&self, email: Email) -> anyhow::Result<()> {
        self.deliver(&email).await?;
        Ok(())
    }

    /// Sends one message, saying whether a failure is worth another attempt.
    pub async fn deliver(&self, email: &Email) -> Result<(), DeliveryError> {
        let message = self.build(email)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|e| {
                    let text = format!("SMTP: {e}");
                    if e.is_permanent() {
                        DeliveryError::permanent(text)
                    } else {
                        DeliveryError::transient(text)
                    }
                })?;
                tracing::info!(to = %email.to, subject = %email.subject, "email sent");
            }
            Transport::Files(files, dir) => {
                let id = files.send(message).await.map_err(|e| {
                    DeliveryError::transient(format!("writing the email file: {e}"))
                })?;
                tracing::info!(to = %email.to, subject = %email.subject,
                    file = %dir.join(format!("{id}.eml")).display(), "email written to MAIL_DIR");
            }
        }
        Ok(())
    }

    fn build(&self, email: &Email) -> Result<Message, DeliveryError> {
        let address = email
            .to
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("recipient address: {e}")))?;
        let to = Mailbox::new(email.to_name.as_deref().map(one_line), address);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&email.subject));
        if let Some(id) = &email.message_id {
            builder = builder.message_id(Some(id.clone()));
        }
        if let Some(link) = &email.list_unsubscribe {
            builder = builder.header(ListUnsubscribe(one_line(link)));
        }
        let built = match &email.html {
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(plain_body(&email.text)),
            ),
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(plain_body(&email.text)),
                    )
                    .singlepart(SinglePart::html(html.clone())),
            ),
        };
        built.map_err(|e| DeliveryError::permanent(format!("building the message: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        let dir = std::env::temp_dir().join(format!("auuction-mail-{}", uuid::Uuid::new_v4()));
        Mailer::new(None, dir, "auuction <auction@example.org>").unwrap()
    }

    #[test]
    fn a_name_or_subject_with_line_breaks_adds_no_header() {
        let email = Email {
            to: "eve@example.org".into(),
            to_name: Some("Eve\r\nBcc: victim@example.org".into()),
            subject: "Hello\r\nX-Injected: yes\nBcc: other@example.org".into(),
            text: "Body".into(),
            message_id: Some("<notification-1@example.org>".into()),
            list_unsubscribe: Some("<http://x/u>\r\nX-Evil: 1".into()),
            ..Email::default()
        };
        let raw = String::from_utf8(mailer().build(&email).unwrap().formatted()).unwrap();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        for line in headers.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:")
                    && !lower.starts_with("x-injected")
                    && !lower.starts_with("x-evil"),
                "an injected header: {line:?} in\n{headers}"
            );
        }
        assert!(
            headers.contains("Message-ID: <notification-1@example.org>"),
            "{headers}"
        );
        assert!(
            headers.contains("List-Unsubscribe: <http://x/u> X-Evil: 1"),
            "{headers}"
        );
    }

    #[test]
    fn one_line_keeps_words_and_drops_breaks() {
        assert_eq!(one_line("  A\r\nB\tC  "), "A B C");
    }
}
