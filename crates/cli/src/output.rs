//! Human output: aligned tables and key–value blocks. (`--json` prints the core views as they are.)

use latchkey_catalog::Provider;
use latchkey_core::{AuditEvent, Credential, Workspace};

/// Print rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn or_dash(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

pub fn credentials(items: &[Credential]) {
    if items.is_empty() {
        println!("No credentials. Add one with `latchkey credentials add PROVIDER --name NAME`.");
        return;
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.provider.clone(),
                c.status.to_string(),
                secrets_summary(c),
                or_dash(c.identity.clone()),
                or_dash(c.verified_at.map(|t| t.to_string())),
                c.id.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "PROVIDER",
            "STATUS",
            "SECRETS",
            "IDENTITY",
            "LAST VERIFIED",
            "ID",
        ],
        &rows,
    );
}

fn secrets_summary(c: &Credential) -> String {
    c.secrets
        .iter()
        .map(|(k, v)| format!("{k}={}", if v.set { v.hint.as_str() } else { "(not set)" }))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn credential(c: &Credential) {
    let mut rows: Vec<(String, String)> = vec![
        ("Name".into(), c.name.clone()),
        ("ID".into(), c.id.clone()),
        ("Workspace".into(), c.workspace.clone()),
        (
            "Provider".into(),
            format!("{} ({})", c.provider_name, c.provider),
        ),
        ("Description".into(), or_dash(Some(c.description.clone()))),
        ("Status".into(), c.status.to_string()),
    ];
    if let Some(reason) = &c.status_reason {
        rows.push(("Reason".into(), reason.clone()));
    }
    for (k, v) in &c.settings {
        rows.push((k.clone(), v.clone()));
    }
    for (k, v) in &c.secrets {
        rows.push((
            k.clone(),
            if v.set {
                v.hint.clone()
            } else {
                "(not set)".into()
            },
        ));
    }
    rows.extend([
        ("Identity".into(), or_dash(c.identity.clone())),
        (
            "Last verified".into(),
            or_dash(c.verified_at.map(|t| t.to_string())),
        ),
        (
            "Last used".into(),
            or_dash(c.last_used_at.map(|t| t.to_string())),
        ),
        ("Revision".into(), c.revision.to_string()),
        ("Created".into(), c.created_at.to_string()),
        ("Updated".into(), c.updated_at.to_string()),
    ]);
    key_values(&rows);
}

pub fn key_values(rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        println!("{k}:{} {v}", " ".repeat(width - k.chars().count()));
    }
}

pub fn workspaces(items: &[Workspace]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|w| vec![w.slug.clone(), w.created_at.to_string(), w.id.clone()])
        .collect();
    table(&["WORKSPACE", "CREATED", "ID"], &rows);
}

pub fn providers(items: &[Provider]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.fields
                    .iter()
                    .map(|f| {
                        if f.secret {
                            format!("{}*", f.key)
                        } else {
                            f.key.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                p.auth.describe(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "FIELDS (* secret)", "AUTH"], &rows);
}

pub fn provider(p: &Provider) {
    let v = &p.verify;
    let sets = |s: &[latchkey_catalog::StatusSet]| {
        s.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows: Vec<(String, String)> = vec![
        ("ID".into(), p.id.clone()),
        ("Name".into(), p.name.clone()),
        ("Description".into(), or_dash(Some(p.description.clone()))),
        ("Documentation".into(), or_dash(p.docs_url.clone())),
        (
            "Base URL".into(),
            format!(
                "{}{}",
                p.base_url_template(),
                if p.base_url_overridden() {
                    " (operator override)"
                } else {
                    ""
                }
            ),
        ),
        ("Auth".into(), p.auth.describe()),
        (
            "Verification".into(),
            format!("{} {}", v.method, v.path.as_str()),
        ),
        ("  valid".into(), sets(&v.valid)),
        ("  rejected".into(), sets(&v.rejected)),
        ("  try later".into(), sets(&v.try_later)),
    ];
    if let Some(identity) = &v.identity {
        rows.push(("  identity at".into(), identity.clone()));
    }
    for (status, hint) in v.hints() {
        rows.push((format!("  on {status}"), hint.clone()));
    }
    if let Some(limit) = &p.rate_limit {
        rows.push(("Rate limit".into(), limit.describe()));
        if let Some(note) = &limit.note {
            rows.push(("".into(), note.clone()));
        }
    }
    rows.push(("Defined in".into(), p.source.clone()));
    key_values(&rows);
    println!();
    println!("Fields:");
    for f in &p.fields {
        let mut traits = vec![if f.required { "required" } else { "optional" }];
        if f.secret {
            traits.push("secret");
        }
        if f.host_label {
            traits.push("DNS label");
        }
        let mut line = format!("  {} — {} ({})", f.key, f.label, traits.join(", "));
        if !f.options.is_empty() {
            line.push_str(&format!(" one of: {}", f.options.join(", ")));
        }
        if let Some(pattern) = f.pattern() {
            line.push_str(&format!(" pattern {pattern}"));
        }
        println!("{line}");
        println!("      {}", f.help);
    }
}

pub fn audit(items: &[AuditEvent]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            let actor = match (&e.actor.name, &e.actor.kind) {
                (Some(name), _) => format!("api-credential:{name}"),
                (None, kind) => kind.clone(),
            };
            let target = e
                .target
                .as_ref()
                .map(|t| t.name.clone().or(t.id.clone()).unwrap_or_default())
                .unwrap_or_default();
            vec![
                e.at.to_string(),
                actor,
                e.action.clone(),
                or_dash(Some(target)),
                e.outcome.clone(),
                or_dash(e.detail.clone()),
                or_dash(e.client.clone()),
            ]
        })
        .collect();
    table(
        &[
            "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL", "CLIENT",
        ],
        &rows,
    );
}
