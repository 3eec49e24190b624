//! What the chat server adds to a reply: `cargo bench -p onda --bench chat`.
//!
//! The real server (the library, on `127.0.0.1:0`, with the safety engine, storage, rate limits, logs
//! and the server-sent events of `onda serve`) answers children through real HTTP, with one change:
//! the model is an instant scripted provider (a three-sentence reply with no pauses). So the time from
//! sending `POST /api/chat` to receiving the `done` event is what the server adds to a model's time:
//! the input safety check, the time limits, about a dozen reads and writes, the assessment of each
//! sentence before it is sent, and the event stream.
//!
//! Three runs, each message after one warm-up message per child (the first message of a session also
//! opens the conversation and says the buddy is an AI, once):
//! - 1 child, one message after another: the latency of an idle server;
//! - N children (default 100) chatting at once, each sending its next message a random 0.5-1.5 s (mean
//!   `--think-ms`) after the previous reply ended, which is faster than any child types: the latency at
//!   100 concurrent children (the target, p99 under 5 ms);
//! - the same children sending with no pause at all: the most messages per second the server answers
//!   (its latencies there are mostly queueing: N messages waiting for the cores).
//!
//! Each run prints p50, p90, p99 and maximum of the time to the first delta and to `done`, the messages
//! per second, and the CPU time per message (of the whole process, from `/proc/self/stat`).
//!
//! Each child is a household of its own, on its own loopback address (127.0.x.y), so the per-address
//! rate limits stay on as in production and do not throttle one child because of another; each child
//! sends fewer messages than its session's write budget (120 at once). The session length is the
//! default (30 minutes) and no family sets a daily limit or quiet hours; the bench stops with an error
//! if a limit, a rate limit or a safety verdict ever interferes (every message must be answered by the
//! model and stored). Logs are formatted as `onda serve` formats them, into a sink.
//!
//! The bench process is both server and clients: on a 2-core machine they share the cores, so the
//! figures are an upper bound of what the server alone adds. SQLite lives in a temporary folder; set
//! `ONDA_BENCH_DATABASE_URL` to a PostgreSQL server (a URL whose user may create databases) to run on a
//! throw-away database there instead.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt as _;
use onda::domain::conversation::{ProviderSource, ScriptedProvider};
use onda::storage::testing::{Backend, TestDatabase};
use onda::testing::{SseReader, TestApp, TestClock};
use rand::Rng as _;
use serde_json::json;

/// The target: what the server adds to a reply, at the 99th percentile, with 100 children.
const ADDED_LATENCY_P99_TARGET: Duration = Duration::from_millis(5);
/// The scripted model's reply: three sentences, in deltas that cut across them, with no pauses.
const REPLY: [&str; 4] = ["Dolphins are ", "very clever. They talk", " with clicks! Isn't that", " cool?"];
/// What the children ask, in turn (all level 0 for the safety engine: the bench checks).
const QUESTIONS: [&str; 6] = [
    "Tell me about dolphins",
    "Why is the sky blue?",
    "What do owls eat at night?",
    "How far away is the moon?",
    "Can you tell me a story about a brave little turtle?",
    "What is the biggest dinosaur?",
];
/// How many families are set up at once (each costs three password or PIN hashes).
const SETUP_CONCURRENCY: usize = 4;

