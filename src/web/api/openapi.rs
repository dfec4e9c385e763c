//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! annotations (`utoipa`) and served at [`super::OPENAPI_PATH`]. What the
//! annotations would repeat on every operation is added here once: the
//! bearer token, and the problem answers any operation may give.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::link::Link;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::problem::{CONTENT_TYPE_PROBLEM, FieldError, ProblemDocument};
use super::{articles, issues, subscribers, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gazette API",
        description = "Readers, articles and issues of a Gazette newsletter. Every operation but this \
                       document's needs `Authorization: Bearer` with a token made in the staff area or \
                       with `gazette api-tokens create`; problems are RFC 9457 documents."
    ),
    paths(
        document,
        subscribers::create,
        subscribers::list,
        subscribers::show,
        subscribers::update,
        subscribers::unsubscribe,
        subscribers::erase,
        articles::create,
        articles::list,
        articles::show,
        articles::update,
        articles::include,
        articles::exclude,
        issues::list,
        issues::dry_run,
        issues::show,
        webhooks::list,
        webhooks::create,
        webhooks::delete,
    ),
    components(schemas(ProblemDocument, FieldError)),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The bearer scheme's name in the document.
const BEARER: &str = "bearer";

/// Problems any authenticated operation may answer with.
const PROBLEMS: &[&str] = &["400", "401", "403", "404", "413", "415", "422", "429", "500", "503"];

struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.responses.insert(
            "Problem".into(),
            RefOr::T(
                Response::builder()
                    .description("A problem (RFC 9457)")
                    .content(
                        CONTENT_TYPE_PROBLEM,
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    )
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == super::OPENAPI_PATH {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                guarded(operation);
            }
        }
        for &(path, status, name, operation_id, parameter, value) in LINKS {
            let answer = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut().or(item.get.as_mut()))
                .and_then(|operation| operation.responses.responses.get_mut(status));
            if let Some(RefOr::T(response)) = answer {
                let link = Link::builder()
                    .operation_id(operation_id)
                    .parameter(parameter, value)
                    .build();
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

/// Where an answer's ids lead (OpenAPI links), so that clients, and tools
/// such as Schemathesis, can follow them: the operation's path (its POST,
/// else its GET), the answer's status, the link's name, the operation it
/// leads to, and that operation's parameter with where its value is.
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "/api/v1/articles",
        "201",
        "ShowArticle",
        "showArticle",
        "id",
        "$response.body#/article/id",
    ),
    (
        "/api/v1/articles",
        "201",
        "UpdateArticle",
        "updateArticle",
        "id",
        "$response.body#/article/id",
    ),
    (
        "/api/v1/articles",
        "201",
        "ExcludeArticle",
        "excludeArticle",
        "id",
        "$response.body#/article/id",
    ),
    (
        "/api/v1/articles",
        "200",
        "IncludeArticle",
        "includeArticle",
        "id",
        "$response.body#/article/id",
    ),
    (
        "/api/v1/articles",
        "200",
        "ShowArticle",
        "showArticle",
        "id",
        "$response.body#/article/id",
    ),
    (
        "/api/v1/issues",
        "200",
        "ShowIssue",
        "showIssue",
        "week",
        "$response.body#/issues/0/week",
    ),
];

/// An operation behind the token guard.
fn guarded(operation: &mut Operation) {
    operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    for status in PROBLEMS {
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Problem")));
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    camel_case_links(&mut document);
    serde_json::to_string(&document).expect("the OpenAPI document serialises")
});

/// utoipa 5.5 writes a link's fields in snake case (`operation_id`), which
/// OpenAPI does not know: a link without `operationId` or `operationRef` is
/// invalid (Schemathesis found it). Renames them as the specification
/// spells them.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    let responses = operations
        .filter_map(|operation| operation.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut());
    let links = responses
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

/// The API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapiDocument",
    tag = "api",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

/// The document, for tests and the README.
pub fn json() -> serde_json::Value {
    serde_json::from_str(&DOCUMENT).expect("the document is JSON")
}
