//! Collecting a credential's values: non-secret ones from `--set`, secret ones from a no-echo
//! prompt (interactive) or from standard input as `field=value` lines — never from an argument.

use crate::Usage;
use latchkey_catalog::Provider;
use latchkey_vault::Secret;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new credential: ask for every required field not given.
    Create,
    /// Replacing values: ask for the secret fields; an empty answer keeps the stored value.
    Replace,
}

pub fn collect(
    provider: &Provider,
    sets: &[String],
    purpose: Purpose,
) -> Result<BTreeMap<String, Secret>, Usage> {
    let mut fields = parse_sets(provider, sets)?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        prompt_missing(provider, &mut fields, purpose)?;
    } else {
        read_lines(stdin.lock(), &mut fields)?;
    }
    Ok(fields)
}

/// The `--set field=value` arguments. An argument that is not one of the provider's fields is
/// never repeated in a message (a mistyped `--set <secret>` must not be printed back): the
/// message says what the form must be and which fields there are.
pub fn parse_sets(provider: &Provider, sets: &[String]) -> Result<BTreeMap<String, Secret>, Usage> {
    let mut fields: BTreeMap<String, Secret> = BTreeMap::new();
    for set in sets {
        let (key, value) = match set.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value)),
            None => (set.trim(), None),
        };
        let Some(field) = provider.field(key) else {
            let what = if value.is_some() {
                "names none of them"
            } else {
                "has no `=`"
            };
            return Err(Usage(format!(
                "--set takes field=value, e.g. --set {}=value; this argument {what} and is not repeated here, as it may be a secret. {}",
                example_key(provider),
                settable_fields(provider)
            )));
        };
        if field.secret {
            return Err(Usage(format!(
                "`{key}` is a secret, and Latchkey never takes secrets from the command line, where they would land in your shell history and the process list. Leave it out to be asked for it, or pipe `{key}=…` on standard input."
            )));
        }
        let Some(value) = value else {
            return Err(Usage(format!(
                "--set {key} has no value: write --set {key}=value"
            )));
        };
        if fields.insert(key.to_owned(), Secret::new(value)).is_some() {
            return Err(Usage(format!("`{key}` is given twice")));
        }
    }
    Ok(fields)
}

/// A field to show in the example of the `--set` form.
fn example_key(provider: &Provider) -> &str {
    provider
        .fields
        .iter()
        .find(|f| !f.secret)
        .map_or("field", |f| f.key.as_str())
}

