//! `auuction-loadtest`: parse the command line, run one scenario, print and write the report.
//! Exit status: 0 pass, 1 post-run check failed, 2 a threshold missed, 3 the run failed.

use std::process::ExitCode;

use auuction_loadtest::cli::{Cli, Scenario};
use auuction_loadtest::scenarios::{browse, hot_item, idle, storm, watchers, Ctx};
use clap::Parser;

fn raise_file_limit() {
    // Every connection is a file descriptor; the default soft limit (often 1024) would stop
    // the generator long before the server.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => eprintln!("file descriptor limit: {n}"),
        Err(e) => eprintln!("could not raise the file descriptor limit: {e}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_file_limit();
    let result = async {
        let ctx = Ctx::new(&cli.common).await?;
        let report = match &cli.scenario {
            Scenario::Storm(a) => storm::run(&ctx, a).await?,
            Scenario::HotItem(a) => hot_item::run(&ctx, a).await?,
            Scenario::Watchers(a) => watchers::run(&ctx, a).await?,
            Scenario::Idle(a) => idle::run(&ctx, a).await?,
            Scenario::Browse(a) => browse::run(&ctx, a).await?,
        };
        if let Some(path) = &cli.common.json {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        if let Some(path) = &cli.common.html {
            std::fs::write(path, report.html())?;
        }
        anyhow::Ok(report)
    }
    .await;
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            if report.check_failed() {
                ExitCode::from(1)
            } else if !report.passed {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}
