//! /openapi.json describes every route the router has, and nothing else:
//! each documented operation answers (no 404 fallback, no 405) with a
//! status the document lists for it, and every route of the router's
//! table is documented with each of its methods.
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

/// (path, method) pairs of the router: its route table
/// (`authd::http::routes`, which the router is built from), each with the
/// methods the router itself answers it with (the Allow header of its 405
/// to a method no route takes), so that a route added without
/// documentation fails this test.
async fn router_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for path in authd::http::route_paths() {
        let response = app
            .http()
            .request(reqwest::Method::PATCH, app.url(&path.replace("{id}", "1")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path} is not routed");
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        for method in allow.split(',').map(str::trim) {
            if !method.is_empty() && method != "HEAD" {
                routes.insert((path.to_string(), method.to_lowercase()));
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
    let routes = router_routes(&app).await;
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
