//! Request parameters, as Mastodon reads them: from the query string and
//! from a JSON, form or multipart body, merged. Parsing is strict where a
//! lenient reading could be abused:
//! - a parameter given twice is an error (RFC 6749 section 3.1), except the
//!   list parameters (`redirect_uris`, `scopes`) that clients send as arrays;
//! - a JSON object or nested array where a value is expected is an error;
//! - bytes that are not UTF-8 are an error, not replaced.
//!
//! Parsing lives apart from the handlers so that it can be tested and
//! fuzzed alone.
use std::collections::BTreeMap;

use crate::domain::error::AuthError;

/// Parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, Vec<String>>,
}

/// Keys whose values are lists; `key[]` is accepted as their array form.
const LIST_KEYS: &[&str] = &["redirect_uris", "scopes"];

/// JSON bodies nested deeper than this are refused before they are parsed.
const MAX_JSON_DEPTH: usize = 32;

impl Params {
    pub fn parse(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Params, AuthError> {
        let mut params = Params::default();
        if let Some(query) = query {
            params.add_form(query.as_bytes(), "query string")?;
        }
        if body.is_empty() {
            return Ok(params);
        }
        let mime = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => params.add_form(body, "form body")?,
            "application/json" => params.add_json(body)?,
            "multipart/form-data" => {
                let boundary = content_type
                    .and_then(|c| multer::parse_boundary(c).ok())
                    .ok_or_else(|| {
                        AuthError::invalid_request("The multipart body has no boundary.")
                    })?;
                params.add_multipart(body, &boundary)?;
            }
            "" => {
                return Err(AuthError::invalid_request(
                    "The request has a body but no Content-Type.",
                ));
            }
            other => {
                return Err(AuthError::invalid_request(format!(
                    "Unsupported Content-Type {}: send JSON, a form or multipart.",
                    truncate(other)
                )));
            }
        }
        Ok(params)
    }

    fn push(&mut self, key: &str, value: String) {
        let key = key.strip_suffix("[]").unwrap_or(key);
        self.values.entry(key.to_owned()).or_default().push(value);
    }

    fn add_form(&mut self, bytes: &[u8], source: &str) -> Result<(), AuthError> {
        for pair in bytes.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = form_decode(k).ok_or_else(|| {
                AuthError::invalid_request(format!("The {source} is not valid UTF-8."))
            })?;
            let value = form_decode(v).ok_or_else(|| {
                AuthError::invalid_request(format!("The {source} is not valid UTF-8."))
            })?;
            self.push(&key, value);
        }
        Ok(())
    }

    fn add_json(&mut self, body: &[u8]) -> Result<(), AuthError> {
        if json_depth_exceeds(body, MAX_JSON_DEPTH) {
            return Err(AuthError::invalid_request(
                "The JSON body is nested too deeply.",
            ));
        }
        // Read as a list of members, not a serde_json::Map: a map keeps only
        // the last of a repeated name, which would let a parameter be given
        // twice without the error every other form of it gets.
        let Members(members) = serde_json::from_slice(body).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                // Valid JSON of another type; the message would quote it.
                AuthError::invalid_request("The JSON body must be an object.")
            } else {
                AuthError::invalid_request(format!("The JSON body is malformed: {e}."))
            }
        })?;
        for (key, value) in members {
            match value {
                serde_json::Value::Array(items) => {
                    for item in items {
                        let v = scalar(&key, item)?;
                        self.push(&key, v.unwrap_or_default());
                    }
                    // An empty array is still "given", as an empty list.
                    self.values
                        .entry(key.strip_suffix("[]").unwrap_or(&key).to_owned())
                        .or_default();
                }
                other => {
                    if let Some(v) = scalar(&key, other)? {
                        self.push(&key, v);
                    }
                }
            }
        }
        Ok(())
    }

    fn add_multipart(&mut self, body: &[u8], boundary: &str) -> Result<(), AuthError> {
        let bytes = bytes::Bytes::copy_from_slice(body);
        let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        // The body is already in memory, so this completes without waiting.
        futures::executor::block_on(async {
            // multer's messages may quote a malformed header whole: only
            // their start is echoed back.
            while let Some(field) = multipart.next_field().await.map_err(|e| {
                AuthError::invalid_request(format!(
                    "The multipart body is malformed: {}.",
                    truncate(&e.to_string())
                ))
            })? {
                let Some(name) = field.name().map(str::to_owned) else {
                    continue;
                };
                if field.file_name().is_some() {
                    return Err(AuthError::invalid_request(format!(
                        "Parameter {} must be text, not a file.",
                        truncate(&name)
                    )));
                }
                let value = field.bytes().await.map_err(|e| {
                    AuthError::invalid_request(format!(
                        "The multipart body is malformed: {}.",
                        truncate(&e.to_string())
                    ))
                })?;
                let value = String::from_utf8(value.to_vec()).map_err(|_| {
                    AuthError::invalid_request("The multipart body is not valid UTF-8.")
                })?;
                self.push(&name, value);
            }
            Ok(())
        })
    }

    /// A single-valued parameter. Given twice, it is an error.
    pub fn get(&self, key: &str) -> Result<Option<&str>, AuthError> {
        match self.values.get(key).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.as_str())),
            Some(_) if LIST_KEYS.contains(&key) => Err(AuthError::invalid_request(format!(
                "Parameter {key} must be a single string here."
            ))),
            Some(_) => Err(AuthError::invalid_request(format!(
                "Parameter {key} was given more than once."
            ))),
        }
    }

    /// Every value of a list parameter.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.values.get(key).cloned().unwrap_or_default()
    }

    /// Whether the parameter was given at all.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }
}

