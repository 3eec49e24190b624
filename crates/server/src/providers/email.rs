//! Email delivery. The embedded default writes one `.eml` file per message into the outbox folder of
//! the data directory, where an operator (or a test) can read it.

use std::path::PathBuf;

use anyhow::Context as _;

/// One message, always as a text and an HTML part.
#[derive(Clone, Debug)]
pub struct Email {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, email: &Email) -> anyhow::Result<()>;
    /// Short description for health checks ("outbox: ./data/outbox").
    fn describe(&self) -> String;
    /// Whether the mailer can deliver right now (the outbox folder is writable, the API answers).
    async fn check(&self) -> anyhow::Result<()>;
}

#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

pub fn build_message(email: &Email) -> anyhow::Result<lettre::Message> {
    use lettre::message::{MultiPart, SinglePart, header::ContentType};
    lettre::Message::builder()
        .from(email.from.parse().context("sender address")?)
        .to(email.to.parse().context("recipient address")?)
        .subject(&email.subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(email.html.clone())),
        )
        .context("building the message")
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> anyhow::Result<()> {
        use lettre::AsyncTransport;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .with_context(|| format!("creating the outbox {}", self.dir.display()))?;
        let message = build_message(email)?;
        lettre::AsyncFileTransport::<lettre::Tokio1Executor>::new(&self.dir)
            .send(message)
            .await
            .context("writing to the outbox")?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("outbox folder {}", self.dir.display())
    }

    async fn check(&self) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let probe = self.dir.join(".write-check");
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }
}
