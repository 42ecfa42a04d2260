//! Request-line variables, derived as libmodsecurity 3 derives them.

use super::state::Data;
use super::tx::Transaction;
use super::vars::Scalar;

/// Sets REQUEST_LINE, REQUEST_METHOD, REQUEST_PROTOCOL, REQUEST_URI(_RAW), REQUEST_FILENAME,
/// REQUEST_BASENAME, QUERY_STRING and ARGS_GET from the request line.
pub(crate) fn process_uri(tx: &mut Transaction, uri: &[u8], method: &[u8], version: &[u8]) {
    let d = &mut tx.data;
    let mut line = method.to_vec();
    line.push(b' ');
    line.extend_from_slice(uri);
    line.extend_from_slice(b" HTTP/");
    line.extend_from_slice(version);
    d.set(Scalar::RequestLine, line);
    d.set(Scalar::RequestMethod, method.to_vec());
    let mut proto = b"HTTP/".to_vec();
    proto.extend_from_slice(version);
    d.set(Scalar::RequestProtocol, proto);
    d.set(Scalar::RequestUriRaw, uri.to_vec());

    // A fragment is kept only in the raw URI and the request line.
    let uri = &uri[..memchr::memchr(b'#', uri).unwrap_or(uri.len())];
    let query_at = memchr::memchr(b'?', uri);
    let decoded = uri_decode(uri);
    // libmodsecurity cuts the decoded URI at the raw URI's `?` offset; decoding can only
    // shorten, so the cut is clamped and mirrors its behaviour for encoded paths.
    let path_end = query_at.unwrap_or(decoded.len()).min(decoded.len());
    let path = decoded[..path_end].to_vec();
    if let Some(slash) = path.iter().rposition(|b| *b == b'/' || *b == b'\\')
        && slash + 1 < path.len()
    {
        d.set(Scalar::RequestBasename, path[slash + 1..].to_vec());
    }
    d.set(Scalar::RequestFilename, path.clone());
    d.set(Scalar::PathInfo, path);
    d.set(Scalar::RequestUri, strip_authority(&decoded).to_vec());
    if let Some(q) = query_at {
        let query = uri[q + 1..].to_vec();
        if !query.is_empty() {
            let sep = tx.rules.settings().argument_separator;
            let limit = tx.rules.settings().arguments_limit;
            let args = crate::body::parse_urlencoded(&query, sep);
            let room = limit.saturating_sub(d.args_get.len());
            d.args_get.extend(args.into_iter().take(room));
        }
        d.set(Scalar::QueryString, query);
    }
    update_combined_size(d);
}

/// ARGS_COMBINED_SIZE: the lengths of every argument's name and value.
pub(crate) fn update_combined_size(d: &mut Data) {
    let size: usize = d
        .args_get
        .iter()
        .chain(&d.args_post)
        .map(|a| a.name.len() + a.value.len())
        .sum();
    d.set(Scalar::ArgsCombinedSize, size.to_string());
}

/// An absolute-form URI (`http://host:port/path`) reduced to its path, as REQUEST_URI is.
fn strip_authority(decoded: &[u8]) -> &[u8] {
    if decoded.first() == Some(&b'/') || decoded.is_empty() {
        return decoded;
    }
    let Some(scheme) = memchr::memmem::find(decoded, b"://") else {
        return decoded;
    };
    match memchr::memchr(b'/', &decoded[scheme + 3..]) {
        Some(p) => &decoded[scheme + 3 + p..],
        None => decoded,
    }
}

/// `%XX` decoding without `+`: invalid escapes are kept, as libmodsecurity's uri_decode does.
pub(crate) fn uri_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && i + 2 < input.len()
            && let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_valid_escapes_only() {
        assert_eq!(uri_decode(b"/a%20b%zz%4"), b"/a b%zz%4");
        assert_eq!(uri_decode(b"a+b"), b"a+b");
        assert_eq!(strip_authority(b"http://h:80/x?y"), b"/x?y");
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_grows(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert!(uri_decode(&input).len() <= input.len());
        }
    }
}