impl Params {
    /// The parameters an endpoint reads, as a struct of its own: one field
    /// per parameter (`String`, `bool` for a flag, `Vec<String>` for a list
    /// parameter), absent ones from `#[serde(default)]`. A handler then
    /// names its parameters as fields, which a misspelling does not
    /// compile, and gets the same errors as [`get`](Self::get): a single
    /// parameter given twice is refused; unknown ones are ignored, as
    /// Mastodon ignores them.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, AuthError> {
        let fields = serde::de::value::MapDeserializer::new(
            self.values
                .iter()
                .map(|(key, values)| (key.as_str(), Field { key, values })),
        );
        T::deserialize(fields)
            .map_err(|e: serde::de::value::Error| AuthError::invalid_request(e.to_string()))
    }
}

/// A flag, read as Mastodon reads one (Rails' `ActiveModel::Type::Boolean`,
/// its `truthy_param?`): absent or empty is false, "0", "f", "false" and
/// "off" are false, anything else is true; but case-insensitively, and
/// "no" too. Mastodon.py sends `force_login=False` (Python's spelling) on
/// every request, which Rails reads as true, so Mastodon asks those users
/// for consent every time; authd reads what the client meant.
pub fn truthy(value: &str) -> bool {
    const FALSE: &[&str] = &["", "0", "f", "false", "off", "no", "n"];
    !FALSE.iter().any(|no| value.eq_ignore_ascii_case(no))
}

/// One parameter's values, read as the field of the type that asks.
struct Field<'a> {
    key: &'a str,
    values: &'a [String],
}

impl<'a> Field<'a> {
    fn single(&self) -> Result<&'a str, serde::de::value::Error> {
        use serde::de::Error;
        match self.values {
            [] => Ok(""),
            [one] => Ok(one),
            _ if LIST_KEYS.contains(&self.key) => Err(Error::custom(format!(
                "Parameter {} must be a single string here.",
                self.key
            ))),
            _ => Err(Error::custom(format!(
                "Parameter {} was given more than once.",
                self.key
            ))),
        }
    }
}

impl<'de> serde::de::IntoDeserializer<'de, serde::de::value::Error> for Field<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> serde::Deserializer<'de> for Field<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.single()?)
    }

    fn deserialize_bool<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_bool(truthy(self.single()?))
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    /// A parameter the endpoint does not read: ignored, however given.
    fn deserialize_ignored_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(serde::de::value::SeqDeserializer::new(
            self.values.iter().map(String::as_str),
        ))
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct tuple tuple_struct
        map struct enum identifier
    }
}

