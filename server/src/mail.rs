//! Outgoing email. With `SMTP_URL` set, mail goes over SMTP; without it every message is
//! written as an `.eml` file into `MAIL_DIR` (and logged), so development and tests see
//! exactly what would have been sent.

use std::path::PathBuf;

use anyhow::Context;
use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType},
        Body, Mailbox, MultiPart, SinglePart,
    },
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

/// One message: plain text always (many readers use simple mail clients), HTML optional.
pub struct Email {
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
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

    pub async fn send(&self, email: Email) -> anyhow::Result<()> {
        let to = Mailbox::new(
            email.to_name.clone(),
            email.to.parse().context("recipient address")?,
        );
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject);
        let message = match &email.html {
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(plain_body(&email.text)),
            )?,
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(email.text.clone()))
                    .singlepart(SinglePart::html(html.clone())),
            )?,
        };
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("sending over SMTP")?;
                tracing::info!(to = %email.to, subject = %email.subject, "email sent");
            }
            Transport::Files(files, dir) => {
                let id = files
                    .send(message)
                    .await
                    .context("writing the email file")?;
                tracing::info!(to = %email.to, subject = %email.subject,
                    file = %dir.join(format!("{id}.eml")).display(), "email written to MAIL_DIR");
            }
        }
        Ok(())
    }
}
