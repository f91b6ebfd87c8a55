//! The test's database seen from outside: its URL, for an `auuction` process a test starts,
//! and outages.

use sqlx::{Connection, Executor, PgConnection, PgPool};
use url::Url;

use super::TestApp;

/// The Postgres server the tests run on, as `DATABASE_URL` names it (`.cargo/config.toml`
/// sets it). `#[sqlx::test]` creates each test's database from a connection to the database
/// this URL names, so that one always exists.
fn server_url() -> Url {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set (.cargo/config.toml)");
    Url::parse(&url).expect("DATABASE_URL is a URL")
}

/// The URL of database `name` on the tests' Postgres server.
pub fn database_url(name: &str) -> String {
    let mut url = server_url();
    url.set_path(name);
    url.to_string()
}

/// The name of the database behind `db`.
pub fn database_name(db: &PgPool) -> String {
    db.connect_options()
        .get_database()
        .expect("a database name")
        .to_string()
}

/// A pool on the database `DATABASE_URL` names, for what a test cannot do from inside the
/// database it is about: create it, drop it, lock it out.
pub async fn admin_pool() -> PgPool {
    PgPool::connect(server_url().as_str()).await.unwrap()
}

impl TestApp {
    /// The URL of this app's database, for an `auuction` process started on it.
    pub fn database_url(&self) -> String {
        database_url(&database_name(&self.db))
    }

    /// Stops this app's database from answering, as when Postgres goes away mid-auction: new
    /// connections are refused and every open one is cut, the app's pool included. The rest
    /// of the Postgres server carries on. Lasts until [`DatabaseOutage::end`].
    pub async fn database_outage(&self) -> DatabaseOutage {
        let name = database_name(&self.db);
        let admin = admin_pool().await;
        admin
            .execute(allow_connections(&name, false).as_str())
            .await
            .unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
        DatabaseOutage {
            admin: Some(admin),
            name,
        }
    }
}

/// The test's database refusing service (see [`TestApp::database_outage`]).
#[must_use = "the outage lasts until `end` is awaited"]
pub struct DatabaseOutage {
    /// `None` once ended.
    admin: Option<PgPool>,
    name: String,
}

impl DatabaseOutage {
    /// The database takes connections again; the app's pool reconnects by itself.
    pub async fn end(mut self) {
        let admin = self.admin.take().expect("not ended yet");
        admin
            .execute(allow_connections(&self.name, true).as_str())
            .await
            .unwrap();
        admin.close().await;
    }
}

impl Drop for DatabaseOutage {
    /// A test that fails mid-outage leaves its database behind for inspection (`#[sqlx::test]`
    /// drops it only after a pass): let connections in again so that it can be inspected.
    /// Drop cannot await, hence a thread with a runtime of its own.
    fn drop(&mut self) {
        if self.admin.take().is_none() {
            return;
        }
        let sql = allow_connections(&self.name, true);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(server_url().as_str()).await.ok()?;
                conn.execute(sql.as_str()).await.ok()
            })
        })
        .join();
    }
}

fn allow_connections(name: &str, allow: bool) -> String {
    format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS {allow}")
}
