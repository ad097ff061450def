//! String templates with `{name}` placeholders filled from path-pattern captures.

use std::borrow::Cow;

use crate::error::ConfigErrorKind;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Capture(String),
}

/// A parsed template. `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    pieces: Vec<Piece>,
}

/// Captured path parameters of one request, in pattern order.
pub type Captures<'a> = [(&'a str, &'a str)];

impl Template {
    pub fn parse(raw: &str) -> Result<Self, ConfigErrorKind> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                                name.push(c)
                            }
                            _ => {
                                return Err(ConfigErrorKind::InvalidHeaderValue(format!(
                                    "{raw}: `{{` must open a capture name such as {{id}}"
                                )))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(ConfigErrorKind::InvalidHeaderValue(format!(
                            "{raw}: empty capture name"
                        )));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Capture(name));
                }
                '}' => {
                    return Err(ConfigErrorKind::InvalidHeaderValue(format!(
                        "{raw}: unmatched `}}` (write `}}}}` for a literal brace)"
                    )))
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Template {
            raw: raw.to_string(),
            pieces,
        })
    }

    /// The capture names this template uses.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Capture(c) => Some(c.as_str()),
            Piece::Literal(_) => None,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Fills the template. Borrowed when it has no placeholders.
    pub fn render<'t>(&'t self, caps: &Captures<'_>) -> Cow<'t, str> {
        match self.pieces.as_slice() {
            [] => Cow::Borrowed(""),
            [Piece::Literal(l)] => Cow::Borrowed(l),
            pieces => {
                let mut out = String::with_capacity(self.raw.len() + 16);
                for p in pieces {
                    match p {
                        Piece::Literal(l) => out.push_str(l),
                        Piece::Capture(name) => {
                            if let Some((_, v)) = caps.iter().find(|(n, _)| n == name) {
                                out.push_str(v);
                            }
                        }
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_captures_and_escapes() {
        let t = Template::parse("/v2/{id}/x{{y}}").unwrap();
        assert_eq!(t.render(&[("id", "42")]), "/v2/42/x{y}");
        assert_eq!(t.captures().collect::<Vec<_>>(), ["id"]);
        assert!(matches!(
            Template::parse("plain").unwrap().render(&[]),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["{", "{}", "a}b", "{a b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
