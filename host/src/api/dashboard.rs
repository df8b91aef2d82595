//! The merchant dashboard: one self-contained, read-only HTML page (inline CSS and
//! JS, no external resources) that signs in with a merchant id and key, reads
//! `/v1/merchants/{merchant}/analytics` and the merchant's simulation jobs with
//! that key, and draws them as inline SVG charts.
//!
//! The page itself is public: it holds no data, and everything it shows comes from
//! the authenticated API, called by the browser with the key the merchant typed (or
//! put in the URL fragment, which never reaches the server). The key stays in the
//! tab's `sessionStorage`.
//!
//! Why hashes in the Content-Security-Policy: the page's one `<script>` and one
//! `<style>` are inline (so the page is one file), and a hash allows exactly those
//! two blocks and nothing else — no injected script or style, no other origin, no
//! form posts — where `'unsafe-inline'` would allow any inline code.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// The policy the page is served with, built once from the page's own blocks.
static POLICY: LazyLock<String> = LazyLock::new(|| {
    let source = |tag| inline_block(PAGE, tag).map_or_else(|| "'none'".to_string(), source_hash);
    let (script, style) = (source("script"), source("style"));
    format!(
        "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// `GET /dashboard`: the dashboard page.
pub async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, POLICY.as_str()),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// The text between the page's first `<tag>` and `</tag>` (the blocks have no
/// attributes, so the opening tag is exact).
fn inline_block<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find(&format!("</{tag}>"))?;
    Some(&page[start..end])
}

/// A CSP source for an inline block: `'sha256-<base64 of its SHA-256>'`.
fn source_hash(block: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(block.as_bytes())))
}

/// Standard base64 with padding (RFC 4648), as CSP hashes are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_one_script_and_one_style() {
        for tag in ["script", "style"] {
            assert_eq!(
                PAGE.matches(&format!("<{tag}")).count(),
                1,
                "one <{tag}> block"
            );
            let block = inline_block(PAGE, tag).expect("the block");
            assert!(POLICY.contains(&format!("{tag}-src {}", source_hash(block))));
        }
        assert!(!POLICY.contains("unsafe"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        // No external script, style sheet, image or font: the page works offline.
        // (The SVG namespace URI is an identifier, not a fetch.)
        let without_namespace = PAGE.replace("http://www.w3.org/2000/svg", "");
        for needle in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!without_namespace.contains(needle), "{needle}");
        }
    }
}
