//! The files anamo keeps, catalog and store: a file that is not one (junk, another SQLite
//! database, a newer schema, a folder that does not exist) is refused with one line and left
//! alone, and an error from one names that file, not the other.

use crate::harness::{Env, FRESH};
use crate::status_cli::journey_env;

#[test]
fn a_bad_catalog_file_is_refused_and_left_alone() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "a", "--script", "true"]);
    let junk = "PAR1 not a database at all\n".repeat(300);
    env.write("anamo.db", &junk);
    for args in [
        vec!["sync"],
        vec!["query", "SELECT 1"],
        vec!["status"],
        vec!["samples", "drop", "x", "--reason", "r"],
    ] {
        env.anamo(&args)
            .fails(1)
            .stderr_one_line_with("is not an anamo catalog (not a SQLite database)")
            .run();
    }
    assert_eq!(env.read("anamo.db"), junk);
    // Another SQLite database is not ours either.
    std::fs::remove_file(env.path("anamo.db")).unwrap();
    env.catalog_rw()
        .execute_batch("CREATE TABLE x (a);")
        .unwrap();
    env.anamo(&["sync"])
        .fails(1)
        .stderr_one_line_with("a SQLite database of something else")
        .run();
    // A catalog from a newer anamo.
    std::fs::remove_file(env.path("anamo.db")).unwrap();
    env.ok(&["sync"]);
    env.catalog_rw()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    // This anamo's schema: one version per migration.
    let ours = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/catalog"))
        .unwrap()
        .count();
    for args in [vec!["sync"], vec!["query", "SELECT 1"]] {
        env.anamo(&args)
            .fails(1)
            .stderr_one_line_with(format!(
                "was written by a newer anamo (schema 99 > {ours}); upgrade anamo"
            ))
            .run();
    }
    Env::new()
        .anamo(&["query", "SELECT 1"])
        .fails(1)
        .stderr_one_line_with("catalog 'anamo.db' does not exist")
        .run();
}

#[test]
fn a_catalog_in_a_missing_folder_says_so_and_the_fix() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t", "--script", "true"]);
    env.anamo(&["--catalog", "nodir/x.db", "sync"])
        .fails(1)
        .stderr(
            "error: the folder 'nodir' of catalog 'nodir/x.db' does not exist; create it (mkdir \
             -p), or point --catalog/ANAMO_CATALOG at another file\n",
        )
        .run();
}

#[test]
fn a_broken_catalog_error_names_the_catalog_not_the_store() {
    let env = journey_env();
    let conn = env.catalog_rw();
    conn.execute_batch("DROP VIEW sample_progress; DROP VIEW progress;")
        .unwrap();
    drop(conn);
    // Named as the user gave it (the default, relative to where anamo runs), as every other
    // message about the catalog names it.
    env.anamo(&["status"])
        .fails(1)
        .stderr_matches(&format!(
            "{FRESH}error: catalog 'anamo.db': no such table: progress[^\n]*\n"
        ))
        .run();
}

#[test]
fn a_broken_store_error_names_the_store() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t", "--script", "true"]);
    let conn = rusqlite::Connection::open(env.store()).unwrap();
    conn.execute_batch("ALTER TABLE tasks RENAME COLUMN exit_code TO exit_status;")
        .unwrap();
    drop(conn);
    env.anamo(&["tasks", "list"])
        .fails(1)
        .stderr_starts_with(format!(
            "error: task store '{}': no such column: exit_code",
            env.store().display()
        ))
        .run();
}
