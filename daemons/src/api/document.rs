//! The OpenAPI document: the handlers' annotations, plus what every route shares, added in one place so
//! no route can lack it — the security schemes (a bearer token, or the UI's session cookie), and the
//! error answers the guard and the extractors give (400, 401, 403, 404, 413, 415, 429, 503).

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder, SecurityRequirement};

use crate::auth::SESSION_COOKIE;
use crate::auth::guard::PUBLIC_PATHS;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobsched",
        description = "The jobsched HTTP API: jobs, their runs (tasks) and history, executors, the system, users, \
            API tokens and the audit log. Every endpoint but /healthz, /readyz and /api/auth/login needs a token: \
            a login token from POST /api/auth/login or an API token, sent as `Authorization: Bearer <token>` \
            (the Web UI uses a session cookie and repeats its CSRF token in `X-CSRF-Token`). Request bodies are \
            `application/json`. Field names are the design's column names; times are RFC 3339 UTC; errors are \
            `{\"error\": {\"code\", \"message\"}}`."
    ),
    tags(
        (name = "jobs", description = "Job definitions, running them, their history"),
        (name = "tasks", description = "One run of a job, with its attempts"),
        (name = "executors", description = "Executors: state, enable, disable"),
        (name = "system", description = "Status, central configuration, health"),
        (name = "auth", description = "Logging in and out, who you are, your password"),
        (name = "users", description = "Users (administrators)"),
        (name = "tokens", description = "API tokens for scripts and CI"),
        (name = "audit", description = "The audit log (administrators)"),
        (name = "alerts", description = "Alert rules, channels, silences; alerts firing; notifications sent")
    )
)]
struct ApiDoc;

/// The document's frame: info, tags and the security schemes.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT or jst_ API token")
                .description(Some(
                    "A login token (POST /api/auth/login) or an API token (POST /api/tokens)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The Web UI's session; state-changing requests repeat its CSRF token in X-CSRF-Token",
        ))),
    );
    doc
}

fn error(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// Adds to one operation what every route shares.
fn complete(path: &str, op: &mut Operation) {
    let public = PUBLIC_PATHS.contains(&path);
    let answers = &mut op.responses.responses;
    let mut add = |code: &str, description: &str| {
        answers
            .entry(code.to_owned())
            .or_insert_with(|| error(description));
    };
    let has_input = op.request_body.is_some()
        || op.parameters.as_ref().is_some_and(|p| !p.is_empty())
        || path.contains('{');
    if has_input {
        add(
            "400",
            "A parameter or a field of the body is invalid (the message names it)",
        );
    }
    if path.contains('{') {
        add("404", "No such object (or not one the caller may see)");
    }
    if op.request_body.is_some() {
        add("413", "The body is larger than the server accepts");
        add("415", "The body is not sent as application/json");
    }
    add(
        "403",
        "Not allowed: the role does not allow it, a cross-site request, an unknown Host, or a missing CSRF \
         token",
    );
    add("429", "Too many requests; see Retry-After");
    if path != "/healthz" {
        add("503", "A backend is unavailable; retry");
    }
    if public {
        op.security = Some(vec![SecurityRequirement::default()]);
    } else {
        add(
            "401",
            "No token, or a token that is malformed, expired, revoked or of a disabled user",
        );
        op.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("cookie", Vec::<String>::new()),
        ]);
    }
}

/// What the server enforces beyond the model's derives, stated in the document: a new job needs its
/// `name` (`NewJob`, the body of `POST /api/jobs` and of each job of a bulk request), a time zone is one
/// of the IANA names the server knows, executor labels are short.
fn tighten(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let schemas = &mut doc["components"]["schemas"];
    let zones: Vec<Value> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| Value::from(z.name()))
        .collect();
    let spec = &mut schemas["JobSpec"]["properties"];
    spec["time_zone"]["enum"] = Value::Array(zones);
    spec["executor_labels"]["propertyNames"] = json!({"minLength": 1, "maxLength": 64});
    spec["executor_labels"]["additionalProperties"] = json!({"type": "string", "maxLength": 64});
    let mut new_job = schemas["JobSpec"].clone();
    new_job["required"] = json!(["name"]);
    new_job["description"] = json!("A new job (the fields of `JobSpec`, with its `name`)");
    new_job["example"] = json!({"name": "nightly report", "command": "echo report",
        "cron_expression": "0 30 2 * * *", "time_zone": "Europe/Berlin", "timeout": 600,
        "retry_count": 2, "retry_interval": 60});
    schemas["NewJob"] = new_job;
    schemas["BulkJobs"]["properties"]["jobs"]["items"] =
        json!({"$ref": "#/components/schemas/NewJob"});
    doc["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/NewJob"});
}

/// The OpenAPI document of the API, as served.
pub fn openapi() -> serde_json::Value {
    let mut doc = serde_json::to_value(typed()).expect("the document serialises");
    tighten(&mut doc);
    doc
}

/// The document the annotations make, completed with what every route shares.
fn typed() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = super::routes()
        .merge(super::bulk_routes(0))
        .split_for_parts();
    doc.paths.paths.insert(
        "/api/openapi.json".to_owned(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .tag("system")
                .summary(Some("This document"))
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI document"),
                ),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete(path, op);
        }
    }
    doc
}
