//! The HTML, server-rendered with maud (every value escaped). No page ever holds a stored secret
//! or a token, except the one-time token display right after it was issued.

use latchkey_catalog::{Catalog, Field, Provider};
use latchkey_core::{ApiCredential, Credential, Status, Timestamp};
use maud::{DOCTYPE, Markup, html};
use std::collections::BTreeMap;

/// The seed documents' hint about descriptions.
pub const DESCRIPTION_HINT: &str = "Resource descriptions are recommended but are not required. They should be used to provide information about the resource purpose, data freshness, etc. that can help the owner and other users efficiently understand and utilize the resource.";

/// The seed documents' warning beside a token shown once.
pub const TOKEN_WARNING: &str =
    "This token does not appear again, so be sure to store it in a secure place.";

/// What the layout needs to know about the signed-in person.
pub struct Chrome<'a> {
    pub workspace: &'a str,
    pub who: &'a str,
    pub csrf: &'a str,
    /// Which pane: "credentials" or "api".
    pub current: &'a str,
}

pub fn page(title: &str, chrome: Option<&Chrome<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Latchkey" }
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header class="top" {
                    a class="brand" href="/" { span class="brand-mark" aria-hidden="true" { "L" } "Latchkey" }
                    @if let Some(c) = chrome {
                        nav aria-label="Main" {
                            a href="/" aria-current=[(c.current == "credentials").then_some("page")] { "Credentials" }
                            a href="/api-credentials" aria-current=[(c.current == "api").then_some("page")] { "API Credentials" }
                        }
                        div class="who" {
                            span { "Workspace " strong { (c.workspace) } " · " (c.who) }
                            form method="post" action="/sign-out" {
                                (csrf_input(c.csrf))
                                button type="submit" class="link" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

pub fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

pub fn when(t: Option<Timestamp>) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(t) { (t.to_string().replace('T', " ").trim_end_matches('Z')) " UTC" } }
        }
        None => html! { "never" },
    }
}

pub fn notice(kind: &str, text: &str) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { p class={ "notice notice-" (kind) } role=(role) { (text) } }
}

// ----- sign in -----

pub fn sign_in(workspace: &str, message: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            section class="sign-in" aria-labelledby="sign-in-title" {
                h1 id="sign-in-title" { "Sign in" }
                p { "Sign in with your workspace and an API credential token. On its first start, " code { "latchkey serve" } " prints the admin's token." }
                @if let Some(m) = message { (notice("error", m)) }
                form method="post" action="/sign-in" {
                    div class="field" {
                        label for="workspace" { "Workspace" }
                        input id="workspace" name="workspace" value=(workspace) autocomplete="username" required;
                    }
                    div class="field" {
                        label for="token" { "API credential token" }
                        div class="secret" {
                            input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                            (toggle("token"))
                        }
                    }
                    div class="actions" { button type="submit" class="primary" { "Sign in" } }
                }
            }
        },
    )
}

fn toggle(id: &str) -> Markup {
    html! {
        button type="button" class="toggle" data-toggle-secret=(id) aria-controls=(id) aria-pressed="false" { "Show" }
    }
}

// ----- provider marks and badges -----

/// A provider's simple mark: its initials on a colour of its own.
pub fn mark(provider_id: &str, provider_name: &str) -> Markup {
    // "Clari Copilot" → CC, "Google CCAI Platform" → CP, "Chorus.ai" → Ch, "Aircall" → Ai.
    let words: Vec<&str> = provider_name
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| w.split('.').next().unwrap_or(""))
        .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("google"))
        .collect();
    let initials: String = match words.as_slice() {
        [one] => {
            let mut chars = one.chars();
            chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .chain(chars.next().into_iter().flat_map(char::to_lowercase))
                .collect()
        }
        many => many
            .iter()
            .filter_map(|w| w.chars().next())
            .take(2)
            .flat_map(char::to_uppercase)
            .collect(),
    };
    let hue = provider_id
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 12;
    html! { span class={ "mark hue-" (hue) } aria-hidden="true" { (initials) } }
}

pub fn badge(status: Status) -> Markup {
    html! { span class={ "badge badge-" (status.as_str()) } { (status.as_str()) } }
}

// ----- credentials screen -----