#[derive(Parser, Debug)]
#[command(about = "Measures what Onda's chat server adds to a reply, with an instant model")]
struct Args {
    /// Children chatting at once in the concurrent runs.
    #[arg(long, default_value_t = 100)]
    children: usize,
    /// Messages each child sends in each concurrent run.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Messages the single child sends in the reference run.
    #[arg(long, default_value_t = 100)]
    reference_messages: usize,
    /// Mean pause (ms) between the end of a reply and the child's next message in the paced run.
    #[arg(long, default_value_t = 1000)]
    think_ms: u64,
    /// Also run the safety engine's embedding head (layer 2), as `onda serve` does once the models are
    /// fetched: the server reads the models folder (`ONDA_MODELS_DIR`, default `~/.cache/onda/models`).
    /// Without it the engine runs its rules and word model only (the models folder is an empty one).
    #[arg(long)]
    with_embedding: bool,
    /// Passed by `cargo bench`; nothing to do.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The per-session write budget of the rate limiter (a burst of this many, then 2 a second).
const SESSION_WRITE_BURST: usize = 120;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One warm-up message, then both concurrent runs, fit in a session's write budget.
    let per_child = 1 + 2 * args.messages;
    if per_child > SESSION_WRITE_BURST || 1 + args.reference_messages > SESSION_WRITE_BURST {
        anyhow::bail!(
            "at most {} --messages and {} --reference-messages: a kid session may write {SESSION_WRITE_BURST} times \
             at once before its rate limit slows it down",
            (SESSION_WRITE_BURST - 1) / 2,
            SESSION_WRITE_BURST - 1
        );
    }
    if args.children == 0 || args.children > 250 * 250 {
        anyhow::bail!("--children must be 1 to {}", 250 * 250);
    }

    // The server runs on a runtime of its own, built as `#[tokio::main]` builds `onda serve`'s; the
    // children's browsers on another, so that their work is not queued behind the server's tasks.
    let server_runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let database_url = std::env::var("ONDA_BENCH_DATABASE_URL").ok().filter(|url| !url.trim().is_empty());
    let app = server_runtime.block_on(async {
        let db = match &database_url {
            Some(url) => TestDatabase::postgres_on(url).await,
            None => TestDatabase::new(Backend::Sqlite).await,
        };
        let provider = Arc::new(ScriptedProvider::instant(REPLY));
        let models = onda_models::default_models_dir().display().to_string();
        let vars: Vec<(&str, &str)> =
            if args.with_embedding { vec![("ONDA_MODELS_DIR", models.as_str())] } else { Vec::new() };
        TestApp::launch(db, &vars, Some(Arc::new(ProviderSource(provider))), TestClock::System).await
    });
    onda::telemetry::init_with_writer(&app.ctx.config, std::io::sink);
    let app = Arc::new(app);

    let result = client_runtime.block_on(run(app.clone(), &args));
    // Stop the server (and drop a PostgreSQL database) on the server's runtime.
    if let Ok(app) = Arc::try_unwrap(app) {
        server_runtime.block_on(app.stop());
    }
    let report = result?;
    print!("{report}");
    Ok(())
}

/// A child's browser in kid mode.
struct Kid {
    client: reqwest::Client,
    /// The next question to ask (an index into [`QUESTIONS`]).
    turn: usize,
}

/// When one message's events arrived, counted from sending the request.
#[derive(Clone, Copy, Debug)]
struct Timing {
    first_delta: Duration,
    done: Duration,
}