/// Which of the provider's fields `--set` takes, and where the secret ones come from.
fn settable_fields(provider: &Provider) -> String {
    let keys = |secret: bool| {
        provider
            .fields
            .iter()
            .filter(|f| f.secret == secret)
            .map(|f| f.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (settable, secret) = (keys(false), keys(true));
    let mut text = if settable.is_empty() {
        format!("{} has no field that --set takes.", provider.name)
    } else {
        format!("{}'s fields for --set: {settable}.", provider.name)
    };
    if !secret.is_empty() {
        text.push_str(&format!(
            " Its secret fields ({secret}) are asked for, or read from standard input as field=value lines."
        ));
    }
    text
}

fn prompt_missing(
    provider: &Provider,
    fields: &mut BTreeMap<String, Secret>,
    purpose: Purpose,
) -> Result<(), Usage> {
    let mut err = std::io::stderr();
    for field in &provider.fields {
        if fields.contains_key(&field.key) {
            continue;
        }
        let ask = match purpose {
            Purpose::Create => field.required || field.secret,
            Purpose::Replace => field.secret,
        };
        if !ask {
            continue;
        }
        let _ = writeln!(err, "{}: {}", field.label, field.help);
        let suffix = if purpose == Purpose::Replace {
            " (empty keeps the current value)"
        } else {
            ""
        };
        let prompt = format!("{}{suffix}: ", field.label);
        let value = if field.secret {
            Zeroizing::new(
                rpassword::prompt_password(&prompt)
                    .map_err(|e| Usage(format!("cannot read {}: {e}", field.label)))?,
            )
        } else {
            let _ = write!(err, "{prompt}");
            let _ = err.flush();
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Usage(format!("cannot read {}: {e}", field.label)))?;
            Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
        };
        if !value.is_empty() {
            fields.insert(field.key.clone(), Secret::new(value.as_str()));
        }
    }
    Ok(())
}

/// `field=value` lines from standard input; blank lines and `#` comments are skipped. A line's
/// content is never repeated in a message (it may be a secret).
pub fn read_lines(
    mut input: impl Read,
    fields: &mut BTreeMap<String, Secret>,
) -> Result<(), Usage> {
    let mut text = Zeroizing::new(String::new());
    input
        .read_to_string(&mut text)
        .map_err(|_| Usage("standard input is not UTF-8 text of field=value lines".to_owned()))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Usage(format!(
                "standard input line {} is not `field=value`",
                n + 1
            )));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Usage(format!(
                "standard input line {} does not start with a field key",
                n + 1
            )));
        }
        if fields.insert(key.to_owned(), Secret::new(value)).is_some() {
            return Err(Usage(format!("`{key}` is given twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_set_argument_that_is_no_field_is_never_repeated() {
        let catalog = latchkey_catalog::Catalog::builtin().unwrap();
        let aircall = catalog.get("aircall").unwrap();
        // A mistyped `--set <secret>`: no `=`, or a base64 secret whose padding looks like one.
        for typed in [
            "sup3rs3cret-token-value-0123456789",
            "c3VwM3JzM2NyZXQtdG9rZW4=",
            "c3VwM3JzM2NyZXQtdG9rZW4==",
            " sup3rs3cret ",
        ] {
            let err = parse_sets(aircall, &sets(&[typed])).unwrap_err().0;
            for part in [
                typed.trim(),
                typed.trim().trim_end_matches('='),
                "sup3r",
                "c3Vw",
            ] {
                assert!(!err.contains(part), "{err}");
            }
            assert!(err.contains("--set takes field=value"), "{err}");
            assert!(err.contains("--set api_id=value"), "{err}");
            assert!(err.contains("Aircall's fields for --set: api_id."), "{err}");
            assert!(err.contains("secret fields (api_token)"), "{err}");
        }
        let err = parse_sets(aircall, &sets(&["colour=red"])).unwrap_err().0;
        assert!(err.contains("names none of them"), "{err}");
        assert!(!err.contains("colour") && !err.contains("red"), "{err}");

        // A field named without a value says how to give one; a secret field is refused.
        let err = parse_sets(aircall, &sets(&["api_id"])).unwrap_err().0;
        assert_eq!(err, "--set api_id has no value: write --set api_id=value");
        let err = parse_sets(aircall, &sets(&["api_token"])).unwrap_err().0;
        assert!(
            err.contains("never takes secrets from the command line"),
            "{err}"
        );
        let err = parse_sets(aircall, &sets(&["api_token=sup3rs3cret"]))
            .unwrap_err()
            .0;
        assert!(!err.contains("sup3rs3cret"), "{err}");

        // A provider without settable fields says so.
        let chorus = catalog.get("chorus").unwrap();
        let err = parse_sets(chorus, &sets(&["sup3rs3cret"])).unwrap_err().0;
        assert!(err.contains("has no field that --set takes"), "{err}");
        assert!(err.contains("--set field=value"), "{err}");

        let ok = parse_sets(aircall, &sets(&["api_id=4242"])).unwrap();
        assert_eq!(ok["api_id"].expose(), "4242");
        let twice = parse_sets(aircall, &sets(&["api_id=1", "api_id=2"])).unwrap_err();
        assert!(twice.0.contains("given twice"));
    }

    #[test]
    fn reads_field_lines_without_echoing_them() {
        let mut fields = BTreeMap::new();
        read_lines(
            "# comment\napi_token=abc=def\n\napi_id = x\n".as_bytes(),
            &mut fields,
        )
        .unwrap();
        assert_eq!(fields["api_token"].expose(), "abc=def");
        assert_eq!(fields["api_id"].expose(), " x");
        let err = read_lines("sup3rsecret\n".as_bytes(), &mut BTreeMap::new()).unwrap_err();
        assert!(!err.0.contains("sup3rsecret"));
        assert!(err.0.contains("line 1"));
    }
}
