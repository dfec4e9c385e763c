//! Every address the site writes leads to a route it serves: the paths
//! and URLs of [`crate::links`] (redirects, mail, feeds) and the links and
//! form targets in the page templates are checked against the route
//! tables, [`super::routes`], [`super::admin::routes`] and
//! [`super::api::routes`], so neither side
//! can move without the other.

use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use uuid::Uuid;

use crate::config::BaseUrl;
use crate::domain::{IssueWeek, UnsubscribeToken};
use crate::links::{Links, paths};

fn registered() -> Vec<(Method, String)> {
    super::route_list()
        .into_iter()
        .chain(super::admin::route_list())
        .chain(super::api::route_list())
        .collect()
}

/// Whether `method` on `path` (without its query) reaches a route.
fn served(method: &Method, path: &str) -> bool {
    registered()
        .iter()
        .any(|(m, pattern)| m == method && ResourceDef::new(pattern.as_str()).is_match(path))
}

#[test]
fn every_path_links_writes_is_a_page_the_site_serves() {
    let week = IssueWeek::parse("2026-W48").unwrap();
    let id = Uuid::now_v7();
    // Each constant and function of `links::paths`: one added there is
    // added here.
    let paths = [
        paths::HOME.to_owned(),
        paths::PREFERENCES_ADDRESS.to_owned(),
        paths::ARCHIVE.to_owned(),
        paths::ARCHIVE_FEED.to_owned(),
        paths::TEST_SEND.to_owned(),
        paths::ADMIN.to_owned(),
        paths::ADMIN_LOGIN.to_owned(),
        paths::ADMIN_ACCOUNT.to_owned(),
        paths::ADMIN_ARTICLES.to_owned(),
        paths::ADMIN_ISSUES.to_owned(),
        paths::ADMIN_SOURCES.to_owned(),
        paths::ADMIN_SUBSCRIBERS.to_owned(),
        paths::ADMIN_INBOUND.to_owned(),
        paths::ADMIN_API_TOKENS.to_owned(),
        paths::archive_issue(week),
        paths::admin_issue(week),
        paths::admin_article(id),
        paths::admin_article_import(id),
        paths::admin_subscriber(id),
    ];
    for path in paths {
        assert!(served(&Method::GET, &path), "no GET route serves {path}");
    }
    let base = "https://news.example.org/letters";
    let links = Links::new(BaseUrl::parse(base).unwrap());
    let urls = [
        links.home().to_owned(),
        links.confirm("abc"),
        links.unsubscribe(&UnsubscribeToken::generate(id)),
        links.preferences(&UnsubscribeToken::generate(id)),
        links.confirm_address("abc"),
        links.test_send(),
        links.archive(),
        links.archive_issue(week),
        links.archive_feed(),
    ];
    for url in urls {
        let path = url.strip_prefix(base).expect("every URL is under the base URL");
        let path = path.split('?').next().unwrap();
        let path = if path.is_empty() { "/" } else { path };
        assert!(served(&Method::GET, path), "no GET route serves {url}");
    }
}

#[test]
fn every_link_and_form_in_the_templates_reaches_a_route() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/web");
    let mut checked = 0;
    for file in templates(std::path::Path::new(root)) {
        let text = std::fs::read_to_string(&file).unwrap();
        for attribute in ["href=\"/", "src=\"/", "action=\"/"] {
            for (start, _) in text.match_indices(attribute) {
                let tag = &text[text[..start].rfind('<').unwrap()..start];
                let method = if attribute.starts_with("action") && !tag.contains("method=\"get\"") {
                    Method::POST
                } else {
                    Method::GET
                };
                let value = &text[start + attribute.len() - 1..];
                let value = &value[..value.find('"').unwrap()];
                let path = value.split('?').next().unwrap();
                // A template value stands for one path segment.
                let path = fill_placeholders(path);
                assert!(
                    served(&method, &path),
                    "{}: {method} {value} reaches no route",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the template folder right?"
    );
}

fn fill_placeholders(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        out.push('x');
        let close = rest[open..].find("}}").expect("a template value ends") + open + 2;
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

fn templates(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(templates(&path));
        } else if path.extension().is_some_and(|e| e == "html") {
            found.push(path);
        }
    }
    found
}
