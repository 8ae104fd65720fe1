//! How a provider is shown to users.

/// A provider as the CLI's `--json` and the API show it: everything the catalog says about it.
pub fn provider_json(p: &latchkey_catalog::Provider) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "docs_url": p.docs_url,
        "base_url": p.base_url_template(),
        "base_url_overridden": p.base_url_overridden(),
        "auth": p.auth.describe(),
        "fields": p.fields.iter().map(|f| serde_json::json!({
            "key": f.key, "label": f.label, "help": f.help, "secret": f.secret, "required": f.required,
            "pattern": f.pattern(), "options": f.options, "dns_label": f.host_label,
        })).collect::<Vec<_>>(),
        "verify": {
            "method": p.verify.method, "path": p.verify.path.as_str(),
            "valid": p.verify.valid.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rejected": p.verify.rejected.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "try_later": p.verify.try_later.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "identity": p.verify.identity,
            "hints": p.verify.hints(),
        },
        "rate_limit": p.rate_limit.as_ref().map(|r| serde_json::json!({
            "requests": r.requests, "per_seconds": r.per.map(|d| d.as_secs()), "scope": r.scope,
            "weekly": r.weekly, "configurable": r.configurable, "note": r.note,
        })),
        "source": p.source,
    })
}
