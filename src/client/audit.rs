//! `vouch audit tail`: the last entries of the audit log (auditor), and with `--follow` the new
//! ones as they are written.

use super::output;
use super::{finish, Client, Connection, Failure, Outcome};
use clap::Args;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

/// The API's largest page.
const PAGE: u32 = 1000;

/// The arguments of `vouch audit tail`.
#[derive(Args)]
pub struct TailArgs {
    /// How many of the last entries to show (0–10000).
    #[arg(short = 'n', long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    lines: u32,
    /// Keep running and print new entries as they are written (until interrupted).
    #[arg(short, long)]
    follow: bool,
    /// Seconds between two looks for new entries with --follow.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// Where the server is and who is calling.
    #[command(flatten)]
    conn: Connection,
}

/// Run `vouch audit tail`.
pub async fn tail(args: TailArgs) -> ExitCode {
    finish(run(args).await)
}

async fn page(client: &Client, after: i64, limit: u32) -> Result<Vec<Value>, Failure> {
    let answer = client
        .get(
            &["api", "v1", "audit"],
            &[("after", after.to_string()), ("limit", limit.to_string())],
        )
        .await?;
    match answer.value["entries"].as_array() {
        Some(entries) => Ok(entries.clone()),
        None => Err(Failure::local("the audit answer has no entries list")),
    }
}

fn seq(entry: &Value) -> Result<i64, Failure> {
    entry["seq"]
        .as_i64()
        .ok_or_else(|| Failure::local("an audit entry without a seq"))
}

/// The first entry after `after`, if any.
async fn next_after(client: &Client, after: i64) -> Result<Option<i64>, Failure> {
    match page(client, after, 1).await?.first() {
        Some(e) => seq(e).map(Some),
        None => Ok(None),
    }
}

/// The highest sequence number, found with about 2·log2(n) one-entry reads (the API lists in
/// order from a given point, and has no "last"). `next_after(x)` is the first sequence number
/// after `x`, if any; numbers may have gaps.
async fn last_seq<F, Fut>(mut next_after: F) -> Result<Option<i64>, Failure>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<Option<i64>, Failure>>,
{
    let Some(mut lo) = next_after(0).await? else {
        return Ok(None);
    };
    let mut step: i64 = 1024;
    let mut hi = lo.saturating_add(step);
    while let Some(s) = next_after(hi).await? {
        lo = s;
        step = step.saturating_mul(2);
        hi = lo.saturating_add(step);
    }
    // `lo` exists and nothing is after `hi`.
    while hi > lo {
        let mid = lo + (hi - lo) / 2;
        match next_after(mid).await? {
            Some(s) => lo = s,
            None => hi = mid,
        }
    }
    Ok(Some(lo))
}

fn print(entry: &Value, json: bool) {
    if json {
        println!("{entry}");
        return;
    }
    let cell = |k: &str| output::text(&entry[k]).unwrap_or_else(|| "-".into());
    let details = match &entry["details"] {
        Value::Null => String::new(),
        d => output::clean(&d.to_string()),
    };
    println!(
        "{}  {}  {}  {}  {}  {details}",
        cell("seq"),
        cell("at"),
        cell("actor"),
        cell("action"),
        cell("target")
    );
}

/// Print every entry after `after`; returns the last sequence number printed (or `after`).
async fn print_after(client: &Client, mut after: i64, json: bool) -> Result<i64, Failure> {
    loop {
        let entries = page(client, after, PAGE).await?;
        for e in &entries {
            print(e, json);
            after = after.max(seq(e)?);
        }
        if entries.len() < PAGE as usize {
            return Ok(after);
        }
    }
}

async fn run(args: TailArgs) -> Outcome {
    let client = Client::new(&args.conn)?;
    let json = args.conn.json;
    let last = last_seq(|after| next_after(&client, after))
        .await?
        .unwrap_or(0);
    let mut after = last.saturating_sub(i64::from(args.lines));
    let mut shown = 0u32;
    while shown < args.lines {
        let entries = page(&client, after, PAGE.min(args.lines - shown)).await?;
        for e in &entries {
            print(e, json);
            after = after.max(seq(e)?);
        }
        shown += entries.len() as u32;
        if entries.is_empty() || after >= last {
            break;
        }
    }
    after = after.max(last);
    if args.follow {
        loop {
            tokio::time::sleep(Duration::from_secs(args.interval)).await;
            after = print_after(&client, after, json).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn last_of(seqs: &[i64]) -> (Option<i64>, usize) {
        let mut reads = 0;
        let last = last_seq(|after| {
            reads += 1;
            let next = seqs.iter().copied().find(|s| *s > after);
            async move { Ok(next) }
        })
        .await
        .unwrap();
        (last, reads)
    }

    #[tokio::test]
    async fn the_last_sequence_number_is_found_in_few_reads() {
        assert_eq!(last_of(&[]).await.0, None);
        assert_eq!(last_of(&[1]).await.0, Some(1));
        let long: Vec<i64> = (1..=1_000_000).collect();
        let (last, reads) = last_of(&long).await;
        assert_eq!(last, Some(1_000_000));
        assert!(reads <= 45, "{reads} reads");
        // Gaps (entries deleted) and a log that does not start at 1.
        let gappy: Vec<i64> = (500..5000).filter(|s| s % 7 != 0).chain([9000]).collect();
        assert_eq!(last_of(&gappy).await.0, Some(9000));
        for n in [2, 1023, 1024, 1025, 2049] {
            let seqs: Vec<i64> = (1..=n).collect();
            assert_eq!(last_of(&seqs).await.0, Some(n), "{n}");
        }
    }
}
