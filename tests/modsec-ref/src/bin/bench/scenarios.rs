//! The benchmark's three exchanges: benign, deterministic, the same bytes for both engines.

use bulkhead_modsec_ref::drive::{Exchange, Response};

/// One named exchange.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) exchange: Exchange,
}

const BROWSER_HEADERS: &[(&str, &str)] = &[
    ("Host", "shop.example.com"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Cookie", "session=3f2a9c1e7b40d5a8; theme=dark"),
];

const WORDS: &[&str] = &[
    "garden", "river", "autumn", "window", "pencil", "orange", "market", "travel", "silver",
    "candle", "forest", "bridge", "summer", "letter", "planet", "butter", "little", "yellow",
    "winter", "coffee",
];

/// A benign phrase of `n` words, deterministic in `seed`.
fn phrase(seed: usize, n: usize, sep: &str) -> String {
    (0..n)
        .map(|i| WORDS[(seed * 7 + i * 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(sep)
}

fn response(content_type: &str, body: &str) -> Response {
    Response {
        status: 200,
        version: b"1.1".to_vec(),
        headers: vec![
            (b"Content-Type".to_vec(), content_type.as_bytes().to_vec()),
            (
                b"Content-Length".to_vec(),
                body.len().to_string().into_bytes(),
            ),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn html_page() -> String {
    let items: String = (0..6)
        .map(|i| format!("<li>{}</li>", phrase(i, 3, " ")))
        .collect();
    format!(
        "<!doctype html><html><head><title>Product 1842</title></head><body><h1>Product 1842</h1><ul>{items}</ul></body></html>"
    )
}

/// (a) A browser GET with a query string, answered with a small HTML page.
fn benign_get() -> Scenario {
    let mut exchange = Exchange::request(
        "GET",
        "/products/view?id=1842&category=books&sort=price",
        BROWSER_HEADERS,
        b"",
    );
    exchange.response = Some(response("text/html; charset=utf-8", &html_page()));
    Scenario {
        name: "benign-get",
        what: "GET with a query string and 6 browser headers; 200 text/html (~300 B)",
        exchange,
    }
}

/// (b) A 10 KiB application/x-www-form-urlencoded POST.
fn form_post() -> Scenario {
    let mut body = String::new();
    let mut i = 0;
    while body.len() < 10 * 1024 {
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(&format!("field{i:03}={}", phrase(i, 6, "+")));
        i += 1;
    }
    let mut headers = BROWSER_HEADERS.to_vec();
    headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    let len = body.len().to_string();
    headers.push(("Content-Length", &len));
    let mut exchange = Exchange::request("POST", "/account/profile", &headers, body.as_bytes());
    exchange.response = Some(response(
        "application/json",
        "{\"status\":\"ok\",\"id\":1842}",
    ));
    Scenario {
        name: "form-post-10k",
        what: "10 KiB urlencoded form (~150 fields); 200 application/json",
        exchange,
    }
}

/// (c) A ~5 KiB JSON API request.
fn json_post() -> Scenario {
    let mut items = Vec::new();
    let mut i = 0;
    while items.iter().map(String::len).sum::<usize>() < 5 * 1024 - 120 {
        items.push(format!(
            "{{\"sku\":\"BK-{i:04}\",\"title\":\"{}\",\"qty\":{},\"price\":{}.5,\"tags\":[\"{}\",\"{}\"]}}",
            phrase(i, 4, " "),
            i % 5 + 1,
            10 + i,
            WORDS[i % WORDS.len()],
            WORDS[(i + 5) % WORDS.len()]
        ));
        i += 1;
    }
    let body = format!(
        "{{\"order\":{{\"id\":1842,\"customer\":{{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\"}},\"items\":[{}]}}}}",
        items.join(",")
    );
    let mut headers = BROWSER_HEADERS.to_vec();
    headers.retain(|(n, _)| *n != "Cookie");
    headers.push(("Content-Type", "application/json"));
    let len = body.len().to_string();
    headers.push(("Content-Length", &len));
    let mut exchange = Exchange::request("POST", "/api/v1/orders", &headers, body.as_bytes());
    exchange.response = Some(response(
        "application/json",
        "{\"status\":\"created\",\"id\":1842}",
    ));
    Scenario {
        name: "json-post-5k",
        what: "~5 KiB JSON object (nested, ~40 items); 200 application/json",
        exchange,
    }
}

/// All scenarios, in report order.
pub(crate) fn all() -> Vec<Scenario> {
    vec![benign_get(), form_post(), json_post()]
}
