//! The HTTP half: every route in the route table (`authd::http::routes`,
//! which the router is built from), each checked to be routed, with the methods the router
//! itself answers it with (the Allow header of its 405). The parameter
//! names are every string field of the gRPC requests and the pages' own.
//! Each parameter gets NUL and 10 KiB one at a time; those that change the
//! answer are the ones the route reads, and get every hostile value one at
//! a time. Every value also goes in all parameters at once (query string,
//! form, JSON, multipart), in path segments and in headers.
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost_reflect::{DescriptorPool, Kind};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// Parameters the shim reads that no gRPC message has (the pages' forms).
const SHIM_PARAMETERS: &[&str] = &[
    "csrf_token",
    "decision",
    "force_login",
    "next",
    "prompt",
    "revoked",
];

/// What stands in for a path parameter in plausible calls: an id no
/// authorized application has, so nothing of the test's own is revoked.
const UNKNOWN_ID: &str = "999999999";

/// How many requests are in flight at once.
const CONCURRENCY: usize = 6;

/// The parameter names to try: every string field of authd's gRPC requests
/// (the shim's parameters are named after them) and the pages' own.
fn parameter_names() -> Vec<String> {
    let pool = DescriptorPool::decode(authd::proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut names: Vec<String> = pool
        .services()
        .filter(|s| s.package_name() == "authd.v1")
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .flat_map(|m| m.input().fields().collect::<Vec<_>>())
        .filter(|f| f.kind() == Kind::String)
        .map(|f| f.name().to_owned())
        .chain(SHIM_PARAMETERS.iter().map(|s| s.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The methods the router serves at `template`: asked with a method no
/// route serves, it answers 405 with an Allow header. A 404 there means
/// the table lists a route the router does not have.
async fn methods_of(app: &TestApp, template: &str) -> Vec<Method> {
    let path = template.replace("{id}", UNKNOWN_ID);
    let response = app
        .http()
        .request(Method::PATCH, app.url(&path))
        .send()
        .await
        .expect("probe");
    assert_eq!(
        response.status(),
        405,
        "{template}: the route table lists it, but the router does not route it"
    );
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let methods: Vec<Method> = allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != "HEAD")
        .map(|m| Method::from_bytes(m.as_bytes()).expect("method"))
        .collect();
    assert!(!methods.is_empty(), "{template}: Allow is {allow:?}");
    methods
}

/// A value as it goes into a query string, form or path.
fn encoded(value: &str, raw: bool) -> String {
    if raw {
        value.to_owned()
    } else {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }
}

enum Body {
    None,
    Form(String),
    Json(String),
    Multipart(Vec<(String, String)>),
}

struct Case {
    label: String,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Body,
}

/// The parameters of a plausible request, encoded, with `name` (if any)
/// set to `value` instead.
fn pairs(names: &[String], plausible: &Plausible, name: Option<&str>, value: &str) -> String {
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| Some(n.as_str()) != name)
        .filter_map(|n| {
            plausible
                .value(n)
                .map(|v| format!("{n}={}", encoded(v, false)))
        })
        .collect();
    if let Some(name) = name {
        out.push(format!("{name}={value}"));
    }
    out.join("&")
}

/// Every case of one route and method, for one round of credentials.
fn cases(
    template: &str,
    method: &Method,
    names: &[String],
    read: &[String],
    plausible: &Plausible,
    round_headers: &HeaderMap,
    with_headers: bool,
) -> Vec<Case> {
    let values = hostile_values();
    let path = template.replace("{id}", UNKNOWN_ID);
    let in_body = *method == Method::POST;
    let case = |label: String, path: String, query: String, body: Body| Case {
        label,
        method: method.clone(),
        path,
        query,
        headers: round_headers.clone(),
        body,
    };
    // The primary location of parameters: the body of a POST, the query
    // string otherwise.
    let primary = |label: String, params: String| {
        if in_body {
            case(label, path.clone(), String::new(), Body::Form(params))
        } else {
            case(label, path.clone(), params, Body::None)
        }
    };
    let mut out = vec![primary(
        "plausible".into(),
        pairs(names, plausible, None, ""),
    )];
    // One parameter at a time, of those the route reads (the 1 MiB value
    // below, all at once).
    for name in read {
        for h in values.iter().filter(|h| h.value.len() < 1024 * 1024) {
            out.push(primary(
                format!("{name} = {}", h.name),
                pairs(names, plausible, Some(name), &encoded(&h.value, h.raw)),
            ));
        }
        // The name repeated, as many times as fit the body limit.
        let times = MANY.min(60 * 1024 / (name.len() + 3));
        out.push(primary(
            format!("{name} repeated {times} times"),
            vec![format!("{name}=x"); times].join("&"),
        ));
    }
    for h in &values {
        let value = encoded(&h.value, h.raw);
        // Every parameter at once, but a value of a megabyte in one only:
        // the point is the size, not the megabytes.
        let everywhere: Vec<&String> = if h.value.len() >= 1024 * 1024 {
            names.iter().take(1).collect()
        } else {
            names.iter().collect()
        };
        let all: String = everywhere
            .iter()
            .map(|n| format!("{n}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        out.push(case(
            format!("every query parameter = {}", h.name),
            path.clone(),
            all.clone(),
            Body::None,
        ));
        if in_body {
            out.push(case(
                format!("every form parameter = {}", h.name),
                path.clone(),
                String::new(),
                Body::Form(all),
            ));
            let json: serde_json::Map<String, serde_json::Value> = everywhere
                .iter()
                .map(|n| (n.to_string(), serde_json::Value::String(h.value.clone())))
                .collect();
            out.push(case(
                format!("every JSON field = {}", h.name),
                path.clone(),
                String::new(),
                Body::Json(serde_json::Value::Object(json).to_string()),
            ));
            out.push(case(
                format!("every multipart field = {}", h.name),
                path.clone(),
                String::new(),
                Body::Multipart(
                    everywhere
                        .iter()
                        .map(|n| (n.to_string(), h.value.clone()))
                        .collect(),
                ),
            ));
        }
        if template.contains("{id}") {
            out.push(case(
                format!("path segment = {}", h.name),
                template.replace("{id}", &encoded(&h.value, h.raw)),
                String::new(),
                Body::None,
            ));
        }
    }
    if in_body {
        let json = |label: &str, body: String| {
            case(label.into(), path.clone(), String::new(), Body::Json(body))
        };
        let many: Vec<&str> = vec!["x"; MANY];
        out.push(json(
            "JSON lists of 10,000 elements",
            serde_json::json!({ "redirect_uris": many, "scopes": many, "tokens": many })
                .to_string(),
        ));
        out.push(json(
            "JSON nested 10,000 deep",
            format!(
                "{{\"client_name\":{}{}}}",
                "[".repeat(MANY),
                "]".repeat(MANY)
            ),
        ));
        out.push(json(
            "JSON objects where strings go",
            serde_json::Value::Object(
                names
                    .iter()
                    .map(|n| (n.clone(), serde_json::json!({ "a": [1, {}] })))
                    .collect(),
            )
            .to_string(),
        ));
        out.push(json("JSON cut short", "{\"client_name\":\"a".into()));
        out.push(json("JSON top-level array", "[\"a\",1,null]".into()));
        out.push(json(
            "JSON key repeated 5,000 times",
            format!("{{{}}}", vec!["\"client_id\":\"x\""; 5_000].join(",")),
        ));
        out.push(json(
            "JSON with a lone surrogate escape",
            "{\"client_name\":\"\\ud800\"}".into(),
        ));
    }
    if with_headers {
        out.extend(header_cases(&values, |label, headers| Case {
            label,
            method: method.clone(),
            path: path.clone(),
            query: String::new(),
            headers,
            body: if in_body {
                Body::Form(pairs(names, plausible, None, ""))
            } else {
                Body::None
            },
        }));
    }
    out
}

/// The plausible request, then each parameter set to NUL and to 10 KiB
/// in turn.
fn probe_cases(
    template: &str,
    method: &Method,
    names: &[String],
    plausible: &Plausible,
    headers: &HeaderMap,
) -> Vec<Case> {
    let path = template.replace("{id}", UNKNOWN_ID);
    let case = |label: String, params: String| {
        let (query, body) = if *method == Method::POST {
            (String::new(), Body::Form(params))
        } else {
            (params, Body::None)
        };
        Case {
            label,
            method: method.clone(),
            path: path.clone(),
            query,
            headers: headers.clone(),
            body,
        }
    };
    std::iter::once(case("plausible".into(), pairs(names, plausible, None, "")))
        .chain(names.iter().flat_map(|name| {
            [
                ("NUL", "a%00b".to_owned()),
                ("10 KiB", "a".repeat(10 * 1024)),
            ]
            .map(|(label, value)| {
                case(
                    format!("{name} = {label}"),
                    pairs(names, plausible, Some(name), &value),
                )
            })
        }))
        .collect()
}

/// Hostile headers: credentials in every broken shape, and the headers the
/// shim reads (cookies, forwarding, request ids, content types, origins).
fn header_cases(values: &[Hostile], case: impl Fn(String, HeaderMap) -> Case) -> Vec<Case> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = Vec::new();
    for h in values {
        // A header cannot carry NUL or line breaks: send those escaped.
        let text = if HeaderValue::from_str(&h.value).is_ok() {
            h.value.clone()
        } else {
            encoded(&h.value, false)
        };
        let headers: Vec<(&str, String)> = vec![
            ("authorization", format!("Bearer {text}")),
            ("authorization", format!("Basic {text}")),
            (
                "authorization",
                format!("Basic {}", b64(&format!("{}:{}", h.value, h.value))),
            ),
            ("authorization", format!("Basic {}", b64(&h.value))),
            ("authorization", text.clone()),
            ("cookie", format!("authd_session={text}; authd_csrf={text}")),
            ("x-forwarded-for", text.clone()),
            ("x-request-id", text.clone()),
            ("content-type", text.clone()),
            ("origin", text.clone()),
            ("accept-language", text.clone()),
        ];
        for (name, value) in headers {
            let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else {
                continue;
            };
            let mut map = HeaderMap::new();
            map.insert(HeaderName::from_static(name), value);
            out.push(case(format!("header {name} = {}", h.name), map));
        }
    }
    out
}

/// Sends one case; a failure's description, if it failed.
async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    template: &str,
    who: &str,
    case: Case,
) -> (Option<String>, String) {
    let mut url = app.url(&case.path);
    if !case.query.is_empty() {
        url.push('?');
        url.push_str(&case.query);
    }
    let mut request = client
        .request(case.method.clone(), url)
        .headers(case.headers);
    request = match case.body {
        Body::None => request,
        Body::Form(body) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
        Body::Json(body) => request
            .header("content-type", "application/json")
            .body(body),
        Body::Multipart(fields) => {
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in fields {
                form = form.text(name, value);
            }
            request.multipart(form)
        }
    };
    let started = Instant::now();
    let answer = request.send().await;
    let elapsed = started.elapsed();
    let label = format!("{} {template} {} ({who})", case.method, case.label);
    let response = match answer {
        // The client cannot build a URI over 64 KiB (nor can the server
        // take one): nothing was sent.
        Err(e) if e.is_builder() => return (None, String::new()),
        Err(e) => {
            return (
                Some(format!("{label}: no answer: {:?}", e.without_url())),
                String::new(),
            );
        }
        Ok(response) => response,
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let failure = if status.is_server_error() {
        Some(format!(
            "{label}: {status} {}",
            body.chars().take(200).collect::<String>()
        ))
    } else if elapsed > CALL_BOUND {
        Some(format!("{label}: took {elapsed:?}"))
    } else {
        None
    };
    (
        failure,
        format!("{} {}", status.as_u16(), normalized(&body)),
    )
}

/// An answer with what changes from call to call (tokens, ids, times)
/// blanked out, to tell whether a parameter changed it.
fn normalized(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 16 {
            out.push('T');
        } else if !run.is_empty() && run.chars().all(|c| c.is_ascii_digit()) {
            out.push('0');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in body.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Runs cases, a few at once; their failures and answers, in order.
async fn run_all(
    app: &TestApp,
    client: &reqwest::Client,
    template: &str,
    who: &str,
    cases: Vec<Case>,
) -> Vec<(Option<String>, String)> {
    futures::stream::iter(cases)
        .map(|case| send(app, client, template, who, case))
        .buffered(CONCURRENCY)
        .collect()
        .await
}

#[tokio::test]
async fn every_http_route_answers_hostile_values_without_a_500() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    let user = app.create_user("matrix", false).await;
    let client = app.register_app(&[OOB], "read write profile").await;
    let token = app
        .user_token(&user, &client, "read write profile")
        .await
        .access_token;
    let mut plausible = Plausible {
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        session: user.session.clone(),
        access_token: token.clone(),
        email: email("matrix"),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_BOUND + Duration::from_secs(1))
        .build()
        .expect("client");
    let names = parameter_names();

    let mut routes = Vec::new();
    for template in authd::metrics::http_routes() {
        for method in methods_of(&app, template).await {
            routes.push((*template, method));
        }
    }
    assert!(routes.len() >= authd::metrics::http_routes().len());
    // And nothing is left out: the OpenAPI document, which its own test
    // keeps equal to the router, names the same routes and methods.
    let documented: std::collections::BTreeSet<(String, String)> = app
        .http()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json::<serde_json::Value>()
        .await
        .expect("JSON")["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods: Vec<String> = item
                .as_object()
                .expect("path item")
                .keys()
                .cloned()
                .collect();
            methods.into_iter().map(move |m| (path.clone(), m))
        })
        .collect();
    let walked: std::collections::BTreeSet<(String, String)> = routes
        .iter()
        .map(|(path, method)| (path.to_string(), method.as_str().to_lowercase()))
        .collect();
    assert_eq!(walked, documented, "the route table and the router differ");

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut requests = 0usize;
    let mut read_total = 0usize;
    for (template, method) in &routes {
        // Which parameters the route reads: those whose hostile values
        // change its answer (asked with a token and a session, which
        // gets furthest).
        let mut read: Option<Vec<String>> = None;
        for who in ["non-admin token", "no credentials"] {
            let mut headers = HeaderMap::new();
            let mut cookie = format!("authd_csrf={CSRF}");
            if who == "non-admin token" {
                // A session of its own: a plausible sign-out ends it.
                plausible.session = app
                    .login(&email("matrix"), PASSWORD)
                    .await
                    .expect("login")
                    .session;
                cookie.push_str(&format!("; authd_session={}", plausible.session));
                headers.insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
                );
            }
            headers.insert("cookie", HeaderValue::from_str(&cookie).expect("header"));
            let read = match &read {
                Some(read) => read.clone(),
                None => {
                    let probes = probe_cases(template, method, &names, &plausible, &headers);
                    requests += probes.len();
                    let answers = run_all(&app, &http, template, who, probes).await;
                    let baseline = answers[0].1.clone();
                    let found: Vec<String> = names
                        .iter()
                        .zip(answers[1..].chunks(2))
                        .filter(|(_, probes)| probes.iter().any(|(_, a)| *a != baseline))
                        .map(|(name, _)| name.clone())
                        .collect();
                    failures.extend(answers.into_iter().filter_map(|(f, _)| f));
                    read_total += found.len();
                    read = Some(found.clone());
                    found
                }
            };
            let cases = cases(
                template,
                method,
                &names,
                &read,
                &plausible,
                &headers,
                who == "no credentials",
            );
            requests += cases.len();
            let answers = run_all(&app, &http, template, who, cases).await;
            failures.extend(answers.into_iter().filter_map(|(f, _)| f));
        }
    }
    eprintln!(
        "HTTP matrix: {} routes and methods, {} parameter names ({read_total} read by a route), {requests} requests in {:?}",
        routes.len(),
        names.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
