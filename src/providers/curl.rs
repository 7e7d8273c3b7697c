//! `--detailed_debug`: each upstream request written out as a curl command that repeats it, with
//! every credential masked.

use std::fmt::Write;

/// Headers whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// Where the commands are logged (at trace level, which only `--detailed_debug` turns on).
pub const TARGET: &str = "llmgate::upstream::curl";

/// `secret` with all but its scheme, first four and last four characters hidden: enough to
/// tell two keys apart, never enough to use one.
pub fn mask(secret: &str) -> String {
    let (scheme, key) = match secret.split_once(' ') {
        Some((scheme, key)) => (format!("{scheme} "), key),
        None => (String::new(), secret),
    };
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return format!("{scheme}****");
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{scheme}{head}****{tail}")
}

/// Whether query parameter `name` carries a key (Gemini's `key=`).
fn secret_param(name: &str) -> bool {
    matches!(name, "key" | "api_key" | "api-key")
}

/// `url` with its user info (`user:password@`) and the values of key-carrying query
/// parameters masked.
fn masked_url(url: &str) -> String {
    let url = match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://****@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if secret_param(name) => format!("{name}={}", mask(value)),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// Single-quotes `text` for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The curl command for a POST of `body` to `url` with `headers`, credentials masked.
pub fn command<'a>(
    url: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> String {
    let mut out = format!("curl -X POST {}", quoted(&masked_url(url)));
    for (name, value) in headers {
        let value = if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            mask(value)
        } else {
            value.to_owned()
        };
        let _ = write!(out, " \\\n  -H {}", quoted(&format!("{name}: {value}")));
    }
    let _ = write!(out, " \\\n  -d {}", quoted(&String::from_utf8_lossy(body)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_in_headers_and_query_and_the_rest_is_kept() {
        let secret = "sk-proj-abcdefghijklmnop1234";
        let cmd = command(
            "https://example.test/v1beta/models/g:generateContent?alt=sse&key=AIzaSyA1234567890xyz",
            [
                ("authorization", "Bearer sk-proj-abcdefghijklmnop1234"),
                ("content-type", "application/json"),
                ("x-goog-api-key", "short"),
            ],
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"it's"}]}"#,
        );
        assert!(!cmd.contains(secret), "{cmd}");
        assert!(!cmd.contains("AIzaSyA1234567890xyz"), "{cmd}");
        assert!(
            cmd.contains("-H 'authorization: Bearer sk-p****1234'"),
            "{cmd}"
        );
        assert!(cmd.contains("key=AIza****0xyz"), "{cmd}");
        assert!(cmd.contains("-H 'x-goog-api-key: ****'"), "{cmd}");
        assert!(cmd.contains("-H 'content-type: application/json'"), "{cmd}");
        assert!(cmd.contains(r#"-d '{"model":"gpt-4o","#), "{cmd}");
        assert!(
            cmd.contains(r"it'\''s"),
            "a quote in the body is escaped: {cmd}"
        );
        assert!(cmd.starts_with(
            "curl -X POST 'https://example.test/v1beta/models/g:generateContent?alt=sse&key="
        ));
        let with_user = command("http://user:hunter2@h:1/v1/chat/completions", [], b"{}");
        assert!(
            with_user.starts_with("curl -X POST 'http://****@h:1/v1/chat/completions'"),
            "{with_user}"
        );
    }
}
