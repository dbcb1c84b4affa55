//! The pages pvgraph serves itself (GraphiQL at `/`, the explorer at
//! `/explore`) load only files this server has, each with its type and an
//! entity tag that saves sending it again.

mod common;

use common::{TestServer, temp_dir};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};

/// The addresses a page loads with `src="…"` or `href="…"`.
fn loaded_by(page: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| page.split(attribute).skip(1))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .filter(|address| address.starts_with("/assets/"))
        .collect()
}

#[tokio::test]
async fn every_file_the_pages_load_is_served_with_its_type() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let client = server.client();
    for page in ["/", "/explore"] {
        let response = client.get(format!("{}{page}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8", "{page}");
        let policy = response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"), "{page}: {policy}");
        let html = response.text().await.unwrap();
        let assets = loaded_by(&html);
        assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{page}");
        assert!(!html.contains("http://") && !html.contains("https://"), "{page} names another host");
        for asset in assets {
            let response = client.get(format!("{}{asset}", server.url)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            let expected = if asset.ends_with(".js") { "text/javascript" } else { "text/css" };
            let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
            assert!(content_type.starts_with(expected), "{asset}: {content_type}");
            assert!(!response.bytes().await.unwrap().is_empty(), "{asset} is empty");
        }
    }
}

#[tokio::test]
async fn graphiql_opens_with_the_example_queries() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let page = server.client().get(format!("{}/", server.url)).send().await.unwrap().text().await.unwrap();
    let json = page.split("<script id=\"examples\" type=\"application/json\">").nth(1).unwrap();
    let examples: serde_json::Value = serde_json::from_str(json.split("</script>").next().unwrap()).unwrap();
    let queries: Vec<&str> = examples.as_array().unwrap().iter().map(|e| e["query"].as_str().unwrap()).collect();
    let expected: Vec<&str> = pvgraph::http::EXAMPLES.iter().map(|q| q.trim_end()).collect();
    assert_eq!(queries, expected);
}

#[tokio::test]
async fn a_file_the_browser_holds_is_not_sent_again() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let url = format!("{}/assets/vendor/graphiql/graphiql.min.js", server.url);
    let first = server.client().get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
    let etag = first.headers()[ETAG].clone();
    assert!(first.bytes().await.unwrap().len() > 100_000, "GraphiQL itself is served");

    let again = server.client().get(&url).header(IF_NONE_MATCH, etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = server.client().get(&url).header(IF_NONE_MATCH, "\"something-else\"").send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_licences_are_served_and_unknown_files_are_not_found() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let licence = server.client().get(format!("{}/assets/vendor/react/LICENSE", server.url)).send().await.unwrap();
    assert_eq!(licence.status(), StatusCode::OK);
    assert!(licence.text().await.unwrap().contains("MIT License"));
    for path in ["/assets/nothing.js", "/assets/../Cargo.toml", "/assets/vendor/graphiql/graphiql.min.js.map"] {
        let response = server.client().get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
