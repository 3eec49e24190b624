//! How a download shows its progress: a bar on a terminal, a few plain lines in a log, or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes (always standard error, never standard output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// A bar when standard error is a terminal, plain lines otherwise (logs, CI).
    #[default]
    Auto,
    /// Plain lines: the start, every 10%, the end.
    Lines,
    /// Nothing.
    Silent,
}

pub(crate) enum Reporter {
    Bar(ProgressBar),
    Lines { label: String, total: Option<u64>, done: u64, next_tenth: u64 },
    Silent,
}

impl Reporter {
    pub(crate) fn start(mode: Progress, label: &str, total: Option<u64>, already: u64) -> Self {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Auto,
            Progress::Auto => Progress::Lines,
            other => other,
        };
        match mode {
            Progress::Auto => {
                let bar = match total {
                    Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                };
                let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(label.to_string());
                bar.set_position(already);
                Reporter::Bar(bar)
            }
            Progress::Lines => {
                let size = total.map(|t| format!(" ({})", human(t))).unwrap_or_default();
                let resumed =
                    if already > 0 { format!(", resuming at {}", human(already)) } else { String::new() };
                eprintln!("downloading {label}{size}{resumed}");
                let next_tenth = total.map(|t| already * 10 / t.max(1) + 1).unwrap_or(u64::MAX);
                Reporter::Lines { label: label.to_string(), total, done: already, next_tenth }
            }
            Progress::Silent => Reporter::Silent,
        }
    }

    pub(crate) fn advance(&mut self, bytes: u64) {
        match self {
            Reporter::Bar(bar) => bar.inc(bytes),
            Reporter::Lines { label, total: Some(total), done, next_tenth } => {
                *done += bytes;
                while *next_tenth < 10 && *done * 10 >= *next_tenth * *total {
                    eprintln!("  {label}: {}% of {}", *next_tenth * 10, human(*total));
                    *next_tenth += 1;
                }
            }
            Reporter::Lines { done, .. } => *done += bytes,
            Reporter::Silent => {}
        }
    }

    pub(crate) fn finish(self, message: &str) {
        match self {
            Reporter::Bar(bar) => {
                if let Ok(style) = ProgressStyle::with_template("{msg}") {
                    bar.set_style(style);
                }
                bar.finish_with_message(message.to_string());
            }
            Reporter::Lines { .. } => eprintln!("{message}"),
            Reporter::Silent => {}
        }
    }

    pub(crate) fn abandon(self) {
        if let Reporter::Bar(bar) = self {
            bar.abandon();
        }
    }
}

/// A size for people: `92.9 MB`.
pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}
