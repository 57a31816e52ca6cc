//! The SQL check in front of `anamo query`: one statement, and only SELECT / WITH / VALUES /
//! EXPLAIN of those; no write may hide anywhere inside (a CTE, a subquery). The connection is
//! read-only as well: this check gives a clear message, the connection makes it certain.

use std::ops::ControlFlow;

use sqlparser::ast::{Statement, visit_statements};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

/// Returns a message naming what was refused, or Ok for a read-only query.
pub fn check(sql: &str) -> Result<(), String> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql).map_err(|e| {
        // What the parser cannot read may still be plainly not a query (PRAGMA, REINDEX):
        // say that, rather than a parse error.
        let verb = first_word(sql);
        if WRITES.contains(&verb.as_str()) {
            refused(&verb)
        } else {
            format!("cannot parse the SQL: {e}")
        }
    })?;
    match statements.len() {
        0 => return Err("no SQL statement given".into()),
        1 => {}
        n => {
            return Err(format!(
                "{n} statements given; anamo query runs exactly one SELECT"
            ));
        }
    }
    let verdict = visit_statements(&statements, |s| match allowed(s) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    });
    match verdict {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// True when the text is SQL at all (of any kind).
pub fn parses(sql: &str) -> bool {
    Parser::parse_sql(&SQLiteDialect {}, sql).is_ok_and(|s| !s.is_empty())
}

/// Statements that are plainly not queries, refused by name even where the parser cannot read
/// them; any other unreadable text is a syntax error (`SELEC 1` is a typo, not a write).
const WRITES: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "UPSERT",
    "DROP",
    "CREATE",
    "ALTER",
    "ATTACH",
    "DETACH",
    "PRAGMA",
    "REINDEX",
    "VACUUM",
    "ANALYZE",
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "TRUNCATE",
    "GRANT",
    "MERGE",
];

/// The first keyword of `sql`, upper-cased, past blanks and `--` comments.
fn first_word(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .flat_map(str::split_whitespace)
        .next()
        .unwrap_or("")
        .trim_start_matches('(')
        .to_ascii_uppercase()
}

fn refused(verb: &str) -> String {
    let hint = if verb == "PRAGMA" {
        " (PRAGMA reads have table forms: SELECT * FROM pragma_table_info('tasks'))"
    } else {
        ""
    };
    format!("{verb} is not allowed: anamo query is read-only (SELECT, WITH, EXPLAIN only){hint}")
}

fn allowed(statement: &Statement) -> Result<(), String> {
    match statement {
        Statement::Query(_) => Ok(()),
        Statement::Explain { analyze: false, .. } => Ok(()),
        other => {
            let text = other.to_string();
            let verb = text
                .split_whitespace()
                .next()
                .unwrap_or("statement")
                .to_ascii_uppercase();
            Err(refused(&verb))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_typo_is_a_syntax_error_not_a_refusal() {
        let e = check("SELEC 1").unwrap_err();
        assert!(e.starts_with("cannot parse the SQL: "), "{e}");
    }

    #[test]
    fn reads_pass_and_writes_are_refused() {
        for ok in [
            "SELECT 1",
            "select * from tasks where collection = :step;",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "EXPLAIN QUERY PLAN SELECT * FROM tasks",
            "SELECT count(*) FROM (SELECT sample FROM tasks GROUP BY sample)",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, word) in [
            ("INSERT INTO tasks (collection) VALUES ('x')", "INSERT"),
            ("UPDATE tasks SET state = 'done'", "UPDATE"),
            ("DELETE FROM tasks", "DELETE"),
            ("DROP TABLE tasks", "DROP"),
            ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
            ("PRAGMA user_version = 7", "PRAGMA"),
            (
                "PRAGMA table_info(launches)",
                "PRAGMA is not allowed: anamo query is read-only (SELECT, WITH, EXPLAIN only) (PRAGMA reads have table forms",
            ),
            ("SELECT 1; DROP TABLE tasks", "2 statements"),
            (
                "WITH gone AS (DELETE FROM tasks RETURNING *) SELECT * FROM gone",
                "",
            ),
            ("EXPLAIN DELETE FROM tasks", "DELETE"),
            ("CREATE TABLE x (a)", "CREATE"),
            ("VACUUM", ""),
        ] {
            let err = check(bad).expect_err(bad);
            assert!(err.contains(word), "{bad}: {err}");
        }
    }
}
