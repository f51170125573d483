//! /openapi.json describes every route the router has, and nothing else:
//! each documented operation answers (no 404 fallback, no 405) with a
//! status the document lists for it, and every `.route(...)` in the
//! router's source is documented with each of its methods.
use std::collections::BTreeSet;

use crate::helpers::*;

async fn document(app: &TestApp) -> serde_json::Value {
    let response = app
        .http()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// (path, method) pairs of the router, read from its source, so that a
/// route added without documentation fails this test.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/http/mod.rs");
    let router = &source[source.find("pub fn router").unwrap()..];
    let router = &router[..router.find(".fallback(").unwrap()];
    let mut routes = BTreeSet::new();
    for chunk in router.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        for method in ["get", "post", "delete", "put", "patch"] {
            let calls = [
                format!(" {method}("),
                format!("\n{method}("),
                format!(".{method}("),
                format!("({method}("),
            ];
            if calls.iter().any(|c| chunk.contains(c.as_str())) {
                routes.insert((path.clone(), method.to_owned()));
            }
        }
    }
    routes
}

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((path.clone(), method.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_of_the_router() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = router_routes();
    assert!(routes.len() > 20, "{routes:?}");
    assert_eq!(
        documented(&doc),
        routes,
        "the document and the router differ"
    );
}

#[tokio::test]
async fn every_documented_operation_answers_with_a_documented_status() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    for (path, method) in documented(&doc) {
        let url = app.url(&path.replace("{id}", &client.app_id));
        let request = match method.as_str() {
            "get" => app.http().get(&url),
            "post" => app.http().post(&url).form(&[("x", "y")]),
            "delete" => app.http().delete(&url),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let listed = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert!(
            listed.contains(&status.to_string()),
            "{method} {path} answered {status}, documented: {listed:?}"
        );
        assert_ne!(status, 405, "{method} {path}");
    }
}