async fn run(app: Arc<TestApp>, args: &Args) -> anyhow::Result<String> {
    // Other work on the machine shows in every figure: say how busy it was before this bench began.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(", load average before {}", l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_default();
    let setup_started = Instant::now();
    eprintln!("setting up {} families (sign-up, consent, PIN, a child, kid mode)...", args.children + 1);
    let kids: Vec<anyhow::Result<Kid>> = futures::stream::iter(0..=args.children)
        .map(|household| {
            let app = app.clone();
            async move {
                let mut kid = new_kid(&app, household).await?;
                chat_once(&app, &mut kid).await?;
                Ok(kid)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut kids = kids.into_iter().collect::<anyhow::Result<Vec<Kid>>>()?;
    let mut reference = kids.pop().expect("one more child than --children");
    eprintln!("set up in {:.1} s", setup_started.elapsed().as_secs_f64());

    let backend = match app.backend {
        Backend::Sqlite => "SQLite (temporary folder)",
        Backend::Postgres => "PostgreSQL (throw-away database; its own processes' CPU time is not counted)",
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let safety = if app.ctx.safety.has_learned_scorer() {
        "safety: rules, word model and embedding head"
    } else {
        "safety: rules and word model (no embedding head: --with-embedding adds it)"
    };
    if args.with_embedding && !app.ctx.safety.has_learned_scorer() {
        anyhow::bail!("--with-embedding: the embedding model is not fetched (onda models fetch)");
    }
    let mut report = format!(
        "\nOnda chat server, instant scripted model (three sentences a reply), {backend}, {cores} CPU cores{load}\n\
         {safety}\n\
         latency from sending POST /api/chat to the first delta and to the done event; CPU time of server and\n\
         clients together, per message\n\n"
    );
    report.push_str(&format!(
        "{:<44} {:>8} {:>6} {:>7}  {:>21}  {:>36}\n",
        "run", "messages", "msg/s", "CPU/msg", "first delta p50 / p99", "done (added) p50 / p90 / p99 / max"
    ));

    eprintln!("1 child, {} messages one after another...", args.reference_messages);
    let single = measure(async {
        let mut timings = Vec::with_capacity(args.reference_messages);
        for _ in 0..args.reference_messages {
            timings.push(chat_once(&app, &mut reference).await?);
        }
        Ok(timings)
    })
    .await?;
    report.push_str(&single.row("1 child, one message after another"));

    let think = Duration::from_millis(args.think_ms);
    eprintln!("{} children, {} messages each, ~{} ms apart...", args.children, args.messages, args.think_ms);
    let paced = measure(concurrently(&app, &mut kids, args.messages, Some(think))).await?;
    report.push_str(&paced.row(&format!(
        "{} children at once, ~{:.1} s between messages",
        args.children,
        think.as_secs_f64()
    )));

    eprintln!("{} children, {} messages each, no pause...", args.children, args.messages);
    let saturated = measure(concurrently(&app, &mut kids, args.messages, None)).await?;
    report.push_str(&saturated.row(&format!("{} children at once, no pause (saturated)", args.children)));

    let verdict = if paced.p99 < ADDED_LATENCY_P99_TARGET { "met" } else { "MISSED" };
    report.push_str(&format!(
        "\ntarget: added latency p99 < {} ms with {} children chatting: {} ({:.2} ms)\n\
         most messages per second (saturated run): {:.0}\n",
        ADDED_LATENCY_P99_TARGET.as_millis(),
        args.children,
        verdict,
        ms(paced.p99),
        saturated.per_second
    ));
    Ok(report)
}

/// Runs one measured run and sums it up with its wall and CPU time.
async fn measure(run: impl Future<Output = anyhow::Result<Vec<Timing>>>) -> anyhow::Result<Summary> {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let timings = run.await?;
    let wall = started.elapsed();
    let cpu = cpu_before.zip(cpu_time()).map(|(before, after)| after.saturating_sub(before));
    Ok(Summary::of(&timings, wall, cpu))
}

/// Sends `messages` messages from every child at once; `think` is the mean pause after each reply
/// (`None`: none). Returns every message's timing.
async fn concurrently(
    app: &Arc<TestApp>,
    kids: &mut Vec<Kid>,
    messages: usize,
    think: Option<Duration>,
) -> anyhow::Result<Vec<Timing>> {
    let mut tasks = Vec::with_capacity(kids.len());
    for mut kid in kids.drain(..) {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut timings = Vec::with_capacity(messages);
            // Spread the first messages over one pause, as children do not all press send together.
            if let Some(think) = think {
                let offset = think.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
                tokio::time::sleep(offset).await;
            }
            for _ in 0..messages {
                timings.push(chat_once(&app, &mut kid).await?);
                if let Some(think) = think {
                    let pause = think.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
                    tokio::time::sleep(pause).await;
                }
            }
            anyhow::Ok((kid, timings))
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (kid, timings) = task.await??;
        kids.push(kid);
        all.extend(timings);
    }
    Ok(all)
}

/// A family of its own on its own loopback address: sign-up (with the emailed link), consent, PIN, a
/// child, and a second browser (at the same address) in kid mode for that child.
async fn new_kid(app: &TestApp, household: usize) -> anyhow::Result<Kid> {
    let address = IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (household / 250) as u8, 1 + (household % 250) as u8));
    let browser = || TestApp::client_builder().local_address(address).build();
    let parent = browser()?;
    let email = format!("bench-{household}@example.com");
    let child_id = app.ready_family(&parent, &email, false).await;
    let kid = browser()?;
    app.start_kid_session(&kid, &email, &child_id).await;
    Ok(Kid { client: kid, turn: household })
}

/// Sends the child's next question and reads the whole answer; an answer that is not the model's
/// stored reply (a refusal by a limit, a safety verdict, an HTTP error) stops the bench.
async fn chat_once(app: &TestApp, kid: &mut Kid) -> anyhow::Result<Timing> {
    let text = QUESTIONS[kid.turn % QUESTIONS.len()];
    kid.turn += 1;
    let started = Instant::now();
    let response = kid.client.post(app.url("/api/chat")).json(&json!({ "text": text })).send().await?;
    let status = response.status();
    if status != 200 {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("POST /api/chat answered {status}: {body}");
    }
    let mut events = SseReader::new(response);
    let mut first_delta = None;
    let mut done = None;
    let mut deltas = 0;
    while let Some(event) = events.next().await {
        match event.event.as_str() {
            "verdict" if event.data["level"] != 0 => {
                anyhow::bail!("the safety engine rated {text:?} at level {}", event.data["level"])
            }
            "delta" => {
                first_delta.get_or_insert_with(|| started.elapsed());
                deltas += 1;
            }
            "notice" if event.data["kind"] != "ai_disclosure" => {
                anyhow::bail!("the server refused or redirected a message: {}", event.data)
            }
            "done" => {
                done = Some(started.elapsed());
                if event.data["messageId"].is_null() || event.data["provider"] != "local" {
                    anyhow::bail!("the reply was not the model's stored reply: {}", event.data);
                }
            }
            _ => {}
        }
    }
    match (first_delta, done) {
        (Some(first_delta), Some(done)) if deltas >= 3 => Ok(Timing { first_delta, done }),
        _ => anyhow::bail!("the stream ended early ({deltas} deltas, done: {})", done.is_some()),
    }
}

struct Summary {
    messages: usize,
    per_second: f64,
    /// CPU time per message, of server and clients together (when known).
    cpu_per_message: Option<Duration>,
    first_delta_p50: Duration,
    first_delta_p99: Duration,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Summary {
    fn of(timings: &[Timing], wall: Duration, cpu: Option<Duration>) -> Self {
        let mut done: Vec<Duration> = timings.iter().map(|t| t.done).collect();
        let mut first: Vec<Duration> = timings.iter().map(|t| t.first_delta).collect();
        done.sort();
        first.sort();
        Self {
            messages: timings.len(),
            per_second: timings.len() as f64 / wall.as_secs_f64().max(f64::EPSILON),
            cpu_per_message: cpu.map(|cpu| cpu / timings.len().max(1) as u32),
            first_delta_p50: percentile(&first, 50.0),
            first_delta_p99: percentile(&first, 99.0),
            p50: percentile(&done, 50.0),
            p90: percentile(&done, 90.0),
            p99: percentile(&done, 99.0),
            max: done.last().copied().unwrap_or_default(),
        }
    }

    fn row(&self, name: &str) -> String {
        let cpu = self.cpu_per_message.map_or_else(|| "?".to_string(), |cpu| format!("{:.2} ms", ms(cpu)));
        format!(
            "{name:<44} {:>8} {:>6.0} {cpu:>7}  {:>9.2} / {:>6.2} ms  {:>7.2} / {:>6.2} / {:>6.2} / {:>6.2} ms\n",
            self.messages,
            self.per_second,
            ms(self.first_delta_p50),
            ms(self.first_delta_p99),
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
        )
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The CPU time this process (server and clients) has used so far, from `/proc/self/stat` (Linux; its
/// clock ticks are 1/100 s); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces, so it ends at the last ')'): state is
    // the first, and user and system time are the 12th and 13th.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
