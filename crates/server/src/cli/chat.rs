//! `onda chat --child NAME`: the buddy chat in a terminal, for operators and demos. The same
//! conversation as `POST /api/chat` (safety checks, limits, storage), one line of standard input per
//! message; the reply is printed sentence by sentence as it streams.

use std::io::Write as _;
use std::sync::Arc;

use tokio::io::AsyncBufReadExt as _;

use crate::config::Config;
use crate::domain::conversation::{self, ChatEvent, ChatInput, KidChat};
use crate::domain::{Context, DomainError, consent};
use crate::storage::{ChildRow, new_id};

async fn find_child(ctx: &Context, name: &str, family_email: Option<&str>) -> anyhow::Result<ChildRow> {
    let mut children = ctx.store.children_named(name).await?;
    if let Some(email) = family_email {
        let user = ctx
            .store
            .user_by_email(&email.trim().to_lowercase())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no account with the email {email}"))?;
        let family = user.family_id.ok_or_else(|| anyhow::anyhow!("{email} is not a parent account"))?;
        children.retain(|c| c.family_id == family);
    }
    match children.len() {
        0 => anyhow::bail!(
            "no child called {name:?}{}",
            family_email.map_or(String::new(), |e| format!(" in the family of {e}"))
        ),
        1 => Ok(children.remove(0)),
        n => anyhow::bail!("{n} children are called {name:?}: add --family-email to say which family"),
    }
}

/// Runs the conversation on standard input and output until end of input.
pub async fn run(config: Config, child_name: &str, family_email: Option<&str>) -> anyhow::Result<()> {
    let bind = config.bind;
    let ctx = Context::open(Arc::new(config), bind).await?;
    let result = converse(&ctx, child_name, family_email).await;
    ctx.store.close().await;
    result
}

async fn converse(ctx: &Context, child_name: &str, family_email: Option<&str>) -> anyhow::Result<()> {
    let child = find_child(ctx, child_name, family_email).await?;
    if !consent::chat_allowed(ctx, &child.family_id).await? {
        anyhow::bail!("parental consent is not in force for this family: a parent must give it first");
    }
    if ctx.replies.is_none() {
        eprintln!("(no model is configured: the buddy will say it cannot think right now)");
    }
    eprintln!(
        "Chatting as {} (age {}, {} buddy). Type a message and press Enter; end with Ctrl-D.",
        child.display_name, child.age, child.persona
    );
    // A terminal session is its own kid session.
    let kid = KidChat { session_key: conversation::session_key(&format!("cli:{}", new_id())), child };
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let mut events =
            match conversation::send(ctx, kid.clone(), ChatInput { text: line, whisper: None }).await {
                Ok(events) => events,
                Err(DomainError::Invalid { message, .. }) => {
                    eprintln!("({message})");
                    continue;
                }
                Err(err) => return Err(anyhow::Error::from(err)),
            };
        let mut stdout = std::io::stdout();
        while let Some(event) = events.recv().await {
            match event {
                ChatEvent::Verdict { level, action } => eprintln!("[safety: level {level}, {action}]"),
                ChatEvent::Notice(notice) => {
                    println!(
                        "[{}] {}",
                        serde_json::to_value(notice.kind)?.as_str().unwrap_or("notice"),
                        notice.text
                    );
                    for resource in notice.resources.unwrap_or_default() {
                        println!("    {} ({}): {}", resource.name, resource.region, resource.contact);
                    }
                }
                ChatEvent::Delta { text } => {
                    println!("buddy> {}", text.trim());
                    stdout.flush()?;
                }
                ChatEvent::Done(done) => eprintln!(
                    "[done: {}{}]",
                    done.provider.as_deref().unwrap_or("written by people"),
                    if done.whisper { ", whisper" } else { "" }
                ),
            }
        }
    }
    Ok(())
}
