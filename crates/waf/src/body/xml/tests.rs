//! Expected values were checked against libxml2 2.9 used the way libmodsecurity uses it
//! (push parser, `xmlNodeGetContent` on each XPath result).

use super::*;
use proptest::prelude::*;

fn sel(doc: &XmlDoc, xpath: &str) -> Vec<String> {
    match doc.select(xpath) {
        Ok(v) => v
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect(),
        Err(e) => panic!("{xpath}: {e}"),
    }
}

fn doc(text: &str) -> XmlDoc {
    parse_xml(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn malformed(text: &[u8]) -> bool {
    parse_xml(text).is_err()
}

#[test]
fn root_text_and_attributes() {
    let d = doc("<a x=\"1\">t<b y=\"2\">u</b></a>");
    assert_eq!(sel(&d, "/*"), vec!["tu"]);
    assert_eq!(sel(&d, "//@*"), vec!["1", "2"]);
    assert_eq!(sel(&d, "//*"), vec!["tu", "u"]);
}

#[test]
fn crs_test_documents() {
    let d = doc(
        "<?xml version=\"1.0\"?><xml><element attribute_name=\"attribute_value\">ProcessBuilder.evil.clonetransformer</element></xml>",
    );
    assert_eq!(sel(&d, "/*"), vec!["ProcessBuilder.evil.clonetransformer"]);
    assert_eq!(sel(&d, "//@*"), vec!["attribute_value"]);
    let d =
        doc("<?xml version=\"1.0\"?><root><a probe=\"http://66.240.183.75/crash.php\"></a></root>");
    assert_eq!(sel(&d, "/*"), vec![""]);
    assert_eq!(sel(&d, "//@*"), vec!["http://66.240.183.75/crash.php"]);
    let d = doc(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><catalog><tag>ftp%3A%2F%2F1.1.1.1</tag></catalog>",
    );
    assert_eq!(sel(&d, "/*"), vec!["ftp%3A%2F%2F1.1.1.1"]);
}

#[test]
fn malformed_crs_bodies() {
    assert_eq!(parse_xml(b"test"), Err(XML_ERROR.to_owned()));
    assert!(malformed(
        b"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\\\"http://x/\\\"><a/></SOAP-ENV:Envelope>"
    ));
    assert!(malformed(b""));
}

#[test]
fn whitespace_comments_pis_and_cdata() {
    let d = doc("<r>\n  <a>1</a><!-- c --><?pi d?><![CDATA[<cd>]]>\n</r>");
    assert_eq!(sel(&d, "/*"), vec!["\n  1<cd>\n"]);
    let d = doc("<r x='\t\n y'>\r\n z\r</r>");
    assert_eq!(sel(&d, "/*"), vec!["\n z\n"]);
    assert_eq!(sel(&d, "//@*"), vec!["   y"]);
}

#[test]
fn references() {
    let d = doc("<r a=\"&lt;&#65;&#x42;\">&amp;&apos;&quot;&gt;&#10;</r>");
    assert_eq!(sel(&d, "/*"), vec!["&'\">\n"]);
    assert_eq!(sel(&d, "//@*"), vec!["<AB"]);
    assert!(malformed(b"<r>&#0;</r>"));
    assert!(malformed(b"<r>&undefined;</r>"));
    assert!(malformed(b"<r>a & b</r>"));
}

#[test]
fn internal_and_external_entities() {
    let d = doc("<!DOCTYPE r [<!ENTITY e \"ent&#65;\">]><r a=\"&e;\">&e;&lt;&#x42;</r>");
    assert_eq!(sel(&d, "/*"), vec!["entA<B"]);
    assert_eq!(sel(&d, "//@*"), vec!["entA"]);
    // External entities are never loaded (no XXE): the reference expands to nothing.
    let d = doc("<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><r>&xxe;x</r>");
    assert_eq!(sel(&d, "/*"), vec!["x"]);
    // With an external subset undeclared entities are tolerated.
    let d = doc("<!DOCTYPE r SYSTEM \"r.dtd\"><r>&undefined;y</r>");
    assert_eq!(sel(&d, "/*"), vec!["y"]);
    // Elements from entity text count in string values but XPath steps do not enter them.
    let d = doc("<!DOCTYPE r [<!ENTITY a \"<x>in</x>\">]><r>&a;</r>");
    assert_eq!(sel(&d, "//*"), vec!["in"]);
    assert!(malformed(
        b"<!DOCTYPE r [<!ENTITY a \"&b;\"><!ENTITY b \"&a;\">]><r>&a;</r>"
    ));
    assert!(malformed(
        b"<!DOCTYPE r [<!ENTITY a \"<x>in\">]><r>&a;</x></r>"
    ));
}

#[test]
fn entity_expansion_is_bounded() {
    let mut dtd = String::from("<!DOCTYPE r [<!ENTITY l0 \"lollollollollollollollollollol\">");
    for i in 1..10 {
        let p = i - 1;
        dtd.push_str(&format!(
            "<!ENTITY l{i} \"{}\">",
            format!("&l{p};").repeat(10)
        ));
    }
    dtd.push_str("]><r>&l9;</r>");
    assert!(malformed(dtd.as_bytes()));
}

#[test]
fn namespaces() {
    let d = doc("<r xmlns=\"urn:x\" xmlns:p=\"urn:p\" p:at=\"v\" at2=\"w\"><p:c>1</p:c></r>");
    assert_eq!(sel(&d, "//@*"), vec!["v", "w"]);
    assert_eq!(sel(&d, "/*"), vec!["1"]);
    // Unprefixed name tests only match elements in no namespace.
    assert!(sel(&d, "/r").is_empty());
    assert_eq!(
        d.select_ns("/x:r/p:c", &[("x", "urn:x"), ("p", "urn:p")]),
        Ok(vec![b"1".to_vec()])
    );
    assert!(d.select("/p:r").is_err());
    // An undeclared prefix is only a namespace error in libxml2.
    let d = doc("<a:b>x</a:b>");
    assert_eq!(sel(&d, "/*"), vec!["x"]);
    assert!(malformed(b"<r xmlns:p=\"a\" xmlns:p=\"b\"/>"));
    assert!(!malformed(b"<r xmlns:p=\"\" xmlns:p=\"b\"/>"));
}

#[test]
fn well_formedness_errors() {
    for bad in [
        &b"<r><a></b></r>"[..],
        b"<r>text</r>trailing",
        b"<r/><r/>",
        b"<r x=\"1\" x=\"2\"/>",
        b"<r x=\"a<b\"/>",
        b"<r>a]]>b</r>",
        b"<r>\x01</r>",
        b"<r><a>1</a>",
        b"<r attr=noquote/>",
        b"<r>\xff</r>",
        b"<?xml version=\"2.0\"?><r/>",
        b"<r><!-- a -- b --></r>",
        b"<r><a b=\"1\"c=\"2\"/></r>",
        b"<r><?xml version=\"1.0\"?></r>",
        b" <?xml version=\"1.0\"?><r/>",
        b"<?xml version=\"1.0\"?>",
    ] {
        assert!(malformed(bad), "{}", String::from_utf8_lossy(bad));
    }
    for good in [
        &b"  <r/>  "[..],
        b"<?xml  version = '1.0' standalone='yes' ?><r/>",
        b"<?xml-stylesheet href=\"x\"?><r/>",
        b"<r></r >",
        b"\xef\xbb\xbf<r>bom</r>",
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>\xe9</r>",
        b"<!DOCTYPEr SYSTEM \"x\"><a/>",
    ] {
        assert!(!malformed(good), "{}", String::from_utf8_lossy(good));
    }
}

#[test]
fn latin1_is_transcoded() {
    let d = doc("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>x</r>");
    assert_eq!(sel(&d, "/*"), vec!["x"]);
    let d =
        parse_xml(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>\xe9</r>").expect("latin-1");
    assert_eq!(sel(&d, "/*"), vec!["\u{e9}"]);
}

#[test]
fn partial_document_on_error() {
    let out = parse_xml_partial(b"<r x=\"1\">abc<b>def</b><c></r>");
    assert_eq!(out.error.as_deref(), Some(XML_ERROR));
    assert_eq!(sel(&out.doc, "/*"), vec!["abcdef"]);
    assert_eq!(sel(&out.doc, "//@*"), vec!["1"]);
    let out = parse_xml_partial(b"<r>ok\xff</r>");
    assert!(out.error.is_some());
    assert_eq!(sel(&out.doc, "/*"), vec!["ok"]);
}

#[test]
fn xpath_subset() {
    let d = doc("<r><a k=\"1\">x<b>y</b></a><a k=\"2\">z</a><c><a>w</a></c></r>");
    assert_eq!(sel(&d, "/r/a"), vec!["xy", "z"]);
    assert_eq!(sel(&d, "//a"), vec!["xy", "z", "w"]);
    assert_eq!(sel(&d, "/r/a/@k"), vec!["1", "2"]);
    assert_eq!(sel(&d, "//a/@*"), vec!["1", "2"]);
    assert_eq!(sel(&d, "/r/*"), vec!["xy", "z", "w"]);
    assert_eq!(sel(&d, "//a/text()"), vec!["x", "z", "w"]);
    assert_eq!(sel(&d, "/r/c|//b"), vec!["y", "w"]);
    assert_eq!(sel(&d, "/"), vec!["xyzw"]);
    assert!(sel(&d, "/nope").is_empty());
    assert!(d.select("count(//a)").is_err());
    assert!(d.select("/r/a[1]").is_err());
    assert!(d.select("a").is_err());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let out = parse_xml_partial(&body);
        for xpath in ["/*", "//@*", "//*", "//text()"] {
            prop_assert!(out.doc.select(xpath).is_ok());
        }
    }

    #[test]
    fn never_panics_on_markup_soup(body in "(<[a-z:]{1,3}( [a-z]{1,2}=\"[^\"<]{0,3}\")?/?>|</[a-z:]{1,3}>|&[a-z#0-9x]{0,4};?|<!--|-->|<!\\[CDATA\\[|\\]\\]>|<!DOCTYPE r \\[<!ENTITY e \"[a-z&;<>]{0,6}\">\\]>|[a-z \n]{1,4}){0,12}") {
        let out = parse_xml_partial(body.as_bytes());
        prop_assert!(out.doc.select("/*").is_ok());
        prop_assert!(out.doc.select("//@*").is_ok());
    }

    #[test]
    fn text_round_trips(text in "[^<&\r\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,40}") {
        prop_assume!(!text.contains("]]>"));
        let d = parse_xml(format!("<r>{text}</r>").as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(d.select("/*").map_err(TestCaseError::fail)?, vec![text.into_bytes()]);
    }
}
