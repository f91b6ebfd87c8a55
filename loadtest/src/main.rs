//! `auuction-loadtest`: parse the command line, run one scenario, print and write the report.
//! Exit status: 0 pass, 1 post-run check failed, 2 a threshold missed, 3 the run failed.

use std::process::ExitCode;

use auuction_loadtest::cli::{Cli, Scenario};
use auuction_loadtest::scenarios::{browse, close, hot_item, idle, race, storm, watchers, Ctx};
use clap::Parser;

fn raise_file_limit() {
    // Every connection is a file descriptor; the default soft limit (often 1024) would stop
    // the generator long before the server. Run as root, the hard limit can be raised too,
    // up to the kernel's fs.nr_open; otherwise the soft limit goes up to the hard one.
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    if rlimit::setrlimit(rlimit::Resource::NOFILE, ceiling, ceiling).is_err() {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            eprintln!("could not raise the file descriptor limit: {e}");
        }
    }
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        eprintln!("file descriptor limit: {soft}");
    }
}

// The generator shares the box with the server in most runs: every cycle it saves is one
// the server gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            Scenario::Close(a) => close::run(&ctx, a).await?,
            Scenario::Race(a) => race::run(&ctx, a).await?,
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
