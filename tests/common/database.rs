//! Direct access to a test app's database, beside the server: counting rows, and faults made
//! from outside (a trigger that makes an INSERT fail, as Boulder's fault tests do).

use vouch::store::Database;

/// Run SQL on the app's database (SQLite file or PostgreSQL), beside the server.
pub async fn sql(database: &Database, statements: &str) {
    use sqlx::Connection;
    match database {
        Database::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql(statements).execute(&mut c).await.unwrap();
        }
        Database::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(statements).execute(&mut c).await.unwrap();
        }
    }
}

/// Count rows of `table` in the database.
pub async fn count(database: &Database, table: &str) -> i64 {
    use sqlx::Connection;
    let query = format!("SELECT COUNT(*) FROM {table}");
    match database {
        Database::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar(&query).fetch_one(&mut c).await.unwrap()
        }
        Database::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(&query).fetch_one(&mut c).await.unwrap()
        }
    }
}

/// Make every INSERT into `certificates` fail, as a database that fails the write would.
pub async fn fail_certificate_inserts(database: &Database) {
    let statements = match database {
        Database::Sqlite(_) => {
            "CREATE TRIGGER fault_certificates BEFORE INSERT ON certificates \
             BEGIN SELECT RAISE(ABORT, 'injected fault: the certificates insert fails'); END;"
        }
        Database::Postgres(_) => {
            "CREATE FUNCTION fault_certificates() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'injected fault: the certificates insert fails'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fault_certificates BEFORE INSERT ON certificates FOR EACH ROW \
             EXECUTE FUNCTION fault_certificates();"
        }
    };
    sql(database, statements).await;
}

pub async fn heal_certificate_inserts(database: &Database) {
    let statements = match database {
        Database::Sqlite(_) => "DROP TRIGGER fault_certificates;",
        Database::Postgres(_) => "DROP TRIGGER fault_certificates ON certificates;",
    };
    sql(database, statements).await;
}
