//! Placeholders: the one place that fills `{name}` in task ids, scripts and output patterns,
//! and `{{name}}` in launch user data (a bash script, where single braces are the shell's own:
//! `${HOME}`, `{a,b}`). Unknown names are refused, never left in place; a value that lands in
//! a shell script is shell-quoted, so data never runs as code.
//!
//! In `{name}` text, only `{identifier}` not preceded by `$` is a placeholder: `${VAR}` and
//! brace expansions such as `{1..3}` or `{a,b}` stay as the shell wrote them.

use crate::error::{Error, Result};

/// How a filled value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// As it is (ids, URIs).
    Plain,
    /// As one shell word: quoted when it holds anything but plain characters.
    Shell,
}

/// Fills `{name}` placeholders in `template` (from `source`, for messages) with `vars`.
pub fn fill(
    source: &str,
    template: &str,
    vars: &[(&str, &str)],
    quoting: Quoting,
) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let name_len = after[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len() - 1);
        let name = &after[1..1 + name_len];
        let closed = after[1 + name_len..].starts_with('}');
        let shell_var = before.ends_with('$');
        let is_ident = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !closed || shell_var || !is_ident {
            out.push('{');
            rest = &after[1..];
            continue;
        }
        let value = lookup(source, name, vars, "{", "}")?;
        if quoting == Quoting::Shell
            && let Some(q) = quote_open_at(template, template.len() - after.len())
        {
            // Our quoting inside the user's quotes would put literal quote characters into
            // the word (and a value with a space would split it): refused, never guessed.
            return Err(Error::Invalid(format!(
                "{source}: {{{name}}} is inside {} quotes; leave the quotes out: the value goes \
                 in as one shell word, quoted when it needs it",
                if q == '"' { "double" } else { "single" }
            )));
        }
        out.push_str(&quote(value, quoting));
        rest = &after[name_len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The shell quote (`'` or `"`) open at byte `at` of `script`, if any: a rough reading of the
/// shell's rules (backslash escapes outside single quotes), enough to tell `"{sample}"`.
fn quote_open_at(script: &str, at: usize) -> Option<char> {
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in script[..at].chars() {
        match (open, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => open = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (None, '\'' | '"') => open = Some(c),
            (Some('"'), '"') => open = None,
            _ => {}
        }
    }
    open
}

/// Checks a `{name}` template without filling it: every placeholder must be one of `known`.
pub fn check(source: &str, template: &str, known: &[&str]) -> Result<()> {
    let vars: Vec<(&str, &str)> = known.iter().map(|k| (*k, "")).collect();
    fill(source, template, &vars, Quoting::Plain).map(|_| ())
}

/// Fills `{{name}}` placeholders (launch user data) with values the caller made ready (shell
/// words, quoted with [`shell_quote`]: one placeholder may stand for several words).
pub fn fill_double(source: &str, template: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Error::Invalid(format!(
                "{source}: a '{{{{' is never closed; placeholders look like {{{{step}}}}"
            )));
        };
        let name = after[..end].trim();
        out.push_str(lookup(source, name, vars, "{{", "}}")?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'v>(
    source: &str,
    name: &str,
    vars: &[(&str, &'v str)],
    open: &str,
    close: &str,
) -> Result<&'v str> {
    vars.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let known: Vec<String> = vars
                .iter()
                .map(|(k, _)| format!("{open}{k}{close}"))
                .collect();
            Error::Invalid(format!(
                "{source}: unknown placeholder {open}{name}{close}; known: {}",
                known.join(", ")
            ))
        })
}

fn quote(value: &str, quoting: Quoting) -> String {
    match quoting {
        Quoting::Plain => value.to_string(),
        Quoting::Shell => shell_quote(value),
    }
}

/// A word the shell reads back as `s`: as it is when plain, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_braces_fill_known_names_and_leave_the_shell_alone() {
        let vars = [("sample", "NA12878"), ("collection", "Alignment")];
        assert_eq!(
            fill(
                "t",
                "align.sh {sample} ${HOME} {1..3} {a,b} {collection}",
                &vars,
                Quoting::Shell
            )
            .unwrap(),
            "align.sh NA12878 ${HOME} {1..3} {a,b} Alignment"
        );
        let e = fill("--script", "x {smaple}", &vars, Quoting::Shell)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--script: unknown placeholder {smaple}; known: {sample}, {collection}"
        );
        assert_eq!(fill("t", "{", &vars, Quoting::Plain).unwrap(), "{");
        assert_eq!(
            fill("t", "a{sample", &vars, Quoting::Plain).unwrap(),
            "a{sample"
        );
    }

    #[test]
    fn values_in_scripts_are_one_literal_word() {
        let vars = [("sample", "a b'c;d")];
        assert_eq!(
            fill("t", "echo {sample}", &vars, Quoting::Shell).unwrap(),
            r"echo 'a b'\''c;d'"
        );
        assert_eq!(
            fill("t", "{sample}", &vars, Quoting::Plain).unwrap(),
            "a b'c;d"
        );
    }

    #[test]
    fn a_placeholder_the_user_quoted_is_refused() {
        let vars = [("sample", "S1")];
        for script in [
            "echo \"{sample}\"",
            "echo '{sample}'",
            "cat \"data/{sample}.bam\"",
        ] {
            let e = fill("--script", script, &vars, Quoting::Shell).unwrap_err();
            assert!(
                e.to_string().contains("{sample} is inside"),
                "{script}: {e}"
            );
        }
        // Closed quotes before it, escaped quotes, and ids (plain) are fine.
        for script in [
            "echo 'x' {sample} \"y\"",
            "echo \\\"{sample}",
            "a\"b\"c {sample}",
        ] {
            assert!(
                fill("--script", script, &vars, Quoting::Shell).is_ok(),
                "{script}"
            );
        }
        assert!(fill("--id", "'{sample}'", &vars, Quoting::Plain).is_ok());
    }

    #[test]
    fn double_braces_fill_and_unknown_ones_are_named() {
        let vars = [("step", "Alignment")];
        assert_eq!(
            fill_double("t", "run {{step}} {{ step }} ${X}", &vars).unwrap(),
            "run Alignment Alignment ${X}"
        );
        let e = fill_double("t.sh", "x {{stpe}}", &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.sh: unknown placeholder {{stpe}}"), "{e}");
        let e = fill_double("t.sh", "x {{step", &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("never closed"), "{e}");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_quote("dynamodb://anamo-tasks"),
            "dynamodb://anamo-tasks"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