pub struct Filters<'a> {
    pub provider: &'a str,
    pub status: &'a str,
    pub q: &'a str,
    pub first_page: bool,
    /// The cursor of the next page, when there is one.
    pub next: Option<&'a str>,
}

impl Filters<'_> {
    /// `/?…` with these filters, from `after` (or the first page).
    fn link(&self, after: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("provider", self.provider),
            ("status", self.status),
            ("q", self.q),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(after) = after {
            q.append_pair("after", after);
        }
        format!("/?{}", q.finish())
    }
}

/// The Add New Credential form's state: what was typed (never a secret) and what went wrong.
#[derive(Default)]
pub struct AddForm {
    pub open: bool,
    pub provider: String,
    pub name: String,
    pub description: String,
    /// Non-secret field values, by key.
    pub values: BTreeMap<String, String>,
    /// Errors by input: "name", "description", "provider", a field key, or "" for the form.
    pub errors: BTreeMap<String, String>,
    /// The provider could not be reached: offer to save without verifying.
    pub unreachable: bool,
    pub nonce: String,
}

pub fn credentials(
    chrome: &Chrome<'_>,
    catalog: &Catalog,
    items: &[Credential],
    filters: &Filters<'_>,
    add: &AddForm,
    message: Option<Markup>,
) -> Markup {
    let body = html! {
        div class="heading" {
            h1 { "Credentials" }
            p class="sub" { "Pick a credential tile, or add one. Every credential is verified with its provider when it is saved." }
        }
        @if let Some(m) = message { (m) }
        form class="filters" method="get" action="/" role="search" {
            div class="field" {
                label for="filter-provider" { "Provider" }
                select id="filter-provider" name="provider" data-autosubmit {
                    option value="" { "All providers" }
                    @for p in catalog.providers() {
                        option value=(p.id) selected[filters.provider == p.id] { (p.name) }
                    }
                }
            }
            div class="field" {
                label for="filter-status" { "Status" }
                select id="filter-status" name="status" data-autosubmit {
                    option value="" { "Any status" }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[filters.status == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            div class="field grow" {
                label for="filter-q" { "Search by name" }
                input id="filter-q" type="search" name="q" value=(filters.q);
            }
            div class="field" { button type="submit" { "Filter" } }
        }
        ul class="tiles" aria-label="Credentials" {
            li {
                a class="tile tile-add" href="/?add=1" data-open="add-dialog" id="add-credential" {
                    span class="plus" aria-hidden="true" { "+" }
                    span { "Add Credential" }
                }
            }
            @for c in items {
                li { (tile(c)) }
            }
        }
        @if filters.next.is_some() || !filters.first_page {
            nav class="pages" aria-label="Pages of credentials" {
                @if !filters.first_page { a href=(filters.link(None)) { "← First page" } }
                @if let Some(next) = filters.next { a href=(filters.link(Some(next))) rel="next" id="next-page" { "Next page →" } }
            }
        }
        @if items.is_empty() {
            p class="empty" {
                @if filters.provider.is_empty() && filters.status.is_empty() && filters.q.is_empty() && filters.first_page {
                    "No credentials yet: pick the Add Credential tile to add the first one."
                } @else {
                    "No credential matches these filters."
                }
            }
        }
        (add_dialog(chrome.csrf, catalog, add))
    };
    page("Credentials", Some(chrome), body)
}

fn tile(c: &Credential) -> Markup {
    html! {
        a class={ "tile status-" (c.status.as_str()) } href={ "/credentials/" (c.id) } data-credential=(c.name) {
            div class="tile-head" {
                (mark(&c.provider, &c.provider_name))
                span class="provider" { (c.provider_name) }
                (badge(c.status))
            }
            h2 class="tile-name" { (c.name) }
            @if !c.description.is_empty() { p class="desc" { (c.description) } }
            @if c.status == Status::Invalid {
                @if let Some(reason) = &c.status_reason { p class="reason" { (reason) } }
            }
            dl class="facts" {
                dt { "Last verified" } dd { (when(c.verified_at)) }
                dt { "Identity" } dd { (c.identity.as_deref().unwrap_or("—")) }
                dt { "Last used" } dd { (when(c.last_used_at)) }
            }
        }
    }
}

fn field_input(
    provider: &Provider,
    field: &Field,
    value: &str,
    error: Option<&str>,
    focus: bool,
) -> Markup {
    let id = format!("f-{}-{}", provider.id, field.key);
    let name = format!("{}.{}", provider.id, field.key);
    let help_id = format!("{id}-help");
    let err_id = format!("{id}-error");
    let described = if error.is_some() {
        format!("{help_id} {err_id}")
    } else {
        help_id.clone()
    };
    html! {
        div class={ "field" @if error.is_some() { " has-error" } } {
            label for=(id) { (field.label) @if !field.required { span class="optional" { " (optional)" } } }
            @if field.secret {
                div class="secret" {
                    input id=(id) name=(name) type="password" autocomplete="off" spellcheck="false"
                        aria-describedby=(described) aria-invalid=[error.map(|_| "true")] autofocus[focus];
                    (toggle(&id))
                }
            } @else if !field.options.is_empty() {
                select id=(id) name=(name) aria-describedby=(described) aria-invalid=[error.map(|_| "true")] {
                    @for o in &field.options { option value=(o) selected[value == o] { (o) } }
                }
            } @else {
                input id=(id) name=(name) value=(value) autocomplete="off" spellcheck="false"
                    aria-describedby=(described) aria-invalid=[error.map(|_| "true")];
            }
            @if let Some(e) = error { p class="error" id=(err_id) { (e) } }
            @if !field.help.is_empty() { p class="help" id=(help_id) { (field.help) } }
        }
    }
}

fn add_dialog(csrf: &str, catalog: &Catalog, add: &AddForm) -> Markup {
    let form_error = add.errors.get("");
    html! {
        dialog id="add-dialog" class="overlay" aria-labelledby="add-title" open[add.open] data-autoshow[add.open] {
            form method="post" action="/credentials" data-once {
                div class="dialog-head" {
                    h2 id="add-title" { "Add New Credential" }
                    button type="button" class="close" data-close aria-label="Close" { "×" }
                }
                (csrf_input(csrf))
                input type="hidden" name="nonce" value=(add.nonce);
                @if let Some(e) = form_error { (notice("error", e)) }
                div class={ "field" @if add.errors.contains_key("provider") { " has-error" } } {
                    label for="add-provider" { "Provider" }
                    select id="add-provider" name="provider" data-provider-select {
                        option value="" { "Choose a provider" }
                        @for p in catalog.providers() {
                            option value=(p.id) selected[add.provider == p.id] { (p.name) }
                        }
                    }
                    @if let Some(e) = add.errors.get("provider") { p class="error" { (e) } }
                }
                div class={ "field" @if add.errors.contains_key("name") { " has-error" } } {
                    label for="add-name" { "Credential Name" }
                    input id="add-name" name="name" value=(add.name) maxlength="200" autocomplete="off"
                        aria-describedby=[add.errors.get("name").map(|_| "add-name-error")]
                        aria-invalid=[add.errors.get("name").map(|_| "true")];
                    @if let Some(e) = add.errors.get("name") { p class="error" id="add-name-error" { (e) } }
                }
                div class={ "field" @if add.errors.contains_key("description") { " has-error" } } {
                    label for="add-description" { "Credential Description" span class="optional" { " (optional)" } }
                    textarea id="add-description" name="description" maxlength="2000" rows="2" aria-describedby="add-description-help" { (add.description) }
                    p class="help" id="add-description-help" { (DESCRIPTION_HINT) }
                    @if let Some(e) = add.errors.get("description") { p class="error" { (e) } }
                }
                @for p in catalog.providers() {
                    @let chosen = add.provider == p.id;
                    fieldset class="provider-fields" data-provider=(p.id) {
                        legend { (mark(&p.id, &p.name)) " " (p.name) " authentication" }
                        @let first_secret = p.fields.iter().position(|f| f.secret);
                        @for (i, f) in p.fields.iter().enumerate() {
                            @let value = if chosen { add.values.get(&f.key).map(String::as_str).unwrap_or("") } else { "" };
                            @let error = if chosen { add.errors.get(&f.key).map(String::as_str) } else { None };
                            @let focus = chosen && add.unreachable && first_secret == Some(i);
                            (field_input(p, f, value, error, focus))
                        }
                        @if let Some(docs) = &p.docs_url {
                            p class="docs" { a href=(docs) target="_blank" rel="noopener noreferrer" { (p.name) " API documentation" } }
                        }
                    }
                }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    @if add.unreachable {
                        button type="submit" name="verify" value="skip" id="save-unverified" { "Save without verifying" }
                    }
                    button type="submit" class="primary" id="add-save" { "Save" }
                }
            }
        }
    }
}

// ----- one credential -----

pub struct Detail<'a> {
    pub credential: &'a Credential,
    pub provider: Option<&'a Provider>,
    pub message: Option<Markup>,
    /// Errors of the replace-secrets form, by field key (or "").
    pub secret_errors: BTreeMap<String, String>,
    /// Errors of the name/description form.
    pub edit_errors: BTreeMap<String, String>,
}

pub fn credential(chrome: &Chrome<'_>, d: &Detail<'_>) -> Markup {
    let c = d.credential;
    let enabled = c.status != Status::Disabled;
    let rev = c.revision.to_string();
    let base = format!("/credentials/{}", c.id);
    let body = html! {
        p class="crumbs" { a href="/" { "← Credentials" } }
        div class="heading detail-head" {
            (mark(&c.provider, &c.provider_name))
            div {
                h1 id="credential-title" { (c.name) }
                p class="sub" { (c.provider_name) " · " (badge(c.status)) }
            }
        }
        @if let Some(m) = &d.message { (m) }
        @if c.status == Status::Invalid {
            @if let Some(reason) = &c.status_reason { (notice("error", reason)) }
        }
        div class="detail-grid" {
            section aria-labelledby="facts-title" class="card" {
                h2 id="facts-title" { "Details" }
                dl class="facts" {
                    dt { "Provider" } dd { (c.provider_name) }
                    dt { "Status" } dd { (badge(c.status)) }
                    dt { "Last verified" } dd { (when(c.verified_at)) }
                    dt { "Verified identity" } dd { (c.identity.as_deref().unwrap_or("—")) }
                    dt { "Last used" } dd { (when(c.last_used_at)) }
                    dt { "Created" } dd { (when(Some(c.created_at))) }
                    @for (key, value) in &c.settings {
                        dt { (label_of(d.provider, key)) } dd { code { (value) } }
                    }
                    @for (key, view) in &c.secrets {
                        dt { (label_of(d.provider, key)) } dd { code { @if view.set { (view.hint) } @else { "not set" } } }
                    }
                }
                div class="actions left" {
                    form method="post" action={ (base) "/verify" } data-once {
                        (csrf_input(chrome.csrf))
                        button type="submit" id="verify-now" { "Verify now" }
                    }
                    form method="post" action={ (base) @if enabled { "/disable" } @else { "/enable" } } data-once {
                        (csrf_input(chrome.csrf))
                        input type="hidden" name="revision" value=(rev);
                        button type="submit" id="toggle-enabled" { @if enabled { "Disable" } @else { "Enable" } }
                    }
                    button type="button" class="danger" data-open="delete-dialog" id="delete" { "Delete" }
                }
            }
            section aria-labelledby="edit-title" class="card" {
                h2 id="edit-title" { "Name and description" }
                form method="post" action={ (base) "/edit" } data-once {
                    (csrf_input(chrome.csrf))
                    input type="hidden" name="revision" value=(rev);
                    div class={ "field" @if d.edit_errors.contains_key("name") { " has-error" } } {
                        label for="edit-name" { "Credential Name" }
                        input id="edit-name" name="name" value=(c.name) maxlength="200" autocomplete="off";
                        @if let Some(e) = d.edit_errors.get("name") { p class="error" { (e) } }
                    }
                    div class={ "field" @if d.edit_errors.contains_key("description") { " has-error" } } {
                        label for="edit-description" { "Credential Description" span class="optional" { " (optional)" } }
                        textarea id="edit-description" name="description" maxlength="2000" rows="3" aria-describedby="edit-description-help" { (c.description) }
                        p class="help" id="edit-description-help" { (DESCRIPTION_HINT) }
                        @if let Some(e) = d.edit_errors.get("description") { p class="error" { (e) } }
                    }
                    div class="actions" { button type="submit" class="primary" id="edit-save" { "Save" } }
                }
            }
            @if let Some(p) = d.provider {
                @if p.fields.iter().any(|f| f.secret) {
                    section aria-labelledby="secrets-title" class="card" {
                        h2 id="secrets-title" { "Replace secret" }
                        p class="sub" { "The new value is verified with " (p.name) " first; if it is rejected, the stored one stays." }
                        form method="post" action={ (base) "/secrets" } data-once {
                            (csrf_input(chrome.csrf))
                            input type="hidden" name="revision" value=(rev);
                            @if let Some(e) = d.secret_errors.get("") { (notice("error", e)) }
                            @for f in p.fields.iter().filter(|f| f.secret) {
                                (field_input(p, f, "", d.secret_errors.get(&f.key).map(String::as_str), false))
                            }
                            div class="actions" { button type="submit" class="primary" id="replace-save" { "Verify and replace" } }
                        }
                    }
                }
            }
        }
        dialog id="delete-dialog" class="overlay small" aria-labelledby="delete-title" {
            form method="post" action={ (base) "/delete" } data-once {
                h2 id="delete-title" { "Delete credential “" (c.name) "”?" }
                p { "The credential “" (c.name) "” and its stored secrets are deleted. Data sources using it stop working. This cannot be undone." }
                (csrf_input(chrome.csrf))
                input type="hidden" name="revision" value=(rev);
                div class="actions" {
                    button type="button" data-close autofocus { "Cancel" }
                    button type="submit" class="danger" id="delete-confirm" { "Delete" }
                }
            }
        }
    };
    page(&c.name, Some(chrome), body)
}

fn label_of(provider: Option<&Provider>, key: &str) -> String {
    provider
        .and_then(|p| p.field(key))
        .map(|f| f.label.clone())
        .unwrap_or_else(|| key.to_owned())
}

// ----- API Credentials pane -----

pub struct Issued<'a> {
    pub name: &'a str,
    pub token: &'a str,
}

