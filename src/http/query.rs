//! Query strings (`application/x-www-form-urlencoded`), read from the request URL by hand:
//! the `url` crate that `Request::url()` needs brings its IDNA tables into the wasm.

use std::collections::HashMap;

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decoding with `+` as a space; invalid UTF-8 becomes U+FFFD.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of a serialized (WHATWG) URL: after the host, before `?` or `#` (which a serialized
/// path never holds unencoded).
pub fn path_of(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "/".to_owned();
    };
    let rest = &url[scheme_end + 3..];
    match rest.find('/') {
        Some(i) => {
            let path = &rest[i..];
            path[..path.find(['?', '#']).unwrap_or(path.len())].to_owned()
        }
        None => "/".to_owned(),
    }
}

/// The parameters of `url`'s query; the last value wins when a name repeats.
pub fn params(url: &str) -> HashMap<String, String> {
    let query = url.split('#').next().unwrap_or("");
    let Some((_, query)) = query.split_once('?') else {
        return HashMap::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_from_serialized_urls() {
        for (url, path) in [
            ("https://api.example/api/v1/twins?page=2#x", "/api/v1/twins"),
            ("http://127.0.0.1:8787/", "/"),
            ("http://127.0.0.1:8787", "/"),
            ("https://h.example/a%3Fb/c?d=/e", "/a%3Fb/c"),
            ("nonsense", "/"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }

    #[test]
    fn reads_pairs_like_a_form_decoder() {
        let p = params(
            "https://x.dev/api/v1/twins?q=Nguy%E1%BB%85n+Th%C3%B9&page=2&page=3&flag#frag?no=1",
        );
        assert_eq!(p["q"], "Nguyễn Thù");
        assert_eq!(p["page"], "3");
        assert_eq!(p["flag"], "");
        assert!(!p.contains_key("no"));
        assert!(params("https://x.dev/path").is_empty());
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
