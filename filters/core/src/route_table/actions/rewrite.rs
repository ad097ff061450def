//! Path rewrites (`urlRewrite.path`, `redirect.path`): the full path, or the matched prefix.

use crate::template::Template;

use super::Matched;

#[derive(Debug)]
pub(crate) enum PathEdit {
    Full(Template),
    Prefix(Template),
}

/// The request's path after an optional edit, with `query` appended when given.
pub(crate) fn rewrite_path(
    edit: Option<&PathEdit>,
    m: &Matched<'_>,
    query: Option<&[u8]>,
) -> String {
    let mut out = match edit {
        None => String::from_utf8_lossy(m.path).into_owned(),
        Some(PathEdit::Full(t)) => t.render(m.captures).into_owned(),
        Some(PathEdit::Prefix(t)) => {
            let rest = m.path.get(m.prefix_len..).unwrap_or_default();
            let replacement = t.render(m.captures);
            let mut s = replacement.trim_end_matches('/').to_string();
            let rest = String::from_utf8_lossy(rest);
            if rest.is_empty() || rest == "/" {
                // `/foo` -> `/bar`, `/foo/` -> `/bar/`; a `/` replacement never yields "".
                s.push_str(&rest);
                if s.is_empty() {
                    s.push('/');
                }
            } else {
                s.push_str(&rest);
            }
            s
        }
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&String::from_utf8_lossy(q));
    }
    out
}
