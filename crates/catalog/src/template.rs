use crate::render::{FieldValues, RenderError};

/// A text with `{field}` placeholders, e.g. `{api_id}` or `Token {secret}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
}

impl Template {
    /// Parse a template; a `{` without its `}` or an empty placeholder is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}` has a `{{` without its `}}`"))?;
            let name = &after[..close];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!(
                    "`{text}` has the placeholder `{{{name}}}`; placeholders are field keys such as {{api_token}}"
                ));
            }
            parts.push(Part::Field(name.to_owned()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{text}` has a `}}` without its `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The field keys this template uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fill in the placeholders. The result may hold secret values: the caller wraps it.
    pub fn render(&self, values: &dyn FieldValues) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name) => out.push_str(
                    values
                        .value(name)
                        .ok_or_else(|| RenderError::MissingValue(name.clone()))?,
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("Token {secret} for {user}").unwrap();
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["secret", "user"]);
        let values: BTreeMap<String, String> = [("secret", "s3"), ("user", "ada")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(t.render(&values).unwrap(), "Token s3 for ada");
    }

    #[test]
    fn refuses_broken_placeholders() {
        for bad in ["{", "a{b", "{}", "{A}", "x}", "{a-b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_value_names_the_field() {
        let t = Template::parse("{api_id}").unwrap();
        let values: BTreeMap<String, String> = BTreeMap::new();
        assert!(matches!(t.render(&values), Err(RenderError::MissingValue(f)) if f == "api_id"));
    }
}
