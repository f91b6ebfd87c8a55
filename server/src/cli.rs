//! Command line: `serve` (default), `migrate`, `user add`, `demo`.

use std::{io::Read, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    config::Config,
    domain::{validate, Role, Roles},
    passwords,
    store::{self, users},
    Application,
};

#[derive(Parser)]
#[command(
    name = "auuction",
    version,
    about = "Real-time fundraising auction for a congregation's yearly auction"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (the default).
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Serve a live demo auction with sample data and demo logins of every role.
    Demo {
        /// Use this database instead of DATABASE_URL's (it is reset!). Default: `auuction_demo`
        /// on the same server.
        #[arg(long)]
        database_url: Option<String>,
        /// Auction night in minutes instead of hours: bidding closes 5 minutes after the
        /// start, the reoffer opens 2 minutes later for 20 minutes, then settlement.
        #[arg(long)]
        fast: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a verified account. Prints a generated password unless one is given on stdin.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// bidder, donor, manager, admin or finance; repeat or comma-separate for several.
        #[arg(long, value_delimiter = ',', default_value = "bidder")]
        role: Vec<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(port = app.port(), url = %app.state().config.base_url, "auuction is serving");
            app.run(true).await
        }
        Command::Migrate => {
            store::connect_and_migrate(&config.database_url).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    email,
                    name,
                    role,
                    password_stdin,
                },
        } => add_user(&config, &email, &name, &role, password_stdin).await,
        Command::Demo { database_url, fast } => {
            let timeline = if fast {
                crate::demo::Timeline::Fast
            } else {
                crate::demo::Timeline::Evening
            };
            crate::demo::run(config, database_url, timeline).await
        }
    }
}

async fn add_user(
    config: &Config,
    email: &str,
    name: &str,
    roles: &[String],
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email = validate::email(email).map_err(|e| anyhow::anyhow!(e.message))?;
    let name = validate::name(name).map_err(|e| anyhow::anyhow!(e.message))?;
    let mut parsed = Vec::new();
    for r in roles {
        parsed.push(Role::parse(r.trim()).with_context(|| {
            format!("unknown role {r:?}: use bidder, donor, manager, admin or finance")
        })?);
    }
    let roles = Roles::new(parsed);
    let (password, generated) = if password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        (text.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (passwords::generate(), true)
    };
    validate::password(&password).map_err(|e| anyhow::anyhow!(e.message))?;
    let db = store::connect_and_migrate(&config.database_url).await?;
    let hash = passwords::hash(password.clone()).await?;
    let user = users::insert(
        &db,
        users::NewUser {
            email: &email,
            name: &name,
            password_hash: &hash,
            roles: &roles,
            preferences: users::Preferences {
                email: true,
                sms: false,
            },
            verified: true,
        },
    )
    .await?
    .with_context(|| format!("an account with the email {email} already exists"))?;
    crate::store::audit::record(
        &db,
        None,
        "user.created_by_cli",
        "user",
        Some(user.id),
        None,
        Some(serde_json::json!({ "email": email, "roles": roles.as_strings() })),
    )
    .await?;
    println!(
        "created {} <{}> with roles {}",
        user.user_id(),
        email,
        roles.as_strings().join(", ")
    );
    if generated {
        println!("password: {password}");
    }
    Ok(())
}