/// The members of a JSON object in order, a repeated name kept each time.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A JSON scalar as a parameter string. null means absent.
fn scalar(key: &str, value: serde_json::Value) -> Result<Option<String>, AuthError> {
    match value {
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Err(AuthError::invalid_request(format!(
                "Parameter {} has the wrong type: expected a string.",
                truncate(key)
            )))
        }
    }
}

/// application/x-www-form-urlencoded decoding that refuses invalid UTF-8.
fn form_decode(bytes: &[u8]) -> Option<String> {
    // Most values (tokens, ids, grant types) have nothing to decode.
    if !bytes.iter().any(|b| matches!(b, b'+' | b'%')) {
        return std::str::from_utf8(bytes).ok().map(str::to_owned);
    }
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded).ok()
}

/// Whether brackets nest deeper than `max`, counted outside strings, so a
/// hostile body cannot make the parser recurse deeply.
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Sample {
        client_id: String,
        force_login: bool,
        redirect_uris: Vec<String>,
    }

    #[test]
    fn read_fills_a_struct_and_refuses_what_get_refuses() {
        let p = Params::parse(
            Some("client_id=a&force_login=true&redirect_uris[]=x&redirect_uris[]=y&unknown=1&unknown=2"),
            None,
            b"",
        )
        .unwrap();
        assert_eq!(
            p.read::<Sample>().unwrap(),
            Sample {
                client_id: "a".into(),
                force_login: true,
                redirect_uris: vec!["x".into(), "y".into()],
            }
        );
        assert_eq!(
            Params::default().read::<Sample>().unwrap(),
            Sample::default()
        );
        let twice = Params::parse(Some("client_id=a&client_id=b"), None, b"").unwrap();
        assert_eq!(
            twice.read::<Sample>().unwrap_err().description,
            "Parameter client_id was given more than once."
        );
    }
    use crate::domain::error::ErrorKind;

    fn parse(query: Option<&str>, ct: Option<&str>, body: &str) -> Result<Params, AuthError> {
        Params::parse(query, ct, body.as_bytes())
    }

    #[test]
    fn a_malformed_multipart_header_is_not_echoed_back_whole() {
        // What cargo-fuzz found: multer's error quoted the whole header.
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name={}{}{}response_type\r\n\r\n\
             Test; name=\"avatar\\\"",
            "~".repeat(35),
            "\"".repeat(113),
            "~".repeat(80)
        );
        let err = parse(None, Some("multipart/form-data; boundary=XyZ"), &body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert!(err.description.len() < 200, "{}", err.description);
    }

    #[test]
    fn merges_query_and_form() {
        let p = parse(
            Some("a=1&b=two+words"),
            Some("application/x-www-form-urlencoded"),
            "c=%C3%A9",
        )
        .unwrap();
        assert_eq!(p.get("a").unwrap(), Some("1"));
        assert_eq!(p.get("b").unwrap(), Some("two words"));
        assert_eq!(p.get("c").unwrap(), Some("é"));
        assert_eq!(p.get("d").unwrap(), None);
    }

    #[test]
    fn json_scalars_arrays_and_types() {
        let p = parse(
            None,
            Some("application/json; charset=utf-8"),
            r#"{"client_name":"x","redirect_uris":["a","b"],"n":3,"t":true,"z":null}"#,
        )
        .unwrap();
        assert_eq!(p.get("client_name").unwrap(), Some("x"));
        assert_eq!(p.list("redirect_uris"), ["a", "b"]);
        assert_eq!(p.get("n").unwrap(), Some("3"));
        assert_eq!(p.get("t").unwrap(), Some("true"));
        assert_eq!(p.get("z").unwrap(), None);
        let err = parse(None, Some("application/json"), r#"{"client_name":{"a":1}}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert!(err.description.contains("wrong type"));
        assert!(parse(None, Some("application/json"), r#"["not","an","object"]"#).is_err());
        assert!(parse(None, Some("application/json"), r#"{"a":"#).is_err());
    }

    #[test]
    fn json_members_given_twice_are_refused() {
        let json = Some("application/json");
        let p = parse(None, json, r#"{"client_id":"a","client_id":"b"}"#).unwrap();
        let err = p.get("client_id").unwrap_err();
        assert!(err.description.contains("more than once"));
        // Even when spelled once with [].
        let p = parse(None, json, r#"{"scope":"read","scope[]":["write"]}"#).unwrap();
        assert!(p.get("scope").is_err());
        // List parameters collect every member, in order.
        let p = parse(None, json, r#"{"scopes":"read","scopes":["write","push"]}"#).unwrap();
        assert_eq!(p.list("scopes"), ["read", "write", "push"]);
        // A non-object is refused without being quoted back.
        let err = parse(None, json, &format!("\"{}\"", "x".repeat(10_000))).unwrap_err();
        assert_eq!(err.description, "The JSON body must be an object.");
    }

    #[test]
    fn array_suffix_keys_are_lists() {
        let p = parse(
            None,
            Some("application/x-www-form-urlencoded"),
            "redirect_uris[]=a&redirect_uris[]=b&scopes=read",
        )
        .unwrap();
        assert_eq!(p.list("redirect_uris"), ["a", "b"]);
        assert_eq!(p.list("scopes"), ["read"]);
    }

    #[test]
    fn duplicated_parameters_are_refused() {
        let p = parse(
            Some("client_id=a"),
            Some("application/x-www-form-urlencoded"),
            "client_id=b",
        )
        .unwrap();
        let err = p.get("client_id").unwrap_err();
        assert!(err.description.contains("more than once"));
        let p = parse(Some("code=a&code=a"), None, "").unwrap();
        assert!(p.get("code").is_err());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let err =
            Params::parse(None, Some("application/x-www-form-urlencoded"), b"a=%FF").unwrap_err();
        assert!(err.description.contains("UTF-8"));
        assert!(Params::parse(None, Some("application/json"), b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn deep_json_is_refused_without_recursing() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(None, Some("application/json"), &deep).unwrap_err();
        assert!(err.description.contains("nested"));
        // Brackets inside strings do not count.
        let p = parse(
            None,
            Some("application/json"),
            &format!("{{\"a\":\"{}\"}}", "[".repeat(100)),
        )
        .unwrap();
        assert_eq!(p.get("a").unwrap().map(str::len), Some(100));
    }

    #[test]
    fn multipart_text_fields_are_read() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"client_name\"\r\n\r\nTest Application\r\n--XyZ\r\nContent-Disposition: form-data; name=\"scopes\"\r\n\r\nread write push\r\n--XyZ--\r\n";
        let p = parse(None, Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert_eq!(p.get("client_name").unwrap(), Some("Test Application"));
        assert_eq!(p.list("scopes"), ["read write push"]);
        assert!(
            parse(None, Some("multipart/form-data"), body).is_err(),
            "no boundary"
        );
        assert!(parse(None, Some("multipart/form-data; boundary=XyZ"), "garbage").is_err());
    }

    #[test]
    fn unknown_or_missing_content_types_are_refused_when_there_is_a_body() {
        assert!(parse(None, Some("text/plain"), "a=b").is_err());
        assert!(parse(None, None, "a=b").is_err());
        assert!(parse(None, None, "").is_ok());
    }

    #[test]
    fn flags_read_as_booleans() {
        #[derive(serde::Deserialize)]
        struct Flags {
            #[serde(default)]
            f: bool,
            #[serde(default)]
            g: bool,
            #[serde(default)]
            h: bool,
            #[serde(default)]
            on: bool,
        }
        let p = parse(Some("f=True&g=False&on=on"), None, "").unwrap();
        let flags: Flags = p.read().unwrap();
        assert!(flags.f && flags.on);
        assert!(!flags.g && !flags.h);
        for yes in ["true", "True", "1", "on", "yes", "t"] {
            assert!(truthy(yes), "{yes}");
        }
        for no in [
            "", "0", "f", "F", "false", "False", "FALSE", "off", "OFF", "no",
        ] {
            assert!(!truthy(no), "{no:?}");
        }
    }
}
