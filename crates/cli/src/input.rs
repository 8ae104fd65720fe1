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
    let mut fields: BTreeMap<String, Secret> = BTreeMap::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(Usage(format!(
                "--set takes field=value; `{}` has no `=`",
                key_only(set)
            )));
        };
        let key = key.trim();
        if provider.field(key).is_some_and(|f| f.secret) {
            return Err(Usage(format!(
                "`{key}` is a secret, and Latchkey never takes secrets from the command line, where they would land in your shell history and the process list. Leave it out to be asked for it, or pipe `{key}=…` on standard input."
            )));
        }
        if fields.insert(key.to_owned(), Secret::new(value)).is_some() {
            return Err(Usage(format!("`{key}` is given twice")));
        }
    }

    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        prompt_missing(provider, &mut fields, purpose)?;
    } else {
        read_lines(stdin.lock(), &mut fields)?;
    }
    Ok(fields)
}

fn key_only(text: &str) -> String {
    text.chars().take(40).collect()
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