pub fn api_credentials(
    chrome: &Chrome<'_>,
    items: &[ApiCredential],
    message: Option<Markup>,
    issued: Option<&Issued<'_>>,
) -> Markup {
    let body = html! {
        div class="heading row" {
            div {
                h1 { "API Credentials" }
                p class="sub" { "Tokens that programs (and this page's sign-in) use to reach Latchkey's API. A token is shown once, when it is created or regenerated." }
            }
            button type="button" class="primary" data-open="add-api-dialog" id="add-api-credential" { "+ Add API Credential" }
        }
        @if let Some(m) = message { (m) }
        div class="table-wrap" {
            table class="api-table" {
                caption class="visually-hidden" { "API credentials of workspace " (chrome.workspace) }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Token" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Enabled" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for a in items {
                        tr data-api-credential=(a.name) {
                            th scope="row" { (a.name) }
                            td data-label="Token" { code { (a.hint) } }
                            td data-label="Role" { (a.role.as_str()) }
                            td data-label="Created" { (when(Some(a.created_at))) }
                            td data-label="Last used" { (when(a.last_used_at)) }
                            td data-label="Enabled" {
                                form method="post" action={ "/api-credentials/" (a.id) @if a.enabled { "/disable" } @else { "/enable" } } data-once {
                                    (csrf_input(chrome.csrf))
                                    input type="hidden" name="revision" value=(a.revision);
                                    button type="submit" class="switch" role="switch" aria-checked=(if a.enabled { "true" } else { "false" })
                                        aria-label={ "Enabled: " (a.name) } data-switch=(a.name) {
                                        span class="knob" aria-hidden="true" {}
                                        span class="switch-text" { @if a.enabled { "On" } @else { "Off" } }
                                    }
                                }
                            }
                            td {
                                div class="row-actions" {
                                    button type="button" data-open={ "edit-" (a.id) } data-edit=(a.name) { "Edit" }
                                    button type="button" data-open={ "refresh-" (a.id) } data-refresh=(a.name) { "Refresh" }
                                    button type="button" class="danger" data-open={ "delete-" (a.id) } data-delete=(a.name) { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for a in items { (api_dialogs(chrome.csrf, a)) }
        dialog id="add-api-dialog" class="overlay small" aria-labelledby="add-api-title" {
            form method="post" action="/api-credentials" data-once {
                h2 id="add-api-title" { "Add API Credential" }
                (csrf_input(chrome.csrf))
                div class="field" {
                    label for="add-api-name" { "Name" }
                    input id="add-api-name" name="name" maxlength="200" autocomplete="off" required;
                }
                div class="field" {
                    label for="add-api-role" { "Role" }
                    select id="add-api-role" name="role" aria-describedby="add-api-role-help" {
                        option value="member" selected { "member" }
                        option value="admin" { "admin" }
                    }
                    p class="help" id="add-api-role-help" { "A member manages credentials; an admin also manages API credentials." }
                }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    button type="submit" class="primary" id="add-api-create" { "Create" }
                }
            }
        }
        @if let Some(i) = issued {
            dialog id="token-dialog" class="overlay small" aria-labelledby="token-title" open data-autoshow {
                h2 id="token-title" { "Your new token for “" (i.name) "”" }
                div class="field" {
                    label for="one-time-token" { "Token" }
                    div class="secret" {
                        input id="one-time-token" readonly value=(i.token) spellcheck="false" autocomplete="off";
                        button type="button" data-copy="one-time-token" id="copy-token" { "Copy" }
                    }
                }
                p class="warning" role="note" { strong { "Warning: " } (TOKEN_WARNING) }
                p class="copied" data-copied hidden role="status" { "Copied." }
                div class="actions" { button type="button" class="primary" data-close autofocus { "Done" } }
            }
        }
    };
    page("API Credentials", Some(chrome), body)
}

fn api_dialogs(csrf: &str, a: &ApiCredential) -> Markup {
    let base = format!("/api-credentials/{}", a.id);
    html! {
        dialog id={ "edit-" (a.id) } class="overlay small" aria-labelledby={ "edit-title-" (a.id) } {
            form method="post" action={ (base) "/rename" } data-once {
                h2 id={ "edit-title-" (a.id) } { "Edit API Credential" }
                (csrf_input(csrf))
                input type="hidden" name="revision" value=(a.revision);
                div class="field" {
                    label for={ "edit-name-" (a.id) } { "Name" }
                    input id={ "edit-name-" (a.id) } name="name" value=(a.name) maxlength="200" autocomplete="off" required;
                }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    button type="submit" class="primary" { "Done" }
                }
            }
        }
        dialog id={ "refresh-" (a.id) } class="overlay small" role="alertdialog" aria-labelledby={ "refresh-title-" (a.id) } aria-describedby={ "refresh-text-" (a.id) } {
            form method="post" action={ (base) "/regenerate" } data-once {
                h2 id={ "refresh-title-" (a.id) } { "Warning" }
                p id={ "refresh-text-" (a.id) } {
                    "Regenerating the token of “" (a.name) "” invalidates the current token at once: every program using it stops working until it is given the new one."
                }
                (csrf_input(csrf))
                input type="hidden" name="revision" value=(a.revision);
                div class="actions" {
                    button type="button" data-close autofocus { "Cancel" }
                    button type="submit" class="danger" data-regenerate=(a.name) { "Regenerate" }
                }
            }
        }
        dialog id={ "delete-" (a.id) } class="overlay small" role="alertdialog" aria-labelledby={ "delete-title-" (a.id) } {
            form method="post" action={ (base) "/delete" } data-once {
                h2 id={ "delete-title-" (a.id) } { "Delete API credential “" (a.name) "”?" }
                p { "Programs using its token stop working at once. This cannot be undone." }
                (csrf_input(csrf))
                input type="hidden" name="revision" value=(a.revision);
                div class="actions" {
                    button type="button" data-close autofocus { "Cancel" }
                    button type="submit" class="danger" { "Delete" }
                }
            }
        }
    }
}

/// A page for a problem that is not a form's: not found, forbidden, unavailable.
pub fn problem(chrome: Option<&Chrome<'_>>, title: &str, text: &str) -> Markup {
    page(
        title,
        chrome,
        html! {
            h1 { (title) }
            (notice("error", text))
            p { a href="/" { "Back to the credentials" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_marks() {
        for (name, want) in [
            ("Clari Copilot", ">CC<"),
            ("Google CCAI Platform", ">CP<"),
            ("Chorus.ai", ">Ch<"),
            ("Aircall", ">Ai<"),
            ("Custom API", ">CA<"),
        ] {
            let html = mark("x", name).into_string();
            assert!(html.contains(want), "{name}: {html}");
        }
    }
}
