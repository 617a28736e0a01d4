//! The OpenAPI document describes every route, and every route it lists answers.

mod support;

use reqwest::Method;
use reqwest::StatusCode;
use support::{Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let (code, doc) = s.call(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let routes = [
        ("post", "/api/jobs"),
        ("get", "/api/jobs"),
        ("get", "/api/jobs/{jobId}"),
        ("put", "/api/jobs/{jobId}"),
        ("delete", "/api/jobs/{jobId}"),
        ("post", "/api/jobs/{jobId}/cancel"),
        ("post", "/api/jobs/{jobId}/execute"),
        ("get", "/api/jobs/{jobId}/history"),
        ("get", "/api/jobs/{jobId}/next-fires"),
        ("get", "/api/tasks/{taskId}"),
        ("post", "/api/tasks/{taskId}/cancel"),
        ("get", "/api/tasks/{taskId}/log"),
        ("get", "/api/tasks/{taskId}/log/stream"),
        ("get", "/api/executors"),
        ("get", "/api/executors/{executorId}"),
        ("post", "/api/executors/{executorId}/disable"),
        ("post", "/api/executors/{executorId}/enable"),
        ("get", "/api/system/status"),
        ("get", "/api/system/config"),
        ("put", "/api/system/config"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/api/openapi.json"),
        ("post", "/api/jobs/bulk"),
        ("post", "/api/auth/login"),
        ("get", "/api/auth/me"),
        ("put", "/api/auth/password"),
        ("get", "/api/users"),
        ("post", "/api/users"),
        ("get", "/api/users/{name}"),
        ("put", "/api/users/{name}"),
        ("delete", "/api/users/{name}"),
        ("post", "/api/users/{name}/password"),
        ("get", "/api/tokens"),
        ("post", "/api/tokens"),
        ("delete", "/api/tokens/{tokenId}"),
        ("get", "/api/audit"),
        ("get", "/api/alerts/config"),
        ("put", "/api/alerts/config"),
        ("get", "/api/alerts/firing"),
        ("get", "/api/alerts/history"),
        // Last: it ends the session the other calls use.
        ("post", "/api/auth/logout"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    for (method, path) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
        // The route answers (not the router's 404/405), whatever the outcome of this bare call.
        let p = path
            .replace("{jobId}", "x")
            .replace("{taskId}", "x")
            .replace("{executorId}", "x")
            .replace("{name}", "x")
            .replace("{tokenId}", "x");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (code, v) = s.call(m, &p, None).await;
        let fallback = v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no such endpoint"));
        assert!(
            code != StatusCode::METHOD_NOT_ALLOWED && !fallback,
            "{method} {path} is not routed: {code} {v}"
        );
    }
    assert_eq!(
        documented,
        routes.len(),
        "the document lists exactly the routes"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Job",
        "JobSpec",
        "ExecutionRecord",
        "ExecutorRecord",
        "SystemConfig",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    s.stop().await;
}
